//! Tokens: the signing keys, issuing and verifying our JWTs, and this node's memory of which
//! sessions are still active (so that a revoked session's tokens are refused at once here).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::identity::{Purpose, Role, UserInfo};
use crate::{
    fhir::{date::format_instant, error::FhirError},
    store::{accounts::UserRow, Store},
};

/// WebSocket `?token=` tokens live this long: enough to open a socket, useless when stolen later.
pub const WS_TOKEN_TTL: Duration = Duration::from_secs(120);

const ISSUER: &str = "rounds";

/// The claims of our JWTs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    /// Session id: revoking the session invalidates its access tokens.
    pub sid: String,
    pub role: Role,
    pub name: String,
    pub purpose: Purpose,
    /// The session id again, under the name `@medplum/core` looks for to recognise a server
    /// whose profile it can fetch from `/auth/me`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_id: Option<String>,
    /// For `Bind` tokens: the Subscription they bind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// For tokens issued to an OAuth client: its id (checked by `@medplum/core`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Signing keys, the session revocation cache and the token and cookie settings; created once
/// at start-up, inside [`Auth`].
pub struct AuthKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// session id → (its user while active, when checked). Re-checked against the database
    /// after a few seconds, so a revocation on another node is seen quickly; one on this node
    /// at once.
    sessions: Mutex<HashMap<String, (Option<String>, Instant)>>,
    /// user id → (the account as last read, when). Read again after the same few seconds as a
    /// session, so a change to an account is seen as soon as an ended session is.
    accounts: Mutex<HashMap<String, (Arc<UserRow>, Instant)>>,
    /// Whether to mark cookies `Secure` (served over TLS, directly or behind a proxy).
    pub secure_cookies: bool,
    /// Two tabs refreshing at once present the same refresh token; tolerated within this window.
    pub refresh_grace: Duration,
    /// How long access tokens (and their cookie) live: `--access-token-secs`, 15 minutes unless
    /// configured.
    pub access_ttl: Duration,
}

const SESSION_CACHE_TTL: Duration = Duration::from_secs(5);

impl AuthKeys {
    pub fn new(secret: &str, secure_cookies: bool, refresh_grace: Duration) -> Self {
        Self {
            refresh_grace,
            access_ttl: Duration::from_secs(15 * 60),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            sessions: Mutex::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
            secure_cookies,
        }
    }

    /// Signs a token for `user` in session `sid`.
    pub fn issue(
        &self,
        user: &UserInfo,
        sid: &str,
        purpose: Purpose,
        ttl: Duration,
    ) -> Result<String, FhirError> {
        self.sign(self.claims(user, sid, purpose, ttl))
    }

    /// A token that binds Subscription `subscription_id` on `/ws/subscriptions-r4`.
    pub fn issue_bind(
        &self,
        user: &UserInfo,
        sid: &str,
        subscription_id: &str,
        ttl: Duration,
    ) -> Result<String, FhirError> {
        let mut claims = self.claims(user, sid, Purpose::Bind, ttl);
        claims.subscription_id = Some(subscription_id.to_owned());
        self.sign(claims)
    }

    /// An access token for an OAuth client (`client_id` is echoed as a claim).
    pub fn issue_for_client(
        &self,
        user: &UserInfo,
        sid: &str,
        client_id: &str,
    ) -> Result<String, FhirError> {
        let mut claims = self.claims(user, sid, Purpose::Access, self.access_ttl);
        claims.client_id = Some(client_id.to_owned());
        self.sign(claims)
    }

    fn claims(&self, user: &UserInfo, sid: &str, purpose: Purpose, ttl: Duration) -> Claims {
        let now = Utc::now().timestamp();
        Claims {
            sub: user.id.clone(),
            iss: ISSUER.into(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            sid: sid.to_owned(),
            role: user.role,
            name: user.name.clone(),
            purpose,
            login_id: (purpose == Purpose::Access).then(|| sid.to_owned()),
            subscription_id: None,
            client_id: None,
        }
    }

    fn sign(&self, claims: Claims) -> Result<String, FhirError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| FhirError::Internal(format!("signing a token: {e}")))
    }

    /// Whether session `sid` is still active and `user_id`'s (cached for a few seconds).
    pub async fn session_is_active(&self, store: &Store, sid: &str, user_id: &str) -> bool {
        self.session_active(store, sid, user_id)
            .await
            .unwrap_or(false)
    }

    /// Verifies signature, algorithm (HS256 only: `alg: none` and others are refused), issuer,
    /// expiry (no leeway) and purpose.
    pub fn verify(&self, token: &str, purpose: Purpose) -> Result<Claims, FhirError> {
        self.verify_with(token, purpose, true)
    }

    /// [`AuthKeys::verify`], with or without the expiry check.
    pub(super) fn verify_with(
        &self,
        token: &str,
        purpose: Purpose,
        check_expiry: bool,
    ) -> Result<Claims, FhirError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = check_expiry;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|e| {
                FhirError::Unauthorized(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        "the access token has expired".to_owned()
                    }
                    _ => "the access token is invalid".to_owned(),
                })
            })?;
        if data.claims.purpose != purpose {
            return Err(FhirError::Unauthorized(
                "the token is not valid for this purpose".into(),
            ));
        }
        Ok(data.claims)
    }

    pub fn forget_session(&self, sid: &str) {
        if let Ok(mut cache) = self.sessions.lock() {
            cache.insert(sid.to_owned(), (None, Instant::now()));
        }
    }

    /// Whether session `sid` is still active and belongs to `user_id` (cached for a few
    /// seconds; a revocation on this node is seen at once). A token naming another user's
    /// session is refused like an ended one.
    pub async fn session_active(
        &self,
        store: &Store,
        sid: &str,
        user_id: &str,
    ) -> Result<bool, FhirError> {
        Ok(self.session_user(store, sid).await?.as_deref() == Some(user_id))
    }

    /// The account with id `id`, as read at most a few seconds ago.
    pub async fn account(
        &self,
        store: &Store,
        id: &str,
    ) -> Result<Option<Arc<UserRow>>, FhirError> {
        if let Ok(cache) = self.accounts.lock() {
            if let Some((account, at)) = cache.get(id) {
                if at.elapsed() < SESSION_CACHE_TTL {
                    return Ok(Some(account.clone()));
                }
            }
        }
        let Some(account) = store.user_by_id(id).await? else {
            return Ok(None);
        };
        let account = Arc::new(account);
        if let Ok(mut cache) = self.accounts.lock() {
            if cache.len() > 100_000 {
                cache.retain(|_, (_, at)| at.elapsed() < SESSION_CACHE_TTL);
            }
            cache.insert(id.to_owned(), (account.clone(), Instant::now()));
        }
        Ok(Some(account))
    }

    /// The user of session `sid` while it is active.
    async fn session_user(&self, store: &Store, sid: &str) -> Result<Option<String>, FhirError> {
        if let Ok(cache) = self.sessions.lock() {
            if let Some((user, at)) = cache.get(sid) {
                if at.elapsed() < SESSION_CACHE_TTL || user.is_none() {
                    return Ok(user.clone());
                }
            }
        }
        let user = store.session_user(sid, &format_instant(Utc::now())).await?;
        if let Ok(mut cache) = self.sessions.lock() {
            if cache.len() > 100_000 {
                cache.retain(|_, (_, at)| at.elapsed() < SESSION_CACHE_TTL);
            }
            cache.insert(sid.to_owned(), (user.clone(), Instant::now()));
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_purpose_and_key() {
        let keys = AuthKeys::new(
            "a-test-secret-that-is-long-enough-000",
            false,
            Duration::from_secs(30),
        );
        let user = UserInfo {
            id: "u1".into(),
            name: "U".into(),
            role: Role::Nurse,
        };
        let token = keys.issue(&user, "s1", Purpose::Ws, WS_TOKEN_TTL).unwrap();
        assert!(keys.verify(&token, Purpose::Ws).is_ok());
        assert!(keys.verify(&token, Purpose::Access).is_err());
        let other = AuthKeys::new(
            "another-secret-that-is-long-enough-11",
            false,
            Duration::from_secs(30),
        );
        assert!(other.verify(&token, Purpose::Ws).is_err());
    }
}
