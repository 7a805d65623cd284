//! The web UI: server-rendered Leptos pages, their server functions, and static files.
//!
//! Pages other than `/login` need a signed-in user: a request without a valid access cookie is
//! refreshed transparently when it carries a refresh cookie, and otherwise sent to `/login`.
//! Server functions reach the data through `ServerBackend`, which applies the same access policy
//! as the FHIR API. Unknown paths answer 404.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use app::api::{
    backend::{Backend, BackendError, BackendHandle, BoxFuture, SignedIn},
    Chart, PatientSummary, PharmacyQueue, PractitionerRef, Session, UnitCensus, Workspace,
};
use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{header, request::Parts, Extensions, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    Router,
};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use serde_json::Value;
use tower::ServiceExt;
use tower_http::{
    compression::{
        predicate::{DefaultPredicate, Predicate, SizeAbove},
        CompressionLayer,
    },
    services::ServeDir,
};

use crate::{
    access,
    auth::{
        self,
        identity::{AuthUser, Role},
    },
    fhir::{error::FhirError, search::SearchQuery},
    state::AppState,
    store::Visibility,
};

/// Rows per query when a screen loads everything of one kind: pages are read until the last, so
/// a screen is complete however large the chart (never "the first N, then filtered").
const PAGE: usize = 1000;

/// The clinical types a patient's chart shows.
const CHART_TYPES: &[&str] = &[
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "ServiceRequest",
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "MedicationDispense",
    "DocumentReference",
    "Flag",
    "Task",
];

/// `Cache-Control` of what names patients: pages and server functions. `no-cache` alone would
/// let the browser keep a chart on disk on a shared ward workstation after sign-out.
const PATIENT_DATA: HeaderValue = HeaderValue::from_static("no-cache, no-store");
/// `Cache-Control` of a file whose name carries a hash of its content: it never changes.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// `Cache-Control` of any other static file: kept, but asked again (304) before each use.
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");
/// Answers smaller than this go as they are: compressing them saves less than its cost.
const COMPRESS_ABOVE: u16 = 1024;

/// Pages, server functions and static files, with the sign-in gate in front of the pages.
///
/// Pages and server functions are compressed as they are sent (brotli or gzip, by
/// `Accept-Encoding`); static files were compressed when the site was built (`*.br`, `*.gz`
/// beside each file) and are served as such.
pub fn routes(state: &AppState) -> Router<AppState> {
    let backend = BackendHandle(Arc::new(ServerBackend {
        state: state.clone(),
    }));
    let pages = Router::new()
        .leptos_routes_with_context(
            state,
            generate_route_list(app::App),
            move || provide_context(backend.clone()),
            {
                let options = state.leptos.clone();
                move || app::shell(options.clone())
            },
        )
        .layer(middleware::from_fn_with_state(state.clone(), sign_in_gate))
        .layer(middleware::map_response(not_kept))
        .layer(
            CompressionLayer::new()
                .br(true)
                .gzip(true)
                .compress_when(DefaultPredicate::new().and(SizeAbove::new(COMPRESS_ABOVE))),
        );
    let files = ServeDir::new(state.leptos.site_root.as_ref())
        .precompressed_br()
        .precompressed_gzip();
    pages.fallback(move |request: Request| static_or_404(files.clone(), request))
}

/// Pages and server functions name patients: never kept by the browser or a proxy.
async fn not_kept(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(PATIENT_DATA);
    response
}

/// Serves files of the compiled site (`/pkg/…`, `/favicon.svg`) and 404 for everything else.
async fn static_or_404(files: ServeDir, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if request.method() == Method::GET || request.method() == Method::HEAD {
        let Ok(mut response) = files.oneshot(request).await;
        if response.status() != StatusCode::NOT_FOUND {
            let policy = if is_hashed_asset(&path) {
                IMMUTABLE
            } else {
                REVALIDATE
            };
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, policy);
            // Which file was sent (`.br`, `.gz` or plain) depends on the request's
            // `Accept-Encoding`: a cache must keep them apart.
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            return response.map(Body::new);
        }
    }
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Not found: {path}\n"),
    )
        .into_response()
}

/// Whether `path` names a build output whose file name carries its content hash, as cargo-leptos
/// names them (`/pkg/rounds.<22 characters of base64url MD5>.wasm`): a new build gives it a new
/// name, so it may be kept for ever. Files cargo-leptos leaves unhashed (wasm-bindgen's
/// `snippets/`, `public/`) are not.
fn is_hashed_asset(path: &str) -> bool {
    const HASH_LEN: usize = 22;
    let Some(file) = path.strip_prefix("/pkg/") else {
        return false;
    };
    let parts: Vec<&str> = file.split('.').collect();
    // stem . hash . extension: neither the first part nor the last is the hash.
    !file.contains('/')
        && parts.len() >= 3
        && parts[1..parts.len() - 1].iter().any(|part| {
            part.len() == HASH_LEN
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Redirects signed-out page requests to `/login`, refreshing an expired session on the way.
async fn sign_in_gate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    // Server functions answer for themselves; only pages are gated.
    if path.starts_with("/api/") {
        return next.run(request).await;
    }
    let signed_in = state
        .auth
        .authenticate(request.headers(), &Method::GET)
        .await
        .is_ok();
    if path == "/login" {
        return if signed_in {
            Redirect::to("/").into_response()
        } else {
            next.run(request).await
        };
    }
    if signed_in {
        return next.run(request).await;
    }
    // Try the refresh cookie: a shift-long session should not need the password again.
    let peer = peer(request.extensions());
    match state
        .auth
        .refresh_session(request.headers(), peer, |session_id, reason| {
            state.sessions.end(session_id, reason)
        })
        .await
    {
        Ok(refreshed) => {
            // Let this request's server functions see the new access token.
            let cookie_line = format!("{}={}", auth::ACCESS_COOKIE, refreshed.access_token);
            if let Ok(value) = HeaderValue::from_str(&cookie_line) {
                request.headers_mut().insert(header::COOKIE, value);
            }
            let mut response = next.run(request).await;
            for cookie in refreshed.cookies {
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        Err(_) => Redirect::to("/login").into_response(),
    }
}

/// The TCP peer the listener recorded for this request.
fn peer(extensions: &Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer)
}

/// The server's side of the UI's server functions.
struct ServerBackend {
    state: AppState,
}

impl ServerBackend {
    async fn user(&self, headers: &HeaderMap) -> Result<AuthUser, BackendError> {
        self.state
            .auth
            .authenticate(headers, &Method::GET)
            .await
            .map_err(|_| BackendError::SignedOut)
    }

    /// Every resource of `resource_type` matching `pairs` that may leave for `user`: the store
    /// applies the rule in SQL, page after page to the last, and every row is judged again at
    /// the exit gate.
    async fn all(
        &self,
        user: &AuthUser,
        visibility: &Visibility,
        resource_type: &str,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<crate::store::Stored>, BackendError> {
        let failed = |e: FhirError| BackendError::Failed(e.to_string());
        let scoped = visibility.clone().for_type(user, resource_type);
        let count = PAGE.to_string();
        let mut found = Vec::new();
        let mut offset = 0usize;
        loop {
            let offset_text = offset.to_string();
            let mut page_pairs = pairs.to_vec();
            page_pairs.push(("_count", &count));
            page_pairs.push(("_offset", &offset_text));
            if !pairs.iter().any(|(name, _)| *name == "_sort") {
                // A stable order, so that pages neither skip nor repeat.
                page_pairs.push(("_sort", "_id"));
            }
            let query = search(resource_type, &page_pairs).map_err(failed)?;
            let page = self
                .state
                .store
                .search(&query, &scoped)
                .await
                .map_err(|e| failed(e.into()))?;
            let read = page.matches.len();
            found.extend(page.matches.into_iter().filter(|stored| {
                access::release(user, visibility, &access::Facts::of_stored(stored), None).allowed()
            }));
            if read < PAGE {
                return Ok(found);
            }
            offset += read;
        }
    }

    /// [`Self::all`], as JSON.
    async fn find(
        &self,
        user: &AuthUser,
        visibility: &Visibility,
        resource_type: &str,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<Value>, BackendError> {
        Ok(self
            .all(user, visibility, resource_type, pairs)
            .await?
            .iter()
            .filter_map(|stored| serde_json::from_str(&stored.json).ok())
            .collect())
    }

    async fn visibility(&self, user: &AuthUser) -> Result<Visibility, BackendError> {
        access::visibility(&self.state.store, user)
            .await
            .map_err(|e| BackendError::Failed(e.to_string()))
    }

    /// Open critical results, active Flags and the acknowledgements recorded for them.
    async fn load_session(&self, headers: &HeaderMap) -> Result<Session, BackendError> {
        let user = self.user(headers).await?;
        let seq = self.state.store.head();
        let visibility = self.visibility(&user).await?;
        let mut alerts = Vec::new();
        if user.role != Role::Pharmacist {
            let acknowledgements = self
                .find(
                    &user,
                    &visibility,
                    "Task",
                    &[("code", app::fhir::ACKNOWLEDGE), ("status", "completed")],
                )
                .await?;
            let acknowledged: std::collections::HashSet<String> = acknowledgements
                .iter()
                .filter_map(|task| task.pointer("/focus/reference").and_then(Value::as_str))
                .map(str::to_owned)
                .collect();
            // Exactly the critical results, by the `critical` index: all of them, however many
            // results the user may see.
            for resource_type in ["Observation", "DiagnosticReport"] {
                for resource in self
                    .find(
                        &user,
                        &visibility,
                        resource_type,
                        &[("critical", "true"), ("status", "final,amended,corrected")],
                    )
                    .await?
                {
                    let key = format!(
                        "{resource_type}/{}",
                        resource
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                    );
                    if !acknowledged.contains(&key) {
                        alerts.push(resource);
                    }
                }
            }
            alerts.extend(
                self.find(&user, &visibility, "Flag", &[("status", "active")])
                    .await?,
            );
            alerts.extend(acknowledgements);
        }
        let practitioner = match &user.practitioner_id {
            Some(id) => Some(PractitionerRef {
                reference: format!("Practitioner/{id}"),
                display: user.name.clone(),
            }),
            None => None,
        };
        Ok(Session {
            user: user.info(),
            practitioner,
            seq,
            alerts,
        })
    }

    /// Everything the user may see of one patient.
    async fn load_chart(
        &self,
        headers: &HeaderMap,
        patient_id: &str,
    ) -> Result<Chart, BackendError> {
        let user = self.user(headers).await?;
        if !app::fhir::is_fhir_id(patient_id) {
            return Err(BackendError::Failed(format!(
                "{patient_id:?} is not a patient id"
            )));
        }
        let seq = self.state.store.head();
        let visibility = self.visibility(&user).await?;
        if !visibility.allows_patient(patient_id) {
            return Err(BackendError::Denied(
                "You have no access to this patient: not on their care team or unit.".into(),
            ));
        }
        let patient = match self.state.store.read("Patient", patient_id).await {
            Ok(crate::store::ReadOutcome::Found(stored))
                if access::release(
                    &user,
                    &visibility,
                    &access::Facts::of_stored(&stored),
                    None,
                )
                .allowed() =>
            {
                serde_json::from_str::<Value>(&stored.json)
                    .map_err(|e| BackendError::Failed(e.to_string()))?
            }
            Ok(_) => return Err(BackendError::Denied("No such patient.".into())),
            Err(e) => return Err(BackendError::Failed(FhirError::from(e).to_string())),
        };
        let reference = format!("Patient/{patient_id}");
        let mut resources = vec![patient];
        for resource_type in CHART_TYPES {
            resources.extend(
                self.find(
                    &user,
                    &visibility,
                    resource_type,
                    &[("patient", reference.as_str())],
                )
                .await?,
            );
        }
        let locations = self
            .find(&user, &Visibility::everything(), "Location", &[])
            .await?
            .iter()
            .filter_map(|location| {
                Some((
                    location.get("id")?.as_str()?.to_owned(),
                    location.get("name")?.as_str()?.to_owned(),
                ))
            })
            .collect();
        self.audit_read(&user, "chart", patient_id);
        Ok(Chart {
            patient_id: patient_id.to_owned(),
            seq,
            resources,
            locations,
        })
    }

    /// Open prescriptions with their verifications and dispenses.
    async fn load_pharmacy(&self, headers: &HeaderMap) -> Result<PharmacyQueue, BackendError> {
        let user = self.user(headers).await?;
        if !matches!(user.role, Role::Pharmacist | Role::Admin) {
            return Err(BackendError::Denied(
                "The pharmacy queue is for pharmacists.".into(),
            ));
        }
        let seq = self.state.store.head();
        let visibility = self.visibility(&user).await?;
        let mut resources = self
            .find(
                &user,
                &visibility,
                "MedicationRequest",
                &[("status", "active,on-hold,draft")],
            )
            .await?;
        resources.extend(
            self.find(&user, &visibility, "Task", &[("code", app::fhir::APPROVE)])
                .await?,
        );
        resources.extend(
            self.find(&user, &visibility, "MedicationDispense", &[])
                .await?,
        );
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        Ok(PharmacyQueue {
            seq,
            today,
            resources,
        })
    }

    fn audit_read(&self, user: &AuthUser, operation: &str, patient_id: &str) {
        self.state.store.audit(crate::store::AuditRecord {
            ts: crate::fhir::date::format_instant(chrono::Utc::now()),
            user_id: Some(user.id.clone()),
            action: "R",
            operation: operation.into(),
            resource_type: Some("Patient".into()),
            resource_id: Some(patient_id.to_owned()),
            patient_id: Some(patient_id.to_owned()),
            outcome: "0",
            detail: None,
            source: None,
        });
    }

    async fn load_workspace(&self, headers: &HeaderMap) -> Result<Workspace, BackendError> {
        let user = self.user(headers).await?;
        let seq = self.state.store.head();
        let failed = |e: FhirError| BackendError::Failed(e.to_string());
        let store = &self.state.store;
        let everything = crate::store::Visibility::everything();

        let locations = self.all(&user, &everything, "Location", &[]).await?;
        let mut location_names: HashMap<String, String> = HashMap::new();
        for stored in &locations {
            if let Ok(location) = serde_json::from_str::<app::fhir::Location>(&stored.json) {
                location_names.insert(
                    stored.id.clone(),
                    location.name.unwrap_or_else(|| stored.id.clone()),
                );
            }
        }
        let census = store
            .census()
            .await
            .map_err(|e| failed(e.into()))?
            .into_iter()
            .map(|(id, patients)| UnitCensus {
                name: location_names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| id.clone()),
                id,
                patients,
            })
            .collect();

        let visibility = access::visibility(&self.state.store, &user)
            .await
            .map_err(failed)?;
        let patients = self.all(&user, &visibility, "Patient", &[]).await?;
        let encounters = self
            .all(
                &user,
                &visibility,
                "Encounter",
                &[("status", "in-progress,arrived,triaged,onleave")],
            )
            .await?;
        // patient id → (unit id, bed id)
        let mut placement: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
        for stored in &encounters {
            let Ok(value) = serde_json::from_str::<Value>(&stored.json) else {
                continue;
            };
            let Some(patient) = app::fhir::patient_id(&value) else {
                continue;
            };
            let unit = app::fhir::encounter_unit(&value);
            let bed = serde_json::from_value::<app::fhir::Encounter>(value)
                .ok()
                .and_then(|encounter| {
                    encounter.location.into_iter().rev().find_map(|entry| {
                        let is_bed = entry.physical_type.as_ref().is_some_and(|t| {
                            t.coding.iter().any(|c| c.code.as_deref() == Some("bd"))
                        });
                        let active = entry.status.as_deref().is_none_or(|s| s == "active");
                        (is_bed && active)
                            .then(|| {
                                entry
                                    .location
                                    .reference
                                    .as_deref()
                                    .and_then(|r| app::fhir::reference_id(r, "Location"))
                                    .map(str::to_owned)
                            })
                            .flatten()
                    })
                });
            placement.insert(patient, (unit, bed));
        }
        let mut rows: Vec<PatientSummary> = patients
            .iter()
            .filter_map(|stored| {
                let patient = serde_json::from_str::<app::fhir::Patient>(&stored.json).ok()?;
                let (unit_id, bed_id) = placement.get(&stored.id).cloned().unwrap_or_default();
                Some(PatientSummary {
                    id: stored.id.clone(),
                    name: display_name(&patient),
                    mrn: patient.identifier.iter().find_map(|i| i.value.clone()),
                    gender: patient.gender.clone(),
                    birth_date: patient.birth_date.clone(),
                    unit_name: unit_id
                        .as_ref()
                        .and_then(|u| location_names.get(u).cloned()),
                    bed: bed_id.map(|b| location_names.get(&b).cloned().unwrap_or(b)),
                    unit_id,
                })
            })
            .collect();
        rows.sort_by(|a, b| (&a.unit_name, &a.bed, &a.name).cmp(&(&b.unit_name, &b.bed, &b.name)));
        for row in &rows {
            self.audit_read(&user, "worklist", &row.id);
        }
        let mut resources = self
            .find(
                &user,
                &visibility,
                "ServiceRequest",
                &[("status", "active,on-hold,draft")],
            )
            .await?;
        resources.extend(
            self.find(
                &user,
                &visibility,
                "DocumentReference",
                &[("status", "current")],
            )
            .await?
            .into_iter()
            .filter(|note| note.get("docStatus").and_then(Value::as_str) != Some("final")),
        );
        Ok(Workspace {
            user: user.info(),
            patients: rows,
            census,
            seq,
            units: user.units.clone(),
            resources,
        })
    }
}

fn search(resource_type: &str, pairs: &[(&str, &str)]) -> Result<SearchQuery, FhirError> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    SearchQuery::parse(resource_type, &pairs).map_err(|e| FhirError::BadRequest(e.0))
}

/// "Family, Given" from the first official (or any) name.
pub fn display_name(patient: &app::fhir::Patient) -> String {
    let name = patient
        .name
        .iter()
        .find(|n| n.use_.as_deref() == Some("official"))
        .or_else(|| patient.name.first());
    match name {
        Some(name) => {
            if let Some(text) = &name.text {
                return text.clone();
            }
            let given = name.given.join(" ");
            match &name.family {
                Some(family) if !given.is_empty() => format!("{family}, {given}"),
                Some(family) => family.clone(),
                None => given,
            }
        }
        None => "(no name)".to_owned(),
    }
}

impl Backend for ServerBackend {
    fn workspace<'a>(
        &'a self,
        headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Workspace, BackendError>> {
        Box::pin(self.load_workspace(headers))
    }

    fn sign_in<'a>(
        &'a self,
        request: &'a Parts,
        username: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<SignedIn, BackendError>> {
        Box::pin(async move {
            let headers = &request.headers;
            let address = self
                .state
                .auth
                .client_address(headers, peer(&request.extensions));
            match self.state.auth.sign_in(username, password, &address).await {
                Ok((user, sid, refresh)) => {
                    let issued = self
                        .state
                        .auth
                        .session_cookies(headers, &user, &sid, &refresh)
                        .map_err(|e| BackendError::Failed(e.to_string()))?;
                    Ok(SignedIn {
                        user: issued.user,
                        cookies: issued.cookies,
                    })
                }
                Err(FhirError::Unauthorized(_)) => Err(BackendError::SignedOut),
                Err(other) => Err(BackendError::Denied(other.to_string())),
            }
        })
    }

    fn sign_out<'a>(&'a self, request: &'a Parts) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let peer = peer(&request.extensions);
            match self
                .state
                .auth
                .end_session(&request.headers, peer, |session_id, reason| {
                    self.state.sessions.end(session_id, reason)
                })
                .await
            {
                Ok(()) => auth::cleared_cookies(),
                Err(error) => {
                    tracing::warn!(%error, "sign-out refused");
                    Vec::new()
                }
            }
        })
    }

    fn session<'a>(
        &'a self,
        headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Session, BackendError>> {
        Box::pin(self.load_session(headers))
    }

    fn chart<'a>(
        &'a self,
        headers: &'a HeaderMap,
        patient_id: &'a str,
    ) -> BoxFuture<'a, Result<Chart, BackendError>> {
        Box::pin(self.load_chart(headers, patient_id))
    }

    fn pharmacy<'a>(
        &'a self,
        headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<PharmacyQueue, BackendError>> {
        Box::pin(self.load_pharmacy(headers))
    }
}

#[cfg(test)]
mod tests {
    use super::is_hashed_asset;

    #[test]
    fn only_build_outputs_named_by_their_hash_are_immutable() {
        for hashed in [
            "/pkg/rounds.Qptnxqy1Gu0fN0xta1ccKg.wasm",
            "/pkg/rounds.oSIF6_PaghQl_L5teX-Bow.js",
            "/pkg/rounds_bg.wasm.d.zZepQ_KJlYgRwsyrMlCFCQ.ts",
        ] {
            assert!(is_hashed_asset(hashed), "{hashed}");
        }
        for plain in [
            "/pkg/rounds.wasm",
            "/pkg/rounds.css",
            "/favicon.svg",
            "/pkg/Qptnxqy1Gu0fN0xta1ccKg.wasm",
            "/pkg/rounds.Qptnxqy1Gu0fN0xta1ccKg",
            "/pkg/snippets/x.Qptnxqy1Gu0fN0xta1ccKg.js",
            "/pkg/rounds.Qptnxqy1Gu0fN0xta1cc!g.wasm",
            "/other/rounds.Qptnxqy1Gu0fN0xta1ccKg.wasm",
        ] {
            assert!(!is_hashed_asset(plain), "{plain}");
        }
    }
}
