//! What the FHIR Subscription matcher keeps in the store: its lease, its position, each
//! subscription's state and the notifications it numbered.
//!
//! The matcher runs on one node at a time (the holder of the lease); every node follows its
//! committed position and delivers the notifications committed up to it.

use sqlx::{QueryBuilder, Row};
use tokio::sync::watch;

use super::{
    backend::postgres::Notice,
    engine::{on, Db, Engine},
    events::{event_from_row, events_where, EVENT_COLUMNS, EVENT_JOINS},
    handle::{advance, Store},
    model::{EventRecord, StoreError, SubscriptionState},
};

/// The settings key of the matcher's committed position.
const POSITION_KEY: &str = "subscriptions.position";

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

/// The matcher's committed position (0 before it first ran).
pub(super) async fn matcher_position(db: &Db) -> Result<i64, StoreError> {
    let position: Option<String> = on!(db.readers(), |pool| {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(POSITION_KEY)
            .fetch_optional(pool)
            .await?
    });
    Ok(position.and_then(|v| v.parse().ok()).unwrap_or(0))
}

impl Store {
    /// Waits until this node may run the subscription matcher (at once on SQLite).
    pub async fn matcher_lease(&self) -> MatcherLease {
        match &self.db {
            Engine::Sqlite(_) => MatcherLease { conn: None },
            Engine::Postgres(pg) => MatcherLease {
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
        if self.db.shared() {
            match matcher_position(&self.db).await {
                Ok(position) => advance(&self.matcher, position),
                Err(error) => tracing::warn!(%error, "reading the matcher position failed"),
            }
        }
    }

    /// Every subscription the matcher has registered.
    pub async fn subscription_states(&self) -> Result<Vec<SubscriptionState>, StoreError> {
        type StateRow = (String, String, i64, i64, i64, bool);
        let rows: Vec<StateRow> = on!(self.db.readers(), |pool| {
            sqlx::query_as(
                "SELECT s.subscription_id, s.owner_id, s.start_seq, s.events_count,
                        COALESCE((SELECT MAX(n.event_number) FROM subscription_events n
                                  WHERE n.subscription_id = s.subscription_id), 0),
                        s.active
                 FROM subscription_state s",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(subscription_id, owner_id, start_seq, count, last_handed_out, active)| {
                    SubscriptionState {
                        subscription_id,
                        owner_id,
                        start_seq,
                        // The count never falls behind a number already handed out (numbers
                        // never repeat, whatever a state row says).
                        events_count: count.max(last_handed_out),
                        active,
                    }
                },
            )
            .collect())
    }

    /// The highest event number handed out to `subscription_id` (0: none), read from the writer.
    pub async fn last_event_number(&self, subscription_id: &str) -> Result<i64, StoreError> {
        let last: Option<i64> = on!(self.db.writer(), |pool| {
            sqlx::query_scalar(
                "SELECT MAX(event_number) FROM subscription_events WHERE subscription_id = $1",
            )
            .bind(subscription_id)
            .fetch_one(pool)
            .await?
        });
        Ok(last.unwrap_or(0))
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
        let mut tx = self.db.begin().await?;
        for state in states {
            on!(tx.conn(), |conn| {
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
                .execute(conn)
                .await?;
            });
        }
        for chunk in notifications.chunks(300) {
            on!(tx.conn(), |conn| {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO subscription_events (subscription_id, event_number, seq) ",
                );
                insert.push_values(chunk, |mut row, (id, number, seq)| {
                    row.push_bind(id).push_bind(number).push_bind(seq);
                });
                insert.build().execute(conn).await?;
            });
        }
        // Compare-and-set: a matcher that lost its lease without noticing yet (another node
        // took over) finds the position moved and commits nothing, so no number is handed out
        // twice.
        let moved = on!(tx.conn(), |conn| {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE settings.value = $3",
            )
            .bind(POSITION_KEY)
            .bind(position.to_string())
            .bind(previous.to_string())
            .execute(conn)
            .await?
            .rows_affected()
        });
        if moved == 0 {
            return Err(StoreError::Conflict(
                "another matcher moved the subscription position".into(),
            ));
        }
        tx.notify(&Notice::Matcher(position)).await?;
        tx.commit().await?;
        self.matcher_reached(position);
        Ok(())
    }

    /// Every notification committed for events `after < seq <= until`: (subscription, number,
    /// event), in `seq` order; what each node's subscription follower delivers.
    pub async fn notifications_between(
        &self,
        after: i64,
        until: i64,
    ) -> Result<Vec<(String, i64, EventRecord)>, StoreError> {
        let sql = format!(
            "SELECT n.subscription_id, n.event_number, {EVENT_COLUMNS}
             FROM subscription_events n JOIN event_log e ON e.seq = n.seq {EVENT_JOINS}
             WHERE n.seq > $1 AND n.seq <= $2
             ORDER BY n.seq, n.subscription_id"
        );
        on!(self.db.readers(), |pool| {
            let rows = sqlx::query(&sql)
                .bind(after)
                .bind(until)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| Ok((row.get(0), row.get(1), event_from_row(row, 2)?)))
                .collect()
        })
    }

    /// Events `after < seq <= until` about Subscriptions, in order.
    pub async fn subscription_writes(
        &self,
        after: i64,
        until: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        events_where(
            &self.db,
            "e.seq > $1 AND e.seq <= $2 AND e.resource_type = 'Subscription' ORDER BY e.seq",
            after,
            until,
        )
        .await
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
        let sql = format!(
            "SELECT n.event_number, {EVENT_COLUMNS}
             FROM subscription_events n JOIN event_log e ON e.seq = n.seq {EVENT_JOINS}
             WHERE n.subscription_id = $1 AND n.event_number > $2 AND n.event_number <= $3
             ORDER BY n.event_number LIMIT $4"
        );
        on!(self.db.readers(), |pool| {
            let rows = sqlx::query(&sql)
                .bind(subscription_id)
                .bind(since)
                .bind(until)
                .bind(limit as i64)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| Ok((row.get(0), event_from_row(row, 1)?)))
                .collect()
        })
    }
}
