//! The store's vocabulary: what callers hand in and get back, and how the store fails.
//!
//! A leaf: it knows nothing of SQL or of either engine, and every other file of the store may
//! use it. `store/mod.rs` re-exports all of it, so callers write `crate::store::Stored`.

use std::sync::Arc;

use app::events::{Action, EventType};
use serde::Serialize;

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

/// SQLite's primary result codes for "the database file is locked" (`SQLITE_BUSY`) and "a table
/// in it is locked" (`SQLITE_LOCKED`); extended codes carry them in their low byte.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

impl StoreError {
    /// Whether SQLite gave up waiting for a lock (`SQLITE_BUSY`, `SQLITE_LOCKED`): the write may
    /// succeed if retried shortly. Told by the error code, never by the message text.
    pub fn is_busy(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(error)) = self else {
            return false;
        };
        if error
            .try_downcast_ref::<sqlx::sqlite::SqliteError>()
            .is_none()
        {
            return false;
        }
        let code = error.code().and_then(|code| code.parse::<i32>().ok());
        code.is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
    }
}

#[cfg(test)]
mod tests {
    use std::{str::FromStr, time::Duration};

    use sqlx::{sqlite::SqliteConnectOptions, Connection, SqliteConnection};

    use super::StoreError;

    async fn connect(path: &std::path::Path) -> SqliteConnection {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .unwrap()
            .create_if_missing(true)
            .busy_timeout(Duration::ZERO);
        SqliteConnection::connect_with(&options).await.unwrap()
    }

    #[tokio::test]
    async fn a_locked_sqlite_database_is_busy_by_its_code() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let mut holder = connect(&path).await;
        let mut other = connect(&path).await;
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .execute(&mut holder)
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .unwrap();

        let locked = sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .map_err(StoreError::from)
            .unwrap_err();
        let duplicate = sqlx::query("INSERT INTO t (k) VALUES ('a'), ('a')")
            .execute(&mut holder)
            .await
            .map_err(StoreError::from)
            .unwrap_err();

        assert!(locked.is_busy(), "{locked}");
        assert!(!duplicate.is_busy(), "{duplicate}");
        assert!(!StoreError::Conflict("busy".into()).is_busy());
    }
}
