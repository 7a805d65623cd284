//! The `AuthUser` extractor: a handler that takes an `AuthUser` is only reached signed in.
//!
//! An extractor is part of its handler, so it may take the application state: it reaches
//! [`Auth`](super::signin::Auth) through it.

use axum::{
    extract::{FromRef, FromRequestParts},
    http::request::Parts,
};

use super::identity::AuthUser;
use crate::{fhir::error::FhirError, state::AppState};

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        state.auth.authenticate(&parts.headers, &parts.method).await
    }
}
