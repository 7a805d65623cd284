//! The auth endpoints: `/auth/login`, `/auth/logout`, `/auth/refresh`, `/auth/me`,
//! `/auth/ws-token`, the OAuth token endpoint `/oauth2/token`, and the middleware that vets the
//! client address in front of every route. Handlers: they take the application state and hand
//! the rest exactly what it needs.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::{
    address::FORWARDED_FOR,
    cookies::{cleared_cookies, cross_site, same_origin},
    identity::{AuthUser, Purpose},
    signin::IssuedSession,
    tokens::WS_TOKEN_TTL,
};
use crate::{fhir::error::FhirError, state::AppState};

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
        state
            .auth
            .session_cookies(&headers, &user, &sid, &refresh)?,
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
            state.sessions.end(session_id, reason)
        })
        .await?;
    Ok(session_response(issued))
}

async fn logout(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    state
        .auth
        .end_session(&headers, Some(peer), |session_id, reason| {
            state.sessions.end(session_id, reason)
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
