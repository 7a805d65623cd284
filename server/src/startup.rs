//! Building and running the application: open the store, seed, bind, serve, shut down gracefully.
//!
//! `Application::build` binds before it returns, so a test can ask for port 0 and read the port
//! it got; every test builds its own instance with its own database.

use std::{future::Future, net::SocketAddr, sync::Arc};

use axum::{
    extract::DefaultBodyLimit,
    http::{header, StatusCode},
    response::IntoResponse,
    routing::get,
    serve::ListenerExt,
    Json, Router,
};
use leptos::config::{Env, LeptosOptions};
use tokio::net::TcpListener;

use crate::{
    auth::{Auth, AuthKeys},
    config::Config,
    fhir, rest, seed,
    sessions::Sessions,
    state::AppState,
    store::Store,
    web,
};

/// Why the server could not start; printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("seeding the demo data failed: {0}")]
    Seed(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A built, bound, not yet serving application.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        crate::memory::map_large_allocations();
        let store = Store::open(&config.database_url).await?;
        let reindexed = store.reindex_if_stale().await?;
        if reindexed > 0 {
            tracing::info!(reindexed, "re-indexed the current resources for searches");
        }
        if config.seed_demo {
            seed::seed_demo(&store)
                .await
                .map_err(|e| StartupError::Seed(e.to_string()))?;
        }
        if reindexed > 0 || config.seed_demo {
            // Seeding and re-indexing touch every resource at once; an idle server after
            // seeding held 132 MiB before this.
            crate::memory::release_freed_memory();
        }
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.listen,
            source,
        })?;
        let leptos = LeptosOptions::builder()
            .output_name("rounds")
            .site_root(config.site_root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .site_addr(local_addr)
            .env(Env::PROD)
            .hash_files(hash_file_beside_binary())
            .build();
        let metrics = crate::metrics::Metrics::new(
            &config.node_id,
            if store.shared() { "postgres" } else { "sqlite" },
        );
        // Live delivery starts at the head: what was committed before start-up is replayed to
        // clients that resume with after_seq.
        let hub = crate::realtime::hub::Hub::new(store.head());
        let mut keys = AuthKeys::new(
            &config.jwt_secret,
            config.secure_cookies,
            config.refresh_grace,
        );
        keys.access_ttl = config.access_token_ttl;
        let auth = Auth::new(keys, store.clone())
            .with_sign_in_limits(config.hash_concurrency, config.trusted_proxies.clone());
        let state = AppState {
            hub,
            metrics,
            subscriptions: crate::subscriptions::registry::Subscriptions::new(),
            sessions: Sessions::new(),
            auth: Arc::new(auth),
            config: Arc::new(config),
            store,
            leptos,
        };
        state.when_a_session_ends();
        let router = router(&state);
        crate::realtime::dispatcher::spawn(state.realtime());
        crate::event_log::spawn_retention(state.store.clone(), state.config.event_retention);
        crate::subscriptions::matcher::spawn_matcher(state.subscriptions_context());
        spawn_revocations(state.store.clone(), state.sessions.clone());
        state
            .sessions
            .spawn_recheck(state.store.clone(), state.config.session_recheck);
        Ok(Self {
            listener,
            local_addr,
            router,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then finishes in-flight requests (bounded by the
    /// configured grace period).
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let grace = self.state.config.shutdown_grace;
        let store = self.state.store.clone();
        let hub = self.state.hub.clone();
        // axum does not set TCP_NODELAY; without it small frames wait for Nagle (tens of ms).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(%error, "could not set TCP_NODELAY");
            }
        });
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let serve = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown({
            let hub = hub.clone();
            async move {
                stop.await;
                // Upgraded sockets are not hyper's to wait for: close them ourselves (1001,
                // after what is queued is written).
                hub.shutdown();
                let _ = stopped_tx.send(());
            }
        });
        let serving = tokio::spawn(async move { serve.await });
        let result = tokio::select! {
            result = serving => result.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            _ = async {
                let _ = stopped_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(?grace, "requests still running after the grace period; stopping anyway");
                Ok(())
            }
        };
        let drained = tokio::time::timeout(grace, async {
            while hub.connections() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
        if drained.await.is_err() {
            tracing::warn!("sockets still open after the grace period");
        }
        if let Err(error) = store.flush_audit().await {
            tracing::error!(%error, "flushing the audit trail at shutdown");
        }
        result
    }
}

/// Whether the build left the hashed names of the site's files beside this binary, where Leptos
/// reads them (`cargo leptos build` writes `target/release/hash.txt`). A binary run from elsewhere
/// without it (a test harness) names the files unhashed.
fn hash_file_beside_binary() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("hash.txt")))
        .is_some_and(|file| file.is_file())
}

/// Closes this node's sockets of sessions revoked on any node (sign-out or a replayed refresh
/// token elsewhere): on PostgreSQL the revoking node notifies, every node hears it.
fn spawn_revocations(store: Store, sessions: Arc<Sessions>) {
    let mut revoked = store.subscribe_revoked();
    tokio::spawn(async move {
        loop {
            match revoked.recv().await {
                Ok(session_id) => sessions.end(&session_id, "session revoked"),
                // Missed some: the re-check of the held sessions catches those.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "revocation notices lagged");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// All routes. Public: `/health`, `/auth/login`, static files. Everything else authenticates
/// (`/metrics` also takes the operator's `ROUNDS_METRICS_TOKEN`).
pub fn router(state: &AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(crate::metrics::routes::handler))
        .route(
            "/admin/sockets",
            get(crate::metrics::routes::sockets_of_user),
        )
        .merge(crate::realtime::routes())
        .route(
            "/ws/subscriptions-r4",
            get(crate::subscriptions::socket::handler),
        )
        .route(
            "/oauth2/token",
            axum::routing::post(crate::auth::oauth_token),
        )
        .nest("/auth", crate::auth::routes())
        // The FHIR layer enforces its own body limit to answer 413 as an OperationOutcome, and
        // answers axum's own rejections as OperationOutcomes too; a method a route lacks is a
        // 405 OperationOutcome with `Allow`; only JSON is produced (406 otherwise).
        .nest(
            "/fhir/R4",
            crate::subscriptions::operations::routes()
                .merge(rest::routes())
                .method_not_allowed_fallback(rest::method_not_allowed)
                .layer(DefaultBodyLimit::disable())
                .layer(axum::middleware::map_response(
                    fhir::error::every_error_an_outcome,
                ))
                .layer(axum::middleware::from_fn(fhir::format::negotiated)),
        )
        .merge(web::routes(state))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::resolve_client,
        ))
        .with_state(state.clone())
}

async fn health() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({"status": "ok"})),
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
