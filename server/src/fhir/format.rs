//! Content negotiation for `/fhir/R4`: the API speaks JSON only.
//!
//! A layer in front of every FHIR route. `_format` (which takes precedence) or `Accept` asking
//! only for something else (XML, Turtle, HTML) is answered 406 with an OperationOutcome, in
//! JSON, before any handler runs. A client that asks for plain `application/json` (or
//! `_format=json`) gets that media type on the answer; `application/fhir+json` is the default.
//! Never looks at a body and never changes one.
//!
//! Also here: the base URL a client addressed, and the FHIR JSON response every handler answers
//! with.

use axum::{
    extract::Request,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::{FhirError, FHIR_JSON};

/// The plain JSON media type, for clients that ask for it.
pub const PLAIN_JSON: &str = "application/json; charset=utf-8";

/// What an answer is labelled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    FhirJson,
    Json,
}

/// A media type (parameters already cut off, lower-cased) as one of ours; `None`: not ours.
fn format_of(media: &str) -> Option<Format> {
    match media {
        "application/fhir+json" | "application/json+fhir" => Some(Format::FhirJson),
        "application/json" | "json" => Some(Format::Json),
        _ => None,
    }
}

/// The format asked for by `_format` (the query string's, last one wins) and `Accept`.
pub fn negotiate(query: Option<&str>, accept: Option<&str>) -> Result<Format, String> {
    let format_param = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(key, _)| key == "_format")
        .map(|(_, value)| value.into_owned())
        .last();
    if let Some(value) = format_param {
        // An unencoded `+` arrives as a space: `_format=application/fhir+json`.
        let media = value.replace(' ', "+");
        let media = media
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        return format_of(&media).ok_or_else(|| {
            format!(
                "_format={value:?} is not supported: this server answers only in JSON \
                 (application/fhir+json or application/json)"
            )
        });
    }
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(Format::FhirJson);
    };
    // The acceptable range with the highest quality; on a tie FHIR JSON first.
    let mut best: Option<(f32, Format)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let format = match media.as_str() {
            "*/*" | "application/*" => Some(Format::FhirJson),
            other => format_of(other).filter(|_| other != "json"),
        };
        let Some(format) = format.filter(|_| quality > 0.0) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((q, f)) => {
                quality > q || (quality == q && f == Format::Json && format == Format::FhirJson)
            }
        };
        if better {
            best = Some((quality, format));
        }
    }
    best.map(|(_, format)| format).ok_or_else(|| {
        format!(
            "Accept {accept:?} names nothing this server produces: it answers only in JSON \
             (application/fhir+json or application/json)"
        )
    })
}

/// The layer: refuses what it cannot produce, relabels plain-JSON answers.
pub async fn negotiated(request: Request, next: Next) -> Response {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());
    match negotiate(request.uri().query(), accept.as_deref()) {
        Err(message) => FhirError::NotAcceptable(message).into_response(),
        Ok(Format::FhirJson) => next.run(request).await,
        Ok(Format::Json) => {
            let mut response = next.run(request).await;
            let is_fhir_json = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/fhir+json"));
            if is_fhir_json {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(PLAIN_JSON));
            }
            response
        }
    }
}

/// The absolute base of the FHIR API as the client addressed it.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}/fhir/R4")
}

/// A JSON response with the FHIR content type.
pub fn fhir_json(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_default_and_plain_json_is_honoured() {
        assert_eq!(negotiate(None, None), Ok(Format::FhirJson));
        assert_eq!(negotiate(None, Some("*/*")), Ok(Format::FhirJson));
        assert_eq!(
            negotiate(None, Some("application/fhir+json, */*; q=0.1")),
            Ok(Format::FhirJson)
        );
        assert_eq!(negotiate(None, Some("application/json")), Ok(Format::Json));
        assert_eq!(
            negotiate(
                None,
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
            ),
            Ok(Format::FhirJson)
        );
        assert_eq!(
            negotiate(None, Some("application/json, application/fhir+json")),
            Ok(Format::FhirJson)
        );
        assert_eq!(negotiate(Some("_format=json"), None), Ok(Format::Json));
        assert_eq!(
            negotiate(
                Some("_format=application/fhir+json"),
                Some("application/json")
            ),
            Ok(Format::FhirJson)
        );
        assert_eq!(
            negotiate(Some("_format=application%2Ffhir%2Bjson"), None),
            Ok(Format::FhirJson)
        );
    }

    #[test]
    fn xml_and_anything_else_is_not_acceptable() {
        assert!(negotiate(Some("_format=xml"), None).is_err());
        assert!(negotiate(Some("_format=application/fhir+xml"), Some("*/*")).is_err());
        assert!(negotiate(None, Some("application/fhir+xml")).is_err());
        assert!(negotiate(None, Some("application/xml, text/xml")).is_err());
        assert!(negotiate(None, Some("application/fhir+json;q=0, application/xml")).is_err());
        assert!(negotiate(None, Some("json")).is_err());
    }
}
