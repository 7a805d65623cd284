//! The PostgreSQL backend of the store: several Rounds nodes on one database.
//!
//! The same tables and the same one-transaction write as the SQLite backend, with what several
//! nodes add:
//!
//! - **Gap-free `seq` in commit order across nodes.** Every write transaction first locks the one
//!   row of `event_counter` (`SELECT ... FOR UPDATE`) and holds it until COMMIT; `seq` numbers are
//!   taken from that row. A second writer, on any node, waits for the lock, and PostgreSQL
//!   releases it only after the first transaction's commit is visible. So `seq` N+1 can never be
//!   visible before `seq` N, a rollback returns its numbers, and a reader's `seq > last` never
//!   skips anything. A SEQUENCE would hand out numbers that can commit out of order (6 before 5),
//!   and a reader that had moved past 6 would miss 5 forever. Taking the lock first (not when the
//!   events are numbered) also fixes the lock order, so two nodes' batches cannot deadlock on a
//!   resource row; and it makes If-Match and reference checks exact across nodes.
//! - **Group commit** is kept: each node's writer commits every write waiting at the moment in one
//!   transaction (one savepoint each), so the lock is taken once per batch, not once per write.
//! - **Wake-ups across nodes.** The write transaction calls `pg_notify('rounds_events', <last
//!   seq>)`; PostgreSQL delivers it at commit to every node's `LISTEN` connection (`listen`
//!   below), which moves that node's head watch. A notification is only a hint: a lost one, or a
//!   dropped `LISTEN` connection (re-established, then the head re-read from the table), delays
//!   delivery by at most the dispatcher's one-second poll and loses nothing — the log is the truth.
//! - **Revocations across nodes** ride the same connection (`rounds_sessions`). A sign-out
//!   notified while this node was not listening is not lost either: once listening again, it
//!   re-reads the sessions revoked since it last heard anything (less a clock slack), first.

use std::{collections::HashSet, str::FromStr, sync::Arc, time::Duration};

use app::events::{classify, Action, EventType};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
    Connection, PgConnection, PgPool, Postgres, QueryBuilder, Row,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::accounts::{Refresh, UserRow};
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
/// The channel committed writes notify, with the last `seq` they committed.
pub const EVENTS_CHANNEL: &str = "rounds_events";
/// The channel the subscription matcher notifies with its committed position.
pub const MATCHER_CHANNEL: &str = "rounds_matcher";
/// The channel a revoked session's id is notified on, so every node closes its sockets.
pub const SESSIONS_CHANNEL: &str = "rounds_sessions";
/// How far before the last moment this node was known to be listening a re-read of revocations
/// reaches back: `revoked_at` is stamped by the revoking node's clock, and its transaction may
/// commit (and notify) a moment after the stamp.
const REVOCATION_CLOCK_SLACK: chrono::Duration = chrono::Duration::seconds(30);
/// The advisory lock key whose holder runs the FHIR Subscription matcher ("rounds" in ASCII).
const MATCHER_LOCK: i64 = 0x726f_756e_6473;

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

/// The connection pool and the background writers.
#[derive(Clone)]
pub struct PgStore {
    readers: PgPool,
    writer: PgPool,
    options: PgConnectOptions,
    audit_tx: mpsc::UnboundedSender<AuditMsg>,
    write_tx: mpsc::UnboundedSender<WriteJob>,
}

/// What the `LISTEN` connection moves on this node.
pub struct Wakers {
    pub head: watch::Sender<i64>,
    pub matcher: watch::Sender<i64>,
    pub revoked: broadcast::Sender<String>,
    /// True while revocations reach this node: from the re-read after each LISTEN until the
    /// connection is lost.
    pub hearing: watch::Sender<bool>,
}

impl PgStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            url: crate::config::redact_password(url),
            reason,
        };
        let options = PgConnectOptions::from_str(url).map_err(|e| open_error(e.to_string()))?;
        // One pool: PostgreSQL has real concurrent writers; the group-commit writer and the
        // audit writer each hold one connection while they commit.
        let pool = PgPoolOptions::new()
            .max_connections(12)
            .min_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(|e| open_error(e.to_string()))?;
        // sqlx takes an advisory lock while migrating: nodes starting together migrate once.
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;

        let (audit_tx, audit_rx) = mpsc::unbounded_channel();
        tokio::spawn(audit_writer(pool.clone(), audit_rx));
        let (write_tx, write_rx) = mpsc::unbounded_channel();
        tokio::spawn(group_commit_writer(pool.clone(), write_rx));
        Ok(Self {
            readers: pool.clone(),
            writer: pool,
            options,
            audit_tx,
            write_tx,
        })
    }

    pub async fn head_seq(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT seq FROM event_counter WHERE singleton = 1")
                .fetch_one(&self.readers)
                .await?,
        )
    }

    /// The matcher's committed position (0 before it first ran).
    pub async fn matcher_position(&self) -> Result<i64, StoreError> {
        Ok(self
            .setting("subscriptions.position")
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Follows the notification channels for the life of the process (see the module header).
    pub fn spawn_listener(&self, wakers: Wakers) {
        let store = self.clone();
        tokio::spawn(async move {
            // Every revocation committed before this instant (less the clock slack) has reached
            // this node; at first, none matters, as no socket is open yet.
            let mut heard = Utc::now();
            loop {
                let listened = store.listen(&wakers, &mut heard).await;
                wakers.hearing.send_replace(false);
                if let Err(error) = listened {
                    tracing::warn!(%error, "the LISTEN connection failed; reconnecting");
                }
                if wakers.head.is_closed() && wakers.matcher.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }

    /// Listens on a new connection until it is lost. Once listening, whatever was notified while
    /// this node was not is read from the tables: the revocations first, so that no socket of a
    /// session that ended meanwhile gets what the re-read head brings.
    async fn listen(&self, wakers: &Wakers, heard: &mut DateTime<Utc>) -> Result<(), StoreError> {
        let mut listener = PgListener::connect_with(&self.readers).await?;
        listener
            .listen_all([EVENTS_CHANNEL, MATCHER_CHANNEL, SESSIONS_CHANNEL])
            .await?;
        let listening = Utc::now();
        let since = *heard - REVOCATION_CLOCK_SLACK;
        for session_id in self.revoked_since(&format_instant(since)).await? {
            let _ = wakers.revoked.send(session_id);
        }
        *heard = listening;
        wakers.hearing.send_replace(true);
        advance(&wakers.head, self.head_seq().await?);
        advance(&wakers.matcher, self.matcher_position().await?);
        // `try_recv` answers None when the connection was lost: the caller listens again on a
        // new one (not `try_recv` reconnecting by itself, which would listen before the re-read
        // above could run, and the re-read must follow the LISTEN).
        while let Some(notification) = listener.try_recv().await? {
            *heard = Utc::now();
            let payload = notification.payload();
            match notification.channel() {
                EVENTS_CHANNEL => {
                    if let Ok(seq) = payload.parse() {
                        advance(&wakers.head, seq);
                    }
                }
                MATCHER_CHANNEL => {
                    if let Ok(position) = payload.parse() {
                        advance(&wakers.matcher, position);
                    }
                }
                SESSIONS_CHANNEL => {
                    let _ = wakers.revoked.send(payload.to_owned());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Waits until this node holds the matcher's advisory lock, on a connection of its own that
    /// holds it for as long as it lives. When the node dies, PostgreSQL closes that session and
    /// releases the lock, and another node's `matcher_lease` returns.
    pub async fn matcher_lease(&self) -> PgConnection {
        loop {
            match PgConnection::connect_with(&self.options).await {
                Ok(mut conn) => loop {
                    match sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                        .bind(MATCHER_LOCK)
                        .fetch_one(&mut conn)
                        .await
                    {
                        Ok(true) => return conn,
                        Ok(false) => tokio::time::sleep(Duration::from_secs(1)).await,
                        Err(error) => {
                            tracing::warn!(%error, "waiting for the matcher lock");
                            break;
                        }
                    }
                },
                Err(error) => tracing::warn!(%error, "connecting for the matcher lock"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
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
            "SELECT version_id, last_updated, deleted, content FROM resources WHERE rtype = $1 AND id = $2",
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
            "SELECT last_updated, deleted, content FROM resource_history WHERE rtype = $1 AND id = $2 AND version_id = $3",
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
            "SELECT version_id, last_updated, deleted, content FROM resources WHERE rtype = $1 AND id = $2",
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
             WHERE rtype = $1 AND id = $2 AND version_id < $3 AND version_id >= $5
               AND ($6::text IS NULL OR last_updated >= $6)
               AND ($7::text IS NULL OR last_updated < $7)
             ORDER BY version_id DESC LIMIT $4",
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
        let mut count_sql =
            QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM resources r WHERE ");
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

        let mut select = QueryBuilder::<Postgres>::new(
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
                let mut sql = QueryBuilder::<Postgres>::new(
                    "SELECT DISTINCT r.rtype, r.id, r.version_id, r.last_updated, r.content
                     FROM search_index s JOIN resources r ON r.rtype = s.system AND r.id = s.value
                     WHERE r.deleted = FALSE AND s.rtype = ",
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
             WHERE e.seq > $1 ORDER BY e.seq LIMIT $2",
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
            "DELETE FROM event_log WHERE ts < $1 AND seq < (SELECT seq FROM event_counter WHERE singleton = 1)",
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
                    GREATEST(s.events_count, COALESCE((SELECT MAX(n.event_number) FROM subscription_events n
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
                active: row.get::<bool, _>(4),
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
            "SELECT MAX(event_number) FROM subscription_events WHERE subscription_id = $1",
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
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (subscription_id) DO UPDATE SET owner_id = excluded.owner_id,
                   events_count = excluded.events_count, active = excluded.active",
            )
            .bind(&state.subscription_id)
            .bind(&state.owner_id)
            .bind(state.start_seq)
            .bind(state.events_count)
            .bind(state.active)
            .execute(&mut *tx)
            .await?;
        }
        for chunk in notifications.chunks(300) {
            let mut insert = QueryBuilder::<Postgres>::new(
                "INSERT INTO subscription_events (subscription_id, event_number, seq) ",
            );
            insert.push_values(chunk, |mut row, (id, number, seq)| {
                row.push_bind(id).push_bind(number).push_bind(seq);
            });
            insert.build().execute(&mut *tx).await?;
        }
        // Compare-and-set: a matcher that lost its lease without noticing yet (another node
        // took over) finds the position moved and commits nothing, so no number is handed out
        // twice.
        let moved = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('subscriptions.position', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE settings.value = $2",
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
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(MATCHER_CHANNEL)
            .bind(position.to_string())
            .execute(&mut *tx)
            .await?;
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
             WHERE n.seq > $1 AND n.seq <= $2
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
             WHERE e.seq > $1 AND e.seq <= $2 AND e.resource_type = 'Subscription' ORDER BY e.seq",
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
             WHERE n.subscription_id = $1 AND n.event_number > $2 AND n.event_number <= $3
             ORDER BY n.event_number LIMIT $4",
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
        let mut total = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM audit_log WHERE ");
        push_audit_filter(&mut total, filter);
        let total: i64 = total.build_query_scalar().fetch_one(&self.readers).await?;
        let mut page = QueryBuilder::<Postgres>::new(
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
             FROM audit_log WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.readers)
        .await?;
        Ok(row.as_ref().map(audit_from_row))
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.readers)
                .await?,
        )
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn count(&self, resource_type: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM resources WHERE rtype = $1 AND deleted = FALSE",
        )
        .bind(resource_type)
        .fetch_one(&self.readers)
        .await?)
    }
}

/// One write inside the caller's transaction (a savepoint of the group commit).
async fn write_one(
    conn: &mut PgConnection,
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
        "SELECT version_id, deleted, content FROM resources WHERE rtype = $1 AND id = $2",
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
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
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
         VALUES ($1, $2, $3, $4, $5, $6)",
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
        "UPDATE event_counter SET seq = seq + $1 WHERE singleton = 1 RETURNING seq",
    )
    .bind(count)
    .fetch_one(&mut *conn)
    .await?;
    let first_seq = last_seq - count + 1;
    let mut events = Vec::with_capacity(derived.len());
    if !derived.is_empty() {
        let mut insert = QueryBuilder::<Postgres>::new(
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
    conn: &mut PgConnection,
    resource_type: &str,
    id: &str,
    replace: bool,
    entries: &crate::store::index::IndexEntries,
) -> Result<(), StoreError> {
    if replace {
        sqlx::query("DELETE FROM search_index WHERE rtype = $1 AND id = $2")
            .bind(resource_type)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM search_dates WHERE rtype = $1 AND id = $2")
            .bind(resource_type)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    // SQLite allows 32766 bound parameters; chunk to stay far below.
    for chunk in entries.values.chunks(1000) {
        let mut insert = QueryBuilder::<Postgres>::new(
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
        let mut insert = QueryBuilder::<Postgres>::new(
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
async fn reindex_stale(writer: &sqlx::Pool<Postgres>) -> Result<u64, StoreError> {
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
             WHERE deleted = FALSE AND (rtype > $1 OR (rtype = $2 AND id > $3))
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
        // Nodes starting together re-index one page at a time, never interleaved.
        sqlx::query("SELECT pg_advisory_xact_lock(7412001)")
            .execute(&mut *tx)
            .await?;
        for (rtype, id, content) in &rows {
            let Ok(resource) = serde_json::from_str::<Value>(content) else {
                continue;
            };
            let entries = index_entries(rtype, &resource);
            write_index(&mut tx, rtype, id, true, &entries).await?;
            sqlx::query("UPDATE resources SET sort_date = $1 WHERE rtype = $2 AND id = $3")
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
        "INSERT INTO settings (key, value) VALUES ('index.version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(crate::store::index::INDEX_VERSION)
    .execute(writer)
    .await?;
    Ok(count)
}

/// References in `content` that name no live resource (a resource may refer to itself).
async fn unresolved(
    conn: &mut PgConnection,
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
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT rtype, id FROM resources WHERE deleted = FALSE AND (rtype, id) IN (",
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
fn event_from_row(row: &sqlx::postgres::PgRow, at: usize) -> Result<EventRecord, StoreError> {
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

fn stored_from_row(row: &sqlx::postgres::PgRow) -> Stored {
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

fn audit_from_row(row: &sqlx::postgres::PgRow) -> AuditRow {
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

async fn insert_audit(conn: &mut PgConnection, record: &AuditRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (ts, user_id, action, operation, resource_type, resource_id, patient_id, outcome, detail, source)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
/// SAVEPOINT of one transaction, commits once, and only then answers. The transaction first locks
/// the `event_counter` row, which serialises writers across nodes until COMMIT (the module header
/// says why that makes `seq` gap-free in commit order), and last notifies the other nodes. A write
/// that fails rolls back to its savepoint alone (its `seq` numbers with it); if the COMMIT itself
/// fails, every write of the batch is told so and none of them happened.
async fn group_commit_writer(writer: PgPool, mut rx: mpsc::UnboundedReceiver<WriteJob>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let begun = async {
            let mut tx = writer.begin().await?;
            sqlx::query("SELECT seq FROM event_counter WHERE singleton = 1 FOR UPDATE")
                .execute(&mut *tx)
                .await?;
            Ok::<_, sqlx::Error>(tx)
        }
        .await;
        let mut tx = match begun {
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
        let mut last_seq = None;
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
            if let Ok(Some(written)) = &outcome {
                if let Some(&(seq, _)) = written.events.last() {
                    last_seq = Some(seq);
                }
            }
            outcomes.push((job.reply, outcome));
        }
        let committed = async {
            if let Some(seq) = last_seq {
                // Delivered by PostgreSQL at COMMIT, in commit order, to every LISTENing node.
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(EVENTS_CHANNEL)
                    .bind(seq.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await;
        match committed {
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
async fn audit_writer(writer: PgPool, mut rx: mpsc::UnboundedReceiver<AuditMsg>) {
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

async fn commit_audit_batch(writer: &PgPool, batch: &[AuditRecord]) -> Result<(), sqlx::Error> {
    let mut tx = writer.begin().await?;
    for record in batch {
        insert_audit(&mut tx, record).await?;
    }
    tx.commit().await
}

/// (session id, used at, user id, revoked at, expires at) of a presented refresh token.
type RefreshRow = (String, Option<String>, String, Option<String>, String);

type UserTuple = (String, String, String, String, String, Option<String>, bool);

impl PgStore {
    async fn with_units(&self, row: Option<UserTuple>) -> Result<Option<UserRow>, StoreError> {
        let Some((id, username, name, role, password_hash, practitioner_id, active)) = row else {
            return Ok(None);
        };
        let units: Vec<String> = sqlx::query_scalar(
            "SELECT unit_id FROM user_units WHERE user_id = $1 ORDER BY unit_id",
        )
        .bind(&id)
        .fetch_all(&self.readers)
        .await?;
        Ok(Some(UserRow {
            id,
            username,
            name,
            role,
            password_hash,
            practitioner_id,
            active,
            units,
        }))
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        let row: Option<UserTuple> = sqlx::query_as(
            "SELECT id, username, name, role, password_hash, practitioner_id, active FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.readers)
        .await?;
        self.with_units(row).await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let row: Option<UserTuple> = sqlx::query_as(
            "SELECT id, username, name, role, password_hash, practitioner_id, active FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.readers)
        .await?;
        self.with_units(row).await
    }

    pub async fn insert_user(&self, user: &UserRow, created_at: &str) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, username, name, role, password_hash, practitioner_id, active, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.name)
        .bind(&user.role)
        .bind(&user.password_hash)
        .bind(&user.practitioner_id)
        .bind(user.active)
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        for unit in &user.units {
            sqlx::query("INSERT INTO user_units (user_id, unit_id) VALUES ($1, $2)")
                .bind(&user.id)
                .bind(unit)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_session(
        &self,
        session_id: &str,
        user_id: &str,
        now: &str,
        expires_at: &str,
        refresh_hash: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(session_id)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES ($1, $2, $3)",
        )
        .bind(refresh_hash)
        .bind(session_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Rotates a refresh token. A token used again after `grace_start` (its use time plus the
    /// grace period, passed in as the earliest use time still tolerated) revokes the session.
    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: &str,
        grace_start: &str,
    ) -> Result<Refresh, StoreError> {
        let mut tx = self.writer.begin().await?;
        let row: Option<RefreshRow> = sqlx::query_as(
            "SELECT t.session_id, t.used_at, s.user_id, s.revoked_at, s.expires_at
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1",
        )
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((session_id, used_at, user_id, revoked_at, expires_at)) = row else {
            return Ok(Refresh::Invalid);
        };
        if revoked_at.is_some() || expires_at.as_str() <= now {
            return Ok(Refresh::Invalid);
        }
        if let Some(used_at) = used_at {
            // Two tabs refreshing at the same moment present the same token; tolerate that
            // briefly, treat anything later as theft.
            if used_at.as_str() < grace_start {
                sqlx::query("UPDATE sessions SET revoked_at = $1, revoked_why = 'refresh token replayed' WHERE id = $2")
                    .bind(now)
                    .bind(&session_id)
                    .execute(&mut *tx)
                    .await?;
                notify_revoked(&mut tx, &session_id).await?;
                tx.commit().await?;
                return Ok(Refresh::Replayed {
                    session_id,
                    user_id,
                });
            }
        } else {
            sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(old_hash)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES ($1, $2, $3)",
        )
        .bind(new_hash)
        .bind(&session_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Refresh::Rotated {
            session_id,
            user_id,
        })
    }

    pub async fn revoke_session(
        &self,
        session_id: &str,
        now: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("UPDATE sessions SET revoked_at = $1, revoked_why = $2 WHERE id = $3 AND revoked_at IS NULL")
            .bind(now)
            .bind(why)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        notify_revoked(&mut tx, session_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user of session `session_id` while it is active (not revoked, not expired).
    pub async fn session_user(
        &self,
        session_id: &str,
        now: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(session_id)
        .bind(now)
        .fetch_optional(&self.readers)
        .await?)
    }

    /// The live session a refresh token (by its hash) belongs to, and its user: sign-out with
    /// only the refresh cookie left (the access cookie lapses after its lifetime) still ends it.
    pub async fn session_of_refresh(
        &self,
        token_hash: &str,
        now: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT s.id, s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
             WHERE t.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.readers)
        .await?)
    }

    /// Which of `session_ids` exist, are not revoked and have not expired at `now`.
    pub async fn active_sessions(
        &self,
        session_ids: &[String],
        now: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM sessions
             WHERE id = ANY($1) AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(session_ids)
        .bind(now)
        .fetch_all(&self.readers)
        .await?)
    }

    /// Sessions revoked at or after `since` (by the revoking node's clock).
    async fn revoked_since(&self, since: &str) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM sessions WHERE revoked_at COLLATE \"C\" >= $1")
                .bind(since)
                .fetch_all(&self.readers)
                .await?,
        )
    }

    /// Patients whose active CareTeam lists this practitioner.
    pub async fn care_team_patients(
        &self,
        practitioner_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT r.patient_id FROM resources r
             JOIN search_index m ON m.rtype = 'CareTeam' AND m.id = r.id AND m.param = 'participant'
                               AND m.system = 'Practitioner' AND m.value = $1
             JOIN search_index st ON st.rtype = 'CareTeam' AND st.id = r.id AND st.param = 'status'
                                AND st.value = 'active'
             WHERE r.rtype = 'CareTeam' AND r.deleted = FALSE AND r.patient_id IS NOT NULL
             ORDER BY 1",
        )
        .bind(practitioner_id)
        .fetch_all(&self.readers)
        .await?)
    }

    /// Patients whose active Encounter is on one of these units.
    pub async fn unit_patients(&self, units: &[String]) -> Result<Vec<String>, StoreError> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT DISTINCT patient_id FROM resources
             WHERE rtype = 'Encounter' AND deleted = FALSE AND patient_id IS NOT NULL AND unit_id IN (",
        );
        let mut list = query.separated(", ");
        for unit in units {
            list.push_bind(unit.clone());
        }
        query.push(") ORDER BY 1");
        Ok(query.build_query_scalar().fetch_all(&self.readers).await?)
    }

    /// The unit each patient is on now (patient id, unit id), for the census and the panels.
    pub async fn census(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT unit_id, COUNT(DISTINCT patient_id) FROM resources
             WHERE rtype = 'Encounter' AND deleted = FALSE AND unit_id IS NOT NULL
             GROUP BY unit_id ORDER BY unit_id",
        )
        .fetch_all(&self.readers)
        .await?)
    }

    /// Patients with a prescription the pharmacy still has to act on.
    pub async fn prescription_patients(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT r.patient_id FROM resources r
             JOIN search_index st ON st.rtype = 'MedicationRequest' AND st.id = r.id AND st.param = 'status'
                                AND st.value IN ('active', 'on-hold', 'draft')
             WHERE r.rtype = 'MedicationRequest' AND r.deleted = FALSE AND r.patient_id IS NOT NULL
             ORDER BY 1",
        )
        .fetch_all(&self.readers)
        .await?)
    }
}

/// Tells every node (at commit) that a session was revoked, so each closes its sockets.
async fn notify_revoked(conn: &mut PgConnection, session_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(SESSIONS_CHANNEL)
        .bind(session_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Moves a watch forward only (notifications and re-reads may arrive in any order).
fn advance(watch: &watch::Sender<i64>, value: i64) {
    watch.send_if_modified(|current| {
        let moved = value > *current;
        if moved {
            *current = value;
        }
        moved
    });
}
