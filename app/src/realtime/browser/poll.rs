//! Long-polling `POST /ws/poll`: the carrier the leader uses while sockets cannot be established.
//!
//! Where it sits: beside the socket (`link`), under the same core (`transport`). Each poll carries
//! the whole union's subscriptions, each from its cursor; its answer holds frames in exactly the
//! socket's format and the position it covers. Registrations wait for a poll to confirm them, so
//! while one waits the poll asks for an answer at once. The socket keeps trying meanwhile; its
//! `welcome` stops the poll.
//!
//! What it must never do: act on the answer of a poll it abandoned (a newer one carries newer
//! subscriptions), or poll while a sign-out is under way.

use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::{
    transport::{refresh_session, Backoff, Carrier, Connection},
    wall_ms, with, Client, ConnectionState,
};
use crate::{
    realtime::Transport,
    wire::{self, PollRequest, PollResponse, ServerMessage},
};

/// How long a poll may be held by the server.
const POLL_WAIT_MS: i64 = wire::POLL_WAIT_DEFAULT_MS as i64;

/// Whether the leader polls, and the poll in flight.
pub(super) struct Poll {
    /// Polling (sockets keep failing) until a socket is welcomed.
    pub(super) active: bool,
    pub(super) backoff: Backoff,
    /// Bumped to abandon the poll in flight.
    generation: u64,
    abort: Option<web_sys::AbortController>,
}

impl Carrier for Poll {
    const KIND: Transport = Transport::Polling;
    const UPDATES: &'static str = "update (poll)";

    fn of(connection: &mut Connection) -> &mut Self {
        &mut connection.poll
    }

    fn backoff(&mut self) -> &mut Backoff {
        &mut self.backoff
    }

    fn stop(&mut self) {
        self.generation += 1;
        if let Some(abort) = self.abort.take() {
            abort.abort();
        }
    }

    fn retry() {
        poll_later();
    }
}

impl Poll {
    pub(super) fn new() -> Self {
        Self {
            active: false,
            backoff: Backoff::default(),
            generation: 0,
            abort: None,
        }
    }

    /// Polling begins, its backoff from the start.
    pub(super) fn start(&mut self) {
        self.active = true;
        self.backoff.reset();
    }
}

/// Why a poll brought no answer.
enum PollFailure {
    Unauthorized,
    Failed,
    Abandoned,
}

/// Sends the next poll (abandoning the one in flight, whose subscriptions are out of date).
pub(super) fn poll() {
    let request = with(|c| {
        if c.signing_out.is_some() {
            return None;
        }
        let connection = c
            .connection
            .as_mut()
            .filter(|connection| connection.poll.active)?;
        connection.poll.stop();
        let (subscriptions, sent) = connection.union.poll_request();
        // Registrations wait for a poll to confirm them: ask for an answer at once.
        let wait = if connection.union.waiting() {
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
        connection.poll.abort = abort;
        Some((body, sent, connection.poll.generation, signal))
    });
    let Some((body, sent, generation, signal)) = request else {
        return;
    };
    leptos::task::spawn_local(async move {
        let outcome = fetch_poll(&body, signal.as_ref()).await;
        let current = with(|c| {
            c.connection.as_ref().is_some_and(|connection| {
                connection.poll.active && connection.poll.generation == generation
            })
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
            Err(PollFailure::Unauthorized) => refresh_session::<Poll>().await,
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
                c.log_update::<Poll>(&update);
                texts.push(ServerMessage::Update(update.clone()).to_json());
                updates.push(update);
            }
            ServerMessage::Reset { .. } => {
                c.reset_all();
                return false;
            }
            _ => {}
        }
    }
    let Some(connection) = c.connection.as_mut() else {
        return false;
    };
    connection.head = connection.head.max(answer.seq);
    if !connection.state.is_up() {
        c.milestones.connected_at = Some(wall_ms());
    }
    connection.up::<Poll>();
    let changes = connection.union.polled(sent, answer.seq);
    c.forward(texts, updates, None);
    c.apply(changes);
    // Everything up to the answer's position has now been forwarded for what it was asked.
    c.forward(Vec::new(), Vec::new(), Some(answer.seq));
    c.publish_status();
    true
}

/// Polls again once the backoff has passed.
fn poll_later() {
    let delay = with(|c| {
        let connection = c.connection.as_mut()?;
        let delay = connection.poll.backoff.failed();
        if connection.state.is_up() {
            connection.state = ConnectionState::Reconnecting;
        }
        c.publish_status();
        Some(delay)
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
