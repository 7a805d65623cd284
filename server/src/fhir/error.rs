//! The FHIR layer's one error type, answered as an OperationOutcome with the right status.
//!
//! Internal causes (database errors) are logged here and never sent to the client.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};

/// The FHIR media type every response carries.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// 400: the request could not be understood (malformed JSON, basic validation rules).
    #[error("{0}")]
    BadRequest(String),
    /// 400 with several issues, each with an expression (FHIRPath) where known.
    #[error("the resource is invalid")]
    Invalid(Vec<Issue>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 405 with the methods the route has (`Allow`).
    #[error("{message}")]
    MethodNotAllowed {
        message: String,
        allow: &'static str,
    },
    /// 406: a format other than JSON was asked for (`_format`, `Accept`).
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// 503 with `Retry-After`: the server is at a capacity limit (e.g. password hashing).
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    #[error("internal error")]
    Internal(String),
}

/// One OperationOutcome issue.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub code: &'static str,
    pub diagnostics: String,
    pub expression: Option<String>,
}

impl Issue {
    pub fn new(
        code: &'static str,
        diagnostics: impl Into<String>,
        expression: Option<&str>,
    ) -> Self {
        Self {
            code,
            diagnostics: diagnostics.into(),
            expression: expression.map(str::to_owned),
        }
    }
}

impl FhirError {
    pub fn status(&self) -> StatusCode {
        match self {
            FhirError::BadRequest(_) | FhirError::Invalid(_) => StatusCode::BAD_REQUEST,
            FhirError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            FhirError::Forbidden(_) => StatusCode::FORBIDDEN,
            FhirError::NotFound(_) => StatusCode::NOT_FOUND,
            FhirError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            FhirError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            FhirError::Conflict(_) => StatusCode::CONFLICT,
            FhirError::Gone(_) => StatusCode::GONE,
            FhirError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            FhirError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            FhirError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            FhirError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            FhirError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            FhirError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            FhirError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn issues(&self) -> Vec<Issue> {
        let code = match self {
            FhirError::BadRequest(_) => "invalid",
            FhirError::Unauthorized(_) => "login",
            FhirError::Forbidden(_) => "forbidden",
            FhirError::NotFound(_) => "not-found",
            FhirError::MethodNotAllowed { .. } | FhirError::NotAcceptable(_) => "not-supported",
            FhirError::Conflict(_) | FhirError::PreconditionFailed(_) => "conflict",
            FhirError::Gone(_) => "deleted",
            FhirError::PayloadTooLarge(_) => "too-costly",
            FhirError::UnsupportedMediaType(_) => "not-supported",
            FhirError::Unprocessable(_) => "processing",
            FhirError::TooManyRequests { .. } => "throttled",
            FhirError::Unavailable { .. } => "transient",
            FhirError::Internal(_) => "exception",
            FhirError::Invalid(issues) => return issues.clone(),
        };
        let message = match self {
            FhirError::Internal(_) => "the server could not complete the request".to_owned(),
            other => other.to_string(),
        };
        vec![Issue::new(code, message, None)]
    }

    /// The `Retry-After` seconds of a throttled or unavailable answer.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            FhirError::TooManyRequests {
                retry_after_secs, ..
            }
            | FhirError::Unavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The OperationOutcome this error answers with.
    pub fn outcome(&self) -> Value {
        operation_outcome("error", &self.issues())
    }
}

/// An OperationOutcome resource with the given issues.
pub fn operation_outcome(severity: &str, issues: &[Issue]) -> Value {
    let issues: Vec<Value> = issues
        .iter()
        .map(|issue| {
            let mut value = json!({
                "severity": severity,
                "code": issue.code,
                "diagnostics": issue.diagnostics,
            });
            if let Some(expression) = &issue.expression {
                value["expression"] = json!([expression]);
            }
            value
        })
        .collect();
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        if let FhirError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error answering a FHIR request");
        }
        let status = self.status();
        let mut response = (status, self.outcome().to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        if let Some(retry_after_secs) = self.retry_after_secs() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        if let FhirError::MethodNotAllowed { allow, .. } = &self {
            if !allow.is_empty() {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The FHIR routes' last layer: every error answer is an OperationOutcome, also those axum
/// writes itself before a handler runs (a path segment that does not decode, such as `%FF`, is a
/// text/plain 400; a method the route lacks, an empty 405). Their status and headers (`Allow`)
/// are kept; their text becomes the diagnostics.
pub async fn every_error_an_outcome(response: Response) -> Response {
    let status = response.status();
    let is_fhir = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/fhir+json"));
    if is_fhir || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // axum's own rejections are one short line; anything longer is cut, not buffered.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let diagnostics = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let code = match status {
        StatusCode::BAD_REQUEST => "invalid",
        StatusCode::UNAUTHORIZED => "login",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED
        | StatusCode::NOT_ACCEPTABLE
        | StatusCode::UNSUPPORTED_MEDIA_TYPE => "not-supported",
        StatusCode::PAYLOAD_TOO_LARGE => "too-costly",
        _ if status.is_client_error() => "processing",
        _ => "exception",
    };
    let outcome = operation_outcome("error", &[Issue::new(code, diagnostics, None)]).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    Response::from_parts(parts, axum::body::Body::from(outcome))
}
