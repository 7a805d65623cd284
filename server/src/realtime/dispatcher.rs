//! The dispatcher: reads committed events from the log in `seq` order and routes each to its rooms.
//!
//! Where it sits: step 3 of the event path. The store wakes it after every commit (the head `seq`
//! watch); it also polls once a second, so a missed wake-up (or a write on another node) can
//! delay an event but never lose it: the log is the truth, wake-ups are only hints. What this
//! node just committed it reads from the writer's in-memory tail, without a query
//! (`Store::events_after`).
//!
//! Each event is serialised ONCE; the same bytes go to every recipient's bounded queue with
//! `try_send`. A full queue closes that connection with 4408 (it resumes with `after_seq`); the
//! dispatcher never waits for a socket. Access is checked again on every delivery, against a
//! per-user cache that is dropped whenever an event can change who sees what.
//!
//! What it must never do: skip a `seq`, deliver out of order, or await a client.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::sync::mpsc::error::TrySendError;

use super::{
    context::Realtime,
    frame::update_frame,
    hub::{CloseOrder, ConnHandle, Outgoing},
};
use crate::{
    access::{may_deliver, AccessCache, EventFacts, ACCESS_TYPES},
    event_log::Cursor,
    store::EventRecord,
};

/// Events read from the log per query.
const BATCH: usize = 1024;

/// Starts the dispatcher for this node.
pub fn spawn(rt: Realtime) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(rt))
}

async fn run(rt: Realtime) {
    let mut head = rt.store.subscribe_head();
    let mut cursor = Cursor::after(rt.hub.dispatched());
    let mut cache = AccessCache::default();
    let mut pending = Pending::default();
    // Set once the database was out of reach: a sign-out may have been missed meanwhile.
    let mut unsure = false;
    loop {
        head.borrow_and_update();
        loop {
            match cursor.read(&rt.store, BATCH).await {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => {
                    if unsure || !rt.store.hears_revocations() {
                        // Sessions that ended while this node could not hear of it are closed
                        // before anything read from the log reaches them.
                        if let Err(error) = rt.sessions.recheck(&rt.store).await {
                            tracing::warn!(%error, "re-checking the held sessions failed");
                            tokio::time::sleep(Duration::from_millis(250)).await;
                            continue;
                        }
                        unsure = false;
                    }
                    for event in &batch {
                        dispatch(&rt, &mut cache, &mut pending, event).await;
                        cursor.advance(event.seq);
                    }
                    pending.flush(&rt);
                    rt.hub.advanced(cursor.position());
                }
                Err(error) => {
                    unsure = true;
                    tracing::error!(%error, position = cursor.position(), "reading the event log failed; retrying");
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
    by_connection: HashMap<u64, (Arc<ConnHandle>, Vec<Outgoing>)>,
}

impl Pending {
    fn push(&mut self, handle: &Arc<ConnHandle>, frame: Outgoing) {
        self.by_connection
            .entry(handle.id)
            .or_insert_with(|| (handle.clone(), Vec::new()))
            .1
            .push(frame);
    }

    fn flush(&mut self, rt: &Realtime) {
        let metrics = &rt.metrics;
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
    rt: &Realtime,
    cache: &mut AccessCache,
    pending: &mut Pending,
    event: &EventRecord,
) {
    let metrics = &rt.metrics;
    metrics.events_dispatched.inc();
    let committed = rt.store.commit_instant(event.seq);
    if ACCESS_TYPES.contains(&event.resource_type.as_str()) {
        cache.clear();
    }
    let recipients = rt.hub.route(event.seq, &event.rooms, &event.resource_type);
    if recipients.is_empty() {
        return;
    }
    let frame = update_frame(event);
    let facts = EventFacts::of(event);
    for handle in &recipients {
        let allowed = match cache.get(&rt.store, &handle.user).await {
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
