//! `AppState`: everything a request needs, created once at start-up and cloned cheaply.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::{
    auth::signin::Auth, config::Config, metrics::Metrics, realtime::Hub, sessions::Sessions,
    store::Store, subscriptions::Subscriptions,
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
