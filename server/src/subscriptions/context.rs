//! What the FHIR Subscriptions need of the server, and nothing more: handed to the matcher and
//! the follower at start-up and to each subscription socket by its handler.

use std::sync::Arc;

use super::registry::Subscriptions;
use crate::{auth::signin::Auth, metrics::Metrics, sessions::Sessions, store::Store};

/// The store (the log, the numbers, the owners' access facts), this node's registry, its
/// sessions, the token keys (binding tokens), the counters, and how notifications name things.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub registry: Arc<Subscriptions>,
    pub sessions: Arc<Sessions>,
    pub auth: Arc<Auth>,
    pub metrics: Arc<Metrics>,
    /// This node's name, for the log.
    pub node_id: String,
    /// The FHIR base the notifications name (`http://{site}/fhir/R4`).
    pub base: String,
}
