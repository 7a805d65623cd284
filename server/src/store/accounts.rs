//! Accounts, sessions and the lookups the access policy needs (SQLite).
//!
//! Part of the store so that all SQL stays behind one interface. Password hashing and token
//! logic live in `auth`; this file only persists their results.

use sqlx::{QueryBuilder, Sqlite};

use super::{SqliteStore, StoreError};

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

/// (session id, used at, user id, revoked at, expires at) of a presented refresh token.
type RefreshRow = (String, Option<String>, String, Option<String>, String);

type UserTuple = (String, String, String, String, String, Option<String>, bool);

impl SqliteStore {
    async fn with_units(&self, row: Option<UserTuple>) -> Result<Option<UserRow>, StoreError> {
        let Some((id, username, name, role, password_hash, practitioner_id, active)) = row else {
            return Ok(None);
        };
        let units: Vec<String> =
            sqlx::query_scalar("SELECT unit_id FROM user_units WHERE user_id = ? ORDER BY unit_id")
                .bind(&id)
                .fetch_all(self.readers())
                .await?;
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

    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        let row: Option<UserTuple> = sqlx::query_as(
            "SELECT id, username, name, role, password_hash, practitioner_id, active FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(self.readers())
        .await?;
        self.with_units(row).await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let row: Option<UserTuple> = sqlx::query_as(
            "SELECT id, username, name, role, password_hash, practitioner_id, active FROM users WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(self.readers())
        .await?;
        self.with_units(row).await
    }

    pub async fn insert_user(&self, user: &UserRow, created_at: &str) -> Result<(), StoreError> {
        let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO users (id, username, name, role, password_hash, practitioner_id, active, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.name)
        .bind(&user.role)
        .bind(&user.password_hash)
        .bind(&user.practitioner_id)
        .bind(user.active)
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        for unit in &user.units {
            sqlx::query("INSERT INTO user_units (user_id, unit_id) VALUES (?, ?)")
                .bind(&user.id)
                .bind(unit)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_session(
        &self,
        session_id: &str,
        user_id: &str,
        now: &str,
        expires_at: &str,
        refresh_hash: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(session_id)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES (?, ?, ?)",
        )
        .bind(refresh_hash)
        .bind(session_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
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
        let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await?;
        let row: Option<RefreshRow> = sqlx::query_as(
            "SELECT t.session_id, t.used_at, s.user_id, s.revoked_at, s.expires_at
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = ?",
        )
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
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
                sqlx::query("UPDATE sessions SET revoked_at = ?, revoked_why = 'refresh token replayed' WHERE id = ?")
                    .bind(now)
                    .bind(&session_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(Refresh::Replayed {
                    session_id,
                    user_id,
                });
            }
        } else {
            sqlx::query("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?")
                .bind(now)
                .bind(old_hash)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES (?, ?, ?)",
        )
        .bind(new_hash)
        .bind(&session_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Refresh::Rotated {
            session_id,
            user_id,
        })
    }

    pub async fn revoke_session(
        &self,
        session_id: &str,
        now: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET revoked_at = ?, revoked_why = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(why)
            .bind(session_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The user of session `session_id` while it is active (not revoked, not expired).
    pub async fn session_user(
        &self,
        session_id: &str,
        now: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM sessions WHERE id = ? AND revoked_at IS NULL AND expires_at > ?",
        )
        .bind(session_id)
        .bind(now)
        .fetch_optional(self.readers())
        .await?)
    }

    /// The live session a refresh token (by its hash) belongs to, and its user: sign-out with
    /// only the refresh cookie left (the access cookie lapses after its lifetime) still ends it.
    pub async fn session_of_refresh(
        &self,
        token_hash: &str,
        now: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT s.id, s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
             WHERE t.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.readers())
        .await?)
    }

    /// Which of `session_ids` exist, are not revoked and have not expired at `now`.
    pub async fn active_sessions(
        &self,
        session_ids: &[String],
        now: &str,
    ) -> Result<Vec<String>, StoreError> {
        if session_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT id FROM sessions WHERE revoked_at IS NULL AND expires_at > ",
        );
        query.push_bind(now).push(" AND id IN (");
        let mut ids = query.separated(", ");
        for id in session_ids {
            ids.push_bind(id);
        }
        query.push(")");
        Ok(query.build_query_scalar().fetch_all(self.readers()).await?)
    }

    /// Patients whose active CareTeam lists this practitioner.
    pub async fn care_team_patients(
        &self,
        practitioner_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT r.patient_id FROM resources r
             JOIN search_index m ON m.rtype = 'CareTeam' AND m.id = r.id AND m.param = 'participant'
                               AND m.system = 'Practitioner' AND m.value = ?
             JOIN search_index st ON st.rtype = 'CareTeam' AND st.id = r.id AND st.param = 'status'
                                AND st.value = 'active'
             WHERE r.rtype = 'CareTeam' AND r.deleted = 0 AND r.patient_id IS NOT NULL
             ORDER BY 1",
        )
        .bind(practitioner_id)
        .fetch_all(self.readers())
        .await?)
    }

    /// Patients whose active Encounter is on one of these units.
    pub async fn unit_patients(&self, units: &[String]) -> Result<Vec<String>, StoreError> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT DISTINCT patient_id FROM resources
             WHERE rtype = 'Encounter' AND deleted = 0 AND patient_id IS NOT NULL AND unit_id IN (",
        );
        let mut list = query.separated(", ");
        for unit in units {
            list.push_bind(unit.clone());
        }
        query.push(") ORDER BY 1");
        Ok(query.build_query_scalar().fetch_all(self.readers()).await?)
    }

    /// The unit each patient is on now (patient id, unit id), for the census and the panels.
    pub async fn census(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT unit_id, COUNT(DISTINCT patient_id) FROM resources
             WHERE rtype = 'Encounter' AND deleted = 0 AND unit_id IS NOT NULL
             GROUP BY unit_id ORDER BY unit_id",
        )
        .fetch_all(self.readers())
        .await?)
    }

    /// Patients with a prescription the pharmacy still has to act on.
    pub async fn prescription_patients(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT r.patient_id FROM resources r
             JOIN search_index st ON st.rtype = 'MedicationRequest' AND st.id = r.id AND st.param = 'status'
                                AND st.value IN ('active', 'on-hold', 'draft')
             WHERE r.rtype = 'MedicationRequest' AND r.deleted = 0 AND r.patient_id IS NOT NULL
             ORDER BY 1",
        )
        .fetch_all(self.readers())
        .await?)
    }
}
