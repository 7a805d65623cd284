//! Authenticating a request: the access token it carries (bearer header or session cookie, or a
//! WebSocket `?token=`), verified, its session still active, its account still active, and a
//! cookie-authenticated request's origin ours.

use axum::http::{header, HeaderMap, Method};

use super::{
    cookies::{bearer, cookie, cross_site, same_origin, ACCESS_COOKIE},
    identity::{AuthUser, Purpose, Role},
    signin::Auth,
    tokens::Claims,
};
use crate::fhir::error::FhirError;

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
            .keys
            .account(&self.store, &claims.sub)
            .await?
            .filter(|user| user.active)
            .ok_or_else(|| FhirError::Unauthorized("the account is not active".into()))?;
        let role = Role::parse(&user.role)
            .ok_or_else(|| FhirError::Internal(format!("unknown role {}", user.role)))?;
        Ok(AuthUser {
            id: user.id.clone(),
            name: user.name.clone(),
            role,
            session_id: claims.sid,
            practitioner_id: user.practitioner_id.clone(),
            units: user.units.clone(),
            via_cookie,
        })
    }
}
