//! Accounts, sessions and the lookups the access policy needs.
//!
//! Part of the store so that all SQL stays behind one interface. Password hashing and token
//! logic live in `auth`; this file only persists their results. A revocation is told to every
//! node (on PostgreSQL) by the transaction that commits it.

use std::sync::Arc;

use sqlx::QueryBuilder;
use tokio::sync::broadcast;

use super::{
    backend::postgres::Notice,
    engine::on,
    handle::{Store, VISIBILITY_MEMO_LEN},
    model::{StoreError, Visibility},
};

/// A user account as stored.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub practitioner_id: Option<String>,
    pub active: bool,
    pub units: Vec<String>,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Refresh {
    /// The token was current: it is now used and `new_hash` replaces it.
    Rotated { session_id: String, user_id: String },
    /// The token had already been used (outside the grace period): the session is revoked.
    Replayed { session_id: String, user_id: String },
    /// Unknown token, or its session is revoked or expired.
    Invalid,
}

/// Session ids asked about in one query (each is a bound parameter).
const SESSIONS_PER_QUERY: usize = 1000;

/// (session id, used at, user id, revoked at, expires at) of a presented refresh token.
type RefreshRow = (String, Option<String>, String, Option<String>, String);

/// A `users` row joined with one of its units (none: `None`).
type UserTuple = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    bool,
    Option<String>,
);

impl Store {
    /// The account whose `column` (`id` or `username`) is `value`, with its units, in one query:
    /// one row per unit (or one with no unit).
    async fn user_where(&self, column: &str, value: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!(
            "SELECT u.id, u.username, u.name, u.role, u.password_hash, u.practitioner_id, u.active,
                    uu.unit_id
             FROM users u LEFT JOIN user_units uu ON uu.user_id = u.id
             WHERE u.{column} = $1 ORDER BY uu.unit_id"
        );
        let rows: Vec<UserTuple> = on!(self.db.readers(), |pool| {
            sqlx::query_as(&sql).bind(value).fetch_all(pool).await?
        });
        let units = rows.iter().filter_map(|row| row.7.clone()).collect();
        let Some((id, username, name, role, password_hash, practitioner_id, active, _)) =
            rows.into_iter().next()
        else {
            return Ok(None);
        };
        Ok(Some(UserRow {
            id,
            username,
            name,
            role,
            password_hash,
            practitioner_id,
            active,
            units,
        }))
    }

    /// The account signing in with `username`.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        self.user_where("username", username).await
    }

    /// The account with this id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        self.user_where("id", id).await
    }

    /// Adds an account with its units.
    pub async fn insert_user(&self, user: &UserRow, created_at: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        on!(tx.conn(), |conn| {
            sqlx::query(
                "INSERT INTO users (id, username, name, role, password_hash, practitioner_id, active, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.name)
            .bind(&user.role)
            .bind(&user.password_hash)
            .bind(&user.practitioner_id)
            .bind(user.active)
            .bind(created_at)
            .execute(conn)
            .await?;
        });
        for unit in &user.units {
            on!(tx.conn(), |conn| {
                sqlx::query("INSERT INTO user_units (user_id, unit_id) VALUES ($1, $2)")
                    .bind(&user.id)
                    .bind(unit)
                    .execute(conn)
                    .await?;
            });
        }
        tx.commit().await?;
        Ok(())
    }

    /// Starts a session with its first refresh token (by hash).
    pub async fn create_session(
        &self,
        session_id: &str,
        user_id: &str,
        now: &str,
        expires_at: &str,
        refresh_hash: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        on!(tx.conn(), |conn| {
            sqlx::query(
                "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(session_id)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(conn)
            .await?;
        });
        on!(tx.conn(), |conn| {
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES ($1, $2, $3)",
            )
            .bind(refresh_hash)
            .bind(session_id)
            .bind(now)
            .execute(conn)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    /// Rotates a refresh token. A token used again after `grace_start` (its use time plus the
    /// grace period, passed in as the earliest use time still tolerated) revokes the session.
    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: &str,
        grace_start: &str,
    ) -> Result<Refresh, StoreError> {
        let mut tx = self.db.begin().await?;
        let row: Option<RefreshRow> = on!(tx.conn(), |conn| {
            sqlx::query_as(
                "SELECT t.session_id, t.used_at, s.user_id, s.revoked_at, s.expires_at
                 FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1",
            )
            .bind(old_hash)
            .fetch_optional(conn)
            .await?
        });
        let Some((session_id, used_at, user_id, revoked_at, expires_at)) = row else {
            return Ok(Refresh::Invalid);
        };
        if revoked_at.is_some() || expires_at.as_str() <= now {
            return Ok(Refresh::Invalid);
        }
        if let Some(used_at) = used_at {
            // Two tabs refreshing at the same moment present the same token; tolerate that
            // briefly, treat anything later as theft.
            if used_at.as_str() < grace_start {
                on!(tx.conn(), |conn| {
                    sqlx::query(
                        "UPDATE sessions SET revoked_at = $1, revoked_why = 'refresh token replayed'
                         WHERE id = $2",
                    )
                    .bind(now)
                    .bind(&session_id)
                    .execute(conn)
                    .await?;
                });
                tx.notify(&Notice::Revoked(session_id.clone())).await?;
                tx.commit().await?;
                return Ok(Refresh::Replayed {
                    session_id,
                    user_id,
                });
            }
        } else {
            on!(tx.conn(), |conn| {
                sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2")
                    .bind(now)
                    .bind(old_hash)
                    .execute(conn)
                    .await?;
            });
        }
        on!(tx.conn(), |conn| {
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES ($1, $2, $3)",
            )
            .bind(new_hash)
            .bind(&session_id)
            .bind(now)
            .execute(conn)
            .await?;
        });
        tx.commit().await?;
        Ok(Refresh::Rotated {
            session_id,
            user_id,
        })
    }

    /// Ends a session (if it is not ended already) and tells every node.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        now: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        on!(tx.conn(), |conn| {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1, revoked_why = $2
                 WHERE id = $3 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(why)
            .bind(session_id)
            .execute(conn)
            .await?;
        });
        tx.notify(&Notice::Revoked(session_id.to_owned())).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user of session `session_id` while it is active (not revoked, not expired).
    pub async fn session_user(
        &self,
        session_id: &str,
        now: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(on!(self.db.readers(), |pool| {
            sqlx::query_scalar(
                "SELECT user_id FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(session_id)
            .bind(now)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// The live session a refresh token (by its hash) belongs to, and its user: sign-out with
    /// only the refresh cookie left (the access cookie lapses after its lifetime) still ends it.
    pub async fn session_of_refresh(
        &self,
        token_hash: &str,
        now: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(on!(self.db.readers(), |pool| {
            sqlx::query_as(
                "SELECT s.id, s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
                 WHERE t.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Which of `session_ids` are active at `now` (not revoked, not expired), asked in as few
    /// queries as the engines' parameter limits allow.
    pub async fn active_sessions(
        &self,
        session_ids: &[String],
        now: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut active = Vec::new();
        for chunk in session_ids.chunks(SESSIONS_PER_QUERY) {
            let found: Vec<String> = on!(self.db.readers(), |pool| {
                let mut query = QueryBuilder::new(
                    "SELECT id FROM sessions WHERE revoked_at IS NULL AND expires_at > ",
                );
                query.push_bind(now).push(" AND id IN (");
                let mut ids = query.separated(", ");
                for id in chunk {
                    ids.push_bind(id);
                }
                query.push(")");
                query.build_query_scalar().fetch_all(pool).await?
            });
            active.extend(found);
        }
        Ok(active)
    }

    /// Session ids revoked on any node from now on.
    pub fn subscribe_revoked(&self) -> broadcast::Receiver<String> {
        self.revoked.subscribe()
    }

    /// Whether every revocation reaches this node now; while not, a sign-out elsewhere may go
    /// unheard (PostgreSQL, its `LISTEN` connection lost).
    pub fn hears_revocations(&self) -> bool {
        *self.hearing.borrow()
    }

    /// The visibility remembered under `key` at write mark `mark` (`Store::write_mark`), if
    /// it was computed at that very mark.
    pub fn remembered_visibility(&self, key: &str, mark: u64) -> Option<Arc<Visibility>> {
        let memo = self.visibilities.lock().ok()?;
        memo.get(key)
            .filter(|(at, _)| *at == mark)
            .map(|(_, visibility)| visibility.clone())
    }

    /// Remembers a visibility computed from what the database held at write mark `mark` (read
    /// before the computation started).
    pub fn remember_visibility(&self, key: String, mark: u64, visibility: Arc<Visibility>) {
        if let Ok(mut memo) = self.visibilities.lock() {
            if memo.len() >= VISIBILITY_MEMO_LEN {
                memo.clear();
            }
            memo.insert(key, (mark, visibility));
        }
    }

    /// Patients whose active CareTeam lists this practitioner.
    pub async fn care_team_patients(
        &self,
        practitioner_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(on!(self.db.readers(), |pool| {
            sqlx::query_scalar(
                "SELECT DISTINCT r.patient_id FROM resources r
                 JOIN search_index m ON m.rtype = 'CareTeam' AND m.id = r.id AND m.param = 'participant'
                                   AND m.system = 'Practitioner' AND m.value = $1
                 JOIN search_index st ON st.rtype = 'CareTeam' AND st.id = r.id AND st.param = 'status'
                                    AND st.value = 'active'
                 WHERE r.rtype = 'CareTeam' AND r.deleted = FALSE AND r.patient_id IS NOT NULL
                 ORDER BY 1",
            )
            .bind(practitioner_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Patients whose active Encounter is on one of these units.
    pub async fn unit_patients(&self, units: &[String]) -> Result<Vec<String>, StoreError> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on!(self.db.readers(), |pool| {
            let mut query = QueryBuilder::new(
                "SELECT DISTINCT patient_id FROM resources
                 WHERE rtype = 'Encounter' AND deleted = FALSE AND patient_id IS NOT NULL
                   AND unit_id IN (",
            );
            let mut list = query.separated(", ");
            for unit in units {
                list.push_bind(unit.clone());
            }
            query.push(") ORDER BY 1");
            query.build_query_scalar().fetch_all(pool).await?
        }))
    }

    /// Patients with a prescription the pharmacy still has to act on.
    pub async fn prescription_patients(&self) -> Result<Vec<String>, StoreError> {
        Ok(on!(self.db.readers(), |pool| {
            sqlx::query_scalar(
                "SELECT DISTINCT r.patient_id FROM resources r
                 JOIN search_index st ON st.rtype = 'MedicationRequest' AND st.id = r.id
                                     AND st.param = 'status'
                                     AND st.value IN ('active', 'on-hold', 'draft')
                 WHERE r.rtype = 'MedicationRequest' AND r.deleted = FALSE
                   AND r.patient_id IS NOT NULL
                 ORDER BY 1",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Patients per unit (unit id, count) from the active Encounters.
    pub async fn census(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on!(self.db.readers(), |pool| {
            sqlx::query_as(
                "SELECT unit_id, COUNT(DISTINCT patient_id) FROM resources
                 WHERE rtype = 'Encounter' AND deleted = FALSE AND unit_id IS NOT NULL
                 GROUP BY unit_id ORDER BY unit_id",
            )
            .fetch_all(pool)
            .await?
        }))
    }
}
