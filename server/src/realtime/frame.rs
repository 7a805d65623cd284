//! The `update` frame: one event of the log as the socket and the long poll deliver it.
//!
//! The dispatcher writes it once per event from borrowed fields (no copy of the resource JSON);
//! the browser reads it as `app::wire::ServerMessage::Update`. The test below ties the two: every
//! field written here is the field the client reads, under the same name, with the same value.

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::store::EventRecord;

#[derive(Serialize)]
struct UpdateFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: UpdateData<'a>,
}

#[derive(Serialize)]
struct UpdateData<'a> {
    seq: i64,
    action: &'static str,
    event_type: &'static str,
    resource_type: &'a str,
    resource_id: &'a str,
    version_id: i64,
    patient_id: Option<&'a str>,
    rooms: &'a [String],
    user_id: Option<&'a str>,
    timestamp: &'a str,
    resource: &'a RawValue,
}

/// The `update` frame of one event (the contract's shape), serialised once.
pub fn update_frame(event: &EventRecord) -> Utf8Bytes {
    // The stored JSON was produced by the store; should it not parse, send null rather than
    // nothing, so the client still learns the seq and refetches.
    let null = RawValue::NULL;
    let resource: &RawValue = serde_json::from_str(&event.resource_json).unwrap_or(null);
    let frame = UpdateFrame {
        kind: "update",
        data: UpdateData {
            seq: event.seq,
            action: event.action.as_str(),
            event_type: event.event_type.as_str(),
            resource_type: &event.resource_type,
            resource_id: &event.resource_id,
            version_id: event.version_id,
            patient_id: event.patient_id.as_deref(),
            rooms: &event.rooms,
            user_id: event.user_id.as_deref(),
            timestamp: &event.timestamp,
            resource,
        },
    };
    Utf8Bytes::from(serde_json::to_string(&frame).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use app::{
        events::{Action, EventType},
        wire::{ServerMessage, Update},
    };
    use serde_json::json;

    use super::*;
    use crate::store::NewestFacts;

    fn event() -> EventRecord {
        EventRecord {
            seq: 41,
            event_type: EventType::CriticalValueAlert,
            action: Action::Updated,
            resource_type: "Observation".into(),
            resource_id: "o-7".into(),
            version_id: 3,
            patient_id: Some("p-2".into()),
            rooms: vec!["patient:p-2".into(), "unit:icu".into()],
            user_id: Some("u-9".into()),
            timestamp: "2026-12-02T04:20:00.000Z".into(),
            resource_json: Arc::from(
                r#"{"resourceType":"Observation","id":"o-7","status":"final"}"#,
            ),
            newest: NewestFacts::default(),
        }
    }

    #[test]
    fn the_dispatchers_update_frame_is_exactly_what_the_client_reads() {
        let text = update_frame(&event());
        let read: ServerMessage = serde_json::from_str(&text).expect("the client parses the frame");
        let expected = ServerMessage::Update(Update {
            seq: 41,
            action: "updated".into(),
            event_type: "CRITICAL_VALUE_ALERT".into(),
            resource_type: "Observation".into(),
            resource_id: "o-7".into(),
            version_id: 3,
            patient_id: Some("p-2".into()),
            rooms: vec!["patient:p-2".into(), "unit:icu".into()],
            user_id: Some("u-9".into()),
            timestamp: "2026-12-02T04:20:00.000Z".into(),
            resource: json!({"resourceType": "Observation", "id": "o-7", "status": "final"}),
        });
        assert_eq!(read, expected);
        // And no field the client would not read: the owned form writes the same JSON.
        let written: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(written, serde_json::to_value(&expected).unwrap());
    }

    #[test]
    fn a_resource_that_does_not_parse_goes_out_as_null_with_its_seq() {
        let mut event = event();
        event.resource_json = Arc::from("{not json");
        let read: ServerMessage = serde_json::from_str(&update_frame(&event)).unwrap();
        let ServerMessage::Update(update) = read else {
            panic!("not an update: {read:?}");
        };
        assert_eq!((update.seq, update.resource), (41, serde_json::Value::Null));
    }
}
