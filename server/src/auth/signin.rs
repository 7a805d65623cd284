//! Signing in, refreshing and signing out: the session lifecycle, and [`Auth`], which holds what
//! it and authentication need.
//!
//! Sign-in is throttled and its password checked under the hasher's bound; every outcome is
//! audited. Ending a session on this node (its sockets, held polls and cached tokens) is not
//! auth's to reach: the caller passes it in as `end_here`.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use axum::http::HeaderMap;
use base64::Engine;
use chrono::Utc;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{
    address::client_ip,
    cookies::{bearer, cookie, cross_site, same_origin, set_cookie, ACCESS_COOKIE, REFRESH_COOKIE},
    identity::{Purpose, Role, UserInfo},
    password::{self, dummy_hash, Hasher},
    throttle::LoginLimiter,
    tokens::AuthKeys,
};
use crate::{
    fhir::{date::format_instant, error::FhirError},
    store::{
        accounts::{Refresh, UserRow},
        AuditRecord, Store,
    },
};

/// A session (and so a chain of refresh tokens) lasts a shift.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Authentication and the session lifecycle: checks requests, signs in, refreshes and signs
/// out. Holds exactly what those need (the keys, the store, the sign-in throttle, the password
/// hasher, the proxies to believe); created once at start-up and held in `AppState`, so that
/// nothing below the handlers needs the application state.
///
/// It derefs to its [`AuthKeys`]: token work reads `state.auth.verify(…)`, `state.auth.issue(…)`.
pub struct Auth {
    pub(super) keys: AuthKeys,
    pub(super) store: Store,
    limiter: Mutex<LoginLimiter>,
    /// Verifies passwords, a bounded number at once.
    hasher: Hasher,
    /// Peers whose `X-Forwarded-For` is believed.
    trusted_proxies: Vec<IpAddr>,
}

impl std::ops::Deref for Auth {
    type Target = AuthKeys;

    fn deref(&self) -> &AuthKeys {
        &self.keys
    }
}

impl Auth {
    /// Authentication with `keys` against `store`, with the default sign-in limits (see
    /// [`Auth::with_sign_in_limits`]).
    pub fn new(keys: AuthKeys, store: Store) -> Self {
        Self {
            keys,
            store,
            limiter: Mutex::new(LoginLimiter::default()),
            hasher: Hasher::new(password::DEFAULT_CONCURRENCY, password::DEFAULT_WAIT),
            trusted_proxies: Vec::new(),
        }
    }

    /// At most `hash_concurrency` password verifications at once; `X-Forwarded-For` believed
    /// from `trusted_proxies` only.
    pub fn with_sign_in_limits(
        mut self,
        hash_concurrency: usize,
        trusted_proxies: Vec<IpAddr>,
    ) -> Self {
        self.hasher = Hasher::new(hash_concurrency, password::DEFAULT_WAIT);
        self.trusted_proxies = trusted_proxies;
        self
    }

    /// The client's address, for the sign-in throttle and the audit trail: the TCP peer, unless
    /// the peer is one of our proxies; then the nearest `X-Forwarded-For` hop that is not. A
    /// header from anyone else is ignored, since anyone can write one.
    pub fn client_address(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
        match peer {
            Some(peer) => client_ip(&self.trusted_proxies, headers, peer.ip()).to_string(),
            None => "unknown".into(),
        }
    }

    fn limiter(&self) -> MutexGuard<'_, LoginLimiter> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
}

fn audit_auth(
    store: &Store,
    user_id: Option<String>,
    operation: &str,
    outcome: &'static str,
    detail: String,
    source: String,
) {
    store.audit(AuditRecord {
        ts: format_instant(Utc::now()),
        user_id,
        action: "E",
        operation: operation.to_owned(),
        resource_type: None,
        resource_id: None,
        patient_id: None,
        outcome,
        detail: Some(detail),
        source: Some(source),
    });
}

/// A session's fresh access token and the `Set-Cookie` values that carry it and the refresh token.
pub struct IssuedSession {
    pub user: UserInfo,
    pub access_token: String,
    /// The access token's lifetime.
    pub expires_in: Duration,
    pub cookies: Vec<String>,
}

impl Auth {
    /// Issues an access token for session `sid` and the cookies for it and `refresh`.
    pub fn session_cookies(
        &self,
        headers: &HeaderMap,
        user: &UserInfo,
        sid: &str,
        refresh: &str,
    ) -> Result<IssuedSession, FhirError> {
        let keys = &self.keys;
        let access_token = keys.issue(user, sid, Purpose::Access, keys.access_ttl)?;
        let secure = keys.secure_cookies
            || headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
        let cookies = vec![
            set_cookie(ACCESS_COOKIE, &access_token, keys.access_ttl, "Lax", secure),
            set_cookie(REFRESH_COOKIE, refresh, SESSION_TTL, "Strict", secure),
        ];
        Ok(IssuedSession {
            user: user.clone(),
            access_token,
            expires_in: keys.access_ttl,
            cookies,
        })
    }

    /// Signs a user in; used by `/auth/login`, the OAuth token endpoint and the UI's sign-in
    /// form. `address` is the client's, from [`Auth::client_address`].
    ///
    /// The attempt is counted against the throttle before the password is checked, and checked
    /// under the hasher's bound: a flood is refused (429, or 503 while the hasher is at capacity)
    /// before it costs any hashing.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        address: &str,
    ) -> Result<(UserInfo, String, String), FhirError> {
        let audit_failure = |detail: String| {
            audit_auth(
                &self.store,
                None,
                "login-failed",
                "4",
                detail,
                address.to_owned(),
            )
        };
        let reserved = self.limiter().reserve(
            format!("user:{}", username.to_lowercase()),
            format!("addr:{address}"),
        );
        let attempt = match reserved {
            Ok(attempt) => attempt,
            Err(retry_after_secs) => {
                audit_failure(format!("rate-limited: {username:?}"));
                return Err(FhirError::TooManyRequests {
                    message: "too many failed sign-ins; wait before trying again".into(),
                    retry_after_secs,
                });
            }
        };
        let user = match self.check_password(username, password).await {
            Ok(Some(user)) => {
                self.limiter().succeeded(&attempt);
                user
            }
            Ok(None) => {
                audit_failure(format!("bad credentials for {username:?}"));
                return Err(FhirError::Unauthorized("wrong username or password".into()));
            }
            Err(error) => {
                self.limiter().take_back(&attempt);
                audit_failure(format!("not checked ({error}): {username:?}"));
                return Err(error);
            }
        };
        let role = Role::parse(&user.role)
            .ok_or_else(|| FhirError::Internal(format!("unknown role {}", user.role)))?;
        let info = UserInfo {
            id: user.id.clone(),
            name: user.name.clone(),
            role,
        };
        let sid = uuid::Uuid::new_v4().to_string();
        let refresh = random_token();
        let now = Utc::now();
        self.store
            .create_session(
                &sid,
                &user.id,
                &format_instant(now),
                &format_instant(now + SESSION_TTL),
                &token_hash(&refresh),
            )
            .await?;
        audit_auth(
            &self.store,
            Some(user.id.clone()),
            "login",
            "0",
            "signed in".into(),
            address.to_owned(),
        );
        Ok((info, sid, refresh))
    }

    /// The active account `username` names, if `password` is its password. An unknown or
    /// inactive account is verified against a dummy hash, under the same bound, so that neither
    /// timing nor the hasher's capacity tells accounts apart.
    async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<UserRow>, FhirError> {
        let user = self
            .store
            .user_by_username(username)
            .await?
            .filter(|user| user.active);
        let hash = user.as_ref().map_or_else(
            || dummy_hash().to_owned(),
            |user| user.password_hash.clone(),
        );
        let matched = self.hasher.verify(password.to_owned(), hash).await?;
        Ok(user.filter(|_| matched))
    }

    /// Rotates the refresh cookie into a new access token; a replayed refresh token revokes the
    /// whole session. `peer` is the TCP peer, for the audit trail. `end_here` ends a session on
    /// this node at once (its sockets, held polls and cached tokens: `Sessions::end`), which
    /// authentication cannot reach itself.
    pub async fn refresh_session(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        end_here: impl FnOnce(&str, &'static str),
    ) -> Result<IssuedSession, FhirError> {
        let presented = cookie(headers, REFRESH_COOKIE)
            .ok_or_else(|| FhirError::Unauthorized("no refresh token; sign in again".into()))?;
        let next = random_token();
        let now = Utc::now();
        let grace_start =
            now - chrono::Duration::from_std(self.keys.refresh_grace).unwrap_or_default();
        let outcome = self
            .store
            .rotate_refresh(
                &token_hash(presented),
                &token_hash(&next),
                &format_instant(now),
                &format_instant(grace_start),
            )
            .await?;
        match outcome {
            Refresh::Rotated {
                session_id,
                user_id,
            } => {
                let user = self
                    .store
                    .user_by_id(&user_id)
                    .await?
                    .filter(|u| u.active)
                    .ok_or_else(|| FhirError::Unauthorized("the account is not active".into()))?;
                let role = Role::parse(&user.role)
                    .ok_or_else(|| FhirError::Internal("unknown role".into()))?;
                let info = UserInfo {
                    id: user.id,
                    name: user.name,
                    role,
                };
                self.session_cookies(headers, &info, &session_id, &next)
            }
            Refresh::Replayed {
                session_id,
                user_id,
            } => {
                end_here(&session_id, "session revoked");
                let address = self.client_address(headers, peer);
                audit_auth(
                    &self.store,
                    Some(user_id),
                    "session-revoked",
                    "8",
                    "refresh token replayed: session revoked".into(),
                    address,
                );
                Err(FhirError::Unauthorized(
                    "this refresh token was already used; the session has been revoked".into(),
                ))
            }
            Refresh::Invalid => Err(FhirError::Unauthorized(
                "the refresh token is not valid; sign in again".into(),
            )),
        }
    }

    /// Revokes the session a sign-out names: through an access token in the bearer header or in
    /// the session cookie (an expired one still names its session, so sign-out works after a
    /// coffee break too); a cookie must come with our own Origin or Referer, as for every
    /// state-changing request. A request that names no session has nothing to end. Any other
    /// token (a WebSocket or binding token, a forged one, one whose session is another user's)
    /// is refused and ends nothing. `end_here` ends the session on this node, as for
    /// [`Auth::refresh_session`].
    pub async fn end_session(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        end_here: impl FnOnce(&str, &'static str),
    ) -> Result<(), FhirError> {
        let now = format_instant(Utc::now());
        let (token, via_cookie) = match bearer(headers)? {
            Some(token) => (token, false),
            None => match cookie(headers, ACCESS_COOKIE) {
                Some(token) => (token, true),
                None => match cookie(headers, REFRESH_COOKIE) {
                    // The access cookie lapses after its lifetime; the session's refresh cookie
                    // still names the session, and signing out must end it.
                    Some(refresh) => {
                        if !same_origin(headers) {
                            return Err(cross_site());
                        }
                        let found = self
                            .store
                            .session_of_refresh(&token_hash(refresh), &now)
                            .await?;
                        let Some((session_id, user_id)) = found else {
                            return Ok(());
                        };
                        return self
                            .revoke_signed_out(headers, peer, &session_id, user_id, &now, end_here)
                            .await;
                    }
                    None => return Ok(()),
                },
            },
        };
        if via_cookie && !same_origin(headers) {
            return Err(cross_site());
        }
        let claims = self.keys.verify_with(token, Purpose::Access, false)?;
        match self.store.session_user(&claims.sid, &now).await? {
            None => return Ok(()),
            Some(user) if user != claims.sub => {
                return Err(FhirError::Unauthorized(
                    "the token does not belong to its session".into(),
                ))
            }
            Some(_) => {}
        }
        self.revoke_signed_out(headers, peer, &claims.sid, claims.sub, &now, end_here)
            .await
    }

    /// Ends a signed-out session in the database and on every socket of this node (the others
    /// hear of it through the store), and audits it.
    async fn revoke_signed_out(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        session_id: &str,
        user_id: String,
        now: &str,
        end_here: impl FnOnce(&str, &'static str),
    ) -> Result<(), FhirError> {
        self.store
            .revoke_session(session_id, now, "signed out")
            .await?;
        end_here(session_id, "signed out");
        audit_auth(
            &self.store,
            Some(user_id),
            "logout",
            "0",
            "signed out".into(),
            self.client_address(headers, peer),
        );
        Ok(())
    }
}
