//! The SQLite engine: one node, one file.
//!
//! Writes go through one dedicated connection (SQLite has one writer anyway) inside
//! `BEGIN IMMEDIATE` transactions; reads use a separate pool and never wait for writers (WAL).
//! `seq` comes from the single-row `event_counter`, incremented inside the write transaction: the
//! write lock is held until commit, so numbers are handed out in commit order and a rollback
//! returns them. That is the whole gap-free argument on one node.
//!
//! Only what differs from PostgreSQL lives here: opening, and how a write transaction starts.
//! With one node there is nobody to notify and no lease to take.

use std::{str::FromStr, time::Duration};

use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Sqlite, SqlitePool, Transaction,
};

use crate::store::model::StoreError;

/// The SQLite pools: a read-only pool and the single writer connection.
#[derive(Clone)]
pub struct SqliteDb {
    pub readers: SqlitePool,
    pub writer: SqlitePool,
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
            .connect_with(options.clone())
            .await
            .map_err(|e| open_error(e.to_string()))?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await
            .map_err(|e| open_error(e.to_string()))?;
        Ok(Self { readers, writer })
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
