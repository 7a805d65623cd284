//! `GET /ws/subscriptions-r4`: the socket outside FHIR clients bind their Subscriptions to.
//!
//! Medplum's protocol: the client sends `{"type": "bind-with-token", "payload": {"token"}}` with a
//! token from `$get-ws-binding-token` (several subscriptions per socket), `unbind-from-token`, and
//! `{"type": "ping"}` (answered `{"type": "pong"}`). The server sends `history` Bundles whose first
//! entry is a SubscriptionStatus: `handshake` per bind, `heartbeat` at the subscription's period,
//! `event-notification` with real event numbers. Our extension: a bind whose payload carries
//! `eventsSinceNumber: N` first receives the notifications after N from the log, then the live
//! ones, with no gap and no repeat.
//!
//! A binding lasts as long as the session that asked for its token: when that session ends, the
//! socket gets an OperationOutcome and is closed with 4401 (see `crate::sessions`).
//!
//! What it must never do: bind without a valid token for that very subscription and user, or let
//! a malformed frame hurt the socket or the server (it gets an OperationOutcome).

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use axum::{
    extract::{
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        State,
    },
    response::Response,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use super::{handshake, heartbeat, notification, Binding, OwnerAccess};
use crate::{
    auth::{Purpose, Role},
    fhir::error::operation_outcome,
    fhir::error::Issue,
    sessions::Hold,
    state::AppState,
};

/// One frame for a subscription socket.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The subscription and event number of a notification (for de-duplication at the seam).
    pub subscription: Option<String>,
    pub number: Option<i64>,
    pub text: Utf8Bytes,
}

impl Frame {
    fn plain(text: String) -> Self {
        Self {
            subscription: None,
            number: None,
            text: text.into(),
        }
    }
}

/// Largest client frame accepted.
const MAX_FRAME: usize = 16 * 1024;
/// A socket that has bound nothing after this long is closed.
const BIND_WITHIN: Duration = Duration::from_secs(60);
/// Frames queued per socket before it is closed as too slow.
const QUEUE: usize = 4096;

static NEXT_SOCKET: AtomicU64 = AtomicU64::new(1);

fn outcome(code: &'static str, message: String) -> Frame {
    Frame::plain(
        operation_outcome(
            "error",
            &[Issue {
                code,
                diagnostics: message,
                expression: None,
            }],
        )
        .to_string(),
    )
}

pub async fn handler(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .read_buffer_size(4 * 1024)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| serve(state, socket))
}

/// Why the server ends a subscription socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// Too slow, or a subscription bound here stopped: closed without a code; the client re-binds.
    Dropped,
    /// The session behind one of its binding tokens ended: an OperationOutcome, then 4401.
    SessionEnded,
}

/// How long a closing socket may take to write its last frames.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

async fn serve(state: AppState, socket: WebSocket) {
    let id = NEXT_SOCKET.fetch_add(1, Ordering::Relaxed);
    let (queue, mut frames) = mpsc::channel::<Frame>(QUEUE);
    let (kill, mut killed) = watch::channel(None);
    let (mut sink, mut stream) = socket.split();
    // subscription id → its heartbeat period and its session, for those bound on this socket.
    let mut bound: HashMap<String, Bound> = HashMap::new();
    let mut last_sent: HashMap<String, i64> = HashMap::new();
    let mut beat = tokio::time::interval(Duration::from_secs(1));
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_beat: HashMap<String, tokio::time::Instant> = HashMap::new();
    let opened = tokio::time::Instant::now();
    let why = loop {
        tokio::select! {
            biased;
            why = ordered(&mut killed) => break Some(why),
            frame = frames.recv() => {
                let Some(frame) = frame else { break None };
                if let (Some(subscription), Some(number)) = (&frame.subscription, frame.number) {
                    let last = last_sent.entry(subscription.clone()).or_default();
                    if number <= *last {
                        continue;
                    }
                    *last = number;
                }
                // A client that does not read must not keep the order to close from being seen.
                tokio::select! {
                    biased;
                    why = ordered(&mut killed) => break Some(why),
                    sent = sink.send(Message::Text(frame.text)) => if sent.is_err() { break None },
                }
            }
            message = stream.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        let _ = queue.try_send(outcome("structure", "send JSON text frames".into()));
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => continue,
                };
                handle(&state, id, &text, &queue, &kill, &mut bound, &mut next_beat).await;
            }
            _ = beat.tick() => {
                if bound.is_empty() && opened.elapsed() > BIND_WITHIN {
                    let _ = sink.send(Message::Text(outcome("timeout", "nothing was bound; closing".into()).text)).await;
                    break None;
                }
                let now = tokio::time::Instant::now();
                for (subscription, bound) in &bound {
                    let due = next_beat.entry(subscription.clone()).or_insert(now + bound.heartbeat);
                    if *due <= now {
                        *due = now + bound.heartbeat;
                        if let Some(active) = state.subscriptions.active(subscription) {
                            let _ = queue.try_send(Frame::plain(heartbeat(&active)));
                        }
                    }
                }
            }
        }
    };
    state.subscriptions.unbind_socket(id);
    let goodbye = async {
        if why == Some(Kill::SessionEnded) {
            let told = outcome(
                "security",
                "the session behind a binding token of this socket has ended; sign in again".into(),
            );
            sink.send(Message::Text(told.text)).await?;
            sink.send(Message::Close(Some(CloseFrame {
                code: app::wire::CLOSE_UNAUTHORIZED,
                reason: Utf8Bytes::from_static("session ended"),
            })))
            .await?;
        }
        sink.close().await
    };
    let _ = tokio::time::timeout(CLOSE_WITHIN, goodbye).await;
}

/// A subscription bound on this socket.
struct Bound {
    heartbeat: Duration,
    /// Its binding token's session, re-checked while it is bound.
    _session: Hold,
}

/// Returns once the socket is ordered closed.
async fn ordered(killed: &mut watch::Receiver<Option<Kill>>) -> Kill {
    let why = killed.wait_for(Option::is_some).await.map(|why| *why);
    match why {
        Ok(Some(why)) => why,
        _ => std::future::pending().await,
    }
}

/// The `token` in a bind/unbind payload.
fn token_of(message: &Value) -> Option<&str> {
    message["payload"]["token"].as_str()
}

async fn handle(
    state: &AppState,
    socket: u64,
    text: &str,
    queue: &mpsc::Sender<Frame>,
    kill: &watch::Sender<Option<Kill>>,
    bound: &mut HashMap<String, Bound>,
    next_beat: &mut HashMap<String, tokio::time::Instant>,
) {
    let reply = |frame: Frame| {
        let _ = queue.try_send(frame);
    };
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return reply(outcome("structure", "the frame is not JSON".into()));
    };
    match message["type"].as_str() {
        Some("ping") => reply(Frame::plain(json!({"type": "pong"}).to_string())),
        Some(kind @ ("bind-with-token" | "unbind-from-token")) => {
            let Some(token) = token_of(&message) else {
                return reply(outcome("required", format!("{kind} needs payload.token")));
            };
            let claims = match state.auth.verify(token, Purpose::Bind) {
                Ok(claims) => claims,
                Err(error) => return reply(outcome("security", error.to_string())),
            };
            let Some(subscription) = claims.subscription_id.clone() else {
                return reply(outcome(
                    "security",
                    "the token names no subscription".into(),
                ));
            };
            if kind == "unbind-from-token" {
                bound.remove(&subscription);
                next_beat.remove(&subscription);
                if !state.subscriptions.unbind(&subscription, socket) {
                    reply(outcome(
                        "not-found",
                        "that subscription is not bound here".into(),
                    ));
                }
                return;
            }
            if !state
                .auth
                .session_is_active(&state.store, &claims.sid, &claims.sub)
                .await
            {
                return reply(outcome(
                    "security",
                    "the session behind the token has ended".into(),
                ));
            }
            // The handshake's count then includes every event committed before the bind.
            state.subscriptions.caught_up(state.store.head()).await;
            let Some(active) = state.subscriptions.active(&subscription) else {
                return reply(outcome(
                    "not-found",
                    format!("Subscription/{subscription} is not active"),
                ));
            };
            // As for every use of a Subscription: its owner, or an admin.
            if active.owner != claims.sub && claims.role != Role::Admin {
                return reply(outcome(
                    "security",
                    "the token's user does not own the subscription".into(),
                ));
            }
            if bound.contains_key(&subscription) {
                return reply(outcome(
                    "duplicate",
                    "that subscription is already bound here".into(),
                ));
            }
            let since = match &message["payload"]["eventsSinceNumber"] {
                Value::Null => Ok(None),
                Value::Number(n) => n.as_i64().filter(|n| *n >= 0).map(Some).ok_or(()),
                Value::String(s) => s
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .map(Some)
                    .ok_or(()),
                _ => Err(()),
            };
            let Ok(since) = since else {
                return reply(outcome(
                    "value",
                    "eventsSinceNumber must be a non-negative integer".into(),
                ));
            };
            state.subscriptions.bind(
                &subscription,
                Binding {
                    socket,
                    queue: queue.clone(),
                    buffer: since.map(|_| Vec::new()),
                    session_id: claims.sid.clone(),
                    kill: kill.clone(),
                },
            );
            bound.insert(
                subscription.clone(),
                Bound {
                    heartbeat: active.heartbeat,
                    _session: state.sessions.hold(&claims.sid),
                },
            );
            reply(Frame::plain(handshake(&active)));
            if let Some(since) = since {
                let last = catch_up(state, &subscription, since, queue).await;
                state
                    .subscriptions
                    .finish_replay(&subscription, socket, last);
            }
        }
        _ => reply(outcome(
            "not-supported",
            "type must be bind-with-token, unbind-from-token or ping".into(),
        )),
    }
}

/// Queues the stored notifications after `since`; returns the last number queued (or `since`).
async fn catch_up(
    state: &AppState,
    subscription: &str,
    since: i64,
    queue: &mpsc::Sender<Frame>,
) -> i64 {
    let base = format!("http://{}/fhir/R4", state.leptos.site_addr);
    let mut last = since;
    loop {
        let Ok(rows) = state
            .store
            .subscription_events(subscription, last, i64::MAX, 500)
            .await
        else {
            return last;
        };
        let Some(active) = state.subscriptions.active(subscription) else {
            return last;
        };
        if rows.is_empty() {
            return last;
        }
        let owner = OwnerAccess::load(state, &active.owner).await;
        for (number, event) in &rows {
            let focus = owner.as_ref().and_then(|owner| owner.focus(event, &base));
            let frame = Frame {
                subscription: Some(subscription.to_owned()),
                number: Some(*number),
                text: notification(&active, *number, event, focus.as_deref()).into(),
            };
            if queue.send(frame).await.is_err() {
                return last;
            }
            last = *number;
        }
    }
}
