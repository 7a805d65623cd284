//! The leader tab's subscriptions: the reference-counted union of every tab's interests.
//!
//! Where it sits: inside the tab that holds the connection (step 5 of the event path). Each screen
//! of each tab *holds* an interest; equal interests share one server subscription, which is left
//! when its last holder lets go. Each subscription has a cursor, the `seq` up to which everything
//! in its rooms has been forwarded to the tabs.
//!
//! Resume without loss: a holder arrives with the `seq` its screen's data was loaded at (or the
//! cursor it had reached under a previous leader). The subscription is (re)sent with `after_seq`
//! no later than that, so the server replays everything the new holder may have missed, and the
//! holder is *confirmed* only when the `pong` that follows that subscription comes back (or a poll
//! answer covers it). Until then its tab does not move its cursor. Cursors move only while no
//! subscription replays: replay frames can run ahead of the live stream.
//!
//! What it must never do: confirm a holder before the replay that covers it, or move a cursor past
//! an event that was not forwarded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Interest;
use crate::wire::Subscribe;

/// One screen of one tab holding an interest; `nonce` tells its registrations apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub tab: String,
    pub watch: String,
    pub nonce: u64,
}

/// What the transport must do after a change to the union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// (Re)send this subscription, followed by the ping that marks the end of its replay.
    Subscribe(String),
    /// Leave this subscription: nobody holds it any more.
    Unsubscribe(String),
    /// These holders are covered from `after_seq` on: their tabs may move their cursors again.
    Confirm {
        holders: Vec<Holder>,
        after_seq: Option<i64>,
    },
}

#[derive(Debug, Clone)]
struct Sub {
    interest: Interest,
    /// (tab, watch) → nonce of its latest registration.
    holders: BTreeMap<(String, String), u64>,
    /// Everything in these rooms up to here was forwarded; `None`: from the head when connected.
    cursor: Option<i64>,
    /// Bumped on every (re)send: only the pong of the latest send confirms.
    generation: u64,
    replaying: bool,
    /// Holders waiting for the current generation's replay.
    pending: Vec<Holder>,
    /// The `after_seq` of the latest send.
    sent_after: Option<i64>,
}

/// The subscriptions of the shared connection, by subscription id.
#[derive(Debug, Clone, Default)]
pub struct Union {
    subs: BTreeMap<String, Sub>,
    next_id: u64,
}

/// A subscription as the debug view shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubView {
    pub id: String,
    pub interest: Interest,
    pub holders: Vec<String>,
    pub cursor: Option<i64>,
    pub replaying: bool,
}

impl Union {
    /// `holder` now shows `interest`, loaded at `after_seq` (`None`: it has no data to resume).
    pub fn hold(
        &mut self,
        holder: Holder,
        interest: Interest,
        after_seq: Option<i64>,
    ) -> Vec<Change> {
        let interest = interest.normalized();
        let key = (holder.tab.clone(), holder.watch.clone());
        let mut changes = Vec::new();
        // A screen that changed what it shows lets go of its previous interest.
        let previous = self
            .subs
            .iter()
            .find(|(_, sub)| sub.holders.contains_key(&key) && sub.interest != interest)
            .map(|(id, _)| id.clone());
        if let Some(id) = previous {
            changes.extend(self.let_go(&id, &key));
        }
        let existing = self
            .subs
            .iter()
            .find(|(_, sub)| sub.interest == interest)
            .map(|(id, _)| id.clone());
        let new = existing.is_none();
        let id = existing.unwrap_or_else(|| {
            self.next_id += 1;
            let id = format!("s{}", self.next_id);
            self.subs.insert(
                id.clone(),
                Sub {
                    interest,
                    holders: BTreeMap::new(),
                    cursor: after_seq,
                    generation: 0,
                    replaying: false,
                    pending: Vec::new(),
                    sent_after: None,
                },
            );
            id
        });
        let Some(sub) = self.subs.get_mut(&id) else {
            return changes;
        };
        sub.holders.insert(key, holder.nonce);
        let send = match after_seq {
            _ if new => true,
            // It may have missed what was forwarded before it listened: replay from its position.
            Some(after) => {
                sub.cursor = Some(sub.cursor.map_or(after, |c| c.min(after)));
                true
            }
            // Nothing to resume: live from now is all it needs.
            None if !sub.replaying => {
                changes.push(Change::Confirm {
                    holders: vec![holder],
                    after_seq: sub.sent_after,
                });
                return changes;
            }
            // Confirmed with the replay under way.
            None => false,
        };
        if send {
            sub.generation += 1;
            sub.replaying = true;
            changes.push(Change::Subscribe(id));
        }
        sub.pending.push(holder);
        changes
    }

    /// The screen `watch` of `tab` is gone.
    pub fn release(&mut self, tab: &str, watch: &str) -> Vec<Change> {
        let key = (tab.to_owned(), watch.to_owned());
        let held: Vec<String> = self
            .subs
            .iter()
            .filter(|(_, sub)| sub.holders.contains_key(&key))
            .map(|(id, _)| id.clone())
            .collect();
        held.iter().flat_map(|id| self.let_go(id, &key)).collect()
    }

    /// The tab is gone (closed, or silent for too long): every screen of it lets go.
    pub fn release_tab(&mut self, tab: &str) -> Vec<Change> {
        let keys: Vec<(String, String)> = self
            .subs
            .values()
            .flat_map(|sub| sub.holders.keys().filter(|(t, _)| t == tab).cloned())
            .collect();
        keys.iter()
            .flat_map(|(tab, watch)| self.release(tab, watch))
            .collect()
    }

    fn let_go(&mut self, id: &str, key: &(String, String)) -> Option<Change> {
        let sub = self.subs.get_mut(id)?;
        sub.holders.remove(key);
        sub.pending
            .retain(|h| (&h.tab, &h.watch) != (&key.0, &key.1));
        if sub.holders.is_empty() {
            self.subs.remove(id);
            return Some(Change::Unsubscribe(id.to_owned()));
        }
        None
    }

    /// The message that (re)sends subscription `id` and its generation, for the ping after it.
    /// A subscription without a position starts at `head`.
    pub fn request(&mut self, id: &str, head: i64) -> Option<(Subscribe, u64)> {
        let sub = self.subs.get_mut(id)?;
        sub.cursor.get_or_insert(head);
        self.send(id)
    }

    /// Subscription `id` as sent now, from its cursor (none: from the server's head).
    fn send(&mut self, id: &str) -> Option<(Subscribe, u64)> {
        let sub = self.subs.get_mut(id)?;
        sub.sent_after = sub.cursor;
        Some((
            Subscribe {
                subscription_id: id.to_owned(),
                patient_ids: sub.interest.patient_ids.clone(),
                resource_types: sub.interest.resource_types.clone(),
                rooms: sub.interest.rooms.clone(),
                after_seq: sub.cursor,
            },
            sub.generation,
        ))
    }

    /// A new connection: every subscription is sent again from its cursor, and every holder is
    /// confirmed again when its replay is done (so each tab knows when it has resumed).
    pub fn resend_all(&mut self, head: i64) -> Vec<(Subscribe, u64)> {
        let ids: Vec<String> = self.subs.keys().cloned().collect();
        for sub in self.subs.values_mut() {
            sub.generation += 1;
            sub.replaying = true;
            sub.pending = sub
                .holders
                .iter()
                .map(|((tab, watch), nonce)| Holder {
                    tab: tab.clone(),
                    watch: watch.clone(),
                    nonce: *nonce,
                })
                .collect();
        }
        ids.iter().filter_map(|id| self.request(id, head)).collect()
    }

    /// The pong after generation `generation` of subscription `id` came back: its replay is done.
    pub fn replayed(&mut self, id: &str, generation: u64) -> Option<Change> {
        let sub = self.subs.get_mut(id)?;
        if sub.generation != generation || !sub.replaying {
            return None;
        }
        sub.replaying = false;
        Some(Change::Confirm {
            holders: std::mem::take(&mut sub.pending),
            after_seq: sub.sent_after,
        })
    }

    /// Whether every subscription is live, so that frames arrive in `seq` order.
    pub fn live(&self) -> bool {
        self.subs.values().all(|sub| !sub.replaying)
    }

    /// A live frame `seq` was forwarded: while every subscription is live, everything up to it
    /// has been. Returns whether the cursors moved (the tabs may move theirs).
    pub fn advance(&mut self, seq: i64) -> bool {
        if !self.live() {
            return false;
        }
        for sub in self.subs.values_mut() {
            sub.cursor = Some(sub.cursor.map_or(seq, |c| c.max(seq)));
        }
        true
    }

    /// The subscriptions of a poll, each from its cursor (none: from the server's head), with
    /// the generation each was sent at.
    pub fn poll_request(&mut self) -> (Vec<Subscribe>, Vec<(String, u64)>) {
        let ids: Vec<String> = self.subs.keys().cloned().collect();
        ids.iter()
            .filter_map(|id| {
                self.send(id)
                    .map(|(sub, generation)| (sub, (id.clone(), generation)))
            })
            .unzip()
    }

    /// A poll answer covered everything up to `seq` for the subscriptions it was sent with.
    /// Those still at the generation they were sent at move to `seq` and confirm their holders;
    /// one re-registered meanwhile waits for the next poll.
    pub fn polled(&mut self, sent: &[(String, u64)], seq: i64) -> Vec<Change> {
        let mut changes = Vec::new();
        for (id, generation) in sent {
            let Some(sub) = self.subs.get_mut(id) else {
                continue;
            };
            if sub.generation != *generation {
                continue;
            }
            sub.cursor = Some(sub.cursor.map_or(seq, |c| c.max(seq)));
            if sub.replaying {
                sub.replaying = false;
                changes.push(Change::Confirm {
                    holders: std::mem::take(&mut sub.pending),
                    after_seq: sub.sent_after,
                });
            }
        }
        changes
    }

    /// Whether any subscription waits for a poll to confirm it.
    pub fn waiting(&self) -> bool {
        self.subs.values().any(|sub| sub.replaying)
    }

    pub fn view(&self) -> Vec<SubView> {
        self.subs
            .iter()
            .map(|(id, sub)| SubView {
                id: id.clone(),
                interest: sub.interest.clone(),
                holders: sub
                    .holders
                    .keys()
                    .map(|(tab, watch)| format!("{tab}/{watch}"))
                    .collect(),
                cursor: sub.cursor,
                replaying: sub.replaying,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(tab: &str, watch: &str, nonce: u64) -> Holder {
        Holder {
            tab: tab.into(),
            watch: watch.into(),
            nonce,
        }
    }

    fn chart(patient: &str) -> Interest {
        Interest {
            patient_ids: vec![patient.into()],
            rooms: Vec::new(),
            resource_types: vec!["Observation".into(), "Flag".into()],
        }
    }

    fn confirmed(changes: &[Change]) -> Vec<Holder> {
        changes
            .iter()
            .flat_map(|c| match c {
                Change::Confirm { holders, .. } => holders.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn equal_interests_share_one_subscription_until_the_last_holder_leaves() {
        let mut union = Union::default();
        let first = union.hold(holder("a", "chart", 1), chart("p1"), Some(10));
        assert_eq!(first, vec![Change::Subscribe("s1".into())]);
        // Written in another order, the same interest.
        let mut same = chart("p1");
        same.resource_types.reverse();
        let second = union.hold(holder("b", "chart", 1), same, Some(12));
        assert_eq!(second, vec![Change::Subscribe("s1".into())]);
        assert_eq!(union.view().len(), 1);
        assert_eq!(union.release("a", "chart"), Vec::new());
        assert_eq!(
            union.release("b", "chart"),
            vec![Change::Unsubscribe("s1".into())]
        );
        assert!(union.view().is_empty());
    }

    #[test]
    fn a_late_holder_replays_from_its_own_position_and_is_confirmed_by_the_latest_pong() {
        let mut union = Union::default();
        union.hold(holder("a", "chart", 1), chart("p1"), Some(10));
        let (sub, first_generation) = union.request("s1", 50).unwrap();
        assert_eq!(sub.after_seq, Some(10));
        assert_eq!(
            confirmed(&[union.replayed("s1", first_generation).unwrap()]),
            vec![holder("a", "chart", 1)]
        );
        assert!(union.advance(20));
        // Tab b loaded its chart at 15, before it listened to the channel.
        union.hold(holder("b", "chart", 1), chart("p1"), Some(15));
        assert!(!union.live());
        assert!(!union.advance(30), "no cursor moves while a replay runs");
        let (sub, generation) = union.request("s1", 50).unwrap();
        assert_eq!(sub.after_seq, Some(15), "replay from the lower position");
        assert_eq!(union.replayed("s1", first_generation), None, "stale pong");
        assert_eq!(
            confirmed(&[union.replayed("s1", generation).unwrap()]),
            vec![holder("b", "chart", 1)]
        );
        assert!(union.advance(31));
        assert_eq!(union.view()[0].cursor, Some(31));
    }

    #[test]
    fn a_holder_without_a_position_is_confirmed_at_once_on_a_live_subscription() {
        let mut union = Union::default();
        union.hold(holder("a", "panel", 1), chart("p1"), Some(10));
        let (_, generation) = union.request("s1", 10).unwrap();
        union.replayed("s1", generation);
        let changes = union.hold(holder("b", "panel", 4), chart("p1"), None);
        assert_eq!(
            changes,
            vec![Change::Confirm {
                holders: vec![holder("b", "panel", 4)],
                after_seq: Some(10)
            }]
        );
    }

    #[test]
    fn changing_interest_leaves_the_old_subscription() {
        let mut union = Union::default();
        union.hold(holder("a", "chart", 1), chart("p1"), Some(10));
        let changes = union.hold(holder("a", "chart", 2), chart("p2"), Some(11));
        assert_eq!(
            changes,
            vec![
                Change::Unsubscribe("s1".into()),
                Change::Subscribe("s2".into())
            ]
        );
    }

    #[test]
    fn a_closed_tab_releases_every_screen() {
        let mut union = Union::default();
        union.hold(holder("a", "chart", 1), chart("p1"), Some(1));
        union.hold(holder("a", "alerts", 1), chart("p2"), Some(1));
        union.hold(holder("b", "alerts", 1), chart("p2"), Some(1));
        let mut changes = union.release_tab("a");
        changes.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(changes, vec![Change::Unsubscribe("s1".into())]);
        assert_eq!(union.view().len(), 1);
    }

    #[test]
    fn a_poll_confirms_only_what_it_was_sent_with() {
        let mut union = Union::default();
        union.hold(holder("a", "chart", 1), chart("p1"), Some(10));
        union.hold(holder("a", "alerts", 1), chart("p2"), Some(10));
        let (subs, sent) = union.poll_request();
        assert_eq!(subs.len(), 2);
        // While the poll is out, tab b registers on s1 from 5.
        union.hold(holder("b", "chart", 1), chart("p1"), Some(5));
        let changes = union.polled(&sent, 40);
        assert_eq!(confirmed(&changes), vec![holder("a", "alerts", 1)]);
        assert!(union.waiting());
        let view = union.view();
        assert_eq!(view[0].cursor, Some(5), "s1 keeps the lower position");
        assert_eq!(view[1].cursor, Some(40));
        let (subs, sent) = union.poll_request();
        assert_eq!(subs[0].after_seq, Some(5));
        let mut holders = confirmed(&union.polled(&sent, 41));
        holders.sort_by(|a, b| a.tab.cmp(&b.tab));
        assert_eq!(
            holders,
            vec![holder("a", "chart", 1), holder("b", "chart", 1)]
        );
        assert!(!union.waiting());
    }

    #[test]
    fn a_new_connection_resends_everything_from_the_cursors() {
        let mut union = Union::default();
        union.hold(holder("a", "chart", 1), chart("p1"), None);
        let sent = union.resend_all(77);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0.after_seq, Some(77), "no position: from the head");
        assert!(!union.live());
        let change = union.replayed("s1", sent[0].1).unwrap();
        assert_eq!(confirmed(&[change]), vec![holder("a", "chart", 1)]);
        assert!(union.advance(80));
        let again = union.resend_all(90);
        assert_eq!(again[0].0.after_seq, Some(80));
    }
}
