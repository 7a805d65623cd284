//! The SQLite engine: one node, one file.
//!
//! Writes go through one dedicated connection (SQLite has one writer anyway) inside
//! `BEGIN IMMEDIATE` transactions; reads use a separate pool and never wait for writers (WAL).
//! `seq` comes from the single-row `event_counter`, incremented inside the write transaction: the
//! write lock is held until commit, so numbers are handed out in commit order and a rollback
//! returns them. That is the whole gap-free argument on one node.
//!
//! Only what differs from PostgreSQL lives here: opening, how a write transaction starts, and
//! checkpointing. With one node there is nobody to notify and no lease to take.
//!
//! **Checkpoints off the write path.** SQLite's automatic checkpoint runs inside the commit that
//! fills the WAL past its threshold: one write in a few hundred waited for thousands of pages to
//! be copied and the database file synced, which was the p99 of a create. Here a connection of
//! its own copies the WAL in the background, a PASSIVE checkpoint every [`CHECKPOINT_EVERY`]
//! that never blocks the writer nor a reader; the writer checkpoints only every 16 MiB of WAL,
//! by then mostly copied already, so that the WAL starts again from its beginning and stays
//! bounded.

use std::{str::FromStr, time::Duration};

/// How often the background checkpoint copies the WAL into the database file.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL pages (4 KiB) after which the writer checkpoints itself, right after a commit: what the
/// background has not copied yet, and then the WAL starts again from its beginning. (Only the
/// writer can restart the WAL, and only when it finds it wholly copied; under a steady stream of
/// writes that is never the case for a checkpoint run from elsewhere.)
const WRITER_CHECKPOINT_PAGES: &str = "4000";

use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Sqlite, SqlitePool, Transaction,
};

use crate::store::model::StoreError;

/// The SQLite pools: a read-only pool, the single writer connection, and the connection that
/// checkpoints.
#[derive(Clone)]
pub struct SqliteDb {
    pub readers: SqlitePool,
    pub writer: SqlitePool,
    checkpointer: SqlitePool,
}

impl SqliteDb {
    /// Opens (creating the file and its folder if needed) and migrates the database at `url`.
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
            .pragma("cache_size", "-16000")
            // Every commit invalidates each reader's page cache (WAL); with the file mapped, a
            // reader takes the pages back from the mapping instead of copying them with pread.
            .pragma("mmap_size", "268435456");
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| open_error(format!("cannot create {}: {e}", parent.display())))?;
            }
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES),
            )
            .await
            .map_err(|e| open_error(e.to_string()))?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| open_error(e.to_string()))?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await
            .map_err(|e| open_error(e.to_string()))?;
        Ok(Self {
            readers,
            writer,
            checkpointer,
        })
    }

    /// Checkpoints the WAL every [`CHECKPOINT_EVERY`] for as long as the runtime runs.
    pub fn spawn_checkpoints(&self) {
        let pool = self.checkpointer.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECKPOINT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(%error, "checkpointing the WAL failed; retrying");
                }
            }
        });
    }

    /// Starts a write transaction holding the write lock from its first statement, so it never
    /// has to upgrade a read lock (and fail with `SQLITE_BUSY`) halfway.
    pub async fn begin(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// Starts a transaction that numbers events: the write lock `begin` takes already serialises
    /// every writer until commit.
    pub async fn begin_events(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin().await
    }
}
