//! The realtime hub: WebSocket rooms that deliver every event of the log, once, in order, only to
//! those allowed to see it.
//!
//! - `context`: what the realtime path needs of the server ([`Realtime`]), and nothing more;
//! - `hub`: the room registry and the replay/live seam;
//! - `frame`: the `update` frame, written once per event;
//! - `request`: the checks of a `subscription` request, shared by the socket and the poll;
//! - `dispatcher`: step 3 of the event path, log → rooms, one serialisation per event;
//! - `connection`: step 4, one socket's reader and writer, subscriptions and replay;
//! - `poll`: `POST /ws/poll`, the same subscriptions and frames over HTTP long polling.
//!
//! Each reads the event log through `crate::event_log` and asks `crate::access` before anything
//! leaves. Only the two handlers see `AppState`.

pub mod connection;
pub mod context;
pub mod dispatcher;
pub mod frame;
pub mod hub;
pub mod poll;
pub mod request;

use axum::{
    routing::{get, post},
    Router,
};

pub use context::Realtime;
pub use hub::Hub;

use crate::state::AppState;

/// `GET /ws` and its long-poll fallback `POST /ws/poll`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ws", get(connection::handler))
        .route("/ws/poll", post(poll::handler))
}
