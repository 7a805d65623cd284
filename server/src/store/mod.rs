//! The FHIR store: versioned resources, their search indexes, the event log and the audit trail.
//!
//! Step 2 of the event path. Every write is ONE database transaction that stores the new version,
//! its history row, the events derived from it (`app::events::classify`) with gap-free `seq`
//! numbers, and its audit row — all of it commits, or none of it does. After commit the head
//! `seq` is published on a `watch` channel so the dispatcher can wake up.
//!
//! This module is the only place that speaks SQL. Callers see the narrow interface of [`Store`];
//! the engine is chosen by the database URL: `sqlite://…` (the default, one node) or
//! `postgres://…` (several nodes on one database). It never decides who may see what: callers
//! pass a `Visibility`.
//!
//! Besides the head `seq`, the store publishes two more things every node must hear about,
//! whichever node caused them: the subscription matcher's committed position and revoked
//! sessions. On SQLite they come from this process; on PostgreSQL from `LISTEN` (`follow.rs`).
//!
//! The SQL is written once, for both engines (`engine.rs` says how). Files, from the bottom up:
//!
//! - `model.rs`: the types callers see, re-exported here; `index.rs`: what a resource version
//!   puts in the search indexes; `sql.rs`: the search's SQL.
//! - `backend/{sqlite,postgres}.rs`: only what differs between the engines: opening, how a write
//!   transaction starts, notifying other nodes, the matcher's lease.
//! - `engine.rs`: the seam that runs one query on either engine.
//! - `tail.rs`: the newest events, kept in memory by the writer for the log's followers.
//! - `handle.rs`: the [`Store`] type; its methods are in `read.rs`, `write.rs`, `events.rs`,
//!   `subscriptions.rs`, `accounts.rs` and `audit.rs`, next to the SQL they run.

pub mod accounts;
mod audit;
mod backend;
mod engine;
mod events;
mod follow;
mod handle;
pub(crate) mod index;
mod model;
mod read;
mod sql;
mod subscriptions;
mod tail;
mod write;

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use tokio::sync::{broadcast, mpsc, watch};

use backend::{postgres::PgDb, sqlite::SqliteDb};
use engine::{Db, Engine};
use handle::COMMIT_CLOCK_LEN;

pub use handle::Store;
pub use model::{
    Actor, AuditFilter, AuditRecord, AuditRow, EventRecord, HistoryWindow, NewestFacts,
    ReadOutcome, SearchPage, StoreError, Stored, SubscriptionState, Visibility, WriteOp, Written,
};
pub use subscriptions::MatcherLease;
pub use write::literal_references;

/// Whether a database URL names PostgreSQL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Store {
    /// Opens (creating if needed) and migrates the database named by `url`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let db: Db = if is_postgres_url(url) {
            Engine::Postgres(Box::new(PgDb::open(url).await?))
        } else {
            let sqlite = SqliteDb::open(url).await?;
            sqlite.spawn_checkpoints();
            Engine::Sqlite(sqlite)
        };
        let head = events::head_seq(&db).await?;
        let position = subscriptions::matcher_position(&db).await?;
        let (writes, write_rx) = mpsc::unbounded_channel();
        let written = Arc::new(Mutex::new(HashMap::new()));
        let tail = Arc::new(Mutex::new(tail::Tail::at(head)));
        let commits = Arc::new(Mutex::new(VecDeque::with_capacity(COMMIT_CLOCK_LEN)));
        let head = watch::channel(head).0;
        let writer = write::group_commit_writer(
            db.clone(),
            write_rx,
            write::AfterCommit {
                written: written.clone(),
                tail: tail.clone(),
                commits: commits.clone(),
                head: head.clone(),
            },
        );
        match &db {
            // Each statement of a write is a round trip to SQLite's connection thread; on a
            // thread of its own the writer is woken at once after each, instead of waiting its
            // turn behind every socket the runtime serves.
            Engine::Sqlite(_) => on_own_thread("rounds-writer", writer)?,
            // A PostgreSQL connection belongs to the runtime that opened it.
            Engine::Postgres(_) => drop(tokio::spawn(writer)),
        }
        let (audits, audit_rx) = mpsc::unbounded_channel();
        tokio::spawn(audit::audit_writer(db.clone(), audit_rx));
        let store = Self {
            head,
            matcher: watch::channel(position).0,
            revoked: broadcast::channel(1024).0,
            hearing: watch::channel(!db.shared()).0,
            commits,
            written,
            tail,
            visibilities: Arc::new(Mutex::new(HashMap::new())),
            writes,
            audits,
            db,
        };
        if let Engine::Postgres(pg) = &store.db {
            follow::spawn(store.clone(), PgDb::clone(pg));
        }
        Ok(store)
    }

    /// Whether other nodes may share this database (PostgreSQL).
    pub fn shared(&self) -> bool {
        self.db.shared()
    }
}

/// Runs `task` to its end on a new thread with a runtime of its own.
fn on_own_thread(
    name: &str,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StoreError> {
    let failed =
        |error: std::io::Error| StoreError::Commit(format!("cannot start {name}: {error}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(failed)?;
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || runtime.block_on(task))
        .map_err(failed)?;
    Ok(())
}
