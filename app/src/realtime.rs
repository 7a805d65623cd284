//! The browser's realtime client: one WebSocket to `/ws` feeding the screens' stores.
//!
//! Where it sits: step 5 of the event path, in the browser. Screens declare what they show as
//! *interests* (patient rooms, other rooms, resource types) together with the log `seq` their data
//! was loaded at; the client keeps one subscription per interest on the socket and hands every
//! `update` to the registered handlers, once, batched per animation frame with alerts first.
//!
//! Resume without loss: each interest has a cursor, the `seq` up to which it holds everything. A
//! subscription is sent with `after_seq` = its cursor and followed by a `ping`; the server answers
//! `subscribed`, the replay, then the `pong` (it handles a connection's messages in order), so once
//! the pong is back the subscription is live and its cursor follows every frame received. After any
//! drop every interest is re-sent from its own cursor: nothing in its rooms is skipped, and what
//! comes twice (replays overlap live frames) is dropped by `seq`.
//!
//! Reconnects use capped exponential backoff with jitter and never give up; a 4401 refreshes the
//! session cookie first; the browser's `online` event retries at once; `reset` reloads the page.
//! Sharing one socket between tabs is a later step.
//!
//! What it must never do: hand an update to the screens twice, or stop trying to reconnect.

use std::{collections::BTreeSet, rc::Rc};

use leptos::prelude::*;

use crate::wire::Update;

/// What the connection indicator shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not started (the server-rendered page, before hydration), or the session is over.
    Idle,
    Connecting,
    Live,
    Reconnecting,
    /// The browser reports no network.
    Offline,
}

impl ConnectionState {
    pub fn label(self) -> &'static str {
        match self {
            ConnectionState::Idle => "Live updates: not connected",
            ConnectionState::Connecting => "Connecting…",
            ConnectionState::Live => "Live",
            ConnectionState::Reconnecting => "Reconnecting…",
            ConnectionState::Offline => "Offline",
        }
    }

    /// The CSS class of the indicator.
    pub fn class(self) -> &'static str {
        match self {
            ConnectionState::Live => "connection connected",
            ConnectionState::Idle => "connection idle",
            ConnectionState::Offline => "connection offline",
            _ => "connection reconnecting",
        }
    }
}

/// The signals the screens read.
#[derive(Debug, Clone, Copy)]
pub struct Realtime {
    pub state: RwSignal<ConnectionState>,
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
            last_seq: RwSignal::new(0),
        }
    }
}

/// What one screen wants delivered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interest {
    /// Patients whose `patient:{id}` rooms to join.
    pub patient_ids: Vec<String>,
    /// Other rooms: `facility:alerts`, `pharmacy:queue`, `unit:{id}`.
    pub rooms: Vec<String>,
    /// Only these resource types (empty: all).
    pub resource_types: Vec<String>,
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
pub use browser::{off, on_updates, start, unwatch, watch};

// On the server the page renders once; there is nothing to connect.
#[cfg(not(feature = "hydrate"))]
pub fn start(_realtime: Realtime) {}
#[cfg(not(feature = "hydrate"))]
pub fn watch(_id: &str, _interest: Interest, _after_seq: Option<i64>) {}
#[cfg(not(feature = "hydrate"))]
pub fn unwatch(_id: &str) {}
#[cfg(not(feature = "hydrate"))]
pub fn on_updates(_alerts: bool, _handler: Handler) -> u64 {
    0
}
#[cfg(not(feature = "hydrate"))]
pub fn off(_id: u64) {}

#[cfg(feature = "hydrate")]
mod browser {
    use std::{cell::RefCell, collections::BTreeMap, rc::Rc, time::Duration};

    use leptos::prelude::*;
    use wasm_bindgen::{closure::Closure, JsCast, JsValue};
    use web_sys::{CloseEvent, MessageEvent, WebSocket};

    use super::{backoff_ms, ConnectionState, Handler, Interest, Realtime, Seen};
    use crate::{
        records::alerts_first,
        wire::{self, ClientMessage, ServerMessage, Subscribe, Update},
    };

    struct Watch {
        interest: Interest,
        /// Everything in this interest's rooms up to here has been handed out; `None`: nothing
        /// loaded yet, start from the head when connected.
        cursor: Option<i64>,
        /// Sent, and its replay not yet confirmed by the pong that follows it.
        replaying: bool,
    }

    struct Client {
        realtime: Realtime,
        started: bool,
        attempt: u32,
        socket: Option<WebSocket>,
        /// Between `welcome` and the socket's close.
        open: bool,
        /// The log head as of the last `welcome` or `heartbeat`.
        head: i64,
        on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
        on_close: Option<Closure<dyn FnMut(CloseEvent)>>,
        watches: BTreeMap<String, Watch>,
        /// (id, alerts first?, handler)
        handlers: Vec<(u64, bool, Handler)>,
        next_handler: u64,
        seen: Seen,
        /// Updates waiting for the next animation frame, with their arrival time (ms).
        queue: Vec<(Update, f64)>,
        frame_requested: bool,
        retry_pending: bool,
        /// Arrival-to-paint times (ms) of the last updates, for `window.__ROUNDS_PAINT__`.
        paint_ms: Vec<f64>,
        /// Frame-start-to-paint times (ms) of the last batches, for `window.__ROUNDS_RENDER__`.
        render_ms: Vec<f64>,
    }

    thread_local! {
        /// The page's one client; its socket handlers live as long as the page does.
        static CLIENT: Rc<RefCell<Client>> = Rc::new(RefCell::new(Client {
            realtime: Realtime::new(),
            started: false,
            attempt: 0,
            socket: None,
            open: false,
            head: 0,
            on_message: None,
            on_close: None,
            watches: BTreeMap::new(),
            handlers: Vec::new(),
            next_handler: 1,
            seen: Seen::default(),
            queue: Vec::new(),
            frame_requested: false,
            retry_pending: false,
            paint_ms: Vec::new(),
            render_ms: Vec::new(),
        }));
    }

    fn client() -> Rc<RefCell<Client>> {
        CLIENT.with(Rc::clone)
    }

    /// Connects (once per page) and keeps connected; `realtime` gets the state.
    pub fn start(realtime: Realtime) {
        let client = client();
        {
            let mut state = client.borrow_mut();
            if state.started {
                return;
            }
            state.started = true;
            state.realtime = realtime;
        }
        let online = {
            let client = Rc::downgrade(&client);
            Closure::<dyn FnMut()>::new(move || {
                if let Some(client) = client.upgrade() {
                    reconnect_now(&client);
                }
            })
        };
        let offline = {
            let client = Rc::downgrade(&client);
            Closure::<dyn FnMut()>::new(move || {
                if let Some(client) = client.upgrade() {
                    let realtime = client.borrow().realtime;
                    realtime.state.set(ConnectionState::Offline);
                }
            })
        };
        let window = window();
        let _ = window.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
        let _ =
            window.add_event_listener_with_callback("offline", offline.as_ref().unchecked_ref());
        // Listening for the page's whole life.
        online.forget();
        offline.forget();
        connect(&client);
    }

    /// Declares (or replaces) what the screen `id` shows. `after_seq`: the log position its data
    /// was loaded at, to replay from; `None` keeps the interest's cursor (new: live from now).
    pub fn watch(id: &str, interest: Interest, after_seq: Option<i64>) {
        let client = client();
        let message = {
            let mut state = client.borrow_mut();
            let send = state.open;
            let head = state.head;
            let cursor = after_seq
                .or_else(|| state.watches.get(id).and_then(|w| w.cursor))
                .or(send.then_some(head));
            state.watches.insert(
                id.to_owned(),
                Watch {
                    interest,
                    cursor,
                    replaying: send,
                },
            );
            send.then(|| subscription(id, &state.watches[id]))
        };
        if let Some(messages) = message {
            send_all(&client, &messages);
        }
    }

    /// The screen `id` is gone: leave its rooms.
    pub fn unwatch(id: &str) {
        let client = client();
        let open = {
            let mut state = client.borrow_mut();
            state.watches.remove(id).is_some() && state.open
        };
        if open {
            send_all(
                &client,
                &[ClientMessage::Unsubscribe {
                    subscription_id: id.to_owned(),
                }],
            );
        }
    }

    /// Registers a handler for each frame's batch; `alerts` handlers run before the others.
    pub fn on_updates(alerts: bool, handler: Handler) -> u64 {
        let client = client();
        let mut state = client.borrow_mut();
        let id = state.next_handler;
        state.next_handler += 1;
        state.handlers.push((id, alerts, handler));
        state.handlers.sort_by_key(|(_, alerts, _)| !*alerts);
        id
    }

    pub fn off(id: u64) {
        client().borrow_mut().handlers.retain(|(h, _, _)| *h != id);
    }

    /// The subscription (and the ping that marks the end of its replay) for one watch.
    fn subscription(id: &str, watch: &Watch) -> Vec<ClientMessage> {
        vec![
            ClientMessage::Subscription(Subscribe {
                subscription_id: id.to_owned(),
                patient_ids: watch.interest.patient_ids.clone(),
                resource_types: watch.interest.resource_types.clone(),
                rooms: watch.interest.rooms.clone(),
                after_seq: watch.cursor,
            }),
            ClientMessage::Ping(Some(serde_json::json!({ "replayed": id }))),
        ]
    }

    fn send_all(client: &Rc<RefCell<Client>>, messages: &[ClientMessage]) {
        let state = client.borrow();
        let Some(socket) = &state.socket else {
            return;
        };
        for message in messages {
            if let Ok(text) = serde_json::to_string(message) {
                let _ = socket.send_with_str(&text);
            }
        }
    }

    fn socket_url() -> Option<String> {
        let location = window().location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss:"
        } else {
            "ws:"
        };
        Some(format!("{scheme}//{}/ws", location.host().ok()?))
    }

    fn connect(client: &Rc<RefCell<Client>>) {
        let realtime = client.borrow().realtime;
        let offline = !window().navigator().on_line();
        realtime.state.set(if offline {
            ConnectionState::Offline
        } else if client.borrow().attempt == 0 {
            ConnectionState::Connecting
        } else {
            ConnectionState::Reconnecting
        });
        let Some(socket) = socket_url().and_then(|url| WebSocket::new(&url).ok()) else {
            retry(client);
            return;
        };
        let on_message = {
            let client = Rc::downgrade(client);
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let (Some(client), Some(text)) = (client.upgrade(), event.data().as_string())
                else {
                    return;
                };
                if let Ok(message) = serde_json::from_str::<ServerMessage>(&text) {
                    receive(&client, message);
                }
            })
        };
        let on_close = {
            let client = Rc::downgrade(client);
            Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
                let Some(client) = client.upgrade() else {
                    return;
                };
                {
                    let mut state = client.borrow_mut();
                    state.open = false;
                    state.socket = None;
                    let offline = !window().navigator().on_line();
                    state.realtime.state.set(if offline {
                        ConnectionState::Offline
                    } else {
                        ConnectionState::Reconnecting
                    });
                }
                if event.code() == wire::CLOSE_UNAUTHORIZED {
                    reauthenticate_then_retry(client);
                } else {
                    retry(&client);
                }
            })
        };
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let mut state = client.borrow_mut();
        state.socket = Some(socket);
        // The previous socket's handlers are dropped here, never while they run: reconnects
        // always go through a timer or an event.
        state.on_message = Some(on_message);
        state.on_close = Some(on_close);
    }

    fn receive(client: &Rc<RefCell<Client>>, message: ServerMessage) {
        match message {
            ServerMessage::Welcome(welcome) => {
                let messages = {
                    let mut state = client.borrow_mut();
                    state.attempt = 0;
                    state.open = true;
                    state.realtime.state.set(ConnectionState::Live);
                    state.head = welcome.seq;
                    let mut messages = Vec::new();
                    for (id, watch) in state.watches.iter_mut() {
                        watch.replaying = true;
                        watch.cursor.get_or_insert(welcome.seq);
                        messages.extend(subscription(id, watch));
                    }
                    messages
                };
                send_all(client, &messages);
            }
            ServerMessage::Update(update) => {
                let now = now_ms();
                let mut state = client.borrow_mut();
                let seq = update.seq;
                // While any subscription replays, a frame may be a replay frame read ahead of the
                // live stream: cursors advance only when every subscription is live, where frames
                // arrive in `seq` order.
                if state.watches.values().all(|w| !w.replaying) {
                    for watch in state.watches.values_mut() {
                        watch.cursor = Some(watch.cursor.map_or(seq, |c| c.max(seq)));
                    }
                }
                if !state.seen.first_time(seq) {
                    return;
                }
                state.queue.push((update, now));
                if !state.frame_requested {
                    state.frame_requested = true;
                    let client = client.clone();
                    request_animation_frame(move || flush(&client));
                }
            }
            ServerMessage::Pong(Some(data)) => {
                if let Some(id) = data.get("replayed").and_then(|v| v.as_str()) {
                    if let Some(watch) = client.borrow_mut().watches.get_mut(id) {
                        watch.replaying = false;
                    }
                }
            }
            ServerMessage::Heartbeat { seq } => client.borrow_mut().head = seq,
            ServerMessage::Reset { .. } => {
                // The gap cannot be replayed: what the page shows is stale. Load it again.
                let _ = window().location().reload();
            }
            _ => {}
        }
    }

    /// Hands the frame's batch to the handlers, alerts first, then records when it was painted.
    fn flush(client: &Rc<RefCell<Client>>) {
        let (mut batch, handlers, realtime) = {
            let mut state = client.borrow_mut();
            state.frame_requested = false;
            let handlers: Vec<Handler> = state.handlers.iter().map(|(_, _, h)| h.clone()).collect();
            (std::mem::take(&mut state.queue), handlers, state.realtime)
        };
        if batch.is_empty() {
            return;
        }
        let frame_start = now_ms();
        let arrivals: Vec<f64> = batch.iter().map(|(_, at)| *at).collect();
        let mut updates: Vec<Update> = batch.drain(..).map(|(u, _)| u).collect();
        alerts_first(&mut updates);
        let highest = updates.iter().map(|u| u.seq).max().unwrap_or(0);
        if highest > realtime.last_seq.get_untracked() {
            realtime.last_seq.set(highest);
        }
        for handler in handlers {
            handler(&updates);
        }
        // The DOM changes of this frame are painted before a zero timeout set now runs.
        let client = client.clone();
        set_timeout(
            move || {
                let now = now_ms();
                let mut state = client.borrow_mut();
                state.paint_ms.extend(arrivals.iter().map(|at| now - at));
                let excess = state.paint_ms.len().saturating_sub(1000);
                state.paint_ms.drain(..excess);
                state.render_ms.push(now - frame_start);
                let excess = state.render_ms.len().saturating_sub(1000);
                state.render_ms.drain(..excess);
                publish_times("__ROUNDS_PAINT__", &state.paint_ms);
                publish_times("__ROUNDS_RENDER__", &state.render_ms);
            },
            Duration::ZERO,
        );
    }

    fn now_ms() -> f64 {
        window().performance().map(|p| p.now()).unwrap_or(0.0)
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

    fn retry(client: &Rc<RefCell<Client>>) {
        let attempt = {
            let mut state = client.borrow_mut();
            if state.retry_pending {
                return;
            }
            state.retry_pending = true;
            state.attempt += 1;
            state.attempt
        };
        let delay = backoff_ms(attempt, js_sys::Math::random());
        let client = client.clone();
        set_timeout(
            move || {
                let waiting = std::mem::replace(&mut client.borrow_mut().retry_pending, false);
                if waiting && client.borrow().socket.is_none() {
                    connect(&client);
                }
            },
            Duration::from_millis(u64::from(delay)),
        );
    }

    /// The network is back: do not wait for the backoff timer.
    fn reconnect_now(client: &Rc<RefCell<Client>>) {
        let idle = {
            let mut state = client.borrow_mut();
            let idle = state.socket.is_none();
            if idle {
                state.retry_pending = false;
                state.attempt = 0;
            }
            idle
        };
        if idle {
            connect(client);
        }
    }

    /// A 4401: the access token expired. Rotate it with the refresh cookie, then reconnect; if
    /// the session itself is over (signed out, revoked), stop.
    fn reauthenticate_then_retry(client: Rc<RefCell<Client>>) {
        leptos::task::spawn_local(async move {
            let init = web_sys::RequestInit::new();
            init.set_method("POST");
            init.set_credentials(web_sys::RequestCredentials::SameOrigin);
            let request = window().fetch_with_str_and_init("/auth/refresh", &init);
            let answer = wasm_bindgen_futures::JsFuture::from(request).await;
            let refreshed = answer
                .ok()
                .and_then(|response| response.dyn_into::<web_sys::Response>().ok())
                .map(|response| response.ok());
            match refreshed {
                Some(false) => {
                    let state = client.borrow();
                    state.realtime.state.set(ConnectionState::Idle);
                }
                // Refreshed, or the network is down: keep trying.
                _ => retry(&client),
            }
        });
    }
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
}
