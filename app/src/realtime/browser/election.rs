//! The election: which tab of the user holds the connection.
//!
//! With Web Locks, the tab that holds an exclusive lock (kept for the tab's life, so a closed or
//! crashed tab hands it on at once) leads. Without them, tabs claim the lead on the channel; the
//! lowest id wins a tie, and a follower that stops hearing the leader claims it.
//!
//! What it must never do: leave two tabs leading (without Web Locks the higher id steps down as
//! soon as it hears the other), or a follower registered with a leader that is gone.

use std::time::Duration;

use leptos::prelude::*;
use serde_json::json;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};

use super::{link, now_ms, transport::Connection, wall_ms, with, Client, Role, TabMessage};
use crate::realtime::ConnectionState;

/// Without Web Locks: a follower that has not heard the leader for this long claims the lead.
const LEADER_SILENCE_MS: f64 = 2_500.0;
/// Without Web Locks: how long a claim waits for a better claim before it takes the lead.
const CLAIM_WAIT_MS: u64 = 150;
/// Without Web Locks: how long a new tab waits for a leader to answer its `Hello`.
const HELLO_WAIT_MS: u64 = 300;

/// What this tab knows of the election.
pub(super) struct Election {
    /// Whether the election uses Web Locks (else claims on the channel).
    pub(super) locks: bool,
    pub(super) role: Role,
    /// The leader this tab knows of, and the one it last sent its interests to.
    pub(super) leader: Option<String>,
    pub(super) registered_with: Option<String>,
    leader_heard_at: f64,
    claiming: bool,
}

impl Election {
    pub(super) fn new() -> Self {
        Self {
            locks: false,
            role: Role::Electing,
            leader: None,
            registered_with: None,
            leader_heard_at: 0.0,
            claiming: false,
        }
    }

    /// Without Web Locks, a follower forgets a leader it has not heard for a while: true when it
    /// should claim the lead.
    pub(super) fn forget_silent_leader(&mut self) -> bool {
        let silent = now_ms() - self.leader_heard_at > LEADER_SILENCE_MS;
        if !self.locks && !self.claiming && silent {
            self.leader = None;
            return true;
        }
        false
    }
}

/// Asks for the leader lock; without Web Locks, claims the lead if no leader answers `Hello`.
pub(super) fn elect() {
    let lock = with(|c| format!("rounds-realtime-leader:{}", c.user));
    let locks = request_lock(&lock, become_leader);
    with(|c| c.election.locks = locks);
    if !locks {
        // Election on the channel: a leader answers `Hello` at once; silence means there is none.
        set_timeout(
            || {
                if with(|c| c.election.leader.is_none() && c.election.role != Role::Leader) {
                    claim();
                }
            },
            Duration::from_millis(HELLO_WAIT_MS),
        );
    }
}

/// Asks for the leader lock; `granted` runs when this tab gets it, which it then keeps for its
/// life. False when the browser has no Web Locks.
fn request_lock(name: &str, granted: fn()) -> bool {
    let navigator = window().navigator();
    let Ok(locks) = js_sys::Reflect::get(&navigator, &JsValue::from_str("locks")) else {
        return false;
    };
    if locks.is_undefined() || locks.is_null() {
        return false;
    }
    let Some(request) = js_sys::Reflect::get(&locks, &JsValue::from_str("request"))
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    else {
        return false;
    };
    let callback = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
        granted();
        // Held until the tab goes away: a promise that never settles.
        js_sys::Promise::new(&mut |_, _| {}).into()
    });
    request
        .call2(&locks, &JsValue::from_str(name), &callback)
        .is_ok()
}

/// Without Web Locks: announce a claim and take the lead unless a better one is heard.
pub(super) fn claim() {
    let claiming = with(|c| {
        if c.election.claiming || c.election.role == Role::Leader {
            return false;
        }
        c.election.claiming = true;
        let tab = c.tab.clone();
        c.post(&TabMessage::Claim { tab });
        true
    });
    if claiming {
        set_timeout(
            || {
                let won = with(|c| std::mem::replace(&mut c.election.claiming, false));
                if won {
                    become_leader();
                }
            },
            Duration::from_millis(CLAIM_WAIT_MS),
        );
    }
}

/// This tab now holds the connection.
pub(super) fn become_leader() {
    with(|c| {
        if c.election.role == Role::Leader {
            return;
        }
        c.election.role = Role::Leader;
        c.election.claiming = false;
        c.election.leader = Some(c.tab.clone());
        c.election.registered_with = Some(c.tab.clone());
        c.milestones.leader_since = Some(wall_ms());
        c.connection = Some(Connection::new());
        let tab = c.tab.clone();
        c.log_event(
            "elected",
            json!({ "election": if c.election.locks { "web-locks" } else { "channel" } }),
        );
        c.register_all();
        c.post(&TabMessage::Leader { tab, to: None });
        c.publish_status();
    });
    link::connect();
}

/// Without Web Locks two tabs may both lead for a moment: the higher id gives way.
fn step_down(c: &mut Client) {
    if let Some(mut connection) = c.connection.take() {
        connection.stop();
    }
    c.election.role = Role::Follower;
    c.milestones.leader_since = None;
    c.log_event("stepped down", json!({}));
}

/// A tab says it leads. `addressed`: it asked this tab to (re)register its interests.
pub(super) fn heard_leader(tab: String, addressed: bool) {
    with(|c| {
        if tab == c.tab {
            return;
        }
        if c.election.role == Role::Leader {
            // Only without Web Locks can two tabs lead: the lower id keeps the lead.
            if tab < c.tab {
                step_down(c);
            } else {
                let me = c.tab.clone();
                c.post(&TabMessage::Leader { tab: me, to: None });
                return;
            }
        }
        let election = &mut c.election;
        election.leader_heard_at = now_ms();
        election.claiming = false;
        let new_leader = election.leader.as_deref() != Some(tab.as_str());
        election.leader = Some(tab.clone());
        election.role = Role::Follower;
        if addressed || new_leader || election.registered_with.as_deref() != Some(tab.as_str()) {
            election.registered_with = Some(tab);
            c.register_all();
        }
    });
}

/// Another tab claims the lead (election without Web Locks): the leader answers that it leads;
/// a claim from a lower id beats this tab's own.
pub(super) fn heard_claim(c: &mut Client, tab: &str) {
    if c.election.role == Role::Leader {
        let me = c.tab.clone();
        c.post(&TabMessage::Leader { tab: me, to: None });
    } else if c.election.claiming && tab < c.tab.as_str() {
        c.election.claiming = false;
    }
}

/// The leader `tab` is closing: without Web Locks, claim its place (with them, the lock passes
/// to the next tab by itself).
pub(super) fn heard_resign(tab: &str) {
    let lost = with(|c| {
        if c.election.leader.as_deref() != Some(tab) {
            return false;
        }
        c.election.leader = None;
        c.bus.state = ConnectionState::Reconnecting;
        !c.election.locks
    });
    if lost {
        claim();
    }
}
