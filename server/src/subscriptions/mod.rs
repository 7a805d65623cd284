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

/// Server-stamped: the user whose rights the subscription runs with.
pub const OWNER_EXTENSION: &str =
    "http://rounds.example.org/fhir/StructureDefinition/subscription-owner";
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
    pub criteria: Criteria,
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

/// The owner stamped on a stored Subscription.
pub fn owner_of(resource: &Value) -> Option<&str> {
    extension(resource, OWNER_EXTENSION)
        .first()
        .and_then(|e| e["valueString"].as_str())
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
        Some(Self {
            id: id.to_owned(),
            owner: owner_of(resource)?.to_owned(),
            criteria: Criteria::parse(resource["criteria"].as_str()?).ok()?,
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
                .matches_facts(&event.resource_type, &event.resource_id, facts)
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
    let criteria = body["criteria"]
        .as_str()
        .ok_or_else(|| invalid("criteria is required, e.g. Observation?patient=p1".into()))?;
    Criteria::parse(criteria).map_err(|e| invalid(format!("criteria: {e}")))?;
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
    /// While the socket catches up (`eventsSinceNumber`), live notifications wait here.
    pub buffer: Option<Vec<socket::Frame>>,
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

#[derive(Default)]
struct Inner {
    active: HashMap<String, Active>,
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
        self.lock().active.get(id).cloned()
    }

    fn count_owned_by(&self, user_id: &str) -> usize {
        self.lock()
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

    /// Binds a socket; with `replay` it buffers live notifications until [`Self::finish_replay`].
    pub fn bind(&self, id: &str, binding: Binding) {
        self.lock()
            .bindings
            .entry(id.to_owned())
            .or_default()
            .push(binding);
    }

    /// Ends a socket's catch-up: frames buffered meanwhile that come after `last` are queued.
    pub fn finish_replay(&self, id: &str, socket: u64, last: i64) {
        let mut inner = self.lock();
        let Some(binding) = inner
            .bindings
            .get_mut(id)
            .and_then(|list| list.iter_mut().find(|b| b.socket == socket))
        else {
            return;
        };
        for frame in binding.buffer.take().unwrap_or_default() {
            if frame.number.is_none_or(|n| n > last) && binding.queue.try_send(frame).is_err() {
                binding.close(socket::Kill::Dropped);
            }
        }
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
        for binding in list.iter_mut() {
            match &mut binding.buffer {
                Some(buffer) => buffer.push(frame.clone()),
                None => {
                    if binding.queue.try_send(frame.clone()).is_err() {
                        // Too slow (or gone): it re-binds with eventsSinceNumber.
                        binding.close(socket::Kill::Dropped);
                    }
                }
            }
        }
    }
}

/// The SubscriptionStatus (R4B shape, as Medplum sends it in R4) heading every Bundle.
fn status(active: &Active, kind: &str, events: &[(i64, &EventRecord)]) -> Value {
    let mut status = json!({
        "resourceType": "SubscriptionStatus",
        "status": "active",
        "type": kind,
        "eventsSinceSubscriptionStart": active.count.to_string(),
        "subscription": {"reference": format!("Subscription/{}", active.id)},
    });
    if !events.is_empty() {
        status["notificationEvent"] = events
            .iter()
            .map(|(number, event)| {
                json!({
                    "eventNumber": number.to_string(),
                    "timestamp": event.timestamp,
                    "focus": {"reference": format!("{}/{}", event.resource_type, event.resource_id)},
                })
            })
            .collect();
    }
    status
}

/// The Bundle entry of one event's focus resource, rendered once per event: the stored JSON
/// text is spliced in as it is, never parsed again.
pub fn focus_entry(event: &EventRecord, base: &str) -> String {
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
    if event.action == Action::Deleted {
        head
    } else {
        // `head` is a JSON object: reopen it to add the resource.
        format!(
            "{},\"resource\":{}}}",
            &head[..head.len() - 1],
            event.resource_json
        )
    }
}

/// A `history` Bundle: the status first, then the (pre-rendered) focus entries.
fn bundle(status: Value, focus: &[&str]) -> String {
    let subscription = status["subscription"]["reference"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let status_entry = json!({
        "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "resource": status,
        "request": {"method": "GET", "url": format!("{subscription}/$status")},
        "response": {"status": "200"},
    });
    let head = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "history",
        "timestamp": format_instant(Utc::now()),
    })
    .to_string();
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
    bundle(status(active, "handshake", &[]), &[])
}

/// The `heartbeat` Bundle.
pub fn heartbeat(active: &Active) -> String {
    bundle(status(active, "heartbeat", &[]), &[])
}

/// One `event-notification` Bundle; `focus` is the event's [`focus_entry`].
/// An `event-notification` Bundle; `focus` is the focus entry, left out (the number still sent,
/// so the numbering stays gap-free) when the owner may no longer see the focus resource.
pub fn notification(
    active: &Active,
    number: i64,
    event: &EventRecord,
    focus: Option<&str>,
) -> String {
    let mut at_event = active.clone();
    at_event.count = number;
    bundle(
        status(&at_event, "event-notification", &[(number, event)]),
        focus.as_slice(),
    )
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
    pub fn focus(&self, event: &EventRecord, base: &str) -> Option<String> {
        access::may_receive(&self.user, &self.visibility, &access::EventFacts::of(event))
            .then(|| focus_entry(event, base))
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

/// Loads the active subscriptions as the matcher last committed them, with their counts.
async fn load_active(
    state: &AppState,
) -> Result<HashMap<String, Active>, crate::store::StoreError> {
    let store = &state.store;
    let mut loaded = HashMap::new();
    for row in store
        .subscription_states()
        .await?
        .into_iter()
        .filter(|r| r.active)
    {
        if let ReadOutcome::Found(stored) = store.read("Subscription", &row.subscription_id).await?
        {
            let resource: Value = serde_json::from_str(&stored.json).unwrap_or(Value::Null);
            if let Some(active) = Active::from_resource(
                &row.subscription_id,
                &resource,
                row.start_seq,
                row.events_count,
            ) {
                loaded.insert(active.id.clone(), active);
            }
        }
    }
    Ok(loaded)
}

/// The matcher: loads the active subscriptions as last committed, then follows the log, numbering
/// matches and committing them with its position. It sends nothing itself: the followers do.
async fn run_matcher(state: &AppState) -> Result<(), crate::store::StoreError> {
    let store = &state.store;
    let mut position: i64 = store
        .setting("subscriptions.position")
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // The position last committed: the compare-and-set of `record_notifications` checks it.
    let mut committed = position;
    let mut active = load_active(state).await?;

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
                    let (row, _) = apply_subscription_change(&mut active, event, &resource);
                    changed.insert(row.subscription_id.clone(), row);
                    continue;
                }
                // Which subscriptions match; the resource's search facts are extracted once.
                let mut facts: Option<criteria::Facts> = None;
                let matched: Vec<(String, String)> = active
                    .values()
                    .filter(|s| s.criteria.resource_type == event.resource_type)
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
                    let Some(active) = active.get_mut(&id) else {
                        continue;
                    };
                    active.count += 1;
                    numbered.push((active.id.clone(), active.count, event.seq));
                    changed.insert(
                        active.id.clone(),
                        SubscriptionState {
                            subscription_id: active.id.clone(),
                            owner_id: active.owner.clone(),
                            start_seq: active.start_seq,
                            events_count: active.count,
                            active: true,
                        },
                    );
                }
            }
            let states: Vec<SubscriptionState> = changed.into_values().collect();
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
                store
                    .record_notifications(committed, last, &states, &numbered)
                    .await?;
                committed = last;
                saved = std::time::Instant::now();
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

/// The follower, on every node: keeps this node's registry of active subscriptions in step with
/// the log and delivers to the sockets bound here every notification the matcher has committed,
/// in `seq` order, as the matcher's position moves (woken locally or by `LISTEN`, and polled).
async fn run_follower(state: &AppState) -> Result<(), crate::store::StoreError> {
    let store = &state.store;
    let registry = &state.subscriptions;
    let mut matcher = store.subscribe_matcher();
    // Live from where the matcher stands; earlier notifications are replayed on request.
    let mut position = *matcher.borrow_and_update();
    registry.lock().active = load_active(state).await?;
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
            let mut focus: HashMap<(String, i64), Option<String>> = HashMap::new();
            let mut owners: HashMap<String, Option<OwnerAccess>> = HashMap::new();
            for (id, number, event) in &notifications {
                // Subscription writes before this event apply first (a Subscription event
                // itself is never a notification).
                while let Some(change) = changes.next_if(|c| c.seq < event.seq) {
                    apply_to_registry(registry, &change);
                }
                let active = {
                    let mut inner = registry.lock();
                    let Some(active) = inner.active.get_mut(id) else {
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
                        .entry((active.owner.clone(), event.seq))
                        .or_insert_with(|| {
                            owners
                                .get(&active.owner)
                                .and_then(|owner| owner.as_ref()?.focus(event, &base))
                        });
                    notification(&active, *number, event, entry.as_deref())
                };
                registry.deliver(
                    id,
                    socket::Frame {
                        subscription: Some(id.clone()),
                        number: Some(*number),
                        text: text.into(),
                    },
                );
            }
            for change in changes {
                apply_to_registry(registry, &change);
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

/// Applies a Subscription write to this node's registry; closes the sockets of one that stopped.
fn apply_to_registry(registry: &Subscriptions, event: &EventRecord) {
    let resource: Value = serde_json::from_str(&event.resource_json).unwrap_or(Value::Null);
    let mut inner = registry.lock();
    let (_, stopped) = apply_subscription_change(&mut inner.active, event, &resource);
    if stopped {
        // Deactivated or deleted: its sockets are told by closing.
        if let Some(bindings) = inner.bindings.remove(&event.resource_id) {
            for binding in bindings {
                binding.close(socket::Kill::Dropped);
            }
        }
    }
}

/// Applies a write to a Subscription to a set of active subscriptions; returns its state row
/// and whether it is no longer active.
fn apply_subscription_change(
    active: &mut HashMap<String, Active>,
    event: &EventRecord,
    resource: &Value,
) -> (SubscriptionState, bool) {
    let previous = active.remove(&event.resource_id);
    let start_seq = previous.as_ref().map_or(event.seq, |p| p.start_seq);
    let count = previous.as_ref().map_or(0, |p| p.count);
    let owner = owner_of(resource)
        .map(str::to_owned)
        .or_else(|| event.user_id.clone())
        .unwrap_or_default();
    let now_active = (event.action != Action::Deleted)
        .then(|| Active::from_resource(&event.resource_id, resource, start_seq, count))
        .flatten();
    let is_active = now_active.is_some();
    if let Some(now) = now_active {
        active.insert(now.id.clone(), now);
    }
    (
        SubscriptionState {
            subscription_id: event.resource_id.clone(),
            owner_id: owner,
            start_seq,
            events_count: count,
            active: is_active,
        },
        !is_active,
    )
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

/// `GET /fhir/R4/Subscription/{id}/$get-ws-binding-token` and `.../$events`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/Subscription/{id}/$get-ws-binding-token",
            get(binding_token),
        )
        .route("/Subscription/{id}/$events", get(events))
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

async fn binding_token(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, FhirError> {
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

/// `$events?eventsSinceNumber=&eventsUntilNumber=`: the notifications a client missed, from
/// the log, as one `query-event` Bundle.
async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, FhirError> {
    let resource = owned(&state, &user, &id).await?;
    let mut since = 0i64;
    let mut until = i64::MAX;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let number = || {
            value
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    FhirError::BadRequest(format!("{key} must be a non-negative integer"))
                })
        };
        match key.as_ref() {
            "eventsSinceNumber" => since = number()?,
            "eventsUntilNumber" => until = number()?,
            "content" if value == "full-resource" => {}
            other => {
                return Err(FhirError::BadRequest(format!(
                    "{other} is not a parameter of $events (eventsSinceNumber, eventsUntilNumber, content=full-resource)"
                )))
            }
        }
    }
    // Catch up with the log first, so the answer includes everything committed before it.
    state.subscriptions.caught_up(state.store.head()).await;
    let start_seq;
    let count;
    match state.subscriptions.active(&id) {
        Some(active) => {
            start_seq = active.start_seq;
            count = active.count;
        }
        None => {
            let row = state
                .store
                .subscription_states()
                .await?
                .into_iter()
                .find(|r| r.subscription_id == id);
            start_seq = row.as_ref().map_or(0, |r| r.start_seq);
            count = row.map_or(0, |r| r.events_count);
        }
    }
    let rows = state
        .store
        .subscription_events(&id, since, until, MAX_EVENTS_PAGE)
        .await?;
    let visibility = access::visibility(&state, &user).await?;
    let base = crate::fhir::base_url(&headers);
    let listed: Vec<(i64, &EventRecord)> = rows.iter().map(|(n, e)| (*n, e)).collect();
    let focus: Vec<String> = rows
        .iter()
        .map(|(_, e)| e)
        .filter(|e| access::may_receive(&user, &visibility, &access::EventFacts::of(e)))
        .map(|e| focus_entry(e, &base))
        .collect();
    let active = Active {
        id: id.clone(),
        owner: owner_of(&resource).unwrap_or_default().to_owned(),
        criteria: Criteria::parse(resource["criteria"].as_str().unwrap_or_default())
            .map_err(FhirError::BadRequest)?,
        interactions: Vec::new(),
        heartbeat: DEFAULT_HEARTBEAT,
        start_seq,
        count,
    };
    let focus: Vec<&str> = focus.iter().map(String::as_str).collect();
    let body = bundle(status(&active, "query-event", &listed), &focus);
    Ok(fhir_json(StatusCode::OK, body))
}
