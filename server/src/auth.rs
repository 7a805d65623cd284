//! Sign-in: passwords, sessions, tokens and the `AuthUser` extractor.
//!
//! A login creates a session (a shift: 12 hours) and answers with a short-lived JWT access token
//! (15 minutes unless `--access-token-secs` says otherwise) and an opaque refresh token that rotates on every use; browsers get both as
//! HttpOnly cookies, API clients send the access token as `Authorization: Bearer`. A refresh token
//! presented twice (outside a short grace for tabs racing each other) revokes the whole session.
//! Cookie-authenticated state-changing requests must come from our own origin (CSRF).
//! This module authenticates; what a user may see is decided in `access`, never here.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    fhir::{date::format_instant, error::FhirError},
    state::AppState,
    store::{accounts::Refresh, AuditRecord, Store},
};
pub use app::auth::{Role, UserInfo};

/// WebSocket `?token=` tokens live this long: enough to open a socket, useless when stolen later.
pub const WS_TOKEN_TTL: Duration = Duration::from_secs(120);
/// A session (and so a chain of refresh tokens) lasts a shift.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

pub const ACCESS_COOKIE: &str = "rounds_access";
pub const REFRESH_COOKIE: &str = "rounds_refresh";
const ISSUER: &str = "rounds";

/// Token purposes; a token for one purpose is refused for any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Access,
    Ws,
    /// Binding one FHIR Subscription on `/ws/subscriptions-r4`.
    Bind,
}

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

/// Signing keys and the session revocation cache; created once at start-up.
pub struct AuthKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// session id → (active, when checked). Re-checked against the database after a few seconds,
    /// so a revocation on another node is seen quickly; one on this node at once.
    sessions: Mutex<HashMap<String, (bool, Instant)>>,
    limiter: Mutex<LoginLimiter>,
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
            limiter: Mutex::new(LoginLimiter::default()),
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

    /// Whether session `sid` is still active (cached for a few seconds).
    pub async fn session_is_active(&self, store: &Store, sid: &str) -> bool {
        self.session_active(store, sid).await.unwrap_or(false)
    }

    /// Verifies signature, algorithm (HS256 only: `alg: none` and others are refused), issuer,
    /// expiry (no leeway) and purpose.
    pub fn verify(&self, token: &str, purpose: Purpose) -> Result<Claims, FhirError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
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
            cache.insert(sid.to_owned(), (false, Instant::now()));
        }
    }

    /// Whether the session is still active (cached for a few seconds; a revocation on this node
    /// is seen at once).
    pub async fn session_active(&self, store: &Store, sid: &str) -> Result<bool, FhirError> {
        if let Ok(cache) = self.sessions.lock() {
            if let Some((active, at)) = cache.get(sid) {
                if at.elapsed() < SESSION_CACHE_TTL || !active {
                    return Ok(*active);
                }
            }
        }
        let active = store
            .session_active(sid, &format_instant(Utc::now()))
            .await?;
        if let Ok(mut cache) = self.sessions.lock() {
            if cache.len() > 100_000 {
                cache.retain(|_, (_, at)| at.elapsed() < SESSION_CACHE_TTL);
            }
            cache.insert(sid.to_owned(), (active, Instant::now()));
        }
        Ok(active)
    }
}

/// Hashes a password with Argon2id (OWASP parameters: 19 MiB, 2 passes), off the async threads.
pub async fn hash_password(password: String) -> Result<String, FhirError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| FhirError::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| FhirError::Internal(format!("hashing task failed: {e}")))?
}

/// Verifies a password against a stored hash, off the async threads.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

fn argon2() -> Argon2<'static> {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// A signed-in user, from `Authorization: Bearer` or the session cookie.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub session_id: String,
    /// The Practitioner resource this account acts as.
    pub practitioner_id: Option<String>,
    /// Unit (Location) ids the user works on.
    pub units: Vec<String>,
    /// Whether the request was authenticated by cookie (and so needs CSRF protection).
    pub via_cookie: bool,
}

impl AuthUser {
    pub fn info(&self) -> UserInfo {
        UserInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            role: self.role,
        }
    }
}

/// Reads one cookie from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, FhirError> {
    match headers.get(header::AUTHORIZATION) {
        None => Ok(None),
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                FhirError::Unauthorized("the Authorization header is malformed".into())
            })?;
            match text.split_once(' ') {
                Some((scheme, token))
                    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
                {
                    Ok(Some(token.trim()))
                }
                _ => Err(FhirError::Unauthorized(
                    "the Authorization header must be `Bearer <token>`".into(),
                )),
            }
        }
    }
}

/// Same-origin check for cookie-authenticated state-changing requests.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|h| h.to_str().ok());
    match origin {
        Some(origin) => {
            let rest = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .unwrap_or("");
            rest.split('/').next() == Some(host)
        }
        // Browsers send Origin on every cross-site POST; a request without it and without a
        // Referer is not from a page, so SameSite already keeps the cookie away from it.
        None => headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|site| site == "same-origin" || site == "none"),
    }
}

/// The access token a request carries: the bearer header first, else the session cookie (then
/// `true`: the request needs CSRF protection).
fn access_token(headers: &HeaderMap) -> Result<(&str, bool), FhirError> {
    match bearer(headers)? {
        Some(token) => Ok((token, false)),
        None => cookie(headers, ACCESS_COOKIE)
            .map(|token| (token, true))
            .ok_or_else(|| {
                FhirError::Unauthorized("sign in first: no access token was sent".into())
            }),
    }
}

/// Authenticates a request (used by the extractor, the WebSocket upgrade and server functions).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<AuthUser, FhirError> {
    let (token, via_cookie) = access_token(headers)?;
    let claims = state.auth.verify(token, Purpose::Access)?;
    user_from_claims(state, claims, via_cookie, headers, method).await
}

/// Authenticates a WebSocket upgrade: a `?token=` (WebSocket purpose), a bearer header, or the
/// session cookie (then the page's Origin must be ours: no cross-site socket hijacking). Returns
/// the user and when the socket must close (unix seconds): the access token's expiry, or for a
/// `?token=` one access-token lifetime after it was issued, since that token only opens sockets.
pub async fn authenticate_socket(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<(AuthUser, i64), FhirError> {
    if let Some(token) = query_token {
        let claims = state.auth.verify(token, Purpose::Ws)?;
        let expires = claims.iat + state.auth.access_ttl.as_secs() as i64;
        let user = user_from_claims(state, claims, false, headers, &Method::GET).await?;
        return Ok((user, expires));
    }
    let (token, via_cookie) = access_token(headers)?;
    if via_cookie && headers.contains_key(header::ORIGIN) && !same_origin(headers) {
        return Err(FhirError::Forbidden(
            "cross-site WebSocket refused (Origin does not match)".into(),
        ));
    }
    let claims = state.auth.verify(token, Purpose::Access)?;
    let expires = claims.exp;
    let user = user_from_claims(state, claims, via_cookie, headers, &Method::GET).await?;
    Ok((user, expires))
}

/// Turns verified claims into a user, checking the session and (for cookies) the origin.
pub async fn user_from_claims(
    state: &AppState,
    claims: Claims,
    via_cookie: bool,
    headers: &HeaderMap,
    method: &Method,
) -> Result<AuthUser, FhirError> {
    if !state.auth.session_active(&state.store, &claims.sid).await? {
        return Err(FhirError::Unauthorized(
            "the session has ended; sign in again".into(),
        ));
    }
    if via_cookie
        && !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        && !same_origin(headers)
    {
        return Err(FhirError::Forbidden(
            "cross-site request refused (Origin does not match)".into(),
        ));
    }
    let user = state
        .store
        .user_by_id(&claims.sub)
        .await?
        .filter(|user| user.active)
        .ok_or_else(|| FhirError::Unauthorized("the account is not active".into()))?;
    let role = Role::parse(&user.role)
        .ok_or_else(|| FhirError::Internal(format!("unknown role {}", user.role)))?;
    Ok(AuthUser {
        id: user.id,
        name: user.name,
        role,
        session_id: claims.sid,
        practitioner_id: user.practitioner_id,
        units: user.units,
        via_cookie,
    })
}

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        authenticate(&state, &parts.headers, &parts.method).await
    }
}

/// Failed-login counters per account and per address, over a sliding window.
#[derive(Default)]
struct LoginLimiter {
    failures: HashMap<String, Vec<Instant>>,
}

const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_FAILURES_PER_ACCOUNT: usize = 5;
const MAX_FAILURES_PER_ADDRESS: usize = 20;

impl LoginLimiter {
    /// Seconds to wait if `key` is over `limit`.
    fn blocked(&mut self, key: &str, limit: usize) -> Option<u64> {
        let failures = self.failures.get_mut(key)?;
        failures.retain(|at| at.elapsed() < LOGIN_WINDOW);
        if failures.len() >= limit {
            let oldest = failures.first()?;
            Some(
                LOGIN_WINDOW
                    .saturating_sub(oldest.elapsed())
                    .as_secs()
                    .max(1),
            )
        } else {
            None
        }
    }

    fn fail(&mut self, key: String) {
        if self.failures.len() > 100_000 {
            self.failures
                .retain(|_, times| times.iter().any(|at| at.elapsed() < LOGIN_WINDOW));
        }
        self.failures.entry(key).or_default().push(Instant::now());
    }

    fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

/// The auth routes, at `/auth`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/refresh", post(refresh))
        .route("/me", get(me))
        .route("/ws-token", post(ws_token))
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
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

fn set_cookie(name: &str, value: &str, max_age: Duration, same_site: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={}{secure}",
        max_age.as_secs()
    )
}

fn client_address(headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    peer.map(|p| p.ip().to_string())
        .or_else(|| {
            headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".into())
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

/// Issues an access token for session `sid` and the cookies for it and `refresh`.
pub fn session_cookies(
    state: &AppState,
    headers: &HeaderMap,
    user: &UserInfo,
    sid: &str,
    refresh: &str,
) -> Result<IssuedSession, FhirError> {
    let access_token = state
        .auth
        .issue(user, sid, Purpose::Access, state.auth.access_ttl)?;
    let secure = state.auth.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let cookies = vec![
        set_cookie(
            ACCESS_COOKIE,
            &access_token,
            state.auth.access_ttl,
            "Lax",
            secure,
        ),
        set_cookie(REFRESH_COOKIE, refresh, SESSION_TTL, "Strict", secure),
    ];
    Ok(IssuedSession {
        user: user.clone(),
        access_token,
        expires_in: state.auth.access_ttl,
        cookies,
    })
}

/// The `Set-Cookie` values that remove both session cookies.
pub fn cleared_cookies() -> Vec<String> {
    [ACCESS_COOKIE, REFRESH_COOKIE]
        .iter()
        .map(|name| format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"))
        .collect()
}

fn session_response(issued: IssuedSession) -> Response {
    let body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in.as_secs(),
        "user": issued.user,
    });
    let mut response = (StatusCode::OK, Json(body)).into_response();
    append_cookies(&mut response, &issued.cookies);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn append_cookies(response: &mut Response, cookies: &[String]) {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// Signs a user in; used by `/auth/login` and by the OAuth token endpoint.
pub async fn sign_in(
    state: &AppState,
    username: &str,
    password: &str,
    address: &str,
) -> Result<(UserInfo, String, String), FhirError> {
    let account_key = format!("user:{}", username.to_lowercase());
    let address_key = format!("addr:{address}");
    if let Ok(mut limiter) = state.auth.limiter.lock() {
        let wait = limiter
            .blocked(&account_key, MAX_FAILURES_PER_ACCOUNT)
            .or_else(|| limiter.blocked(&address_key, MAX_FAILURES_PER_ADDRESS));
        if let Some(retry_after_secs) = wait {
            drop(limiter);
            audit_auth(
                &state.store,
                None,
                "login-failed",
                "4",
                format!("rate-limited: {username:?}"),
                address.to_owned(),
            );
            return Err(FhirError::TooManyRequests {
                message: "too many failed sign-ins; wait before trying again".into(),
                retry_after_secs,
            });
        }
    }
    let user = state.store.user_by_username(username).await?;
    // Verify against a dummy hash when the user is unknown, so timing does not reveal accounts.
    let (hash, known) = match &user {
        Some(user) if user.active => (user.password_hash.clone(), true),
        _ => (dummy_hash().to_owned(), false),
    };
    let ok = verify_password(password.to_owned(), hash).await && known;
    let Some(user) = user.filter(|_| ok) else {
        if let Ok(mut limiter) = state.auth.limiter.lock() {
            limiter.fail(account_key);
            limiter.fail(address_key);
        }
        audit_auth(
            &state.store,
            None,
            "login-failed",
            "4",
            format!("bad credentials for {username:?}"),
            address.to_owned(),
        );
        return Err(FhirError::Unauthorized("wrong username or password".into()));
    };
    if let Ok(mut limiter) = state.auth.limiter.lock() {
        limiter.clear(&account_key);
    }
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
    state
        .store
        .create_session(
            &sid,
            &user.id,
            &format_instant(now),
            &format_instant(now + SESSION_TTL),
            &token_hash(&refresh),
        )
        .await?;
    audit_auth(
        &state.store,
        Some(user.id.clone()),
        "login",
        "0",
        "signed in".into(),
        address.to_owned(),
    );
    Ok((info, sid, refresh))
}

fn dummy_hash() -> &'static str {
    // A valid Argon2id hash of a random string, same parameters as real ones.
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Jm0cA8q3cJ8hEPnWBhpmnB3Z1Pb3Wd5q3d0CKkM5QkI"
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, FhirError> {
    let request: LoginRequest = serde_json::from_slice(&body).map_err(|_| {
        FhirError::BadRequest("send {\"username\": \"…\", \"password\": \"…\"}".into())
    })?;
    let address = client_address(&headers, Some(peer));
    let (user, sid, refresh) =
        sign_in(&state, &request.username, &request.password, &address).await?;
    Ok(session_response(session_cookies(
        &state, &headers, &user, &sid, &refresh,
    )?))
}

/// Rotates the refresh cookie into a new access token; a replayed refresh token revokes the
/// whole session.
pub async fn refresh_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<IssuedSession, FhirError> {
    let presented = cookie(headers, REFRESH_COOKIE)
        .ok_or_else(|| FhirError::Unauthorized("no refresh token; sign in again".into()))?;
    let next = random_token();
    let now = Utc::now();
    let grace_start =
        now - chrono::Duration::from_std(state.auth.refresh_grace).unwrap_or_default();
    let outcome = state
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
            let user = state
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
            session_cookies(state, headers, &info, &session_id, &next)
        }
        Refresh::Replayed {
            session_id,
            user_id,
        } => {
            state.auth.forget_session(&session_id);
            state.hub.close_session(
                &session_id,
                app::wire::CLOSE_UNAUTHORIZED,
                "session revoked",
            );
            let address = client_address(headers, None);
            audit_auth(
                &state.store,
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

async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, FhirError> {
    if !same_origin(&headers) {
        return Err(FhirError::Forbidden(
            "cross-site request refused (Origin does not match)".into(),
        ));
    }
    Ok(session_response(refresh_session(&state, &headers).await?))
}

/// Revokes the session the request authenticates with, if any (an expired access token still
/// names its session, so sign-out works after a coffee break too).
pub async fn end_session(state: &AppState, headers: &HeaderMap) {
    let token = bearer(headers)
        .ok()
        .flatten()
        .or_else(|| cookie(headers, ACCESS_COOKIE));
    let Some(token) = token else { return };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.set_issuer(&[ISSUER]);
    let Ok(data) = jsonwebtoken::decode::<Claims>(token, &state.auth.decoding, &validation) else {
        return;
    };
    let sid = data.claims.sid;
    if let Err(error) = state
        .store
        .revoke_session(&sid, &format_instant(Utc::now()), "signed out")
        .await
    {
        tracing::warn!(%error, "could not revoke a session at sign-out");
    }
    state.auth.forget_session(&sid);
    state
        .hub
        .close_session(&sid, app::wire::CLOSE_UNAUTHORIZED, "signed out");
    audit_auth(
        &state.store,
        Some(data.claims.sub),
        "logout",
        "0",
        "signed out".into(),
        client_address(headers, None),
    );
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    end_session(&state, &headers).await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    append_cookies(&mut response, &cleared_cookies());
    response
}

/// Who is signed in. `profile` is the user's Practitioner resource, the shape `@medplum/core`
/// reads after signing in.
async fn me(State(state): State<AppState>, user: AuthUser) -> Json<serde_json::Value> {
    let profile = match &user.practitioner_id {
        Some(id) => match state.store.read("Practitioner", id).await {
            Ok(crate::store::ReadOutcome::Found(stored)) => {
                serde_json::from_str(&stored.json).unwrap_or(serde_json::Value::Null)
            }
            _ => json!({"resourceType": "Practitioner", "id": id}),
        },
        None => {
            json!({"resourceType": "Practitioner", "id": user.id, "name": [{"text": user.name}]})
        }
    };
    Json(json!({
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "practitioner_id": user.practitioner_id,
        "units": user.units,
        "profile": profile,
    }))
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `POST /oauth2/token` (form-encoded) for API clients such as `@medplum/core`:
/// `client_credentials` (client id = a Rounds username, secret = its password, in the form or
/// HTTP Basic) and `password`. The same sign-in as `/auth/login`: throttled and audited.
pub async fn oauth_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: String,
) -> Response {
    let oauth_error = |status: StatusCode, error: &str, description: &str| {
        (
            status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    let Ok(request) = serde_urlencoded_form(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected a form-encoded body with grant_type",
        );
    };
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(u, p)| (u.to_owned(), p.to_owned()))
        });
    let (username, password, client_id) = match request.grant_type.as_str() {
        "client_credentials" => match (
            request.client_id.clone(),
            request.client_secret.clone(),
            basic,
        ) {
            (Some(id), Some(secret), _) => (id.clone(), secret, Some(id)),
            (_, _, Some((id, secret))) => (id.clone(), secret, Some(id)),
            _ => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "client_id and client_secret are required",
                )
            }
        },
        "password" => match (request.username.clone(), request.password.clone()) {
            (Some(user), Some(password)) => (user, password, request.client_id.clone()),
            _ => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "username and password are required",
                )
            }
        },
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "supported: client_credentials, password",
            )
        }
    };
    let address = client_address(&headers, Some(peer));
    let (user, sid, _refresh) = match sign_in(&state, &username, &password, &address).await {
        Ok(signed_in) => signed_in,
        Err(FhirError::TooManyRequests { message, .. }) => {
            return oauth_error(StatusCode::TOO_MANY_REQUESTS, "invalid_grant", &message)
        }
        Err(_) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "wrong credentials",
            )
        }
    };
    let token = match client_id {
        Some(client) => state.auth.issue_for_client(&user, &sid, &client),
        None => state
            .auth
            .issue(&user, &sid, Purpose::Access, state.auth.access_ttl),
    };
    let Ok(token) = token else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "could not sign a token",
        );
    };
    let practitioner = state
        .store
        .user_by_id(&user.id)
        .await
        .ok()
        .flatten()
        .and_then(|row| row.practitioner_id);
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": state.auth.access_ttl.as_secs(),
            "scope": "openid",
            "profile": {"reference": format!("Practitioner/{}", practitioner.unwrap_or(user.id.clone()))},
        })),
    )
        .into_response()
}

fn serde_urlencoded_form(body: &str) -> Result<TokenRequest, ()> {
    let mut map = serde_json::Map::new();
    for (key, value) in form_urlencoded::parse(body.as_bytes()) {
        map.insert(
            key.into_owned(),
            serde_json::Value::String(value.into_owned()),
        );
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|_| ())
}

/// A single-purpose token for `GET /ws?token=`, valid for two minutes.
async fn ws_token(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<serde_json::Value>, FhirError> {
    let token = state
        .auth
        .issue(&user.info(), &user.session_id, Purpose::Ws, WS_TOKEN_TTL)?;
    Ok(Json(
        json!({"token": token, "expires_in": WS_TOKEN_TTL.as_secs()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_after_the_limit_and_clears_on_success() {
        let mut limiter = LoginLimiter::default();
        for _ in 0..MAX_FAILURES_PER_ACCOUNT {
            assert!(limiter
                .blocked("user:a", MAX_FAILURES_PER_ACCOUNT)
                .is_none());
            limiter.fail("user:a".into());
        }
        assert!(limiter
            .blocked("user:a", MAX_FAILURES_PER_ACCOUNT)
            .is_some());
        limiter.clear("user:a");
        assert!(limiter
            .blocked("user:a", MAX_FAILURES_PER_ACCOUNT)
            .is_none());
    }

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

    #[test]
    fn cookies_are_parsed_from_any_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; rounds_access=tok"),
        );
        assert_eq!(cookie(&headers, ACCESS_COOKIE), Some("tok"));
        assert_eq!(cookie(&headers, "b"), None);
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(dummy_hash()).is_ok());
    }
}
