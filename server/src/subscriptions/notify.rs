//! What a Subscription's sockets and operations send: the status heading every Bundle (R4B
//! SubscriptionStatus or the R4 Parameters), the focus entries, and the `handshake`,
//! `heartbeat` and `event-notification` Bundles, each checked against the owner's access now.

use app::events::Action;
use chrono::Utc;
use serde_json::{json, Value};

use super::{
    resource::Active,
    topics::{self, Content, Shape},
};
use crate::{
    access,
    auth::identity::{AuthUser, Role},
    fhir::date::format_instant,
    store::{EventRecord, Store},
};

/// What a status says about one Subscription.
pub struct Said<'a> {
    pub(super) id: &'a str,
    pub(super) shape: &'a Shape,
    /// `active`, `off` or `error`.
    pub(super) state: &'a str,
    /// The last number handed out.
    pub(super) count: i64,
    pub(super) error: Option<&'a str>,
}

impl<'a> Said<'a> {
    /// As a stored Subscription says it: its `status` and `error`.
    pub fn stored(id: &'a str, shape: &'a Shape, resource: &'a Value, count: i64) -> Self {
        Said {
            id,
            shape,
            state: resource["status"].as_str().unwrap_or("off"),
            count,
            error: resource["error"].as_str(),
        }
    }
}

impl Active {
    pub fn said(&self, count: i64) -> Said<'_> {
        Said {
            id: &self.id,
            shape: &self.shape,
            state: "active",
            count,
            error: None,
        }
    }
}

/// The status heading every Bundle, in the Subscription's shape: Medplum's R4B
/// SubscriptionStatus, or the IG's R4 `Parameters`. `events` lists (number, event, whether its
/// focus is named): a focus the recipient may not see, or an `empty` content, is not named.
pub fn status_resource(said: &Said, kind: &str, events: &[(i64, &EventRecord, bool)]) -> Value {
    let focus = |event: &EventRecord| json!({"reference": format!("{}/{}", event.resource_type, event.resource_id)});
    let reference = json!({"reference": format!("Subscription/{}", said.id)});
    if said.shape.r4 {
        let mut parameter = vec![json!({"name": "subscription", "valueReference": reference})];
        if let Some(topic) = &said.shape.topic {
            parameter.push(json!({"name": "topic", "valueCanonical": topic}));
        }
        parameter.push(json!({"name": "status", "valueCode": said.state}));
        parameter.push(json!({"name": "type", "valueCode": kind}));
        parameter.push(json!({"name": "events-since-subscription-start", "valueString": said.count.to_string()}));
        for (number, event, named) in events {
            let mut part = vec![
                json!({"name": "event-number", "valueString": number.to_string()}),
                json!({"name": "timestamp", "valueInstant": event.timestamp}),
            ];
            if *named {
                part.push(json!({"name": "focus", "valueReference": focus(event)}));
            }
            parameter.push(json!({"name": "notification-event", "part": part}));
        }
        if let Some(error) = said.error {
            parameter.push(json!({"name": "error", "valueCodeableConcept": {"text": error}}));
        }
        return json!({
            "resourceType": "Parameters",
            "meta": {"profile": [topics::STATUS_PROFILE]},
            "parameter": parameter,
        });
    }
    let mut status = json!({
        "resourceType": "SubscriptionStatus",
        "status": said.state,
        "type": kind,
        "eventsSinceSubscriptionStart": said.count.to_string(),
        "subscription": reference,
    });
    if let Some(topic) = &said.shape.topic {
        status["topic"] = json!(topic);
    }
    if !events.is_empty() {
        status["notificationEvent"] = events
            .iter()
            .map(|(number, event, named)| {
                let mut listed = json!({
                    "eventNumber": number.to_string(),
                    "timestamp": event.timestamp,
                });
                if *named {
                    listed["focus"] = focus(event);
                }
                listed
            })
            .collect();
    }
    if let Some(error) = said.error {
        status["error"] = json!([{"text": error}]);
    }
    status
}

/// A stored Subscription's status as it stands: its `status` (`error` with the reason from
/// `Subscription.error`) and the last number handed out, in its shape.
pub fn stored_status(id: &str, resource: &Value, count: i64, kind: &str) -> Value {
    let shape = topics::shape_of(resource);
    status_resource(&Said::stored(id, &shape, resource, count), kind, &[])
}

/// The Bundle entry of one event's focus in `content`: the resource (the stored JSON text spliced
/// in as it is, never parsed again), its id only, or nothing.
pub fn focus_entry(event: &EventRecord, base: &str, content: Content) -> Option<String> {
    if content == Content::Empty {
        return None;
    }
    let (method, code) = match event.action {
        Action::Created => ("POST", "201"),
        Action::Updated => ("PUT", "200"),
        Action::Deleted => ("DELETE", "204"),
    };
    let url = format!("{}/{}", event.resource_type, event.resource_id);
    let head = json!({
        "fullUrl": format!("{base}/{url}"),
        "request": {"method": method, "url": url},
        "response": {"status": code, "etag": format!("W/\"{}\"", event.version_id)},
    })
    .to_string();
    if event.action == Action::Deleted || content == Content::IdOnly {
        Some(head)
    } else {
        // `head` is a JSON object: reopen it to add the resource.
        Some(format!(
            "{},\"resource\":{}}}",
            &head[..head.len() - 1],
            event.resource_json
        ))
    }
}

/// A `history` Bundle: the status first, then the (pre-rendered) focus entries.
pub fn bundle(id: &str, shape: &Shape, status: Value, focus: &[&str]) -> String {
    let status_entry = json!({
        "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "resource": status,
        "request": {"method": "GET", "url": format!("Subscription/{id}/$status")},
        "response": {"status": "200"},
    });
    let mut head = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "history",
        "timestamp": format_instant(Utc::now()),
    });
    if shape.r4 {
        head["meta"] = json!({"profile": [topics::NOTIFICATION_PROFILE]});
    }
    let head = head.to_string();
    let mut text =
        String::with_capacity(head.len() + 512 + focus.iter().map(|f| f.len() + 1).sum::<usize>());
    text.push_str(&head[..head.len() - 1]);
    text.push_str(",\"entry\":[");
    text.push_str(&status_entry.to_string());
    for entry in focus {
        text.push(',');
        text.push_str(entry);
    }
    text.push_str("]}");
    text
}

/// The `handshake` Bundle sent when a socket binds.
pub fn handshake(active: &Active) -> String {
    let status = status_resource(&active.said(active.count), "handshake", &[]);
    bundle(&active.id, &active.shape, status, &[])
}

/// The `heartbeat` Bundle.
pub fn heartbeat(active: &Active) -> String {
    let status = status_resource(&active.said(active.count), "heartbeat", &[]);
    bundle(&active.id, &active.shape, status, &[])
}

/// An `event-notification` Bundle. `focus` is the focus entry ([`OwnerAccess::focus`]): left out,
/// and the focus not named, when the owner may no longer see it (the number is still sent, so the
/// numbering stays gap-free) or the content is `empty`.
pub fn notification(
    active: &Active,
    number: i64,
    event: &EventRecord,
    focus: Option<&str>,
) -> String {
    let status = status_resource(
        &active.said(number),
        "event-notification",
        &[(number, event, focus.is_some())],
    );
    bundle(&active.id, &active.shape, status, focus.as_slice())
}

/// A Subscription owner as the exit gate sees them now: who they are and what they may see.
pub struct OwnerAccess {
    user: AuthUser,
    visibility: crate::store::Visibility,
}

impl OwnerAccess {
    /// The owner's access now; `None` for an unknown or deactivated account (nothing leaves).
    pub async fn load(store: &Store, owner_id: &str) -> Option<Self> {
        let user = load_user(store, owner_id).await?;
        let visibility = access::visibility(store, &user).await.ok()?;
        Some(Self { user, visibility })
    }

    /// The focus entry of `event` if it may leave for the owner now (the gate on the event's
    /// version and its resource's newest version), checked again at every delivery.
    pub fn focus(&self, event: &EventRecord, base: &str, content: Content) -> Option<String> {
        access::may_receive(&self.user, &self.visibility, &access::EventFacts::of(event))
            .then(|| focus_entry(event, base, content))
            .flatten()
    }
}

/// The account `id` as the user a Subscription runs as; `None` when unknown or deactivated.
pub async fn load_user(store: &Store, id: &str) -> Option<AuthUser> {
    let row = store.user_by_id(id).await.ok().flatten()?;
    if !row.active {
        return None;
    }
    Some(AuthUser {
        id: row.id,
        name: row.name,
        role: Role::parse(&row.role)?,
        session_id: String::new(),
        practitioner_id: row.practitioner_id,
        units: row.units,
        via_cookie: false,
    })
}
