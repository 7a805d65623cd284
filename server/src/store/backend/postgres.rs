//! The PostgreSQL engine: several Rounds nodes on one database.
//!
//! The same tables and the same one-transaction write as on SQLite (the SQL is written once, in
//! the files above this one), with what several nodes add, and only that, here:
//!
//! - **Gap-free `seq` in commit order across nodes.** Every write transaction first locks the one
//!   row of `event_counter` (`SELECT ... FOR UPDATE`, [`PgDb::begin_events`]) and holds it until
//!   COMMIT; `seq` numbers are taken from that row. A second writer, on any node, waits for the
//!   lock, and PostgreSQL releases it only after the first transaction's commit is visible. So
//!   `seq` N+1 can never be visible before `seq` N, a rollback returns its numbers, and a
//!   reader's `seq > last` never skips anything. A SEQUENCE would hand out numbers that can
//!   commit out of order (6 before 5), and a reader that had moved past 6 would miss 5 forever.
//!   Taking the lock first (not when the events are numbered) also fixes the lock order, so two
//!   nodes' batches cannot deadlock on a resource row; and it makes If-Match and reference checks
//!   exact across nodes.
//! - **Group commit** is kept: each node's writer commits every write waiting at the moment in one
//!   transaction (one savepoint each), so the lock is taken once per batch, not once per write.
//! - **Wake-ups across nodes.** The write transaction calls `pg_notify('rounds_events', <last
//!   seq>)` ([`notify`]); PostgreSQL delivers it at commit to every node's `LISTEN` connection
//!   ([`PgDb::listen`]), which moves that node's head watch. A notification is only a hint: a
//!   lost one, or a dropped `LISTEN` connection (re-established, then the head re-read from the
//!   table), delays delivery by at most the dispatcher's one-second poll and loses nothing — the
//!   log is the truth.
//! - **Revocations across nodes** ride the same connection (`rounds_sessions`). A sign-out
//!   notified while this node was not listening is not lost either: once listening again, it
//!   re-reads the sessions revoked since it last heard anything ([`PgDb::revoked_since`]).
//! - **One matcher** among the nodes: the holder of a session advisory lock
//!   ([`PgDb::matcher_lease`]).

use std::{str::FromStr, time::Duration};

use sqlx::{
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
    Connection, PgConnection, PgPool, Postgres, Transaction,
};

use crate::store::model::StoreError;

/// The channel committed writes notify, with the last `seq` they committed.
const EVENTS_CHANNEL: &str = "rounds_events";
/// The channel the subscription matcher notifies with its committed position.
const MATCHER_CHANNEL: &str = "rounds_matcher";
/// The channel a revoked session's id is notified on, so every node closes its sockets.
const SESSIONS_CHANNEL: &str = "rounds_sessions";
/// The advisory lock key whose holder runs the FHIR Subscription matcher ("rounds" in ASCII).
const MATCHER_LOCK: i64 = 0x726f_756e_6473;
/// The advisory lock key that keeps nodes starting together from re-indexing the same page.
const REINDEX_LOCK: i64 = 7412001;

/// The connection pool, and the options to open connections of their own (the matcher lease).
#[derive(Clone)]
pub struct PgDb {
    pub pool: PgPool,
    options: PgConnectOptions,
}

/// What one node tells the others; PostgreSQL delivers it when the transaction commits.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Events up to this `seq` are committed.
    Events(i64),
    /// The subscription matcher committed this position.
    Matcher(i64),
    /// This session was revoked.
    Revoked(String),
}

impl PgDb {
    /// Connects to and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            url: without_password(url),
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
        Ok(Self { pool, options })
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Starts a transaction that numbers events: it first locks the `event_counter` row, which
    /// serialises writers across nodes until COMMIT (the module header says why that makes `seq`
    /// gap-free in commit order).
    pub async fn begin_events(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT seq FROM event_counter WHERE singleton = 1 FOR UPDATE")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Listens on a new connection of its own to what other nodes notify.
    pub async fn listen(&self) -> Result<Listening, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener
            .listen_all([EVENTS_CHANNEL, MATCHER_CHANNEL, SESSIONS_CHANNEL])
            .await?;
        Ok(Listening(listener))
    }

    /// Sessions revoked at or after `since` (by the revoking node's clock), compared byte by
    /// byte as SQLite compares text (the stored fixed-width form sorts that way).
    pub async fn revoked_since(&self, since: &str) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT id FROM sessions WHERE revoked_at COLLATE \"C\" >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await
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
}

/// Queues `notice` for every `LISTEN`ing node; PostgreSQL delivers it at COMMIT, in commit order.
pub async fn notify(conn: &mut PgConnection, notice: &Notice) -> Result<(), sqlx::Error> {
    let (channel, payload) = match notice {
        Notice::Events(seq) => (EVENTS_CHANNEL, seq.to_string()),
        Notice::Matcher(position) => (MATCHER_CHANNEL, position.to_string()),
        Notice::Revoked(session_id) => (SESSIONS_CHANNEL, session_id.clone()),
    };
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// Holds re-indexing to one node at a time until the transaction ends.
pub async fn lock_reindex(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(REINDEX_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

/// A `LISTEN` connection.
pub struct Listening(PgListener);

impl Listening {
    /// The next notice from any node; `None` once the connection is lost. (Not `recv`, which
    /// would reconnect and listen again by itself: the caller must re-read what it missed after
    /// each LISTEN.) A notice it cannot read is skipped.
    pub async fn next(&mut self) -> Result<Option<Notice>, sqlx::Error> {
        while let Some(notification) = self.0.try_recv().await? {
            let payload = notification.payload();
            let notice = match notification.channel() {
                EVENTS_CHANNEL => payload.parse().ok().map(Notice::Events),
                MATCHER_CHANNEL => payload.parse().ok().map(Notice::Matcher),
                SESSIONS_CHANNEL => Some(Notice::Revoked(payload.to_owned())),
                _ => None,
            };
            if notice.is_some() {
                return Ok(notice);
            }
        }
        Ok(None)
    }
}

/// `url` with its password (if any) replaced, fit for an error message.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn a_password_never_reaches_an_error_message() {
        assert_eq!(
            without_password("postgres://rounds:s3cr@t@db:5432/rounds"),
            "postgres://rounds:<redacted>@db:5432/rounds"
        );
        assert_eq!(
            without_password("postgres://rounds@db/rounds"),
            "postgres://rounds@db/rounds"
        );
        assert_eq!(
            without_password("postgresql://db/rounds"),
            "postgresql://db/rounds"
        );
    }
}
