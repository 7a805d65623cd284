//! `GET /ws/subscriptions-r4`: the socket outside FHIR clients bind their Subscriptions to.
//!
//! Medplum's protocol: the client sends `{"type": "bind-with-token", "payload": {"token"}}` with a
//! token from `$get-ws-binding-token` (several subscriptions per socket), `unbind-from-token`, and
//! `{"type": "ping"}` (answered `{"type": "pong"}`). The server sends `history` Bundles whose first
//! entry is a SubscriptionStatus: `handshake` per bind, `heartbeat` at the subscription's period,
//! `event-notification` with real event numbers. Our extension: a bind whose payload carries
//! `eventsSinceNumber: N` first receives the notifications after N from the log, then the live
//! ones, with no gap and no repeat. The catch-up is streamed from the log a page at a time as the
//! client reads it, between the socket's other work (pings, other bindings), so a backlog of any
//! size costs one page of memory; live notifications of that binding are not queued meanwhile
//! (each is committed before it is sent, so the catch-up reads it).
//!
//! When a bound Subscription stops (off, error, deleted) the socket receives its final status
//! (`status` `off` or `error`, the reason in `error`) and the binding ends; a socket left with
//! nothing bound is closed.
//!
//! A binding lasts as long as the session that asked for its token: when that session ends, the
//! socket gets an OperationOutcome and is closed with 4401 (see `crate::sessions`).
//!
//! What it must never do: bind without a valid token for that very subscription and user, or let
//! a malformed frame hurt the socket or the server (it gets an OperationOutcome).

use std::{
    collections::{HashMap, VecDeque},
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

use super::{
    context::Context,
    notify::{handshake, heartbeat, notification, OwnerAccess},
    registry::{Binding, Frame, Kill},
};
use crate::{
    auth::identity::{Purpose, Role},
    fhir::error::operation_outcome,
    fhir::error::Issue,
    sessions::Hold,
    state::AppState,
};

/// Largest client frame accepted.
const MAX_FRAME: usize = 16 * 1024;
/// A socket that has bound nothing after this long is closed.
const BIND_WITHIN: Duration = Duration::from_secs(60);
/// Frames queued per socket before it is closed as too slow.
const QUEUE: usize = 4096;
/// Notifications read from the log per step of a catch-up.
const REPLAY_PAGE: usize = 200;

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
        .on_upgrade(move |socket| serve(state.subscriptions_context(), socket))
}

/// How long a closing socket may take to write its last frames.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

async fn serve(state: Context, socket: WebSocket) {
    let id = NEXT_SOCKET.fetch_add(1, Ordering::Relaxed);
    let (queue, mut frames) = mpsc::channel::<Frame>(QUEUE);
    let (kill, mut killed) = watch::channel(None);
    let (mut sink, mut stream) = socket.split();
    // subscription id → its heartbeat period and its session, for those bound on this socket.
    let mut bound: HashMap<String, Bound> = HashMap::new();
    let mut last_sent: HashMap<String, i64> = HashMap::new();
    let mut replays: VecDeque<Replay> = VecDeque::new();
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
                // (Unless it was bound here again since it stopped.)
                if let (true, Some(subscription)) = (frame.ends, &frame.subscription) {
                    if state.registry.is_bound(subscription, id) {
                        continue;
                    }
                    bound.remove(subscription);
                    next_beat.remove(subscription);
                    replays.retain(|r| &r.subscription != subscription);
                    if bound.is_empty() {
                        break None;
                    }
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
                let session = Session { state: &state, socket: id, queue: &queue, kill: &kill };
                if let Some(replay) = handle(&session, &text, &mut bound, &mut next_beat).await {
                    replays.retain(|r| r.subscription != replay.subscription);
                    replays.push_back(replay);
                }
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
                        if let Some(active) = state.registry.active(subscription) {
                            let _ = queue.try_send(Frame::plain(heartbeat(&active)));
                        }
                    }
                }
            }
            // Last in priority: one page of a catch-up, when nothing else is waiting.
            _ = std::future::ready(()), if !replays.is_empty() => {
                let Some(mut replay) = replays.pop_front() else { continue };
                match replay_step(&state, id, &mut replay, &mut last_sent, &mut sink, &mut killed).await {
                    Step::More => replays.push_back(replay),
                    Step::Done => {}
                    Step::Closed(why) => break why,
                }
            }
        }
    };
    state.registry.unbind_socket(id);
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

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// A binding catching up from the log.
struct Replay {
    subscription: String,
    /// The last number sent.
    last: i64,
    /// Still reading the log with live notifications held back; after the switch to live, the
    /// log is read once more, to its end, for those committed while switching.
    replaying: bool,
}

enum Step {
    More,
    Done,
    Closed(Option<Kill>),
}

/// Sends the next page of a catch-up straight to the client (the send waits for the client: that
/// is the back-pressure), or switches the binding to live once the log has nothing more.
async fn replay_step(
    state: &Context,
    socket: u64,
    replay: &mut Replay,
    last_sent: &mut HashMap<String, i64>,
    sink: &mut Sink,
    killed: &mut watch::Receiver<Option<Kill>>,
) -> Step {
    loop {
        let Some(frames) = replay_page(state, &replay.subscription, replay.last).await else {
            return Step::Done;
        };
        if frames.is_empty() {
            if !replay.replaying {
                return Step::Done;
            }
            state.registry.finish_replay(&replay.subscription, socket);
            replay.replaying = false;
            // What was committed while switching is read at once, before any live frame of
            // this binding is sent (those wait in the queue and are dropped as repeats).
            continue;
        }
        for (number, text) in frames {
            let last = last_sent.entry(replay.subscription.clone()).or_default();
            if number > *last {
                *last = number;
                tokio::select! {
                    biased;
                    why = ordered(killed) => return Step::Closed(Some(why)),
                    sent = sink.send(Message::Text(text.into())) => if sent.is_err() { return Step::Closed(None) },
                }
            }
            replay.last = number;
        }
        if replay.replaying {
            return Step::More;
        }
    }
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

/// What a client frame is handled with.
struct Session<'a> {
    state: &'a Context,
    socket: u64,
    queue: &'a mpsc::Sender<Frame>,
    kill: &'a watch::Sender<Option<Kill>>,
}

/// Handles one client frame; a bind with `eventsSinceNumber` answers the catch-up to run.
async fn handle(
    session: &Session<'_>,
    text: &str,
    bound: &mut HashMap<String, Bound>,
    next_beat: &mut HashMap<String, tokio::time::Instant>,
) -> Option<Replay> {
    let Session {
        state,
        socket,
        queue,
        kill,
    } = *session;
    let reply = |frame: Frame| {
        let _ = queue.try_send(frame);
        None
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
                if !state.registry.unbind(&subscription, socket) {
                    reply(outcome(
                        "not-found",
                        "that subscription is not bound here".into(),
                    ));
                }
                return None;
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
            state.registry.caught_up(state.store.head()).await;
            let Some(active) = state.registry.active(&subscription) else {
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
            if bound.contains_key(&subscription) && state.registry.is_bound(&subscription, socket) {
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
            state.registry.bind(
                &subscription,
                Binding {
                    socket,
                    queue: queue.clone(),
                    replaying: since.is_some(),
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
            since.map(|since| Replay {
                subscription,
                last: since,
                replaying: true,
            })
        }
        _ => reply(outcome(
            "not-supported",
            "type must be bind-with-token, unbind-from-token or ping".into(),
        )),
    }
}

/// The next stored notifications of `subscription` after `after`, rendered for its owner now;
/// `None` when it is no longer active here (or the log cannot be read: the client re-binds).
async fn replay_page(
    state: &Context,
    subscription: &str,
    after: i64,
) -> Option<Vec<(i64, String)>> {
    let base = state.base.clone();
    let rows = state
        .store
        .subscription_events(subscription, after, i64::MAX, REPLAY_PAGE)
        .await
        .ok()?;
    let active = state.registry.active(subscription)?;
    if rows.is_empty() {
        return Some(Vec::new());
    }
    let owner = OwnerAccess::load(&state.store, &active.owner).await;
    Some(
        rows.iter()
            .map(|(number, event)| {
                let focus = owner
                    .as_ref()
                    .and_then(|owner| owner.focus(event, &base, active.shape.content));
                (
                    *number,
                    notification(&active, *number, event, focus.as_deref()),
                )
            })
            .collect(),
    )
}
