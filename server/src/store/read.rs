//! Reading resources: one version, a resource's history, a search page; and the settings table.
//!
//! Reads go to the read pool and never wait for a writer. The search's SQL is built in `sql.rs`.

use std::{collections::HashSet, sync::Arc};

use sqlx::QueryBuilder;

use super::{
    engine::on,
    handle::Store,
    model::{HistoryWindow, ReadOutcome, SearchPage, StoreError, Stored, Visibility},
    sql::{check_included, push_filters, push_visibility},
};
use crate::fhir::search::{SearchQuery, SortKey, MAX_INCLUDED};

/// (version, lastUpdated, deleted, content) of one version of a known resource.
type VersionRow = (i64, String, bool, String);
/// (type, id, version, lastUpdated, content) of a live resource.
type ResourceRow = (String, String, i64, String, String);

fn version(resource_type: &str, id: &str, row: VersionRow) -> Stored {
    let (version_id, last_updated, deleted, content) = row;
    Stored {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        version_id,
        last_updated,
        deleted,
        json: Arc::from(content),
    }
}

fn live((resource_type, id, version_id, last_updated, content): ResourceRow) -> Stored {
    Stored {
        resource_type,
        id,
        version_id,
        last_updated,
        deleted: false,
        json: Arc::from(content),
    }
}

impl Store {
    /// The current version of a resource, or why there is none.
    pub async fn read(&self, resource_type: &str, id: &str) -> Result<ReadOutcome, StoreError> {
        Ok(match self.newest(resource_type, id).await? {
            None => ReadOutcome::NotFound,
            Some(stored) if stored.deleted => ReadOutcome::Gone(stored.version_id),
            Some(stored) => ReadOutcome::Found(stored),
        })
    }

    /// One version of a resource, a deletion's tombstone included.
    pub async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> Result<Option<Stored>, StoreError> {
        let row: Option<(String, bool, String)> = on!(self.db.readers(), |pool| {
            sqlx::query_as(
                "SELECT last_updated, deleted, content FROM resource_history
                 WHERE rtype = $1 AND id = $2 AND version_id = $3",
            )
            .bind(resource_type)
            .bind(id)
            .bind(version_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(last_updated, deleted, content)| {
            version(
                resource_type,
                id,
                (version_id, last_updated, deleted, content),
            )
        }))
    }

    /// The resource's newest version, a deletion's tombstone included (it holds the deleted
    /// content, so the access policy can still judge it).
    pub async fn newest(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        let row: Option<VersionRow> = on!(self.db.readers(), |pool| {
            sqlx::query_as(
                "SELECT version_id, last_updated, deleted, content FROM resources
                 WHERE rtype = $1 AND id = $2",
            )
            .bind(resource_type)
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|row| version(resource_type, id, row)))
    }

    /// Up to `limit` versions of one resource older than `below`, newest first: `_history` walks
    /// a resource's versions in such chunks, so it judges every version without holding them all.
    pub async fn versions_below(
        &self,
        resource_type: &str,
        id: &str,
        below: i64,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        self.versions_in(resource_type, id, below, limit, &HistoryWindow::default())
            .await
    }

    /// As [`Store::versions_below`], of the versions inside `window` only (`_since`, `_at`).
    pub async fn versions_in(
        &self,
        resource_type: &str,
        id: &str,
        below: i64,
        limit: usize,
        window: &HistoryWindow,
    ) -> Result<Vec<Stored>, StoreError> {
        let rows: Vec<VersionRow> = on!(self.db.readers(), |pool| {
            sqlx::query_as(
                "SELECT version_id, last_updated, deleted, content FROM resource_history
                 WHERE rtype = $1 AND id = $2 AND version_id < $3 AND version_id >= $5
                   AND (CAST($6 AS TEXT) IS NULL OR last_updated >= $6)
                   AND (CAST($7 AS TEXT) IS NULL OR last_updated < $7)
                 ORDER BY version_id DESC LIMIT $4",
            )
            .bind(resource_type)
            .bind(id)
            .bind(below)
            .bind(limit as i64)
            .bind(window.min_version)
            .bind(window.since.as_deref())
            .bind(window.before.as_deref())
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|row| version(resource_type, id, row))
            .collect())
    }

    /// One page of a search, with its total and what `_include` adds, all within `visibility`.
    pub async fn search(
        &self,
        query: &SearchQuery,
        visibility: &Visibility,
    ) -> Result<SearchPage, StoreError> {
        let total: i64 = on!(self.db.readers(), |pool| {
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM resources r WHERE ");
            push_filters(&mut count, query, visibility);
            count.build_query_scalar().fetch_one(pool).await?
        });
        if query.count_only || query.count == 0 {
            return Ok(SearchPage {
                total,
                matches: Vec::new(),
                included: Vec::new(),
            });
        }

        let rows: Vec<ResourceRow> = on!(self.db.readers(), |pool| {
            let mut select = QueryBuilder::new(
                "SELECT r.rtype, r.id, r.version_id, r.last_updated, r.content FROM resources r WHERE ",
            );
            push_filters(&mut select, query, visibility);
            select.push(" ORDER BY ");
            for sort in &query.sort {
                let direction = if sort.descending { "DESC" } else { "ASC" };
                match sort.key {
                    SortKey::LastUpdated => select.push(format!("r.last_updated {direction}, ")),
                    SortKey::Id => select.push(format!("r.id {direction}, ")),
                    // Resources without a date sort last either way.
                    SortKey::Date => {
                        select.push(format!("r.sort_date IS NULL, r.sort_date {direction}, "))
                    }
                };
            }
            select.push("r.last_updated ASC, r.id ASC LIMIT ");
            select.push_bind(query.count as i64);
            select.push(" OFFSET ");
            select.push_bind(query.offset as i64);
            select.build_query_as().fetch_all(pool).await?
        });
        let matches: Vec<Stored> = rows.into_iter().map(live).collect();

        let mut included: Vec<Stored> = Vec::new();
        let mut seen: HashSet<(String, String)> = matches
            .iter()
            .map(|s| (s.resource_type.clone(), s.id.clone()))
            .collect();
        if !matches.is_empty() {
            for include in &query.includes {
                let rows: Vec<ResourceRow> = on!(self.db.readers(), |pool| {
                    let mut sql = QueryBuilder::new(
                        "SELECT DISTINCT r.rtype, r.id, r.version_id, r.last_updated, r.content
                         FROM search_index s JOIN resources r ON r.rtype = s.system AND r.id = s.value
                         WHERE r.deleted = FALSE AND s.rtype = ",
                    );
                    sql.push_bind(&include.source_type);
                    sql.push(" AND s.param = ");
                    sql.push_bind(include.param);
                    if let Some(target) = &include.target_type {
                        sql.push(" AND s.system = ");
                        sql.push_bind(target);
                    }
                    sql.push(" AND s.id IN (");
                    let mut ids = sql.separated(", ");
                    for stored in &matches {
                        ids.push_bind(&stored.id);
                    }
                    sql.push(") AND ");
                    push_visibility(&mut sql, visibility);
                    // One row past the limit tells that it is exceeded.
                    sql.push(" LIMIT ");
                    sql.push_bind(MAX_INCLUDED as i64 + 1);
                    sql.build_query_as().fetch_all(pool).await?
                });
                check_included(rows.len())?;
                for stored in rows.into_iter().map(live) {
                    if seen.insert((stored.resource_type.clone(), stored.id.clone())) {
                        included.push(stored);
                    }
                }
                check_included(included.len())?;
            }
        }
        Ok(SearchPage {
            total,
            matches,
            included,
        })
    }

    /// Number of live resources of a type (for the census and for tests).
    pub async fn count(&self, resource_type: &str) -> Result<i64, StoreError> {
        Ok(on!(self.db.readers(), |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM resources WHERE rtype = $1 AND deleted = FALSE",
            )
            .bind(resource_type)
            .fetch_one(pool)
            .await?
        }))
    }

    /// A value of the settings table.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(on!(self.db.readers(), |pool| {
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Sets a value of the settings table.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        on!(self.db.writer(), |pool| {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
