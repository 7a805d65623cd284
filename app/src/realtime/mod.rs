//! The browser's realtime client: ONE WebSocket per browser (per user), shared by every tab.
//!
//! Where it sits: step 5 of the event path, in the browser. Screens declare what they show as
//! *interests* (patient rooms, other rooms, resource types) together with the log `seq` their data
//! was loaded at, and register handlers that get every new `update` once, batched per animation
//! frame with alerts first.
//!
//! How the tabs share one connection (`browser/`):
//! - **Election.** The tabs of one user elect a *leader* with the Web Locks API (an exclusive lock
//!   held for the tab's life, so a closed or crashed tab hands it on at once), or, where Web Locks
//!   is missing, with claims and heartbeats on the BroadcastChannel.
//! - **Sharing.** The leader owns the socket. Every tab (the leader too) sends its screens'
//!   interests to the leader, which subscribes to their reference-counted union (`union.rs`) and
//!   posts every frame to all tabs on the BroadcastChannel. Each tab keeps what its screens show.
//! - **Resume without loss.** Each screen's interest has a cursor: the `seq` up to which its tab
//!   holds everything. A new leader gets every tab's interests with their cursors and subscribes
//!   from them, so nothing is skipped; what comes twice is dropped by `seq` in each tab.
//! - **Failure.** Capped exponential backoff with jitter that never gives up; a pong watchdog for
//!   half-open sockets; immediate retry when the browser comes online or a tab becomes visible; a
//!   4401 refreshes the session and resumes; `reset` reloads; and when sockets keep failing (a proxy
//!   that blocks upgrades) the leader long-polls `POST /ws/poll` until a socket works again.
//!
//! What it must never do: hand an update to the screens twice, skip one, or stop trying.

use std::{
    collections::{BTreeMap, BTreeSet},
    rc::Rc,
};

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::wire::Update;

pub mod union;

/// The connection's state, as the seeds' state machine names it (disconnected, connecting,
/// connected, receiving), with why it is disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Not started (the server-rendered page, before hydration), or the session is over.
    Idle,
    Connecting,
    /// Down, waiting to try again.
    Reconnecting,
    /// The browser reports no network.
    Offline,
    Connected,
    /// Connected, with updates arrived and not yet on screen (or a replay running).
    Receiving,
}

impl ConnectionState {
    pub fn label(self) -> &'static str {
        match self {
            ConnectionState::Idle => "Live updates: not connected",
            ConnectionState::Connecting => "Connecting…",
            ConnectionState::Reconnecting => "Reconnecting…",
            ConnectionState::Offline => "Offline",
            ConnectionState::Connected | ConnectionState::Receiving => "Live",
        }
    }

    /// The state machine's name for it.
    pub fn machine(self) -> &'static str {
        match self {
            ConnectionState::Idle | ConnectionState::Reconnecting | ConnectionState::Offline => {
                "disconnected"
            }
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Receiving => "receiving",
        }
    }

    /// The CSS class of the indicator.
    pub fn class(self) -> &'static str {
        match self {
            ConnectionState::Connected | ConnectionState::Receiving => "connection connected",
            ConnectionState::Idle => "connection idle",
            ConnectionState::Offline => "connection offline",
            ConnectionState::Connecting | ConnectionState::Reconnecting => {
                "connection reconnecting"
            }
        }
    }

    pub fn is_up(self) -> bool {
        matches!(
            self,
            ConnectionState::Connected | ConnectionState::Receiving
        )
    }
}

/// Whether this tab holds the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Not yet known: the election has not answered.
    Electing,
    Leader,
    Follower,
}

/// How the leader reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    WebSocket,
    /// `POST /ws/poll`, while WebSockets cannot be established.
    Polling,
}

/// The indicator's second line: whose connection this tab uses, and how.
pub fn role_label(role: Role, transport: Transport) -> String {
    let who = match role {
        Role::Electing => "finding the connection",
        Role::Leader => "this tab holds the connection",
        Role::Follower => "sharing another tab's connection",
    };
    match transport {
        Transport::WebSocket => who.to_owned(),
        Transport::Polling => format!("{who} · HTTP polling"),
    }
}

/// The signals the screens read.
#[derive(Debug, Clone, Copy)]
pub struct Realtime {
    pub state: RwSignal<ConnectionState>,
    pub role: RwSignal<Role>,
    pub transport: RwSignal<Transport>,
    /// The highest `seq` handed to the screens.
    pub last_seq: RwSignal<i64>,
}

impl Default for Realtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Realtime {
    pub fn new() -> Self {
        Self {
            state: RwSignal::new(ConnectionState::Idle),
            role: RwSignal::new(Role::Electing),
            transport: RwSignal::new(Transport::WebSocket),
            last_seq: RwSignal::new(0),
        }
    }
}

/// What one screen wants delivered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Interest {
    /// Patients whose `patient:{id}` rooms to join.
    pub patient_ids: Vec<String>,
    /// Other rooms: `facility:alerts`, `pharmacy:queue`, `unit:{id}`.
    pub rooms: Vec<String>,
    /// Only these resource types (empty: all).
    pub resource_types: Vec<String>,
}

impl Interest {
    /// The same interest with its lists sorted and without repeats, so equal interests compare
    /// equal however they were written.
    pub fn normalized(mut self) -> Self {
        for list in [
            &mut self.patient_ids,
            &mut self.rooms,
            &mut self.resource_types,
        ] {
            list.sort();
            list.dedup();
        }
        self
    }

    /// Whether `update` is something this interest shows: it was routed to one of its rooms and
    /// is of one of its types. (The shared connection carries every tab's interests.)
    pub fn matches(&self, update: &Update) -> bool {
        let in_rooms = update.rooms.iter().any(|room| {
            self.rooms.contains(room)
                || room
                    .strip_prefix("patient:")
                    .is_some_and(|patient| self.patient_ids.iter().any(|p| p == patient))
        });
        in_rooms
            && (self.resource_types.is_empty()
                || self.resource_types.contains(&update.resource_type))
    }
}

/// What tabs tell each other on the BroadcastChannel `rounds-realtime:{user}` (as JSON text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TabMessage {
    /// A tab started: the leader answers with `Leader { to: that tab }`.
    Hello {
        tab: String,
    },
    /// `tab` holds the connection; every tab addressed (`to`, or all) registers its interests.
    Leader {
        tab: String,
        to: Option<String>,
    },
    /// A screen of `tab` shows `interest`, holding everything up to `after_seq`.
    Watch {
        tab: String,
        id: String,
        nonce: u64,
        interest: Interest,
        after_seq: Option<i64>,
    },
    Unwatch {
        tab: String,
        id: String,
    },
    /// The tab is closing: its screens let go.
    Bye {
        tab: String,
    },
    /// The leader's connection, on every change and once a second (`round` counts them; tabs
    /// answer with `Alive` so that the leader can forget tabs that vanished without `Bye`).
    Status {
        tab: String,
        state: ConnectionState,
        transport: Transport,
        round: u64,
    },
    Alive {
        tab: String,
        round: u64,
    },
    /// Server frames (`update` frames' JSON text, as received), then: everything up to `covered`
    /// has now been forwarded for every confirmed interest.
    Frames {
        texts: Vec<String>,
        covered: Option<i64>,
    },
    /// These registrations are covered from `after_seq` on.
    Confirmed {
        holders: Vec<union::Holder>,
        after_seq: Option<i64>,
    },
    /// The server cannot replay the gap: every tab reloads its data.
    Reset,
    /// A follower saw the network come back or became visible: retry now.
    Nudge,
    /// Election without Web Locks: `tab` wants to lead (the lowest id wins a tie).
    Claim {
        tab: String,
    },
    /// The leader is closing (election without Web Locks).
    Resign {
        tab: String,
    },
    /// A tab is signing the user out: stop the connection (no reconnect, no refresh) and wait
    /// for `SignedOut` (or carry on after a few seconds without it).
    SigningOut,
    /// The session is over: leave for the sign-in page, keeping nothing.
    SignedOut,
}

/// Where each resource type of a screen stands, for a screen that changes the types it shows
/// over the same data (the chart's tabs): a type it stopped showing keeps the cursor it had
/// reached, and a type it never showed starts where the screen's data was loaded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TypeCursors {
    loaded: Option<i64>,
    hidden: BTreeMap<String, Option<i64>>,
}

/// What a change of types asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeSwitch {
    /// The types the screen missed, to replay, and from where; `None`: nothing was missed.
    pub catch_up: Option<(Vec<String>, Option<i64>)>,
    /// The positions after the change.
    pub cursors: TypeCursors,
}

impl TypeCursors {
    pub fn new(loaded: Option<i64>) -> Self {
        Self {
            loaded,
            hidden: BTreeMap::new(),
        }
    }

    /// From showing `live` (its types and cursor) while `catching_up` replays (its types and
    /// cursor), to showing `next`. A type stays live if it was live and not still catching up;
    /// every other type of `next` is missed from its own position. Empty lists mean every type:
    /// to "every type" from a narrower list, everything is replayed from the oldest position.
    pub fn switch(
        &self,
        live: (&[String], Option<i64>),
        catching_up: Option<(&[String], Option<i64>)>,
        next: &[String],
    ) -> TypeSwitch {
        let (live_types, live_cursor) = live;
        let (catching, catch_cursor) = catching_up.unwrap_or((&[], None));
        if next.is_empty() && !live_types.is_empty() {
            let oldest = self
                .hidden
                .values()
                .chain([&self.loaded, &live_cursor, &catch_cursor])
                .filter_map(|cursor| *cursor)
                .min();
            return TypeSwitch {
                catch_up: Some((Vec::new(), oldest)),
                cursors: TypeCursors::new(self.loaded),
            };
        }
        let cursor_of = |t: &String| {
            if catching.contains(t) {
                catch_cursor
            } else if live_types.contains(t) || live_types.is_empty() {
                live_cursor
            } else {
                self.hidden.get(t).copied().unwrap_or(self.loaded)
            }
        };
        let mut cursors = self.clone();
        for t in live_types.iter().chain(catching) {
            if !next.contains(t) {
                cursors.hidden.insert(t.clone(), cursor_of(t));
            }
        }
        let missed: Vec<String> = next
            .iter()
            .filter(|t| catching.contains(t) || !(live_types.contains(t) || live_types.is_empty()))
            .cloned()
            .collect();
        for t in next {
            cursors.hidden.remove(t);
        }
        let catch_up = (!missed.is_empty()).then(|| {
            let from = missed.iter().filter_map(cursor_of).min();
            (missed, from)
        });
        TypeSwitch { catch_up, cursors }
    }
}

/// Receives each frame's batch of new updates.
pub type Handler = Rc<dyn Fn(&[Update])>;

/// The updates already handed out, by `seq`: replays overlap live frames, so the same `seq` can
/// arrive twice. Bounded: the oldest are forgotten first, and anything older than what is
/// remembered counts as seen (a replay that old has been superseded by the snapshot it resumed).
#[derive(Debug, Clone, Default)]
pub struct Seen {
    seqs: BTreeSet<i64>,
}

impl Seen {
    const CAPACITY: usize = 20_000;

    /// Records `seq`; true when it is new.
    pub fn first_time(&mut self, seq: i64) -> bool {
        if self.seqs.len() >= Self::CAPACITY {
            if self.seqs.first().is_some_and(|&oldest| seq < oldest) {
                return false;
            }
            self.seqs.pop_first();
        }
        self.seqs.insert(seq)
    }
}

/// How long to wait before reconnect attempt `attempt` (1, 2, …): doubling from 500 ms, capped
/// at 30 s, with "equal jitter" (`random` in [0, 1)) so that many browsers do not return at once.
pub fn backoff_ms(attempt: u32, random: f64) -> u32 {
    let base = (500u32 << attempt.saturating_sub(1).min(6)).min(30_000);
    base / 2 + (f64::from(base / 2) * random.clamp(0.0, 1.0)) as u32
}

#[cfg(feature = "hydrate")]
mod browser;
#[cfg(feature = "hydrate")]
pub use browser::{
    debug_snapshot, off, on_updates, show_types, sign_out_failed, signed_out, signing_out, start,
    unwatch, watch,
};

// On the server the page renders once; there is nothing to connect.
#[cfg(not(feature = "hydrate"))]
pub fn start(_realtime: Realtime, _user: &str) {}
#[cfg(not(feature = "hydrate"))]
pub fn watch(_id: &str, _interest: Interest, _after_seq: Option<i64>) {}
#[cfg(not(feature = "hydrate"))]
pub fn show_types(_id: &str, _resource_types: Vec<String>) {}
#[cfg(not(feature = "hydrate"))]
pub fn unwatch(_id: &str) {}
#[cfg(not(feature = "hydrate"))]
pub fn on_updates(_alerts: bool, _handler: Handler) -> u64 {
    0
}
#[cfg(not(feature = "hydrate"))]
pub fn off(_id: u64) {}
#[cfg(not(feature = "hydrate"))]
pub fn debug_snapshot() -> serde_json::Value {
    serde_json::Value::Null
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_bounds() {
        assert_eq!(backoff_ms(1, 0.0), 250);
        assert_eq!(backoff_ms(1, 0.999), 499);
        assert_eq!(backoff_ms(2, 0.0), 500);
        assert_eq!(backoff_ms(7, 0.0), 15_000);
        assert_eq!(backoff_ms(50, 0.0), 15_000);
        assert!(backoff_ms(50, 0.999) < 30_000);
    }

    #[test]
    fn each_seq_is_handed_out_once() {
        let mut seen = Seen::default();
        assert!(seen.first_time(5));
        assert!(!seen.first_time(5), "a repeat is dropped");
        assert!(
            seen.first_time(3),
            "an older one not yet seen is new (a replay)"
        );
        assert!(seen.first_time(6));
    }

    #[test]
    fn the_seen_set_forgets_the_oldest_and_counts_older_as_seen() {
        let mut seen = Seen::default();
        for seq in 1..=Seen::CAPACITY as i64 {
            assert!(seen.first_time(seq));
        }
        assert!(seen.first_time(Seen::CAPACITY as i64 + 1));
        assert!(
            !seen.first_time(1),
            "forgotten, and older than all remembered"
        );
        assert!(!seen.first_time(Seen::CAPACITY as i64 + 1));
    }

    fn update(rooms: &[&str], resource_type: &str) -> Update {
        Update {
            seq: 1,
            action: "created".into(),
            event_type: "RESULT_AVAILABLE".into(),
            resource_type: resource_type.into(),
            resource_id: "o1".into(),
            version_id: 1,
            patient_id: Some("p1".into()),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            user_id: None,
            timestamp: "2026-11-25T00:00:00Z".into(),
            resource: serde_json::json!({}),
        }
    }

    #[test]
    fn a_tab_keeps_only_what_its_interests_show() {
        let chart = Interest {
            patient_ids: vec!["p1".into()],
            rooms: Vec::new(),
            resource_types: vec!["Observation".into()],
        };
        assert!(chart.matches(&update(&["patient:p1", "facility:alerts"], "Observation")));
        assert!(
            !chart.matches(&update(&["patient:p2"], "Observation")),
            "other patient"
        );
        assert!(
            !chart.matches(&update(&["patient:p1"], "Flag")),
            "other type"
        );
        assert!(
            !chart.matches(&update(&["patient:p10"], "Observation")),
            "a room name that only starts alike"
        );
        let queue = Interest {
            rooms: vec!["pharmacy:queue".into()],
            ..Interest::default()
        };
        assert!(queue.matches(&update(
            &["patient:p9", "pharmacy:queue"],
            "MedicationRequest"
        )));
        assert!(!queue.matches(&update(&["patient:p9"], "MedicationRequest")));
    }

    fn types(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn a_type_switch_replays_only_the_types_missed_each_from_its_own_position() {
        // The chart loaded at 10 and shows Review (Observation, Condition) live up to 200.
        let cursors = TypeCursors::new(Some(10));
        let review = types(&["Condition", "Observation"]);
        let results = types(&["DiagnosticReport", "Observation"]);
        let to_results = cursors.switch((&review, Some(200)), None, &results);
        assert_eq!(
            to_results.catch_up,
            Some((types(&["DiagnosticReport"]), Some(10))),
            "Observation stayed live: only the reports, never shown, from the snapshot"
        );
        // Back to Review at 300: Condition was last shown at 200.
        let to_review = to_results
            .cursors
            .switch((&results, Some(300)), None, &review);
        assert_eq!(to_review.catch_up, Some((types(&["Condition"]), Some(200))));
        // And to Results again at 400, while Condition still catches up (from 200): the
        // reports resume from 300, where Results was left.
        let again = to_review.cursors.switch(
            (&review, Some(400)),
            Some((&types(&["Condition"]), Some(200))),
            &results,
        );
        assert_eq!(
            again.catch_up,
            Some((types(&["DiagnosticReport"]), Some(300)))
        );
        assert_eq!(
            again.cursors.hidden.get("Condition"),
            Some(&Some(200)),
            "a type that left mid-catch-up keeps the catch-up's position"
        );
        let same = cursors.switch((&review, Some(200)), None, &review);
        assert_eq!(same.catch_up, None, "nothing new: nothing replayed");
    }

    #[test]
    fn every_type_on_either_side_falls_back_to_the_oldest_position() {
        let cursors = TypeCursors::new(Some(10));
        let narrow = types(&["Observation"]);
        let from_all = cursors.switch((&[], Some(50)), None, &narrow);
        assert_eq!(from_all.catch_up, None, "every type was live");
        let to_all = cursors.switch((&narrow, Some(50)), None, &[]);
        assert_eq!(to_all.catch_up, Some((Vec::new(), Some(10))));
    }

    #[test]
    fn tab_messages_travel_as_tagged_json() {
        let message = TabMessage::Watch {
            tab: "t1".into(),
            id: "chart".into(),
            nonce: 3,
            interest: Interest::default(),
            after_seq: Some(41),
        };
        let text = serde_json::to_string(&message).unwrap();
        assert!(text.contains(r#""kind":"watch""#), "{text}");
        assert_eq!(serde_json::from_str::<TabMessage>(&text).unwrap(), message);
        assert!(serde_json::from_str::<TabMessage>(r#"{"kind":"nope"}"#).is_err());
    }

    #[test]
    fn the_indicator_names_the_seeds_states_and_the_role() {
        assert_eq!(ConnectionState::Receiving.label(), "Live");
        assert_eq!(ConnectionState::Receiving.machine(), "receiving");
        assert_eq!(ConnectionState::Offline.machine(), "disconnected");
        assert_eq!(
            role_label(Role::Follower, Transport::WebSocket),
            "sharing another tab's connection"
        );
        assert_eq!(
            role_label(Role::Leader, Transport::Polling),
            "this tab holds the connection · HTTP polling"
        );
    }
}
