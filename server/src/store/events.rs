//! The event log as readers see it: events after a `seq`, the head, retention.
//!
//! Events are written with the resource versions they come from (`write.rs`); here they are
//! read back with that version's content and what the access policy needs of the resource's
//! newest version, in one query.

use std::{str::FromStr, sync::Arc, time::Instant};

use app::events::{Action, EventType};
use sqlx::{ColumnIndex, Decode, Row, Type};
use tokio::sync::watch;

use super::{
    engine::{on, Db},
    handle::{advance, Store},
    model::{EventRecord, NewestFacts, StoreError},
};

/// The columns [`event_from_row`] reads, from `event_log e` and [`EVENT_JOINS`].
pub(super) const EVENT_COLUMNS: &str =
    "e.seq, e.event_type, e.action, e.resource_type, e.resource_id, e.version_id, e.patient_id,
     e.rooms, e.user_id, e.ts, h.content, cur.patient_id, cur.restricted";
/// What an event row joins: the version it concerns and the resource's newest version.
pub(super) const EVENT_JOINS: &str = "
     JOIN resource_history h
       ON h.rtype = e.resource_type AND h.id = e.resource_id AND h.version_id = e.version_id
     LEFT JOIN resources cur ON cur.rtype = e.resource_type AND cur.id = e.resource_id";

/// The last committed `seq`, read from the writer.
pub(super) async fn head_seq(db: &Db) -> Result<i64, StoreError> {
    Ok(on!(db.writer(), |pool| {
        sqlx::query_scalar("SELECT seq FROM event_counter WHERE singleton = 1")
            .fetch_one(pool)
            .await?
    }))
}

/// The events `condition` (over `event_log e`, with two parameters) selects, in its order.
pub(super) async fn events_where(
    db: &Db,
    condition: &str,
    first: i64,
    second: i64,
) -> Result<Vec<EventRecord>, StoreError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM event_log e {EVENT_JOINS} WHERE {condition}");
    on!(db.readers(), |pool| {
        let rows = sqlx::query(&sql)
            .bind(first)
            .bind(second)
            .fetch_all(pool)
            .await?;
        rows.iter().map(|row| event_from_row(row, 0)).collect()
    })
}

impl Store {
    /// Events with `seq > after`, in order, at most `limit` of them: from the tail this node's
    /// writer keeps when it holds them, from the database otherwise.
    pub async fn events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let alone = !self.db.shared();
        if let Some(events) = self
            .tail
            .lock()
            .ok()
            .and_then(|tail| tail.read(after, limit, alone))
        {
            return Ok(events);
        }
        events_where(
            &self.db,
            "e.seq > $1 ORDER BY e.seq LIMIT $2",
            after,
            limit as i64,
        )
        .await
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
        Ok(on!(self.db.readers(), |pool| {
            sqlx::query_scalar("SELECT MIN(seq) FROM event_log")
                .fetch_one(pool)
                .await?
        }))
    }

    /// Drops events committed before `before` (RFC 3339) from the log, never the newest one, so
    /// the log always shows where it stands. Answers how many were removed.
    pub async fn prune_events(&self, before: &str) -> Result<u64, StoreError> {
        Ok(on!(self.db.writer(), |pool| {
            sqlx::query(
                "DELETE FROM event_log
                 WHERE ts < $1 AND seq < (SELECT seq FROM event_counter WHERE singleton = 1)",
            )
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }

    /// The last committed `seq` (0 for an empty log).
    pub fn head(&self) -> i64 {
        *self.head.borrow()
    }

    /// The head, re-read from the database when other nodes may have moved it further than
    /// this node has heard yet (a client resuming here after its node died may be ahead).
    pub async fn current_head(&self) -> Result<i64, StoreError> {
        if self.db.shared() {
            advance(&self.head, head_seq(&self.db).await?);
        }
        Ok(self.head())
    }

    /// Wakes whenever the head `seq` moves.
    pub fn subscribe_head(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }
}

/// An event row ([`EVENT_COLUMNS`]) starting at column `at`, on either engine.
pub(super) fn event_from_row<'r, R: Row>(row: &'r R, at: usize) -> Result<EventRecord, StoreError>
where
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
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
        newest: NewestFacts {
            patient_id: row.get(at + 11),
            restricted: row.get::<Option<bool>, _>(at + 12).unwrap_or(true),
        },
    })
}
