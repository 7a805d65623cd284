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

use sqlx::{
    Connection, Database, PgConnection, PgPool, Postgres, QueryBuilder, Sqlite, SqliteConnection,
    SqlitePool,
};

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

/// `run_script!(tx, |script| pushes)`: builds a [`Script`] for the engine of `tx` (a `&mut Tx`)
/// with `pushes`, and runs its statements in `tx`.
macro_rules! run_script {
    ($tx:expr, |$script:ident| $pushes:expr) => {{
        let joined = matches!($tx, $crate::store::engine::Engine::Sqlite(_));
        $crate::store::engine::on!($tx.conn(), |conn| {
            let mut $script = $crate::store::engine::Script::new(joined);
            $pushes;
            for mut statement in $script.into_statements() {
                statement.build().execute(&mut *conn).await?;
            }
        })
    }};
}
pub(crate) use run_script;

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

/// Statements to run in order inside one transaction. On SQLite they are joined into one script,
/// run in one round trip to its connection thread (its driver binds the `?` parameters of a
/// script's statements in order); PostgreSQL's protocol binds one statement at a time, so there
/// each is its own.
pub struct Script<'a, DB: Database> {
    joined: bool,
    statements: Vec<QueryBuilder<'a, DB>>,
}

impl<'a, DB: Database> Script<'a, DB> {
    /// An empty script, joined when `joined` (SQLite).
    pub fn new(joined: bool) -> Self {
        Self {
            joined,
            statements: Vec::new(),
        }
    }

    /// Begins the next statement with `head`; the caller pushes the rest.
    pub fn statement(&mut self, head: &str) -> &mut QueryBuilder<'a, DB> {
        match self.statements.last_mut() {
            Some(last) if self.joined => {
                last.push(";\n");
            }
            _ => self.statements.push(QueryBuilder::new("")),
        }
        let at = self.statements.len() - 1;
        let statement = &mut self.statements[at];
        statement.push(head);
        statement
    }

    /// The statements to run, in order (on SQLite at most one).
    pub fn into_statements(self) -> Vec<QueryBuilder<'a, DB>> {
        self.statements
    }
}
