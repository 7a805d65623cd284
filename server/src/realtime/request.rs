//! The checks of one `subscription` request, the same for a socket (`/ws`) and a long poll
//! (`/ws/poll`): what every request must pass whatever the user may see, then which rooms the
//! user may join.

use std::collections::HashSet;

use app::{
    events::{parse_room, Room},
    wire::{self, Subscribe},
};

use crate::{access, auth::identity::AuthUser, store::Visibility};

/// Subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS: usize = 32;
/// Distinct rooms one connection may be in.
pub const MAX_ROOMS: usize = 512;

/// The `?token=` of a request, if any.
pub fn query_token(query: Option<&str>) -> Option<String> {
    query.and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "token")
            .map(|(_, value)| value.into_owned())
    })
}

/// Why a request is refused: the code and the message of its `error` frame (or poll answer).
pub type Refusal = (&'static str, String);

/// The refusal of a request that needs the event log while the database is out of reach.
pub fn log_unavailable() -> Refusal {
    (
        "unavailable",
        "the event log is unavailable; retry".to_owned(),
    )
}

/// A `subscription` request that passed the checks every request must pass, whatever the
/// user may see: its rooms parsed, sorted and without repeats.
pub struct Checked {
    pub subscription_id: String,
    pub rooms: Vec<Room>,
    pub types: HashSet<String>,
    pub after_seq: Option<i64>,
}

/// The checks of one `subscription` request (socket or long poll): id, resource types,
/// `after_seq`, room names. The first failure refuses the whole request.
pub fn check(request: Subscribe) -> Result<Checked, Refusal> {
    let Subscribe {
        subscription_id,
        patient_ids,
        resource_types,
        rooms,
        after_seq,
    } = request;
    if subscription_id.is_empty() || subscription_id.len() > 64 {
        return Err((
            "invalid_message",
            "subscription_id must be 1 to 64 characters".into(),
        ));
    }
    for resource_type in &resource_types {
        if !app::fhir::RESOURCE_TYPES.contains(&resource_type.as_str()) {
            return Err((
                "invalid_resource_type",
                format!("{resource_type:?} is not a resource type Rounds serves"),
            ));
        }
    }
    if after_seq.is_some_and(|seq| seq < 0) {
        return Err(("invalid_message", "after_seq must be 0 or more".into()));
    }
    let mut parsed = Vec::new();
    for name in patient_ids
        .iter()
        .map(|id| app::events::patient_room(id))
        .chain(rooms)
    {
        match parse_room(&name) {
            Ok(room) => parsed.push(room),
            Err(error) => return Err(("invalid_room", error.to_string())),
        }
    }
    parsed.sort_by_key(|room| room.to_string());
    parsed.dedup();
    Ok(Checked {
        subscription_id,
        rooms: parsed,
        types: resource_types.into_iter().collect(),
        after_seq,
    })
}

/// The join-time access check: which of `rooms` the user may join, and why not the others.
pub fn join(
    user: &AuthUser,
    visibility: &Visibility,
    rooms: Vec<Room>,
) -> (HashSet<String>, Vec<wire::Denied>) {
    let mut granted = HashSet::new();
    let mut denied = Vec::new();
    for room in rooms {
        match access::may_join(user, visibility, &room) {
            Ok(()) => {
                granted.insert(room.to_string());
            }
            Err(reason) => denied.push(wire::Denied {
                room: room.to_string(),
                reason: reason.to_owned(),
            }),
        }
    }
    (granted, denied)
}
