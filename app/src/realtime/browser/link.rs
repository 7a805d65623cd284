//! The leader's WebSocket to `/ws`: the carrier the connection prefers.
//!
//! Where it sits: between the server's socket and the connection's core (`transport`). It opens
//! the socket, sends the union's subscriptions after `welcome` (each followed by the ping whose
//! pong marks the end of its replay), watches for half-open sockets, and after a close retries on
//! its backoff. When sockets close before `welcome` while the server answers plain HTTP, something
//! between refuses the upgrade: after a few such refusals it starts the long poll (`poll`), which
//! runs until a socket is welcomed again.
//!
//! What it must never do: drop the handlers of a socket while they run, send before `welcome`,
//! or reconnect while a sign-out is under way.

use std::time::Duration;

use leptos::prelude::*;
use serde_json::json;
use wasm_bindgen::{closure::Closure, JsCast};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use super::{
    now_ms, online, poll,
    transport::{refresh_session, Backoff, Carrier, Connection},
    wall_ms, with, ConnectionState,
};
use crate::{
    realtime::Transport,
    wire::{self, ClientMessage, ServerMessage, Subscribe},
};

/// Sockets in a row that close before `welcome` before the leader long-polls instead.
const FAILURES_BEFORE_POLLING: u32 = 3;
/// Silence on an open socket after which the leader pings it.
const PING_AFTER_MS: f64 = 10_000.0;
/// Time a watchdog ping may go unanswered before the socket counts as dead.
const PONG_WITHIN_MS: f64 = 5_000.0;

/// The socket, its handlers, and what the watchdog and the retries need to know.
pub(super) struct Socket {
    socket: Option<WebSocket>,
    on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
    on_close: Option<Closure<dyn FnMut(CloseEvent)>>,
    /// Between `welcome` and the socket's close.
    welcomed: bool,
    pub(super) backoff: Backoff,
    /// Sockets in a row that closed before `welcome`.
    failures: u32,
    retry_pending: bool,
    last_frame_at: f64,
    ping_sent_at: Option<f64>,
}

impl Carrier for Socket {
    const KIND: Transport = Transport::WebSocket;
    const UPDATES: &'static str = "update";

    fn of(connection: &mut Connection) -> &mut Self {
        &mut connection.socket
    }

    fn backoff(&mut self) -> &mut Backoff {
        &mut self.backoff
    }

    fn stop(&mut self) {
        self.drop_socket();
    }

    fn retry() {
        retry();
    }
}

impl Socket {
    pub(super) fn new() -> Self {
        Self {
            socket: None,
            on_message: None,
            on_close: None,
            welcomed: false,
            backoff: Backoff::default(),
            failures: 0,
            retry_pending: false,
            last_frame_at: 0.0,
            ping_sent_at: None,
        }
    }

    pub(super) fn welcomed(&self) -> bool {
        self.welcomed
    }

    pub(super) fn failures(&self) -> u32 {
        self.failures
    }

    /// Closes the socket without running its close handler (the caller decides what follows).
    pub(super) fn drop_socket(&mut self) {
        if let Some(socket) = self.socket.take() {
            socket.set_onmessage(None);
            socket.set_onclose(None);
            let _ = socket.close();
        }
        self.welcomed = false;
        self.ping_sent_at = None;
    }

    /// Sends `messages`, once welcomed (before, they go with the subscriptions after `welcome`).
    pub(super) fn send(&self, messages: &[ClientMessage]) {
        let Some(socket) = self.socket.as_ref().filter(|_| self.welcomed) else {
            return;
        };
        for message in messages {
            if let Ok(text) = serde_json::to_string(message) {
                let _ = socket.send_with_str(&text);
            }
        }
    }

    /// Forgets the retry that is waiting (a sign-out is under way).
    pub(super) fn cancel_retry(&mut self) {
        self.retry_pending = false;
    }

    /// Without a socket, forgets the retry that is waiting and starts the backoff over: true
    /// when a socket should be opened now.
    pub(super) fn restart(&mut self) -> bool {
        let idle = self.socket.is_none();
        if idle {
            self.retry_pending = false;
            self.backoff.reset();
        }
        idle
    }

    /// The watchdog, once per status `round`: a half-open socket delivers nothing and never
    /// closes by itself, so a silent socket is pinged. True when the ping went unanswered.
    pub(super) fn watchdog(&mut self, round: u64) -> bool {
        if !self.welcomed {
            return false;
        }
        let silent = now_ms() - self.last_frame_at;
        match self.ping_sent_at {
            Some(at) if now_ms() - at > PONG_WITHIN_MS => return true,
            None if silent > PING_AFTER_MS => {
                self.ping_sent_at = Some(now_ms());
                self.send(&[ClientMessage::Ping(Some(json!({ "watchdog": round })))]);
            }
            _ => {}
        }
        false
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

/// Opens the socket, unless one is open or a sign-out is under way.
pub(super) fn connect() {
    let opened = with(|c| {
        let first = c.milestones.connected_at.is_none();
        let signing_out = c.signing_out.is_some();
        let connection = c.connection.as_mut()?;
        let link = &mut connection.socket;
        if link.socket.is_some() || signing_out {
            return Some(());
        }
        let state = if !online() {
            ConnectionState::Offline
        } else if first && link.backoff.attempt() == 0 {
            ConnectionState::Connecting
        } else {
            ConnectionState::Reconnecting
        };
        if !connection.poll.active || !connection.state.is_up() {
            connection.state = state;
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
        let link = &mut connection.socket;
        link.socket = Some(socket);
        // The previous socket's handlers are dropped here, never while they run: reconnects
        // always go through a timer or an event.
        link.on_message = Some(on_message);
        link.on_close = Some(on_close);
        c.publish_status();
        Some(())
    });
    if opened.is_none() && with(|c| c.connection.is_some()) {
        retry();
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

/// Sends the union's subscription `id` from the connection's head (the socket is welcomed).
pub(super) fn subscribe(connection: &mut Connection, id: &str) {
    let head = connection.head;
    if let Some((subscribe, generation)) = connection.union.request(id, head) {
        connection.socket.send(&subscription(subscribe, generation));
    }
}

/// A frame from the socket.
fn socket_frame(text: String) {
    let Ok(message) = serde_json::from_str::<ServerMessage>(&text) else {
        return;
    };
    with(|c| {
        let Some(connection) = c.connection.as_mut() else {
            return;
        };
        connection.socket.last_frame_at = now_ms();
        connection.socket.ping_sent_at = None;
        match message {
            ServerMessage::Welcome(welcome) => {
                connection.up::<Socket>();
                connection.socket.failures = 0;
                connection.socket.welcomed = true;
                connection.head = welcome.seq;
                if connection.poll.active {
                    connection.poll.active = false;
                    connection.poll.stop();
                }
                for (subscribe, generation) in connection.union.resend_all(welcome.seq) {
                    connection.socket.send(&subscription(subscribe, generation));
                }
                c.milestones.connected_at = Some(wall_ms());
                c.log_frame("welcome", Some(welcome.seq), json!({}));
                c.publish_status();
            }
            ServerMessage::Update(update) => {
                let covered = connection.union.advance(update.seq).then_some(update.seq);
                c.log_update::<Socket>(&update);
                c.forward(vec![text], vec![update], covered);
            }
            ServerMessage::Pong(Some(data)) => {
                let replayed = data.get("replayed").and_then(|v| v.as_str()).and_then(|m| {
                    let (id, generation) = m.split_once('#')?;
                    Some((id.to_owned(), generation.parse::<u64>().ok()?))
                });
                let change = replayed
                    .and_then(|(id, generation)| connection.union.replayed(&id, generation));
                c.log_frame("pong", None, data);
                c.apply(change.into_iter().collect());
            }
            ServerMessage::Heartbeat { seq } => connection.head = seq,
            ServerMessage::Reset { reason, seq } => {
                c.log_frame("reset", Some(seq), json!({ "reason": reason }));
                c.reset_all();
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
pub(super) fn closed(code: u16, event: bool) {
    let unauthorized = with(|c| {
        if c.signing_out.is_some() {
            return None;
        }
        let connection = c.connection.as_mut()?;
        let link = &mut connection.socket;
        // Without a network every attempt fails; that says nothing about proxies.
        let refused = !link.welcomed && online();
        if event {
            // Its handlers are running: they are dropped with the next socket's.
            link.socket = None;
            link.welcomed = false;
            link.ping_sent_at = None;
        } else {
            link.drop_socket();
        }
        if !connection.poll.active {
            connection.state = if online() {
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
        leptos::task::spawn_local(refresh_session::<Socket>());
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
            let Some(connection) = c
                .connection
                .as_mut()
                .filter(|connection| !connection.socket.welcomed)
            else {
                return false;
            };
            connection.socket.failures += 1;
            if connection.socket.failures < FAILURES_BEFORE_POLLING || connection.poll.active {
                return false;
            }
            connection.poll.start();
            connection.transport = poll::Poll::KIND;
            c.log_event(
                "polling",
                json!({ "reason": "the server answers HTTP but sockets fail" }),
            );
            c.publish_status();
            true
        });
    if start {
        poll::poll();
    }
}

/// Opens a socket again once the backoff has passed (one retry waits at a time).
fn retry() {
    let delay = with(|c| {
        let link = &mut c.connection.as_mut()?.socket;
        if link.retry_pending {
            return None;
        }
        link.retry_pending = true;
        Some(link.backoff.failed())
    });
    let Some(delay) = delay else {
        return;
    };
    set_timeout(
        || {
            let idle = with(|c| {
                c.connection.as_mut().is_some_and(|connection| {
                    let link = &mut connection.socket;
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
