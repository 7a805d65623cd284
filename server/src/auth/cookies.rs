//! The credentials a request carries and the cookies we set: reading the session cookies and
//! the bearer header, the same-origin check that guards cookie-authenticated requests (CSRF),
//! and the `Set-Cookie` values.

use std::time::Duration;

use axum::http::{header, HeaderMap};

use crate::fhir::error::FhirError;

pub const ACCESS_COOKIE: &str = "rounds_access";
pub const REFRESH_COOKIE: &str = "rounds_refresh";

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

pub(super) fn cross_site() -> FhirError {
    FhirError::Forbidden("cross-site request refused (Origin or Referer must be ours)".into())
}

pub(super) fn set_cookie(
    name: &str,
    value: &str,
    max_age: Duration,
    same_site: &str,
    secure: bool,
) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={}{secure}",
        max_age.as_secs()
    )
}

/// The `Set-Cookie` values that remove both session cookies.
pub fn cleared_cookies() -> Vec<String> {
    [ACCESS_COOKIE, REFRESH_COOKIE]
        .iter()
        .map(|name| format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"))
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

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
