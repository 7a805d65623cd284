//! The dispatcher: reads committed events from the log in `seq` order and routes each to its rooms.
//!
//! Where it sits: step 3 of the event path. The store wakes it after every commit (the head `seq`
//! watch); it also polls once a second, so a missed wake-up (or, later, a write on another node)
//! can delay an event but never lose it: the log is the truth, wake-ups are only hints.
//!
//! Each event is serialised ONCE; the same bytes go to every recipient's bounded queue with
//! `try_send`. A full queue closes that connection with 4408 (it resumes with `after_seq`); the
//! dispatcher never waits for a socket. Access is checked again on every delivery, against a
//! per-user cache that is dropped whenever an event can change who sees what.
//!
//! What it must never do: skip a `seq`, deliver out of order, or await a client.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc::error::TrySendError;

use super::hub::{CloseOrder, Outgoing};
use crate::{
    access::{self, EventFacts},
    auth::{AuthUser, Role},
    state::AppState,
    store::{EventRecord, Visibility},
};

/// Events read from the log per query.
const BATCH: usize = 1024;
/// How long a cached visibility is trusted when no event has invalidated it (unit assignments
/// and account changes do not pass through the event log).
const VISIBILITY_TTL: Duration = Duration::from_secs(30);
/// Resource types whose changes can change who may see which patient.
pub const ACCESS_TYPES: &[&str] = &["CareTeam", "Encounter", "MedicationRequest"];

#[derive(Serialize)]
struct UpdateFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: UpdateData<'a>,
}

#[derive(Serialize)]
struct UpdateData<'a> {
    seq: i64,
    action: &'static str,
    event_type: &'static str,
    resource_type: &'a str,
    resource_id: &'a str,
    version_id: i64,
    patient_id: Option<&'a str>,
    rooms: &'a [String],
    user_id: Option<&'a str>,
    timestamp: &'a str,
    resource: &'a RawValue,
}

/// The `update` frame of one event (the contract's shape), serialised once.
pub fn update_frame(event: &EventRecord) -> Utf8Bytes {
    // The stored JSON was produced by the store; should it not parse, send null rather than
    // nothing, so the client still learns the seq and refetches.
    let null = RawValue::NULL;
    let resource: &RawValue = serde_json::from_str(&event.resource_json).unwrap_or(null);
    let frame = UpdateFrame {
        kind: "update",
        data: UpdateData {
            seq: event.seq,
            action: event.action.as_str(),
            event_type: event.event_type.as_str(),
            resource_type: &event.resource_type,
            resource_id: &event.resource_id,
            version_id: event.version_id,
            patient_id: event.patient_id.as_deref(),
            rooms: &event.rooms,
            user_id: event.user_id.as_deref(),
            timestamp: &event.timestamp,
            resource,
        },
    };
    Utf8Bytes::from(serde_json::to_string(&frame).unwrap_or_default())
}

/// The per-delivery check of live delivery, replay and the long poll: may `user`, who sees
/// `visibility` now, receive the event whose facts are `facts`? The exit gate, or the unit
/// hand-off.
pub fn may_deliver(
    user: &AuthUser,
    visibility: &Visibility,
    event: &EventRecord,
    facts: &EventFacts,
) -> bool {
    access::may_receive(user, visibility, facts)
        || access::unit_handoff(user, &event.resource_type, &event.rooms, facts.restricted())
}

/// What each connected user may see, computed once per user and reused until invalidated.
pub struct AccessCache {
    by_user: HashMap<String, (Arc<Visibility>, Instant)>,
    everything: Arc<Visibility>,
}

impl Default for AccessCache {
    fn default() -> Self {
        Self {
            by_user: HashMap::new(),
            everything: Arc::new(Visibility::everything()),
        }
    }
}

impl AccessCache {
    pub fn clear(&mut self) {
        self.by_user.clear();
    }

    /// The user's visibility; `None` if it cannot be computed now (then nothing is delivered).
    pub async fn get(&mut self, state: &AppState, user: &AuthUser) -> Option<Arc<Visibility>> {
        if user.role == Role::Admin {
            return Some(self.everything.clone());
        }
        if let Some((visibility, at)) = self.by_user.get(&user.id) {
            if at.elapsed() < VISIBILITY_TTL {
                return Some(visibility.clone());
            }
        }
        match access::visibility(state, user).await {
            Ok(visibility) => {
                let visibility = Arc::new(visibility);
                self.by_user
                    .insert(user.id.clone(), (visibility.clone(), Instant::now()));
                Some(visibility)
            }
            Err(error) => {
                tracing::warn!(%error, user = %user.id, "computing access for delivery failed");
                None
            }
        }
    }
}

/// Starts the dispatcher for this node.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(state))
}

async fn run(state: AppState) {
    let mut head = state.store.subscribe_head();
    let mut position = state.hub.dispatched();
    let mut cache = AccessCache::default();
    let mut pending = Pending::default();
    // Set once the database was out of reach: a sign-out may have been missed meanwhile.
    let mut unsure = false;
    loop {
        head.borrow_and_update();
        loop {
            match state.store.events_after(position, BATCH).await {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => {
                    if unsure || !state.store.hears_revocations() {
                        // Sessions that ended while this node could not hear of it are closed
                        // before anything read from the log reaches them.
                        if let Err(error) = crate::sessions::recheck(&state).await {
                            tracing::warn!(%error, "re-checking the held sessions failed");
                            tokio::time::sleep(Duration::from_millis(250)).await;
                            continue;
                        }
                        unsure = false;
                    }
                    for event in &batch {
                        dispatch(&state, &mut cache, &mut pending, event).await;
                        position = event.seq;
                    }
                    pending.flush(&state);
                    state.hub.advanced(position);
                }
                Err(error) => {
                    unsure = true;
                    tracing::error!(%error, position, "reading the event log failed; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        tokio::select! {
            changed = head.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Frames routed for one batch of the log, per connection, in `seq` order. Handing a connection
/// all of its frames at once lets its writer flush them in one write: under load, one syscall per
/// connection per batch instead of per event.
#[derive(Default)]
struct Pending {
    by_connection: HashMap<u64, (Arc<super::hub::ConnHandle>, Vec<Outgoing>)>,
}

impl Pending {
    fn push(&mut self, handle: &Arc<super::hub::ConnHandle>, frame: Outgoing) {
        self.by_connection
            .entry(handle.id)
            .or_insert_with(|| (handle.clone(), Vec::new()))
            .1
            .push(frame);
    }

    fn flush(&mut self, state: &AppState) {
        let metrics = &state.metrics;
        let live = metrics
            .updates_sent
            .get_or_create(&vec![("mode", "live")])
            .clone();
        for (_, (handle, frames)) in self.by_connection.drain() {
            for frame in frames {
                match handle.queue.try_send(frame) {
                    Ok(()) => {
                        live.inc();
                    }
                    Err(TrySendError::Full(_)) => {
                        if !handle.closing() {
                            metrics.slow_consumer_closes.inc();
                            handle.close(CloseOrder {
                                code: app::wire::CLOSE_TOO_SLOW,
                                reason: "too slow: reconnect and resume with after_seq",
                            });
                        }
                        break;
                    }
                    Err(TrySendError::Closed(_)) => break,
                }
            }
        }
    }
}

async fn dispatch(
    state: &AppState,
    cache: &mut AccessCache,
    pending: &mut Pending,
    event: &EventRecord,
) {
    let metrics = &state.metrics;
    metrics.events_dispatched.inc();
    let committed = state.store.commit_instant(event.seq);
    if ACCESS_TYPES.contains(&event.resource_type.as_str()) {
        cache.clear();
    }
    let recipients = state
        .hub
        .route(event.seq, &event.rooms, &event.resource_type);
    if recipients.is_empty() {
        return;
    }
    let frame = update_frame(event);
    let facts = EventFacts::of(event);
    for handle in &recipients {
        let allowed = match cache.get(state, &handle.user).await {
            Some(visibility) => may_deliver(&handle.user, &visibility, event, &facts),
            None => false,
        };
        if !allowed {
            metrics.deliveries_denied.inc();
            continue;
        }
        pending.push(
            handle,
            Outgoing {
                text: frame.clone(),
                committed,
            },
        );
    }
}
