//! The newest committed events, kept in memory by the writer that committed them, so that the
//! log's followers (the dispatcher, the subscription matcher, long polls, resuming sockets) read
//! what was just written without a query.
//!
//! The tail is a cache of the log, never its truth. It holds a gap-free run of `seq`s that this
//! node committed, and answers a read only when it holds the event right after the reader's
//! position, or when the reader is at the tail's end and no other node shares the database (then
//! nothing newer exists). Anything else — a reader further back than the tail reaches, another
//! node's events, the moment after a commit whose outcome is unknown — is read from the database.
//!
//! An event read from the database carries the facts of its resource's newest version as they
//! are at the moment of the read (`NewestFacts`); the tail gives the same, keeping those facts per
//! resource and moving them with every write, including writes that derive no event.

use std::collections::{HashMap, VecDeque};

use super::model::{EventRecord, NewestFacts};

/// A resource's identity: (type, id).
pub(super) type Key = (String, String);

/// At most this many events are kept …
const MAX_EVENTS: usize = 8192;
/// … and at most this many bytes of their resource text.
const MAX_BYTES: usize = 16 << 20;

#[derive(Default)]
pub(super) struct Tail {
    /// Consecutive `seq`s, oldest first; their `newest` is filled in at each read.
    events: VecDeque<EventRecord>,
    /// The last `seq` committed that the tail is sure of (its newest event, or the head it
    /// started from while empty); `None` when unsure, so that nothing is answered.
    last: Option<i64>,
    bytes: usize,
    /// The newest facts of each resource with an event in the tail, and how many it has there.
    newest: HashMap<Key, (NewestFacts, usize)>,
}

impl Tail {
    /// An empty tail that knows every event up to `head` is committed (and in the database).
    pub(super) fn at(head: i64) -> Self {
        Self {
            last: Some(head),
            ..Self::default()
        }
    }

    /// The events after `after`, at most `limit`, when the tail can answer: `Some(vec![])` only
    /// when `alone` (no other node writes this log) and `after` is the last committed `seq`.
    pub(super) fn read(&self, after: i64, limit: usize, alone: bool) -> Option<Vec<EventRecord>> {
        let last = self.last?;
        let first = self.events.front().map_or(last + 1, |event| event.seq);
        if after > last || after + 1 < first {
            return None;
        }
        if after == last {
            return alone.then(Vec::new);
        }
        let start = usize::try_from(after + 1 - first).ok()?;
        Some(
            self.events
                .iter()
                .skip(start)
                .take(limit)
                .map(|event| {
                    let mut event = event.clone();
                    let key = (event.resource_type.clone(), event.resource_id.clone());
                    if let Some((facts, _)) = self.newest.get(&key) {
                        event.newest = facts.clone();
                    }
                    event
                })
                .collect(),
        )
    }

    /// Takes what one transaction committed: its events in `seq` order, and the newest facts of
    /// every resource it wrote, in write order.
    pub(super) fn push(&mut self, events: Vec<EventRecord>, written: Vec<(Key, NewestFacts)>) {
        if let Some(first) = events.first() {
            if self.last != Some(first.seq - 1) {
                // Not the continuation of what is held (another node wrote in between, or the
                // tail was unsure): start again from this commit.
                self.clear();
            }
        }
        for event in events {
            let key = (event.resource_type.clone(), event.resource_id.clone());
            let entry = self
                .newest
                .entry(key)
                .or_insert_with(|| (event.newest.clone(), 0));
            entry.1 += 1;
            self.bytes += event.resource_json.len();
            self.last = Some(event.seq);
            self.events.push_back(event);
        }
        // What the commit wrote last of each resource is its newest, whether or not that
        // write derived an event.
        for (key, facts) in written {
            if let Some((held, _)) = self.newest.get_mut(&key) {
                *held = facts;
            }
        }
        while self.events.len() > MAX_EVENTS || self.bytes > MAX_BYTES {
            self.evict_oldest();
        }
    }

    /// Forgets everything and answers nothing until the next commit: whether the last one
    /// happened is not known.
    pub(super) fn unsure(&mut self) {
        self.clear();
        self.last = None;
    }

    fn clear(&mut self) {
        self.events.clear();
        self.newest.clear();
        self.bytes = 0;
    }

    fn evict_oldest(&mut self) {
        let Some(event) = self.events.pop_front() else {
            return;
        };
        self.bytes -= event.resource_json.len();
        let key = (event.resource_type, event.resource_id);
        if let Some((_, count)) = self.newest.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                self.newest.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use app::events::{Action, EventType};

    use super::*;

    fn event(seq: i64, id: &str) -> EventRecord {
        EventRecord {
            seq,
            event_type: EventType::ResultAvailable,
            action: Action::Updated,
            resource_type: "Observation".into(),
            resource_id: id.into(),
            version_id: seq,
            patient_id: Some("p".into()),
            rooms: vec!["patient:p".into()],
            user_id: None,
            timestamp: String::new(),
            resource_json: Arc::from("{}"),
            newest: facts(false),
        }
    }

    fn facts(restricted: bool) -> NewestFacts {
        NewestFacts {
            patient_id: Some("p".into()),
            restricted,
        }
    }

    fn key(id: &str) -> Key {
        ("Observation".into(), id.into())
    }

    fn seqs(events: Option<Vec<EventRecord>>) -> Option<Vec<i64>> {
        events.map(|events| events.iter().map(|event| event.seq).collect())
    }

    #[test]
    fn answers_only_a_run_that_follows_the_position() {
        let mut tail = Tail::at(10);
        tail.push(vec![event(11, "a"), event(12, "b")], vec![]);
        assert_eq!(seqs(tail.read(10, 10, true)), Some(vec![11, 12]));
        assert_eq!(seqs(tail.read(11, 10, true)), Some(vec![12]));
        assert_eq!(seqs(tail.read(10, 1, true)), Some(vec![11]));
        // At the end: empty when alone, asked of the database when others write.
        assert_eq!(seqs(tail.read(12, 10, true)), Some(vec![]));
        assert_eq!(seqs(tail.read(12, 10, false)), None);
        // Before what it holds, and beyond what it knows.
        assert_eq!(seqs(tail.read(9, 10, true)), None);
        assert_eq!(seqs(tail.read(13, 10, true)), None);
    }

    #[test]
    fn a_gap_starts_the_tail_again_and_unsure_answers_nothing() {
        let mut tail = Tail::at(10);
        tail.push(vec![event(11, "a")], vec![]);
        // Another node committed 12.
        tail.push(vec![event(13, "a")], vec![]);
        assert_eq!(seqs(tail.read(10, 10, true)), None);
        assert_eq!(seqs(tail.read(11, 10, true)), None);
        assert_eq!(seqs(tail.read(12, 10, true)), Some(vec![13]));
        tail.unsure();
        assert_eq!(seqs(tail.read(13, 10, true)), None);
        tail.push(vec![event(15, "b")], vec![]);
        assert_eq!(seqs(tail.read(14, 10, true)), Some(vec![15]));
    }

    #[test]
    fn every_event_carries_its_resources_newest_facts_at_the_read() {
        let mut tail = Tail::at(0);
        tail.push(
            vec![event(1, "a"), event(2, "b")],
            vec![(key("a"), facts(false))],
        );
        // A later write of `a` that derives no event still restricts what was said of it.
        tail.push(vec![], vec![(key("a"), facts(true))]);
        let read = tail.read(0, 10, true).unwrap_or_default();
        assert!(read[0].newest.restricted);
        assert!(!read[1].newest.restricted);
        // Written in one commit: the last write of each resource is its newest.
        tail.push(
            vec![event(3, "c")],
            vec![(key("c"), facts(true)), (key("c"), facts(false))],
        );
        let read = tail.read(2, 10, true).unwrap_or_default();
        assert!(!read[0].newest.restricted);
    }

    #[test]
    fn the_oldest_events_leave_and_take_their_facts_with_them() {
        let mut tail = Tail::at(0);
        for seq in 1..=(MAX_EVENTS as i64 + 2) {
            tail.push(vec![event(seq, &format!("r{seq}"))], vec![]);
        }
        assert_eq!(tail.events.len(), MAX_EVENTS);
        assert_eq!(tail.newest.len(), MAX_EVENTS);
        assert_eq!(seqs(tail.read(1, 1, true)), None);
        assert_eq!(seqs(tail.read(2, 1, true)), Some(vec![3]));
    }
}
