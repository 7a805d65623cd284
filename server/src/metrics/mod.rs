//! Operational metrics: the registry of every counter and gauge, rendered in the Prometheus
//! (OpenMetrics) text format. The endpoints that serve it are in [`routes`].
//!
//! Where it sits: beside the event path, never on it. The hub, the dispatcher and the connections
//! bump these counters with atomic operations; nothing here locks, allocates per event, or waits.
//! Gauges that describe the room registry (rooms, members) are sampled from the hub when scraped.
//! The metrics hold counts only, never user ids or room names.
//!
//! A leaf: the hub imports it, so it imports nothing of the crate, and `routes` (which needs the
//! application state) is declared here but not re-exported.

pub mod routes;

use std::{sync::Arc, time::Duration};

use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

/// Label set `{kind="patient"}` etc. for per-room-kind gauges.
type KindLabels = Vec<(&'static str, &'static str)>;

/// Every metric Rounds exports. Cheap to clone handles live inside; share it as `Arc<Metrics>`.
pub struct Metrics {
    registry: Registry,
    /// WebSockets open now (sampled from the hub on scrape).
    pub connections_open: Gauge,
    /// WebSockets accepted since start.
    pub connections_total: Counter,
    /// How long closed WebSockets stayed open, in seconds.
    pub connection_duration: Histogram,
    /// Subscriptions that asked for a replay (`after_seq`).
    pub resumes: Counter,
    /// Replays refused because the log no longer holds the gap (`reset` sent).
    pub resets: Counter,
    /// Frames handed to sockets (updates, heartbeats, replies).
    pub messages_sent: Counter,
    /// Update frames, by whether they were live or replayed.
    pub updates_sent: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Seconds from a write's commit on this node to its frame being flushed to a socket.
    pub delivery_latency: Histogram,
    /// Connections closed with 4408 because their queue was full.
    pub slow_consumer_closes: Counter,
    /// Events the dispatcher has routed.
    pub events_dispatched: Counter,
    /// Deliveries withheld because the recipient may not see the resource.
    pub deliveries_denied: Counter,
    /// Frames waiting in per-connection queues, summed (sampled on scrape).
    pub queue_depth: Gauge,
    /// Rooms with at least one member (sampled on scrape).
    pub rooms: Gauge,
    /// Members per room kind (sampled on scrape).
    pub room_members: Family<KindLabels, Gauge>,
    /// Client frames refused with an `error` frame or a close code.
    pub bad_frames: Counter,
    /// Users with at least one `/ws` socket open now (sampled from the hub on scrape).
    pub users_connected: Gauge,
    /// `POST /ws/poll` requests received (refused ones included).
    pub poll_requests: Counter,
    /// Long polls held now, waiting for the log to move.
    pub poll_waiting: Gauge,
    /// FHIR Subscriptions the matcher set to `error` (each is logged with its reason).
    pub subscription_errors: Counter,
}

impl Metrics {
    /// `node` names this node (`--node-id`) and `backend` its store (`sqlite` or `postgres`):
    /// `rounds_node_info{node,backend} 1`, so that every node's series can be told apart.
    pub fn new(node: &str, backend: &str) -> Arc<Self> {
        let mut registry = Registry::with_prefix("rounds");
        registry.register(
            "node",
            "The node these metrics come from",
            prometheus_client::metrics::info::Info::new(vec![
                ("node".to_owned(), node.to_owned()),
                ("backend".to_owned(), backend.to_owned()),
            ]),
        );
        let connections_open = Gauge::default();
        let connections_total = Counter::default();
        let connection_duration = Histogram::new(exponential_buckets(1.0, 4.0, 10));
        let resumes = Counter::default();
        let resets = Counter::default();
        let messages_sent = Counter::default();
        let updates_sent = Family::default();
        // 50 µs … ~3.3 s.
        let delivery_latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 17));
        let slow_consumer_closes = Counter::default();
        let events_dispatched = Counter::default();
        let deliveries_denied = Counter::default();
        let queue_depth = Gauge::default();
        let rooms = Gauge::default();
        let room_members = Family::default();
        let bad_frames = Counter::default();
        let users_connected = Gauge::default();
        let poll_requests = Counter::default();
        let poll_waiting = Gauge::default();
        let subscription_errors = Counter::default();
        registry.register(
            "ws_connections_open",
            "WebSocket connections open now",
            connections_open.clone(),
        );
        registry.register(
            "ws_connections",
            "WebSocket connections accepted",
            connections_total.clone(),
        );
        registry.register(
            "ws_connection_duration_seconds",
            "How long closed WebSocket connections were open",
            connection_duration.clone(),
        );
        registry.register(
            "ws_resumes",
            "Subscriptions that resumed with after_seq",
            resumes.clone(),
        );
        registry.register(
            "ws_resets",
            "Resumes refused with reset (gap older than the log)",
            resets.clone(),
        );
        registry.register(
            "ws_messages_sent",
            "Frames written to WebSockets",
            messages_sent.clone(),
        );
        registry.register(
            "ws_updates_sent",
            "Update frames sent, live or replayed",
            updates_sent.clone(),
        );
        registry.register(
            "ws_delivery_latency_seconds",
            "Commit (on this node) to frame flushed on the socket",
            delivery_latency.clone(),
        );
        registry.register(
            "ws_slow_consumer_closes",
            "Connections closed with 4408 because they fell behind",
            slow_consumer_closes.clone(),
        );
        registry.register(
            "events_dispatched",
            "Events routed by the dispatcher",
            events_dispatched.clone(),
        );
        registry.register(
            "ws_deliveries_denied",
            "Deliveries withheld by the access policy",
            deliveries_denied.clone(),
        );
        registry.register(
            "ws_queue_depth",
            "Frames waiting in per-connection queues",
            queue_depth.clone(),
        );
        registry.register("ws_rooms", "Rooms with members", rooms.clone());
        registry.register(
            "ws_room_members",
            "Room memberships by room kind",
            room_members.clone(),
        );
        registry.register("ws_bad_frames", "Client frames refused", bad_frames.clone());
        registry.register(
            "ws_users_connected",
            "Users with at least one WebSocket connection open now",
            users_connected.clone(),
        );
        registry.register(
            "poll_requests",
            "Long-poll requests (POST /ws/poll) received",
            poll_requests.clone(),
        );
        registry.register(
            "poll_waiting",
            "Long-poll requests held now, waiting for events",
            poll_waiting.clone(),
        );
        registry.register(
            "subscription_errors",
            "FHIR Subscriptions set to error because their notifications could not be committed",
            subscription_errors.clone(),
        );
        Arc::new(Self {
            registry,
            connections_open,
            connections_total,
            connection_duration,
            resumes,
            resets,
            messages_sent,
            updates_sent,
            delivery_latency,
            slow_consumer_closes,
            events_dispatched,
            deliveries_denied,
            queue_depth,
            rooms,
            room_members,
            bad_frames,
            users_connected,
            poll_requests,
            poll_waiting,
            subscription_errors,
        })
    }

    pub fn observe_latency(&self, latency: Duration) {
        self.delivery_latency.observe(latency.as_secs_f64());
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connected_users_are_counted_without_naming_them() {
        let metrics = Metrics::new("n", "sqlite");
        metrics.users_connected.set(2);
        let text = metrics.render();
        assert!(text.contains("rounds_ws_users_connected 2"), "{text}");
        assert!(!text.contains("user="), "{text}");
    }
}
