//! The registry of this node: the active Subscriptions with their numbering, and the sockets
//! bound to them, with the frames queued for each.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::extract::ws::Utf8Bytes;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::resource::{owner_of, Active};
use crate::fhir::error::FhirError;

/// A socket bound to a subscription.
pub struct Binding {
    pub socket: u64,
    pub queue: mpsc::Sender<Frame>,
    /// While the socket catches up from the log (`eventsSinceNumber`), live notifications are not
    /// queued: every one of them is committed before it is delivered, so the catch-up reads it.
    pub replaying: bool,
    /// The session of whoever obtained the binding token: when it ends, so does the binding.
    pub session_id: String,
    pub kill: watch::Sender<Option<Kill>>,
}

impl Binding {
    /// Orders its socket closed; the first order wins.
    pub(super) fn close(&self, why: Kill) {
        self.kill.send_if_modified(|kill| {
            let first = kill.is_none();
            if first {
                *kill = Some(why);
            }
            first
        });
    }
}

/// Where a Subscription's numbering stands. It is kept while the Subscription is off, in error or
/// deleted, so that its event numbers never repeat when it becomes active again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbering {
    pub start_seq: i64,
    /// The last event number handed out.
    pub count: i64,
}

/// The Subscriptions the matcher knows: the active ones, and the numbering of the others.
#[derive(Debug, Default)]
pub struct Registered {
    pub active: HashMap<String, Active>,
    pub dormant: HashMap<String, Numbering>,
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) registered: Registered,
    pub(super) bindings: HashMap<String, Vec<Binding>>,
}

/// The registry of active subscriptions and bound sockets; one per node.
pub struct Subscriptions {
    inner: Mutex<Inner>,
    /// The matcher's position in the log.
    pub(super) position: watch::Sender<i64>,
    /// Serialises Subscription writes (see [`Subscriptions::admit`]) so the per-user cap holds.
    admit_lock: tokio::sync::Mutex<()>,
}

impl Subscriptions {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            position: watch::channel(0).0,
            admit_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn active(&self, id: &str) -> Option<Active> {
        self.lock().registered.active.get(id).cloned()
    }

    /// Where the numbering of Subscription `id` stands on this node, active or not.
    pub fn numbering(&self, id: &str) -> Option<Numbering> {
        let inner = self.lock();
        match inner.registered.active.get(id) {
            Some(active) => Some(Numbering {
                start_seq: active.start_seq,
                count: active.count,
            }),
            None => inner.registered.dormant.get(id).copied(),
        }
    }

    fn count_owned_by(&self, user_id: &str) -> usize {
        self.lock()
            .registered
            .active
            .values()
            .filter(|s| s.owner == user_id)
            .count()
    }

    /// Admits a Subscription write (create or update, already [`prepare`]d): one at a time, and
    /// refused (422) when it would make a Subscription active beyond its owner's `cap`
    /// (`--max-subscriptions-per-user`). Hold the guard until the write is registered
    /// ([`Self::caught_up`] with its `seq`), so that the next write counts it.
    pub async fn admit(
        &self,
        id: Option<&str>,
        resource: &Value,
        cap: usize,
    ) -> Result<tokio::sync::MutexGuard<'_, ()>, FhirError> {
        let guard = self.admit_lock.lock().await;
        let activates =
            resource["status"] == "active" && id.is_none_or(|id| self.active(id).is_none());
        if activates && self.count_owned_by(owner_of(resource).unwrap_or_default()) >= cap {
            return Err(FhirError::Unprocessable(format!(
                "the owner already holds {cap} active subscriptions, the most allowed; delete one or set one off first"
            )));
        }
        Ok(guard)
    }

    /// Waits until the matcher has processed the log up to `seq`.
    pub async fn caught_up(&self, seq: i64) {
        let mut position = self.position.subscribe();
        let _ =
            tokio::time::timeout(Duration::from_secs(10), position.wait_for(|at| *at >= seq)).await;
    }

    /// Binds a socket; a `replaying` binding gets no live notifications until
    /// [`Self::finish_replay`].
    pub fn bind(&self, id: &str, binding: Binding) {
        self.lock()
            .bindings
            .entry(id.to_owned())
            .or_default()
            .push(binding);
    }

    /// Ends a socket's catch-up: live notifications are queued from now on. The socket reads the
    /// log once more after this, for those committed while it switched.
    pub fn finish_replay(&self, id: &str, socket: u64) {
        let mut inner = self.lock();
        if let Some(binding) = inner
            .bindings
            .get_mut(id)
            .and_then(|list| list.iter_mut().find(|b| b.socket == socket))
        {
            binding.replaying = false;
        }
    }

    /// Whether `socket` holds a binding of `id` now (a stopped Subscription's bindings are gone).
    pub fn is_bound(&self, id: &str, socket: u64) -> bool {
        self.lock()
            .bindings
            .get(id)
            .is_some_and(|list| list.iter().any(|b| b.socket == socket))
    }

    pub fn unbind(&self, id: &str, socket: u64) -> bool {
        let mut inner = self.lock();
        let Some(list) = inner.bindings.get_mut(id) else {
            return false;
        };
        let before = list.len();
        list.retain(|b| b.socket != socket);
        let removed = list.len() != before;
        if list.is_empty() {
            inner.bindings.remove(id);
        }
        removed
    }

    pub fn unbind_socket(&self, socket: u64) {
        let mut inner = self.lock();
        inner.bindings.retain(|_, list| {
            list.retain(|b| b.socket != socket);
            !list.is_empty()
        });
    }

    /// Closes every socket with a binding of session `session_id` (signed out or revoked).
    pub fn end_session(&self, session_id: &str) {
        let inner = self.lock();
        for binding in inner.bindings.values().flatten() {
            if binding.session_id == session_id {
                binding.close(Kill::SessionEnded);
            }
        }
    }

    pub(super) fn deliver(&self, id: &str, frame: Frame) {
        let mut inner = self.lock();
        let Some(list) = inner.bindings.get_mut(id) else {
            return;
        };
        for binding in list.iter().filter(|b| !b.replaying) {
            if binding.queue.try_send(frame.clone()).is_err() {
                // Too slow (or gone): it re-binds with eventsSinceNumber.
                binding.close(Kill::Dropped);
            }
        }
    }
}

/// One frame for a subscription socket.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The subscription and event number of a notification (for de-duplication at the seam).
    pub subscription: Option<String>,
    pub number: Option<i64>,
    pub text: Utf8Bytes,
    /// The subscription's last frame: it stopped, and its binding ends once this is sent.
    pub ends: bool,
}

impl Frame {
    /// A frame that is no notification (a status, an OperationOutcome, a pong).
    pub fn plain(text: String) -> Self {
        Self {
            subscription: None,
            number: None,
            text: text.into(),
            ends: false,
        }
    }
}

/// Why the server ends a subscription socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// Too slow, or a subscription bound here stopped: closed without a code; the client re-binds.
    Dropped,
    /// The session behind one of its binding tokens ended: an OperationOutcome, then 4401.
    SessionEnded,
}
