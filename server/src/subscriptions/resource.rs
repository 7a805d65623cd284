//! The Subscription resource as Rounds accepts it: the checks and normalisation of a write
//! (`prepare`), who may use one (`may_use`, `search_owner`), and an active one as the matcher
//! evaluates it (`Active`). The REST API's generic create, update, delete and search call these
//! through `crate::subscriptions::hook`.

use std::time::Duration;

use app::events::Action;
use serde_json::{json, Value};

use super::{
    criteria::{self, Criteria},
    topics::{self, Shape},
};
use crate::{
    auth::identity::{AuthUser, Role},
    fhir::error::FhirError,
    store::EventRecord,
};

/// Server-stamped: the user whose rights the subscription runs with (`owner_of` reads it).
pub use crate::store::index::{owner_of, OWNER_EXTENSION};
/// Medplum's interaction filter (`create`, `update` or `delete`), honoured as Medplum does.
pub const INTERACTION_EXTENSION: &str =
    "https://medplum.com/fhir/StructureDefinition/subscription-supported-interaction";
/// The Backport IG's heartbeat period, in seconds, on `Subscription.channel`.
pub const HEARTBEAT_EXTENSION: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period";
/// How long a binding token may be used to bind.
pub const BIND_TOKEN_TTL: Duration = Duration::from_secs(10 * 60);
/// Heartbeat period when the Subscription names none.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(60);

/// An active Subscription as the matcher evaluates it.
#[derive(Debug, Clone)]
pub struct Active {
    pub id: String,
    pub owner: String,
    /// What it matches: one criteria, or a topic's triggers narrowed by its filters.
    pub criteria: Vec<Criteria>,
    /// How its notifications are rendered.
    pub shape: Shape,
    /// Empty: every interaction.
    pub interactions: Vec<Action>,
    pub heartbeat: Duration,
    pub start_seq: i64,
    /// The last event number handed out.
    pub count: i64,
}

fn extension<'a>(resource: &'a Value, url: &str) -> Vec<&'a Value> {
    resource
        .get("extension")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter(|e| e["url"] == url).collect())
        .unwrap_or_default()
}

fn interactions_of(resource: &Value) -> Result<Vec<Action>, String> {
    extension(resource, INTERACTION_EXTENSION)
        .into_iter()
        .map(|e| match e["valueCode"].as_str() {
            Some("create") => Ok(Action::Created),
            Some("update") => Ok(Action::Updated),
            Some("delete") => Ok(Action::Deleted),
            other => Err(format!(
                "the supported-interaction extension must be create, update or delete, not {other:?}"
            )),
        })
        .collect()
}

fn heartbeat_of(resource: &Value) -> Result<Duration, String> {
    match extension(&resource["channel"], HEARTBEAT_EXTENSION).first() {
        None => Ok(DEFAULT_HEARTBEAT),
        Some(e) => e["valueUnsignedInt"]
            .as_u64()
            .filter(|s| (1..=86_400).contains(s))
            .map(Duration::from_secs)
            .ok_or_else(|| "the heartbeat period must be 1 to 86400 seconds".to_owned()),
    }
}

impl Active {
    /// The subscription a stored version describes, if it is an active websocket one.
    pub fn from_resource(id: &str, resource: &Value, start_seq: i64, count: i64) -> Option<Self> {
        if resource["status"] != "active" || resource["channel"]["type"] != "websocket" {
            return None;
        }
        let (criteria, shape) = topics::matching_of(resource).ok()?;
        Some(Self {
            id: id.to_owned(),
            owner: owner_of(resource)?.to_owned(),
            criteria,
            shape,
            interactions: interactions_of(resource).ok()?,
            heartbeat: heartbeat_of(resource).ok()?,
            start_seq,
            count,
        })
    }

    pub(super) fn wants(&self, event: &EventRecord, facts: &criteria::Facts) -> bool {
        (self.interactions.is_empty() || self.interactions.contains(&event.action))
            && self
                .criteria
                .iter()
                .any(|c| c.matches_facts(&event.resource_type, &event.resource_id, facts))
    }
}

/// Checks and normalises a Subscription before it is written: websocket channel, a criteria we
/// can evaluate, known extensions; `requested` becomes `active`; the owner is stamped (kept from
/// the previous version on update, so nobody can hand a subscription to someone else).
pub fn prepare(
    user: &AuthUser,
    previous: Option<&Value>,
    body: &mut Value,
) -> Result<(), FhirError> {
    let invalid = |message: String| FhirError::BadRequest(message);
    if body["channel"]["type"] != "websocket" {
        return Err(invalid(
            "only channel.type = websocket is supported (bind through $get-ws-binding-token)"
                .into(),
        ));
    }
    topics::matching_of(body).map_err(|e| invalid(format!("criteria: {e}")))?;
    interactions_of(body).map_err(invalid)?;
    heartbeat_of(body).map_err(invalid)?;
    match body["status"].as_str() {
        Some("requested") | Some("active") => body["status"] = json!("active"),
        Some("off") => {}
        other => {
            return Err(invalid(format!(
                "status must be requested, active or off, not {other:?}"
            )))
        }
    }
    let owner = previous.and_then(owner_of).unwrap_or(&user.id).to_owned();
    let Some(object) = body.as_object_mut() else {
        return Err(invalid("a Subscription is a JSON object".into()));
    };
    let mut extensions: Vec<Value> = object
        .get("extension")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|e| e["url"] != OWNER_EXTENSION)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    extensions.push(json!({"url": OWNER_EXTENSION, "valueString": owner}));
    object.insert("extension".into(), Value::Array(extensions));
    Ok(())
}

/// Whether `user` may see and use the Subscription `resource` (its owner, or an admin).
pub fn may_use(user: &AuthUser, resource: &Value) -> bool {
    user.role == Role::Admin || owner_of(resource) == Some(user.id.as_str())
}
