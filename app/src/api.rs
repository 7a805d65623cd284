//! What the UI asks the server for through server functions, and the seam the server fills in.
//!
//! The server functions live here (both sides need their signatures); their bodies run on the
//! server and reach the database only through the `Backend` the server provides as context, so
//! this crate never sees SQL, tokens or the access policy — it only relays the request headers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::UserInfo;

/// One row of the patient worklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientSummary {
    pub id: String,
    pub name: String,
    pub mrn: Option<String>,
    pub gender: Option<String>,
    pub birth_date: Option<String>,
    pub unit_id: Option<String>,
    pub unit_name: Option<String>,
    pub bed: Option<String>,
}

/// How many patients each unit has now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitCensus {
    pub id: String,
    pub name: String,
    pub patients: i64,
}

/// What the first page needs in one round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub user: UserInfo,
    pub patients: Vec<PatientSummary>,
    pub census: Vec<UnitCensus>,
    /// The event-log head read before the data: the realtime client resumes after it, so nothing
    /// committed between this render and the socket opening is missed.
    pub seq: i64,
    /// The user's units (their `unit:{id}` rooms announce admissions and transfers).
    pub units: Vec<String>,
    /// Resources behind the panel's badges: active orders and unsigned notes of these patients.
    pub resources: Vec<Value>,
}

/// Who is signed in, and the alerts every page shows: open critical results, active Flags, and
/// the acknowledgements already recorded for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub user: UserInfo,
    /// The user's Practitioner (authors, requesters, performers of what they write).
    pub practitioner: Option<PractitionerRef>,
    pub seq: i64,
    pub alerts: Vec<Value>,
}

/// A reference to the signed-in user's Practitioner, ready to put in a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PractitionerRef {
    pub reference: String,
    pub display: String,
}

/// One patient's chart: every resource the user may see, as of `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    pub patient_id: String,
    pub seq: i64,
    pub resources: Vec<Value>,
    /// Unit and bed names by Location id, for the banner.
    pub locations: Vec<(String, String)>,
}

/// The pharmacy's work: open prescriptions, their verifications and dispenses, as of `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PharmacyQueue {
    pub seq: i64,
    /// The server's date (UTC, `YYYY-MM-DD`): "dispensed today" means this day on both sides.
    pub today: String,
    pub resources: Vec<Value>,
}

#[cfg(feature = "ssr")]
pub mod backend {
    //! The server's side of the server functions.
    use std::{future::Future, pin::Pin, sync::Arc};

    use http::{request::Parts, HeaderMap};

    use super::Workspace;
    use crate::auth::UserInfo;

    pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

    /// Why a server function failed, in words safe to show.
    #[derive(Debug, Clone, PartialEq)]
    pub enum BackendError {
        SignedOut,
        Denied(String),
        Failed(String),
    }

    /// A successful sign-in: who, and the `Set-Cookie` values to send.
    pub struct SignedIn {
        pub user: UserInfo,
        pub cookies: Vec<String>,
    }

    /// Implemented by the server, provided to server functions as `BackendHandle` context.
    pub trait Backend: Send + Sync + 'static {
        fn workspace<'a>(
            &'a self,
            headers: &'a HeaderMap,
        ) -> BoxFuture<'a, Result<Workspace, BackendError>>;
        /// `request` is the whole request head: the server reads the client's address from
        /// what its listener recorded there, never from headers a client can write.
        fn sign_in<'a>(
            &'a self,
            request: &'a Parts,
            username: &'a str,
            password: &'a str,
        ) -> BoxFuture<'a, Result<SignedIn, BackendError>>;
        /// Ends the session; returns the `Set-Cookie` values that clear the cookies (none when
        /// the sign-out was refused).
        fn sign_out<'a>(&'a self, request: &'a Parts) -> BoxFuture<'a, Vec<String>>;
        fn session<'a>(
            &'a self,
            headers: &'a HeaderMap,
        ) -> BoxFuture<'a, Result<super::Session, BackendError>>;
        fn chart<'a>(
            &'a self,
            headers: &'a HeaderMap,
            patient_id: &'a str,
        ) -> BoxFuture<'a, Result<super::Chart, BackendError>>;
        fn pharmacy<'a>(
            &'a self,
            headers: &'a HeaderMap,
        ) -> BoxFuture<'a, Result<super::PharmacyQueue, BackendError>>;
    }

    #[derive(Clone)]
    pub struct BackendHandle(pub Arc<dyn Backend>);
}

use leptos::prelude::*;

/// A backend answer as a server function's result: signed out sends the user to sign in.
#[cfg(feature = "ssr")]
fn answer<T>(result: Result<T, backend::BackendError>) -> Result<T, ServerFnError> {
    use backend::BackendError;
    match result {
        Ok(value) => Ok(value),
        Err(BackendError::SignedOut) => {
            leptos_axum::redirect("/login");
            Err(ServerFnError::new("signed out"))
        }
        Err(BackendError::Denied(why)) | Err(BackendError::Failed(why)) => {
            Err(ServerFnError::new(why))
        }
    }
}

/// The backend and the request's headers, inside a server function.
#[cfg(feature = "ssr")]
async fn backend_and_headers(
) -> Result<(std::sync::Arc<dyn backend::Backend>, http::HeaderMap), ServerFnError> {
    let backend::BackendHandle(backend) = expect_context::<backend::BackendHandle>();
    let parts: http::request::Parts = leptos_axum::extract().await?;
    Ok((backend, parts.headers))
}

/// Everything the worklist shows first.
#[server]
pub async fn load_workspace() -> Result<Workspace, ServerFnError> {
    let (backend, headers) = backend_and_headers().await?;
    answer(backend.workspace(&headers).await)
}

/// The signed-in user and the alerts every page shows.
#[server]
pub async fn load_session() -> Result<Session, ServerFnError> {
    let (backend, headers) = backend_and_headers().await?;
    answer(backend.session(&headers).await)
}

/// One patient's chart.
#[server]
pub async fn load_chart(patient_id: String) -> Result<Chart, ServerFnError> {
    let (backend, headers) = backend_and_headers().await?;
    answer(backend.chart(&headers, &patient_id).await)
}

/// The pharmacy queue.
#[server]
pub async fn load_pharmacy() -> Result<PharmacyQueue, ServerFnError> {
    let (backend, headers) = backend_and_headers().await?;
    answer(backend.pharmacy(&headers).await)
}

/// Signs in and sets the session cookies; works as a plain form post before hydration too.
#[server]
pub async fn sign_in(username: String, password: String) -> Result<UserInfo, ServerFnError> {
    use backend::{BackendError, BackendHandle};
    let BackendHandle(backend) = expect_context::<BackendHandle>();
    let parts: http::request::Parts = leptos_axum::extract().await?;
    match backend.sign_in(&parts, &username, &password).await {
        Ok(signed_in) => {
            let response = expect_context::<leptos_axum::ResponseOptions>();
            for cookie in signed_in.cookies {
                if let Ok(value) = http::HeaderValue::from_str(&cookie) {
                    response.append_header(http::header::SET_COOKIE, value);
                }
            }
            leptos_axum::redirect("/");
            Ok(signed_in.user)
        }
        Err(BackendError::SignedOut) => Err(ServerFnError::new("wrong username or password")),
        Err(BackendError::Denied(why)) | Err(BackendError::Failed(why)) => {
            Err(ServerFnError::new(why))
        }
    }
}

/// Ends the session and returns to the sign-in page.
#[server]
pub async fn sign_out() -> Result<(), ServerFnError> {
    use backend::BackendHandle;
    let BackendHandle(backend) = expect_context::<BackendHandle>();
    let parts: http::request::Parts = leptos_axum::extract().await?;
    let response = expect_context::<leptos_axum::ResponseOptions>();
    for cookie in backend.sign_out(&parts).await {
        if let Ok(value) = http::HeaderValue::from_str(&cookie) {
            response.append_header(http::header::SET_COOKIE, value);
        }
    }
    leptos_axum::redirect("/login");
    Ok(())
}
