//! Who the signed-in user is, as the server and the browser both see it.
//!
//! Shared types only: no token handling, no secrets (those stay in the server's `auth`).

use serde::{Deserialize, Serialize};

/// The four roles of Rounds. What each may see is the server's access policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Physician,
    Nurse,
    Pharmacist,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Physician, Role::Nurse, Role::Pharmacist, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Physician => "physician",
            Role::Nurse => "nurse",
            Role::Pharmacist => "pharmacist",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// How the role reads in the UI.
    pub fn label(self) -> &'static str {
        match self {
            Role::Physician => "Physician",
            Role::Nurse => "Nurse",
            Role::Pharmacist => "Pharmacist",
            Role::Admin => "Administrator",
        }
    }
}

/// The signed-in user as `POST /auth/login` and `GET /auth/me` describe them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text_and_json() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(
                serde_json::to_string(&role).unwrap(),
                format!("\"{}\"", role.as_str())
            );
        }
        assert_eq!(Role::parse("surgeon"), None);
    }
}
