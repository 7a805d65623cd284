//! `AppState`: everything a request needs, created once at start-up and cloned cheaply.
//!
//! Only handlers (and start-up) hold it. What they start gets exactly the parts it needs: the
//! realtime path a [`Realtime`], the FHIR Subscriptions a [`Context`], everything else a
//! `&Store` or the one part it uses.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::{
    auth::signin::Auth,
    config::Config,
    metrics::Metrics,
    realtime::{context::Realtime, hub::Hub},
    sessions::Sessions,
    store::Store,
    subscriptions::{context::Context, registry::Subscriptions},
};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Arc<Auth>,
    pub leptos: LeptosOptions,
    /// The realtime room registry (connections, rooms, the dispatch position).
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    /// Active FHIR Subscriptions and the sockets bound to them.
    pub subscriptions: Arc<Subscriptions>,
    /// The sessions behind this node's open sockets and held polls.
    pub sessions: Arc<Sessions>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

impl AppState {
    /// What the realtime path (`/ws`, `/ws/poll`, the dispatcher) needs.
    pub fn realtime(&self) -> Realtime {
        Realtime {
            store: self.store.clone(),
            hub: self.hub.clone(),
            sessions: self.sessions.clone(),
            metrics: self.metrics.clone(),
            auth: self.auth.clone(),
            heartbeat: self.config.heartbeat,
            queue_frames: self.config.ws_queue_frames,
        }
    }

    /// What the FHIR Subscriptions (matcher, follower, sockets) need.
    pub fn subscriptions_context(&self) -> Context {
        Context {
            store: self.store.clone(),
            registry: self.subscriptions.clone(),
            sessions: self.sessions.clone(),
            auth: self.auth.clone(),
            metrics: self.metrics.clone(),
            node_id: self.config.node_id.clone(),
            base: format!("http://{}/fhir/R4", self.leptos.site_addr),
        }
    }

    /// Registers what ending a session closes on this node: its `/ws` sockets (4401 with the
    /// reason) and its bound subscription sockets, after its tokens are refused.
    pub fn when_a_session_ends(&self) {
        // Tokens first: a socket closed below must not reconnect with one still accepted.
        let auth = self.auth.clone();
        self.sessions.on_end(Box::new(move |session_id, _| {
            auth.forget_session(session_id)
        }));
        let hub = self.hub.clone();
        self.sessions.on_end(Box::new(move |session_id, reason| {
            hub.close_session(session_id, app::wire::CLOSE_UNAUTHORIZED, reason)
        }));
        let subscriptions = self.subscriptions.clone();
        self.sessions.on_end(Box::new(move |session_id, _| {
            subscriptions.end_session(session_id)
        }));
    }
}
