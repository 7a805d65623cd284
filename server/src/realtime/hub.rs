//! The room registry: which connection is in which room, with which subscriptions.
//!
//! Where it sits: between the dispatcher (step 3, which asks it who should get an event) and the
//! connections (step 4, which join and leave). One mutex guards the registry and the dispatcher's
//! position (`dispatched`), so that a replaying subscription can switch to the live stream at an
//! exact `seq`: no event is lost at the seam and none is sent twice.
//!
//! What it must never do: await, touch the database, or write to a socket while the lock is held.
//! Rooms exist while they have members; the last member leaving removes the room.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Instant,
};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{mpsc, watch};

use crate::{auth::identity::AuthUser, metrics::Metrics};

/// A frame waiting to be written to one socket.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub text: Utf8Bytes,
    /// When the write behind this update committed on this node (latency metric).
    pub committed: Option<Instant>,
}

impl Outgoing {
    pub fn reply(text: String) -> Self {
        Self {
            text: Utf8Bytes::from(text),
            committed: None,
        }
    }
}

/// Why the server closes a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseOrder {
    pub code: u16,
    pub reason: &'static str,
}

/// What the dispatcher and the connection share about one socket.
pub struct ConnHandle {
    pub id: u64,
    pub user: AuthUser,
    pub queue: mpsc::Sender<Outgoing>,
    close: watch::Sender<Option<CloseOrder>>,
}

impl ConnHandle {
    /// Orders the connection closed; the first order wins.
    pub fn close(&self, order: CloseOrder) {
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(order);
                true
            } else {
                false
            }
        });
    }

    pub fn closing(&self) -> bool {
        self.close.borrow().is_some()
    }
}

/// One subscription of one connection.
#[derive(Debug, Clone)]
pub struct Sub {
    pub rooms: HashSet<String>,
    /// Resource types it receives; empty for all.
    pub types: HashSet<String>,
    /// `None` while it replays; then the `seq` after which the dispatcher delivers to it.
    pub live_from: Option<i64>,
}

impl Sub {
    pub fn wants(&self, rooms: &[String], resource_type: &str) -> bool {
        (self.types.is_empty() || self.types.contains(resource_type))
            && rooms.iter().any(|room| self.rooms.contains(room))
    }
}

struct Member {
    handle: Arc<ConnHandle>,
    subs: HashMap<String, Sub>,
}

#[derive(Default)]
struct Registry {
    rooms: HashMap<String, HashSet<u64>>,
    members: HashMap<u64, Member>,
    /// The last `seq` the dispatcher has routed.
    dispatched: i64,
}

impl Registry {
    fn leave_rooms(&mut self, id: u64, rooms: impl IntoIterator<Item = String>) {
        for room in rooms {
            if let Some(members) = self.rooms.get_mut(&room) {
                members.remove(&id);
                if members.is_empty() {
                    self.rooms.remove(&room);
                }
            }
        }
    }

    /// Rooms of `id` that no subscription other than `except` still holds.
    fn rooms_only_in(&self, id: u64, except: &str, rooms: &HashSet<String>) -> Vec<String> {
        let Some(member) = self.members.get(&id) else {
            return Vec::new();
        };
        rooms
            .iter()
            .filter(|room| {
                !member
                    .subs
                    .iter()
                    .any(|(sid, sub)| sid != except && sub.rooms.contains(*room))
            })
            .cloned()
            .collect()
    }
}

/// The registry of live connections and rooms, shared by the dispatcher and every connection.
pub struct Hub {
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    shutdown: watch::Sender<bool>,
    /// The dispatcher's position after each batch it read from the log: what long polls wait on.
    progress: watch::Sender<i64>,
}

impl Hub {
    pub fn new(dispatched: i64) -> Arc<Self> {
        let (shutdown, _) = watch::channel(false);
        let (progress, _) = watch::channel(dispatched);
        Arc::new(Self {
            registry: Mutex::new(Registry {
                dispatched,
                ..Registry::default()
            }),
            next_id: AtomicU64::new(1),
            shutdown,
            progress,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the registry half-updated in a way that
        // matters more than stopping delivery altogether would, so keep going.
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new connection; it receives nothing until it subscribes.
    pub fn connect(
        &self,
        user: AuthUser,
        queue: mpsc::Sender<Outgoing>,
    ) -> (Arc<ConnHandle>, watch::Receiver<Option<CloseOrder>>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (close, closed) = watch::channel(None);
        let handle = Arc::new(ConnHandle {
            id,
            user,
            queue,
            close,
        });
        self.lock().members.insert(
            id,
            Member {
                handle: handle.clone(),
                subs: HashMap::new(),
            },
        );
        if *self.shutdown.borrow() {
            handle.close(CloseOrder {
                code: app::wire::CLOSE_GOING_AWAY,
                reason: "server shutting down",
            });
        }
        (handle, closed)
    }

    /// Removes a connection from every room.
    pub fn disconnect(&self, id: u64) {
        let mut registry = self.lock();
        if let Some(member) = registry.members.remove(&id) {
            let rooms: HashSet<String> = member
                .subs
                .into_values()
                .flat_map(|sub| sub.rooms)
                .collect();
            registry.leave_rooms(id, rooms);
        }
    }

    /// Number of subscriptions and of distinct rooms the connection holds.
    pub fn usage(&self, id: u64) -> (usize, usize) {
        let registry = self.lock();
        registry
            .members
            .get(&id)
            .map(|member| {
                let rooms: HashSet<&String> =
                    member.subs.values().flat_map(|sub| &sub.rooms).collect();
                (member.subs.len(), rooms.len())
            })
            .unwrap_or((0, 0))
    }

    /// Adds (or replaces) a subscription. With `replay` it starts in replay mode and receives no
    /// live event until [`Hub::go_live`]; otherwise it receives the events after `head`, the last
    /// committed `seq` when it was asked for (the dispatcher may not have routed up to it yet;
    /// what was committed before the subscription is not its to receive). Returns the dispatch
    /// position.
    pub fn subscribe(&self, id: u64, sub_id: &str, mut sub: Sub, replay: bool, head: i64) -> i64 {
        let mut registry = self.lock();
        let dispatched = registry.dispatched;
        sub.live_from = if replay {
            None
        } else {
            Some(head.max(dispatched))
        };
        let Some(member) = registry.members.get_mut(&id) else {
            return dispatched;
        };
        let previous = member.subs.insert(sub_id.to_owned(), sub.clone());
        if let Some(previous) = previous {
            let dropped: HashSet<String> = previous.rooms.difference(&sub.rooms).cloned().collect();
            let orphaned = registry.rooms_only_in(id, sub_id, &dropped);
            registry.leave_rooms(id, orphaned);
        }
        for room in sub.rooms {
            registry.rooms.entry(room).or_default().insert(id);
        }
        dispatched
    }

    /// Removes one subscription; false when it did not exist.
    pub fn unsubscribe(&self, id: u64, sub_id: &str) -> bool {
        let mut registry = self.lock();
        let Some(sub) = registry
            .members
            .get_mut(&id)
            .and_then(|member| member.subs.remove(sub_id))
        else {
            return false;
        };
        let orphaned = registry.rooms_only_in(id, sub_id, &sub.rooms);
        registry.leave_rooms(id, orphaned);
        true
    }

    /// Switches a replaying subscription to the live stream after `cursor`, the last `seq` the
    /// replay covered, if the dispatcher has not gone past it. False: replay further first.
    pub fn go_live(&self, id: u64, sub_id: &str, cursor: i64) -> bool {
        let mut registry = self.lock();
        if registry.dispatched > cursor {
            return false;
        }
        if let Some(sub) = registry
            .members
            .get_mut(&id)
            .and_then(|member| member.subs.get_mut(sub_id))
        {
            sub.live_from = Some(cursor);
        }
        true
    }

    /// The last `seq` routed by the dispatcher.
    pub fn dispatched(&self) -> i64 {
        self.lock().dispatched
    }

    /// Called by the dispatcher after each batch it read from the log (it reads after every
    /// commit's wake-up and, as a safety net, once a second): wakes the held long polls.
    pub fn advanced(&self, position: i64) {
        self.progress.send_if_modified(|current| {
            if position > *current {
                *current = position;
                true
            } else {
                false
            }
        });
    }

    /// Changes whenever the dispatcher has read further into the log.
    pub fn subscribe_progress(&self) -> watch::Receiver<i64> {
        self.progress.subscribe()
    }

    /// Becomes true when the server starts shutting down.
    pub fn subscribe_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Who should get event `seq` (with its rooms and resource type), each connection once; and
    /// marks `seq` as routed, in the same critical section.
    pub fn route(&self, seq: i64, rooms: &[String], resource_type: &str) -> Vec<Arc<ConnHandle>> {
        let mut registry = self.lock();
        registry.dispatched = registry.dispatched.max(seq);
        // Only an event in several rooms can reach a connection twice.
        let mut seen: Option<HashSet<u64>> = (rooms.len() > 1).then(HashSet::new);
        let mut out = Vec::new();
        for room in rooms {
            let Some(members) = registry.rooms.get(room) else {
                continue;
            };
            for id in members {
                if seen.as_ref().is_some_and(|seen| seen.contains(id)) {
                    continue;
                }
                // A connection ordered closed (too slow, signed out) gets nothing more.
                let Some(member) = registry
                    .members
                    .get(id)
                    .filter(|member| !member.handle.closing())
                else {
                    continue;
                };
                // Being in this room's member set means one of its subscriptions holds the room;
                // with a single subscription there is nothing more to look up.
                let single = member.subs.len() == 1;
                let live = member.subs.values().any(|sub| {
                    sub.live_from.is_some_and(|from| from < seq)
                        && (sub.types.is_empty() || sub.types.contains(resource_type))
                        && (single || sub.rooms.contains(room))
                });
                if live {
                    if let Some(seen) = seen.as_mut() {
                        seen.insert(*id);
                    }
                    out.push(member.handle.clone());
                }
            }
        }
        out
    }

    /// Closes every socket of a session (signed out or revoked).
    pub fn close_session(&self, session_id: &str, code: u16, reason: &'static str) {
        let registry = self.lock();
        for member in registry.members.values() {
            if member.handle.user.session_id == session_id {
                member.handle.close(CloseOrder { code, reason });
            }
        }
    }

    /// Closes every socket with 1001 once its queue is written.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let registry = self.lock();
        for member in registry.members.values() {
            member.handle.close(CloseOrder {
                code: app::wire::CLOSE_GOING_AWAY,
                reason: "server shutting down",
            });
        }
    }

    pub fn connections(&self) -> usize {
        self.lock().members.len()
    }

    /// Open sockets of user `user_id`: a socket leaves the registry as soon as its close is
    /// seen, so the count drops promptly.
    pub fn sockets_of(&self, user_id: &str) -> usize {
        self.lock()
            .members
            .values()
            .filter(|member| member.handle.user.id == user_id)
            .count()
    }

    /// Copies the registry's sizes into the gauges (on scrape).
    pub fn sample_gauges(&self, metrics: &Metrics) {
        let registry = self.lock();
        metrics.rooms.set(registry.rooms.len() as i64);
        let mut per_kind: HashMap<&'static str, i64> = HashMap::new();
        for (room, members) in &registry.rooms {
            let kind = match room.split_once(':').map(|(kind, _)| kind) {
                Some("patient") => "patient",
                Some("unit") => "unit",
                Some("pharmacy") => "pharmacy",
                _ => "facility",
            };
            *per_kind.entry(kind).or_default() += members.len() as i64;
        }
        for kind in ["patient", "unit", "pharmacy", "facility"] {
            metrics
                .room_members
                .get_or_create(&vec![("kind", kind)])
                .set(per_kind.get(kind).copied().unwrap_or(0));
        }
        let depth: usize = registry
            .members
            .values()
            .map(|m| m.handle.queue.max_capacity() - m.handle.queue.capacity())
            .sum();
        metrics.queue_depth.set(depth as i64);
        metrics.connections_open.set(registry.members.len() as i64);

        // How many users are connected, never who: user ids stay out of the labels.
        let users: HashSet<&str> = registry
            .members
            .values()
            .map(|member| member.handle.user.id.as_str())
            .collect();
        metrics.users_connected.set(users.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::identity::Role;

    fn user() -> AuthUser {
        AuthUser {
            id: "u1".into(),
            name: "U".into(),
            role: Role::Admin,
            session_id: "s1".into(),
            practitioner_id: None,
            units: vec![],
            via_cookie: false,
        }
    }

    fn sub(rooms: &[&str]) -> Sub {
        Sub {
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            types: HashSet::new(),
            live_from: None,
        }
    }

    #[test]
    fn routes_once_per_connection_and_removes_empty_rooms() {
        let hub = Hub::new(0);
        let (tx, _rx) = mpsc::channel(8);
        let (handle, _) = hub.connect(user(), tx);
        hub.subscribe(
            handle.id,
            "a",
            sub(&["patient:p1", "facility:alerts"]),
            false,
            0,
        );
        hub.subscribe(handle.id, "b", sub(&["patient:p1"]), false, 0);
        let rooms = vec!["patient:p1".to_string(), "facility:alerts".to_string()];
        assert_eq!(hub.route(1, &rooms, "Observation").len(), 1);
        assert!(hub.unsubscribe(handle.id, "a"));
        assert_eq!(
            hub.lock().rooms.len(),
            1,
            "facility:alerts has no member left"
        );
        hub.disconnect(handle.id);
        assert!(hub.lock().rooms.is_empty());
    }

    #[test]
    fn a_replaying_subscription_goes_live_only_at_the_dispatch_position() {
        let hub = Hub::new(10);
        let (tx, _rx) = mpsc::channel(8);
        let (handle, _) = hub.connect(user(), tx);
        hub.subscribe(handle.id, "a", sub(&["patient:p1"]), true, 10);
        let rooms = vec!["patient:p1".to_string()];
        assert!(hub.route(11, &rooms, "Observation").is_empty(), "replaying");
        assert!(!hub.go_live(handle.id, "a", 10), "11 was routed past it");
        assert!(hub.go_live(handle.id, "a", 11));
        assert!(hub.route(11, &rooms, "Observation").is_empty(), "no repeat");
        assert_eq!(hub.route(12, &rooms, "Observation").len(), 1);
    }

    #[test]
    fn a_live_subscription_starts_after_the_commit_head_not_the_dispatch_position() {
        let hub = Hub::new(5);
        let (tx, _rx) = mpsc::channel(8);
        let (handle, _) = hub.connect(user(), tx);
        // Committed up to 7, routed up to 5: 6 and 7 were committed before the subscription.
        hub.subscribe(handle.id, "a", sub(&["patient:p1"]), false, 7);
        let rooms = vec!["patient:p1".to_string()];
        assert!(hub.route(6, &rooms, "Observation").is_empty());
        assert!(hub.route(7, &rooms, "Observation").is_empty());
        assert_eq!(hub.route(8, &rooms, "Observation").len(), 1);
    }

    #[test]
    fn resource_type_filters_narrow_a_subscription() {
        let hub = Hub::new(0);
        let (tx, _rx) = mpsc::channel(8);
        let (handle, _) = hub.connect(user(), tx);
        let mut only_orders = sub(&["patient:p1"]);
        only_orders.types.insert("ServiceRequest".into());
        hub.subscribe(handle.id, "a", only_orders, false, 0);
        let rooms = vec!["patient:p1".to_string()];
        assert!(hub.route(1, &rooms, "Observation").is_empty());
        assert_eq!(hub.route(2, &rooms, "ServiceRequest").len(), 1);
    }
}
