//! The seam between the store's SQL, written once, and the two engines it runs on.
//!
//! Every query of the store is one piece of text that both engines understand: placeholders are
//! `$1`, `$2`… (sqlx's SQLite driver reads them too), booleans are `TRUE`/`FALSE`, and the few
//! functions the dialects spell differently are left to Rust. [`on!`] runs such a query on
//! whichever engine a pool, connection or transaction belongs to: the expression is written once
//! and compiled for each, with concrete types (no generics over sqlx, which cost compile time).
//!
//! What really differs is not here but in `backend/`: opening, how a write transaction starts,
//! notifying other nodes, the matcher's lease. This file only dispatches to it, and answers
//! "nothing to do" where SQLite, being one node, has nothing to do.

use sqlx::{Connection, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};

use super::backend::{
    postgres::{self, Notice, PgDb},
    sqlite::SqliteDb,
};

/// One of the two engines, holding what belongs to it.
#[derive(Clone)]
pub enum Engine<S, P> {
    Sqlite(S),
    Postgres(P),
}

/// The store's database, chosen by its URL.
pub type Db = Engine<SqliteDb, Box<PgDb>>;
/// A pool to run a query on.
pub type Pool<'a> = Engine<&'a SqlitePool, &'a PgPool>;
/// One connection (inside a transaction) to run a query on.
pub type Conn<'a> = Engine<&'a mut SqliteConnection, &'a mut PgConnection>;
/// A transaction, or a savepoint inside one.
pub type Tx<'a> = Engine<sqlx::Transaction<'a, Sqlite>, sqlx::Transaction<'a, Postgres>>;

/// `on!(target, |db| expression)`: evaluates `expression` with `db` bound to the SQLite or the
/// PostgreSQL pool or connection `target` holds. Both arms must give the same type.
macro_rules! on {
    ($target:expr, |$db:ident| $body:expr) => {
        match $target {
            $crate::store::engine::Engine::Sqlite($db) => $body,
            $crate::store::engine::Engine::Postgres($db) => $body,
        }
    };
}
pub(crate) use on;

impl Db {
    /// Whether other nodes may share this database.
    pub fn shared(&self) -> bool {
        matches!(self, Engine::Postgres(_))
    }

    /// The pool reads go to (SQLite: read-only connections that never wait for the writer).
    pub fn readers(&self) -> Pool<'_> {
        match self {
            Engine::Sqlite(sqlite) => Engine::Sqlite(&sqlite.readers),
            Engine::Postgres(pg) => Engine::Postgres(&pg.pool),
        }
    }

    /// The pool writes go to (SQLite: its one writer connection), and reads that must see the
    /// newest write.
    pub fn writer(&self) -> Pool<'_> {
        match self {
            Engine::Sqlite(sqlite) => Engine::Sqlite(&sqlite.writer),
            Engine::Postgres(pg) => Engine::Postgres(&pg.pool),
        }
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        Ok(match self {
            Engine::Sqlite(sqlite) => Engine::Sqlite(sqlite.begin().await?),
            Engine::Postgres(pg) => Engine::Postgres(pg.begin().await?),
        })
    }

    /// Starts a write transaction that may number events: `seq` is gap-free in commit order.
    pub async fn begin_events(&self) -> Result<Tx<'static>, sqlx::Error> {
        Ok(match self {
            Engine::Sqlite(sqlite) => Engine::Sqlite(sqlite.begin_events().await?),
            Engine::Postgres(pg) => Engine::Postgres(pg.begin_events().await?),
        })
    }
}

impl Tx<'_> {
    /// The transaction's connection, to run a query on.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Engine::Sqlite(tx) => Engine::Sqlite(&mut **tx),
            Engine::Postgres(tx) => Engine::Postgres(&mut **tx),
        }
    }

    /// A savepoint: rolling it back undoes only what was done inside it.
    pub async fn savepoint(&mut self) -> Result<Tx<'_>, sqlx::Error> {
        Ok(match self {
            Engine::Sqlite(tx) => Engine::Sqlite(tx.begin().await?),
            Engine::Postgres(tx) => Engine::Postgres(tx.begin().await?),
        })
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        on!(self, |tx| tx.commit().await)
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        on!(self, |tx| tx.rollback().await)
    }

    /// Tells the other nodes `notice` when this transaction commits. SQLite has no other nodes;
    /// this node learns of its own commits without being told.
    pub async fn notify(&mut self, notice: &Notice) -> Result<(), sqlx::Error> {
        match self.conn() {
            Engine::Sqlite(_) => Ok(()),
            Engine::Postgres(conn) => postgres::notify(conn, notice).await,
        }
    }

    /// Keeps other nodes from re-indexing until this transaction ends (one node on SQLite).
    pub async fn lock_reindex(&mut self) -> Result<(), sqlx::Error> {
        match self.conn() {
            Engine::Sqlite(_) => Ok(()),
            Engine::Postgres(conn) => postgres::lock_reindex(conn).await,
        }
    }
}
