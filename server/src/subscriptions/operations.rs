//! The Backport IG's operations on Subscription: `$get-ws-binding-token`, `$events` and
//! `$status`, by GET and by POST.

use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::get,
    Router,
};
use chrono::Utc;
use serde_json::{json, Value};

use super::{
    notify::{bundle, focus_entry, status_resource, stored_status, Said},
    registry::{Numbering, Subscriptions},
    resource::{may_use, BIND_TOKEN_TTL},
    topics::{self, Content},
};
use crate::{
    access,
    auth::identity::AuthUser,
    fhir::{
        date::format_instant,
        error::FhirError,
        format::{base_url, fhir_json},
    },
    state::AppState,
    store::{EventRecord, ReadOutcome, Store},
};

/// Notifications per `$events` answer at most.
const MAX_EVENTS_PAGE: usize = 1000;

/// The Backport IG's operations on Subscription, each by GET (parameters in the query) and by
/// POST (a `Parameters` body, or none): `$get-ws-binding-token`, `$events` and `$status` on an
/// instance, and `$status` on the type (`?id=a&id=b`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/Subscription/{id}/$get-ws-binding-token",
            get(binding_token).post(binding_token),
        )
        .route("/Subscription/{id}/$events", get(events).post(events))
        .route(
            "/Subscription/{id}/$status",
            get(status_one).post(status_one),
        )
        .route("/Subscription/$status", get(status_many).post(status_many))
}

/// Largest `Parameters` body an operation reads.
const MAX_OPERATION_BODY: usize = 64 * 1024;

/// An operation's input: the query's parameters, then those of a `Parameters` body (POST), as
/// (name, value) text pairs.
async fn operation_input(
    query: Option<String>,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Vec<(String, String)>, FhirError> {
    let mut input: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let bytes = axum::body::to_bytes(body, MAX_OPERATION_BODY)
        .await
        .map_err(|_| {
            FhirError::PayloadTooLarge(format!(
                "an operation's Parameters may be at most {MAX_OPERATION_BODY} bytes"
            ))
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(input);
    }
    let media = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/fhir+json" && media != "application/json" {
        return Err(FhirError::UnsupportedMediaType(
            "send the operation's Parameters as application/fhir+json".into(),
        ));
    }
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| FhirError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    if body["resourceType"] != "Parameters" {
        return Err(FhirError::BadRequest(
            "the body of an operation is a Parameters resource".into(),
        ));
    }
    for parameter in body["parameter"].as_array().into_iter().flatten() {
        let Some(name) = parameter["name"].as_str() else {
            return Err(FhirError::BadRequest("every parameter needs a name".into()));
        };
        let value = parameter.as_object().and_then(|p| {
            p.iter()
                .find(|(key, _)| key.starts_with("value"))
                .map(|(_, v)| v)
        });
        let text = match value {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => {
                return Err(FhirError::BadRequest(format!(
                    "parameter {name} needs a primitive value[x]"
                )))
            }
        };
        input.push((name.to_owned(), text));
    }
    Ok(input)
}

/// The stored Subscription `id`, if `user` may use it.
async fn owned(store: &Store, user: &AuthUser, id: &str) -> Result<Value, FhirError> {
    let missing = || FhirError::NotFound(format!("Subscription/{id} is not known"));
    match store.read("Subscription", id).await? {
        ReadOutcome::Found(stored) => {
            let resource: Value = serde_json::from_str(&stored.json).unwrap_or(Value::Null);
            if may_use(user, &resource) {
                Ok(resource)
            } else {
                Err(missing())
            }
        }
        ReadOutcome::Gone(_) => Err(FhirError::Gone(format!("Subscription/{id} was deleted"))),
        ReadOutcome::NotFound => Err(missing()),
    }
}

/// Refuses input parameters other than `allowed`.
fn only(input: &[(String, String)], operation: &str, allowed: &[&str]) -> Result<(), FhirError> {
    match input.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((other, _)) => Err(FhirError::BadRequest(format!(
            "{other} is not a parameter of {operation} ({})",
            if allowed.is_empty() {
                "it takes none".to_owned()
            } else {
                allowed.join(", ")
            }
        ))),
        None => Ok(()),
    }
}

async fn binding_token(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: axum::body::Body,
) -> Result<Response, FhirError> {
    let input = operation_input(query, &headers, body).await?;
    only(&input, "$get-ws-binding-token", &["id"])?;
    if let Some((_, other)) = input.iter().find(|(k, v)| k == "id" && *v != id) {
        return Err(FhirError::BadRequest(format!(
            "a token is for this Subscription only, not {other}"
        )));
    }
    let resource = owned(&state.store, &user, &id).await?;
    if resource["status"] != "active" {
        return Err(FhirError::Unprocessable(format!(
            "Subscription/{id} is not active"
        )));
    }
    let token = state
        .auth
        .issue_bind(&user.info(), &user.session_id, &id, BIND_TOKEN_TTL)?;
    let expiration = Utc::now() + chrono::Duration::from_std(BIND_TOKEN_TTL).unwrap_or_default();
    let base = base_url(&headers);
    let ws_url = base
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1)
        .replace("/fhir/R4", "/ws/subscriptions-r4");
    let parameters = json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "token", "valueString": token},
            {"name": "expiration", "valueDateTime": format_instant(expiration)},
            {"name": "subscription", "valueString": format!("Subscription/{id}")},
            {"name": "websocket-url", "valueUrl": ws_url},
        ]
    });
    Ok(fhir_json(StatusCode::OK, parameters.to_string()))
}

/// The last number handed out to Subscription `id`, once this node has followed the log up to
/// everything committed before the call.
async fn last_number(
    store: &Store,
    registry: &Subscriptions,
    id: &str,
) -> Result<Numbering, FhirError> {
    registry.caught_up(store.head()).await;
    if let Some(numbering) = registry.numbering(id) {
        return Ok(numbering);
    }
    let row = store
        .subscription_states()
        .await?
        .into_iter()
        .find(|r| r.subscription_id == id);
    Ok(Numbering {
        start_seq: row.as_ref().map_or(0, |r| r.start_seq),
        count: row.map_or(0, |r| r.events_count),
    })
}

/// `$events` with `eventsSinceNumber` and `eventsUntilNumber`, both inclusive as the IG says:
/// the notifications a client missed, from the log, as one `query-event` Bundle.
async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: axum::body::Body,
) -> Result<Response, FhirError> {
    let input = operation_input(query, &headers, body).await?;
    let resource = owned(&state.store, &user, &id).await?;
    let mut since = 1i64;
    let mut until = i64::MAX;
    let mut content = None;
    for (key, value) in &input {
        let number = || {
            value
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    FhirError::BadRequest(format!("{key} must be a non-negative integer"))
                })
        };
        match key.as_str() {
            "eventsSinceNumber" => since = number()?,
            "eventsUntilNumber" => until = number()?,
            "content" => {
                content = Some(match value.as_str() {
                    "full-resource" => Content::FullResource,
                    "id-only" => Content::IdOnly,
                    "empty" => Content::Empty,
                    other => {
                        return Err(FhirError::BadRequest(format!(
                            "content must be empty, id-only or full-resource, not {other:?}"
                        )))
                    }
                })
            }
            other => {
                return Err(FhirError::BadRequest(format!(
                    "{other} is not a parameter of $events (eventsSinceNumber, eventsUntilNumber, content)"
                )))
            }
        }
    }
    // Catch up with the log first, so the answer includes everything committed before it.
    let numbering = last_number(&state.store, &state.subscriptions, &id).await?;
    let rows = state
        .store
        .subscription_events(&id, since.saturating_sub(1), until, MAX_EVENTS_PAGE)
        .await?;
    let visibility = access::visibility(&state.store, &user).await?;
    let base = base_url(&headers);
    let shape = topics::shape_of(&resource);
    let content = match content {
        Some(asked) => asked,
        None => shape.content,
    };
    // Each focus judged at the exit gate for the asking user, now.
    let focus: Vec<Option<String>> = rows
        .iter()
        .map(|(_, e)| {
            access::may_receive(&user, &visibility, &access::EventFacts::of(e))
                .then(|| focus_entry(e, &base, content))
                .flatten()
        })
        .collect();
    let listed: Vec<(i64, &EventRecord, bool)> = rows
        .iter()
        .zip(&focus)
        .map(|((n, e), f)| (*n, e, f.is_some()))
        .collect();
    let said = Said::stored(&id, &shape, &resource, numbering.count);
    let status = status_resource(&said, "query-event", &listed);
    let focus: Vec<&str> = focus.iter().flatten().map(String::as_str).collect();
    Ok(fhir_json(
        StatusCode::OK,
        bundle(&id, &shape, status, &focus),
    ))
}

/// `Subscription/{id}/$status`: a `searchset` Bundle with the Subscription's status now.
async fn status_one(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: axum::body::Body,
) -> Result<Response, FhirError> {
    let input = operation_input(query, &headers, body).await?;
    only(&input, "$status", &[])?;
    let resource = owned(&state.store, &user, &id).await?;
    let numbering = last_number(&state.store, &state.subscriptions, &id).await?;
    let status = stored_status(&id, &resource, numbering.count, "query-status");
    Ok(fhir_json(StatusCode::OK, status_bundle(&[status])))
}

/// `Subscription/$status?id=a&id=b` (also `id=a,b`): the status of each one the user may use;
/// the others are left out, as a search leaves out what it may not show.
async fn status_many(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: axum::body::Body,
) -> Result<Response, FhirError> {
    let input = operation_input(query, &headers, body).await?;
    only(&input, "$status", &["id", "status"])?;
    let ids: Vec<&str> = input
        .iter()
        .filter(|(k, _)| k == "id")
        .flat_map(|(_, v)| v.split(','))
        .map(|id| id.trim_start_matches("Subscription/"))
        .collect();
    if ids.is_empty() {
        return Err(FhirError::BadRequest(
            "$status on the type needs at least one id".into(),
        ));
    }
    if ids.len() > 100 {
        return Err(FhirError::BadRequest(
            "$status takes at most 100 ids".into(),
        ));
    }
    let wanted: Vec<&str> = input
        .iter()
        .filter(|(k, _)| k == "status")
        .flat_map(|(_, v)| v.split(','))
        .collect();
    let mut statuses = Vec::new();
    for id in ids {
        let Ok(resource) = owned(&state.store, &user, id).await else {
            continue;
        };
        let state_code = resource["status"].as_str().unwrap_or_default();
        if !wanted.is_empty() && !wanted.contains(&state_code) {
            continue;
        }
        let numbering = last_number(&state.store, &state.subscriptions, id).await?;
        statuses.push(stored_status(
            id,
            &resource,
            numbering.count,
            "query-status",
        ));
    }
    Ok(fhir_json(StatusCode::OK, status_bundle(&statuses)))
}

fn status_bundle(statuses: &[Value]) -> String {
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "searchset",
        "timestamp": format_instant(Utc::now()),
        "total": statuses.len(),
        "entry": statuses.iter().map(|status| json!({
            "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "resource": status,
            "search": {"mode": "match"},
        })).collect::<Vec<_>>(),
    })
    .to_string()
}
