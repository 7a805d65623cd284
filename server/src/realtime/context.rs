//! What the realtime path needs of the server, and nothing more: handed by the `/ws` and
//! `/ws/poll` handlers to what they start, and to the dispatcher at start-up.

use std::{sync::Arc, time::Duration};

use super::hub::Hub;
use crate::{auth::signin::Auth, metrics::Metrics, sessions::Sessions, store::Store};

/// The store (the event log and access facts), the room registry, this node's sessions, the
/// counters and the token keys, with the two settings a socket needs.
#[derive(Clone)]
pub struct Realtime {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub sessions: Arc<Sessions>,
    pub metrics: Arc<Metrics>,
    /// The token keys, for the session check of a held poll.
    pub auth: Arc<Auth>,
    /// How often an idle socket is sent a heartbeat.
    pub heartbeat: Duration,
    /// Frames one socket's queue holds before it is closed as too slow (4408).
    pub queue_frames: usize,
}
