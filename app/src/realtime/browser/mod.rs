//! The browser side of the realtime client: the election, the channel between tabs, the leader's
//! connection (WebSocket, or long-polling when sockets keep failing), and each tab's screens.
//!
//! One part per module, each with its own state, all owned by one `Client` per page:
//! - `election`: which tab leads (Web Locks, or claims on the channel);
//! - `bus`: what the tabs tell each other on the BroadcastChannel;
//! - `transport`: the leader's connection, the core its carriers share (what a frame means,
//!   where to resume, when to try again), and the `Carrier` seam;
//! - `link` (the WebSocket) and `poll` (`POST /ws/poll`): the two carriers;
//! - `screens`: each tab's screens, their interests, de-duplication and the batch per frame;
//! - `debug`: the message log and `window.__ROUNDS_DEBUG__`.
//!
//! The `Client` lives behind a `RefCell`. Only entry points (the public functions, socket and
//! channel events, timers, fetch completions) borrow it, through [`with`]; nothing that can call
//! back runs during a borrow: the screens' handlers run outside it from the animation frame, and
//! the screens' signals are written after it ends (skipped when the screen that owned them is
//! gone). A page outlives its screens, so the client must never assume that what it was given is
//! still there: closed, disposed and signed-out states are no-ops.

mod bus;
mod debug;
mod election;
mod link;
mod poll;
mod screens;
mod transport;

use std::{cell::RefCell, rc::Rc, time::Duration};

use leptos::prelude::*;
use serde_json::json;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};

use super::{ConnectionState, Handler, Interest, Realtime, Role, TabMessage};
use crate::{session, wire};
use bus::Bus;
use debug::Log;
use election::Election;
use screens::{catch_up_id, LocalWatch, Screens};
use transport::Connection;

/// How long tabs wait for `SignedOut` after `SigningOut` before they carry on (the sign-out
/// failed, or the tab that asked for it went away).
const SIGN_OUT_WAIT_MS: f64 = 5_000.0;

/// The page's realtime client: who this tab is, and the parts it owns.
struct Client {
    tab: String,
    user: String,
    realtime: Realtime,
    started: bool,
    /// Since when (ms) a tab of this user is signing out: no socket, no poll, no refresh.
    signing_out: Option<f64>,
    bus: Bus,
    election: Election,
    /// The connection, held by the leader tab only.
    connection: Option<Connection>,
    screens: Screens,
    milestones: Milestones,
    log: Log,
}

/// Wall-clock times (ms since the epoch) for the debug view and the failover measurements.
#[derive(Default)]
struct Milestones {
    leader_since: Option<f64>,
    connected_at: Option<f64>,
    resumed_at: Option<f64>,
}

impl Client {
    fn new() -> Self {
        Self {
            tab: String::new(),
            user: String::new(),
            realtime: Realtime::new(),
            started: false,
            signing_out: None,
            bus: Bus::new(),
            election: Election::new(),
            connection: None,
            screens: Screens::new(),
            milestones: Milestones::default(),
            log: Log::default(),
        }
    }

    /// What the indicator shows: the browser's own offline state first, then the connection's,
    /// as *receiving* while updates wait for the screen or a replay runs.
    fn indicator(&self) -> ConnectionState {
        if self.signing_out.is_some() {
            ConnectionState::Idle
        } else if !online() {
            ConnectionState::Offline
        } else if self.election.role == Role::Follower && self.election.leader.is_none() {
            ConnectionState::Reconnecting
        } else if self.bus.state.is_up() && self.screens.busy() {
            ConnectionState::Receiving
        } else {
            self.bus.state
        }
    }
}

thread_local! {
    static CLIENT: Rc<RefCell<Client>> = Rc::new(RefCell::new(Client::new()));
}

fn client() -> Rc<RefCell<Client>> {
    CLIENT.with(Rc::clone)
}

/// Runs `f` on the page's client, then shows the outcome on the screens' signals (after the
/// borrow ends, so that nothing they trigger can find the client borrowed).
fn with<R: Default>(f: impl FnOnce(&mut Client) -> R) -> R {
    let client = client();
    let Ok(mut borrowed) = client.try_borrow_mut() else {
        // Only a callback into the client from inside it could get here. Doing nothing keeps the
        // page alive (a panic would end it: `panic = "abort"`); the warning makes it visible.
        web_sys::console::warn_1(&JsValue::from_str(
            "rounds realtime: re-entered while busy; call ignored",
        ));
        return R::default();
    };
    let result = f(&mut borrowed);
    let (realtime, state, role, transport) = (
        borrowed.realtime,
        borrowed.indicator(),
        borrowed.election.role,
        borrowed.bus.transport,
    );
    drop(borrowed);
    show(realtime.state, state);
    show(realtime.role, role);
    show(realtime.transport, transport);
    result
}

/// Writes `value` to a screen's signal if it differs; a signal whose screen is gone is skipped.
fn show<T: Clone + PartialEq + Send + Sync + 'static>(signal: RwSignal<T>, value: T) {
    if signal
        .try_get_untracked()
        .is_some_and(|shown| shown != value)
    {
        signal.try_set(value);
    }
}

/// Shows the current state (the browser went offline, say).
fn refresh_indicator() {
    with(|_| ());
}

fn now_ms() -> f64 {
    window().performance().map(|p| p.now()).unwrap_or(0.0)
}

fn wall_ms() -> f64 {
    js_sys::Date::now()
}

fn online() -> bool {
    window().navigator().on_line()
}

fn listen(target: &web_sys::EventTarget, event: &str, f: impl FnMut() + 'static) {
    let closure = Closure::<dyn FnMut()>::new(f);
    let _ = target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    // Listening for the page's whole life.
    closure.forget();
}

// ---------------------------------------------------------------------------------------------
// The public API

/// Starts the page's client (once): joins the tabs of `user`, elects or finds the leader.
pub fn start(realtime: Realtime, user: &str) {
    let first = with(|c| {
        if c.started {
            return false;
        }
        c.started = true;
        c.realtime = realtime;
        c.user = user.to_owned();
        c.tab = format!(
            "{:x}{:06x}",
            wall_ms() as u64 % 0xff_ffff,
            (js_sys::Math::random() * 16_777_215.0) as u64
        );
        true
    });
    if !first {
        return;
    }
    debug::install_hook();
    let window = window();
    listen(&window, "online", nudge);
    listen(&window, "offline", refresh_indicator);
    if let Some(document) = window.document() {
        let visible = document.clone();
        listen(&document, "visibilitychange", move || {
            if !visible.hidden() {
                nudge();
            }
        });
    }
    listen(&window, "pagehide", || {
        with(|c| {
            let tab = c.tab.clone();
            if c.election.role == Role::Leader {
                c.post(&TabMessage::Resign { tab });
                if let Some(connection) = c.connection.as_mut() {
                    connection.socket.drop_socket();
                }
            } else {
                c.post(&TabMessage::Bye { tab });
            }
        })
    });

    if !bus::open() {
        // No channel at all: this tab is on its own and leads itself.
        election::become_leader();
        return;
    }
    election::elect();
    set_interval(tick, Duration::from_secs(1));
}

/// Declares (or replaces) what the screen `id` shows. `after_seq`: the log position its data
/// was loaded at, to replay from; `None` keeps the screen's cursor (new: live from now).
pub fn watch(id: &str, interest: Interest, after_seq: Option<i64>) {
    with(|c| {
        let cursor = after_seq.or_else(|| c.screens.watches.get(id).and_then(|w| w.cursor));
        c.forget(&catch_up_id(id));
        let watch = LocalWatch::new(interest, cursor, c.screens.nonce());
        c.screens.watches.insert(id.to_owned(), watch);
        c.register(id);
    });
}

/// The screen `id` shows other types of the same rooms, from the same data (a chart's tab
/// switch). Each type resumes from its own position: the types it keeps stay live with nothing
/// replayed, and only the types it adds are replayed, each from where the screen last showed it
/// (or from where its data was loaded), by a catch-up watch that goes away when its replay is
/// done. An unknown `id`, or types "all" (empty) on either side, re-register from the cursor.
pub fn show_types(id: &str, resource_types: Vec<String>) {
    with(|c| c.show_types(id, resource_types));
}

/// The screen `id` is gone: leave its rooms.
pub fn unwatch(id: &str) {
    with(|c| {
        c.forget(&catch_up_id(id));
        c.forget(id);
    });
}

/// This tab signs the user out: every tab of the user stops its connection now (so that none
/// reconnects or refreshes into the ending session), and waits for [`signed_out`].
pub fn signing_out() {
    with(|c| {
        c.post(&TabMessage::SigningOut);
        stop_for_sign_out(c);
    });
}

/// The server ended the session: every other tab leaves for the sign-in page.
pub fn signed_out() {
    with(|c| c.post(&TabMessage::SignedOut));
}

/// Signing out failed (the server could not be reached): carry on in this tab; the others do
/// when their wait is over.
pub fn sign_out_failed() {
    with(|c| c.signing_out = None);
    transport::reconnect_now();
}

/// Registers a handler for each frame's batch; `alerts` handlers run before the others.
pub fn on_updates(alerts: bool, handler: Handler) -> u64 {
    with(|c| c.screens.add_handler(alerts, handler))
}

/// Removes the handler that [`on_updates`] returned `id` for.
pub fn off(id: u64) {
    with(|c| c.screens.remove_handler(id));
}

/// The client's state as JSON: what `window.__ROUNDS_DEBUG__` and the debug view show.
pub fn debug_snapshot() -> serde_json::Value {
    with(|c| c.snapshot())
}

// ---------------------------------------------------------------------------------------------
// The client's clock, and what every part must stop for

/// What a tick found that needs more than the client's state.
#[derive(Default)]
enum Tick {
    #[default]
    Nothing,
    /// A sign-out announced by another tab never finished: connect again.
    SignOutAbandoned,
    /// Without Web Locks, the leader has gone silent: claim the lead.
    Claim,
    /// The socket did not answer the watchdog's ping.
    DeadSocket,
}

/// Once a second: the sign-out wait, the leader's silence, and in the leader the status round
/// (forgetting tabs that stopped answering) and the socket's watchdog.
fn tick() {
    let found = with(|c| {
        if c.signing_out
            .is_some_and(|since| now_ms() - since > SIGN_OUT_WAIT_MS)
        {
            c.signing_out = None;
            c.log_event("sign-out abandoned", json!({}));
            return Tick::SignOutAbandoned;
        }
        if c.election.role != Role::Leader {
            if c.started && c.election.forget_silent_leader() {
                return Tick::Claim;
            }
            return Tick::Nothing;
        }
        let me = c.tab.clone();
        let Some(connection) = c.connection.as_mut() else {
            return Tick::Nothing;
        };
        let (round, changes) = connection.next_round(me);
        let found = if connection.socket.watchdog(round) {
            Tick::DeadSocket
        } else {
            Tick::Nothing
        };
        c.apply(changes);
        c.publish_status();
        found
    });
    match found {
        Tick::Nothing => {}
        Tick::SignOutAbandoned => transport::reconnect_now(),
        Tick::Claim => election::claim(),
        Tick::DeadSocket => {
            with(|c| c.log_event("watchdog", json!({ "reason": "no pong" })));
            link::closed(wire::CLOSE_GOING_AWAY, false);
        }
    }
}

/// The network came back or a tab became visible: the leader retries at once.
fn nudge() {
    let leader = with(|c| {
        if c.election.role != Role::Leader {
            c.post(&TabMessage::Nudge);
        }
        c.election.role == Role::Leader
    });
    if leader {
        transport::reconnect_now();
    }
}

/// A sign-out is under way: drop the socket and the poll, quietly (no 4401, no refresh).
fn stop_for_sign_out(c: &mut Client) {
    c.signing_out = Some(now_ms());
    if let Some(connection) = c.connection.as_mut() {
        connection.stop_for_sign_out();
    }
    c.publish_status();
}

/// The server cannot replay the gap: what the page shows is stale. Load it again.
fn reset() {
    let _ = window().location().reload();
}

/// The server refused the session and a refresh could not renew it: every tab of the user
/// leaves for the sign-in page (they share the cookies, so the session is over for all).
fn session_over() {
    with(|c| {
        stop_for_sign_out(c);
        c.post(&TabMessage::SignedOut);
    });
    session::leave();
}
