//! Writes from the browser: the FHIR REST API with the session cookie, `If-Match` for updates.
//!
//! A 412 (someone saved a newer version first) comes back as [`WriteError::Conflict`] with the
//! version now stored, so the screen can show what changed and let the user redo their change.
//! A 401 (the access token expired a moment ago) refreshes the session and retries once.

use serde_json::Value;

/// Why a write did not happen.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteError {
    /// The resource changed since the user saw it; `current` is the stored version, if readable.
    Conflict { current: Option<Value> },
    /// Anything else, in words for the user.
    Failed(String),
}

impl WriteError {
    pub fn message(&self) -> String {
        match self {
            WriteError::Conflict { .. } => {
                "Someone changed this since you opened it; review their change and redo yours."
                    .into()
            }
            WriteError::Failed(why) => why.clone(),
        }
    }
}

/// Creates a resource; returns it as stored.
pub async fn create(resource: &Value) -> Result<Value, WriteError> {
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    send(
        "POST",
        &format!("/fhir/R4/{resource_type}"),
        Some(resource),
        None,
    )
    .await
}

/// Reads a resource (`Type/id`).
pub async fn read(reference: &str) -> Result<Value, WriteError> {
    send("GET", &format!("/fhir/R4/{reference}"), None, None).await
}

/// Replaces a resource if its stored version is still `version`.
pub async fn update(resource: &Value, version: i64) -> Result<Value, WriteError> {
    let path = resource_path(resource);
    match send("PUT", &path, Some(resource), Some(version)).await {
        Err(WriteError::Conflict { .. }) => Err(WriteError::Conflict {
            current: send("GET", &path, None, None).await.ok(),
        }),
        other => other,
    }
}

fn resource_path(resource: &Value) -> String {
    let field = |name: &str| {
        resource
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    format!("/fhir/R4/{}/{}", field("resourceType"), field("id"))
}

/// The diagnostics of an OperationOutcome, or the status line.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn outcome_text(status: u16, body: &str) -> String {
    let diagnostics = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|outcome| {
            outcome.get("issue")?.as_array()?.iter().find_map(|issue| {
                issue
                    .get("diagnostics")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        });
    match diagnostics {
        Some(text) => text,
        None => format!("The server answered {status}."),
    }
}

/// Sends a write; a 401 refreshes the session and sends it once more. That retry is safe: a 401
/// comes from authentication, before the handler runs, so the first attempt stored nothing (and
/// a create keeps its `urn:rounds:client-request` tag, so the screen matches the copy that comes
/// back to its optimistic entry, whichever way it arrives). A session that cannot be refreshed is
/// over: the tab leaves for the sign-in page.
#[cfg(feature = "hydrate")]
async fn send(
    method: &str,
    path: &str,
    body: Option<&Value>,
    if_match: Option<i64>,
) -> Result<Value, WriteError> {
    let signed_out = || {
        crate::session::leave();
        WriteError::Failed("Your session has ended; sign in again. Nothing was saved.".into())
    };
    match attempt(method, path, body, if_match).await {
        Err(Attempt::Unauthorized) => {}
        Err(Attempt::Failed(error)) => return Err(error),
        Ok(value) => return Ok(value),
    }
    match crate::session::refresh().await {
        Some(true) => match attempt(method, path, body, if_match).await {
            Ok(value) => Ok(value),
            Err(Attempt::Failed(error)) => Err(error),
            Err(Attempt::Unauthorized) => Err(signed_out()),
        },
        Some(false) => Err(signed_out()),
        None => Err(unreachable_server()),
    }
}

#[cfg(feature = "hydrate")]
enum Attempt {
    /// 401: not authenticated, so not carried out.
    Unauthorized,
    Failed(WriteError),
}

#[cfg(feature = "hydrate")]
fn unreachable_server() -> WriteError {
    WriteError::Failed("The server could not be reached; nothing was saved.".into())
}

#[cfg(feature = "hydrate")]
async fn attempt(
    method: &str,
    path: &str,
    body: Option<&Value>,
    if_match: Option<i64>,
) -> Result<Value, Attempt> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    let network = |_| Attempt::Failed(unreachable_server());
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    let headers = web_sys::Headers::new().map_err(network)?;
    let _ = headers.set("Accept", "application/fhir+json");
    if let Some(body) = body {
        let _ = headers.set("Content-Type", "application/fhir+json");
        init.set_body(&wasm_bindgen::JsValue::from_str(&body.to_string()));
    }
    if let Some(version) = if_match {
        let _ = headers.set("If-Match", &format!("W/\"{version}\""));
    }
    init.set_headers(&headers);
    let response = JsFuture::from(leptos::prelude::window().fetch_with_str_and_init(path, &init))
        .await
        .map_err(network)?;
    let response: web_sys::Response = response.dyn_into().map_err(network)?;
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .ok()
            .and_then(|t| t.as_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    match response.status() {
        401 => Err(Attempt::Unauthorized),
        412 => Err(Attempt::Failed(WriteError::Conflict { current: None })),
        status if !response.ok() => Err(Attempt::Failed(WriteError::Failed(outcome_text(
            status, &text,
        )))),
        _ => serde_json::from_str(&text).map_err(|_| {
            Attempt::Failed(WriteError::Failed(
                "The server's answer was not a FHIR resource.".into(),
            ))
        }),
    }
}

#[cfg(not(feature = "hydrate"))]
async fn send(
    _method: &str,
    _path: &str,
    _body: Option<&Value>,
    _if_match: Option<i64>,
) -> Result<Value, WriteError> {
    Err(WriteError::Failed(
        "writes are made from the browser".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_read_their_diagnostics() {
        let body = json!({"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "forbidden", "diagnostics": "no access"}]});
        assert_eq!(outcome_text(403, &body.to_string()), "no access");
        assert_eq!(outcome_text(502, "<html>"), "The server answered 502.");
        assert_eq!(
            resource_path(&json!({"resourceType": "Task", "id": "t1"})),
            "/fhir/R4/Task/t1"
        );
    }
}
