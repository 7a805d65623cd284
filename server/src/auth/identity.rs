//! Who is signed in: the plain identity types every layer above the store shares (the user, the
//! roles, the purposes a token may have).
//!
//! The bottom of auth: it imports nothing from the crate, so that `access`, the realtime path and
//! FHIR Subscriptions can name a user without depending on how one signs in.

use serde::{Deserialize, Serialize};

pub use app::auth::{Role, UserInfo};

/// Token purposes; a token for one purpose is refused for any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Access,
    Ws,
    /// Binding one FHIR Subscription on `/ws/subscriptions-r4`.
    Bind,
}

/// A signed-in user, from `Authorization: Bearer` or the session cookie.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub session_id: String,
    /// The Practitioner resource this account acts as.
    pub practitioner_id: Option<String>,
    /// Unit (Location) ids the user works on.
    pub units: Vec<String>,
    /// Whether the request was authenticated by cookie (and so needs CSRF protection).
    pub via_cookie: bool,
}

impl AuthUser {
    pub fn info(&self) -> UserInfo {
        UserInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            role: self.role,
        }
    }
}
