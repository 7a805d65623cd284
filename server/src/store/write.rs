//! Writing resources: the one transaction that stores a version with everything derived from it.
//!
//! A write stores the new version, its history row, its search index rows, the events derived
//! from it (`app::events::classify`) with gap-free `seq` numbers, and its audit row. The
//! group-commit writer takes every write waiting at the moment and commits them in one
//! transaction; how that transaction keeps `seq` gap-free is each engine's business
//! (`backend/`), reached through `Db::begin_events`.
//!
//! A batch is written in two steps. First every write is *planned* in memory, in arrival order:
//! its If-Match, its references and the version it replaces are judged against the database as
//! the batch found it plus the writes planned before it in the same batch, exactly as if each had
//! been committed alone. Then the plans are stored with one multi-row statement per table,
//! whatever the batch's size. A write whose plan is refused is answered with its error and
//! leaves no trace; if storing the plans fails, the batch is rolled back and each write is
//! retried alone in a savepoint of its own, so one bad row never takes the others with it.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::Instant,
};

use app::events::{classify, Action, EventType};
use serde_json::Value;
use sqlx::QueryBuilder;
use tokio::sync::{mpsc, oneshot, watch};

use super::{
    audit::push_audits,
    backend::postgres::Notice,
    engine::{on, run_script, Db, Script, Tx},
    handle::{advance, Store, WriteJob, WriteRequest as Request, COMMIT_CLOCK_LEN},
    index::{index_entries, IndexEntries, INDEX_VERSION},
    model::{Actor, AuditRecord, EventRecord, NewestFacts, StoreError, Stored, WriteOp, Written},
    tail::{Key, Tail},
};
use crate::fhir::date::format_instant;

/// Largest number of writes committed in one transaction by the group-commit writer.
const WRITE_BATCH: usize = 256;
/// Rows per multi-row insert: at most 10 bound parameters a row, so far below SQLite's limit of
/// 32766 bound parameters and PostgreSQL's 65535.
const ROWS_PER_INSERT: usize = 1000;
/// `(rtype, id)` pairs per lookup or delete.
const KEYS_PER_QUERY: usize = 400;
/// Resources re-indexed per transaction.
const REINDEX_PAGE: i64 = 500;

/// A write's answer, and where it is sent.
type Reply = oneshot::Sender<Result<Option<Written>, StoreError>>;

impl Store {
    /// Writes a resource (`body` is None only for deletes) and returns what was committed.
    pub async fn write(
        &self,
        actor: &Actor,
        resource_type: &str,
        op: WriteOp,
        body: Option<Value>,
    ) -> Result<Option<Written>, StoreError> {
        let write = (resource_type.to_owned(), op, body);
        let mut answers = self.write_all(actor, vec![write]).await;
        answers
            .pop()
            .unwrap_or_else(|| Err(StoreError::Commit("the writer gave no answer".into())))
    }

    /// Writes every resource of `writes` in order, as `write` would one after the other, but
    /// hands them to the writer at once so that they share transactions; answers each.
    pub async fn write_all(
        &self,
        actor: &Actor,
        writes: Vec<(String, WriteOp, Option<Value>)>,
    ) -> Vec<Result<Option<Written>, StoreError>> {
        let stopped = || StoreError::Commit("the writer has stopped".into());
        let (jobs, answers): (Vec<WriteJob>, Vec<_>) = writes
            .into_iter()
            .map(|(resource_type, op, body)| {
                let (reply, answer) = oneshot::channel();
                let request = Request {
                    actor: actor.clone(),
                    resource_type,
                    op,
                    body,
                };
                (WriteJob { request, reply }, answer)
            })
            .unzip();
        if self.writes.send(jobs).is_err() {
            return answers.iter().map(|_| Err(stopped())).collect();
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(answer.await.unwrap_or_else(|_| Err(stopped())));
        }
        results
    }

    /// A mark that changes whenever a write of one of `types` commits: whatever was derived from
    /// those types at one mark still holds while the mark is the same. `None` when other nodes
    /// share the database, since their writes are not counted here.
    pub fn write_mark(&self, types: &[&str]) -> Option<u64> {
        if self.db.shared() {
            return None;
        }
        let written = self.written.lock().ok()?;
        Some(types.iter().filter_map(|t| written.get(*t)).sum())
    }

    /// Re-indexes every current resource if the index computation changed since the database
    /// was indexed (`index::INDEX_VERSION`); answers how many were re-indexed.
    pub async fn reindex_if_stale(&self) -> Result<u64, StoreError> {
        let done: Option<String> = on!(self.db.writer(), |pool| {
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'index.version'")
                .fetch_optional(pool)
                .await?
        });
        if done.as_deref() == Some(INDEX_VERSION) {
            return Ok(0);
        }
        let mut after = (String::new(), String::new());
        let mut count = 0u64;
        loop {
            let rows: Vec<(String, String, String)> = on!(self.db.writer(), |pool| {
                sqlx::query_as(
                    "SELECT rtype, id, content FROM resources
                     WHERE deleted = FALSE AND (rtype > $1 OR (rtype = $1 AND id > $2))
                     ORDER BY rtype, id LIMIT $3",
                )
                .bind(&after.0)
                .bind(&after.1)
                .bind(REINDEX_PAGE)
                .fetch_all(pool)
                .await?
            });
            let Some(last) = rows.last() else { break };
            after = (last.0.clone(), last.1.clone());
            let mut tx = self.db.begin().await?;
            // Nodes starting together re-index one page at a time, never interleaved.
            tx.lock_reindex().await?;
            let mut keys = Vec::with_capacity(rows.len());
            let mut entries = Vec::with_capacity(rows.len());
            for (rtype, id, content) in &rows {
                let Ok(resource) = serde_json::from_str::<Value>(content) else {
                    continue;
                };
                let key = (rtype.clone(), id.clone());
                entries.push((key.clone(), index_entries(rtype, &resource)));
                keys.push(key);
            }
            let keys = distinct(&keys);
            let (values, dates) = index_rows(entries.iter().map(|(key, e)| (key, e)));
            run_script!(&mut tx, |script| push_index(
                &mut script,
                &keys,
                &values,
                &dates
            ));
            for ((rtype, id), entries) in &entries {
                on!(tx.conn(), |conn| {
                    sqlx::query("UPDATE resources SET sort_date = $1 WHERE rtype = $2 AND id = $3")
                        .bind(&entries.sort_date)
                        .bind(rtype)
                        .bind(id)
                        .execute(conn)
                        .await?;
                });
            }
            count += entries.len() as u64;
            tx.commit().await?;
        }
        on!(self.db.writer(), |pool| {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ('index.version', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(INDEX_VERSION)
            .execute(pool)
            .await?;
        });
        Ok(count)
    }
}

/// What the writer moves after each commit, before it answers anyone: every write it answers
/// is then counted (`Store::write_mark`), in the event tail (`tail.rs`), and under the head.
pub(super) struct AfterCommit {
    pub written: Arc<Mutex<HashMap<String, u64>>>,
    pub tail: Arc<Mutex<Tail>>,
    pub commits: Arc<Mutex<VecDeque<(i64, Instant)>>>,
    pub head: watch::Sender<i64>,
}

impl AfterCommit {
    fn committed(&self, batch: Batch) -> Vec<Outcome> {
        let last_seq = batch.events.last().map(|event| event.seq);
        if let Ok(mut written) = self.written.lock() {
            for outcome in &batch.outcomes {
                if let Ok(Some(done)) = outcome {
                    *written
                        .entry(done.resource.resource_type.clone())
                        .or_default() += 1;
                }
            }
        }
        if let Ok(mut tail) = self.tail.lock() {
            tail.push(batch.events, batch.written);
        }
        if let Some(last) = last_seq {
            if let Ok(mut commits) = self.commits.lock() {
                if commits.len() == COMMIT_CLOCK_LEN {
                    commits.pop_front();
                }
                commits.push_back((last, Instant::now()));
            }
            advance(&self.head, last);
        }
        batch.outcomes
    }

    /// The commit's outcome is not known: the tail answers nothing until the next one.
    fn unsure(&self) {
        if let Ok(mut tail) = self.tail.lock() {
            tail.unsure();
        }
    }
}

/// The group-commit writer: takes every write waiting at the moment, plans and stores them in one
/// transaction (see the module's comment), commits once, and only then answers. The transaction
/// is begun by `Db::begin_events`, which serialises writers until COMMIT (across nodes on
/// PostgreSQL), and last tells the other nodes how far the log now reaches. If the COMMIT itself
/// fails, every write of the batch is told so and none of them happened.
pub(super) async fn group_commit_writer(
    db: Db,
    mut rx: mpsc::UnboundedReceiver<Vec<WriteJob>>,
    after: AfterCommit,
) {
    let mut waiting: VecDeque<WriteJob> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match rx.recv().await {
                Some(jobs) => waiting.extend(jobs),
                None => return,
            }
        }
        while waiting.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(jobs) => waiting.extend(jobs),
                Err(_) => break,
            }
        }
        let take = waiting.len().min(WRITE_BATCH);
        let (requests, replies): (Vec<Request>, Vec<Reply>) = waiting
            .drain(..take)
            .map(|job| (job.request, job.reply))
            .unzip();
        let committed = match commit_batch(&db, &requests).await {
            Ok(batch) => Ok(batch),
            Err(error) => {
                tracing::warn!(%error, writes = requests.len(), "storing a batch failed; writing each alone");
                commit_one_by_one(&db, &requests).await
            }
        };
        // Committed: moved before anyone hears of it, so that whatever was derived from the
        // database before is seen to be stale and the followers find the events in the tail.
        let outcomes = match committed {
            Ok(batch) => after.committed(batch),
            Err(error) => {
                after.unsure();
                let message = error.to_string();
                tracing::error!(%message, "group commit failed; every write of the batch is refused");
                requests
                    .iter()
                    .map(|_| Err(StoreError::Commit(message.clone())))
                    .collect()
            }
        };
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let _ = reply.send(outcome);
        }
    }
}

type Outcome = Result<Option<Written>, StoreError>;

/// What one transaction stored: each request's answer, the events in `seq` order, and the
/// newest facts of each resource written, in write order.
#[derive(Default)]
struct Batch {
    outcomes: Vec<Outcome>,
    events: Vec<EventRecord>,
    written: Vec<(Key, NewestFacts)>,
}

/// Plans and stores every request in one transaction and commits it. An `Err` means nothing
/// of the batch was committed.
async fn commit_batch(db: &Db, requests: &[Request]) -> Result<Batch, sqlx::Error> {
    let mut tx = db.begin_events().await?;
    let batch = write_requests(&mut tx, requests).await?;
    finish(tx, &batch).await?;
    Ok(batch)
}

/// The slow path: each request alone in a savepoint, so that a row the database refuses fails
/// its own write only.
async fn commit_one_by_one(db: &Db, requests: &[Request]) -> Result<Batch, sqlx::Error> {
    let mut tx = db.begin_events().await?;
    let mut all = Batch::default();
    for request in requests {
        let mut savepoint = tx.savepoint().await?;
        match write_requests(&mut savepoint, std::slice::from_ref(request)).await {
            Ok(mut one) => {
                savepoint.commit().await?;
                all.outcomes.push(one.outcomes.pop().unwrap_or(Ok(None)));
                all.events.append(&mut one.events);
                all.written.append(&mut one.written);
            }
            Err(error) => {
                savepoint.rollback().await?;
                all.outcomes.push(Err(StoreError::from(error)));
            }
        }
    }
    finish(tx, &all).await?;
    Ok(all)
}

/// Tells the other nodes how far the log reaches, and commits.
async fn finish(mut tx: Tx<'static>, batch: &Batch) -> Result<(), sqlx::Error> {
    if let Some(event) = batch.events.last() {
        tx.notify(&Notice::Events(event.seq)).await?;
    }
    tx.commit().await
}

/// What a resource was before a write of the batch: as read from the database, or as an
/// earlier write of the same batch left it.
struct Prior {
    version_id: i64,
    deleted: bool,
    /// The live content (None when deleted, or when the stored text does not parse).
    live: Option<Value>,
}

/// One write, decided before anything of it is stored.
struct Plan {
    /// The request it answers, by its place in the batch.
    request: usize,
    key: Key,
    version_id: i64,
    deleted: bool,
    action: Action,
    json: Arc<str>,
    patient_id: Option<String>,
    unit_id: Option<String>,
    restricted: bool,
    entries: IndexEntries,
    /// Whether the resource existed before (its index rows are replaced).
    replaces: bool,
    /// Each derived event's type, rooms, and rooms as stored (JSON).
    events: Vec<(EventType, Vec<String>, String)>,
}

impl Plan {
    /// What the access policy needs of the version this plan writes, once it is the newest.
    fn newest(&self) -> NewestFacts {
        NewestFacts {
            patient_id: self.patient_id.clone(),
            restricted: self.restricted,
        }
    }
}

/// Plans every request in order and stores the plans; answers each request. Refusals (If-Match,
/// unresolved references, not found) are answers; an `Err` is the database failing.
async fn write_requests(tx: &mut Tx<'_>, requests: &[Request]) -> Result<Batch, sqlx::Error> {
    let ids: Vec<String> = requests
        .iter()
        .map(|request| match &request.op {
            WriteOp::Create => uuid::Uuid::new_v4().to_string(),
            WriteOp::Update { id, .. } | WriteOp::Delete { id, .. } => id.clone(),
        })
        .collect();
    // What the writes replace (a create's fresh id names nothing yet) …
    let targets: Vec<Key> = requests
        .iter()
        .zip(&ids)
        .filter(|(request, _)| !matches!(request.op, WriteOp::Create))
        .map(|(request, id)| (request.resource_type.clone(), id.clone()))
        .collect();
    let mut priors = load_priors(tx, &targets).await?;
    // … and what they refer to.
    let references: Vec<Vec<Key>> = requests
        .iter()
        .map(|request| {
            request
                .body
                .as_ref()
                .map(literal_references)
                .unwrap_or_default()
        })
        .collect();
    let named: Vec<Key> = references
        .iter()
        .flatten()
        .filter(|(rtype, _)| !rtype.is_empty())
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let live = load_live(tx, &named).await?;

    let now = format_instant(chrono::Utc::now());
    let mut plans: Vec<Plan> = Vec::with_capacity(requests.len());
    let mut answers: Vec<Result<Option<usize>, StoreError>> = Vec::with_capacity(requests.len());
    for (index, (request, id)) in requests.iter().zip(ids).enumerate() {
        let is_live = |key: &Key| match priors.get(key) {
            Some(prior) => !prior.deleted,
            None => live.contains(key),
        };
        let key = (request.resource_type.clone(), id);
        match plan(
            index,
            request,
            key,
            &references[index],
            &priors,
            &is_live,
            &now,
        ) {
            Ok(Some((plan, content))) => {
                priors.insert(
                    plan.key.clone(),
                    Prior {
                        version_id: plan.version_id,
                        deleted: plan.deleted,
                        live: content,
                    },
                );
                answers.push(Ok(Some(plans.len())));
                plans.push(plan);
            }
            Ok(None) => answers.push(Ok(None)),
            Err(error) => answers.push(Err(error)),
        }
    }

    let (seqs, events) = store_plans(tx, requests, &plans, &now).await?;
    let written = plans
        .iter()
        .map(|plan| (plan.key.clone(), plan.newest()))
        .collect();
    let outcomes = answers
        .into_iter()
        .map(|answer| {
            let Some(index) = answer? else {
                return Ok(None);
            };
            let plan = &plans[index];
            Ok(Some(Written {
                resource: Stored {
                    resource_type: plan.key.0.clone(),
                    id: plan.key.1.clone(),
                    version_id: plan.version_id,
                    last_updated: now.clone(),
                    deleted: plan.deleted,
                    json: plan.json.clone(),
                },
                action: plan.action,
                events: seqs[index].clone(),
            }))
        })
        .collect();
    Ok(Batch {
        outcomes,
        events,
        written,
    })
}

/// Decides one write against what it replaces (`priors`) and which resources are live: the same
/// rules whether the write is alone or the hundredth of its batch. Answers the plan and the
/// content the resource has afterwards (None when deleted); `Ok(None)` when there is nothing to
/// do (deleting what is already deleted). `references` are the body's literal references, as
/// `literal_references` found them when the batch looked them up.
fn plan(
    request_index: usize,
    request: &Request,
    key: Key,
    references: &[Key],
    priors: &HashMap<Key, Prior>,
    is_live: &dyn Fn(&Key) -> bool,
    now: &str,
) -> Result<Option<(Plan, Option<Value>)>, StoreError> {
    let prior = priors.get(&key);
    let (if_match, is_delete) = match &request.op {
        WriteOp::Create => (None, false),
        WriteOp::Update { if_match, .. } => (*if_match, false),
        WriteOp::Delete { if_match, .. } => (*if_match, true),
    };
    match (if_match, prior) {
        (Some(expected), Some(prior)) if expected != prior.version_id => {
            return Err(StoreError::VersionConflict {
                expected,
                actual: prior.version_id,
            })
        }
        (Some(expected), None) => {
            return Err(StoreError::VersionConflict {
                expected,
                actual: 0,
            })
        }
        _ => {}
    }

    let previous_live = prior.and_then(|prior| prior.live.as_ref());
    let version_id = prior.map_or(1, |prior| prior.version_id + 1);
    let (action, mut content) = if is_delete {
        match previous_live {
            Some(previous) => (Action::Deleted, previous.clone()),
            None if prior.is_some() => return Ok(None), // already deleted: nothing to do
            None => {
                return Err(StoreError::NotFound {
                    resource_type: key.0,
                    id: key.1,
                })
            }
        }
    } else {
        let Some(body) = &request.body else {
            return Err(StoreError::Conflict("a write needs a body".into()));
        };
        let action = if previous_live.is_some() {
            Action::Updated
        } else {
            Action::Created
        };
        (action, body.clone())
    };

    if !is_delete {
        // A resource may refer to itself; a reference that is no `Type/id` never resolves.
        let missing: Vec<String> = references
            .iter()
            .filter_map(|reference| {
                let (rtype, target) = reference;
                if rtype.is_empty() {
                    Some(target.clone())
                } else if (*rtype == key.0 && *target == key.1) || is_live(reference) {
                    None
                } else {
                    Some(format!("{rtype}/{target}"))
                }
            })
            .collect();
        if !missing.is_empty() {
            return Err(StoreError::UnresolvedReferences(missing));
        }
    }

    stamp(&mut content, &key.1, version_id, now);
    let events = classify(&key.0, action, previous_live, &content)
        .into_iter()
        .map(|event| {
            let stored = serde_json::to_string(&event.rooms).unwrap_or_else(|_| "[]".into());
            (event.event_type, event.rooms, stored)
        })
        .collect();
    let plan = Plan {
        request: request_index,
        version_id,
        deleted: is_delete,
        action,
        json: Arc::from(content.to_string()),
        patient_id: app::fhir::patient_id(&content),
        unit_id: (!is_delete)
            .then(|| app::fhir::encounter_unit(&content))
            .flatten(),
        restricted: app::fhir::security_restricted(&content),
        entries: if is_delete {
            IndexEntries::default()
        } else {
            index_entries(&key.0, &content)
        },
        replaces: prior.is_some(),
        events,
        key,
    };
    Ok(Some((plan, (!is_delete).then_some(content))))
}

/// Stores the plans, in order, with one multi-row statement per table; numbers their events
/// from the counter (whose lock the transaction holds until commit) and answers each plan's
/// `(seq, type)` list, and the events as the log's readers see them.
async fn store_plans(
    tx: &mut Tx<'_>,
    requests: &[Request],
    plans: &[Plan],
    now: &str,
) -> Result<(Vec<Vec<(i64, EventType)>>, Vec<EventRecord>), sqlx::Error> {
    if plans.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let total: i64 = plans.iter().map(|plan| plan.events.len() as i64).sum();
    let last_seq: i64 = on!(tx.conn(), |conn| {
        sqlx::query_scalar(
            "UPDATE event_counter SET seq = seq + $1 WHERE singleton = 1 RETURNING seq",
        )
        .bind(total)
        .fetch_one(conn)
        .await?
    });
    let mut next = last_seq - total + 1;
    let mut seqs = Vec::with_capacity(plans.len());
    let mut events = Vec::new();
    let mut audits = Vec::with_capacity(plans.len());
    for plan in plans {
        let first = next;
        let actor = &requests[plan.request].actor;
        let mut numbered = Vec::with_capacity(plan.events.len());
        for (event_type, _, rooms) in &plan.events {
            numbered.push((next, *event_type));
            events.push((next, *event_type, rooms.as_str(), plan, actor));
            next += 1;
        }
        seqs.push(numbered);
        let (audit_action, operation) = match plan.action {
            Action::Created => ("C", "create"),
            Action::Updated => ("U", "update"),
            Action::Deleted => ("D", "delete"),
        };
        audits.push(AuditRecord {
            ts: now.to_owned(),
            user_id: actor.user_id.clone(),
            action: audit_action,
            operation: operation.to_owned(),
            resource_type: Some(plan.key.0.clone()),
            resource_id: Some(plan.key.1.clone()),
            patient_id: plan.patient_id.clone(),
            outcome: "0",
            detail: Some(format!(
                "version {}; events {first}..={}",
                plan.version_id,
                next - 1
            )),
            source: actor.source.clone(),
        });
    }

    // The resources table holds one row per resource: its last version in this batch.
    let mut last_of: HashMap<&Key, usize> = HashMap::with_capacity(plans.len());
    for (index, plan) in plans.iter().enumerate() {
        last_of.insert(&plan.key, index);
    }
    let current: Vec<&Plan> = plans
        .iter()
        .enumerate()
        .filter(|(index, plan)| last_of[&plan.key] == *index)
        .map(|(_, plan)| plan)
        .collect();
    // A resource that existed before the batch has index rows to replace; one created earlier
    // in the batch has none yet, since only the last version of each is indexed.
    let replaced = distinct(
        &current
            .iter()
            .filter(|plan| plan.replaces)
            .map(|plan| plan.key.clone())
            .collect::<Vec<_>>(),
    );
    let (values, dates) = index_rows(current.iter().map(|plan| (&plan.key, &plan.entries)));
    let rows = Rows {
        current,
        plans,
        replaced,
        values,
        dates,
        events,
        now,
    };
    run_script!(tx, |script| {
        push_writes(&mut script, &rows);
        push_audits(&mut script, &audits);
    });
    let events = rows.events;
    let records = events
        .into_iter()
        .zip(plans.iter().flat_map(|plan| &plan.events))
        .map(
            |((seq, event_type, _, plan, actor), (_, rooms, _))| EventRecord {
                seq,
                event_type,
                action: plan.action,
                resource_type: plan.key.0.clone(),
                resource_id: plan.key.1.clone(),
                version_id: plan.version_id,
                patient_id: plan.patient_id.clone(),
                rooms: rooms.clone(),
                user_id: actor.user_id.clone(),
                timestamp: now.to_owned(),
                resource_json: plan.json.clone(),
                newest: plan.newest(),
            },
        )
        .collect();
    Ok((seqs, records))
}

/// `(rtype, id) IN ((…), …)` for `keys` (not empty).
fn push_keys<'a, DB>(sql: &mut QueryBuilder<'a, DB>, keys: &'a [Key])
where
    DB: sqlx::Database,
    &'a String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    sql.push("(rtype, id) IN (");
    let mut separated = sql.separated(", ");
    for (rtype, id) in keys {
        separated.push("(");
        separated.push_bind_unseparated(rtype);
        separated.push_unseparated(", ");
        separated.push_bind_unseparated(id);
        separated.push_unseparated(")");
    }
    sql.push(")");
}

/// The current rows of `keys`, as priors of the writes about to replace them.
async fn load_priors(tx: &mut Tx<'_>, keys: &[Key]) -> Result<HashMap<Key, Prior>, sqlx::Error> {
    let mut priors = HashMap::with_capacity(keys.len());
    let keys = distinct(keys);
    for chunk in keys.chunks(KEYS_PER_QUERY) {
        let rows: Vec<(String, String, i64, bool, String)> = on!(tx.conn(), |conn| {
            let mut query = QueryBuilder::new(
                "SELECT rtype, id, version_id, deleted, content FROM resources WHERE ",
            );
            push_keys(&mut query, chunk);
            query.build_query_as().fetch_all(conn).await?
        });
        for (rtype, id, version_id, deleted, content) in rows {
            let live = if deleted {
                None
            } else {
                serde_json::from_str(&content).ok()
            };
            priors.insert(
                (rtype, id),
                Prior {
                    version_id,
                    deleted,
                    live,
                },
            );
        }
    }
    Ok(priors)
}

/// Which of `keys` name a live (not deleted) resource.
async fn load_live(tx: &mut Tx<'_>, keys: &[Key]) -> Result<HashSet<Key>, sqlx::Error> {
    let mut live = HashSet::with_capacity(keys.len());
    for chunk in keys.chunks(KEYS_PER_QUERY) {
        let rows: Vec<(String, String)> = on!(tx.conn(), |conn| {
            let mut query =
                QueryBuilder::new("SELECT rtype, id FROM resources WHERE deleted = FALSE AND ");
            push_keys(&mut query, chunk);
            query.build_query_as().fetch_all(conn).await?
        });
        live.extend(rows);
    }
    Ok(live)
}

fn distinct(keys: &[Key]) -> Vec<Key> {
    let mut keys = keys.to_vec();
    keys.sort();
    keys.dedup();
    keys
}

/// What `store_plans` writes besides the audit rows.
struct Rows<'a> {
    /// The last plan of each resource: its `resources` row and its index rows.
    current: Vec<&'a Plan>,
    /// Every plan: a history row each.
    plans: &'a [Plan],
    /// The resources whose index rows are replaced.
    replaced: Vec<Key>,
    /// Index rows: (resource, (param, system, value)) and (resource, (param, start, end)).
    values: Vec<IndexRow<'a>>,
    dates: Vec<IndexRow<'a>>,
    /// (seq, type, rooms as stored, its plan, its writer) of every event.
    events: Vec<(i64, EventType, &'a str, &'a Plan, &'a Actor)>,
    now: &'a str,
}

/// Pushes the statements that store `rows`, one multi-row statement per table and chunk.
fn push_writes<'a, DB>(script: &mut Script<'a, DB>, rows: &'a Rows<'a>)
where
    DB: sqlx::Database,
    &'a String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a Option<String>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let now = rows.now;
    for chunk in rows.current.chunks(ROWS_PER_INSERT) {
        let insert = script.statement(
            "INSERT INTO resources (rtype, id, version_id, last_updated, deleted, patient_id, unit_id, restricted, sort_date, content) ",
        );
        insert.push_values(chunk, |mut row, plan| {
            row.push_bind(&plan.key.0)
                .push_bind(&plan.key.1)
                .push_bind(plan.version_id)
                .push_bind(now)
                .push_bind(plan.deleted)
                .push_bind(&plan.patient_id)
                .push_bind(&plan.unit_id)
                .push_bind(plan.restricted)
                .push_bind(&plan.entries.sort_date)
                .push_bind(&*plan.json);
        });
        insert.push(
            " ON CONFLICT (rtype, id) DO UPDATE SET
               version_id = excluded.version_id, last_updated = excluded.last_updated,
               deleted = excluded.deleted, patient_id = excluded.patient_id, unit_id = excluded.unit_id,
               restricted = excluded.restricted, sort_date = excluded.sort_date,
               content = excluded.content",
        );
    }
    for chunk in rows.plans.chunks(ROWS_PER_INSERT) {
        let insert = script.statement(
            "INSERT INTO resource_history (rtype, id, version_id, last_updated, deleted, content) ",
        );
        insert.push_values(chunk, |mut row, plan| {
            row.push_bind(&plan.key.0)
                .push_bind(&plan.key.1)
                .push_bind(plan.version_id)
                .push_bind(now)
                .push_bind(plan.deleted)
                .push_bind(&*plan.json);
        });
    }
    push_index(script, &rows.replaced, &rows.values, &rows.dates);
    for chunk in rows.events.chunks(ROWS_PER_INSERT) {
        let insert = script.statement(
            "INSERT INTO event_log (seq, event_type, action, resource_type, resource_id, version_id, patient_id, rooms, user_id, ts) ",
        );
        insert.push_values(chunk, |mut row, (seq, event_type, rooms, plan, actor)| {
            row.push_bind(*seq)
                .push_bind(event_type.as_str())
                .push_bind(plan.action.as_str())
                .push_bind(&plan.key.0)
                .push_bind(&plan.key.1)
                .push_bind(plan.version_id)
                .push_bind(&plan.patient_id)
                .push_bind(*rooms)
                .push_bind(&actor.user_id)
                .push_bind(now);
        });
    }
}

/// One search index row of a resource: (param, system, value) or (param, start, end).
type IndexRow<'a> = (&'a Key, &'a (&'static str, String, String));

/// The index rows of `resources`, values and dates.
fn index_rows<'a>(
    resources: impl Iterator<Item = (&'a Key, &'a IndexEntries)>,
) -> (Vec<IndexRow<'a>>, Vec<IndexRow<'a>>) {
    let mut values = Vec::new();
    let mut dates = Vec::new();
    for (key, entries) in resources {
        values.extend(entries.values.iter().map(|row| (key, row)));
        dates.extend(entries.dates.iter().map(|row| (key, row)));
    }
    (values, dates)
}

/// Pushes the statements that delete the index rows of `replaced` (distinct) and insert
/// `values` and `dates`.
fn push_index<'a, DB>(
    script: &mut Script<'a, DB>,
    replaced: &'a [Key],
    values: &'a [IndexRow<'a>],
    dates: &'a [IndexRow<'a>],
) where
    DB: sqlx::Database,
    &'a String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    for table in ["search_index", "search_dates"] {
        for chunk in replaced.chunks(KEYS_PER_QUERY) {
            let delete = script.statement(&format!("DELETE FROM {table} WHERE "));
            push_keys(delete, chunk);
        }
    }
    let tables = [
        ("search_index (rtype, id, param, system, value)", values),
        ("search_dates (rtype, id, param, start_at, end_at)", dates),
    ];
    for (table, entries) in tables {
        for chunk in entries.chunks(ROWS_PER_INSERT) {
            let insert = script.statement(&format!("INSERT INTO {table} "));
            insert.push_values(chunk, |mut row, ((rtype, id), (param, first, second))| {
                row.push_bind(rtype)
                    .push_bind(id)
                    .push_bind(*param)
                    .push_bind(first)
                    .push_bind(second);
            });
        }
    }
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

/// All relative literal references (`Type/id`) in a resource, de-duplicated.
pub fn literal_references(resource: &Value) -> Vec<(String, String)> {
    fn walk(value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if key == "reference" {
                        if let Some(text) = child.as_str() {
                            // Absolute URLs point elsewhere and contained refs start with '#'.
                            if !text.contains("://") && !text.starts_with('#') {
                                if let Some(pair) = crate::fhir::params::split_reference(text) {
                                    out.push(pair);
                                } else {
                                    out.push((String::new(), text.to_owned()));
                                }
                            }
                        }
                    } else if key != "contained" {
                        walk(child, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(resource, &mut out);
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::engine::Engine;
    use serde_json::json;

    /// A small generator of write histories over a few ids: puts, creates, deletes, right and
    /// wrong If-Match, references to resources that exist, were deleted or never were, and the
    /// same resource written several times in a row.
    fn history(mut state: u64, length: usize) -> Vec<(String, WriteOp, Option<Value>)> {
        let mut next = move |bound: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % bound
        };
        (0..length)
            .map(|_| {
                let patient = format!("p{}", next(3));
                let if_match = match next(4) {
                    0 => Some(next(4) as i64),
                    _ => None,
                };
                let observation = json!({
                    "resourceType": "Observation",
                    "status": if next(2) == 0 { "final" } else { "preliminary" },
                    "code": {"text": format!("k{}", next(5))},
                    "subject": {"reference": format!("Patient/{patient}")},
                });
                match next(6) {
                    0 => (
                        "Patient".to_owned(),
                        WriteOp::Update { id: patient.clone(), if_match },
                        Some(json!({"resourceType": "Patient", "name": [{"family": format!("F{}", next(9))}]})),
                    ),
                    1 => (
                        "Patient".to_owned(),
                        WriteOp::Delete { id: patient, if_match },
                        None,
                    ),
                    2 => ("Observation".to_owned(), WriteOp::Create, Some(observation)),
                    3 => (
                        "Observation".to_owned(),
                        WriteOp::Delete { id: format!("o{}", next(3)), if_match },
                        None,
                    ),
                    _ => (
                        "Observation".to_owned(),
                        WriteOp::Update { id: format!("o{}", next(3)), if_match },
                        Some(observation),
                    ),
                }
            })
            .collect()
    }

    /// What a write answered, with created ids (random) replaced by the write's place.
    fn answer(index: usize, outcome: &Outcome) -> String {
        match outcome {
            Ok(None) => "nothing".into(),
            Ok(Some(written)) => {
                let mut resource: Value = serde_json::from_str(&written.resource.json).unwrap();
                resource["meta"]["lastUpdated"] = Value::Null;
                let id = &written.resource.id;
                let id = if id.len() == 36 {
                    format!("new{index}")
                } else {
                    id.clone()
                };
                resource["id"] = Value::String(id.clone());
                let events: Vec<&str> = written.events.iter().map(|(_, t)| t.as_str()).collect();
                format!(
                    "{} {id} v{} deleted={} {:?} {events:?} {resource}",
                    written.resource.resource_type,
                    written.resource.version_id,
                    written.resource.deleted,
                    written.action,
                )
            }
            Err(error) => format!("refused: {error}"),
        }
    }

    /// The rows a store holds, with created ids and times left out.
    async fn rows(store: &Store) -> Vec<String> {
        let Engine::Sqlite(db) = &store.db else {
            unreachable!()
        };
        let mut all = Vec::new();
        for sql in [
            "SELECT rtype || ' ' || CASE WHEN length(id) = 36 THEN 'new' ELSE id END || ' v' || version_id || ' ' || deleted || ' ' || json_remove(content, '$.id', '$.meta.lastUpdated') FROM resource_history",
            "SELECT rtype || ' ' || CASE WHEN length(id) = 36 THEN 'new' ELSE id END || ' v' || version_id || ' ' || deleted || ' ' || json_remove(content, '$.id', '$.meta.lastUpdated') FROM resources",
            "SELECT seq || ' ' || event_type || ' ' || action || ' ' || resource_type || ' v' || version_id || ' ' || rooms FROM event_log ORDER BY seq",
            "SELECT rtype || ' ' || CASE WHEN length(id) = 36 THEN 'new' ELSE id END || ' ' || param || ' ' || system || ' ' || value FROM search_index",
            "SELECT action || ' ' || operation || ' ' || resource_type || ' ' || COALESCE(patient_id, '-') || ' ' || detail FROM audit_log ORDER BY id",
            "SELECT 'counter ' || seq FROM event_counter",
        ] {
            let mut found: Vec<String> =
                sqlx::query_scalar(sql).fetch_all(&db.writer).await.unwrap();
            if !sql.contains("ORDER BY") {
                // Created ids are random: rows that name them are compared as a set.
                found.sort();
            }
            all.extend(found);
        }
        all
    }

    async fn open(dir: &tempfile::TempDir, name: &str) -> Store {
        Store::open(&format!("sqlite://{}/{name}.db", dir.path().display()))
            .await
            .unwrap()
    }

    /// The oracle: a batch must leave exactly what the same writes leave committed one at a
    /// time, and answer each write as it would have been answered alone.
    #[tokio::test]
    async fn a_batch_answers_and_stores_what_the_same_writes_do_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let actor = Actor {
            user_id: Some("tester".into()),
            source: None,
        };
        for seed in 1..=6u64 {
            let writes = history(seed, 80);
            let alone = open(&dir, &format!("alone{seed}")).await;
            let mut expected = Vec::new();
            for (index, (rtype, op, body)) in writes.iter().cloned().enumerate() {
                expected.push(answer(index, &alone.write(&actor, &rtype, op, body).await));
            }
            // `write_all` hands the writer every write at once: fewer than `WRITE_BATCH`, they
            // are planned and stored as one batch.
            let batched = open(&dir, &format!("batched{seed}")).await;
            let answers: Vec<String> = batched
                .write_all(&actor, writes)
                .await
                .iter()
                .enumerate()
                .map(|(index, outcome)| answer(index, outcome))
                .collect();
            assert_eq!(answers, expected, "answers differ for seed {seed}");
            assert!(
                expected.iter().any(|a| a.starts_with("refused"))
                    && expected.iter().any(|a| !a.starts_with("refused")),
                "seed {seed} exercises both outcomes"
            );
            assert_eq!(
                rows(&batched).await,
                rows(&alone).await,
                "stored rows differ for seed {seed}"
            );
        }
    }

    /// The oracle for the event tail: after generated histories, written alone and in batches,
    /// with labels and patients that change between versions, every read of the log after every
    /// position answers exactly what the database holds, the newest facts included.
    #[tokio::test]
    async fn the_tail_answers_every_read_as_the_database_does() {
        let dir = tempfile::tempdir().unwrap();
        let actor = Actor {
            user_id: Some("tester".into()),
            source: None,
        };
        let store = open(&dir, "tail").await;
        for seed in 1..=4u64 {
            let mut writes = history(seed, 60);
            for (index, (_, _, body)) in writes.iter_mut().enumerate() {
                if let Some(body) = body.as_mut().filter(|_| index % 3 == 0) {
                    body["meta"] = json!({"security": [{
                        "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                        "code": "R",
                    }]});
                }
            }
            let mut writes = writes.into_iter();
            // Some alone, some in a batch of several.
            while let Some(first) = writes.next() {
                let (rtype, op, body) = first;
                let _ = store.write(&actor, &rtype, op, body).await;
                let batch: Vec<_> = writes.by_ref().take(seed as usize + 2).collect();
                let _ = store.write_all(&actor, batch).await;
            }
        }
        let head = store.head();
        assert!(head > 60, "the histories derive events ({head})");
        let show = |events: &[EventRecord]| {
            events
                .iter()
                .map(|event| format!("{event:?} {:?} {}", event.newest, event.resource_json))
                .collect::<Vec<_>>()
        };
        let mut answered_from_tail = 0;
        for after in 0..=head {
            for limit in [1, 7, 10_000] {
                let from_tail = store.tail.lock().unwrap().read(after, limit, true);
                let database = events_where_after(&store, after, limit).await;
                if let Some(from_tail) = &from_tail {
                    answered_from_tail += 1;
                    assert_eq!(
                        show(from_tail),
                        show(&database),
                        "after {after}, limit {limit}"
                    );
                }
                let read = store.events_after(after, limit).await.unwrap();
                assert_eq!(show(&read), show(&database), "after {after}, limit {limit}");
            }
        }
        // Nothing was evicted and no other node writes: the tail answered every read.
        assert_eq!(answered_from_tail, 3 * (head + 1));
    }

    async fn events_where_after(store: &Store, after: i64, limit: usize) -> Vec<EventRecord> {
        crate::store::events::events_where(
            &store.db,
            "e.seq > $1 ORDER BY e.seq LIMIT $2",
            after,
            limit as i64,
        )
        .await
        .unwrap()
    }

    /// One row the database refuses fails its own write only: the batch is retried write by
    /// write, and the others commit with gap-free numbers.
    #[tokio::test]
    async fn a_row_the_database_refuses_fails_only_its_own_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir, "refused").await;
        let Engine::Sqlite(db) = &store.db else {
            unreachable!()
        };
        // A stray history row makes the first version of Patient/stray collide with it.
        sqlx::query(
            "INSERT INTO resource_history (rtype, id, version_id, last_updated, deleted, content)
             VALUES ('Patient', 'stray', 1, '2026-01-01T00:00:00Z', FALSE, '{}')",
        )
        .execute(&db.writer)
        .await
        .unwrap();
        let patient =
            |family: &str| Some(json!({"resourceType": "Patient", "name": [{"family": family}]}));
        let put = |id: &str| WriteOp::Update {
            id: id.into(),
            if_match: None,
        };
        let outcomes = store
            .write_all(
                &Actor::default(),
                vec![
                    ("Patient".into(), put("a"), patient("A")),
                    ("Patient".into(), put("stray"), patient("S")),
                    ("Patient".into(), put("b"), patient("B")),
                ],
            )
            .await;
        assert!(
            matches!(outcomes[1], Err(StoreError::Database(_))),
            "{:?}",
            outcomes[1]
        );
        let seqs: Vec<i64> = [&outcomes[0], &outcomes[2]]
            .iter()
            .map(|outcome| outcome.as_ref().unwrap().as_ref().unwrap().events[0].0)
            .collect();
        assert_eq!(seqs, vec![1, 2]);
        let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM resources ORDER BY id")
            .fetch_all(&db.writer)
            .await
            .unwrap();
        assert_eq!(stored, vec!["a", "b"]);
    }

    #[test]
    fn literal_references_skip_external_and_contained() {
        let resource = json!({
            "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "https://elsewhere.org/Practitioner/x"}, {"reference": "#c1"}],
            "basedOn": [{"reference": "ServiceRequest/s1/_history/2"}, {"reference": "Patient/p1"}],
            "contained": [{"resourceType": "Medication", "id": "c1", "x": {"reference": "Patient/zz"}}],
            "bad": {"reference": "not a ref"}
        });
        assert_eq!(
            literal_references(&resource),
            vec![
                (String::new(), "not a ref".to_owned()),
                ("Patient".to_owned(), "p1".to_owned()),
                ("ServiceRequest".to_owned(), "s1".to_owned()),
            ]
        );
    }
}
