//! `POST /ws/poll`: the long-poll fallback of `GET /ws`, for browsers behind proxies that refuse
//! WebSocket upgrades.
//!
//! Where it sits: beside the connections of step 4. A poll carries the whole subscription state
//! (each subscription with its `after_seq`), so the server keeps nothing between polls. Like a
//! socket's replay it reads the event log itself, applies the socket's join-time checks and the
//! dispatcher's per-delivery checks, and answers with frames in the socket's format. With nothing
//! to deliver it waits for the dispatcher to read further into the log (the same wake-up after
//! every commit, and the dispatcher's once-a-second safety read) or for `wait_ms` to pass.
//!
//! What it must never do: send an event the user may not see, answer a position it has not
//! examined up to, or hold a database connection while it waits.

use std::{collections::HashSet, fmt::Write, time::Duration};

use app::wire::{
    self, ErrorBody, PollRequest, ServerMessage, POLL_WAIT_DEFAULT_MS, POLL_WAIT_MAX_MS,
};
use axum::{
    body::Body,
    extract::{ws::Utf8Bytes, RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{
    context::Realtime,
    frame::update_frame,
    hub::Sub,
    request::{check, join, query_token, Checked, Refusal, MAX_ROOMS, MAX_SUBSCRIPTIONS},
};
use crate::{
    access::{self, may_deliver, EventFacts},
    auth::identity::AuthUser,
    event_log::{self, Cursor},
    fhir::error::FhirError,
    metrics::Metrics,
    state::AppState,
    store::Visibility,
};

/// Largest request body accepted (400 `too_large` beyond).
pub const MAX_POLL_BODY: usize = 256 * 1024;
/// Update frames per answer at most; the rest waits for the next poll.
pub const PAGE: usize = 500;
/// Events read from the log per query.
const READ_BATCH: usize = 512;
/// Log rows examined per answer at most, so that a sparse subscription far behind does not keep
/// one request reading for long; the answer's `seq` says how far it got.
const MAX_EXAMINED: usize = 20_000;

/// `POST /ws/poll`.
pub async fn handler(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    state.metrics.poll_requests.inc();
    let token = query_token(query.as_deref());
    let (user, expires_at) = match state
        .auth
        .authenticate_socket(&headers, token.as_deref())
        .await
    {
        Ok(authenticated) => authenticated,
        Err(error) => return refused(error),
    };
    let request = match read_request(body).await {
        Ok(request) => request,
        Err((code, message)) => return error_response(StatusCode::BAD_REQUEST, code, message),
    };
    match poll(&state.realtime(), &user, expires_at, request).await {
        Ok(answer) | Err(answer) => answer,
    }
}

/// The answer to a failed authentication: 401 (the browser refreshes and retries) or 403.
fn refused(error: FhirError) -> Response {
    match error {
        FhirError::Unauthorized(message) => {
            let mut response = error_response(StatusCode::UNAUTHORIZED, "unauthorized", message);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            response
        }
        FhirError::Forbidden(message) => {
            error_response(StatusCode::FORBIDDEN, "forbidden", message)
        }
        _ => unavailable("the sign-in could not be checked; retry"),
    }
}

/// `{"type":"error","data":{"code","message"}}`, the socket's error frame, with `status`.
fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let frame = ServerMessage::Error(ErrorBody {
        code: code.to_owned(),
        message,
    });
    json_response(status, frame.to_json())
}

fn unavailable(message: &str) -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        message.to_owned(),
    )
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Reads and parses the body; every failure is a 400 with a code.
async fn read_request(body: Body) -> Result<PollRequest, Refusal> {
    let bytes = axum::body::to_bytes(body, MAX_POLL_BODY)
        .await
        .map_err(|error| {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|inner| inner.to_string().contains("length limit"));
            if too_large {
                (
                    "too_large",
                    format!("the body is larger than {} KiB", MAX_POLL_BODY / 1024),
                )
            } else {
                ("invalid_body", "the body could not be read".to_owned())
            }
        })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| ("invalid_json", "the body is not JSON".to_owned()))?;
    serde_json::from_value(value).map_err(|error| ("invalid_message", error.to_string()))
}

/// One subscription of a poll: what it wants, and after which `seq`.
struct Wanted {
    sub: Sub,
    after: i64,
}

impl Wanted {
    fn wants(&self, seq: i64, rooms: &[String], resource_type: &str) -> bool {
        self.after < seq && self.sub.wants(rooms, resource_type)
    }
}

/// Counts a poll in `rounds_poll_waiting` while it is held (also when the client goes away and
/// the request is dropped mid-wait).
struct Held<'a>(&'a Metrics);

impl<'a> Held<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics.poll_waiting.inc();
        Self(metrics)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.poll_waiting.dec();
    }
}

/// Checks the request, joins, then examines the log (holding the request while there is
/// nothing to deliver). `Err` is an error answer.
async fn poll(
    rt: &Realtime,
    user: &AuthUser,
    expires_at: i64,
    request: PollRequest,
) -> Result<Response, Response> {
    let bad = |(code, message): Refusal| error_response(StatusCode::BAD_REQUEST, code, message);
    let PollRequest {
        subscriptions,
        wait_ms,
    } = request;
    if subscriptions.len() > MAX_SUBSCRIPTIONS {
        return Err(bad((
            "too_many_subscriptions",
            format!("at most {MAX_SUBSCRIPTIONS} subscriptions per poll"),
        )));
    }
    let mut checked = Vec::with_capacity(subscriptions.len());
    let mut ids = HashSet::new();
    let mut rooms = HashSet::new();
    for subscription in subscriptions {
        let subscription = check(subscription).map_err(bad)?;
        if !ids.insert(subscription.subscription_id.clone()) {
            return Err(bad((
                "invalid_message",
                format!(
                    "subscription_id {:?} appears more than once",
                    subscription.subscription_id
                ),
            )));
        }
        rooms.extend(subscription.rooms.iter().map(ToString::to_string));
        checked.push(subscription);
    }
    if rooms.len() > MAX_ROOMS {
        return Err(bad((
            "too_many_rooms",
            format!("at most {MAX_ROOMS} rooms per poll"),
        )));
    }
    let wait = Duration::from_millis(wait_ms.map_or(POLL_WAIT_DEFAULT_MS, |ms| {
        ms.clamp(0, POLL_WAIT_MAX_MS as i64) as u64
    }));

    // Join, as a socket's subscription does: one `subscribed` per subscription, each followed
    // by a `reset` when its replay is impossible (it then continues from the head).
    let visibility = access::visibility(&rt.store, user)
        .await
        .map_err(|_| unavailable("access could not be checked; retry"))?;
    let head = rt.store.head();
    let mut frames = Vec::with_capacity(checked.len());
    let mut wanted = Vec::with_capacity(checked.len());
    let mut reset = false;
    for Checked {
        subscription_id,
        rooms,
        types,
        after_seq,
    } in checked
    {
        let (granted, denied) = join(user, &visibility, rooms);
        let mut listed: Vec<String> = granted.iter().cloned().collect();
        listed.sort();
        frames.push(
            ServerMessage::Subscribed(wire::Subscribed {
                subscription_id,
                rooms: listed,
                denied,
            })
            .to_json(),
        );
        let after = match after_seq {
            None => head,
            Some(after) => match event_log::resume_refusal(&rt.store, after)
                .await
                .map_err(|_| unavailable("the event log is unavailable; retry"))?
            {
                None => after,
                Some(reason) => {
                    reset = true;
                    let seq = rt.store.head();
                    frames.push(ServerMessage::Reset { reason, seq }.to_json());
                    seq
                }
            },
        };
        wanted.push(Wanted {
            sub: Sub {
                rooms: granted,
                types,
                live_from: None,
            },
            after,
        });
    }

    // Examine the log from the oldest position any subscription that holds a room asks for.
    let start = wanted
        .iter()
        .filter(|w| !w.sub.rooms.is_empty())
        .map(|w| w.after)
        .min()
        .unwrap_or(head);
    let token_left = expires_at
        .saturating_sub(chrono::Utc::now().timestamp())
        .max(0) as u64;
    let deadline = tokio::time::Instant::now() + wait.min(Duration::from_secs(token_left));
    let mut progress = rt.hub.subscribe_progress();
    let mut shutdown = rt.hub.subscribe_shutdown();
    let mut scan = Scan {
        cursor: Cursor::after(start),
        updates: Vec::new(),
        visibility: Some(visibility),
    };
    let mut held = None;
    // Re-checked while the poll is held; its end answers the poll at once.
    let mut session = rt.sessions.hold(&user.session_id);
    let mut last_pass = wait.is_zero();
    loop {
        // Seen before reading, so a batch dispatched after this read still wakes the wait.
        progress.borrow_and_update();
        let caught_up = scan
            .run(rt, user, &wanted)
            .await
            .map_err(|()| unavailable("the event log is unavailable; retry"))?;
        if last_pass || reset || !caught_up || !scan.updates.is_empty() || *shutdown.borrow() {
            break;
        }
        if held.is_none() {
            held = Some(Held::new(&rt.metrics));
        }
        tokio::select! {
            changed = progress.changed() => {
                if changed.is_err() {
                    last_pass = true;
                }
            }
            _ = tokio::time::sleep_until(deadline) => last_pass = true,
            _ = shutdown.wait_for(|down| *down) => last_pass = true,
            _ = session.ended() => last_pass = true,
        }
        // Signed out (or the session revoked) while held: nothing more for this token. Access
        // itself is computed afresh for what arrived during the wait.
        let active = rt
            .auth
            .session_active(&rt.store, &user.session_id, &user.id)
            .await
            .map_err(|_| unavailable("the session could not be checked; retry"))?;
        if !active {
            return Err(refused(FhirError::Unauthorized(
                "the session has ended; sign in again".into(),
            )));
        }
        scan.visibility = None;
    }
    drop(held);

    let size = frames.iter().map(String::len).sum::<usize>()
        + scan.updates.iter().map(|u| u.len()).sum::<usize>();
    let mut body = String::with_capacity(size + frames.len() + scan.updates.len() + 32);
    let _ = write!(body, r#"{{"seq":{},"frames":["#, scan.cursor.position());
    let texts = frames
        .iter()
        .map(String::as_str)
        .chain(scan.updates.iter().map(Utf8Bytes::as_str));
    for (i, text) in texts.enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(text);
    }
    body.push_str("]}");
    Ok(json_response(StatusCode::OK, body))
}

/// Reading the log for one poll: how far it got, and what it found to deliver.
struct Scan {
    /// Every event up to here has been examined (the answer's `seq`).
    cursor: Cursor,
    updates: Vec<Utf8Bytes>,
    /// What the user may see, computed when first needed after each wait (`None`: recompute),
    /// so that access revoked while the poll was held is honoured.
    visibility: Option<Visibility>,
}

impl Scan {
    /// Examines the log after the cursor: each event at most once, delivered if some
    /// subscription wants it and the per-delivery check of the dispatcher passes. True when it
    /// reached the end of the log; false when it stopped at a full page or the examination cap.
    async fn run(&mut self, rt: &Realtime, user: &AuthUser, wanted: &[Wanted]) -> Result<bool, ()> {
        let mut examined = 0;
        loop {
            let batch =
                self.cursor.read(&rt.store, READ_BATCH).await.map_err(
                    |error| tracing::warn!(%error, "a poll could not read the event log"),
                )?;
            for event in &batch {
                if wanted
                    .iter()
                    .any(|w| w.wants(event.seq, &event.rooms, &event.resource_type))
                {
                    if self.visibility.is_none() {
                        self.visibility = Some(access::visibility(&rt.store, user).await.map_err(
                            |error| tracing::warn!(%error, user = %user.id, "computing access for a poll failed"),
                        )?);
                    }
                    let allowed = self.visibility.as_ref().is_some_and(|visibility| {
                        may_deliver(user, visibility, event, &EventFacts::of(event))
                    });
                    if allowed {
                        self.updates.push(update_frame(event));
                    }
                }
                self.cursor.advance(event.seq);
                if self.updates.len() >= PAGE {
                    return Ok(false);
                }
            }
            examined += batch.len();
            if batch.len() < READ_BATCH {
                return Ok(true);
            }
            if examined >= MAX_EXAMINED {
                return Ok(false);
            }
        }
    }
}
