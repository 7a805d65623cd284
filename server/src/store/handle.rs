//! The store handle held in `AppState`, and what its background tasks are sent.
//!
//! Only the type: its methods are written next to the SQL they run, one file per concern
//! (`read.rs`, `write.rs`, `events.rs`, `subscriptions.rs`, `accounts.rs`, `audit.rs`), and
//! `Store::open` in `mod.rs`.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Instant,
};

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::{
    engine::Db,
    model::{Actor, AuditRecord, StoreError, Visibility, WriteOp, Written},
    tail::Tail,
};

/// The store handle held in `AppState`; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(super) db: Db,
    pub(super) head: watch::Sender<i64>,
    /// The subscription matcher's committed position: every notification for an event at or
    /// before it is in the database.
    pub(super) matcher: watch::Sender<i64>,
    /// Sessions revoked on any node.
    pub(super) revoked: broadcast::Sender<String>,
    /// Whether every revocation reaches this node now (always on SQLite; on PostgreSQL while
    /// its `LISTEN` connection is up and has re-read what it missed).
    pub(super) hearing: watch::Sender<bool>,
    /// When this node committed recent events: (last seq of a write, commit instant), oldest
    /// first. Only for the commit-to-socket latency metric; bounded.
    pub(super) commits: Arc<Mutex<VecDeque<(i64, Instant)>>>,
    /// How many writes of each resource type this node has committed; moved by the writer
    /// after each commit and before it answers (`Store::write_mark`).
    pub(super) written: Arc<Mutex<HashMap<String, u64>>>,
    /// Visibilities remembered with the write mark they were computed at
    /// (`Store::remembered_visibility`); bounded by `VISIBILITY_MEMO_LEN`.
    pub(super) visibilities: Arc<Mutex<VisibilityMemo>>,
    /// The newest events this node committed, moved by the writer (`tail.rs`).
    pub(super) tail: Arc<Mutex<Tail>>,
    /// The group-commit writer's queue (`write.rs`): the writes of one call, in order.
    pub(super) writes: mpsc::UnboundedSender<Vec<WriteJob>>,
    /// The audit writer's queue (`audit.rs`).
    pub(super) audits: mpsc::UnboundedSender<AuditMsg>,
}

/// How many recent commits `Store::commit_instant` remembers.
pub(super) const COMMIT_CLOCK_LEN: usize = 8192;

/// Visibilities by key, each with the write mark it was computed at.
pub(super) type VisibilityMemo = HashMap<String, (u64, Arc<Visibility>)>;

/// How many users' visibilities `Store::remember_visibility` keeps before it starts again.
pub(super) const VISIBILITY_MEMO_LEN: usize = 10_000;

/// A write waiting for the group-commit writer.
pub(super) struct WriteJob {
    pub request: WriteRequest,
    pub reply: oneshot::Sender<Result<Option<Written>, StoreError>>,
}

/// One write, as asked.
pub(super) struct WriteRequest {
    pub actor: Actor,
    pub resource_type: String,
    pub op: WriteOp,
    pub body: Option<Value>,
}

/// What the audit writer is handed.
pub(super) enum AuditMsg {
    Record(Box<AuditRecord>),
    /// Answer once every record sent before is committed.
    Flush(oneshot::Sender<()>),
}

/// Moves a watch forward only (commits, notifications and re-reads may arrive in any order).
pub(super) fn advance(watch: &watch::Sender<i64>, value: i64) {
    watch.send_if_modified(|current| {
        let moved = value > *current;
        if moved {
            *current = value;
        }
        moved
    });
}
