//! The FHIR store: versioned resources, their search indexes, the event log and the audit trail.
//!
//! Step 2 of the event path. Every write is ONE database transaction that stores the new version,
//! its history row, the events derived from it (`app::events::classify`) with gap-free `seq`
//! numbers, and its audit row — all of it commits, or none of it does. After commit the head
//! `seq` is published on a `watch` channel so the dispatcher can wake up.
//!
//! This module is the only place that speaks SQL. Callers see the narrow interface below; the
//! backend is chosen by the database URL: `sqlite://…` (the default, one node) or `postgres://…`
//! (several nodes on one database, `postgres.rs`). It never decides who may see what: callers
//! pass a `Visibility`.
//!
//! Besides the head `seq`, the store publishes two more things every node must hear about,
//! whichever node caused them: the subscription matcher's committed position and revoked
//! sessions. On SQLite they come from this process; on PostgreSQL from `LISTEN`.

pub mod accounts;
pub(crate) mod index;
mod postgres;
mod sql;
mod sqlite;

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Instant,
};

use app::events::{Action, EventType};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::fhir::search::SearchQuery;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// One stored version of a resource.
#[derive(Debug, Clone)]
pub struct Stored {
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    pub last_updated: String,
    pub deleted: bool,
    /// The full JSON text of this version, `meta` included.
    pub json: Arc<str>,
}

/// Which versions of one resource `_history` reads: `since` (inclusive) and `before`
/// (exclusive) bound `lastUpdated`, in the stored fixed-width UTC text form; versions below
/// `min_version` are left out (`_at`: the version current at the window's start is its floor).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryWindow {
    pub since: Option<String>,
    pub before: Option<String>,
    pub min_version: i64,
}

/// Which audit rows an `AuditEvent` search selects; `None` selects on nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub patient_id: Option<String>,
    /// `_id`: the rows with these ids (an empty list selects none).
    pub ids: Option<Vec<i64>>,
}

/// Who is writing or reading, for the event log and the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<String>,
    /// The client's address, when known.
    pub source: Option<String>,
}

/// What a write asks for.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Create with a server-assigned id.
    Create,
    /// Update (or create) the resource with this id, optionally only if its version matches.
    Update { id: String, if_match: Option<i64> },
    /// Delete (a tombstone version; later reads answer 410).
    Delete { id: String, if_match: Option<i64> },
}

/// What a committed write produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub resource: Stored,
    pub action: Action,
    /// The events committed with it, in `seq` order.
    pub events: Vec<(i64, EventType)>,
}

/// The outcome of reading one resource.
#[derive(Debug, Clone)]
pub enum ReadOutcome {
    Found(Stored),
    /// Deleted; the version of the deletion.
    Gone(i64),
    NotFound,
}

/// One row of the event log, with the resource version it concerns.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    pub seq: i64,
    pub event_type: EventType,
    pub action: Action,
    pub resource_type: String,
    pub resource_id: String,
    pub version_id: i64,
    pub patient_id: Option<String>,
    pub rooms: Vec<String>,
    pub user_id: Option<String>,
    pub timestamp: String,
    /// The JSON text of the version the event concerns.
    #[serde(skip)]
    pub resource_json: Arc<str>,
    /// What the access policy needs of the resource's newest version, read with the event: a
    /// version leaves the server only when the resource as it is now may be seen too.
    #[serde(skip)]
    pub newest: NewestFacts,
}

/// The patient and the label of a resource's newest version (a deletion's tombstone included).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewestFacts {
    pub patient_id: Option<String>,
    pub restricted: bool,
}

/// What the subscription matcher keeps per Subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionState {
    pub subscription_id: String,
    pub owner_id: String,
    /// The `seq` of the write that created it: events after it count.
    pub start_seq: i64,
    /// Matching events so far: the last event number handed out.
    pub events_count: i64,
    pub active: bool,
}

/// A page of search results.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub total: i64,
    pub matches: Vec<Stored>,
    pub included: Vec<Stored>,
}

/// Which patient data a caller may see. The access policy computes it; the store applies it in
/// SQL so that a forbidden row never leaves the database.
#[derive(Debug, Clone)]
pub struct Visibility {
    /// Every patient (admins). Otherwise only `patient_ids`.
    pub all_patients: bool,
    pub patient_ids: Vec<String>,
    /// Patients whose security-labelled (restricted) records the caller may see.
    pub restricted_all: bool,
    pub restricted_patient_ids: Vec<String>,
}

impl Visibility {
    /// No restriction at all: internal callers (seeding, the dispatcher's own reads).
    pub fn everything() -> Self {
        Self {
            all_patients: true,
            patient_ids: Vec::new(),
            restricted_all: true,
            restricted_patient_ids: Vec::new(),
        }
    }
}

/// An audit record (a read, a search, a login…); writes are audited by the store itself.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub ts: String,
    pub user_id: Option<String>,
    /// FHIR AuditEvent.action: C, R, U, D or E.
    pub action: &'static str,
    pub operation: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub patient_id: Option<String>,
    /// FHIR AuditEvent.outcome: "0" success, "4" minor failure, "8" serious failure.
    pub outcome: &'static str,
    pub detail: Option<String>,
    pub source: Option<String>,
}

/// One row of the audit trail as read back.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: i64,
    pub record: AuditRecord,
}

/// Store failures. The FHIR layer maps each to its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{resource_type}/{id} is not known")]
    NotFound { resource_type: String, id: String },
    #[error("{resource_type}/{id} was deleted")]
    Gone {
        resource_type: String,
        id: String,
        version_id: i64,
    },
    #[error(
        "version conflict: If-Match asked for version {expected}, the current version is {actual}"
    )]
    VersionConflict { expected: i64, actual: i64 },
    #[error("references to resources that do not exist: {}", .0.join(", "))]
    UnresolvedReferences(Vec<String>),
    #[error("{0}")]
    Conflict(String),
    /// The search would cost more than a limit allows; the message names the limit.
    #[error("{0}")]
    TooCostly(String),
    #[error("could not open the database at {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("the write could not be committed: {0}")]
    Commit(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Session ids asked about in one query (SQLite binds each as a parameter).
const SESSIONS_PER_QUERY: usize = 1000;

/// The backend behind the store, chosen by the database URL.
#[derive(Clone)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(Box<PgStore>),
}

/// Calls the same async method on whichever backend this is.
macro_rules! on_backend {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite(backend) => backend.$method($($arg),*).await,
            Backend::Postgres(backend) => backend.$method($($arg),*).await,
        }
    };
}

/// The store handle held in `AppState`; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    head: watch::Sender<i64>,
    /// The subscription matcher's committed position: every notification for an event at or
    /// before it is in the database.
    matcher: watch::Sender<i64>,
    /// Sessions revoked on any node.
    revoked: broadcast::Sender<String>,
    /// Whether every revocation reaches this node now (always on SQLite; on PostgreSQL while
    /// its `LISTEN` connection is up and has re-read what it missed).
    hearing: watch::Sender<bool>,
    /// When this node committed recent events: (last seq of a write, commit instant), oldest
    /// first. Only for the commit-to-socket latency metric; bounded.
    commits: Arc<Mutex<VecDeque<(i64, Instant)>>>,
}

/// How many recent commits `Store::commit_instant` remembers.
const COMMIT_CLOCK_LEN: usize = 8192;

/// The right to run the FHIR Subscription matcher. On SQLite there is one node and it always
/// holds it; on PostgreSQL it is a session advisory lock on a connection of its own.
pub struct MatcherLease {
    conn: Option<sqlx::PgConnection>,
}

impl MatcherLease {
    /// Resolves when the lease is lost (its connection died: another node may hold it now).
    /// Never, on SQLite.
    pub async fn lost(&mut self) -> String {
        use sqlx::Connection;
        let Some(conn) = &mut self.conn else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if let Err(error) = conn.ping().await {
                return error.to_string();
            }
        }
    }
}

/// Whether a database URL names PostgreSQL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Store {
    /// Opens (creating if needed) and migrates the database named by `url`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let backend = if is_postgres_url(url) {
            Backend::Postgres(Box::new(PgStore::open(url).await?))
        } else {
            Backend::Sqlite(SqliteStore::open(url).await?)
        };
        let head = match &backend {
            Backend::Sqlite(b) => b.head_seq().await?,
            Backend::Postgres(b) => b.head_seq().await?,
        };
        let position = match &backend {
            Backend::Sqlite(b) => b.setting("subscriptions.position").await?,
            Backend::Postgres(b) => b.setting("subscriptions.position").await?,
        }
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
        let (head_tx, _) = watch::channel(head);
        let (matcher_tx, _) = watch::channel(position);
        let (revoked_tx, _) = broadcast::channel(1024);
        let (hearing_tx, _) = watch::channel(matches!(backend, Backend::Sqlite(_)));
        if let Backend::Postgres(pg) = &backend {
            pg.spawn_listener(postgres::Wakers {
                head: head_tx.clone(),
                matcher: matcher_tx.clone(),
                revoked: revoked_tx.clone(),
                hearing: hearing_tx.clone(),
            });
        }
        Ok(Self {
            backend,
            head: head_tx,
            matcher: matcher_tx,
            revoked: revoked_tx,
            hearing: hearing_tx,
            commits: Arc::new(Mutex::new(VecDeque::with_capacity(COMMIT_CLOCK_LEN))),
        })
    }

    /// Whether other nodes may share this database (PostgreSQL).
    pub fn shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Writes a resource (`body` is None only for deletes) and returns what was committed.
    pub async fn write(
        &self,
        actor: &Actor,
        resource_type: &str,
        op: WriteOp,
        body: Option<Value>,
    ) -> Result<Option<Written>, StoreError> {
        let written = on_backend!(self.write(actor, resource_type, op, body))?;
        if let Some(&(last, _)) = written.as_ref().and_then(|w| w.events.last()) {
            if let Ok(mut commits) = self.commits.lock() {
                if commits.len() == COMMIT_CLOCK_LEN {
                    commits.pop_front();
                }
                commits.push_back((last, Instant::now()));
            }
            // Answers of one commit batch arrive concurrently: only ever move the head forward.
            advance(&self.head, last);
        }
        Ok(written)
    }

    /// Waits until this node may run the subscription matcher (at once on SQLite).
    pub async fn matcher_lease(&self) -> MatcherLease {
        match &self.backend {
            Backend::Sqlite(_) => MatcherLease { conn: None },
            Backend::Postgres(pg) => MatcherLease {
                conn: Some(pg.matcher_lease().await),
            },
        }
    }

    /// Wakes whenever the matcher's committed position moves, on any node.
    pub fn subscribe_matcher(&self) -> watch::Receiver<i64> {
        self.matcher.subscribe()
    }

    /// The matcher on this node has numbered everything up to `position` (all committed).
    pub fn matcher_reached(&self, position: i64) {
        advance(&self.matcher, position);
    }

    /// Re-reads the matcher's committed position (the follower's once-a-second safety net on
    /// PostgreSQL; on SQLite the position never comes from elsewhere).
    pub async fn poll_matcher(&self) {
        if let Backend::Postgres(pg) = &self.backend {
            match pg.matcher_position().await {
                Ok(position) => advance(&self.matcher, position),
                Err(error) => tracing::warn!(%error, "reading the matcher position failed"),
            }
        }
    }

    /// Session ids revoked on any node from now on.
    pub fn subscribe_revoked(&self) -> broadcast::Receiver<String> {
        self.revoked.subscribe()
    }

    /// Whether every revocation reaches this node now; while not, a sign-out elsewhere may go
    /// unheard (PostgreSQL, its `LISTEN` connection lost).
    pub fn hears_revocations(&self) -> bool {
        *self.hearing.borrow()
    }

    pub async fn read(&self, resource_type: &str, id: &str) -> Result<ReadOutcome, StoreError> {
        on_backend!(self.read(resource_type, id))
    }

    pub async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> Result<Option<Stored>, StoreError> {
        on_backend!(self.vread(resource_type, id, version_id))
    }

    /// The resource's newest version, a deletion's tombstone included (it holds the deleted
    /// content, so the access policy can still judge it).
    pub async fn newest(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        on_backend!(self.newest(resource_type, id))
    }

    /// Up to `limit` versions of one resource older than `below`, newest first: `_history` walks
    /// a resource's versions in such chunks, so it judges every version without holding them all.
    pub async fn versions_below(
        &self,
        resource_type: &str,
        id: &str,
        below: i64,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        self.versions_in(resource_type, id, below, limit, &HistoryWindow::default())
            .await
    }

    /// As [`Store::versions_below`], of the versions inside `window` only (`_since`, `_at`).
    pub async fn versions_in(
        &self,
        resource_type: &str,
        id: &str,
        below: i64,
        limit: usize,
        window: &HistoryWindow,
    ) -> Result<Vec<Stored>, StoreError> {
        on_backend!(self.versions_below(resource_type, id, below, limit, window))
    }

    pub async fn search(
        &self,
        query: &SearchQuery,
        visibility: &Visibility,
    ) -> Result<SearchPage, StoreError> {
        on_backend!(self.search(query, visibility))
    }

    /// Events with `seq > after`, in order, at most `limit` of them.
    pub async fn events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        on_backend!(self.events_after(after, limit))
    }

    /// When this node committed the write whose events end at or after `seq`, if it was this
    /// node and recent. Forgets everything up to `seq`: the dispatcher asks in `seq` order.
    pub fn commit_instant(&self, seq: i64) -> Option<Instant> {
        let mut commits = self.commits.lock().ok()?;
        while commits.front().is_some_and(|&(last, _)| last < seq) {
            commits.pop_front();
        }
        commits.front().map(|&(_, at)| at)
    }

    /// The oldest `seq` the log still holds (`None` when empty).
    pub async fn oldest_seq(&self) -> Result<Option<i64>, StoreError> {
        on_backend!(self.oldest_seq())
    }

    /// Drops events committed before `before` (RFC 3339) from the log, keeping the newest.
    pub async fn prune_events(&self, before: &str) -> Result<u64, StoreError> {
        on_backend!(self.prune_events(before))
    }

    pub async fn subscription_states(&self) -> Result<Vec<SubscriptionState>, StoreError> {
        on_backend!(self.subscription_states())
    }

    /// Re-indexes every current resource if the index computation changed since the database
    /// was indexed (`index::INDEX_VERSION`); answers how many were re-indexed.
    pub async fn reindex_if_stale(&self) -> Result<u64, StoreError> {
        on_backend!(self.reindex_if_stale())
    }

    /// The highest event number handed out to `subscription_id` (0: none), read from the writer.
    pub async fn last_event_number(&self, subscription_id: &str) -> Result<i64, StoreError> {
        on_backend!(self.last_event_number(subscription_id))
    }

    /// Commits a subscription-matcher batch (states, notifications, position) atomically.
    /// `previous` is the position this matcher last committed: if another matcher has moved it
    /// since, nothing is committed and the answer is `StoreError::Conflict`.
    pub async fn record_notifications(
        &self,
        previous: i64,
        position: i64,
        states: &[SubscriptionState],
        notifications: &[(String, i64, i64)],
    ) -> Result<(), StoreError> {
        on_backend!(self.record_notifications(previous, position, states, notifications))?;
        self.matcher_reached(position);
        Ok(())
    }

    /// Every notification committed for events `after < seq <= until`: (subscription, number,
    /// event), in `seq` order.
    pub async fn notifications_between(
        &self,
        after: i64,
        until: i64,
    ) -> Result<Vec<(String, i64, EventRecord)>, StoreError> {
        on_backend!(self.notifications_between(after, until))
    }

    /// Events `after < seq <= until` about Subscriptions, in order.
    pub async fn subscription_writes(
        &self,
        after: i64,
        until: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        on_backend!(self.subscription_writes(after, until))
    }

    /// Notifications `since < n <= until` of a subscription, with their events.
    pub async fn subscription_events(
        &self,
        subscription_id: &str,
        since: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(i64, EventRecord)>, StoreError> {
        on_backend!(self.subscription_events(subscription_id, since, until, limit))
    }

    /// The last committed `seq` (0 for an empty log).
    pub fn head(&self) -> i64 {
        *self.head.borrow()
    }

    /// The head, re-read from the database when other nodes may have moved it further than
    /// this node has heard yet (a client resuming here after its node died may be ahead).
    pub async fn current_head(&self) -> Result<i64, StoreError> {
        if let Backend::Postgres(pg) = &self.backend {
            advance(&self.head, pg.head_seq().await?);
        }
        Ok(self.head())
    }

    /// Wakes whenever the head `seq` moves.
    pub fn subscribe_head(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// Records reads and other non-write actions (batched off the request path).
    pub fn audit(&self, record: AuditRecord) {
        match &self.backend {
            Backend::Sqlite(backend) => backend.audit(record),
            Backend::Postgres(backend) => backend.audit(record),
        }
    }

    /// Waits until every audit record handed to `audit` so far is committed.
    pub async fn flush_audit(&self) -> Result<(), StoreError> {
        on_backend!(self.flush_audit())
    }

    pub async fn audit_rows(
        &self,
        patient_id: Option<&str>,
        count: usize,
        offset: usize,
    ) -> Result<(i64, Vec<AuditRow>), StoreError> {
        let filter = AuditFilter {
            patient_id: patient_id.map(str::to_owned),
            ids: None,
        };
        self.audit_rows_matching(&filter, count, offset).await
    }

    /// The total and one page (newest first) of the audit rows `filter` selects.
    pub async fn audit_rows_matching(
        &self,
        filter: &AuditFilter,
        count: usize,
        offset: usize,
    ) -> Result<(i64, Vec<AuditRow>), StoreError> {
        on_backend!(self.audit_rows(filter, count, offset))
    }

    pub async fn audit_row(&self, id: i64) -> Result<Option<AuditRow>, StoreError> {
        on_backend!(self.audit_row(id))
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        on_backend!(self.setting(key))
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        on_backend!(self.set_setting(key, value))
    }

    /// Number of live resources of a type (for the census and for tests).
    pub async fn count(&self, resource_type: &str) -> Result<i64, StoreError> {
        on_backend!(self.count(resource_type))
    }

    pub async fn user_by_username(
        &self,
        username: &str,
    ) -> Result<Option<accounts::UserRow>, StoreError> {
        on_backend!(self.user_by_username(username))
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<accounts::UserRow>, StoreError> {
        on_backend!(self.user_by_id(id))
    }

    pub async fn insert_user(
        &self,
        user: &accounts::UserRow,
        created_at: &str,
    ) -> Result<(), StoreError> {
        on_backend!(self.insert_user(user, created_at))
    }

    pub async fn create_session(
        &self,
        session_id: &str,
        user_id: &str,
        now: &str,
        expires_at: &str,
        refresh_hash: &str,
    ) -> Result<(), StoreError> {
        on_backend!(self.create_session(session_id, user_id, now, expires_at, refresh_hash))
    }

    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: &str,
        grace_start: &str,
    ) -> Result<accounts::Refresh, StoreError> {
        on_backend!(self.rotate_refresh(old_hash, new_hash, now, grace_start))
    }

    pub async fn revoke_session(
        &self,
        session_id: &str,
        now: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        on_backend!(self.revoke_session(session_id, now, why))
    }

    /// The user of session `session_id` while it is active.
    pub async fn session_user(
        &self,
        session_id: &str,
        now: &str,
    ) -> Result<Option<String>, StoreError> {
        on_backend!(self.session_user(session_id, now))
    }

    /// The live session of a refresh token (by hash) and its user.
    pub async fn session_of_refresh(
        &self,
        token_hash: &str,
        now: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        on_backend!(self.session_of_refresh(token_hash, now))
    }

    /// Which of `session_ids` are active at `now` (not revoked, not expired), asked in as few
    /// queries as the backends' parameter limits allow.
    pub async fn active_sessions(
        &self,
        session_ids: &[String],
        now: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut active = Vec::new();
        for chunk in session_ids.chunks(SESSIONS_PER_QUERY) {
            active.extend(on_backend!(self.active_sessions(chunk, now))?);
        }
        Ok(active)
    }

    pub async fn care_team_patients(
        &self,
        practitioner_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        on_backend!(self.care_team_patients(practitioner_id))
    }

    pub async fn unit_patients(&self, units: &[String]) -> Result<Vec<String>, StoreError> {
        on_backend!(self.unit_patients(units))
    }

    pub async fn prescription_patients(&self) -> Result<Vec<String>, StoreError> {
        on_backend!(self.prescription_patients())
    }

    /// Patients per unit (unit id, count) from the active Encounters.
    pub async fn census(&self) -> Result<Vec<(String, i64)>, StoreError> {
        on_backend!(self.census())
    }
}

/// Moves a watch forward only.
fn advance(watch: &watch::Sender<i64>, value: i64) {
    watch.send_if_modified(|current| {
        let moved = value > *current;
        if moved {
            *current = value;
        }
        moved
    });
}

/// All relative literal references (`Type/id`) in a resource, de-duplicated.
pub fn literal_references(resource: &Value) -> Vec<(String, String)> {
    fn walk(value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if key == "reference" {
                        if let Some(text) = child.as_str() {
                            // Absolute URLs point elsewhere and contained refs start with '#'.
                            if !text.contains("://") && !text.starts_with('#') {
                                if let Some(pair) = crate::fhir::params::split_reference(text) {
                                    out.push(pair);
                                } else {
                                    out.push((String::new(), text.to_owned()));
                                }
                            }
                        }
                    } else if key != "contained" {
                        walk(child, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(resource, &mut out);
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literal_references_skip_external_and_contained() {
        let resource = json!({
            "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "https://elsewhere.org/Practitioner/x"}, {"reference": "#c1"}],
            "basedOn": [{"reference": "ServiceRequest/s1/_history/2"}, {"reference": "Patient/p1"}],
            "contained": [{"resourceType": "Medication", "id": "c1", "x": {"reference": "Patient/zz"}}],
            "bad": {"reference": "not a ref"}
        });
        assert_eq!(
            literal_references(&resource),
            vec![
                (String::new(), "not a ref".to_owned()),
                ("Patient".to_owned(), "p1".to_owned()),
                ("ServiceRequest".to_owned(), "s1".to_owned()),
            ]
        );
    }
}
