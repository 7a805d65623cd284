//! The realtime hub: WebSocket rooms that deliver every event of the log, once, in order, only to
//! those allowed to see it.
//!
//! - `hub`: the room registry and the replay/live seam;
//! - `dispatcher`: step 3 of the event path, log → rooms, one serialisation per event;
//! - `connection`: step 4, one socket's reader and writer, subscriptions and replay;
//! - `poll`: `POST /ws/poll`, the same subscriptions and frames over HTTP long polling.
//!
//! Also here: the retention task that prunes the event log, so that a resume from too long ago is
//! answered with `reset` instead of an unbounded replay.

pub mod connection;
pub mod dispatcher;
pub mod hub;
pub mod poll;

use std::time::Duration;

use axum::{
    routing::{get, post},
    Router,
};
use chrono::Utc;

pub use hub::Hub;

use crate::{fhir::date::format_instant, state::AppState};

/// `GET /ws` and its long-poll fallback `POST /ws/poll`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ws", get(connection::handler))
        .route("/ws/poll", post(poll::handler))
}

/// Prunes events older than the configured retention, now and then every hour (or more often
/// for short retentions).
pub fn spawn_retention(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let retention = state.config.event_retention;
        let period = (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        loop {
            let cutoff = Utc::now() - chrono::Duration::from_std(retention).unwrap_or_default();
            match state.store.prune_events(&format_instant(cutoff)).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "pruned events older than the retention"),
                Err(error) => tracing::warn!(%error, "pruning the event log failed"),
            }
            tokio::time::sleep(period).await;
        }
    })
}
