//! The FHIR store: versioned resources, their search indexes, the event log and the audit trail.
//!
//! Step 2 of the event path. Every write is ONE database transaction that stores the new version,
//! its history row, the events derived from it (`app::events::classify`) with gap-free `seq`
//! numbers, and its audit row — all of it commits, or none of it does. After commit the head
//! `seq` is published on a `watch` channel so the dispatcher can wake up.
//!
//! This module is the only place that speaks SQL. Callers see the narrow interface below; the
//! backend (SQLite today, PostgreSQL for several nodes) is chosen by the database URL and can be
//! added without touching them. It never decides who may see what: callers pass a `Visibility`.

pub mod accounts;
pub(crate) mod index;
mod sqlite;

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Instant,
};

use app::events::{Action, EventType};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use crate::fhir::search::SearchQuery;
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
    #[error("could not open the database at {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("the write could not be committed: {0}")]
    Commit(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The store handle held in `AppState`; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: SqliteStore,
    head: watch::Sender<i64>,
    /// When this node committed recent events: (last seq of a write, commit instant), oldest
    /// first. Only for the commit-to-socket latency metric; bounded.
    commits: Arc<Mutex<VecDeque<(i64, Instant)>>>,
}

/// How many recent commits `Store::commit_instant` remembers.
const COMMIT_CLOCK_LEN: usize = 8192;

impl Store {
    /// Opens (creating if needed) and migrates the database named by `url`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let backend = SqliteStore::open(url).await?;
        let head = backend.head_seq().await?;
        let (head_tx, _) = watch::channel(head);
        Ok(Self {
            backend,
            head: head_tx,
            commits: Arc::new(Mutex::new(VecDeque::with_capacity(COMMIT_CLOCK_LEN))),
        })
    }

    /// Writes a resource (`body` is None only for deletes) and returns what was committed.
    pub async fn write(
        &self,
        actor: &Actor,
        resource_type: &str,
        op: WriteOp,
        body: Option<Value>,
    ) -> Result<Option<Written>, StoreError> {
        let written = self.backend.write(actor, resource_type, op, body).await?;
        if let Some(&(last, _)) = written.as_ref().and_then(|w| w.events.last()) {
            if let Ok(mut commits) = self.commits.lock() {
                if commits.len() == COMMIT_CLOCK_LEN {
                    commits.pop_front();
                }
                commits.push_back((last, Instant::now()));
            }
            // Answers of one commit batch arrive concurrently: only ever move the head forward.
            self.head.send_if_modified(|head| {
                let advanced = last > *head;
                if advanced {
                    *head = last;
                }
                advanced
            });
        }
        Ok(written)
    }

    pub async fn read(&self, resource_type: &str, id: &str) -> Result<ReadOutcome, StoreError> {
        self.backend.read(resource_type, id).await
    }

    pub async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> Result<Option<Stored>, StoreError> {
        self.backend.vread(resource_type, id, version_id).await
    }

    /// Versions of one resource, newest first, and the total number of versions.
    pub async fn history(
        &self,
        resource_type: &str,
        id: &str,
        count: usize,
        offset: usize,
    ) -> Result<(i64, Vec<Stored>), StoreError> {
        self.backend.history(resource_type, id, count, offset).await
    }

    pub async fn search(
        &self,
        query: &SearchQuery,
        visibility: &Visibility,
    ) -> Result<SearchPage, StoreError> {
        self.backend.search(query, visibility).await
    }

    /// Events with `seq > after`, in order, at most `limit` of them.
    pub async fn events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.backend.events_after(after, limit).await
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
        self.backend.oldest_seq().await
    }

    /// Drops events committed before `before` (RFC 3339) from the log, keeping the newest.
    pub async fn prune_events(&self, before: &str) -> Result<u64, StoreError> {
        self.backend.prune_events(before).await
    }

    pub async fn subscription_states(&self) -> Result<Vec<SubscriptionState>, StoreError> {
        self.backend.subscription_states().await
    }

    /// Commits a subscription-matcher batch (states, notifications, position) atomically.
    pub async fn record_notifications(
        &self,
        position: i64,
        states: &[SubscriptionState],
        notifications: &[(String, i64, i64)],
    ) -> Result<(), StoreError> {
        self.backend
            .record_notifications(position, states, notifications)
            .await
    }

    /// Notifications `since < n <= until` of a subscription, with their events.
    pub async fn subscription_events(
        &self,
        subscription_id: &str,
        since: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(i64, EventRecord)>, StoreError> {
        self.backend
            .subscription_events(subscription_id, since, until, limit)
            .await
    }

    /// The last committed `seq` (0 for an empty log).
    pub fn head(&self) -> i64 {
        *self.head.borrow()
    }

    /// Wakes whenever the head `seq` moves.
    pub fn subscribe_head(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// Records reads and other non-write actions (batched off the request path).
    pub fn audit(&self, record: AuditRecord) {
        self.backend.audit(record);
    }

    /// Waits until every audit record handed to `audit` so far is committed.
    pub async fn flush_audit(&self) -> Result<(), StoreError> {
        self.backend.flush_audit().await
    }

    pub async fn audit_rows(
        &self,
        patient_id: Option<&str>,
        count: usize,
        offset: usize,
    ) -> Result<(i64, Vec<AuditRow>), StoreError> {
        self.backend.audit_rows(patient_id, count, offset).await
    }

    pub async fn audit_row(&self, id: i64) -> Result<Option<AuditRow>, StoreError> {
        self.backend.audit_row(id).await
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.backend.setting(key).await
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.backend.set_setting(key, value).await
    }

    /// Number of live resources of a type (for the census and for tests).
    pub async fn count(&self, resource_type: &str) -> Result<i64, StoreError> {
        self.backend.count(resource_type).await
    }

    pub async fn user_by_username(
        &self,
        username: &str,
    ) -> Result<Option<accounts::UserRow>, StoreError> {
        self.backend.user_by_username(username).await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<accounts::UserRow>, StoreError> {
        self.backend.user_by_id(id).await
    }

    pub async fn insert_user(
        &self,
        user: &accounts::UserRow,
        created_at: &str,
    ) -> Result<(), StoreError> {
        self.backend.insert_user(user, created_at).await
    }

    pub async fn create_session(
        &self,
        session_id: &str,
        user_id: &str,
        now: &str,
        expires_at: &str,
        refresh_hash: &str,
    ) -> Result<(), StoreError> {
        self.backend
            .create_session(session_id, user_id, now, expires_at, refresh_hash)
            .await
    }

    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: &str,
        grace_start: &str,
    ) -> Result<accounts::Refresh, StoreError> {
        self.backend
            .rotate_refresh(old_hash, new_hash, now, grace_start)
            .await
    }

    pub async fn revoke_session(
        &self,
        session_id: &str,
        now: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        self.backend.revoke_session(session_id, now, why).await
    }

    pub async fn session_active(&self, session_id: &str, now: &str) -> Result<bool, StoreError> {
        self.backend.session_active(session_id, now).await
    }

    pub async fn care_team_patients(
        &self,
        practitioner_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.backend.care_team_patients(practitioner_id).await
    }

    pub async fn unit_patients(&self, units: &[String]) -> Result<Vec<String>, StoreError> {
        self.backend.unit_patients(units).await
    }

    pub async fn prescription_patients(&self) -> Result<Vec<String>, StoreError> {
        self.backend.prescription_patients().await
    }

    /// Patients per unit (unit id, count) from the active Encounters.
    pub async fn census(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.backend.census().await
    }
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
