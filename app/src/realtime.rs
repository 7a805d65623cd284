//! The browser's realtime client: one WebSocket to `/ws` feeding reactive signals.
//!
//! Where it sits: step 5 of the event path, in the browser. It opens the socket with the session
//! cookie, subscribes to the rooms the screen shows, applies each `update` at most once (by `seq`)
//! and, after any gap, resumes from the last `seq` it applied: reconnecting with capped
//! exponential backoff and jitter, never giving up; re-authenticating (`/auth/refresh`) on 4401;
//! reloading the page's data on `reset`. Sharing one socket between tabs is a later step.
//!
//! What it must never do: apply an update twice, or stop trying to reconnect.

use std::collections::HashMap;

use leptos::prelude::*;

/// What the connection indicator shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not started (the server-rendered page, before hydration).
    Offline,
    Connecting,
    Live,
    Reconnecting,
}

impl ConnectionState {
    pub fn label(self) -> &'static str {
        match self {
            ConnectionState::Offline => "Live updates: not connected",
            ConnectionState::Connecting => "Connecting…",
            ConnectionState::Live => "Live",
            ConnectionState::Reconnecting => "Reconnecting…",
        }
    }

    /// The CSS class of the indicator.
    pub fn class(self) -> &'static str {
        match self {
            ConnectionState::Live => "connection connected",
            ConnectionState::Offline => "connection offline",
            _ => "connection reconnecting",
        }
    }
}

/// The signals the screens read.
#[derive(Debug, Clone, Copy)]
pub struct Realtime {
    pub state: RwSignal<ConnectionState>,
    /// Updates applied per patient since the page loaded.
    pub per_patient: RwSignal<HashMap<String, u32>>,
    /// The last `seq` applied.
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
            state: RwSignal::new(ConnectionState::Offline),
            per_patient: RwSignal::new(HashMap::new()),
            last_seq: RwSignal::new(0),
        }
    }

    /// Applies one update unless it was applied already; returns whether it was new.
    pub fn apply(&self, seq: i64, patient_id: Option<&str>) -> bool {
        if seq <= self.last_seq.get_untracked() {
            return false;
        }
        self.last_seq.set(seq);
        if let Some(patient) = patient_id {
            self.per_patient
                .update(|counts| *counts.entry(patient.to_owned()).or_default() += 1);
        }
        true
    }
}

/// How long to wait before reconnect attempt `attempt` (1, 2, …): doubling from 500 ms, capped
/// at 30 s, with "equal jitter" (`random` in [0, 1)) so that many browsers do not return at once.
pub fn backoff_ms(attempt: u32, random: f64) -> u32 {
    let base = (500u32 << attempt.saturating_sub(1).min(6)).min(30_000);
    base / 2 + (f64::from(base / 2) * random.clamp(0.0, 1.0)) as u32
}

#[cfg(feature = "hydrate")]
pub use browser::{start, stop};

#[cfg(feature = "hydrate")]
mod browser {
    use std::{cell::RefCell, rc::Rc, time::Duration};

    use leptos::prelude::*;
    use wasm_bindgen::{closure::Closure, JsCast};
    use web_sys::{CloseEvent, MessageEvent, WebSocket};

    use super::{backoff_ms, ConnectionState, Realtime};
    use crate::wire::{self, ClientMessage, ServerMessage, Subscribe};

    struct Client {
        realtime: Realtime,
        patient_ids: Vec<String>,
        attempt: u32,
        /// Set by [`stop`]: no more reconnects.
        stopped: bool,
        socket: Option<WebSocket>,
        on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
        on_close: Option<Closure<dyn FnMut(CloseEvent)>>,
    }

    thread_local! {
        /// The page's one client; its socket handlers live as long as it does.
        static CLIENT: RefCell<Option<Rc<RefCell<Client>>>> = const { RefCell::new(None) };
    }

    /// Connects and keeps connected until [`stop`] (replacing any client already running).
    pub fn start(realtime: Realtime, patient_ids: Vec<String>) {
        stop();
        let client = Rc::new(RefCell::new(Client {
            realtime,
            patient_ids,
            attempt: 0,
            stopped: false,
            socket: None,
            on_message: None,
            on_close: None,
        }));
        CLIENT.with(|slot| *slot.borrow_mut() = Some(client.clone()));
        connect(&client);
    }

    /// Closes the socket and stops reconnecting (the screen that needed it is gone).
    pub fn stop() {
        let Some(client) = CLIENT.with(|slot| slot.borrow_mut().take()) else {
            return;
        };
        let mut state = client.borrow_mut();
        state.stopped = true;
        if let Some(socket) = state.socket.take() {
            socket.set_onmessage(None);
            socket.set_onclose(None);
            let _ = socket.close();
        }
        state.realtime.state.set(ConnectionState::Offline);
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
        if client.borrow().stopped {
            return;
        }
        let realtime = client.borrow().realtime;
        realtime.state.set(if client.borrow().attempt == 0 {
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
                client
                    .borrow()
                    .realtime
                    .state
                    .set(ConnectionState::Reconnecting);
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
        // always go through a timer.
        state.on_message = Some(on_message);
        state.on_close = Some(on_close);
    }

    fn receive(client: &Rc<RefCell<Client>>, message: ServerMessage) {
        let realtime = client.borrow().realtime;
        match message {
            ServerMessage::Welcome(welcome) => {
                client.borrow_mut().attempt = 0;
                realtime.state.set(ConnectionState::Live);
                // First connection: from the head now; afterwards: from what was applied.
                let applied = realtime.last_seq.get_untracked();
                let after = if applied > 0 { applied } else { welcome.seq };
                if applied == 0 {
                    realtime.last_seq.set(welcome.seq);
                }
                let subscribe = ClientMessage::Subscription(Subscribe {
                    subscription_id: "worklist".into(),
                    patient_ids: client.borrow().patient_ids.clone(),
                    resource_types: Vec::new(),
                    rooms: vec![crate::events::FACILITY_ALERTS.into()],
                    after_seq: Some(after),
                });
                if let (Some(socket), Ok(text)) =
                    (&client.borrow().socket, serde_json::to_string(&subscribe))
                {
                    let _ = socket.send_with_str(&text);
                }
            }
            ServerMessage::Update(update) => {
                realtime.apply(update.seq, update.patient_id.as_deref());
            }
            ServerMessage::Reset { .. } => {
                // The gap cannot be replayed: what the page shows is stale. Load it again.
                let _ = window().location().reload();
            }
            _ => {}
        }
    }

    fn retry(client: &Rc<RefCell<Client>>) {
        let attempt = {
            let mut state = client.borrow_mut();
            state.attempt += 1;
            state.attempt
        };
        let delay = backoff_ms(attempt, js_sys::Math::random());
        let client = client.clone();
        set_timeout(
            move || connect(&client),
            Duration::from_millis(u64::from(delay)),
        );
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
                    let mut state = client.borrow_mut();
                    state.stopped = true;
                    state.realtime.state.set(ConnectionState::Offline);
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
    fn updates_apply_once_in_seq_order() {
        let owner = Owner::new();
        owner.with(|| {
            let realtime = Realtime::new();
            assert!(realtime.apply(5, Some("p1")));
            assert!(!realtime.apply(5, Some("p1")), "a repeat is ignored");
            assert!(!realtime.apply(4, Some("p1")), "an older one too");
            assert!(realtime.apply(6, None));
            assert_eq!(realtime.per_patient.get_untracked().get("p1"), Some(&1));
            assert_eq!(realtime.last_seq.get_untracked(), 6);
        });
    }
}
