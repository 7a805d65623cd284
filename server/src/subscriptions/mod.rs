//! FHIR Subscriptions with a websocket channel, for outside FHIR clients (a lab, a pharmacy, a bed
//! board), compatible with Medplum's protocol and numbered as the Subscriptions Backport IG says.
//!
//! Where it sits: beside the realtime hub, reading the same event log. The matcher walks the log
//! in `seq` order; for each event it decides which active Subscriptions match (criteria with the
//! REST search's semantics, the optional interaction filter, and the owner's access rights),
//! hands each match the subscription's next event number, and commits those numbers with its
//! position in one transaction before anything is sent. Numbers are therefore durable, gap-free
//! per subscription and survive restarts; `$events` and a re-bind with `eventsSinceNumber` replay
//! them from the log.
//!
//! With several nodes on PostgreSQL exactly one of them runs the matcher: the holder of an
//! advisory lock (`Store::matcher_lease`); when it dies another takes over from the committed
//! position, and a compare-and-set on that position stops a matcher that lost its lease from
//! committing anything. Every node runs a follower that reads what the matcher committed, in
//! `seq` order, and delivers it to the sockets bound on that node; binding tokens, `$events` and
//! catch-up read the database, so they work on any node.
//!
//! - `criteria`: parsing `Type?params` and matching one resource version in memory;
//! - `socket`: `/ws/subscriptions-r4` (bind-with-token, unbind-from-token, ping);
//! - here: validation of Subscription writes, the registry of active subscriptions and bound
//!   sockets, the matcher, the notification Bundles and the REST operations.
//!
//! What it must never do: notify about a resource the subscription's owner may not read, or hand
//! out an event number twice.

pub mod criteria;
pub mod socket;
pub mod topics;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use app::events::Action;
use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::get,
    Router,
};
use chrono::Utc;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::{
    access,
    auth::{AuthUser, Role},
    fhir::{date::format_instant, error::FhirError, fhir_json},
    realtime::dispatcher::{AccessCache, ACCESS_TYPES},
    state::AppState,
    store::{EventRecord, ReadOutcome, SubscriptionState},
};
use criteria::Criteria;
use topics::{Content, Shape};

/// Server-stamped: the user whose rights the subscription runs with (`owner_of` reads it).
pub use crate::store::index::{owner_of, OWNER_EXTENSION};
/// Medplum's interaction filter (`create`, `update` or `delete`), honoured as Medplum does.
pub const INTERACTION_EXTENSION: &str =
    "https://medplum.com/fhir/StructureDefinition/subscription-supported-interaction";
/// The Backport IG's heartbeat period, in seconds, on `Subscription.channel`.
pub const HEARTBEAT_EXTENSION: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period";
/// How long a binding token may be used to bind.
pub const BIND_TOKEN_TTL: Duration = Duration::from_secs(10 * 60);
/// Heartbeat period when the Subscription names none.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(60);
/// Notifications per `$events` answer at most.
const MAX_EVENTS_PAGE: usize = 1000;

/// An active Subscription as the matcher evaluates it.
#[derive(Debug, Clone)]
pub struct Active {
    pub id: String,
    pub owner: String,
    /// What it matches: one criteria, or a topic's triggers narrowed by its filters.
    pub criteria: Vec<Criteria>,
    /// How its notifications are rendered.
    pub shape: Shape,
    /// Empty: every interaction.
    pub interactions: Vec<Action>,
    pub heartbeat: Duration,
    pub start_seq: i64,
    /// The last event number handed out.
    pub count: i64,
}

fn extension<'a>(resource: &'a Value, url: &str) -> Vec<&'a Value> {
    resource
        .get("extension")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter(|e| e["url"] == url).collect())
        .unwrap_or_default()
}

fn interactions_of(resource: &Value) -> Result<Vec<Action>, String> {
    extension(resource, INTERACTION_EXTENSION)
        .into_iter()
        .map(|e| match e["valueCode"].as_str() {
            Some("create") => Ok(Action::Created),
            Some("update") => Ok(Action::Updated),
            Some("delete") => Ok(Action::Deleted),
            other => Err(format!(
                "the supported-interaction extension must be create, update or delete, not {other:?}"
            )),
        })
        .collect()
}

fn heartbeat_of(resource: &Value) -> Result<Duration, String> {
    match extension(&resource["channel"], HEARTBEAT_EXTENSION).first() {
        None => Ok(DEFAULT_HEARTBEAT),
        Some(e) => e["valueUnsignedInt"]
            .as_u64()
            .filter(|s| (1..=86_400).contains(s))
            .map(Duration::from_secs)
            .ok_or_else(|| "the heartbeat period must be 1 to 86400 seconds".to_owned()),
    }
}

impl Active {
    /// The subscription a stored version describes, if it is an active websocket one.
    pub fn from_resource(id: &str, resource: &Value, start_seq: i64, count: i64) -> Option<Self> {
        if resource["status"] != "active" || resource["channel"]["type"] != "websocket" {
            return None;
        }
        let (criteria, shape) = topics::matching_of(resource).ok()?;
        Some(Self {
            id: id.to_owned(),
            owner: owner_of(resource)?.to_owned(),
            criteria,
            shape,
            interactions: interactions_of(resource).ok()?,
            heartbeat: heartbeat_of(resource).ok()?,
            start_seq,
            count,
        })
    }

    fn wants(&self, event: &EventRecord, facts: &criteria::Facts) -> bool {
        (self.interactions.is_empty() || self.interactions.contains(&event.action))
            && self
                .criteria
                .iter()
                .any(|c| c.matches_facts(&event.resource_type, &event.resource_id, facts))
    }
}

/// Checks and normalises a Subscription before it is written: websocket channel, a criteria we
/// can evaluate, known extensions; `requested` becomes `active`; the owner is stamped (kept from
/// the previous version on update, so nobody can hand a subscription to someone else).
pub fn prepare(
    user: &AuthUser,
    previous: Option<&Value>,
    body: &mut Value,
) -> Result<(), FhirError> {
    let invalid = |message: String| FhirError::BadRequest(message);
    if body["channel"]["type"] != "websocket" {
        return Err(invalid(
            "only channel.type = websocket is supported (bind through $get-ws-binding-token)"
                .into(),
        ));
    }
    topics::matching_of(body).map_err(|e| invalid(format!("criteria: {e}")))?;
    interactions_of(body).map_err(invalid)?;
    heartbeat_of(body).map_err(invalid)?;
    match body["status"].as_str() {
        Some("requested") | Some("active") => body["status"] = json!("active"),
        Some("off") => {}
        other => {
            return Err(invalid(format!(
                "status must be requested, active or off, not {other:?}"
            )))
        }
    }
    let owner = previous.and_then(owner_of).unwrap_or(&user.id).to_owned();
    let Some(object) = body.as_object_mut() else {
        return Err(invalid("a Subscription is a JSON object".into()));
    };
    let mut extensions: Vec<Value> = object
        .get("extension")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|e| e["url"] != OWNER_EXTENSION)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    extensions.push(json!({"url": OWNER_EXTENSION, "valueString": owner}));
    object.insert("extension".into(), Value::Array(extensions));
    Ok(())
}

/// Whether `user` may see and use the Subscription `resource` (its owner, or an admin).
pub fn may_use(user: &AuthUser, resource: &Value) -> bool {
    user.role == Role::Admin || owner_of(resource) == Some(user.id.as_str())
}

/// The owner a search by `user` over `resource_type` keeps to: a Subscription's criteria names
/// the patients it watches, so only its owner (or an admin) finds it, and counts it.
pub fn search_owner(user: &AuthUser, resource_type: &str) -> Option<String> {
    (resource_type == "Subscription" && user.role != Role::Admin).then(|| user.id.clone())
}

/// A socket bound to a subscription.
pub struct Binding {
    pub socket: u64,
    pub queue: mpsc::Sender<socket::Frame>,
    /// While the socket catches up from the log (`eventsSinceNumber`), live notifications are not
    /// queued: every one of them is committed before it is delivered, so the catch-up reads it.
    pub replaying: bool,
    /// The session of whoever obtained the binding token: when it ends, so does the binding.
    pub session_id: String,
    pub kill: watch::Sender<Option<socket::Kill>>,
}

impl Binding {
    /// Orders its socket closed; the first order wins.
    fn close(&self, why: socket::Kill) {
        self.kill.send_if_modified(|kill| {
            let first = kill.is_none();
            if first {
                *kill = Some(why);
            }
            first
        });
    }
}

/// Where a Subscription's numbering stands. It is kept while the Subscription is off, in error or
/// deleted, so that its event numbers never repeat when it becomes active again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbering {
    pub start_seq: i64,
    /// The last event number handed out.
    pub count: i64,
}

/// The Subscriptions the matcher knows: the active ones, and the numbering of the others.
#[derive(Debug, Default)]
pub struct Registered {
    pub active: HashMap<String, Active>,
    pub dormant: HashMap<String, Numbering>,
}

#[derive(Default)]
struct Inner {
    registered: Registered,
    bindings: HashMap<String, Vec<Binding>>,
}

/// The registry of active subscriptions and bound sockets; one per node.
pub struct Subscriptions {
    inner: Mutex<Inner>,
    /// The matcher's position in the log.
    position: watch::Sender<i64>,
    /// Serialises Subscription writes (see [`Subscriptions::admit`]) so the per-user cap holds.
    admit_lock: tokio::sync::Mutex<()>,
}

impl Subscriptions {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            position: watch::channel(0).0,
            admit_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn active(&self, id: &str) -> Option<Active> {
        self.lock().registered.active.get(id).cloned()
    }

    /// Where the numbering of Subscription `id` stands on this node, active or not.
    pub fn numbering(&self, id: &str) -> Option<Numbering> {
        let inner = self.lock();
        match inner.registered.active.get(id) {
            Some(active) => Some(Numbering {
                start_seq: active.start_seq,
                count: active.count,
            }),
            None => inner.registered.dormant.get(id).copied(),
        }
    }

    fn count_owned_by(&self, user_id: &str) -> usize {
        self.lock()
            .registered
            .active
            .values()
            .filter(|s| s.owner == user_id)
            .count()
    }

    /// Admits a Subscription write (create or update, already [`prepare`]d): one at a time, and
    /// refused (422) when it would make a Subscription active beyond its owner's `cap`
    /// (`--max-subscriptions-per-user`). Hold the guard until the write is registered
    /// ([`Self::caught_up`] with its `seq`), so that the next write counts it.
    pub async fn admit(
        &self,
        id: Option<&str>,
        resource: &Value,
        cap: usize,
    ) -> Result<tokio::sync::MutexGuard<'_, ()>, FhirError> {
        let guard = self.admit_lock.lock().await;
        let activates =
            resource["status"] == "active" && id.is_none_or(|id| self.active(id).is_none());
        if activates && self.count_owned_by(owner_of(resource).unwrap_or_default()) >= cap {
            return Err(FhirError::Unprocessable(format!(
                "the owner already holds {cap} active subscriptions, the most allowed; delete one or set one off first"
            )));
        }
        Ok(guard)
    }

    /// Waits until the matcher has processed the log up to `seq`.
    pub async fn caught_up(&self, seq: i64) {
        let mut position = self.position.subscribe();
        let _ =
            tokio::time::timeout(Duration::from_secs(10), position.wait_for(|at| *at >= seq)).await;
    }

    /// Binds a socket; a `replaying` binding gets no live notifications until
    /// [`Self::finish_replay`].
    pub fn bind(&self, id: &str, binding: Binding) {
        self.lock()
            .bindings
            .entry(id.to_owned())
            .or_default()
            .push(binding);
    }

    /// Ends a socket's catch-up: live notifications are queued from now on. The socket reads the
    /// log once more after this, for those committed while it switched.
    pub fn finish_replay(&self, id: &str, socket: u64) {
        let mut inner = self.lock();
        if let Some(binding) = inner
            .bindings
            .get_mut(id)
            .and_then(|list| list.iter_mut().find(|b| b.socket == socket))
        {
            binding.replaying = false;
        }
    }

    /// Whether `socket` holds a binding of `id` now (a stopped Subscription's bindings are gone).
    pub fn is_bound(&self, id: &str, socket: u64) -> bool {
        self.lock()
            .bindings
            .get(id)
            .is_some_and(|list| list.iter().any(|b| b.socket == socket))
    }

    pub fn unbind(&self, id: &str, socket: u64) -> bool {
        let mut inner = self.lock();
        let Some(list) = inner.bindings.get_mut(id) else {
            return false;
        };
        let before = list.len();
        list.retain(|b| b.socket != socket);
        let removed = list.len() != before;
        if list.is_empty() {
            inner.bindings.remove(id);
        }
        removed
    }

    pub fn unbind_socket(&self, socket: u64) {
        let mut inner = self.lock();
        inner.bindings.retain(|_, list| {
            list.retain(|b| b.socket != socket);
            !list.is_empty()
        });
    }

    /// Closes every socket with a binding of session `session_id` (signed out or revoked).
    pub fn end_session(&self, session_id: &str) {
        let inner = self.lock();
        for binding in inner.bindings.values().flatten() {
            if binding.session_id == session_id {
                binding.close(socket::Kill::SessionEnded);
            }
        }
    }

    fn deliver(&self, id: &str, frame: socket::Frame) {
        let mut inner = self.lock();
        let Some(list) = inner.bindings.get_mut(id) else {
            return;
        };
        for binding in list.iter().filter(|b| !b.replaying) {
            if binding.queue.try_send(frame.clone()).is_err() {
                // Too slow (or gone): it re-binds with eventsSinceNumber.
                binding.close(socket::Kill::Dropped);
            }
        }
    }
}

/// What a status says about one Subscription.
struct Said<'a> {
    id: &'a str,
    shape: &'a Shape,
    /// `active`, `off` or `error`.
    state: &'a str,
    /// The last number handed out.
    count: i64,
    error: Option<&'a str>,
}

impl<'a> Said<'a> {
    /// As a stored Subscription says it: its `status` and `error`.
    fn stored(id: &'a str, shape: &'a Shape, resource: &'a Value, count: i64) -> Self {
        Said {
            id,
            shape,
            state: resource["status"].as_str().unwrap_or("off"),
            count,
            error: resource["error"].as_str(),
        }
    }
}

impl Active {
    fn said(&self, count: i64) -> Said<'_> {
        Said {
            id: &self.id,
            shape: &self.shape,
            state: "active",
            count,
            error: None,
        }
    }
}

/// The status heading every Bundle, in the Subscription's shape: Medplum's R4B
/// SubscriptionStatus, or the IG's R4 `Parameters`. `events` lists (number, event, whether its
/// focus is named): a focus the recipient may not see, or an `empty` content, is not named.
fn status_resource(said: &Said, kind: &str, events: &[(i64, &EventRecord, bool)]) -> Value {
    let focus = |event: &EventRecord| json!({"reference": format!("{}/{}", event.resource_type, event.resource_id)});
    let reference = json!({"reference": format!("Subscription/{}", said.id)});
    if said.shape.r4 {
        let mut parameter = vec![json!({"name": "subscription", "valueReference": reference})];
        if let Some(topic) = &said.shape.topic {
            parameter.push(json!({"name": "topic", "valueCanonical": topic}));
        }
        parameter.push(json!({"name": "status", "valueCode": said.state}));
        parameter.push(json!({"name": "type", "valueCode": kind}));
        parameter.push(json!({"name": "events-since-subscription-start", "valueString": said.count.to_string()}));
        for (number, event, named) in events {
            let mut part = vec![
                json!({"name": "event-number", "valueString": number.to_string()}),
                json!({"name": "timestamp", "valueInstant": event.timestamp}),
            ];
            if *named {
                part.push(json!({"name": "focus", "valueReference": focus(event)}));
            }
            parameter.push(json!({"name": "notification-event", "part": part}));
        }
        if let Some(error) = said.error {
            parameter.push(json!({"name": "error", "valueCodeableConcept": {"text": error}}));
        }
        return json!({
            "resourceType": "Parameters",
            "meta": {"profile": [topics::STATUS_PROFILE]},
            "parameter": parameter,
        });
    }
    let mut status = json!({
        "resourceType": "SubscriptionStatus",
        "status": said.state,
        "type": kind,
        "eventsSinceSubscriptionStart": said.count.to_string(),
        "subscription": reference,
    });
    if let Some(topic) = &said.shape.topic {
        status["topic"] = json!(topic);
    }
    if !events.is_empty() {
        status["notificationEvent"] = events
            .iter()
            .map(|(number, event, named)| {
                let mut listed = json!({
                    "eventNumber": number.to_string(),
                    "timestamp": event.timestamp,
                });
                if *named {
                    listed["focus"] = focus(event);
                }
                listed
            })
            .collect();
    }
    if let Some(error) = said.error {
        status["error"] = json!([{"text": error}]);
    }
    status
}

/// A stored Subscription's status as it stands: its `status` (`error` with the reason from
/// `Subscription.error`) and the last number handed out, in its shape.
fn stored_status(id: &str, resource: &Value, count: i64, kind: &str) -> Value {
    let shape = topics::shape_of(resource);
    status_resource(&Said::stored(id, &shape, resource, count), kind, &[])
}

/// The Bundle entry of one event's focus in `content`: the resource (the stored JSON text spliced
/// in as it is, never parsed again), its id only, or nothing.
pub fn focus_entry(event: &EventRecord, base: &str, content: Content) -> Option<String> {
    if content == Content::Empty {
        return None;
    }
    let (method, code) = match event.action {
        Action::Created => ("POST", "201"),
        Action::Updated => ("PUT", "200"),
        Action::Deleted => ("DELETE", "204"),
    };
    let url = format!("{}/{}", event.resource_type, event.resource_id);
    let head = json!({
        "fullUrl": format!("{base}/{url}"),
        "request": {"method": method, "url": url},
        "response": {"status": code, "etag": format!("W/\"{}\"", event.version_id)},
    })
    .to_string();
    if event.action == Action::Deleted || content == Content::IdOnly {
        Some(head)
    } else {
        // `head` is a JSON object: reopen it to add the resource.
        Some(format!(
            "{},\"resource\":{}}}",
            &head[..head.len() - 1],
            event.resource_json
        ))
    }
}

/// A `history` Bundle: the status first, then the (pre-rendered) focus entries.
fn bundle(id: &str, shape: &Shape, status: Value, focus: &[&str]) -> String {
    let status_entry = json!({
        "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "resource": status,
        "request": {"method": "GET", "url": format!("Subscription/{id}/$status")},
        "response": {"status": "200"},
    });
    let mut head = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "history",
        "timestamp": format_instant(Utc::now()),
    });
    if shape.r4 {
        head["meta"] = json!({"profile": [topics::NOTIFICATION_PROFILE]});
    }
    let head = head.to_string();
    let mut text =
        String::with_capacity(head.len() + 512 + focus.iter().map(|f| f.len() + 1).sum::<usize>());
    text.push_str(&head[..head.len() - 1]);
    text.push_str(",\"entry\":[");
    text.push_str(&status_entry.to_string());
    for entry in focus {
        text.push(',');
        text.push_str(entry);
    }
    text.push_str("]}");
    text
}

/// The `handshake` Bundle sent when a socket binds.
pub fn handshake(active: &Active) -> String {
    let status = status_resource(&active.said(active.count), "handshake", &[]);
    bundle(&active.id, &active.shape, status, &[])
}

/// The `heartbeat` Bundle.
pub fn heartbeat(active: &Active) -> String {
    let status = status_resource(&active.said(active.count), "heartbeat", &[]);
    bundle(&active.id, &active.shape, status, &[])
}

/// An `event-notification` Bundle. `focus` is the focus entry ([`OwnerAccess::focus`]): left out,
/// and the focus not named, when the owner may no longer see it (the number is still sent, so the
/// numbering stays gap-free) or the content is `empty`.
pub fn notification(
    active: &Active,
    number: i64,
    event: &EventRecord,
    focus: Option<&str>,
) -> String {
    let status = status_resource(
        &active.said(number),
        "event-notification",
        &[(number, event, focus.is_some())],
    );
    bundle(&active.id, &active.shape, status, focus.as_slice())
}

/// A Subscription owner as the exit gate sees them now: who they are and what they may see.
pub struct OwnerAccess {
    user: AuthUser,
    visibility: crate::store::Visibility,
}

impl OwnerAccess {
    /// The owner's access now; `None` for an unknown or deactivated account (nothing leaves).
    pub async fn load(state: &AppState, owner_id: &str) -> Option<Self> {
        let user = load_user(state, owner_id).await?;
        let visibility = access::visibility(state, &user).await.ok()?;
        Some(Self { user, visibility })
    }

    /// The focus entry of `event` if it may leave for the owner now (the gate on the event's
    /// version and its resource's newest version), checked again at every delivery.
    pub fn focus(&self, event: &EventRecord, base: &str, content: Content) -> Option<String> {
        access::may_receive(&self.user, &self.visibility, &access::EventFacts::of(event))
            .then(|| focus_entry(event, base, content))
            .flatten()
    }
}

/// Starts the matcher, on whichever node holds the matcher lease (on SQLite: this one), and this
/// node's follower, which delivers what the matcher committed to the sockets bound here.
pub fn spawn_matcher(state: AppState) -> tokio::task::JoinHandle<()> {
    let follower = state.clone();
    tokio::spawn(async move {
        loop {
            match run_follower(&follower).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::error!(%error, "the subscription follower stopped; restarting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let mut lease = state.store.matcher_lease().await;
            if state.store.shared() {
                tracing::info!(node = %state.config.node_id, "this node now runs the subscription matcher");
            }
            tokio::select! {
                outcome = run_matcher(&state) => match outcome {
                    Ok(()) => return,
                    Err(error) => tracing::error!(%error, "the subscription matcher stopped; restarting"),
                },
                why = lease.lost() => {
                    tracing::warn!(%why, "the matcher lease was lost; waiting to win it again");
                }
            }
            drop(lease);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// Loads the Subscriptions as the matcher last committed them: the active ones with their counts,
/// and the numbering of every other one it has ever numbered.
async fn load_registered(state: &AppState) -> Result<Registered, crate::store::StoreError> {
    let store = &state.store;
    let mut registered = Registered::default();
    for row in store.subscription_states().await? {
        let numbering = Numbering {
            start_seq: row.start_seq,
            count: row.events_count,
        };
        let active = match row.active {
            true => match store.read("Subscription", &row.subscription_id).await? {
                ReadOutcome::Found(stored) => {
                    let resource: Value = serde_json::from_str(&stored.json).unwrap_or(Value::Null);
                    Active::from_resource(
                        &row.subscription_id,
                        &resource,
                        numbering.start_seq,
                        numbering.count,
                    )
                }
                _ => None,
            },
            false => None,
        };
        match active {
            Some(active) => {
                registered.active.insert(active.id.clone(), active);
            }
            None => {
                registered.dormant.insert(row.subscription_id, numbering);
            }
        }
    }
    Ok(registered)
}

/// The matcher: loads the Subscriptions as last committed, then follows the log, numbering
/// matches and committing them with its position. It sends nothing itself: the followers do.
///
/// One Subscription that cannot be committed (its numbers clash with ones already stored) never
/// holds up the others: the batch is committed without it, and it is set to `error` with the
/// reason, which its owner reads on the resource and in its status.
async fn run_matcher(state: &AppState) -> Result<(), crate::store::StoreError> {
    let store = &state.store;
    let mut position: i64 = store
        .setting("subscriptions.position")
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // The position last committed: the compare-and-set of `record_notifications` checks it.
    let mut committed = position;
    let mut registered = load_registered(state).await?;

    let mut head = store.subscribe_head();
    let mut access = AccessCache::default();
    let mut owners: HashMap<String, Option<AuthUser>> = HashMap::new();
    let mut saved = std::time::Instant::now();
    loop {
        head.borrow_and_update();
        loop {
            let batch = store.events_after(position, 512).await?;
            let Some(last) = batch.last().map(|e| e.seq) else {
                break;
            };
            let mut changed: HashMap<String, SubscriptionState> = HashMap::new();
            let mut numbered: Vec<(String, i64, i64)> = Vec::new();
            for event in &batch {
                if ACCESS_TYPES.contains(&event.resource_type.as_str()) {
                    access.clear();
                }
                if event.resource_type == "Subscription" {
                    let resource: Value =
                        serde_json::from_str(&event.resource_json).unwrap_or(Value::Null);
                    let row = apply_subscription_change(&mut registered, event, &resource);
                    changed.insert(row.subscription_id.clone(), row);
                    continue;
                }
                // Which subscriptions match; the resource's search facts are extracted once.
                let mut facts: Option<criteria::Facts> = None;
                let matched: Vec<(String, String)> = registered
                    .active
                    .values()
                    .filter(|s| {
                        s.criteria
                            .iter()
                            .any(|c| c.resource_type == event.resource_type)
                    })
                    .filter(|s| {
                        let facts = facts.get_or_insert_with(|| {
                            let resource: Value =
                                serde_json::from_str(&event.resource_json).unwrap_or(Value::Null);
                            criteria::Facts::of(&event.resource_type, &resource)
                        });
                        s.wants(event, facts)
                    })
                    .map(|s| (s.id.clone(), s.owner.clone()))
                    .collect();
                if matched.is_empty() {
                    continue;
                }
                let event_facts = access::EventFacts::of(event);
                for (id, owner_id) in matched {
                    let owner = match owners.get(&owner_id) {
                        Some(owner) => owner.clone(),
                        None => {
                            let owner = load_user(state, &owner_id).await;
                            owners.insert(owner_id.clone(), owner.clone());
                            owner
                        }
                    };
                    let Some(owner) = owner else { continue };
                    let Some(visibility) = access.get(state, &owner).await else {
                        continue;
                    };
                    if !access::may_receive(&owner, &visibility, &event_facts) {
                        continue;
                    }
                    let Some(active) = registered.active.get_mut(&id) else {
                        continue;
                    };
                    active.count += 1;
                    numbered.push((active.id.clone(), active.count, event.seq));
                    changed.insert(active.id.clone(), state_row(active, true));
                }
            }
            let mut states: Vec<SubscriptionState> = changed.into_values().collect();
            // Numbers are committed before anyone sends them. On SQLite a batch that changed
            // nothing only moves the position, saved at most once a second (the single writer
            // connection is the bottleneck; re-reading a second of log after a crash hands out no
            // number twice, those events matched nothing). On PostgreSQL every batch is
            // committed: the followers on other nodes learn the position from the database.
            if !states.is_empty()
                || !numbered.is_empty()
                || store.shared()
                || saved.elapsed() >= Duration::from_secs(1)
            {
                let mut failed = Vec::new();
                if let Err(error) = store
                    .record_notifications(committed, last, &states, &numbered)
                    .await
                {
                    // Only a matcher that still owns the position may blame a Subscription:
                    // numbers another matcher committed meanwhile clash too.
                    let owns = store
                        .setting("subscriptions.position")
                        .await?
                        .is_none_or(|at| at == committed.to_string());
                    if owns {
                        failed = clashing(state, &numbered).await?;
                    }
                    if failed.is_empty() {
                        return Err(error);
                    }
                    for (id, stored) in &failed {
                        tracing::error!(subscription = %id, %error, "a Subscription's event numbers clash with stored ones; setting it to error");
                        numbered.retain(|(n, _, _)| n != id);
                        states.retain(|row| &row.subscription_id != id);
                        if let Some(active) = registered.active.remove(id) {
                            let numbering = Numbering {
                                start_seq: active.start_seq,
                                count: active.count.max(*stored),
                            };
                            registered.dormant.insert(id.clone(), numbering);
                        }
                    }
                    store
                        .record_notifications(committed, last, &states, &numbered)
                        .await?;
                }
                committed = last;
                saved = std::time::Instant::now();
                for (id, stored) in failed {
                    let reason = format!(
                        "event numbers could not be committed: the store already holds up to number {stored}; set status to requested to resume"
                    );
                    set_error(state, &id, &reason).await?;
                }
            } else {
                store.matcher_reached(last);
            }
            position = last;
        }
        tokio::select! {
            changed = head.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The subscriptions of a batch whose first new number is already stored, with the highest
/// number stored for each.
async fn clashing(
    state: &AppState,
    numbered: &[(String, i64, i64)],
) -> Result<Vec<(String, i64)>, crate::store::StoreError> {
    let mut first: HashMap<&str, i64> = HashMap::new();
    for (id, number, _) in numbered {
        let at = first.entry(id.as_str()).or_insert(*number);
        *at = (*at).min(*number);
    }
    let mut clashing = Vec::new();
    for (id, first) in first {
        let stored = state.store.last_event_number(id).await?;
        if stored >= first {
            clashing.push((id.to_owned(), stored));
        }
    }
    Ok(clashing)
}

/// Sets Subscription `id` to `error` with `reason` (a new version, written by the server).
async fn set_error(
    state: &AppState,
    id: &str,
    reason: &str,
) -> Result<(), crate::store::StoreError> {
    state.metrics.subscription_errors.inc();
    let ReadOutcome::Found(stored) = state.store.read("Subscription", id).await? else {
        return Ok(());
    };
    let mut resource: Value = serde_json::from_str(&stored.json).unwrap_or(Value::Null);
    if !resource.is_object() {
        return Ok(());
    }
    resource["status"] = json!("error");
    resource["error"] = json!(reason);
    let actor = crate::store::Actor {
        user_id: None,
        source: Some("subscription-matcher".into()),
    };
    let op = crate::store::WriteOp::Update {
        id: id.to_owned(),
        if_match: Some(stored.version_id),
    };
    match state
        .store
        .write(&actor, "Subscription", op, Some(resource))
        .await
    {
        // Changed meanwhile by its owner: their write decides.
        Ok(_) | Err(crate::store::StoreError::VersionConflict { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

fn state_row(active: &Active, is_active: bool) -> SubscriptionState {
    SubscriptionState {
        subscription_id: active.id.clone(),
        owner_id: active.owner.clone(),
        start_seq: active.start_seq,
        events_count: active.count,
        active: is_active,
    }
}

/// The follower, on every node: keeps this node's registry of active subscriptions in step with
/// the log and delivers to the sockets bound here every notification the matcher has committed,
/// in `seq` order, as the matcher's position moves (woken locally or by `LISTEN`, and polled).
async fn run_follower(state: &AppState) -> Result<(), crate::store::StoreError> {
    let store = &state.store;
    let registry = &state.subscriptions;
    let mut matcher = store.subscribe_matcher();
    // Live from where the matcher stands; earlier notifications are replayed on request.
    let mut position = *matcher.borrow_and_update();
    registry.lock().registered = load_registered(state).await?;
    registry.position.send_replace(position);
    let base = format!("http://{}/fhir/R4", state.leptos.site_addr);
    loop {
        let target = *matcher.borrow_and_update();
        if target > position {
            let changes = store.subscription_writes(position, target).await?;
            let notifications = store.notifications_between(position, target).await?;
            if !notifications.is_empty() && !store.hears_revocations() {
                // A sign-out may have gone unheard: the sessions that ended are closed first.
                crate::sessions::recheck(state).await?;
            }
            let mut changes = changes.into_iter().peekable();
            let mut focus: HashMap<(String, i64, Content), Option<String>> = HashMap::new();
            let mut owners: HashMap<String, Option<OwnerAccess>> = HashMap::new();
            for (id, number, event) in &notifications {
                // Subscription writes before this event apply first (a Subscription event
                // itself is never a notification).
                while let Some(change) = changes.next_if(|c| c.seq < event.seq) {
                    apply_change(state, &change).await?;
                }
                let active = {
                    let mut inner = registry.lock();
                    let Some(active) = inner.registered.active.get_mut(id) else {
                        continue;
                    };
                    active.count = active.count.max(*number);
                    active.clone()
                };
                let text = {
                    if !owners.contains_key(&active.owner) {
                        let owner = OwnerAccess::load(state, &active.owner).await;
                        owners.insert(active.owner.clone(), owner);
                    }
                    let entry = focus
                        .entry((active.owner.clone(), event.seq, active.shape.content))
                        .or_insert_with(|| {
                            owners.get(&active.owner).and_then(|owner| {
                                owner.as_ref()?.focus(event, &base, active.shape.content)
                            })
                        });
                    notification(&active, *number, event, entry.as_deref())
                };
                registry.deliver(
                    id,
                    socket::Frame {
                        subscription: Some(id.clone()),
                        number: Some(*number),
                        text: text.into(),
                        ends: false,
                    },
                );
            }
            for change in changes {
                apply_change(state, &change).await?;
            }
            position = target;
            registry.position.send_replace(position);
        }
        tokio::select! {
            changed = matcher.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            // The safety net: a lost wake-up delays delivery, never loses it.
            _ = tokio::time::sleep(Duration::from_secs(1)) => store.poll_matcher().await,
        }
    }
}

/// Applies a Subscription write to this node's registry; one that becomes active again counts
/// from the last number the matcher handed out (which the follower may not have delivered here).
async fn apply_change(
    state: &AppState,
    change: &EventRecord,
) -> Result<(), crate::store::StoreError> {
    let registry = &state.subscriptions;
    apply_to_registry(registry, change);
    if registry.active(&change.resource_id).is_some() {
        let last = state.store.last_event_number(&change.resource_id).await?;
        if let Some(active) = registry
            .lock()
            .registered
            .active
            .get_mut(&change.resource_id)
        {
            active.count = active.count.max(last);
        }
    }
    Ok(())
}

/// Applies a Subscription write to this node's registry. The sockets of one that stopped (off,
/// error, deleted) get its final status, with the reason of an error, and are unbound from it.
fn apply_to_registry(registry: &Subscriptions, event: &EventRecord) {
    let resource: Value = serde_json::from_str(&event.resource_json).unwrap_or(Value::Null);
    let mut inner = registry.lock();
    let row = apply_subscription_change(&mut inner.registered, event, &resource);
    if row.active {
        return;
    }
    let Some(bindings) = inner.bindings.remove(&event.resource_id) else {
        return;
    };
    let shape = topics::shape_of(&resource);
    let deleted = event.action == Action::Deleted;
    let said = Said {
        id: &event.resource_id,
        shape: &shape,
        state: match resource["status"].as_str() {
            Some("error") if !deleted => "error",
            _ => "off",
        },
        count: row.events_count,
        error: match deleted {
            true => Some("the Subscription was deleted"),
            false => resource["error"].as_str(),
        },
    };
    let text = bundle(
        &event.resource_id,
        &shape,
        status_resource(&said, "heartbeat", &[]),
        &[],
    );
    let last = socket::Frame {
        subscription: Some(event.resource_id.clone()),
        number: None,
        text: text.into(),
        ends: true,
    };
    for binding in bindings {
        if binding.queue.try_send(last.clone()).is_err() {
            binding.close(socket::Kill::Dropped);
        }
    }
}

/// Applies a write to a Subscription to the registered set; returns its state row. Its
/// numbering carries on from where it stood, whether it was active, off, in error or deleted.
fn apply_subscription_change(
    registered: &mut Registered,
    event: &EventRecord,
    resource: &Value,
) -> SubscriptionState {
    let id = &event.resource_id;
    let numbering = match registered.active.remove(id) {
        Some(previous) => Numbering {
            start_seq: previous.start_seq,
            count: previous.count,
        },
        None => registered.dormant.remove(id).unwrap_or(Numbering {
            start_seq: event.seq,
            count: 0,
        }),
    };
    let owner = owner_of(resource)
        .map(str::to_owned)
        .or_else(|| event.user_id.clone())
        .unwrap_or_default();
    let now_active = (event.action != Action::Deleted)
        .then(|| Active::from_resource(id, resource, numbering.start_seq, numbering.count))
        .flatten();
    let is_active = now_active.is_some();
    match now_active {
        Some(now) => {
            registered.active.insert(now.id.clone(), now);
        }
        None => {
            registered.dormant.insert(id.clone(), numbering);
        }
    }
    SubscriptionState {
        subscription_id: id.clone(),
        owner_id: owner,
        start_seq: numbering.start_seq,
        events_count: numbering.count,
        active: is_active,
    }
}

async fn load_user(state: &AppState, id: &str) -> Option<AuthUser> {
    let row = state.store.user_by_id(id).await.ok().flatten()?;
    if !row.active {
        return None;
    }
    Some(AuthUser {
        id: row.id,
        name: row.name,
        role: Role::parse(&row.role)?,
        session_id: String::new(),
        practitioner_id: row.practitioner_id,
        units: row.units,
        via_cookie: false,
    })
}

/// The Backport IG's operations on Subscription, each by GET (parameters in the query) and by
/// POST (a `Parameters` body, or none): `$get-ws-binding-token`, `$events` and `$status` on an
/// instance, and `$status` on the type (`?id=a&id=b`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/Subscription/{id}/$get-ws-binding-token",
            get(binding_token).post(binding_token),
        )
        .route("/Subscription/{id}/$events", get(events).post(events))
        .route(
            "/Subscription/{id}/$status",
            get(status_one).post(status_one),
        )
        .route("/Subscription/$status", get(status_many).post(status_many))
}

/// Largest `Parameters` body an operation reads.
const MAX_OPERATION_BODY: usize = 64 * 1024;

/// An operation's input: the query's parameters, then those of a `Parameters` body (POST), as
/// (name, value) text pairs.
async fn operation_input(
    query: Option<String>,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Vec<(String, String)>, FhirError> {
    let mut input: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let bytes = axum::body::to_bytes(body, MAX_OPERATION_BODY)
        .await
        .map_err(|_| {
            FhirError::PayloadTooLarge(format!(
                "an operation's Parameters may be at most {MAX_OPERATION_BODY} bytes"
            ))
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(input);
    }
    let media = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/fhir+json" && media != "application/json" {
        return Err(FhirError::UnsupportedMediaType(
            "send the operation's Parameters as application/fhir+json".into(),
        ));
    }
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| FhirError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    if body["resourceType"] != "Parameters" {
        return Err(FhirError::BadRequest(
            "the body of an operation is a Parameters resource".into(),
        ));
    }
    for parameter in body["parameter"].as_array().into_iter().flatten() {
        let Some(name) = parameter["name"].as_str() else {
            return Err(FhirError::BadRequest("every parameter needs a name".into()));
        };
        let value = parameter.as_object().and_then(|p| {
            p.iter()
                .find(|(key, _)| key.starts_with("value"))
                .map(|(_, v)| v)
        });
        let text = match value {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => {
                return Err(FhirError::BadRequest(format!(
                    "parameter {name} needs a primitive value[x]"
                )))
            }
        };
        input.push((name.to_owned(), text));
    }
    Ok(input)
}

/// The stored Subscription `id`, if `user` may use it.
async fn owned(state: &AppState, user: &AuthUser, id: &str) -> Result<Value, FhirError> {
    let missing = || FhirError::NotFound(format!("Subscription/{id} is not known"));
    match state.store.read("Subscription", id).await? {
        ReadOutcome::Found(stored) => {
            let resource: Value = serde_json::from_str(&stored.json).unwrap_or(Value::Null);
            if may_use(user, &resource) {
                Ok(resource)
            } else {
                Err(missing())
            }
        }
        ReadOutcome::Gone(_) => Err(FhirError::Gone(format!("Subscription/{id} was deleted"))),
        ReadOutcome::NotFound => Err(missing()),
    }
}

/// Refuses input parameters other than `allowed`.
fn only(input: &[(String, String)], operation: &str, allowed: &[&str]) -> Result<(), FhirError> {
    match input.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((other, _)) => Err(FhirError::BadRequest(format!(
            "{other} is not a parameter of {operation} ({})",
            if allowed.is_empty() {
                "it takes none".to_owned()
            } else {
                allowed.join(", ")
            }
        ))),
        None => Ok(()),
    }
}

async fn binding_token(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: axum::body::Body,
) -> Result<Response, FhirError> {
    let input = operation_input(query, &headers, body).await?;
    only(&input, "$get-ws-binding-token", &["id"])?;
    if let Some((_, other)) = input.iter().find(|(k, v)| k == "id" && *v != id) {
        return Err(FhirError::BadRequest(format!(
            "a token is for this Subscription only, not {other}"
        )));
    }
    let resource = owned(&state, &user, &id).await?;
    if resource["status"] != "active" {
        return Err(FhirError::Unprocessable(format!(
            "Subscription/{id} is not active"
        )));
    }
    let token = state
        .auth
        .issue_bind(&user.info(), &user.session_id, &id, BIND_TOKEN_TTL)?;
    let expiration = Utc::now() + chrono::Duration::from_std(BIND_TOKEN_TTL).unwrap_or_default();
    let base = crate::fhir::base_url(&headers);
    let ws_url = base
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1)
        .replace("/fhir/R4", "/ws/subscriptions-r4");
    let parameters = json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "token", "valueString": token},
            {"name": "expiration", "valueDateTime": format_instant(expiration)},
            {"name": "subscription", "valueString": format!("Subscription/{id}")},
            {"name": "websocket-url", "valueUrl": ws_url},
        ]
    });
    Ok(fhir_json(StatusCode::OK, parameters.to_string()))
}

/// The last number handed out to Subscription `id`, once this node has followed the log up to
/// everything committed before the call.
async fn last_number(state: &AppState, id: &str) -> Result<Numbering, FhirError> {
    state.subscriptions.caught_up(state.store.head()).await;
    if let Some(numbering) = state.subscriptions.numbering(id) {
        return Ok(numbering);
    }
    let row = state
        .store
        .subscription_states()
        .await?
        .into_iter()
        .find(|r| r.subscription_id == id);
    Ok(Numbering {
        start_seq: row.as_ref().map_or(0, |r| r.start_seq),
        count: row.map_or(0, |r| r.events_count),
    })
}

/// `$events` with `eventsSinceNumber` and `eventsUntilNumber`, both inclusive as the IG says:
/// the notifications a client missed, from the log, as one `query-event` Bundle.
async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: axum::body::Body,
) -> Result<Response, FhirError> {
    let input = operation_input(query, &headers, body).await?;
    let resource = owned(&state, &user, &id).await?;
    let mut since = 1i64;
    let mut until = i64::MAX;
    let mut content = None;
    for (key, value) in &input {
        let number = || {
            value
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    FhirError::BadRequest(format!("{key} must be a non-negative integer"))
                })
        };
        match key.as_str() {
            "eventsSinceNumber" => since = number()?,
            "eventsUntilNumber" => until = number()?,
            "content" => {
                content = Some(match value.as_str() {
                    "full-resource" => Content::FullResource,
                    "id-only" => Content::IdOnly,
                    "empty" => Content::Empty,
                    other => {
                        return Err(FhirError::BadRequest(format!(
                            "content must be empty, id-only or full-resource, not {other:?}"
                        )))
                    }
                })
            }
            other => {
                return Err(FhirError::BadRequest(format!(
                    "{other} is not a parameter of $events (eventsSinceNumber, eventsUntilNumber, content)"
                )))
            }
        }
    }
    // Catch up with the log first, so the answer includes everything committed before it.
    let numbering = last_number(&state, &id).await?;
    let rows = state
        .store
        .subscription_events(&id, since.saturating_sub(1), until, MAX_EVENTS_PAGE)
        .await?;
    let visibility = access::visibility(&state, &user).await?;
    let base = crate::fhir::base_url(&headers);
    let shape = topics::shape_of(&resource);
    let content = match content {
        Some(asked) => asked,
        None => shape.content,
    };
    // Each focus judged at the exit gate for the asking user, now.
    let focus: Vec<Option<String>> = rows
        .iter()
        .map(|(_, e)| {
            access::may_receive(&user, &visibility, &access::EventFacts::of(e))
                .then(|| focus_entry(e, &base, content))
                .flatten()
        })
        .collect();
    let listed: Vec<(i64, &EventRecord, bool)> = rows
        .iter()
        .zip(&focus)
        .map(|((n, e), f)| (*n, e, f.is_some()))
        .collect();
    let said = Said::stored(&id, &shape, &resource, numbering.count);
    let status = status_resource(&said, "query-event", &listed);
    let focus: Vec<&str> = focus.iter().flatten().map(String::as_str).collect();
    Ok(fhir_json(
        StatusCode::OK,
        bundle(&id, &shape, status, &focus),
    ))
}

/// `Subscription/{id}/$status`: a `searchset` Bundle with the Subscription's status now.
async fn status_one(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: axum::body::Body,
) -> Result<Response, FhirError> {
    let input = operation_input(query, &headers, body).await?;
    only(&input, "$status", &[])?;
    let resource = owned(&state, &user, &id).await?;
    let numbering = last_number(&state, &id).await?;
    let status = stored_status(&id, &resource, numbering.count, "query-status");
    Ok(fhir_json(StatusCode::OK, status_bundle(&[status])))
}

/// `Subscription/$status?id=a&id=b` (also `id=a,b`): the status of each one the user may use;
/// the others are left out, as a search leaves out what it may not show.
async fn status_many(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: axum::body::Body,
) -> Result<Response, FhirError> {
    let input = operation_input(query, &headers, body).await?;
    only(&input, "$status", &["id", "status"])?;
    let ids: Vec<&str> = input
        .iter()
        .filter(|(k, _)| k == "id")
        .flat_map(|(_, v)| v.split(','))
        .map(|id| id.trim_start_matches("Subscription/"))
        .collect();
    if ids.is_empty() {
        return Err(FhirError::BadRequest(
            "$status on the type needs at least one id".into(),
        ));
    }
    if ids.len() > 100 {
        return Err(FhirError::BadRequest(
            "$status takes at most 100 ids".into(),
        ));
    }
    let wanted: Vec<&str> = input
        .iter()
        .filter(|(k, _)| k == "status")
        .flat_map(|(_, v)| v.split(','))
        .collect();
    let mut statuses = Vec::new();
    for id in ids {
        let Ok(resource) = owned(&state, &user, id).await else {
            continue;
        };
        let state_code = resource["status"].as_str().unwrap_or_default();
        if !wanted.is_empty() && !wanted.contains(&state_code) {
            continue;
        }
        let numbering = last_number(&state, id).await?;
        statuses.push(stored_status(
            id,
            &resource,
            numbering.count,
            "query-status",
        ));
    }
    Ok(fhir_json(StatusCode::OK, status_bundle(&statuses)))
}

fn status_bundle(statuses: &[Value]) -> String {
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "searchset",
        "timestamp": format_instant(Utc::now()),
        "total": statuses.len(),
        "entry": statuses.iter().map(|status| json!({
            "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "resource": status,
            "search": {"mode": "match"},
        })).collect::<Vec<_>>(),
    })
    .to_string()
}
