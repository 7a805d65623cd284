//! The FHIR R4 REST API at `/fhir/R4`: step 1 of the event path for outside clients. The FHIR
//! model it speaks (dates, parameters, search, validation, errors) is `crate::fhir`.
//!
//! Each handler authenticates (the `AuthUser` extractor), asks the access policy, validates the
//! body, and hands the write to the store, whose one transaction also derives the events. Every
//! answer is `application/fhir+json`; every error an OperationOutcome. Reads of patient data are
//! audited. Handlers never build SQL and never decide access themselves.

pub mod bundle;
pub mod capability;

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use serde_json::{json, Value};

use crate::fhir::{
    date,
    error::{operation_outcome, FhirError, Issue, FHIR_JSON},
    format::{base_url, fhir_json},
    params,
    search::{self, SearchQuery},
    validate::{validate, Intent},
};
use crate::{
    access::{self, Gate},
    auth::identity::AuthUser,
    state::AppState,
    store::{
        Actor, AuditFilter, AuditRecord, HistoryWindow, Store, StoreError, Stored, WriteOp, Written,
    },
    subscriptions::hook,
};

/// How many versions `_history` reads at a time while it judges them.
const HISTORY_CHUNK: usize = 200;

/// The FHIR routes, to be nested at `/fhir/R4`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/metadata", get(metadata))
        .route("/{rtype}", get(search_type).post(create))
        .route("/{rtype}/_search", axum::routing::post(search_post))
        .route("/{rtype}/{id}", get(read).put(update).delete(delete))
        .route("/{rtype}/{id}/_history", get(history))
        .route("/{rtype}/{id}/_history/{vid}", get(vread))
        .fallback(unknown_route)
}

/// A write to a type only the server writes (AuditEvent): 405 with the methods left.
fn read_only(rtype: &str, allow: &'static str) -> FhirError {
    FhirError::MethodNotAllowed {
        message: format!("{rtype} is read-only: it is written by the server"),
        allow,
    }
}

/// The answer to a method a FHIR route does not have: 405 and an OperationOutcome; axum adds
/// the route's `Allow`. Set on every FHIR route (`Router::method_not_allowed_fallback`).
pub async fn method_not_allowed(method: Method, uri: axum::extract::OriginalUri) -> FhirError {
    FhirError::MethodNotAllowed {
        message: format!("{method} is not supported on {}", uri.path()),
        allow: "",
    }
}

async fn unknown_route(method: Method) -> FhirError {
    FhirError::NotFound(format!("no FHIR interaction matches this {method} request"))
}

fn known_type(rtype: &str) -> Result<(), FhirError> {
    if app::fhir::RESOURCE_TYPES.contains(&rtype) {
        Ok(())
    } else {
        Err(FhirError::NotFound(format!(
            "resource type {rtype:?} is not supported by this server"
        )))
    }
}

fn valid_id(id: &str) -> Result<(), FhirError> {
    if params::is_valid_id(id) {
        Ok(())
    } else {
        Err(FhirError::BadRequest(format!(
            "{id:?} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})"
        )))
    }
}

fn with_version_headers(mut response: Response, stored: &Stored) -> Response {
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{}\"", stored.version_id)) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(when) = chrono::DateTime::parse_from_rfc3339(&stored.last_updated) {
        if let Ok(value) = HeaderValue::from_str(
            &when
                .to_utc()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
        ) {
            headers.insert(header::LAST_MODIFIED, value);
        }
    }
    response
}

/// One stored version as a 200 answer with its ETag and Last-Modified.
fn resource_response(stored: &Stored) -> Response {
    with_version_headers(fhir_json(StatusCode::OK, stored.json.to_string()), stored)
}

/// The acting user and their address: `X-Forwarded-For` holds the vetted client address here
/// (`auth::resolve_client` rewrites it at the edge).
fn actor(user: &AuthUser, headers: &HeaderMap) -> Actor {
    Actor {
        user_id: Some(user.id.clone()),
        source: headers
            .get("x-forwarded-for")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
    }
}

fn audit(
    store: &Store,
    user: &AuthUser,
    operation: &str,
    rtype: &str,
    id: Option<&str>,
    patient: Option<String>,
    detail: Option<String>,
) {
    store.audit(AuditRecord {
        ts: date::format_instant(chrono::Utc::now()),
        user_id: Some(user.id.clone()),
        action: if operation == "search" { "E" } else { "R" },
        operation: operation.to_owned(),
        resource_type: Some(rtype.to_owned()),
        resource_id: id.map(str::to_owned),
        patient_id: patient,
        outcome: "0",
        detail,
        source: None,
    });
}

async fn metadata(headers: HeaderMap) -> Response {
    let statement = capability::capability_statement(
        &base_url(&headers),
        env!("CARGO_PKG_VERSION"),
        "2026-11-25",
    );
    fhir_json(StatusCode::OK, statement.to_string())
}

/// `?a=1&b=2` as decoded pairs.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn prefers_strict(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split([',', ';']).any(|p| p.trim() == "handling=strict"))
}

async fn search_type(
    State(state): State<AppState>,
    user: AuthUser,
    Path(rtype): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    run_search(
        &state.store,
        &user,
        &rtype,
        query_pairs(raw.as_deref()),
        &headers,
    )
    .await
}

async fn search_post(
    State(state): State<AppState>,
    user: AuthUser,
    Path(rtype): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, FhirError> {
    let limit = search::MAX_SEARCH_BODY;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        FhirError::PayloadTooLarge(format!(
            "a _search body may hold at most {limit} bytes of parameters"
        ))
    })?;
    let form = std::str::from_utf8(&body)
        .map_err(|_| FhirError::BadRequest("the _search body is not UTF-8 form data".into()))?;
    let mut pairs = query_pairs(raw.as_deref());
    pairs.extend(query_pairs(Some(form)));
    run_search(&state.store, &user, &rtype, pairs, &headers).await
}

async fn run_search(
    store: &Store,
    user: &AuthUser,
    rtype: &str,
    pairs: Vec<(String, String)>,
    headers: &HeaderMap,
) -> Result<Response, FhirError> {
    known_type(rtype)?;
    let base = base_url(headers);
    if rtype == "AuditEvent" {
        return audit_search(store, user, &pairs, &base, prefers_strict(headers)).await;
    }
    let query = SearchQuery::parse(rtype, &pairs)
        .map_err(|e| FhirError::BadRequest(e.0))?
        .owned_by(hook::search_owner(user, rtype));
    if prefers_strict(headers) && !query.warnings.is_empty() {
        return Err(FhirError::BadRequest(query.warnings.join("; ")));
    }
    let gate = Gate::open(store, user).await?;
    let mut page = store.search(&query, &gate.for_type(rtype)).await?;
    // The store applied the rule in SQL for the searched type; every row that leaves is judged
    // again here on its own type, patient and label: an included row by *its* type.
    let before = page.matches.len() as i64;
    page.matches.retain(|stored| {
        gate.release(&access::Facts::of_stored(stored), None)
            .allowed()
    });
    page.total -= before - page.matches.len() as i64;
    page.included.retain(|stored| {
        gate.release(&access::Facts::of_stored(stored), None)
            .allowed()
    });

    // The links carry only the parameters the search applied (R4: `self` shows what was used).
    let used = &query.used;
    let self_url = page_url(&base, rtype, used, None);
    let mut links = vec![("self", self_url)];
    let next_offset = query.offset + query.count;
    if !query.count_only && query.count > 0 && (next_offset as i64) < page.total {
        links.push(("next", page_url(&base, rtype, used, Some(next_offset))));
    }
    if query.offset > 0 {
        links.push((
            "previous",
            page_url(
                &base,
                rtype,
                used,
                Some(query.offset.saturating_sub(query.count)),
            ),
        ));
    }
    let mut entries: Vec<Value> = page
        .matches
        .iter()
        .map(|s| bundle::search_entry(&base, s, "match"))
        .collect();
    entries.extend(
        page.included
            .iter()
            .map(|s| bundle::search_entry(&base, s, "include")),
    );
    if !query.warnings.is_empty() {
        let issues: Vec<Issue> = query
            .warnings
            .iter()
            .map(|w| Issue::new("not-supported", w.clone(), None))
            .collect();
        entries.push(json!({
            "resource": operation_outcome("warning", &issues),
            "search": {"mode": "outcome"},
        }));
    }
    let patients: Vec<String> = {
        let mut ids: Vec<String> = page
            .matches
            .iter()
            .chain(page.included.iter())
            .filter_map(|s| serde_json::from_str::<Value>(&s.json).ok())
            .filter_map(|v| app::fhir::patient_id(&v))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    // One audit record per patient whose data left the server in this answer.
    for patient in &patients {
        audit(
            store,
            user,
            "search",
            rtype,
            None,
            Some(patient.clone()),
            Some(format!("{} results", page.matches.len())),
        );
    }
    let bundle = bundle::bundle("searchset", Some(page.total), links, entries);
    Ok(fhir_json(StatusCode::OK, bundle.to_string()))
}

fn page_url(base: &str, rtype: &str, pairs: &[(String, String)], offset: Option<usize>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if offset.is_some() && key == "_offset" {
            continue;
        }
        serializer.append_pair(key, value);
    }
    if let Some(offset) = offset {
        serializer.append_pair("_offset", &offset.to_string());
    }
    let query = serializer.finish();
    if query.is_empty() {
        format!("{base}/{rtype}")
    } else {
        format!("{base}/{rtype}?{query}")
    }
}

async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    Path((rtype, id)): Path<(String, String)>,
) -> Result<Response, FhirError> {
    known_type(&rtype)?;
    valid_id(&id)?;
    if rtype == "AuditEvent" {
        return audit_read(&state.store, &user, &id).await;
    }
    let newest = state
        .store
        .newest(&rtype, &id)
        .await?
        .ok_or_else(|| access::not_known(&rtype, &id))?;
    let gate = Gate::open(&state.store, &user).await?;
    gate.release_stored(&newest, &newest)
        .into_result(&rtype, &id)?;
    if newest.deleted {
        return Err(FhirError::Gone(format!(
            "{rtype}/{id} was deleted (version {})",
            newest.version_id
        )));
    }
    audit(
        &state.store,
        &user,
        "read",
        &rtype,
        Some(&id),
        patient_of(&newest),
        None,
    );
    Ok(resource_response(&newest))
}

/// The patient a stored version is about (for the audit).
fn patient_of(stored: &Stored) -> Option<String> {
    access::Facts::of_stored(stored).patient_id
}

async fn vread(
    State(state): State<AppState>,
    user: AuthUser,
    Path((rtype, id, vid)): Path<(String, String, String)>,
) -> Result<Response, FhirError> {
    known_type(&rtype)?;
    valid_id(&id)?;
    let version: i64 = vid
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| FhirError::BadRequest(format!("{vid:?} is not a version id")))?;
    if rtype == "AuditEvent" {
        return audit_vread(&state.store, &user, &id, version).await;
    }
    // The resource as a whole first: a hidden one answers exactly as an unknown id, whatever
    // the version asked for.
    let newest = state
        .store
        .newest(&rtype, &id)
        .await?
        .ok_or_else(|| access::not_known(&rtype, &id))?;
    let gate = Gate::open(&state.store, &user).await?;
    gate.release_stored(&newest, &newest)
        .into_result(&rtype, &id)?;
    let stored = state
        .store
        .vread(&rtype, &id, version)
        .await?
        .ok_or_else(|| FhirError::NotFound(format!("{rtype}/{id} has no version {version}")))?;
    gate.release_stored(&stored, &newest)
        .into_result(&rtype, &id)?;
    if stored.deleted {
        return Err(FhirError::Gone(format!(
            "version {version} of {rtype}/{id} is its deletion"
        )));
    }
    audit(
        &state.store,
        &user,
        "vread",
        &rtype,
        Some(&id),
        patient_of(&stored),
        None,
    );
    Ok(resource_response(&stored))
}

/// The parameters of an instance `_history`: paging and the `_since` / `_at` window.
struct HistoryQuery {
    count: usize,
    offset: usize,
    /// `_since`: versions with `lastUpdated` at or after it.
    since: Option<String>,
    /// `_at`: the versions current at some point of a `[start, end)` range, as
    /// (`start` + 1 ms, `end`): the version current at `start` is the newest written before
    /// `start` + 1 ms (stored instants have millisecond precision).
    at: Option<(String, String)>,
    /// The parameters applied, for the links.
    used: Vec<(String, String)>,
}

impl HistoryQuery {
    fn parse(pairs: &[(String, String)]) -> Result<Self, FhirError> {
        let mut query = HistoryQuery {
            count: search::DEFAULT_COUNT,
            offset: 0,
            since: None,
            at: None,
            used: Vec::new(),
        };
        let instant = |key: &str, value: &str| {
            date::parse_range(value)
                .map(|(start, end)| (start, date::format_instant(end)))
                .ok_or_else(|| {
                    FhirError::BadRequest(format!(
                        "{key}={value:?} is not a FHIR instant (e.g. 2026-11-25T08:00:00Z)"
                    ))
                })
        };
        for (key, value) in pairs {
            match key.as_str() {
                "_count" => {
                    query.count = value
                        .parse::<usize>()
                        .map_err(|_| {
                            FhirError::BadRequest("_count must be a non-negative integer".into())
                        })?
                        .min(search::MAX_COUNT)
                }
                "_offset" => {
                    query.offset = value.parse().map_err(|_| {
                        FhirError::BadRequest("_offset must be a non-negative integer".into())
                    })?
                }
                "_since" => query.since = Some(date::format_instant(instant(key, value)?.0)),
                "_at" => {
                    let (start, end) = instant(key, value)?;
                    let just_after_start = start + chrono::Duration::milliseconds(1);
                    query.at = Some((date::format_instant(just_after_start), end));
                }
                _ => continue,
            }
            if !matches!(key.as_str(), "_count" | "_offset") {
                query.used.push((key.clone(), value.clone()));
            }
        }
        Ok(query)
    }

    /// Whether the one version of a resource that is never changed (AuditEvent), last updated
    /// at `last_updated`, falls in the window.
    fn admits(&self, last_updated: &str) -> bool {
        self.since
            .as_deref()
            .is_none_or(|since| last_updated >= since)
            && self
                .at
                .as_ref()
                .is_none_or(|(_, end)| last_updated < end.as_str())
    }

    /// The links of one page of `total` versions at `url`.
    fn links(&self, url: &str, total: i64) -> Vec<(&'static str, String)> {
        let with = |offset: Option<usize>| {
            let mut serializer = form_urlencoded::Serializer::new(String::new());
            for (key, value) in &self.used {
                serializer.append_pair(key, value);
            }
            if let Some(offset) = offset {
                serializer.append_pair("_count", &self.count.to_string());
                serializer.append_pair("_offset", &offset.to_string());
            }
            match serializer.finish() {
                query if query.is_empty() => url.to_owned(),
                query => format!("{url}?{query}"),
            }
        };
        let mut links = vec![("self", with(None))];
        if ((self.offset + self.count) as i64) < total {
            links.push(("next", with(Some(self.offset + self.count))));
        }
        links
    }
}

async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    Path((rtype, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    known_type(&rtype)?;
    valid_id(&id)?;
    let query = HistoryQuery::parse(&query_pairs(raw.as_deref()))?;
    let base = base_url(&headers);
    if rtype == "AuditEvent" {
        return audit_history(&state.store, &user, &id, &query, &base).await;
    }
    let newest = state
        .store
        .newest(&rtype, &id)
        .await?
        .ok_or_else(|| access::not_known(&rtype, &id))?;
    let gate = Gate::open(&state.store, &user).await?;
    let newest_facts = access::Facts::of_stored(&newest);
    gate.release(&newest_facts, None).into_result(&rtype, &id)?;
    // The window in SQL: `_since` bounds lastUpdated from below; `_at` from above, with the
    // version current at its start as the floor (versions are numbered in time order).
    let mut window = HistoryWindow {
        since: query.since.clone(),
        before: None,
        min_version: 0,
    };
    if let Some((just_after_start, end)) = &query.at {
        let current_at_start = HistoryWindow {
            before: Some(just_after_start.clone()),
            ..HistoryWindow::default()
        };
        window.before = Some(end.clone());
        window.min_version = state
            .store
            .versions_in(&rtype, &id, i64::MAX, 1, &current_at_start)
            .await?
            .first()
            .map_or(0, |version| version.version_id);
    }
    // Every version is judged on its own (and with the resource as it is now); the page and its
    // total count only the versions that pass, walked in chunks so none is held longer than
    // needed, however long the history.
    let mut total: i64 = 0;
    let mut versions = Vec::new();
    let mut below = i64::MAX;
    loop {
        let chunk = state
            .store
            .versions_in(&rtype, &id, below, HISTORY_CHUNK, &window)
            .await?;
        let Some(last) = chunk.last() else { break };
        below = last.version_id;
        for version in chunk {
            let facts = access::Facts::of_stored(&version);
            if !gate.release(&facts, Some(&newest_facts)).allowed() {
                continue;
            }
            if total as usize >= query.offset && versions.len() < query.count {
                versions.push(version);
            }
            total += 1;
        }
    }
    audit(
        &state.store,
        &user,
        "history",
        &rtype,
        Some(&id),
        newest_facts.patient_id.clone(),
        None,
    );
    let links = query.links(&format!("{base}/{rtype}/{id}/_history"), total);
    let entries = versions
        .iter()
        .map(|s| bundle::history_entry(&base, s))
        .collect();
    let bundle = bundle::bundle("history", Some(total), links, entries);
    Ok(fhir_json(StatusCode::OK, bundle.to_string()))
}

/// What `Prefer: return=` asks for.
#[derive(Clone, Copy, PartialEq)]
enum Return {
    Minimal,
    Representation,
    Outcome,
}

fn prefer_return(headers: &HeaderMap) -> Return {
    for value in headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for part in value.split([',', ';']) {
            match part.trim() {
                "return=minimal" => return Return::Minimal,
                "return=OperationOutcome" => return Return::Outcome,
                "return=representation" => return Return::Representation,
                _ => {}
            }
        }
    }
    Return::Representation
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, FhirError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| FhirError::BadRequest("If-Match must be W/\"<versionId>\"".into()))?
        .trim();
    let inner = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    inner
        .parse()
        .map(Some)
        .map_err(|_| FhirError::BadRequest(format!("If-Match {text:?} must be W/\"<versionId>\"")))
}

/// Reads and parses a FHIR JSON body: content type, size, JSON.
async fn read_body(limit: usize, headers: &HeaderMap, body: Body) -> Result<Value, FhirError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/fhir+json" && media != "application/json" {
        return Err(FhirError::UnsupportedMediaType(format!(
            "Content-Type {content_type:?} is not supported; send application/fhir+json"
        )));
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        FhirError::PayloadTooLarge(format!("the body exceeds the limit of {limit} bytes"))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| FhirError::BadRequest(format!("the body is not valid JSON: {e}")))
}

fn write_response(written: &Written, status: StatusCode, headers: &HeaderMap) -> Response {
    let stored = &written.resource;
    let base = base_url(headers);
    let mut response = match prefer_return(headers) {
        Return::Minimal => {
            let mut response = status.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
            response
        }
        Return::Representation => fhir_json(status, stored.json.to_string()),
        Return::Outcome => fhir_json(
            status,
            operation_outcome(
                "information",
                &[Issue::new(
                    "informational",
                    format!(
                        "{} {}/{} version {}",
                        written.action.as_str(),
                        stored.resource_type,
                        stored.id,
                        stored.version_id
                    ),
                    None,
                )],
            )
            .to_string(),
        ),
    };
    if status == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::from_str(&format!(
            "{base}/{}/{}/_history/{}",
            stored.resource_type, stored.id, stored.version_id
        )) {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    with_version_headers(response, stored)
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(rtype): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, FhirError> {
    known_type(&rtype)?;
    if !params::writable(&rtype) {
        return Err(read_only(&rtype, "GET,HEAD"));
    }
    let mut resource = read_body(state.config.max_body_bytes, &headers, body).await?;
    validate(&rtype, &resource, Intent::Create, None).map_err(FhirError::Invalid)?;
    if let Value::Object(map) = &mut resource {
        map.remove("id");
    }
    access::check_write(&state.store, &user, &rtype, None, None, Some(&resource)).await?;
    let admitted = hook::admit(
        &state.subscriptions,
        state.config.max_subscriptions_per_user,
        &user,
        &rtype,
        None,
        None,
        Some(&mut resource),
    )
    .await?;
    let written = state
        .store
        .write(
            &actor(&user, &headers),
            &rtype,
            WriteOp::Create,
            Some(resource),
        )
        .await?
        .ok_or_else(|| FhirError::Internal("create produced no version".into()))?;
    admitted.written(&written).await;
    Ok(write_response(&written, StatusCode::CREATED, &headers))
}

async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, FhirError> {
    known_type(&rtype)?;
    valid_id(&id)?;
    if !params::writable(&rtype) {
        return Err(read_only(&rtype, "GET,HEAD"));
    }
    let if_match = if_match(&headers)?;
    let mut resource = read_body(state.config.max_body_bytes, &headers, body).await?;
    validate(&rtype, &resource, Intent::Update, Some(&id)).map_err(FhirError::Invalid)?;
    let stored = stored_value(&state.store, &rtype, &id).await?;
    let previous = stored
        .as_ref()
        .filter(|(_, live)| *live)
        .map(|(v, _)| v.clone());
    let before = stored.as_ref().map(|(resource, live)| access::Overwritten {
        id: &id,
        resource,
        live: *live,
    });
    access::check_write(
        &state.store,
        &user,
        &rtype,
        Some(&id),
        before,
        Some(&resource),
    )
    .await?;
    let admitted = hook::admit(
        &state.subscriptions,
        state.config.max_subscriptions_per_user,
        &user,
        &rtype,
        Some(&id),
        previous.as_ref(),
        Some(&mut resource),
    )
    .await?;
    let written = state
        .store
        .write(
            &actor(&user, &headers),
            &rtype,
            WriteOp::Update { id, if_match },
            Some(resource),
        )
        .await?
        .ok_or_else(|| FhirError::Internal("update produced no version".into()))?;
    admitted.written(&written).await;
    let status = if written.action == app::events::Action::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(write_response(&written, status, &headers))
}

/// The stored resource as it is now, parsed, and whether it is live (false: a deletion's
/// tombstone, which holds the deleted content).
async fn stored_value(
    store: &Store,
    rtype: &str,
    id: &str,
) -> Result<Option<(Value, bool)>, FhirError> {
    let Some(stored) = store.newest(rtype, id).await? else {
        return Ok(None);
    };
    let resource = serde_json::from_str::<Value>(&stored.json)
        .map_err(|e| FhirError::Internal(format!("{rtype}/{id} is stored unreadably: {e}")))?;
    Ok(Some((resource, !stored.deleted)))
}

async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    known_type(&rtype)?;
    valid_id(&id)?;
    if !params::writable(&rtype) {
        return Err(read_only(&rtype, "GET,HEAD"));
    }
    let if_match = if_match(&headers)?;
    let Some((stored, live)) = stored_value(&state.store, &rtype, &id).await? else {
        return Err(access::not_known(&rtype, &id));
    };
    // Deleting a deleted resource changes nothing, but is judged all the same: a restricted
    // one answers as an unknown id.
    let before = access::Overwritten {
        id: &id,
        resource: &stored,
        live,
    };
    access::check_write(&state.store, &user, &rtype, Some(&id), Some(before), None).await?;
    let previous = live.then_some(stored);
    hook::admit(
        &state.subscriptions,
        state.config.max_subscriptions_per_user,
        &user,
        &rtype,
        Some(&id),
        previous.as_ref(),
        None,
    )
    .await?;
    let written = state
        .store
        .write(
            &actor(&user, &headers),
            &rtype,
            WriteOp::Delete { id, if_match },
            None,
        )
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(written) = written {
        if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{}\"", written.resource.version_id)) {
            response.headers_mut().insert(header::ETAG, etag);
        }
    }
    Ok(response)
}

/// The one version an AuditEvent has: an audit record is never changed.
const AUDIT_EVENT_VERSION: i64 = 1;

/// AuditEvent resources are the audit trail, read through the API by admins only.
fn audit_event(row: &crate::store::AuditRow) -> Value {
    let record = &row.record;
    let (type_coding, subtype) = match record.operation.as_str() {
        "login" | "login-failed" | "logout" => (
            json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication"}),
            if record.operation == "logout" {
                json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110123", "display": "Logout"})
            } else {
                json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110122", "display": "Login"})
            },
        ),
        operation => (
            json!({"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"}),
            json!({"system": "http://hl7.org/fhir/restful-interaction", "code": match operation {
                "search" => "search-type",
                "history" => "history-instance",
                other => other,
            }}),
        ),
    };
    let mut agent = json!({"requestor": true});
    match &record.user_id {
        Some(user) => {
            agent["who"] = json!({"identifier": {"system": "urn:rounds:user", "value": user}})
        }
        None => agent["who"] = json!({"display": "anonymous"}),
    }
    if let Some(source) = &record.source {
        agent["network"] = json!({"address": source, "type": "2"});
    }
    let mut entities = Vec::new();
    if let Some(patient) = &record.patient_id {
        entities.push(json!({"what": {"reference": format!("Patient/{patient}")}, "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}}));
    }
    if let (Some(rtype), Some(id)) = (&record.resource_type, &record.resource_id) {
        if !(rtype == "Patient" && record.patient_id.as_deref() == Some(id)) {
            entities.push(json!({"what": {"reference": format!("{rtype}/{id}")}}));
        }
    }
    // An audit record is written once and never changed: it has exactly one version.
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": row.id.to_string(),
        "meta": {"versionId": AUDIT_EVENT_VERSION.to_string(), "lastUpdated": record.ts},
        "type": type_coding,
        "subtype": [subtype],
        "action": record.action,
        "recorded": record.ts,
        "outcome": record.outcome,
        "agent": [agent],
        "source": {"observer": {"display": "Rounds server"}},
    });
    if let Some(detail) = &record.detail {
        event["outcomeDesc"] = json!(detail);
    }
    if !entities.is_empty() {
        event["entity"] = Value::Array(entities);
    }
    event
}

async fn audit_search(
    store: &Store,
    user: &AuthUser,
    pairs: &[(String, String)],
    base: &str,
    strict: bool,
) -> Result<Response, FhirError> {
    access::require_admin(user)?;
    let mut filter = AuditFilter::default();
    let mut count = search::DEFAULT_COUNT;
    let mut offset = 0;
    let mut warnings = Vec::new();
    let mut used = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "patient" => {
                filter.patient_id = Some(value.strip_prefix("Patient/").unwrap_or(value).to_owned())
            }
            "_id" => {
                let values: Vec<&str> = value.split(',').filter(|v| !v.is_empty()).collect();
                if values.is_empty() {
                    return Err(FhirError::BadRequest("_id needs a value".into()));
                }
                if values.len() > search::MAX_OR_VALUES {
                    return Err(FhirError::BadRequest(format!(
                        "_id has {} values; at most {} may be ORed in one parameter",
                        values.len(),
                        search::MAX_OR_VALUES
                    )));
                }
                // An audit row's id is a number: any other id names no AuditEvent. Repeated
                // `_id` parameters are ANDed.
                let ids: Vec<i64> = values.iter().filter_map(|v| v.parse().ok()).collect();
                filter.ids = Some(match filter.ids.take() {
                    Some(before) => before.into_iter().filter(|id| ids.contains(id)).collect(),
                    None => ids,
                });
            }
            "_count" => {
                count = value
                    .parse::<usize>()
                    .map_err(|_| {
                        FhirError::BadRequest("_count must be a non-negative integer".into())
                    })?
                    .min(search::MAX_COUNT)
            }
            "_offset" => {
                offset = value.parse().map_err(|_| {
                    FhirError::BadRequest("_offset must be a non-negative integer".into())
                })?
            }
            "_format" | "_pretty" | "_total" => continue,
            other => {
                warnings.push(format!(
                    "unknown search parameter {other:?} for AuditEvent was ignored"
                ));
                continue;
            }
        }
        used.push((key.clone(), value.clone()));
    }
    if strict && !warnings.is_empty() {
        return Err(FhirError::BadRequest(warnings.join("; ")));
    }
    store.flush_audit().await?;
    let (total, rows) = store.audit_rows_matching(&filter, count, offset).await?;
    let mut entries: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "fullUrl": format!("{base}/AuditEvent/{}", row.id),
                "resource": audit_event(row),
                "search": {"mode": "match"},
            })
        })
        .collect();
    if !warnings.is_empty() {
        let issues: Vec<Issue> = warnings
            .into_iter()
            .map(|w| Issue::new("not-supported", w, None))
            .collect();
        entries.push(json!({"resource": operation_outcome("warning", &issues), "search": {"mode": "outcome"}}));
    }
    let mut links = vec![("self", page_url(base, "AuditEvent", &used, None))];
    if ((offset + count) as i64) < total && count > 0 {
        links.push((
            "next",
            page_url(base, "AuditEvent", &used, Some(offset + count)),
        ));
    }
    Ok(fhir_json(
        StatusCode::OK,
        bundle::bundle("searchset", Some(total), links, entries).to_string(),
    ))
}

/// One audit row as the AuditEvent it is, after the read's own check (admins only): read,
/// vread and `_history` of an AuditEvent are all decided by this one check.
async fn audit_stored(store: &Store, user: &AuthUser, id: &str) -> Result<Stored, FhirError> {
    access::require_admin(user)?;
    let not_known = || FhirError::NotFound(format!("AuditEvent/{id} is not known"));
    let row_id: i64 = id.parse().map_err(|_| not_known())?;
    store.flush_audit().await?;
    let row = store.audit_row(row_id).await?.ok_or_else(not_known)?;
    Ok(Stored {
        resource_type: "AuditEvent".into(),
        id: row.id.to_string(),
        version_id: AUDIT_EVENT_VERSION,
        last_updated: row.record.ts.clone(),
        deleted: false,
        json: audit_event(&row).to_string().into(),
    })
}

async fn audit_read(store: &Store, user: &AuthUser, id: &str) -> Result<Response, FhirError> {
    let stored = audit_stored(store, user, id).await?;
    Ok(resource_response(&stored))
}

async fn audit_vread(
    store: &Store,
    user: &AuthUser,
    id: &str,
    version: i64,
) -> Result<Response, FhirError> {
    let stored = audit_stored(store, user, id).await?;
    if version != stored.version_id {
        return Err(FhirError::NotFound(format!(
            "AuditEvent/{id} has no version {version}"
        )));
    }
    Ok(resource_response(&stored))
}

/// The history of an AuditEvent: its one version, if the window admits it.
async fn audit_history(
    store: &Store,
    user: &AuthUser,
    id: &str,
    query: &HistoryQuery,
    base: &str,
) -> Result<Response, FhirError> {
    let stored = audit_stored(store, user, id).await?;
    let versions: Vec<&Stored> = std::iter::once(&stored)
        .filter(|version| query.admits(&version.last_updated))
        .collect();
    let total = versions.len() as i64;
    let entries = versions
        .into_iter()
        .skip(query.offset)
        .take(query.count)
        .map(|version| bundle::history_entry(base, version))
        .collect();
    let links = query.links(&format!("{base}/AuditEvent/{id}/_history"), total);
    Ok(fhir_json(
        StatusCode::OK,
        bundle::bundle("history", Some(total), links, entries).to_string(),
    ))
}

/// How a store failure answers a request: as the FHIR error of its kind, never a bare 500
/// for what the client caused or what a retry cures.
impl From<StoreError> for FhirError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { .. } => FhirError::NotFound(error.to_string()),
            StoreError::Gone { .. } => FhirError::Gone(error.to_string()),
            StoreError::VersionConflict { .. } => FhirError::PreconditionFailed(error.to_string()),
            StoreError::UnresolvedReferences(_) => FhirError::Unprocessable(error.to_string()),
            StoreError::Conflict(message) => FhirError::Conflict(message),
            StoreError::TooCostly(message) => FhirError::BadRequest(message),
            // A constraint violation is the client's doing (e.g. a duplicate), not a 500.
            StoreError::Database(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                FhirError::Conflict(
                    "a resource with these identifying values already exists".into(),
                )
            }
            busy if busy.is_busy() => FhirError::TooManyRequests {
                message: "the database is busy; retry shortly".into(),
                retry_after_secs: 1,
            },
            other => FhirError::Internal(other.to_string()),
        }
    }
}
