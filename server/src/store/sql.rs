//! The search's SQL, shared by both backends: filters, access visibility, FHIR date prefixes.
//!
//! Written once against `QueryBuilder<DB>` so that SQLite and PostgreSQL answer a search the
//! same way; placeholders are the builder's business. Booleans are compared with `FALSE`, which
//! both dialects understand, and string prefixes are matched lower-cased (PostgreSQL's LIKE is
//! case-sensitive; the index holds lower-cased text).

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::{
    index::{EXACT_SYSTEM, OWNER_PARAM},
    model::{AuditFilter, StoreError, Visibility},
};
use crate::fhir::search::{Clause, DateValue, Prefix, SearchQuery, MAX_INCLUDED};

/// `rtype = ? AND deleted = 0 AND <clauses> AND <visibility>`.
pub(super) fn push_filters<'a, DB>(
    sql: &mut QueryBuilder<'a, DB>,
    query: &SearchQuery,
    visibility: &Visibility,
) where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
{
    sql.push("r.rtype = ");
    sql.push_bind(query.resource_type.clone());
    sql.push(" AND r.deleted = FALSE");
    for clause in &query.clauses {
        sql.push(" AND ");
        push_clause(sql, clause);
    }
    if let Some(owner) = &query.owner {
        sql.push(" AND ");
        push_exists_index(sql, OWNER_PARAM);
        sql.push(" AND s.value = ");
        sql.push_bind(owner.clone());
        sql.push(")");
    }
    sql.push(" AND ");
    push_visibility(sql, visibility);
}

/// The `WHERE` of an `AuditEvent` search over `audit_log`.
pub(super) fn push_audit_filter<'a, DB>(sql: &mut QueryBuilder<'a, DB>, filter: &AuditFilter)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    sql.push("1 = 1");
    if let Some(patient) = &filter.patient_id {
        sql.push(" AND patient_id = ");
        sql.push_bind(patient.clone());
    }
    match filter.ids.as_deref() {
        None => {}
        Some([]) => {
            sql.push(" AND 1 = 0");
        }
        Some(ids) => {
            sql.push(" AND id IN (");
            let mut list = sql.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            sql.push(")");
        }
    }
}

/// Fails a search whose `_include` would add more than [`MAX_INCLUDED`] resources to a page.
pub(super) fn check_included(count: usize) -> Result<(), StoreError> {
    if count > MAX_INCLUDED {
        return Err(StoreError::TooCostly(format!(
            "_include would add more than {MAX_INCLUDED} resources to this page; ask for a smaller _count"
        )));
    }
    Ok(())
}

pub(super) fn push_visibility<'a, DB>(sql: &mut QueryBuilder<'a, DB>, visibility: &Visibility)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
{
    sql.push("(");
    if visibility.all_patients {
        sql.push("1 = 1");
    } else {
        sql.push("r.patient_id IS NULL");
        if !visibility.patient_ids.is_empty() {
            sql.push(" OR r.patient_id IN (");
            let mut ids = sql.separated(", ");
            for id in &visibility.patient_ids {
                ids.push_bind(id.clone());
            }
            sql.push(")");
        }
    }
    sql.push(") AND (r.restricted = FALSE");
    if visibility.restricted_all {
        sql.push(" OR 1 = 1");
    } else if !visibility.restricted_patient_ids.is_empty() {
        sql.push(" OR r.patient_id IN (");
        let mut ids = sql.separated(", ");
        for id in &visibility.restricted_patient_ids {
            ids.push_bind(id.clone());
        }
        sql.push(")");
    }
    sql.push(")");
}

pub(super) fn push_clause<'a, DB>(sql: &mut QueryBuilder<'a, DB>, clause: &Clause)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
{
    match clause {
        Clause::Id(ids) => {
            sql.push("r.id IN (");
            let mut list = sql.separated(", ");
            for id in ids {
                list.push_bind(id.clone());
            }
            sql.push(")");
        }
        Clause::Patient(ids) => {
            sql.push("r.patient_id IN (");
            let mut list = sql.separated(", ");
            for id in ids {
                list.push_bind(id.clone());
            }
            sql.push(")");
        }
        Clause::Token {
            param,
            values,
            negate,
        } => {
            if *negate {
                sql.push("NOT ");
            }
            push_exists_index(sql, param);
            sql.push(" AND (");
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                sql.push("(1 = 1");
                if let Some(system) = &value.system {
                    sql.push(" AND s.system = ");
                    sql.push_bind(system.clone());
                }
                if let Some(code) = &value.code {
                    sql.push(" AND s.value = ");
                    sql.push_bind(code.clone());
                }
                sql.push(")");
            }
            sql.push("))");
        }
        Clause::Reference { param, values } => {
            push_exists_index(sql, param);
            sql.push(" AND (");
            for (i, (rtype, id)) in values.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                sql.push("(s.value = ");
                sql.push_bind(id.clone());
                if let Some(rtype) = rtype {
                    sql.push(" AND s.system = ");
                    sql.push_bind(rtype.clone());
                }
                sql.push(")");
            }
            sql.push("))");
        }
        Clause::String {
            param,
            values,
            exact,
        } => {
            // `:exact` compares with the text as written (`=` is case-sensitive in both
            // dialects); the default search with the lower-cased rows.
            push_exists_index(sql, param);
            sql.push(" AND s.system = ");
            sql.push_bind(if *exact { EXACT_SYSTEM } else { "" }.to_owned());
            sql.push(" AND (");
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                if *exact {
                    sql.push("s.value = ");
                    sql.push_bind(value.clone());
                } else {
                    let escaped = value
                        .to_lowercase()
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_");
                    sql.push("s.value LIKE ");
                    sql.push_bind(format!("{escaped}%"));
                    sql.push(" ESCAPE '\\'");
                }
            }
            sql.push("))");
        }
        Clause::Date { param, values } => {
            let (start, end) = match param {
                Some(param) => {
                    sql.push("EXISTS (SELECT 1 FROM search_dates d WHERE d.rtype = r.rtype AND d.id = r.id AND d.param = ");
                    sql.push_bind(param.to_string());
                    sql.push(" AND (");
                    ("d.start_at", "d.end_at")
                }
                None => {
                    sql.push("((");
                    ("r.last_updated", "r.last_updated")
                }
            };
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                push_date_condition(sql, start, end, value);
            }
            sql.push("))");
        }
    }
}

pub(super) fn push_exists_index<'a, DB>(sql: &mut QueryBuilder<'a, DB>, param: &'static str)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
{
    sql.push("EXISTS (SELECT 1 FROM search_index s WHERE s.rtype = r.rtype AND s.id = r.id AND s.param = ");
    sql.push_bind(param.to_owned());
}

/// The FHIR prefixes over a stored inclusive range [ts, te] and a searched range [ps, pe).
pub(super) fn push_date_condition<'a, DB>(
    sql: &mut QueryBuilder<'a, DB>,
    ts: &str,
    te: &str,
    value: &DateValue,
) where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
{
    let (ps, pe) = (&value.start, &value.end);
    // Each prefix is a conjunction of (stored bound, operator, searched bound).
    let terms: Vec<(&str, &str, &String)> = match value.prefix {
        Prefix::Eq | Prefix::Ne => vec![(ts, ">=", ps), (te, "<", pe)],
        Prefix::Gt => vec![(te, ">=", pe)],
        Prefix::Lt => vec![(ts, "<", ps)],
        Prefix::Ge => vec![(te, ">=", ps)],
        Prefix::Le => vec![(ts, "<", pe)],
        Prefix::Sa => vec![(ts, ">=", pe)],
        Prefix::Eb => vec![(te, "<", ps)],
        Prefix::Ap => vec![(ts, "<", pe), (te, ">=", ps)],
    };
    sql.push(if value.prefix == Prefix::Ne {
        "(NOT ("
    } else {
        "(("
    });
    for (i, (column, operator, bound)) in terms.into_iter().enumerate() {
        if i > 0 {
            sql.push(" AND ");
        }
        sql.push(format!("{column} {operator} "));
        sql.push_bind(bound.clone());
    }
    sql.push("))");
}
