//! Sign-in: passwords, sessions, tokens and the `AuthUser` extractor.
//!
//! A login creates a session (a shift: 12 hours) and answers with a short-lived JWT access token
//! (15 minutes unless `--access-token-secs` says otherwise) and an opaque refresh token that rotates on every use; browsers get both as
//! HttpOnly cookies, API clients send the access token as `Authorization: Bearer`. A refresh token
//! presented twice (outside a short grace for tabs racing each other) revokes the whole session.
//! Cookie-authenticated state-changing requests must come from our own origin (CSRF).
//! This module authenticates; what a user may see is decided in `access`, never here.

pub mod password;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
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
    store::{
        accounts::{Refresh, UserRow},
        AuditRecord, Store,
    },
};
pub use app::auth::{Role, UserInfo};
use password::{dummy_hash, Hasher};

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

/// Signing keys, the session revocation cache and the token and cookie settings; created once
/// at start-up, inside [`Auth`].
pub struct AuthKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// session id → (its user while active, when checked). Re-checked against the database
    /// after a few seconds, so a revocation on another node is seen quickly; one on this node
    /// at once.
    sessions: Mutex<HashMap<String, (Option<String>, Instant)>>,
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
    fn verify_with(
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

/// Authentication and the session lifecycle: checks requests, signs in, refreshes and signs
/// out. Holds exactly what those need (the keys, the store, the sign-in throttle, the password
/// hasher, the proxies to believe); created once at start-up and held in `AppState`, so that
/// nothing below the handlers needs the application state.
///
/// It derefs to its [`AuthKeys`]: token work reads `state.auth.verify(…)`, `state.auth.issue(…)`.
pub struct Auth {
    keys: AuthKeys,
    store: Store,
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

pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<&str>, FhirError> {
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
        // Browsers send Origin on every POST, PUT and DELETE; a cookie-carrying request with
        // neither header cannot show where it comes from, so it is refused.
        None => false,
    }
}

/// Middleware in front of every route: replaces `X-Forwarded-For` with the one client address
/// [`Auth::client_address`] resolves (the TCP peer unless that is a trusted proxy), so that
/// what reads the header further in (the FHIR layer's audit source) reads a vetted address,
/// never one a client wrote. Resolving again downstream gives the same address.
pub async fn resolve_client(
    State(state): State<AppState>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let client = state.auth.client_address(request.headers(), peer);
    let headers = request.headers_mut();
    headers.remove(FORWARDED_FOR);
    if let (Some(_), Ok(value)) = (peer, HeaderValue::from_str(&client)) {
        headers.insert(FORWARDED_FOR, value);
    }
    next.run(request).await
}

const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client behind `peer`: `peer` itself unless it is a trusted proxy; then, walking
/// `X-Forwarded-For` from the nearest hop back, the first address that is not a trusted proxy
/// (each proxy appends the address it received from). A hop that is not an address ends the
/// walk at the last proxy believed.
fn client_ip(trusted: &[IpAddr], headers: &HeaderMap, peer: IpAddr) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(&client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        let Ok(address) = hop.parse::<IpAddr>() else {
            break;
        };
        client = address.to_canonical();
        if !trusted.contains(&client) {
            break;
        }
    }
    client
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

impl Auth {
    /// Authenticates a request (used by the extractor, the WebSocket upgrade and server
    /// functions).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        method: &Method,
    ) -> Result<AuthUser, FhirError> {
        let (token, via_cookie) = access_token(headers)?;
        let claims = self.keys.verify(token, Purpose::Access)?;
        self.user_from_claims(claims, via_cookie, headers, method)
            .await
    }


    /// Authenticates a WebSocket upgrade: a `?token=` (WebSocket purpose), a bearer header, or
    /// the session cookie (then the page's Origin must be ours: no cross-site socket hijacking).
    /// Returns the user and when the socket must close (unix seconds): the access token's
    /// expiry, or for a `?token=` one access-token lifetime after it was issued, since that
    /// token only opens sockets.
    pub async fn authenticate_socket(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<(AuthUser, i64), FhirError> {
        if let Some(token) = query_token {
            let claims = self.keys.verify(token, Purpose::Ws)?;
            let expires = claims.iat + self.keys.access_ttl.as_secs() as i64;
            let user = self
                .user_from_claims(claims, false, headers, &Method::GET)
                .await?;
            return Ok((user, expires));
        }
        let (token, via_cookie) = access_token(headers)?;
        if via_cookie && headers.contains_key(header::ORIGIN) && !same_origin(headers) {
            return Err(FhirError::Forbidden(
                "cross-site WebSocket refused (Origin does not match)".into(),
            ));
        }
        let claims = self.keys.verify(token, Purpose::Access)?;
        let expires = claims.exp;
        let user = self
            .user_from_claims(claims, via_cookie, headers, &Method::GET)
            .await?;
        Ok((user, expires))
    }

    /// Turns verified claims into a user, checking the session and (for cookies) the origin.
    pub async fn user_from_claims(
        &self,
        claims: Claims,
        via_cookie: bool,
        headers: &HeaderMap,
        method: &Method,
    ) -> Result<AuthUser, FhirError> {
        if !self
            .keys
            .session_active(&self.store, &claims.sid, &claims.sub)
            .await?
        {
            return Err(FhirError::Unauthorized(
                "the session has ended; sign in again".into(),
            ));
        }
        if via_cookie
            && !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
            && !same_origin(headers)
        {
            return Err(cross_site());
        }
        let user = self
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
}

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        state.auth.authenticate(&parts.headers, &parts.method).await
    }
}

/// Failed-login counters per account and per address, over a sliding window.
///
/// An attempt is counted *before* its password is checked ([`LoginLimiter::reserve`]), as if it
/// had failed, and the count is taken back only once it is known not to be a failure. So
/// concurrent guesses cannot overtake the count: however many arrive at once, no more than the
/// limit are ever checked.
#[derive(Default)]
struct LoginLimiter {
    failures: HashMap<String, Vec<Instant>>,
}

const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_FAILURES_PER_ACCOUNT: usize = 5;
const MAX_FAILURES_PER_ADDRESS: usize = 20;

/// A sign-in attempt counted against its account and address until it is settled.
struct Attempt {
    account: String,
    address: String,
    at: Instant,
}

impl LoginLimiter {
    /// Counts an attempt for `account` from `address`, or answers the seconds to wait when
    /// either is at its limit (then nothing is counted).
    fn reserve(&mut self, account: String, address: String) -> Result<Attempt, u64> {
        if let Some(wait) = self
            .blocked(&account, MAX_FAILURES_PER_ACCOUNT)
            .or_else(|| self.blocked(&address, MAX_FAILURES_PER_ADDRESS))
        {
            return Err(wait);
        }
        let at = Instant::now();
        self.record(&account, at);
        self.record(&address, at);
        Ok(Attempt {
            account,
            address,
            at,
        })
    }

    /// The password was right: the account's failures are forgiven, and the attempt does not
    /// count against the address.
    fn succeeded(&mut self, attempt: &Attempt) {
        self.failures.remove(&attempt.account);
        self.forget(&attempt.address, attempt.at);
    }

    /// The password was never checked (the hasher was busy, the database failed): the attempt
    /// counts against neither.
    fn take_back(&mut self, attempt: &Attempt) {
        self.forget(&attempt.account, attempt.at);
        self.forget(&attempt.address, attempt.at);
    }

    /// Seconds to wait if `key` is at `limit`.
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

    fn record(&mut self, key: &str, at: Instant) {
        if self.failures.len() > 100_000 {
            self.failures
                .retain(|_, times| times.iter().any(|at| at.elapsed() < LOGIN_WINDOW));
        }
        self.failures.entry(key.to_owned()).or_default().push(at);
    }

    fn forget(&mut self, key: &str, at: Instant) {
        if let Some(times) = self.failures.get_mut(key) {
            if let Some(index) = times.iter().position(|time| *time == at) {
                times.remove(index);
            }
        }
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

impl Auth {
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
    /// this node at once (its sockets, held polls and cached tokens: `sessions::end`), which
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

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, FhirError> {
    let request: LoginRequest = serde_json::from_slice(&body).map_err(|_| {
        FhirError::BadRequest("send {\"username\": \"…\", \"password\": \"…\"}".into())
    })?;
    let address = state.auth.client_address(&headers, Some(peer));
    let (user, sid, refresh) = state
        .auth
        .sign_in(&request.username, &request.password, &address)
        .await?;
    Ok(session_response(
        state.auth.session_cookies(&headers, &user, &sid, &refresh)?,
    ))
}

async fn refresh(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    if !same_origin(&headers) {
        return Err(cross_site());
    }
    let issued = state
        .auth
        .refresh_session(&headers, Some(peer), |session_id, reason| {
            crate::sessions::end(&state, session_id, reason)
        })
        .await?;
    Ok(session_response(issued))
}

fn cross_site() -> FhirError {
    FhirError::Forbidden("cross-site request refused (Origin or Referer must be ours)".into())
}

async fn logout(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    state
        .auth
        .end_session(&headers, Some(peer), |session_id, reason| {
            crate::sessions::end(&state, session_id, reason)
        })
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    append_cookies(&mut response, &cleared_cookies());
    Ok(response)
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
    let address = state.auth.client_address(&headers, Some(peer));
    let (user, sid, _refresh) = match state.auth.sign_in(&username, &password, &address).await {
        Ok(signed_in) => signed_in,
        Err(error @ (FhirError::TooManyRequests { .. } | FhirError::Unavailable { .. })) => {
            let (status, code) = match error {
                FhirError::TooManyRequests { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, "invalid_grant")
                }
                _ => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
            };
            let mut response = oauth_error(status, code, &error.to_string());
            if let Some(seconds) = error.retry_after_secs() {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            return response;
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
    fn attempts_count_before_they_are_checked_and_settle_after() {
        let mut limiter = LoginLimiter::default();
        let reserve = |limiter: &mut LoginLimiter, address: &str| {
            limiter.reserve("user:a".into(), format!("addr:{address}"))
        };
        // As many attempts in flight as the limit, none settled yet: the next is refused.
        let pending: Vec<Attempt> = (0..MAX_FAILURES_PER_ACCOUNT)
            .map(|i| reserve(&mut limiter, &i.to_string()).unwrap())
            .collect();
        assert!(reserve(&mut limiter, "x").is_err());
        // One never checked is taken back and frees its place; one that succeeds forgives all.
        limiter.take_back(&pending[0]);
        let retried = reserve(&mut limiter, "x").unwrap();
        assert!(reserve(&mut limiter, "y").is_err());
        limiter.succeeded(&retried);
        assert!(reserve(&mut limiter, "y").is_ok());
        assert!(limiter.failures["addr:x"].is_empty());
    }

    #[test]
    fn forwarded_addresses_are_believed_from_trusted_proxies_only() {
        let proxy: IpAddr = "192.0.2.10".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.1, 203.0.113.7, 192.0.2.10"),
        );
        let stranger: IpAddr = "203.0.113.99".parse().unwrap();
        assert_eq!(client_ip(&[proxy], &headers, stranger), stranger);
        assert_eq!(
            client_ip(&[], &headers, proxy),
            proxy,
            "no proxy configured: the header is ignored"
        );
        // Behind our proxy (which forwarded itself too), the nearest hop not ours is the client;
        // what the client wrote further left is not believed.
        assert_eq!(
            client_ip(&[proxy], &headers, proxy),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        headers.insert("x-forwarded-for", HeaderValue::from_static("nonsense"));
        assert_eq!(client_ip(&[proxy], &headers, proxy), proxy);
        let mapped: IpAddr = "::ffff:192.0.2.10".parse().unwrap();
        assert_eq!(client_ip(&[proxy], &HeaderMap::new(), mapped), proxy);
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
}
