//! The audit trail: reads, searches and logins recorded in batches off the request path, writes
//! recorded by the write's own transaction (`write.rs`), and the rows read back for
//! `AuditEvent`.

use std::time::Duration;

use sqlx::QueryBuilder;
use tokio::sync::{mpsc, oneshot};

use super::{
    engine::{on, run_script, Db, Script, Tx},
    handle::{AuditMsg, Store},
    model::{AuditFilter, AuditRecord, AuditRow, StoreError},
    sql::push_audit_filter,
};

/// Largest number of audit records committed in one batch.
const AUDIT_BATCH: usize = 512;

/// The columns of an [`AuditTuple`].
const AUDIT_COLUMNS: &str = "id, ts, user_id, action, operation, resource_type, resource_id,
    patient_id, outcome, detail, source";

/// An `audit_log` row as read.
type AuditTuple = (
    i64,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

impl Store {
    /// Records reads and other non-write actions (batched off the request path).
    pub fn audit(&self, record: AuditRecord) {
        // The writer task lives as long as the runtime; a send can only fail during shutdown.
        if self
            .audits
            .send(AuditMsg::Record(Box::new(record)))
            .is_err()
        {
            tracing::error!("audit record dropped: the audit writer has stopped");
        }
    }

    /// Waits until every audit record handed to `audit` so far is committed.
    pub async fn flush_audit(&self) -> Result<(), StoreError> {
        let (done_tx, done_rx) = oneshot::channel();
        if self.audits.send(AuditMsg::Flush(done_tx)).is_ok() {
            // An Err here means the writer stopped; nothing more can be flushed.
            let _ = done_rx.await;
        }
        Ok(())
    }

    /// The total and one page (newest first) of the audit rows about `patient_id` (all: `None`).
    pub async fn audit_rows(
        &self,
        patient_id: Option<&str>,
        count: usize,
        offset: usize,
    ) -> Result<(i64, Vec<AuditRow>), StoreError> {
        let filter = AuditFilter {
            patient_id: patient_id.map(str::to_owned),
            ids: None,
        };
        self.audit_rows_matching(&filter, count, offset).await
    }

    /// The total and one page (newest first) of the audit rows `filter` selects.
    pub async fn audit_rows_matching(
        &self,
        filter: &AuditFilter,
        count: usize,
        offset: usize,
    ) -> Result<(i64, Vec<AuditRow>), StoreError> {
        let total: i64 = on!(self.db.readers(), |pool| {
            let mut total = QueryBuilder::new("SELECT COUNT(*) FROM audit_log WHERE ");
            push_audit_filter(&mut total, filter);
            total.build_query_scalar().fetch_one(pool).await?
        });
        let rows: Vec<AuditTuple> = on!(self.db.readers(), |pool| {
            let mut page =
                QueryBuilder::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE "));
            push_audit_filter(&mut page, filter);
            page.push(" ORDER BY id DESC LIMIT ");
            page.push_bind(count as i64);
            page.push(" OFFSET ");
            page.push_bind(offset as i64);
            page.build_query_as().fetch_all(pool).await?
        });
        Ok((total, rows.into_iter().map(audit_row).collect()))
    }

    /// One audit row by its id.
    pub async fn audit_row(&self, id: i64) -> Result<Option<AuditRow>, StoreError> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id = $1");
        let row: Option<AuditTuple> = on!(self.db.readers(), |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(audit_row))
    }
}

fn audit_row(row: AuditTuple) -> AuditRow {
    let (
        id,
        ts,
        user_id,
        action,
        operation,
        resource_type,
        resource_id,
        patient_id,
        outcome,
        detail,
        source,
    ) = row;
    AuditRow {
        id,
        record: AuditRecord {
            ts,
            user_id,
            action: match action.as_str() {
                "C" => "C",
                "U" => "U",
                "D" => "D",
                "R" => "R",
                _ => "E",
            },
            operation,
            resource_type,
            resource_id,
            patient_id,
            outcome: match outcome.as_str() {
                "0" => "0",
                "4" => "4",
                "8" => "8",
                _ => "12",
            },
            detail,
            source,
        },
    }
}

/// Rows per audit insert: ten bound parameters each, far below either engine's limit.
const AUDIT_ROWS_PER_INSERT: usize = 1000;

/// Adds `records` to the audit trail inside `tx`, in order, one statement per thousand rows.
pub(super) async fn insert_audits(
    tx: &mut Tx<'_>,
    records: &[AuditRecord],
) -> Result<(), sqlx::Error> {
    run_script!(tx, |script| push_audits(&mut script, records));
    Ok(())
}

/// Pushes the statements that add `records` to the audit trail, in order.
pub(super) fn push_audits<'a, DB>(script: &mut Script<'a, DB>, records: &'a [AuditRecord])
where
    DB: sqlx::Database,
    &'a String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a Option<String>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    for chunk in records.chunks(AUDIT_ROWS_PER_INSERT) {
        let insert = script.statement(
            "INSERT INTO audit_log (ts, user_id, action, operation, resource_type, resource_id, patient_id, outcome, detail, source) ",
        );
        insert.push_values(chunk, |mut row, record| {
            row.push_bind(&record.ts)
                .push_bind(&record.user_id)
                .push_bind(record.action)
                .push_bind(&record.operation)
                .push_bind(&record.resource_type)
                .push_bind(&record.resource_id)
                .push_bind(&record.patient_id)
                .push_bind(record.outcome)
                .push_bind(&record.detail)
                .push_bind(&record.source);
        });
    }
}

/// Commits audit records in batches, off the request path; retries a failed batch.
pub(super) async fn audit_writer(db: Db, mut rx: mpsc::UnboundedReceiver<AuditMsg>) {
    let mut batch: Vec<AuditRecord> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                AuditMsg::Record(record) => batch.push(*record),
                AuditMsg::Flush(done) => waiters.push(done),
            }
            if batch.len() < AUDIT_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let mut delay = Duration::from_millis(50);
        while !batch.is_empty() {
            match commit_audit_batch(&db, &batch).await {
                Ok(()) => batch.clear(),
                Err(error) => {
                    tracing::error!(%error, records = batch.len(), "audit batch failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        for done in waiters.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn commit_audit_batch(db: &Db, batch: &[AuditRecord]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    insert_audits(&mut tx, batch).await?;
    tx.commit().await
}
