//! The browser side of the realtime client: the election, the channel between tabs, the leader's
//! connection (WebSocket, or long-polling when sockets keep failing), and each tab's screens.
//!
//! Everything lives in one `Client` per page behind a `RefCell`. Only entry points (the public
//! functions, socket and channel events, timers, fetch completions) borrow it, through [`with`];
//! nothing that can call back runs during a borrow: the screens' handlers run outside it from the
//! animation frame, and the screens' signals are written after it ends (skipped when the screen
//! that owned them is gone). A page outlives its screens, so the client must never assume that
//! what it was given is still there: closed, disposed and signed-out states are no-ops.

use std::{
    cell::RefCell,
    collections::{BTreeMap, VecDeque},
    rc::Rc,
    time::Duration,
};

use leptos::prelude::*;
use serde_json::json;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{BroadcastChannel, CloseEvent, MessageEvent, WebSocket};

use super::{
    backoff_ms,
    union::{Change, Holder, Union},
    ConnectionState, Handler, Interest, Realtime, Role, Seen, TabMessage, Transport, TypeCursors,
};
use crate::{
    records::alerts_first,
    session,
    wire::{self, ClientMessage, PollRequest, PollResponse, ServerMessage, Subscribe, Update},
};

/// Sockets in a row that close before `welcome` before the leader long-polls instead.
const FAILURES_BEFORE_POLLING: u32 = 3;
/// Silence on an open socket after which the leader pings it.
const PING_AFTER_MS: f64 = 10_000.0;
/// Time a watchdog ping may go unanswered before the socket counts as dead.
const PONG_WITHIN_MS: f64 = 5_000.0;
/// Without Web Locks: a follower that has not heard the leader for this long claims the lead.
const LEADER_SILENCE_MS: f64 = 2_500.0;
/// Without Web Locks: how long a claim waits for a better claim before it takes the lead.
const CLAIM_WAIT_MS: u64 = 150;
/// The leader forgets a tab that missed this many status rounds (it vanished without `Bye`).
const MISSED_ROUNDS: u64 = 5;
/// How long a poll may be held by the server.
const POLL_WAIT_MS: i64 = wire::POLL_WAIT_DEFAULT_MS as i64;
/// Messages kept for the debug view.
const LOG_SIZE: usize = 100;
/// How long tabs wait for `SignedOut` after `SigningOut` before they carry on (the sign-out
/// failed, or the tab that asked for it went away).
const SIGN_OUT_WAIT_MS: f64 = 5_000.0;
/// The suffix of the watch that replays, for a screen that changed its types, what it missed.
const CATCH_UP: &str = "+catch-up";

struct LocalWatch {
    interest: Interest,
    /// Everything in this interest up to here has reached the screens; `None`: nothing loaded.
    cursor: Option<i64>,
    /// Tells this registration's confirmation apart from an earlier one's.
    nonce: u64,
    /// Registered, and the replay that covers it not yet confirmed: the cursor stays put.
    replaying: bool,
    /// Where each type stands that the screen showed and stopped showing, and where the
    /// screen's data was loaded (for types it never showed): see [`show_types`].
    types: TypeCursors,
}

impl LocalWatch {
    fn new(interest: Interest, cursor: Option<i64>, nonce: u64) -> Self {
        Self {
            interest,
            cursor,
            nonce,
            replaying: true,
            types: TypeCursors::new(cursor),
        }
    }
}

/// The connection, held by the leader tab only.
struct Link {
    union: Union,
    socket: Option<WebSocket>,
    on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
    on_close: Option<Closure<dyn FnMut(CloseEvent)>>,
    /// Between `welcome` and the socket's close.
    welcomed: bool,
    /// The log head as of the last `welcome` or `heartbeat`.
    head: i64,
    attempt: u32,
    /// Sockets in a row that closed before `welcome`.
    failures: u32,
    retry_pending: bool,
    polling: bool,
    poll_attempt: u32,
    /// Bumped to abandon the poll in flight.
    poll_generation: u64,
    poll_abort: Option<web_sys::AbortController>,
    state: ConnectionState,
    transport: Transport,
    last_frame_at: f64,
    ping_sent_at: Option<f64>,
    round: u64,
    /// Tabs and the last status round each answered.
    alive: BTreeMap<String, u64>,
}

impl Link {
    fn new() -> Self {
        Self {
            union: Union::default(),
            socket: None,
            on_message: None,
            on_close: None,
            welcomed: false,
            head: 0,
            attempt: 0,
            failures: 0,
            retry_pending: false,
            polling: false,
            poll_attempt: 0,
            poll_generation: 0,
            poll_abort: None,
            state: ConnectionState::Connecting,
            transport: Transport::WebSocket,
            last_frame_at: 0.0,
            ping_sent_at: None,
            round: 0,
            alive: BTreeMap::new(),
        }
    }

    /// Closes the socket without running its close handler (the caller decides what follows).
    fn drop_socket(&mut self) {
        if let Some(socket) = self.socket.take() {
            socket.set_onmessage(None);
            socket.set_onclose(None);
            let _ = socket.close();
        }
        self.welcomed = false;
        self.ping_sent_at = None;
    }

    fn send(&self, messages: &[ClientMessage]) {
        let Some(socket) = self.socket.as_ref().filter(|_| self.welcomed) else {
            return;
        };
        for message in messages {
            if let Ok(text) = serde_json::to_string(message) {
                let _ = socket.send_with_str(&text);
            }
        }
    }
}

/// A subscription and the ping whose pong marks the end of its replay.
fn subscription(subscribe: Subscribe, generation: u64) -> [ClientMessage; 2] {
    let marker = format!("{}#{generation}", subscribe.subscription_id);
    [
        ClientMessage::Subscription(subscribe),
        ClientMessage::Ping(Some(json!({ "replayed": marker }))),
    ]
}

struct Client {
    tab: String,
    user: String,
    realtime: Realtime,
    started: bool,
    channel: Option<BroadcastChannel>,
    /// Whether the election uses Web Locks (else claims on the channel).
    locks: bool,
    role: Role,
    /// The leader this tab knows of, and the one it last sent its interests to.
    leader: Option<String>,
    registered_with: Option<String>,
    leader_heard_at: f64,
    claiming: bool,
    link: Option<Link>,
    /// The leader's connection state as last heard.
    link_state: ConnectionState,
    /// The leader's transport as last heard.
    transport: Transport,
    /// Since when (ms) a tab of this user is signing out: no socket, no poll, no refresh.
    signing_out: Option<f64>,
    watches: BTreeMap<String, LocalWatch>,
    next_nonce: u64,
    /// (id, alerts first?, handler)
    handlers: Vec<(u64, bool, Handler)>,
    next_handler: u64,
    seen: Seen,
    /// Updates waiting for the next animation frame, with their arrival time (ms).
    queue: Vec<(Update, f64)>,
    frame_requested: bool,
    /// Arrival-to-paint times (ms) of the last updates, for `window.__ROUNDS_PAINT__`.
    paint_ms: Vec<f64>,
    /// Frame-start-to-paint times (ms) of the last batches, for `window.__ROUNDS_RENDER__`.
    render_ms: Vec<f64>,
    applied: u64,
    log: VecDeque<serde_json::Value>,
    /// Wall-clock times (ms since the epoch) for the debug view and the failover measurements.
    leader_since: Option<f64>,
    connected_at: Option<f64>,
    resumed_at: Option<f64>,
}

thread_local! {
    static CLIENT: Rc<RefCell<Client>> = Rc::new(RefCell::new(Client {
        tab: String::new(),
        user: String::new(),
        realtime: Realtime::new(),
        started: false,
        channel: None,
        locks: false,
        role: Role::Electing,
        leader: None,
        registered_with: None,
        leader_heard_at: 0.0,
        claiming: false,
        link: None,
        link_state: ConnectionState::Connecting,
        transport: Transport::WebSocket,
        signing_out: None,
        watches: BTreeMap::new(),
        next_nonce: 0,
        handlers: Vec::new(),
        next_handler: 1,
        seen: Seen::default(),
        queue: Vec::new(),
        frame_requested: false,
        paint_ms: Vec::new(),
        render_ms: Vec::new(),
        applied: 0,
        log: VecDeque::new(),
        leader_since: None,
        connected_at: None,
        resumed_at: None,
    }));
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
        borrowed.role,
        borrowed.transport,
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
    install_debug_hook();
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
            if c.role == Role::Leader {
                c.post(&TabMessage::Resign { tab });
                if let Some(link) = c.link.as_mut() {
                    link.drop_socket();
                }
            } else {
                c.post(&TabMessage::Bye { tab });
            }
        })
    });

    let name = with(|c| format!("rounds-realtime:{}", c.user));
    match BroadcastChannel::new(&name) {
        Ok(channel) => {
            let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
                let Some(text) = event.data().as_string() else {
                    return;
                };
                if let Ok(message) = serde_json::from_str::<TabMessage>(&text) {
                    on_channel(message);
                }
            });
            channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            on_message.forget();
            with(|c| {
                c.channel = Some(channel);
                let tab = c.tab.clone();
                c.post(&TabMessage::Hello { tab });
            });
        }
        // No channel at all: this tab is on its own and leads itself.
        Err(_) => {
            become_leader();
            return;
        }
    }

    let lock = with(|c| format!("rounds-realtime-leader:{}", c.user));
    let locks = request_lock(&lock, become_leader);
    with(|c| c.locks = locks);
    if !locks {
        // Election on the channel: a leader answers `Hello` at once; silence means there is none.
        set_timeout(
            || {
                if with(|c| c.leader.is_none() && c.role != Role::Leader) {
                    claim();
                }
            },
            Duration::from_millis(300),
        );
    }
    set_interval(tick, Duration::from_secs(1));
}

/// Declares (or replaces) what the screen `id` shows. `after_seq`: the log position its data
/// was loaded at, to replay from; `None` keeps the screen's cursor (new: live from now).
pub fn watch(id: &str, interest: Interest, after_seq: Option<i64>) {
    with(|c| {
        let cursor = after_seq.or_else(|| c.watches.get(id).and_then(|w| w.cursor));
        c.forget(&catch_up_id(id));
        c.next_nonce += 1;
        let watch = LocalWatch::new(interest, cursor, c.next_nonce);
        c.watches.insert(id.to_owned(), watch);
        c.register(id);
    });
}

/// The screen `id` shows other types of the same rooms, from the same data (a chart's tab
/// switch). Each type resumes from its own position: the types it keeps stay live with nothing
/// replayed, and only the types it adds are replayed, each from where the screen last showed it
/// (or from where its data was loaded), by a catch-up watch that goes away when its replay is
/// done. An unknown `id`, or types "all" (empty) on either side, re-register from the cursor.
pub fn show_types(id: &str, resource_types: Vec<String>) {
    with(|c| {
        let catch_up = catch_up_id(id);
        let Some(watch) = c.watches.get(id) else {
            return;
        };
        let catching_up = c
            .watches
            .get(&catch_up)
            .map(|w| (w.interest.resource_types.clone(), w.cursor));
        let plan = watch.types.switch(
            (&watch.interest.resource_types, watch.cursor),
            catching_up
                .as_ref()
                .map(|(types, cursor)| (types.as_slice(), *cursor)),
            &resource_types,
        );
        let mut interest = watch.interest.clone();
        interest.resource_types = resource_types;
        let replay = plan.catch_up.map(|(types, from)| {
            let mut interest = interest.clone();
            interest.resource_types = types;
            (interest, from)
        });
        if let Some(watch) = c.watches.get_mut(id) {
            watch.types = plan.cursors;
            watch.interest = interest;
        }
        c.forget(&catch_up);
        if let Some((interest, from)) = replay {
            c.next_nonce += 1;
            let watch = LocalWatch::new(interest, from, c.next_nonce);
            c.watches.insert(catch_up.clone(), watch);
            c.register(&catch_up);
        }
        c.register(id);
    });
}

fn catch_up_id(id: &str) -> String {
    format!("{id}{CATCH_UP}")
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
    reconnect_now();
}

/// Registers a handler for each frame's batch; `alerts` handlers run before the others.
pub fn on_updates(alerts: bool, handler: Handler) -> u64 {
    with(|c| {
        let id = c.next_handler;
        c.next_handler += 1;
        c.handlers.push((id, alerts, handler));
        c.handlers.sort_by_key(|(_, alerts, _)| !*alerts);
        id
    })
}

pub fn off(id: u64) {
    with(|c| c.handlers.retain(|(h, _, _)| *h != id));
}

/// The client's state as JSON: what `window.__ROUNDS_DEBUG__` and the debug view show.
pub fn debug_snapshot() -> serde_json::Value {
    with(|c| c.snapshot())
}

// ---------------------------------------------------------------------------------------------
// The election

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
fn claim() {
    let claiming = with(|c| {
        if c.claiming || c.role == Role::Leader {
            return false;
        }
        c.claiming = true;
        let tab = c.tab.clone();
        c.post(&TabMessage::Claim { tab });
        true
    });
    if claiming {
        set_timeout(
            || {
                let won = with(|c| std::mem::replace(&mut c.claiming, false));
                if won {
                    become_leader();
                }
            },
            Duration::from_millis(CLAIM_WAIT_MS),
        );
    }
}

/// This tab now holds the connection.
fn become_leader() {
    with(|c| {
        if c.role == Role::Leader {
            return;
        }
        c.role = Role::Leader;
        c.claiming = false;
        c.leader = Some(c.tab.clone());
        c.registered_with = Some(c.tab.clone());
        c.leader_since = Some(wall_ms());
        c.link = Some(Link::new());
        let tab = c.tab.clone();
        c.log_event(
            "elected",
            json!({ "election": if c.locks { "web-locks" } else { "channel" } }),
        );
        let ids: Vec<String> = c.watches.keys().cloned().collect();
        for id in ids {
            c.register(&id);
        }
        c.post(&TabMessage::Leader { tab, to: None });
        c.publish_status();
    });
    connect();
}

/// Without Web Locks two tabs may both lead for a moment: the higher id gives way.
fn step_down(c: &mut Client) {
    if let Some(mut link) = c.link.take() {
        link.drop_socket();
        if let Some(abort) = link.poll_abort.take() {
            abort.abort();
        }
    }
    c.role = Role::Follower;
    c.leader_since = None;
    c.log_event("stepped down", json!({}));
}

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

fn tick() {
    let found = with(|c| {
        if c.signing_out
            .is_some_and(|since| now_ms() - since > SIGN_OUT_WAIT_MS)
        {
            c.signing_out = None;
            c.log_event("sign-out abandoned", json!({}));
            return Tick::SignOutAbandoned;
        }
        if c.role != Role::Leader {
            let silent = now_ms() - c.leader_heard_at > LEADER_SILENCE_MS;
            if !c.locks && !c.claiming && c.started && silent {
                c.leader = None;
                return Tick::Claim;
            }
            return Tick::Nothing;
        }
        let me = c.tab.clone();
        let Some(link) = c.link.as_mut() else {
            return Tick::Nothing;
        };
        link.round += 1;
        let round = link.round;
        link.alive.insert(me, round);
        let gone: Vec<String> = link
            .alive
            .iter()
            .filter(|(_, answered)| **answered + MISSED_ROUNDS < round)
            .map(|(tab, _)| tab.clone())
            .collect();
        let mut changes = Vec::new();
        for tab in gone {
            link.alive.remove(&tab);
            changes.extend(link.union.release_tab(&tab));
        }
        // The watchdog: a half-open socket delivers nothing and never closes by itself.
        let mut found = Tick::Nothing;
        if link.welcomed {
            let silent = now_ms() - link.last_frame_at;
            match link.ping_sent_at {
                Some(at) if now_ms() - at > PONG_WITHIN_MS => found = Tick::DeadSocket,
                None if silent > PING_AFTER_MS => {
                    link.ping_sent_at = Some(now_ms());
                    link.send(&[ClientMessage::Ping(Some(json!({ "watchdog": round })))]);
                }
                _ => {}
            }
        }
        c.apply(changes);
        c.publish_status();
        found
    });
    match found {
        Tick::Nothing => {}
        Tick::SignOutAbandoned => reconnect_now(),
        Tick::Claim => claim(),
        Tick::DeadSocket => {
            with(|c| c.log_event("watchdog", json!({ "reason": "no pong" })));
            closed(wire::CLOSE_GOING_AWAY, false);
        }
    }
}

/// The network came back or a tab became visible: the leader retries at once.
fn nudge() {
    let leader = with(|c| {
        if c.role != Role::Leader {
            c.post(&TabMessage::Nudge);
        }
        c.role == Role::Leader
    });
    if leader {
        reconnect_now();
    }
}

// ---------------------------------------------------------------------------------------------
// The channel

fn on_channel(message: TabMessage) {
    with(|c| c.log_channel(&message));
    match message {
        TabMessage::Hello { tab } => with(|c| {
            if c.role == Role::Leader {
                let me = c.tab.clone();
                c.post(&TabMessage::Leader {
                    tab: me,
                    to: Some(tab),
                });
                c.publish_status();
            }
        }),
        TabMessage::Leader { tab, to } => {
            let addressed = with(|c| to.is_none() || to.as_deref() == Some(c.tab.as_str()));
            heard_leader(tab, addressed);
        }
        TabMessage::Status {
            tab,
            state,
            transport,
            round,
        } => {
            heard_leader(tab.clone(), false);
            with(|c| {
                if c.role == Role::Leader || c.leader.as_deref() != Some(tab.as_str()) {
                    return;
                }
                c.link_state = state;
                c.transport = transport;
                let me = c.tab.clone();
                c.post(&TabMessage::Alive { tab: me, round });
            });
        }
        TabMessage::Alive { tab, round } => with(|c| {
            if let Some(link) = c.link.as_mut() {
                link.alive.insert(tab, round);
            }
        }),
        TabMessage::Watch {
            tab,
            id,
            nonce,
            interest,
            after_seq,
        } => with(|c| {
            let Some(link) = c.link.as_mut() else {
                return;
            };
            let round = link.round;
            link.alive.insert(tab.clone(), round);
            let holder = Holder {
                tab,
                watch: id,
                nonce,
            };
            let changes = link.union.hold(holder, interest, after_seq);
            c.apply(changes);
        }),
        TabMessage::Unwatch { tab, id } => with(|c| {
            let changes = c
                .link
                .as_mut()
                .map(|link| link.union.release(&tab, &id))
                .unwrap_or_default();
            c.apply(changes);
        }),
        TabMessage::Bye { tab } => with(|c| {
            let changes = c
                .link
                .as_mut()
                .map(|link| {
                    link.alive.remove(&tab);
                    link.union.release_tab(&tab)
                })
                .unwrap_or_default();
            c.apply(changes);
        }),
        TabMessage::Frames { texts, covered } => with(|c| {
            if c.role == Role::Leader {
                return;
            }
            let updates = texts
                .iter()
                .filter_map(|text| match serde_json::from_str::<ServerMessage>(text) {
                    Ok(ServerMessage::Update(update)) => Some(update),
                    _ => None,
                })
                .collect();
            c.receive_updates(updates, covered);
        }),
        TabMessage::Confirmed { holders, after_seq } => {
            with(|c| c.confirm(&holders, after_seq));
        }
        TabMessage::Reset => reset(),
        TabMessage::SigningOut => with(stop_for_sign_out),
        TabMessage::SignedOut => session::leave(),
        TabMessage::Nudge => {
            if with(|c| c.role == Role::Leader) {
                reconnect_now();
            }
        }
        TabMessage::Claim { tab } => with(|c| {
            if c.role == Role::Leader {
                let me = c.tab.clone();
                c.post(&TabMessage::Leader { tab: me, to: None });
            } else if c.claiming && tab < c.tab {
                c.claiming = false;
            }
        }),
        TabMessage::Resign { tab } => {
            let lost = with(|c| {
                if c.leader.as_deref() != Some(tab.as_str()) {
                    return false;
                }
                c.leader = None;
                c.link_state = ConnectionState::Reconnecting;
                !c.locks
            });
            if lost {
                claim();
            }
        }
    }
}

/// A tab says it leads. `addressed`: it asked this tab to (re)register its interests.
fn heard_leader(tab: String, addressed: bool) {
    with(|c| {
        if tab == c.tab {
            return;
        }
        if c.role == Role::Leader {
            // Only without Web Locks can two tabs lead: the lower id keeps the lead.
            if tab < c.tab {
                step_down(c);
            } else {
                let me = c.tab.clone();
                c.post(&TabMessage::Leader { tab: me, to: None });
                return;
            }
        }
        c.leader_heard_at = now_ms();
        c.claiming = false;
        let new_leader = c.leader.as_deref() != Some(tab.as_str());
        c.leader = Some(tab.clone());
        c.role = Role::Follower;
        if addressed || new_leader || c.registered_with.as_deref() != Some(tab.as_str()) {
            c.registered_with = Some(tab);
            let ids: Vec<String> = c.watches.keys().cloned().collect();
            for id in ids {
                c.register(&id);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The leader's connection

fn socket_url() -> Option<String> {
    let location = window().location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss:"
    } else {
        "ws:"
    };
    Some(format!("{scheme}//{}/ws", location.host().ok()?))
}

fn connect() {
    let opened = with(|c| {
        let first = c.connected_at.is_none();
        let signing_out = c.signing_out.is_some();
        let link = c.link.as_mut()?;
        if link.socket.is_some() || signing_out {
            return Some(());
        }
        let state = if !online() {
            ConnectionState::Offline
        } else if first && link.attempt == 0 {
            ConnectionState::Connecting
        } else {
            ConnectionState::Reconnecting
        };
        if !link.polling || !link.state.is_up() {
            link.state = state;
        }
        let socket = socket_url().and_then(|url| WebSocket::new(&url).ok())?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
            if let Some(text) = event.data().as_string() {
                socket_frame(text);
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(|event: CloseEvent| {
            closed(event.code(), true);
        });
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        link.socket = Some(socket);
        // The previous socket's handlers are dropped here, never while they run: reconnects
        // always go through a timer or an event.
        link.on_message = Some(on_message);
        link.on_close = Some(on_close);
        c.publish_status();
        Some(())
    });
    if opened.is_none() && with(|c| c.link.is_some()) {
        retry();
    }
}

/// A sign-out is under way: drop the socket and the poll, quietly (no 4401, no refresh).
fn stop_for_sign_out(c: &mut Client) {
    c.signing_out = Some(now_ms());
    if let Some(link) = c.link.as_mut() {
        link.drop_socket();
        link.poll_generation += 1;
        if let Some(abort) = link.poll_abort.take() {
            abort.abort();
        }
        link.retry_pending = false;
        link.state = ConnectionState::Idle;
    }
    c.publish_status();
}

fn socket_frame(text: String) {
    let Ok(message) = serde_json::from_str::<ServerMessage>(&text) else {
        return;
    };
    with(|c| {
        let Some(link) = c.link.as_mut() else {
            return;
        };
        link.last_frame_at = now_ms();
        link.ping_sent_at = None;
        match message {
            ServerMessage::Welcome(welcome) => {
                link.attempt = 0;
                link.failures = 0;
                link.welcomed = true;
                link.head = welcome.seq;
                if link.polling {
                    link.polling = false;
                    link.poll_generation += 1;
                    if let Some(abort) = link.poll_abort.take() {
                        abort.abort();
                    }
                }
                link.transport = Transport::WebSocket;
                link.state = ConnectionState::Connected;
                for (subscribe, generation) in link.union.resend_all(welcome.seq) {
                    let messages = subscription(subscribe, generation);
                    link.send(&messages);
                }
                c.connected_at = Some(wall_ms());
                c.log_frame("welcome", Some(welcome.seq), json!({}));
                c.publish_status();
            }
            ServerMessage::Update(update) => {
                let covered = link.union.advance(update.seq).then_some(update.seq);
                c.log_frame("update", Some(update.seq), update_summary(&update));
                c.post(&TabMessage::Frames {
                    texts: vec![text],
                    covered,
                });
                c.receive_updates(vec![update], covered);
            }
            ServerMessage::Pong(Some(data)) => {
                let replayed = data.get("replayed").and_then(|v| v.as_str()).and_then(|m| {
                    let (id, generation) = m.split_once('#')?;
                    Some((id.to_owned(), generation.parse::<u64>().ok()?))
                });
                let change =
                    replayed.and_then(|(id, generation)| link.union.replayed(&id, generation));
                c.log_frame("pong", None, data);
                c.apply(change.into_iter().collect());
            }
            ServerMessage::Heartbeat { seq } => link.head = seq,
            ServerMessage::Reset { reason, seq } => {
                c.log_frame("reset", Some(seq), json!({ "reason": reason }));
                c.post(&TabMessage::Reset);
                reset();
            }
            other => {
                let kind = serde_json::to_value(&other)
                    .ok()
                    .and_then(|v| v.get("type").cloned())
                    .unwrap_or_default();
                c.log_frame(kind.as_str().unwrap_or("frame"), None, json!(other));
            }
        }
    });
}

/// The socket closed (`event`: its close event; else the watchdog gave up on it).
fn closed(code: u16, event: bool) {
    let unauthorized = with(|c| {
        if c.signing_out.is_some() {
            return None;
        }
        let link = c.link.as_mut()?;
        // Without a network every attempt fails; that says nothing about proxies.
        let refused = !link.welcomed && online();
        if event {
            link.socket = None;
            link.welcomed = false;
            link.ping_sent_at = None;
        } else {
            link.drop_socket();
        }
        if !link.polling {
            link.state = if online() {
                ConnectionState::Reconnecting
            } else {
                ConnectionState::Offline
            };
        }
        c.log_frame("closed", None, json!({ "code": code }));
        c.publish_status();
        Some((code == wire::CLOSE_UNAUTHORIZED, refused))
    });
    let Some((unauthorized, refused)) = unauthorized else {
        return;
    };
    if refused {
        leptos::task::spawn_local(count_refusal());
    }
    if unauthorized {
        leptos::task::spawn_local(async {
            if session::refresh().await == Some(false) {
                session_over();
            } else {
                retry();
            }
        });
    } else {
        retry();
    }
}

/// A socket closed before its `welcome`. If the server answers plain HTTP meanwhile, something
/// between us refuses the upgrade (a proxy, say): after a few such refusals in a row, long-poll.
/// If it does not answer, the server is down or restarting; that is no reason to poll.
async fn count_refusal() {
    let init = web_sys::RequestInit::new();
    init.set_method("GET");
    init.set_cache(web_sys::RequestCache::NoStore);
    let answered = match JsFuture::from(window().fetch_with_str_and_init("/health", &init)).await {
        Ok(response) => response
            .dyn_into::<web_sys::Response>()
            .is_ok_and(|response| response.ok()),
        Err(_) => false,
    };
    let start = answered
        && with(|c| {
            let Some(link) = c.link.as_mut().filter(|link| !link.welcomed) else {
                return false;
            };
            link.failures += 1;
            if link.failures < FAILURES_BEFORE_POLLING || link.polling {
                return false;
            }
            link.polling = true;
            link.transport = Transport::Polling;
            link.poll_attempt = 0;
            c.log_event(
                "polling",
                json!({ "reason": "the server answers HTTP but sockets fail" }),
            );
            c.publish_status();
            true
        });
    if start {
        poll();
    }
}

fn retry() {
    let attempt = with(|c| {
        let link = c.link.as_mut()?;
        if link.retry_pending {
            return None;
        }
        link.retry_pending = true;
        link.attempt += 1;
        Some(link.attempt)
    });
    let Some(attempt) = attempt else {
        return;
    };
    let delay = backoff_ms(attempt, js_sys::Math::random());
    set_timeout(
        || {
            let idle = with(|c| {
                c.link.as_mut().is_some_and(|link| {
                    std::mem::replace(&mut link.retry_pending, false) && link.socket.is_none()
                })
            });
            if idle {
                connect();
            }
        },
        Duration::from_millis(u64::from(delay)),
    );
}

/// Do not wait for the backoff timer.
fn reconnect_now() {
    let idle = with(|c| {
        c.link.as_mut().is_some_and(|link| {
            let idle = link.socket.is_none();
            if idle {
                link.retry_pending = false;
                link.attempt = 0;
            }
            idle
        })
    });
    if idle {
        connect();
    }
    if with(|c| c.link.as_ref().is_some_and(|link| link.polling)) {
        poll();
    }
}

fn reset() {
    // The gap cannot be replayed: what the page shows is stale. Load it again.
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

// ---------------------------------------------------------------------------------------------
// Long-polling, while sockets cannot be established

enum PollFailure {
    Unauthorized,
    Failed,
    Abandoned,
}

/// Sends the next poll (abandoning the one in flight, whose subscriptions are out of date).
fn poll() {
    let request = with(|c| {
        if c.signing_out.is_some() {
            return None;
        }
        let link = c.link.as_mut().filter(|link| link.polling)?;
        link.poll_generation += 1;
        if let Some(abort) = link.poll_abort.take() {
            abort.abort();
        }
        let (subscriptions, sent) = link.union.poll_request();
        // Registrations wait for a poll to confirm them: ask for an answer at once.
        let wait = if link.union.waiting() {
            0
        } else {
            POLL_WAIT_MS
        };
        let body = serde_json::to_string(&PollRequest {
            subscriptions,
            wait_ms: Some(wait),
        })
        .unwrap_or_default();
        let abort = web_sys::AbortController::new().ok();
        let signal = abort.as_ref().map(|a| a.signal());
        link.poll_abort = abort;
        Some((body, sent, link.poll_generation, signal))
    });
    let Some((body, sent, generation, signal)) = request else {
        return;
    };
    leptos::task::spawn_local(async move {
        let outcome = fetch_poll(&body, signal.as_ref()).await;
        let current = with(|c| {
            c.link
                .as_ref()
                .is_some_and(|link| link.polling && link.poll_generation == generation)
        });
        if !current {
            return;
        }
        match outcome {
            Ok(answer) => {
                let again = with(|c| polled(c, answer, &sent));
                if again {
                    poll();
                }
            }
            Err(PollFailure::Abandoned) => {}
            Err(PollFailure::Unauthorized) => match session::refresh().await {
                Some(false) => session_over(),
                _ => poll_later(),
            },
            Err(PollFailure::Failed) => poll_later(),
        }
    });
}

/// Handles a poll answer; true to poll again.
fn polled(c: &mut Client, answer: PollResponse, sent: &[(String, u64)]) -> bool {
    let mut texts = Vec::new();
    let mut updates = Vec::new();
    for frame in answer.frames {
        match frame {
            ServerMessage::Update(update) => {
                c.log_frame("update (poll)", Some(update.seq), update_summary(&update));
                texts.push(ServerMessage::Update(update.clone()).to_json());
                updates.push(update);
            }
            ServerMessage::Reset { .. } => {
                c.post(&TabMessage::Reset);
                reset();
                return false;
            }
            _ => {}
        }
    }
    let Some(link) = c.link.as_mut() else {
        return false;
    };
    link.poll_attempt = 0;
    link.head = link.head.max(answer.seq);
    if !link.state.is_up() {
        c.connected_at = Some(wall_ms());
    }
    link.state = ConnectionState::Connected;
    let changes = link.union.polled(sent, answer.seq);
    c.post(&TabMessage::Frames {
        texts,
        covered: None,
    });
    c.receive_updates(updates, None);
    c.apply(changes);
    // Everything up to the answer's position has now been forwarded for what it was asked.
    c.post(&TabMessage::Frames {
        texts: Vec::new(),
        covered: Some(answer.seq),
    });
    c.receive_updates(Vec::new(), Some(answer.seq));
    c.publish_status();
    true
}

fn poll_later() {
    let delay = with(|c| {
        let link = c.link.as_mut()?;
        link.poll_attempt += 1;
        if link.state.is_up() {
            link.state = ConnectionState::Reconnecting;
        }
        let attempt = link.poll_attempt;
        c.publish_status();
        Some(backoff_ms(attempt, js_sys::Math::random()))
    });
    if let Some(delay) = delay {
        set_timeout(poll, Duration::from_millis(u64::from(delay)));
    }
}

async fn fetch_poll(
    body: &str,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<PollResponse, PollFailure> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    init.set_body(&JsValue::from_str(body));
    init.set_signal(signal);
    if let Ok(headers) = web_sys::Headers::new() {
        let _ = headers.set("content-type", "application/json");
        init.set_headers(&headers);
    }
    let answer = JsFuture::from(window().fetch_with_str_and_init("/ws/poll", &init))
        .await
        .map_err(|error| {
            let aborted = js_sys::Reflect::get(&error, &JsValue::from_str("name"))
                .ok()
                .and_then(|name| name.as_string())
                .is_some_and(|name| name == "AbortError");
            if aborted {
                PollFailure::Abandoned
            } else {
                PollFailure::Failed
            }
        })?;
    let response: web_sys::Response = answer.dyn_into().map_err(|_| PollFailure::Failed)?;
    if response.status() == 401 {
        return Err(PollFailure::Unauthorized);
    }
    if !response.ok() {
        return Err(PollFailure::Failed);
    }
    let text = JsFuture::from(response.text().map_err(|_| PollFailure::Failed)?)
        .await
        .map_err(|_| PollFailure::Failed)?;
    serde_json::from_str(&text.as_string().unwrap_or_default()).map_err(|_| PollFailure::Failed)
}

// ---------------------------------------------------------------------------------------------
// Each tab: its screens' interests, de-duplication, and the batch per animation frame

fn update_summary(update: &Update) -> serde_json::Value {
    json!({
        "event_type": update.event_type,
        "resource": format!("{}/{}/_history/{}", update.resource_type, update.resource_id, update.version_id),
    })
}

impl Client {
    fn post(&self, message: &TabMessage) {
        if let (Some(channel), Ok(text)) = (&self.channel, serde_json::to_string(message)) {
            let _ = channel.post_message(&JsValue::from_str(&text));
        }
    }

    /// Lets go of watch `id`'s rooms (nothing when it is not watched).
    fn forget(&mut self, id: &str) {
        if self.watches.remove(id).is_none() {
            return;
        }
        let tab = self.tab.clone();
        if self.role == Role::Leader {
            let changes = self
                .link
                .as_mut()
                .map(|link| link.union.release(&tab, id))
                .unwrap_or_default();
            self.apply(changes);
        } else if self.registered_with.is_some() {
            self.post(&TabMessage::Unwatch {
                tab,
                id: id.to_owned(),
            });
        }
    }

    /// Sends screen `id`'s interest to the leader (or, in the leader, into the union). With no
    /// leader known it waits: every tab registers everything when a leader announces itself.
    fn register(&mut self, id: &str) {
        self.next_nonce += 1;
        let nonce = self.next_nonce;
        let tab = self.tab.clone();
        let Some(watch) = self.watches.get_mut(id) else {
            return;
        };
        watch.nonce = nonce;
        watch.replaying = true;
        let (interest, after_seq) = (watch.interest.clone(), watch.cursor);
        if self.role == Role::Leader {
            let holder = Holder {
                tab,
                watch: id.to_owned(),
                nonce,
            };
            let changes = self
                .link
                .as_mut()
                .map(|link| link.union.hold(holder, interest, after_seq))
                .unwrap_or_default();
            self.apply(changes);
        } else if self.registered_with.is_some() {
            self.post(&TabMessage::Watch {
                tab,
                id: id.to_owned(),
                nonce,
                interest,
                after_seq,
            });
        }
    }

    /// Carries out what a change to the union asks of the connection and the tabs.
    fn apply(&mut self, changes: Vec<Change>) {
        let mut repoll = false;
        for change in changes {
            match change {
                Change::Subscribe(id) => {
                    let Some(link) = self.link.as_mut() else {
                        continue;
                    };
                    if link.welcomed {
                        let head = link.head;
                        if let Some((subscribe, generation)) = link.union.request(&id, head) {
                            let messages = subscription(subscribe, generation);
                            link.send(&messages);
                        }
                    } else if link.polling {
                        repoll = true;
                    }
                }
                Change::Unsubscribe(id) => {
                    if let Some(link) = self.link.as_ref() {
                        link.send(&[ClientMessage::Unsubscribe {
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
            set_timeout(poll, Duration::ZERO);
        }
    }

    /// The replay covering these registrations is done.
    fn confirm(&mut self, holders: &[Holder], after_seq: Option<i64>) {
        let mut any = false;
        let mut caught_up = Vec::new();
        for holder in holders.iter().filter(|h| h.tab == self.tab) {
            if let Some(watch) = self
                .watches
                .get_mut(&holder.watch)
                .filter(|w| w.nonce == holder.nonce)
            {
                if watch.replaying {
                    watch.replaying = false;
                    if watch.cursor.is_none() {
                        watch.cursor = after_seq;
                    }
                }
                any = true;
                if holder.watch.ends_with(CATCH_UP) {
                    caught_up.push(holder.watch.clone());
                }
            }
        }
        // What a catch-up replayed has reached the screen; from now on its screen's own watch
        // delivers those types live.
        for id in caught_up {
            self.forget(&id);
        }
        if any && self.watches.values().all(|w| !w.replaying) {
            self.resumed_at = Some(wall_ms());
        }
    }

    /// Frames from the connection: keep what this tab's screens show, once each.
    fn receive_updates(&mut self, updates: Vec<Update>, covered: Option<i64>) {
        let now = now_ms();
        for update in updates {
            if self.role != Role::Leader {
                self.log_frame("update (shared)", Some(update.seq), update_summary(&update));
            }
            // What no screen shows is not marked seen: a screen that opens later and asks for
            // a replay must still get it.
            if !self.watches.values().any(|w| w.interest.matches(&update)) {
                continue;
            }
            if !self.seen.first_time(update.seq) {
                continue;
            }
            self.queue.push((update, now));
        }
        if let Some(covered) = covered {
            for watch in self.watches.values_mut().filter(|w| !w.replaying) {
                watch.cursor = Some(watch.cursor.map_or(covered, |c| c.max(covered)));
            }
        }
        if !self.queue.is_empty() && !self.frame_requested {
            self.frame_requested = true;
            request_animation_frame(flush);
        }
    }

    /// The leader tells every tab (and shows) its connection's state.
    fn publish_status(&mut self) {
        let Some(link) = self.link.as_ref() else {
            return;
        };
        let (state, transport, round) = (link.state, link.transport, link.round);
        self.link_state = state;
        self.transport = transport;
        let tab = self.tab.clone();
        self.post(&TabMessage::Status {
            tab,
            state,
            transport,
            round,
        });
    }

    /// What the indicator shows: the browser's own offline state first, then the connection's,
    /// as *receiving* while updates wait for the screen or a replay runs.
    fn indicator(&self) -> ConnectionState {
        if self.signing_out.is_some() {
            ConnectionState::Idle
        } else if !online() {
            ConnectionState::Offline
        } else if self.role == Role::Follower && self.leader.is_none() {
            ConnectionState::Reconnecting
        } else if self.link_state.is_up()
            && (!self.queue.is_empty() || self.watches.values().any(|w| w.replaying))
        {
            ConnectionState::Receiving
        } else {
            self.link_state
        }
    }

    fn log(&mut self, entry: serde_json::Value) {
        if self.log.len() >= LOG_SIZE {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }

    fn log_frame(&mut self, kind: &str, seq: Option<i64>, detail: serde_json::Value) {
        self.log(
            json!({ "at": wall_ms(), "via": "server", "kind": kind, "seq": seq, "detail": detail }),
        );
    }

    fn log_event(&mut self, kind: &str, detail: serde_json::Value) {
        self.log(json!({ "at": wall_ms(), "via": "tab", "kind": kind, "detail": detail }));
    }

    fn log_channel(&mut self, message: &TabMessage) {
        // Status and Alive come every second; Frames are logged as updates.
        let kind = match message {
            TabMessage::Status { .. } | TabMessage::Alive { .. } | TabMessage::Frames { .. } => {
                return
            }
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
                .unwrap_or_default(),
        };
        self.log(json!({ "at": wall_ms(), "via": "channel", "kind": kind }));
    }

    fn snapshot(&self) -> serde_json::Value {
        let watches: Vec<serde_json::Value> = self
            .watches
            .iter()
            .map(|(id, w)| {
                json!({ "id": id, "interest": w.interest, "cursor": w.cursor, "replaying": w.replaying })
            })
            .collect();
        let link = self.link.as_ref().map(|link| {
            json!({
                "welcomed": link.welcomed,
                "head": link.head,
                "attempt": link.attempt,
                "failures": link.failures,
                "polling": link.polling,
                "subscriptions": link.union.view(),
                "tabs": link.alive.keys().collect::<Vec<_>>(),
            })
        });
        json!({
            "tab": self.tab,
            "user": self.user,
            "role": self.role,
            "leader": self.leader,
            "election": if self.locks { "web-locks" } else { "broadcast-channel" },
            "state": self.indicator().machine(),
            "connection": self.link_state,
            "transport": self.transport,
            "watches": watches,
            "link": link,
            "applied": self.applied,
            "last_seq": self.realtime.last_seq.try_get_untracked(),
            "leader_since": self.leader_since,
            "connected_at": self.connected_at,
            "resumed_at": self.resumed_at,
            "messages": self.log,
        })
    }
}

/// Hands the frame's batch to the handlers, alerts first, then records when it was painted.
fn flush() {
    let taken = with(|c| {
        c.frame_requested = false;
        let handlers: Vec<Handler> = c.handlers.iter().map(|(_, _, h)| h.clone()).collect();
        c.applied += c.queue.len() as u64;
        Some((std::mem::take(&mut c.queue), handlers, c.realtime))
    });
    let Some((mut batch, handlers, realtime)) = taken.filter(|(batch, _, _)| !batch.is_empty())
    else {
        return;
    };
    let frame_start = now_ms();
    let arrivals: Vec<f64> = batch.iter().map(|(_, at)| *at).collect();
    let mut updates: Vec<Update> = batch.drain(..).map(|(u, _)| u).collect();
    alerts_first(&mut updates);
    let highest = updates.iter().map(|u| u.seq).max().unwrap_or(0);
    if realtime
        .last_seq
        .try_get_untracked()
        .is_some_and(|last| highest > last)
    {
        realtime.last_seq.try_set(highest);
    }
    // A handler may unmount screens (and dispose what the others hold): each uses `try_*`.
    for handler in handlers {
        handler(&updates);
    }
    refresh_indicator();
    // The DOM changes of this frame are painted before a zero timeout set now runs.
    set_timeout(
        move || {
            let now = now_ms();
            with(|c| {
                c.paint_ms.extend(arrivals.iter().map(|at| now - at));
                let excess = c.paint_ms.len().saturating_sub(1000);
                c.paint_ms.drain(..excess);
                c.render_ms.push(now - frame_start);
                let excess = c.render_ms.len().saturating_sub(1000);
                c.render_ms.drain(..excess);
                publish_times("__ROUNDS_PAINT__", &c.paint_ms);
                publish_times("__ROUNDS_RENDER__", &c.render_ms);
            });
        },
        Duration::ZERO,
    );
}

/// `window.__ROUNDS_PAINT__` (the last arrival-to-paint times of updates) and
/// `window.__ROUNDS_RENDER__` (per frame: applying the batch, rendering and painting), in ms.
fn publish_times(name: &str, times: &[f64]) {
    let array = js_sys::Array::new();
    for t in times {
        array.push(&JsValue::from_f64(*t));
    }
    let _ = js_sys::Reflect::set(&window(), &JsValue::from_str(name), &array);
}

/// `window.__ROUNDS_DEBUG__`: a getter that returns the client's state when read.
fn install_debug_hook() {
    let getter = Closure::<dyn Fn() -> JsValue>::new(|| {
        let text = debug_snapshot().to_string();
        js_sys::JSON::parse(&text).unwrap_or(JsValue::NULL)
    });
    let descriptor = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&descriptor, &JsValue::from_str("get"), getter.as_ref());
    let _ = js_sys::Reflect::set(
        &descriptor,
        &JsValue::from_str("configurable"),
        &JsValue::TRUE,
    );
    js_sys::Object::define_property(
        &window(),
        &JsValue::from_str("__ROUNDS_DEBUG__"),
        &descriptor,
    );
    getter.forget();
}
