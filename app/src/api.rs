//! What the UI asks the server for through server functions, and the seam the server fills in.
//!
//! The server functions live here (both sides need their signatures); their bodies run on the
//! server and reach the database only through the `Backend` the server provides as context, so
//! this crate never sees SQL, tokens or the access policy — it only relays the request headers.

use serde::{Deserialize, Serialize};

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
}

#[cfg(feature = "ssr")]
pub mod backend {
    //! The server's side of the server functions.
    use std::{future::Future, pin::Pin, sync::Arc};

    use http::HeaderMap;

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
        fn sign_in<'a>(
            &'a self,
            headers: &'a HeaderMap,
            username: &'a str,
            password: &'a str,
        ) -> BoxFuture<'a, Result<SignedIn, BackendError>>;
        /// Ends the session; returns the `Set-Cookie` values that clear the cookies.
        fn sign_out<'a>(&'a self, headers: &'a HeaderMap) -> BoxFuture<'a, Vec<String>>;
    }

    #[derive(Clone)]
    pub struct BackendHandle(pub Arc<dyn Backend>);
}

use leptos::prelude::*;

/// Everything the workspace page shows first; `Err` with "signed out" sends the user to sign in.
#[server]
pub async fn load_workspace() -> Result<Workspace, ServerFnError> {
    use backend::{BackendError, BackendHandle};
    let BackendHandle(backend) = expect_context::<BackendHandle>();
    let parts: http::request::Parts = leptos_axum::extract().await?;
    match backend.workspace(&parts.headers).await {
        Ok(workspace) => Ok(workspace),
        Err(BackendError::SignedOut) => {
            leptos_axum::redirect("/login");
            Err(ServerFnError::new("signed out"))
        }
        Err(BackendError::Denied(why)) | Err(BackendError::Failed(why)) => {
            Err(ServerFnError::new(why))
        }
    }
}

/// Signs in and sets the session cookies; works as a plain form post before hydration too.
#[server]
pub async fn sign_in(username: String, password: String) -> Result<UserInfo, ServerFnError> {
    use backend::{BackendError, BackendHandle};
    let BackendHandle(backend) = expect_context::<BackendHandle>();
    let parts: http::request::Parts = leptos_axum::extract().await?;
    match backend.sign_in(&parts.headers, &username, &password).await {
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
    for cookie in backend.sign_out(&parts.headers).await {
        if let Ok(value) = http::HeaderValue::from_str(&cookie) {
            response.append_header(http::header::SET_COOKIE, value);
        }
    }
    leptos_axum::redirect("/login");
    Ok(())
}
