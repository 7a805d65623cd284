//! The leader's connection: its one core, and the seam its two carriers plug into.
//!
//! Where it sits: in the leader tab only, between the union of every tab's interests and the
//! server. A [`Carrier`] is one way of reaching the server: the WebSocket (`link`) or, while
//! sockets keep failing, `POST /ws/poll` (`poll`). A carrier only moves frames. The core decides
//! the rest, once for both: what a received update means (forwarded to every tab, then to this
//! tab's screens), where to resume (the [`Connection`]'s union and head), and when to try again
//! (each carrier's [`Backoff`], and what a refused session means). Like centrifuge's
//! `Transport`, which lets one client core serve WebSocket, SSE and HTTP streaming.
//!
//! What it must never do: announce a position as covered before the updates up to it were handed
//! on, give up retrying, or act on an answer of a carrier that was stopped.

use std::{collections::BTreeMap, time::Duration};

use leptos::prelude::*;

use super::{
    debug::update_summary, link, link::Socket, poll, poll::Poll, reset, session_over, with, Client,
    ConnectionState, Interest, TabMessage,
};
use crate::{
    realtime::{
        backoff_ms,
        union::{Change, Holder, Union},
        Transport,
    },
    session,
    wire::{ClientMessage, Update},
};

/// The leader forgets a tab that missed this many status rounds (it vanished without `Bye`).
const MISSED_ROUNDS: u64 = 5;

/// One way of reaching the server, as the core sees it.
pub(super) trait Carrier {
    /// How the indicator names it.
    const KIND: Transport;
    /// How the debug log labels the updates it carries.
    const UPDATES: &'static str;
    /// This carrier of `connection`.
    fn of(connection: &mut Connection) -> &mut Self;
    /// Its reconnect schedule.
    fn backoff(&mut self) -> &mut Backoff;
    /// Lets go of what it has open or in flight, quietly: no close handler runs, no answer is
    /// acted on.
    fn stop(&mut self);
    /// Tries again, once its backoff has passed.
    fn retry();
}

/// A carrier's reconnect schedule: capped exponential backoff with jitter that never gives up.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// Another attempt failed: how long to wait (ms) before the next.
    pub(super) fn failed(&mut self) -> u32 {
        self.attempt += 1;
        backoff_ms(self.attempt, js_sys::Math::random())
    }

    /// Starts the schedule over: the next failure waits the shortest time.
    pub(super) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failed attempts in a row.
    pub(super) fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// The connection, held by the leader tab only.
pub(super) struct Connection {
    pub(super) union: Union,
    /// Where to resume: the log head as of the last `welcome`, `heartbeat` or poll answer.
    pub(super) head: i64,
    pub(super) state: ConnectionState,
    /// The carrier the connection is up on (or last was).
    pub(super) transport: Transport,
    pub(super) socket: Socket,
    pub(super) poll: Poll,
    /// Status rounds so far.
    pub(super) round: u64,
    /// Tabs and the last status round each answered.
    pub(super) alive: BTreeMap<String, u64>,
}

impl Connection {
    pub(super) fn new() -> Self {
        Self {
            union: Union::default(),
            head: 0,
            state: ConnectionState::Connecting,
            transport: Transport::WebSocket,
            socket: Socket::new(),
            poll: Poll::new(),
            round: 0,
            alive: BTreeMap::new(),
        }
    }

    /// Carrier `C` reached the server: its schedule starts over, and the connection is up on it.
    pub(super) fn up<C: Carrier>(&mut self) {
        C::of(self).backoff().reset();
        self.state = ConnectionState::Connected;
        self.transport = C::KIND;
    }

    /// Stops both carriers (this tab no longer leads).
    pub(super) fn stop(&mut self) {
        self.socket.stop();
        self.poll.stop();
    }

    /// A sign-out is under way: both carriers stop, and neither retries until told to.
    pub(super) fn stop_for_sign_out(&mut self) {
        self.stop();
        self.socket.cancel_retry();
        self.state = ConnectionState::Idle;
    }

    /// The next status round, with this tab (`me`) alive in it; what forgetting the tabs that
    /// stopped answering changes in the union.
    pub(super) fn next_round(&mut self, me: String) -> (u64, Vec<Change>) {
        self.round += 1;
        let round = self.round;
        self.alive.insert(me, round);
        let gone: Vec<String> = self
            .alive
            .iter()
            .filter(|(_, answered)| **answered + MISSED_ROUNDS < round)
            .map(|(tab, _)| tab.clone())
            .collect();
        let mut changes = Vec::new();
        for tab in gone {
            changes.extend(self.forget_tab(&tab));
        }
        (round, changes)
    }

    /// Screen `id` of another tab shows `interest` (that tab is alive, then).
    pub(super) fn hold(
        &mut self,
        tab: String,
        id: String,
        nonce: u64,
        interest: Interest,
        after_seq: Option<i64>,
    ) -> Vec<Change> {
        self.alive.insert(tab.clone(), self.round);
        let holder = Holder {
            tab,
            watch: id,
            nonce,
        };
        self.union.hold(holder, interest, after_seq)
    }

    /// Tab `tab` is gone: its screens let go.
    pub(super) fn forget_tab(&mut self, tab: &str) -> Vec<Change> {
        self.alive.remove(tab);
        self.union.release_tab(tab)
    }
}

impl Client {
    /// Carries out what a change to the union asks of the connection and the tabs.
    pub(super) fn apply(&mut self, changes: Vec<Change>) {
        let mut repoll = false;
        for change in changes {
            match change {
                Change::Subscribe(id) => {
                    let Some(connection) = self.connection.as_mut() else {
                        continue;
                    };
                    if connection.socket.welcomed() {
                        link::subscribe(connection, &id);
                    } else if connection.poll.active {
                        // The poll carries the whole union: ask again with it.
                        repoll = true;
                    }
                }
                Change::Unsubscribe(id) => {
                    if let Some(connection) = self.connection.as_ref() {
                        connection.socket.send(&[ClientMessage::Unsubscribe {
                            subscription_id: id,
                        }]);
                    }
                }
                Change::Confirm { holders, after_seq } => {
                    self.post(&TabMessage::Confirmed {
                        holders: holders.clone(),
                        after_seq,
                    });
                    self.confirm(&holders, after_seq);
                }
            }
        }
        if repoll {
            set_timeout(poll::poll, Duration::ZERO);
        }
    }

    /// Carrier `C` received `update`: into the debug log.
    pub(super) fn log_update<C: Carrier>(&mut self, update: &Update) {
        self.log_frame(C::UPDATES, Some(update.seq), update_summary(update));
    }

    /// Hands updates on, whichever carrier brought them: to every other tab (`texts`, their
    /// frames' JSON) and to this tab's screens. `covered`: everything up to here has now been
    /// forwarded for every confirmed interest.
    pub(super) fn forward(
        &mut self,
        texts: Vec<String>,
        updates: Vec<Update>,
        covered: Option<i64>,
    ) {
        self.post(&TabMessage::Frames { texts, covered });
        self.receive_updates(updates, covered);
    }

    /// The server cannot replay the gap: every tab reloads.
    pub(super) fn reset_all(&mut self) {
        self.post(&TabMessage::Reset);
        reset();
    }
}

/// The server refused the session on carrier `C`: renew it and try again on `C`, or, when it
/// cannot be renewed, end it for every tab.
pub(super) async fn refresh_session<C: Carrier>() {
    if session::refresh().await == Some(false) {
        session_over();
    } else {
        C::retry();
    }
}

/// Do not wait for the backoff: the socket tries at once, and the poll asks again.
pub(super) fn reconnect_now() {
    let idle = with(|c| {
        c.connection
            .as_mut()
            .is_some_and(|connection| connection.socket.restart())
    });
    if idle {
        link::connect();
    }
    if with(|c| {
        c.connection
            .as_ref()
            .is_some_and(|connection| connection.poll.active)
    }) {
        poll::poll();
    }
}
