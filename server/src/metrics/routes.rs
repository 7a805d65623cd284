//! The operator's endpoints: the metrics at `GET /metrics`, and one user's sockets at
//! `GET /admin/sockets?user=`.
//!
//! Both are for operators: an admin (bearer or session) or a scraper presenting
//! `ROUNDS_METRICS_TOKEN`. Handlers: they take the application state and hand the rest exactly
//! what it needs.

use axum::{
    extract::{Query, State},
    http::{header, HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{
    auth::{cookies::bearer, identity::Role, signin::Auth},
    fhir::error::FhirError,
    state::AppState,
};

/// `GET /metrics`, for operators.
pub async fn handler(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    authorize_operator(state.config.metrics_token.as_deref(), &state.auth, &headers).await?;
    state.hub.sample_gauges(&state.metrics);
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct SocketsQuery {
    user: Option<String>,
}

/// `GET /admin/sockets?user=ID` → `{"user", "sockets"}`: how many `/ws` sockets that user has
/// open on this node now (the metrics only count users, so as not to name them).
pub async fn sockets_of_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SocketsQuery>,
) -> Result<Json<serde_json::Value>, FhirError> {
    authorize_operator(state.config.metrics_token.as_deref(), &state.auth, &headers).await?;
    let user = query
        .user
        .filter(|user| !user.is_empty())
        .ok_or_else(|| FhirError::BadRequest("name the user: ?user=ID".into()))?;
    let sockets = state.hub.sockets_of(&user);
    Ok(Json(serde_json::json!({"user": user, "sockets": sockets})))
}

/// Admits the operator's scraper (`Authorization: Bearer` with `ROUNDS_METRICS_TOKEN`) and
/// admins (bearer or session cookie); anyone else is refused (401 signed out, 403 signed in).
async fn authorize_operator(
    metrics_token: Option<&str>,
    auth: &Auth,
    headers: &HeaderMap,
) -> Result<(), FhirError> {
    if let (Some(expected), Ok(Some(presented))) = (metrics_token, bearer(headers)) {
        // Digests compared, so the comparison's time says nothing about the token.
        if Sha256::digest(presented.as_bytes()) == Sha256::digest(expected.as_bytes()) {
            return Ok(());
        }
    }
    let user = auth.authenticate(headers, &Method::GET).await?;
    if user.role != Role::Admin {
        return Err(FhirError::Forbidden(
            "metrics are for operators: an admin or the metrics token".into(),
        ));
    }
    Ok(())
}
