//! The SQLite backend of the store.
//!
//! Writes go through one dedicated connection (SQLite has one writer anyway) inside
//! `BEGIN IMMEDIATE` transactions; reads use a separate pool and never wait for writers (WAL).
//! `seq` comes from the single-row `event_counter`, incremented inside the write transaction: the
//! write lock is held until commit, so numbers are handed out in commit order and a rollback
//! returns them. That is the whole gap-free argument on one node.

use std::{collections::HashSet, str::FromStr, sync::Arc, time::Duration};

use app::events::{classify, Action, EventType};
use serde_json::Value;
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Connection, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool,
};
use tokio::sync::{mpsc, oneshot};

use super::sql::{check_included, push_audit_filter, push_filters, push_visibility};
use super::{
    index::index_entries, literal_references, Actor, AuditFilter, AuditRecord, AuditRow,
    EventRecord, HistoryWindow, ReadOutcome, SearchPage, StoreError, Stored, SubscriptionState,
    Visibility, WriteOp, Written,
};
use crate::fhir::{
    date::format_instant,
    search::{SearchQuery, SortKey, MAX_INCLUDED},
};

/// Largest number of audit records committed in one batch.
const AUDIT_BATCH: usize = 512;
/// Largest number of writes committed in one transaction by the group-commit writer.
const WRITE_BATCH: usize = 128;

/// A write waiting for the group-commit writer.
struct WriteJob {
    actor: Actor,
    resource_type: String,
    op: WriteOp,
    body: Option<Value>,
    reply: oneshot::Sender<Result<Option<Written>, StoreError>>,
}

enum AuditMsg {
    Record(Box<AuditRecord>),
    Flush(oneshot::Sender<()>),
}

/// SQLite pools and the background audit writer.
#[derive(Clone)]
pub struct SqliteStore {
    readers: SqlitePool,
    writer: SqlitePool,
    audit_tx: mpsc::UnboundedSender<AuditMsg>,
    write_tx: mpsc::UnboundedSender<WriteJob>,
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            url: url.to_owned(),
            reason,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| open_error(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000");
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| open_error(format!("cannot create {}: {e}", parent.display())))?;
            }
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| open_error(e.to_string()))?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await
            .map_err(|e| open_error(e.to_string()))?;

        let (audit_tx, audit_rx) = mpsc::unbounded_channel();
        tokio::spawn(audit_writer(writer.clone(), audit_rx));
        let (write_tx, write_rx) = mpsc::unbounded_channel();
        tokio::spawn(group_commit_writer(writer.clone(), write_rx));
        Ok(Self {
            readers,
            writer,
            audit_tx,
            write_tx,
        })
    }

    /// The read pool, for modules that own tables of their own.
    pub fn readers(&self) -> &SqlitePool {
        &self.readers
    }

    /// The single writer connection's pool, for modules that own tables of their own.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    pub async fn head_seq(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT seq FROM event_counter WHERE singleton = 1")
                .fetch_one(&self.writer)
                .await?,
        )
    }

    /// Queues a write for the group-commit writer and waits for its committed result.
    pub async fn write(
        &self,
        actor: &Actor,
        resource_type: &str,
        op: WriteOp,
        body: Option<Value>,
    ) -> Result<Option<Written>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = WriteJob {
            actor: actor.clone(),
            resource_type: resource_type.to_owned(),
            op,
            body,
            reply,
        };
        self.write_tx
            .send(job)
            .map_err(|_| StoreError::Commit("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Commit("the writer has stopped".into()))?
    }

    pub async fn read(&self, resource_type: &str, id: &str) -> Result<ReadOutcome, StoreError> {
        let row: Option<(i64, String, bool, String)> = sqlx::query_as(
            "SELECT version_id, last_updated, deleted, content FROM resources WHERE rtype = ? AND id = ?",
        )
        .bind(resource_type)
        .bind(id)
        .fetch_optional(&self.readers)
        .await?;
        Ok(match row {
            None => ReadOutcome::NotFound,
            Some((version_id, _, true, _)) => ReadOutcome::Gone(version_id),
            Some((version_id, last_updated, false, content)) => ReadOutcome::Found(Stored {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                version_id,
                last_updated,
                deleted: false,
                json: Arc::from(content),
            }),
        })
    }

    pub async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> Result<Option<Stored>, StoreError> {
        let row: Option<(String, bool, String)> = sqlx::query_as(
            "SELECT last_updated, deleted, content FROM resource_history WHERE rtype = ? AND id = ? AND version_id = ?",
        )
        .bind(resource_type)
        .bind(id)
        .bind(version_id)
        .fetch_optional(&self.readers)
        .await?;
        Ok(row.map(|(last_updated, deleted, content)| Stored {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            version_id,
            last_updated,
            deleted,
            json: Arc::from(content),
        }))
    }

    pub async fn newest(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        let row: Option<(i64, String, bool, String)> = sqlx::query_as(
            "SELECT version_id, last_updated, deleted, content FROM resources WHERE rtype = ? AND id = ?",
        )
        .bind(resource_type)
        .bind(id)
        .fetch_optional(&self.readers)
        .await?;
        Ok(
            row.map(|(version_id, last_updated, deleted, content)| Stored {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                version_id,
                last_updated,
                deleted,
                json: Arc::from(content),
            }),
        )
    }

    pub async fn versions_below(
        &self,
        resource_type: &str,
        id: &str,
        below: i64,
        limit: usize,
        window: &HistoryWindow,
    ) -> Result<Vec<Stored>, StoreError> {
        let rows: Vec<(i64, String, bool, String)> = sqlx::query_as(
            "SELECT version_id, last_updated, deleted, content FROM resource_history
             WHERE rtype = ?1 AND id = ?2 AND version_id < ?3 AND version_id >= ?5
               AND (?6 IS NULL OR last_updated >= ?6) AND (?7 IS NULL OR last_updated < ?7)
             ORDER BY version_id DESC LIMIT ?4",
        )
        .bind(resource_type)
        .bind(id)
        .bind(below)
        .bind(limit as i64)
        .bind(window.min_version)
        .bind(window.since.as_deref())
        .bind(window.before.as_deref())
        .fetch_all(&self.readers)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(version_id, last_updated, deleted, content)| Stored {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                version_id,
                last_updated,
                deleted,
                json: Arc::from(content),
            })
            .collect())
    }

    pub async fn search(
        &self,
        query: &SearchQuery,
        visibility: &Visibility,
    ) -> Result<SearchPage, StoreError> {
        let mut count_sql = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM resources r WHERE ");
        push_filters(&mut count_sql, query, visibility);
        let total: i64 = count_sql
            .build_query_scalar()
            .fetch_one(&self.readers)
            .await?;
        if query.count_only || query.count == 0 {
            return Ok(SearchPage {
                total,
                matches: Vec::new(),
                included: Vec::new(),
            });
        }

        let mut select = QueryBuilder::<Sqlite>::new(
            "SELECT r.rtype, r.id, r.version_id, r.last_updated, r.content FROM resources r WHERE ",
        );
        push_filters(&mut select, query, visibility);
        select.push(" ORDER BY ");
        for sort in &query.sort {
            let direction = if sort.descending { "DESC" } else { "ASC" };
            match sort.key {
                SortKey::LastUpdated => select.push(format!("r.last_updated {direction}, ")),
                SortKey::Id => select.push(format!("r.id {direction}, ")),
                // Resources without a date sort last either way.
                SortKey::Date => {
                    select.push(format!("r.sort_date IS NULL, r.sort_date {direction}, "))
                }
            };
        }
        select.push("r.last_updated ASC, r.id ASC LIMIT ");
        select.push_bind(query.count as i64);
        select.push(" OFFSET ");
        select.push_bind(query.offset as i64);
        let matches: Vec<Stored> = select
            .build()
            .fetch_all(&self.readers)
            .await?
            .into_iter()
            .map(|row| stored_from_row(&row))
            .collect();

        let mut included: Vec<Stored> = Vec::new();
        let mut seen: HashSet<(String, String)> = matches
            .iter()
            .map(|s| (s.resource_type.clone(), s.id.clone()))
            .collect();
        if !matches.is_empty() {
            for include in &query.includes {
                let mut sql = QueryBuilder::<Sqlite>::new(
                    "SELECT DISTINCT r.rtype, r.id, r.version_id, r.last_updated, r.content
                     FROM search_index s JOIN resources r ON r.rtype = s.system AND r.id = s.value
                     WHERE r.deleted = 0 AND s.rtype = ",
                );
                sql.push_bind(&include.source_type);
                sql.push(" AND s.param = ");
                sql.push_bind(include.param);
                if let Some(target) = &include.target_type {
                    sql.push(" AND s.system = ");
                    sql.push_bind(target);
                }
                sql.push(" AND s.id IN (");
                let mut ids = sql.separated(", ");
                for stored in &matches {
                    ids.push_bind(&stored.id);
                }
                sql.push(") AND ");
                push_visibility(&mut sql, visibility);
                // One row past the limit tells that it is exceeded.
                sql.push(" LIMIT ");
                sql.push_bind(MAX_INCLUDED as i64 + 1);
                let rows = sql.build().fetch_all(&self.readers).await?;
                check_included(rows.len())?;
                for row in rows {
                    let stored = stored_from_row(&row);
                    if seen.insert((stored.resource_type.clone(), stored.id.clone())) {
                        included.push(stored);
                    }
                }
                check_included(included.len())?;
            }
        }
        Ok(SearchPage {
            total,
            matches,
            included,
        })
    }

    pub async fn events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.seq, e.event_type, e.action, e.resource_type, e.resource_id, e.version_id,
                    e.patient_id, e.rooms, e.user_id, e.ts, h.content, cur.patient_id, cur.restricted
             FROM event_log e
             JOIN resource_history h
               ON h.rtype = e.resource_type AND h.id = e.resource_id AND h.version_id = e.version_id
             LEFT JOIN resources cur ON cur.rtype = e.resource_type AND cur.id = e.resource_id
             WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
        )
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(|row| event_from_row(row, 0)).collect()
    }

    /// The oldest `seq` still in the log, if any.
    pub async fn oldest_seq(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT MIN(seq) FROM event_log")
            .fetch_one(&self.readers)
            .await?)
    }

    /// Deletes the events committed before `before` (RFC 3339), never the newest one, so the log
    /// always shows where it stands. Returns how many were removed.
    pub async fn prune_events(&self, before: &str) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "DELETE FROM event_log WHERE ts < ? AND seq < (SELECT seq FROM event_counter WHERE singleton = 1)",
        )
        .bind(before)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected())
    }

    /// Every subscription the matcher has registered.
    pub async fn subscription_states(&self) -> Result<Vec<SubscriptionState>, StoreError> {
        let rows = sqlx::query(
            // The count never falls behind a number already handed out (numbers never repeat,
            // whatever a state row says).
            "SELECT s.subscription_id, s.owner_id, s.start_seq,
                    MAX(s.events_count, COALESCE((SELECT MAX(n.event_number) FROM subscription_events n
                                                    WHERE n.subscription_id = s.subscription_id), 0)),
                    s.active
             FROM subscription_state s",
        )
        .fetch_all(&self.readers)
        .await?;
        Ok(rows
            .iter()
            .map(|row| SubscriptionState {
                subscription_id: row.get(0),
                owner_id: row.get(1),
                start_seq: row.get(2),
                events_count: row.get(3),
                active: row.get::<i64, _>(4) != 0,
            })
            .collect())
    }

    /// Re-indexes every current resource once after the index computation changed.
    pub async fn reindex_if_stale(&self) -> Result<u64, StoreError> {
        reindex_stale(&self.writer).await
    }

    /// The highest event number handed out to a subscription (0: none).
    pub async fn last_event_number(&self, subscription_id: &str) -> Result<i64, StoreError> {
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(event_number) FROM subscription_events WHERE subscription_id = ?",
        )
        .bind(subscription_id)
        .fetch_one(&self.writer)
        .await?;
        Ok(last.unwrap_or(0))
    }

    /// Commits one matcher batch: the subscriptions' new states, their new notifications and the
    /// matcher's position, all or nothing.
    pub async fn record_notifications(
        &self,
        previous: i64,
        position: i64,
        states: &[SubscriptionState],
        notifications: &[(String, i64, i64)],
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        for state in states {
            sqlx::query(
                "INSERT INTO subscription_state (subscription_id, owner_id, start_seq, events_count, active)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (subscription_id) DO UPDATE SET owner_id = excluded.owner_id,
                   events_count = excluded.events_count, active = excluded.active",
            )
            .bind(&state.subscription_id)
            .bind(&state.owner_id)
            .bind(state.start_seq)
            .bind(state.events_count)
            .bind(state.active as i64)
            .execute(&mut *tx)
            .await?;
        }
        for chunk in notifications.chunks(300) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO subscription_events (subscription_id, event_number, seq) ",
            );
            insert.push_values(chunk, |mut row, (id, number, seq)| {
                row.push_bind(id).push_bind(number).push_bind(seq);
            });
            insert.build().execute(&mut *tx).await?;
        }
        // Compare-and-set, as on PostgreSQL: a second matcher cannot number the same events.
        let moved = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('subscriptions.position', ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE settings.value = ?",
        )
        .bind(position.to_string())
        .bind(previous.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Err(StoreError::Conflict(
                "another matcher moved the subscription position".into(),
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every notification the matcher committed for events `after < seq <= until`, in `seq`
    /// order, with their events: what each node's subscription follower delivers.
    pub async fn notifications_between(
        &self,
        after: i64,
        until: i64,
    ) -> Result<Vec<(String, i64, EventRecord)>, StoreError> {
        let rows = sqlx::query(
            "SELECT n.subscription_id, n.event_number, e.seq, e.event_type, e.action, e.resource_type,
                    e.resource_id, e.version_id, e.patient_id, e.rooms, e.user_id, e.ts, h.content, cur.patient_id, cur.restricted
             FROM subscription_events n
             JOIN event_log e ON e.seq = n.seq
             JOIN resource_history h
               ON h.rtype = e.resource_type AND h.id = e.resource_id AND h.version_id = e.version_id
             LEFT JOIN resources cur ON cur.rtype = e.resource_type AND cur.id = e.resource_id
             WHERE n.seq > ? AND n.seq <= ?
             ORDER BY n.seq, n.subscription_id",
        )
        .bind(after)
        .bind(until)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| Ok((row.get(0), row.get(1), event_from_row(row, 2)?)))
            .collect()
    }

    /// Events `after < seq <= until` about Subscriptions, in order.
    pub async fn subscription_writes(
        &self,
        after: i64,
        until: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.seq, e.event_type, e.action, e.resource_type, e.resource_id, e.version_id,
                    e.patient_id, e.rooms, e.user_id, e.ts, h.content, cur.patient_id, cur.restricted
             FROM event_log e
             JOIN resource_history h
               ON h.rtype = e.resource_type AND h.id = e.resource_id AND h.version_id = e.version_id
             LEFT JOIN resources cur ON cur.rtype = e.resource_type AND cur.id = e.resource_id
             WHERE e.seq > ? AND e.seq <= ? AND e.resource_type = 'Subscription' ORDER BY e.seq",
        )
        .bind(after)
        .bind(until)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(|row| event_from_row(row, 0)).collect()
    }

    /// Notifications `since < n <= until` of one subscription with the events behind them, in
    /// order; those whose events retention has pruned are left out.
    pub async fn subscription_events(
        &self,
        subscription_id: &str,
        since: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(i64, EventRecord)>, StoreError> {
        let rows = sqlx::query(
            "SELECT n.event_number, e.seq, e.event_type, e.action, e.resource_type, e.resource_id,
                    e.version_id, e.patient_id, e.rooms, e.user_id, e.ts, h.content, cur.patient_id, cur.restricted
             FROM subscription_events n
             JOIN event_log e ON e.seq = n.seq
             JOIN resource_history h
               ON h.rtype = e.resource_type AND h.id = e.resource_id AND h.version_id = e.version_id
             LEFT JOIN resources cur ON cur.rtype = e.resource_type AND cur.id = e.resource_id
             WHERE n.subscription_id = ? AND n.event_number > ? AND n.event_number <= ?
             ORDER BY n.event_number LIMIT ?",
        )
        .bind(subscription_id)
        .bind(since)
        .bind(until)
        .bind(limit as i64)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| Ok((row.get(0), event_from_row(row, 1)?)))
            .collect()
    }

    pub fn audit(&self, record: AuditRecord) {
        // The writer task lives as long as the runtime; a send can only fail during shutdown.
        if self
            .audit_tx
            .send(AuditMsg::Record(Box::new(record)))
            .is_err()
        {
            tracing::error!("audit record dropped: the audit writer has stopped");
        }
    }

    pub async fn flush_audit(&self) -> Result<(), StoreError> {
        let (done_tx, done_rx) = oneshot::channel();
        if self.audit_tx.send(AuditMsg::Flush(done_tx)).is_ok() {
            // An Err here means the writer stopped; nothing more can be flushed.
            let _ = done_rx.await;
        }
        Ok(())
    }

    pub async fn audit_rows(
        &self,
        filter: &AuditFilter,
        count: usize,
        offset: usize,
    ) -> Result<(i64, Vec<AuditRow>), StoreError> {
        let mut total = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM audit_log WHERE ");
        push_audit_filter(&mut total, filter);
        let total: i64 = total.build_query_scalar().fetch_one(&self.readers).await?;
        let mut page = QueryBuilder::<Sqlite>::new(
            "SELECT id, ts, user_id, action, operation, resource_type, resource_id, patient_id, outcome, detail, source
             FROM audit_log WHERE ",
        );
        push_audit_filter(&mut page, filter);
        page.push(" ORDER BY id DESC LIMIT ");
        page.push_bind(count as i64);
        page.push(" OFFSET ");
        page.push_bind(offset as i64);
        let rows = page.build().fetch_all(&self.readers).await?;
        Ok((total, rows.iter().map(audit_from_row).collect()))
    }

    pub async fn audit_row(&self, id: i64) -> Result<Option<AuditRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, ts, user_id, action, operation, resource_type, resource_id, patient_id, outcome, detail, source
             FROM audit_log WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.readers)
        .await?;
        Ok(row.as_ref().map(audit_from_row))
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.readers)
                .await?,
        )
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn count(&self, resource_type: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM resources WHERE rtype = ? AND deleted = 0")
                .bind(resource_type)
                .fetch_one(&self.readers)
                .await?,
        )
    }
}

/// One write inside the caller's transaction (a savepoint of the group commit).
async fn write_one(
    conn: &mut SqliteConnection,
    actor: &Actor,
    resource_type: &str,
    op: WriteOp,
    body: Option<Value>,
) -> Result<Option<Written>, StoreError> {
    let (id, if_match, is_delete) = match &op {
        WriteOp::Create => (uuid::Uuid::new_v4().to_string(), None, false),
        WriteOp::Update { id, if_match } => (id.clone(), *if_match, false),
        WriteOp::Delete { id, if_match } => (id.clone(), *if_match, true),
    };

    let current: Option<(i64, bool, String)> = sqlx::query_as(
        "SELECT version_id, deleted, content FROM resources WHERE rtype = ? AND id = ?",
    )
    .bind(resource_type)
    .bind(&id)
    .fetch_optional(&mut *conn)
    .await?;

    if let (Some(expected), Some((actual, _, _))) = (if_match, &current) {
        if expected != *actual {
            return Err(StoreError::VersionConflict {
                expected,
                actual: *actual,
            });
        }
    }
    if let (Some(expected), None) = (if_match, &current) {
        return Err(StoreError::VersionConflict {
            expected,
            actual: 0,
        });
    }

    let previous_live: Option<Value> = match &current {
        Some((_, false, content)) => serde_json::from_str(content).ok(),
        _ => None,
    };
    let version_id = current.as_ref().map_or(1, |(v, _, _)| v + 1);
    let now = format_instant(chrono::Utc::now());

    let (action, mut content) = if is_delete {
        match previous_live.clone() {
            Some(previous) => (Action::Deleted, previous),
            None if current.is_some() => return Ok(None), // already deleted: nothing to do
            None => {
                return Err(StoreError::NotFound {
                    resource_type: resource_type.to_owned(),
                    id,
                })
            }
        }
    } else {
        let Some(body) = body else {
            return Err(StoreError::Conflict("a write needs a body".into()));
        };
        let action = if previous_live.is_some() {
            Action::Updated
        } else {
            Action::Created
        };
        (action, body)
    };

    if !is_delete {
        let missing = unresolved(conn, resource_type, &id, &content).await?;
        if !missing.is_empty() {
            return Err(StoreError::UnresolvedReferences(missing));
        }
    }

    stamp(&mut content, &id, version_id, &now);
    let json: Arc<str> = Arc::from(content.to_string());
    let patient_id = app::fhir::patient_id(&content);
    let restricted = app::fhir::security_restricted(&content);
    let unit_id = if is_delete {
        None
    } else {
        app::fhir::encounter_unit(&content)
    };
    let entries = if is_delete {
        Default::default()
    } else {
        index_entries(resource_type, &content)
    };

    sqlx::query(
        "INSERT INTO resources (rtype, id, version_id, last_updated, deleted, patient_id, unit_id, restricted, sort_date, content)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (rtype, id) DO UPDATE SET
           version_id = excluded.version_id, last_updated = excluded.last_updated,
           deleted = excluded.deleted, patient_id = excluded.patient_id, unit_id = excluded.unit_id,
           restricted = excluded.restricted, sort_date = excluded.sort_date,
           content = excluded.content",
    )
    .bind(resource_type)
    .bind(&id)
    .bind(version_id)
    .bind(&now)
    .bind(is_delete)
    .bind(&patient_id)
    .bind(&unit_id)
    .bind(restricted)
    .bind(&entries.sort_date)
    .bind(&*json)
    .execute(&mut *conn)
    .await?;

    sqlx::query(
        "INSERT INTO resource_history (rtype, id, version_id, last_updated, deleted, content)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(resource_type)
    .bind(&id)
    .bind(version_id)
    .bind(&now)
    .bind(is_delete)
    .bind(&*json)
    .execute(&mut *conn)
    .await?;

    write_index(&mut *conn, resource_type, &id, current.is_some(), &entries).await?;

    // The events, numbered from the counter whose row lock we now hold until commit.
    let derived = classify(resource_type, action, previous_live.as_ref(), &content);
    let count = derived.len() as i64;
    let last_seq: i64 = sqlx::query_scalar(
        "UPDATE event_counter SET seq = seq + ? WHERE singleton = 1 RETURNING seq",
    )
    .bind(count)
    .fetch_one(&mut *conn)
    .await?;
    let first_seq = last_seq - count + 1;
    let mut events = Vec::with_capacity(derived.len());
    if !derived.is_empty() {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO event_log (seq, event_type, action, resource_type, resource_id, version_id, patient_id, rooms, user_id, ts) ",
        );
        let rows: Vec<(i64, EventType, String)> = derived
            .iter()
            .enumerate()
            .map(|(i, event)| {
                let rooms = serde_json::to_string(&event.rooms).unwrap_or_else(|_| "[]".into());
                (first_seq + i as i64, event.event_type, rooms)
            })
            .collect();
        insert.push_values(&rows, |mut row, (seq, event_type, rooms)| {
            row.push_bind(*seq)
                .push_bind(event_type.as_str())
                .push_bind(action.as_str())
                .push_bind(resource_type)
                .push_bind(&id)
                .push_bind(version_id)
                .push_bind(&patient_id)
                .push_bind(rooms)
                .push_bind(&actor.user_id)
                .push_bind(&now);
        });
        insert.build().execute(&mut *conn).await?;
        events.extend(
            rows.into_iter()
                .map(|(seq, event_type, _)| (seq, event_type)),
        );
    }

    let (audit_action, operation) = match action {
        Action::Created => ("C", "create"),
        Action::Updated => ("U", "update"),
        Action::Deleted => ("D", "delete"),
    };
    insert_audit(
        conn,
        &AuditRecord {
            ts: now.clone(),
            user_id: actor.user_id.clone(),
            action: audit_action,
            operation: operation.to_owned(),
            resource_type: Some(resource_type.to_owned()),
            resource_id: Some(id.clone()),
            patient_id: patient_id.clone(),
            outcome: "0",
            detail: Some(format!(
                "version {version_id}; events {first_seq}..={last_seq}"
            )),
            source: actor.source.clone(),
        },
    )
    .await?;

    Ok(Some(Written {
        resource: Stored {
            resource_type: resource_type.to_owned(),
            id,
            version_id,
            last_updated: now,
            deleted: is_delete,
            json,
        },
        action,
        events,
    }))
}

/// Writes the search index rows of one resource (replacing its old ones when `replace`).
async fn write_index(
    conn: &mut SqliteConnection,
    resource_type: &str,
    id: &str,
    replace: bool,
    entries: &crate::store::index::IndexEntries,
) -> Result<(), StoreError> {
    if replace {
        sqlx::query("DELETE FROM search_index WHERE rtype = ? AND id = ?")
            .bind(resource_type)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM search_dates WHERE rtype = ? AND id = ?")
            .bind(resource_type)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    // SQLite allows 32766 bound parameters; chunk to stay far below.
    for chunk in entries.values.chunks(1000) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO search_index (rtype, id, param, system, value) ",
        );
        insert.push_values(chunk, |mut row, (param, system, value)| {
            row.push_bind(resource_type)
                .push_bind(id)
                .push_bind(*param)
                .push_bind(system)
                .push_bind(value);
        });
        insert.build().execute(&mut *conn).await?;
    }
    for chunk in entries.dates.chunks(1000) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO search_dates (rtype, id, param, start_at, end_at) ",
        );
        insert.push_values(chunk, |mut row, (param, start, end)| {
            row.push_bind(resource_type)
                .push_bind(id)
                .push_bind(*param)
                .push_bind(start)
                .push_bind(end);
        });
        insert.build().execute(&mut *conn).await?;
    }

    Ok(())
}

/// Re-indexes every current resource when the index computation changed since it was written
/// (`index::INDEX_VERSION`), in pages of 500, each in one transaction; then records the version.
async fn reindex_stale(writer: &sqlx::Pool<Sqlite>) -> Result<u64, StoreError> {
    let done: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'index.version'")
            .fetch_optional(writer)
            .await?;
    if done.as_deref() == Some(crate::store::index::INDEX_VERSION) {
        return Ok(0);
    }
    let mut after = (String::new(), String::new());
    let mut count = 0u64;
    loop {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT rtype, id, content FROM resources
             WHERE deleted = 0 AND (rtype > ? OR (rtype = ? AND id > ?))
             ORDER BY rtype, id LIMIT 500",
        )
        .bind(&after.0)
        .bind(&after.0)
        .bind(&after.1)
        .fetch_all(writer)
        .await?;
        let Some(last) = rows.last() else { break };
        after = (last.0.clone(), last.1.clone());
        let mut tx = writer.begin().await?;
        for (rtype, id, content) in &rows {
            let Ok(resource) = serde_json::from_str::<Value>(content) else {
                continue;
            };
            let entries = index_entries(rtype, &resource);
            write_index(&mut tx, rtype, id, true, &entries).await?;
            sqlx::query("UPDATE resources SET sort_date = ? WHERE rtype = ? AND id = ?")
                .bind(&entries.sort_date)
                .bind(rtype)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            count += 1;
        }
        tx.commit().await?;
    }
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ('index.version', ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(crate::store::index::INDEX_VERSION)
    .execute(writer)
    .await?;
    Ok(count)
}

/// References in `content` that name no live resource (a resource may refer to itself).
async fn unresolved(
    conn: &mut SqliteConnection,
    resource_type: &str,
    id: &str,
    content: &Value,
) -> Result<Vec<String>, StoreError> {
    let references = literal_references(content);
    let mut missing: Vec<String> = Vec::new();
    let mut lookup = Vec::new();
    for (rtype, target) in references {
        if rtype.is_empty() {
            missing.push(target);
        } else if !(rtype == resource_type && target == id) {
            lookup.push((rtype, target));
        }
    }
    for chunk in lookup.chunks(400) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT rtype, id FROM resources WHERE deleted = 0 AND (rtype, id) IN (",
        );
        let mut separated = query.separated(", ");
        for (rtype, target) in chunk {
            separated.push("(");
            separated.push_bind_unseparated(rtype);
            separated.push_unseparated(", ");
            separated.push_bind_unseparated(target);
            separated.push_unseparated(")");
        }
        query.push(")");
        let found: Vec<(String, String)> = query.build_query_as().fetch_all(&mut *conn).await?;
        for pair in chunk {
            if !found.contains(pair) {
                missing.push(format!("{}/{}", pair.0, pair.1));
            }
        }
    }
    Ok(missing)
}

/// Sets `id` and the server-owned parts of `meta`, keeping what the client put in `meta`.
fn stamp(content: &mut Value, id: &str, version_id: i64, now: &str) {
    if let Value::Object(map) = content {
        map.insert("id".into(), Value::String(id.to_owned()));
        let meta = map
            .entry("meta")
            .or_insert_with(|| Value::Object(Default::default()));
        if !meta.is_object() {
            *meta = Value::Object(Default::default());
        }
        if let Value::Object(meta) = meta {
            meta.insert("versionId".into(), Value::String(version_id.to_string()));
            meta.insert("lastUpdated".into(), Value::String(now.to_owned()));
        }
    }
}

/// An event log row (columns `seq, event_type, action, resource_type, resource_id, version_id,
/// patient_id, rooms, user_id, ts, content`, then the resource's newest `patient_id, restricted`)
/// starting at column `at`.
fn event_from_row(row: &sqlx::sqlite::SqliteRow, at: usize) -> Result<EventRecord, StoreError> {
    let event_type: String = row.get(at + 1);
    let action: String = row.get(at + 2);
    let rooms: String = row.get(at + 7);
    let content: String = row.get(at + 10);
    Ok(EventRecord {
        seq: row.get(at),
        event_type: EventType::from_str(&event_type)
            .map_err(|_| sqlx::Error::Decode(format!("unknown event type {event_type}").into()))?,
        action: Action::from_str(&action)
            .map_err(|_| sqlx::Error::Decode(format!("unknown action {action}").into()))?,
        resource_type: row.get(at + 3),
        resource_id: row.get(at + 4),
        version_id: row.get(at + 5),
        patient_id: row.get(at + 6),
        rooms: serde_json::from_str(&rooms).unwrap_or_default(),
        user_id: row.get(at + 8),
        timestamp: row.get(at + 9),
        resource_json: Arc::from(content),
        newest: super::NewestFacts {
            patient_id: row.get(at + 11),
            restricted: row.get::<Option<bool>, _>(at + 12).unwrap_or(true),
        },
    })
}

fn stored_from_row(row: &sqlx::sqlite::SqliteRow) -> Stored {
    let content: String = row.get(4);
    Stored {
        resource_type: row.get(0),
        id: row.get(1),
        version_id: row.get(2),
        last_updated: row.get(3),
        deleted: false,
        json: Arc::from(content),
    }
}

fn audit_from_row(row: &sqlx::sqlite::SqliteRow) -> AuditRow {
    let action: String = row.get(3);
    let outcome: String = row.get(8);
    AuditRow {
        id: row.get(0),
        record: AuditRecord {
            ts: row.get(1),
            user_id: row.get(2),
            action: match action.as_str() {
                "C" => "C",
                "U" => "U",
                "D" => "D",
                "R" => "R",
                _ => "E",
            },
            operation: row.get(4),
            resource_type: row.get(5),
            resource_id: row.get(6),
            patient_id: row.get(7),
            outcome: match outcome.as_str() {
                "0" => "0",
                "4" => "4",
                "8" => "8",
                _ => "12",
            },
            detail: row.get(9),
            source: row.get(10),
        },
    }
}

async fn insert_audit(
    conn: &mut SqliteConnection,
    record: &AuditRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (ts, user_id, action, operation, resource_type, resource_id, patient_id, outcome, detail, source)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&record.ts)
    .bind(&record.user_id)
    .bind(record.action)
    .bind(&record.operation)
    .bind(&record.resource_type)
    .bind(&record.resource_id)
    .bind(&record.patient_id)
    .bind(record.outcome)
    .bind(&record.detail)
    .bind(&record.source)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The group-commit writer: takes every write waiting at the moment, runs each in its own
/// SAVEPOINT of one `BEGIN IMMEDIATE` transaction, commits once, and only then answers. A write
/// that fails rolls back to its savepoint alone (its `seq` numbers with it); if the COMMIT itself
/// fails, every write of the batch is told so and none of them happened. Under load this turns
/// many small commits (each rewriting the same index pages to the WAL) into one.
async fn group_commit_writer(writer: SqlitePool, mut rx: mpsc::UnboundedReceiver<WriteJob>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut tx = match writer.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(error) => {
                let message = error.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(StoreError::Commit(message.clone())));
                }
                continue;
            }
        };
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let outcome = async {
                let mut savepoint = tx.begin().await?;
                match write_one(
                    &mut savepoint,
                    &job.actor,
                    &job.resource_type,
                    job.op,
                    job.body,
                )
                .await
                {
                    Ok(written) => {
                        savepoint.commit().await?;
                        Ok(written)
                    }
                    Err(error) => {
                        savepoint.rollback().await?;
                        Err(error)
                    }
                }
            }
            .await;
            outcomes.push((job.reply, outcome));
        }
        match tx.commit().await {
            Ok(()) => {
                for (reply, outcome) in outcomes {
                    let _ = reply.send(outcome);
                }
            }
            Err(error) => {
                let message = error.to_string();
                tracing::error!(%message, "group commit failed; every write of the batch is refused");
                for (reply, _) in outcomes {
                    let _ = reply.send(Err(StoreError::Commit(message.clone())));
                }
            }
        }
    }
}

/// Commits audit records in batches, off the request path; retries a failed batch.
async fn audit_writer(writer: SqlitePool, mut rx: mpsc::UnboundedReceiver<AuditMsg>) {
    let mut batch: Vec<AuditRecord> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                AuditMsg::Record(record) => batch.push(*record),
                AuditMsg::Flush(done) => waiters.push(done),
            }
            if batch.len() < AUDIT_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let mut delay = Duration::from_millis(50);
        while !batch.is_empty() {
            match commit_audit_batch(&writer, &batch).await {
                Ok(()) => batch.clear(),
                Err(error) => {
                    tracing::error!(%error, records = batch.len(), "audit batch failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        for done in waiters.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn commit_audit_batch(writer: &SqlitePool, batch: &[AuditRecord]) -> Result<(), sqlx::Error> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    for record in batch {
        insert_audit(&mut tx, record).await?;
    }
    tx.commit().await
}
