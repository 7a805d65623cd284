//! Writing resources: the one transaction that stores a version with everything derived from it.
//!
//! A write stores the new version, its history row, its search index rows, the events derived
//! from it (`app::events::classify`) with gap-free `seq` numbers, and its audit row. The
//! group-commit writer runs every write waiting at the moment in one transaction, each in a
//! savepoint of its own; how that transaction keeps `seq` gap-free is each engine's business
//! (`backend/`), reached through `Db::begin_events`.

use std::sync::Arc;

use app::events::{classify, Action, EventType};
use serde_json::Value;
use sqlx::QueryBuilder;
use tokio::sync::{mpsc, oneshot};

use super::{
    audit::insert_audit,
    backend::postgres::Notice,
    engine::{on, Db, Tx},
    handle::{advance, Store, WriteJob, COMMIT_CLOCK_LEN},
    index::{index_entries, IndexEntries, INDEX_VERSION},
    model::{Actor, AuditRecord, StoreError, Stored, WriteOp, Written},
};
use crate::fhir::date::format_instant;

/// Largest number of writes committed in one transaction by the group-commit writer.
const WRITE_BATCH: usize = 128;
/// Bound parameters per index insert: far below SQLite's limit of 32766.
const INDEX_ROWS_PER_INSERT: usize = 1000;
/// References looked up per query.
const REFERENCES_PER_QUERY: usize = 400;
/// Resources re-indexed per transaction.
const REINDEX_PAGE: i64 = 500;

impl Store {
    /// Writes a resource (`body` is None only for deletes) and returns what was committed.
    pub async fn write(
        &self,
        actor: &Actor,
        resource_type: &str,
        op: WriteOp,
        body: Option<Value>,
    ) -> Result<Option<Written>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = WriteJob {
            actor: actor.clone(),
            resource_type: resource_type.to_owned(),
            op,
            body,
            reply,
        };
        self.writes
            .send(job)
            .map_err(|_| StoreError::Commit("the writer has stopped".into()))?;
        let written = answer
            .await
            .map_err(|_| StoreError::Commit("the writer has stopped".into()))??;
        if let Some(&(last, _)) = written.as_ref().and_then(|w| w.events.last()) {
            if let Ok(mut commits) = self.commits.lock() {
                if commits.len() == COMMIT_CLOCK_LEN {
                    commits.pop_front();
                }
                commits.push_back((last, std::time::Instant::now()));
            }
            // Answers of one commit batch arrive concurrently: only ever move the head forward.
            advance(&self.head, last);
        }
        Ok(written)
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
            for (rtype, id, content) in &rows {
                let Ok(resource) = serde_json::from_str::<Value>(content) else {
                    continue;
                };
                let entries = index_entries(rtype, &resource);
                write_index(&mut tx, rtype, id, true, &entries).await?;
                on!(tx.conn(), |conn| {
                    sqlx::query("UPDATE resources SET sort_date = $1 WHERE rtype = $2 AND id = $3")
                        .bind(&entries.sort_date)
                        .bind(rtype)
                        .bind(id)
                        .execute(conn)
                        .await?;
                });
                count += 1;
            }
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

/// The group-commit writer: takes every write waiting at the moment, runs each in its own
/// SAVEPOINT of one transaction, commits once, and only then answers. The transaction is begun
/// by `Db::begin_events`, which serialises writers until COMMIT (across nodes on PostgreSQL),
/// and last tells the other nodes how far the log now reaches. A write that fails rolls back to
/// its savepoint alone (its `seq` numbers with it); if the COMMIT itself fails, every write of
/// the batch is told so and none of them happened. Under load this turns many small commits
/// (each rewriting the same index pages) into one.
pub(super) async fn group_commit_writer(db: Db, mut rx: mpsc::UnboundedReceiver<WriteJob>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut tx = match db.begin_events().await {
            Ok(tx) => tx,
            Err(error) => {
                let message = error.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(StoreError::Commit(message.clone())));
                }
                continue;
            }
        };
        let mut outcomes = Vec::with_capacity(jobs.len());
        let mut last_seq = None;
        for job in jobs {
            let outcome = async {
                let mut savepoint = tx.savepoint().await?;
                match write_one(
                    &mut savepoint,
                    &job.actor,
                    &job.resource_type,
                    job.op,
                    job.body,
                )
                .await
                {
                    Ok(written) => {
                        savepoint.commit().await?;
                        Ok(written)
                    }
                    Err(error) => {
                        savepoint.rollback().await?;
                        Err(error)
                    }
                }
            }
            .await;
            if let Ok(Some(written)) = &outcome {
                if let Some(&(seq, _)) = written.events.last() {
                    last_seq = Some(seq);
                }
            }
            outcomes.push((job.reply, outcome));
        }
        let committed = async {
            if let Some(seq) = last_seq {
                tx.notify(&Notice::Events(seq)).await?;
            }
            tx.commit().await
        }
        .await;
        match committed {
            Ok(()) => {
                for (reply, outcome) in outcomes {
                    let _ = reply.send(outcome);
                }
            }
            Err(error) => {
                let message = error.to_string();
                tracing::error!(%message, "group commit failed; every write of the batch is refused");
                for (reply, _) in outcomes {
                    let _ = reply.send(Err(StoreError::Commit(message.clone())));
                }
            }
        }
    }
}

/// One write inside the caller's transaction (a savepoint of the group commit).
async fn write_one(
    tx: &mut Tx<'_>,
    actor: &Actor,
    resource_type: &str,
    op: WriteOp,
    body: Option<Value>,
) -> Result<Option<Written>, StoreError> {
    let (id, if_match, is_delete) = match &op {
        WriteOp::Create => (uuid::Uuid::new_v4().to_string(), None, false),
        WriteOp::Update { id, if_match } => (id.clone(), *if_match, false),
        WriteOp::Delete { id, if_match } => (id.clone(), *if_match, true),
    };

    let current: Option<(i64, bool, String)> = on!(tx.conn(), |conn| {
        sqlx::query_as(
            "SELECT version_id, deleted, content FROM resources WHERE rtype = $1 AND id = $2",
        )
        .bind(resource_type)
        .bind(&id)
        .fetch_optional(conn)
        .await?
    });

    if let (Some(expected), Some((actual, _, _))) = (if_match, &current) {
        if expected != *actual {
            return Err(StoreError::VersionConflict {
                expected,
                actual: *actual,
            });
        }
    }
    if let (Some(expected), None) = (if_match, &current) {
        return Err(StoreError::VersionConflict {
            expected,
            actual: 0,
        });
    }

    let previous_live: Option<Value> = match &current {
        Some((_, false, content)) => serde_json::from_str(content).ok(),
        _ => None,
    };
    let version_id = current.as_ref().map_or(1, |(v, _, _)| v + 1);
    let now = format_instant(chrono::Utc::now());

    let (action, mut content) = if is_delete {
        match previous_live.clone() {
            Some(previous) => (Action::Deleted, previous),
            None if current.is_some() => return Ok(None), // already deleted: nothing to do
            None => {
                return Err(StoreError::NotFound {
                    resource_type: resource_type.to_owned(),
                    id,
                })
            }
        }
    } else {
        let Some(body) = body else {
            return Err(StoreError::Conflict("a write needs a body".into()));
        };
        let action = if previous_live.is_some() {
            Action::Updated
        } else {
            Action::Created
        };
        (action, body)
    };

    if !is_delete {
        let missing = unresolved(tx, resource_type, &id, &content).await?;
        if !missing.is_empty() {
            return Err(StoreError::UnresolvedReferences(missing));
        }
    }

    stamp(&mut content, &id, version_id, &now);
    let json: Arc<str> = Arc::from(content.to_string());
    let patient_id = app::fhir::patient_id(&content);
    let restricted = app::fhir::security_restricted(&content);
    let unit_id = if is_delete {
        None
    } else {
        app::fhir::encounter_unit(&content)
    };
    let entries = if is_delete {
        Default::default()
    } else {
        index_entries(resource_type, &content)
    };

    on!(tx.conn(), |conn| {
        sqlx::query(
            "INSERT INTO resources (rtype, id, version_id, last_updated, deleted, patient_id, unit_id, restricted, sort_date, content)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (rtype, id) DO UPDATE SET
               version_id = excluded.version_id, last_updated = excluded.last_updated,
               deleted = excluded.deleted, patient_id = excluded.patient_id, unit_id = excluded.unit_id,
               restricted = excluded.restricted, sort_date = excluded.sort_date,
               content = excluded.content",
        )
        .bind(resource_type)
        .bind(&id)
        .bind(version_id)
        .bind(&now)
        .bind(is_delete)
        .bind(&patient_id)
        .bind(&unit_id)
        .bind(restricted)
        .bind(&entries.sort_date)
        .bind(&*json)
        .execute(conn)
        .await?;
    });

    on!(tx.conn(), |conn| {
        sqlx::query(
            "INSERT INTO resource_history (rtype, id, version_id, last_updated, deleted, content)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(resource_type)
        .bind(&id)
        .bind(version_id)
        .bind(&now)
        .bind(is_delete)
        .bind(&*json)
        .execute(conn)
        .await?;
    });

    write_index(tx, resource_type, &id, current.is_some(), &entries).await?;

    // The events, numbered from the counter whose row lock we now hold until commit.
    let derived = classify(resource_type, action, previous_live.as_ref(), &content);
    let count = derived.len() as i64;
    let last_seq: i64 = on!(tx.conn(), |conn| {
        sqlx::query_scalar(
            "UPDATE event_counter SET seq = seq + $1 WHERE singleton = 1 RETURNING seq",
        )
        .bind(count)
        .fetch_one(conn)
        .await?
    });
    let first_seq = last_seq - count + 1;
    let mut events = Vec::with_capacity(derived.len());
    if !derived.is_empty() {
        let rows: Vec<(i64, EventType, String)> = derived
            .iter()
            .enumerate()
            .map(|(i, event)| {
                let rooms = serde_json::to_string(&event.rooms).unwrap_or_else(|_| "[]".into());
                (first_seq + i as i64, event.event_type, rooms)
            })
            .collect();
        on!(tx.conn(), |conn| {
            let mut insert = QueryBuilder::new(
                "INSERT INTO event_log (seq, event_type, action, resource_type, resource_id, version_id, patient_id, rooms, user_id, ts) ",
            );
            insert.push_values(&rows, |mut row, (seq, event_type, rooms)| {
                row.push_bind(*seq)
                    .push_bind(event_type.as_str())
                    .push_bind(action.as_str())
                    .push_bind(resource_type)
                    .push_bind(&id)
                    .push_bind(version_id)
                    .push_bind(&patient_id)
                    .push_bind(rooms)
                    .push_bind(&actor.user_id)
                    .push_bind(&now);
            });
            insert.build().execute(conn).await?;
        });
        events.extend(
            rows.into_iter()
                .map(|(seq, event_type, _)| (seq, event_type)),
        );
    }

    let (audit_action, operation) = match action {
        Action::Created => ("C", "create"),
        Action::Updated => ("U", "update"),
        Action::Deleted => ("D", "delete"),
    };
    insert_audit(
        tx,
        &AuditRecord {
            ts: now.clone(),
            user_id: actor.user_id.clone(),
            action: audit_action,
            operation: operation.to_owned(),
            resource_type: Some(resource_type.to_owned()),
            resource_id: Some(id.clone()),
            patient_id: patient_id.clone(),
            outcome: "0",
            detail: Some(format!(
                "version {version_id}; events {first_seq}..={last_seq}"
            )),
            source: actor.source.clone(),
        },
    )
    .await?;

    Ok(Some(Written {
        resource: Stored {
            resource_type: resource_type.to_owned(),
            id,
            version_id,
            last_updated: now,
            deleted: is_delete,
            json,
        },
        action,
        events,
    }))
}

/// Writes the search index rows of one resource (replacing its old ones when `replace`).
async fn write_index(
    tx: &mut Tx<'_>,
    resource_type: &str,
    id: &str,
    replace: bool,
    entries: &IndexEntries,
) -> Result<(), StoreError> {
    if replace {
        for table in ["search_index", "search_dates"] {
            let sql = format!("DELETE FROM {table} WHERE rtype = $1 AND id = $2");
            on!(tx.conn(), |conn| {
                sqlx::query(&sql)
                    .bind(resource_type)
                    .bind(id)
                    .execute(conn)
                    .await?;
            });
        }
    }
    let tables = [
        (
            "search_index (rtype, id, param, system, value)",
            &entries.values,
        ),
        (
            "search_dates (rtype, id, param, start_at, end_at)",
            &entries.dates,
        ),
    ];
    for (table, rows) in tables {
        for chunk in rows.chunks(INDEX_ROWS_PER_INSERT) {
            on!(tx.conn(), |conn| {
                let mut insert = QueryBuilder::new(format!("INSERT INTO {table} "));
                insert.push_values(chunk, |mut row, (param, first, second)| {
                    row.push_bind(resource_type)
                        .push_bind(id)
                        .push_bind(*param)
                        .push_bind(first)
                        .push_bind(second);
                });
                insert.build().execute(conn).await?;
            });
        }
    }
    Ok(())
}

/// References in `content` that name no live resource (a resource may refer to itself).
async fn unresolved(
    tx: &mut Tx<'_>,
    resource_type: &str,
    id: &str,
    content: &Value,
) -> Result<Vec<String>, StoreError> {
    let references = literal_references(content);
    let mut missing: Vec<String> = Vec::new();
    let mut lookup = Vec::new();
    for (rtype, target) in references {
        if rtype.is_empty() {
            missing.push(target);
        } else if !(rtype == resource_type && target == id) {
            lookup.push((rtype, target));
        }
    }
    for chunk in lookup.chunks(REFERENCES_PER_QUERY) {
        let found: Vec<(String, String)> = on!(tx.conn(), |conn| {
            let mut query = QueryBuilder::new(
                "SELECT rtype, id FROM resources WHERE deleted = FALSE AND (rtype, id) IN (",
            );
            let mut separated = query.separated(", ");
            for (rtype, target) in chunk {
                separated.push("(");
                separated.push_bind_unseparated(rtype);
                separated.push_unseparated(", ");
                separated.push_bind_unseparated(target);
                separated.push_unseparated(")");
            }
            query.push(")");
            query.build_query_as().fetch_all(conn).await?
        });
        for pair in chunk {
            if !found.contains(pair) {
                missing.push(format!("{}/{}", pair.0, pair.1));
            }
        }
    }
    Ok(missing)
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
    use serde_json::json;

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
