//! One WebSocket at `GET /ws`: authentication, the reader and the writer, replay on resume.
//!
//! Where it sits: step 4 of the event path. The writer drains the connection's bounded queue (fed
//! by the dispatcher, by replay and by replies) and flushes once per drain, so a busy socket costs
//! one syscall per batch, not per frame; it also sends heartbeats and closes the socket at token
//! expiry or when ordered (4408 too slow, 4401 signed out, 1001 shutdown after flushing): an order
//! interrupts a write the client is slow to take, so the close frame still follows. The reader
//! parses client messages; bad input gets an `error` frame or a close code, never a panic.
//!
//! What it must never do: send an event the user may not see, or let one socket slow another.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use app::wire::{self, ClientMessage, ErrorBody, ServerMessage, Subscribe};
use axum::{
    extract::{
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        RawQuery, State,
    },
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use futures_util::{
    stream::{SplitSink, SplitStream},
    SinkExt, StreamExt,
};
use tokio::sync::{mpsc, watch};

use super::{
    context::Realtime,
    frame::update_frame,
    hub::{CloseOrder, ConnHandle, Outgoing, Sub},
    request::{
        check, join, log_unavailable, query_token, Checked, Refusal, MAX_ROOMS, MAX_SUBSCRIPTIONS,
    },
};
use crate::{
    access::{self, may_deliver, AccessCache, EventFacts},
    auth::identity::AuthUser,
    event_log::{self, Cursor},
    fhir::error::FhirError,
    state::AppState,
};

/// Largest client frame accepted; larger ones close the socket with 1009.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// Frames written per flush at most (keeps one socket from monopolising a worker).
const WRITE_BATCH: usize = 256;
/// Events read from the log per replay query.
const REPLAY_BATCH: usize = 512;
/// How long a closing socket may take to write its close frame (and, at a shutdown, what was
/// queued before it); a client that does not read is dropped after that.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// `GET /ws`.
pub async fn handler(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let token = query_token(query.as_deref());
    let authenticated = state
        .auth
        .authenticate_socket(&headers, token.as_deref())
        .await;
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(_) => {
            // Not a WebSocket handshake: answer as the API does.
            return match authenticated {
                Err(error) => error.into_response(),
                Ok(_) => {
                    FhirError::BadRequest("GET /ws expects a WebSocket upgrade request".into())
                        .into_response()
                }
            };
        }
    };
    let upgrade = upgrade
        .read_buffer_size(1024)
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(16 * 1024 * 1024)
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME);
    match authenticated {
        // Browsers cannot read a refused handshake's status: accept, then close with the code.
        Err(error) => {
            let code = match error {
                FhirError::Forbidden(_) => wire::CLOSE_FORBIDDEN,
                _ => wire::CLOSE_UNAUTHORIZED,
            };
            state.metrics.bad_frames.inc();
            upgrade.on_upgrade(move |mut socket| async move {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: Utf8Bytes::from(error.to_string()),
                    })))
                    .await;
            })
        }
        Ok((user, expires_at)) => {
            let realtime = state.realtime();
            upgrade.on_upgrade(move |socket| serve(realtime, socket, user, expires_at))
        }
    }
}

/// Runs one authenticated socket until it closes.
async fn serve(rt: Realtime, socket: WebSocket, user: AuthUser, expires_at: i64) {
    let metrics = rt.metrics.clone();
    metrics.connections_total.inc();
    let opened = Instant::now();
    let (queue, frames) = mpsc::channel(rt.queue_frames);
    let (handle, closed) = rt.hub.connect(user, queue.clone());
    // Re-checked while the socket is open; its end reaches the socket through the hub.
    let _session = rt.sessions.hold(&handle.user.session_id);
    let connection_id = uuid::Uuid::new_v4().to_string();
    tracing::debug!(%connection_id, user = %handle.user.id, "socket open");
    let welcome = ServerMessage::Welcome(wire::Welcome {
        connection_id: connection_id.clone(),
        user: handle.user.info(),
        seq: rt.store.head(),
        heartbeat_ms: rt.heartbeat.as_millis() as u64,
    });
    let _ = queue.try_send(Outgoing::reply(welcome.to_json()));

    let (sink, stream) = socket.split();
    let last_heard = Arc::new(AtomicU64::new(0));
    let remaining = Duration::from_secs(
        expires_at
            .saturating_sub(chrono::Utc::now().timestamp())
            .max(0) as u64,
    );
    let mut ordered = closed.clone();
    let mut writer = tokio::spawn(write_loop(
        rt.clone(),
        sink,
        frames,
        closed,
        WriterClock {
            opened,
            last_heard: last_heard.clone(),
            expires: tokio::time::Instant::now() + remaining,
        },
    ));
    let reader = read_loop(&rt, &handle, stream, &queue, &last_heard, opened);
    tokio::select! {
        order = reader => {
            // Out of every room before the closing handshake completes: a client that has seen
            // its close answered is gone from the registry.
            rt.hub.disconnect(handle.id);
            handle.close(order.unwrap_or(CloseOrder { code: 1000, reason: "" }));
            if tokio::time::timeout(CLOSE_WITHIN + Duration::from_secs(1), &mut writer).await.is_err() {
                writer.abort();
            }
        }
        _ = &mut writer => {}
        _ = ordered_close(&mut ordered) => {
            // Nothing more is routed to it (the hub skips a closing connection); the writer
            // leaves whatever it was writing and gives the client CLOSE_WITHIN to take the close
            // frame. It stays registered until then, so a shutdown waits for it.
            if tokio::time::timeout(CLOSE_WITHIN + Duration::from_secs(1), &mut writer).await.is_err() {
                writer.abort();
            }
        }
    }
    rt.hub.disconnect(handle.id);
    metrics
        .connection_duration
        .observe(opened.elapsed().as_secs_f64());
    tracing::debug!(%connection_id, "socket closed");
}

struct WriterClock {
    opened: Instant,
    /// Milliseconds after `opened` when the client was last heard from.
    last_heard: Arc<AtomicU64>,
    /// When the token behind the socket expires.
    expires: tokio::time::Instant,
}

async fn write_loop(
    rt: Realtime,
    mut sink: SplitSink<WebSocket, Message>,
    mut frames: mpsc::Receiver<Outgoing>,
    mut closed: watch::Receiver<Option<CloseOrder>>,
    clock: WriterClock,
) {
    let metrics = rt.metrics.clone();
    let period = rt.heartbeat;
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let expiry = tokio::time::sleep_until(clock.expires);
    tokio::pin!(expiry);
    // Grown only as far as a busy socket needs it: an idle one holds none.
    let mut batch: Vec<Option<Instant>> = Vec::new();
    let order = loop {
        tokio::select! {
            biased;
            order = ordered_close(&mut closed) => break order,
            _ = &mut expiry => {
                break CloseOrder { code: wire::CLOSE_UNAUTHORIZED, reason: "token expired: re-authenticate and resume" };
            }
            _ = heartbeat.tick() => {
                let heard = clock.last_heard.load(Ordering::Relaxed);
                let silent = (clock.opened.elapsed().as_millis() as u64).saturating_sub(heard);
                if silent > 2 * period.as_millis() as u64 + period.as_millis() as u64 / 2 {
                    break CloseOrder { code: wire::CLOSE_POLICY, reason: "no answer to two heartbeats" };
                }
                let beat = ServerMessage::Heartbeat { seq: rt.store.head() }.to_json();
                let sent = async {
                    sink.feed(Message::Text(beat.into())).await?;
                    sink.feed(Message::Ping(Default::default())).await?;
                    sink.flush().await
                };
                match unless_ordered(&mut closed, sent).await {
                    Ok(Ok(())) => {
                        metrics.messages_sent.inc();
                    }
                    Ok(Err(_)) => return,
                    Err(order) => break order,
                }
            }
            frame = frames.recv() => {
                let Some(first) = frame else { return };
                let sent = write_batch(&mut sink, &mut frames, first, &mut batch);
                match unless_ordered(&mut closed, sent).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(order) => break order,
                }
                metrics.messages_sent.inc_by(batch.len() as u64);
                let now = Instant::now();
                for committed in batch.iter().flatten() {
                    metrics.observe_latency(now.duration_since(*committed));
                }
            }
        }
    };
    // A shutdown or a normal close first writes what was already queued. A slow consumer's queue
    // is exactly what it could not take, and an ended session's is no longer its to receive:
    // both are dropped, at once rather than when the close is done.
    if matches!(order.code, wire::CLOSE_TOO_SLOW | wire::CLOSE_UNAUTHORIZED) {
        frames.close();
        while frames.try_recv().is_ok() {}
    }
    let goodbye = async {
        while let Ok(next) = frames.try_recv() {
            if sink.feed(Message::Text(next.text)).await.is_err() {
                break;
            }
            metrics.messages_sent.inc();
        }
        // After the client's own close, the socket has already queued its answer and refuses a
        // second close frame; closing the sink still flushes that answer.
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: order.code,
                reason: Utf8Bytes::from_static(order.reason),
            })))
            .await;
        sink.close().await
    };
    // The close frame is small: a client slow to read but reading still gets it, after what is
    // already on its way; one that does not read at all is dropped when the time is up.
    let _ = tokio::time::timeout(CLOSE_WITHIN, goodbye).await;
}

/// Feeds `first` and what else is queued (up to WRITE_BATCH frames), then flushes once;
/// `batch` collects their commit instants.
async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    frames: &mut mpsc::Receiver<Outgoing>,
    first: Outgoing,
    batch: &mut Vec<Option<Instant>>,
) -> Result<(), axum::Error> {
    batch.clear();
    batch.push(first.committed);
    sink.feed(Message::Text(first.text)).await?;
    while batch.len() < WRITE_BATCH {
        let Ok(next) = frames.try_recv() else { break };
        batch.push(next.committed);
        sink.feed(Message::Text(next.text)).await?;
    }
    sink.flush().await
}

/// Returns once the connection is ordered closed (at once if it already is).
async fn ordered_close(closed: &mut watch::Receiver<Option<CloseOrder>>) -> CloseOrder {
    let order = closed.wait_for(Option::is_some).await.map(|order| *order);
    match order {
        Ok(Some(order)) => order,
        _ => std::future::pending().await,
    }
}

/// Runs a write unless a close order comes first. A write to a client that does not read
/// waits for it forever; the order must still be seen, and the close frame still be sent.
/// Leaving a write half done loses nothing already fed: the sink keeps it ahead of the close.
async fn unless_ordered<T>(
    closed: &mut watch::Receiver<Option<CloseOrder>>,
    write: impl std::future::Future<Output = T>,
) -> Result<T, CloseOrder> {
    tokio::select! {
        biased;
        order = ordered_close(closed) => Err(order),
        done = write => Ok(done),
    }
}

/// Reads client frames until the socket ends; returns how to close it, if the reader decides.
async fn read_loop(
    rt: &Realtime,
    handle: &Arc<ConnHandle>,
    mut stream: SplitStream<WebSocket>,
    queue: &mpsc::Sender<Outgoing>,
    last_heard: &AtomicU64,
    opened: Instant,
) -> Option<CloseOrder> {
    while let Some(frame) = stream.next().await {
        last_heard.store(opened.elapsed().as_millis() as u64, Ordering::Relaxed);
        let reply = match frame {
            Err(error) => {
                return too_big(&error).then_some(CloseOrder {
                    code: wire::CLOSE_TOO_BIG,
                    reason: "frame too large",
                });
            }
            Ok(Message::Close(_)) => return None,
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
            Ok(Message::Binary(_)) => {
                rt.metrics.bad_frames.inc();
                vec![error_frame(
                    "binary_not_supported",
                    "send JSON text frames".into(),
                )]
            }
            // Boxed: what answering a frame holds (a replay's reads) is allocated only while it
            // runs, instead of in every idle socket's task.
            Ok(Message::Text(text)) => Box::pin(handle_text(rt, handle, queue, &text)).await,
        };
        for frame in reply {
            if queue.send(frame).await.is_err() {
                return None;
            }
        }
    }
    None
}

fn too_big(error: &axum::Error) -> bool {
    // axum wraps tungstenite's error; a capacity error is the one that deserves 1009.
    let text = error.to_string();
    text.contains("Space limit exceeded") || text.contains("too long")
}

fn error_frame(code: &str, message: String) -> Outgoing {
    Outgoing::reply(
        ServerMessage::Error(ErrorBody {
            code: code.to_owned(),
            message,
        })
        .to_json(),
    )
}

/// Answers one text frame. Replayed updates are sent directly; replies are returned.
async fn handle_text(
    rt: &Realtime,
    handle: &Arc<ConnHandle>,
    queue: &mpsc::Sender<Outgoing>,
    text: &str,
) -> Vec<Outgoing> {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(_) => {
            rt.metrics.bad_frames.inc();
            return vec![error_frame("invalid_json", "the frame is not JSON".into())];
        }
    };
    let kind = value.get("type").and_then(|t| t.as_str());
    if !matches!(kind, Some("subscription" | "unsubscribe" | "ping")) {
        rt.metrics.bad_frames.inc();
        return vec![error_frame(
            "unknown_type",
            "type must be subscription, unsubscribe or ping".into(),
        )];
    }
    let message: ClientMessage = match serde_json::from_value(value) {
        Ok(message) => message,
        Err(error) => {
            rt.metrics.bad_frames.inc();
            return vec![error_frame("invalid_message", error.to_string())];
        }
    };
    match message {
        ClientMessage::Ping(data) => vec![Outgoing::reply(ServerMessage::Pong(data).to_json())],
        ClientMessage::Unsubscribe { subscription_id } => {
            if rt.hub.unsubscribe(handle.id, &subscription_id) {
                vec![Outgoing::reply(
                    ServerMessage::Unsubscribed { subscription_id }.to_json(),
                )]
            } else {
                vec![error_frame(
                    "unknown_subscription",
                    "no subscription with that id on this connection".into(),
                )]
            }
        }
        ClientMessage::Subscription(request) => match subscribe(rt, handle, queue, request).await {
            Ok(()) => Vec::new(),
            Err((code, message)) => {
                rt.metrics.bad_frames.inc();
                vec![error_frame(code, message)]
            }
        },
    }
}

/// Checks and applies a `subscription`: nothing is joined unless the whole request is valid.
async fn subscribe(
    rt: &Realtime,
    handle: &Arc<ConnHandle>,
    queue: &mpsc::Sender<Outgoing>,
    request: Subscribe,
) -> Result<(), Refusal> {
    let Checked {
        subscription_id,
        rooms: parsed,
        types,
        after_seq,
    } = check(request)?;
    let (subscriptions, joined) = rt.hub.usage(handle.id);
    if subscriptions >= MAX_SUBSCRIPTIONS {
        return Err((
            "too_many_subscriptions",
            format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection"),
        ));
    }
    if joined + parsed.len() > MAX_ROOMS {
        return Err((
            "too_many_rooms",
            format!("at most {MAX_ROOMS} rooms per connection"),
        ));
    }

    let visibility = access::visibility(&rt.store, &handle.user)
        .await
        .map_err(|_| {
            (
                "unavailable",
                "access could not be checked; retry".to_owned(),
            )
        })?;
    let (granted, denied) = join(&handle.user, &visibility, parsed);
    let sub = Sub {
        rooms: granted,
        types,
        live_from: None,
    };

    // Decide on replay before joining, so that a refused replay joins live at once.
    let reset = match after_seq {
        None => None,
        Some(after) => {
            rt.metrics.resumes.inc();
            event_log::resume_refusal(&rt.store, after)
                .await
                .map_err(|_| log_unavailable())?
        }
    };
    let replay = after_seq.filter(|_| reset.is_none());
    rt.hub.subscribe(
        handle.id,
        &subscription_id,
        sub.clone(),
        replay.is_some(),
        rt.store.head(),
    );
    let mut granted: Vec<String> = sub.rooms.iter().cloned().collect();
    granted.sort();
    let subscribed = ServerMessage::Subscribed(wire::Subscribed {
        subscription_id: subscription_id.clone(),
        rooms: granted,
        denied,
    });
    send(queue, subscribed.to_json()).await?;
    if let Some(reason) = reset {
        rt.metrics.resets.inc();
        let seq = rt.store.head();
        send(queue, ServerMessage::Reset { reason, seq }.to_json()).await?;
    }
    if let Some(after) = replay {
        replay_events(rt, handle, queue, &subscription_id, &sub, after).await?;
    }
    Ok(())
}

async fn send(queue: &mpsc::Sender<Outgoing>, text: String) -> Result<(), Refusal> {
    queue
        .send(Outgoing::reply(text))
        .await
        .map_err(|_| ("closed", "connection closed".to_owned()))
}

/// Sends the subscription's events after `after` from the log, then hands it to the live stream
/// at the exact `seq` where the replay stopped.
async fn replay_events(
    rt: &Realtime,
    handle: &Arc<ConnHandle>,
    queue: &mpsc::Sender<Outgoing>,
    subscription_id: &str,
    sub: &Sub,
    after: i64,
) -> Result<(), Refusal> {
    let mut cache = AccessCache::default();
    let replayed = rt
        .metrics
        .updates_sent
        .get_or_create(&vec![("mode", "replay")])
        .clone();
    let mut cursor = Cursor::after(after);
    while !rt
        .hub
        .go_live(handle.id, subscription_id, cursor.position())
    {
        let batch = cursor
            .read(&rt.store, REPLAY_BATCH)
            .await
            .map_err(|_| log_unavailable())?;
        if batch.is_empty() {
            // The dispatcher has routed past the log this node can read: not possible with one
            // database, but never spin.
            tokio::task::yield_now().await;
            continue;
        }
        let visibility = cache.get(&rt.store, &handle.user).await;
        for event in &batch {
            cursor.advance(event.seq);
            // Everything the subscription wants, even what another subscription of this socket
            // delivered live: one socket serves every tab of a browser, and the tab that asks for
            // this replay may not have been listening then. Clients drop repeats by `seq`.
            if !sub.wants(&event.rooms, &event.resource_type) {
                continue;
            }
            let allowed = visibility.as_ref().is_some_and(|visibility| {
                may_deliver(&handle.user, visibility, event, &EventFacts::of(event))
            });
            if !allowed {
                continue;
            }
            queue
                .send(Outgoing {
                    text: update_frame(event),
                    committed: None,
                })
                .await
                .map_err(|_| ("closed", "connection closed".to_owned()))?;
            replayed.inc();
        }
    }
    Ok(())
}
