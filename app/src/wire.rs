//! The realtime wire protocol of `GET /ws`: the messages a client and the server exchange.
//!
//! Where it sits: the edge of step 4 (server → socket) and step 5 (socket → browser stores) of the
//! event path. Every message is a text frame holding `{"type": ..., "data": {...}}`; the shapes are the
//! contract in ARCHITECTURE.md, shared here by the server, the browser client and the tests so that
//! no side can drift.
//!
//! What it must never do: carry anything but plain data. Who may receive what is decided by the
//! server's hub; this module only names and shapes the messages.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::UserInfo;

/// Close code: the token is missing, invalid or has expired; re-authenticate and resume.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code: the user may no longer use this socket (e.g. the session was revoked).
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// Close code: the client could not keep up; reconnect and resume with `after_seq`.
pub const CLOSE_TOO_SLOW: u16 = 4408;
/// Close code: the server is shutting down; reconnect (to it or another node) and resume.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: a frame was larger than the server accepts.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: the client stopped answering (two heartbeats without a pong).
pub const CLOSE_POLICY: u16 = 1008;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Join rooms (or replace the subscription with the same id).
    Subscription(Subscribe),
    /// Leave the rooms of one subscription.
    Unsubscribe { subscription_id: String },
    /// Asks for a `pong`; `data` may be omitted.
    Ping(#[serde(default)] Option<Value>),
}

/// A `subscription` request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    pub subscription_id: String,
    /// Patients whose `patient:{id}` rooms to join.
    #[serde(default)]
    pub patient_ids: Vec<String>,
    /// Narrows what the subscription receives to these resource types (empty: every type).
    #[serde(default)]
    pub resource_types: Vec<String>,
    /// Other rooms by name: `pharmacy:queue`, `facility:alerts`, `unit:{id}` (or `patient:{id}`).
    #[serde(default)]
    pub rooms: Vec<String>,
    /// Replay every event of these rooms after this `seq` before going live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<i64>,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome(Welcome),
    Subscribed(Subscribed),
    Unsubscribed { subscription_id: String },
    Update(Update),
    Heartbeat { seq: i64 },
    Reset { reason: String, seq: i64 },
    Error(ErrorBody),
    Pong(#[serde(default)] Option<Value>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub connection_id: String,
    pub user: UserInfo,
    /// The head of the event log when the socket opened.
    pub seq: i64,
    pub heartbeat_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub subscription_id: String,
    /// Rooms joined.
    pub rooms: Vec<String>,
    pub denied: Vec<Denied>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Denied {
    pub room: String,
    pub reason: String,
}

/// One event of the log, as delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub seq: i64,
    pub action: String,
    pub event_type: String,
    pub resource_type: String,
    pub resource_id: String,
    pub version_id: i64,
    pub patient_id: Option<String>,
    pub rooms: Vec<String>,
    pub user_id: Option<String>,
    pub timestamp: String,
    pub resource: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl ServerMessage {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail: no maps with non-string keys, no NaN.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `wait_ms` of a [`PollRequest`] that sends none.
pub const POLL_WAIT_DEFAULT_MS: u64 = 25_000;
/// The longest a poll is held, whatever `wait_ms` asks for.
pub const POLL_WAIT_MAX_MS: u64 = 30_000;

/// The body of `POST /ws/poll`, the long-poll fallback of `GET /ws` for networks that block
/// WebSocket upgrades. Each subscription is exactly the data of the socket's `subscription`
/// message; `after_seq` absent means "from the log's head now".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollRequest {
    pub subscriptions: Vec<Subscribe>,
    /// How long the server may hold the request when there is nothing to deliver; default
    /// [`POLL_WAIT_DEFAULT_MS`], clamped to `0..=`[`POLL_WAIT_MAX_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<i64>,
}

/// The answer of `POST /ws/poll`: frames in exactly the socket's server → client format (first
/// one `subscribed` per subscription, each followed by a `reset` where replay is impossible, then
/// `update`s in `seq` order), and `seq`, the log position the answer covers: every event up to
/// it that the caller may see in those subscriptions was in this answer or an earlier one. The
/// next poll sends `after_seq = max(after_seq, seq)` for every subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollResponse {
    pub seq: i64,
    pub frames: Vec<ServerMessage>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_messages_read_the_contract_shapes() {
        let sub: ClientMessage = serde_json::from_value(json!({
            "type": "subscription",
            "data": {"subscription_id": "s1", "patient_ids": ["p1"], "rooms": ["pharmacy:queue"], "after_seq": 7}
        }))
        .unwrap();
        assert_eq!(
            sub,
            ClientMessage::Subscription(Subscribe {
                subscription_id: "s1".into(),
                patient_ids: vec!["p1".into()],
                resource_types: vec![],
                rooms: vec!["pharmacy:queue".into()],
                after_seq: Some(7),
            })
        );
        let ping: ClientMessage = serde_json::from_value(json!({"type": "ping"})).unwrap();
        assert_eq!(ping, ClientMessage::Ping(None));
        let unsub: ClientMessage = serde_json::from_value(
            json!({"type": "unsubscribe", "data": {"subscription_id": "s1"}}),
        )
        .unwrap();
        assert_eq!(
            unsub,
            ClientMessage::Unsubscribe {
                subscription_id: "s1".into()
            }
        );
    }

    #[test]
    fn malformed_client_messages_are_refused() {
        for text in [
            r#"{"type": "subscription", "data": {}}"#,
            r#"{"type": "subscription", "data": {"subscription_id": "s", "patient_ids": "p1"}}"#,
            r#"{"type": "subscription", "data": {"subscription_id": "s", "surprise": 1}}"#,
            r#"{"type": "shout", "data": {}}"#,
            r#"{"data": {}}"#,
            r#"[1, 2]"#,
        ] {
            assert!(
                serde_json::from_str::<ClientMessage>(text).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn server_messages_have_the_contract_shapes() {
        let heartbeat = ServerMessage::Heartbeat { seq: 5 }.to_json();
        assert_eq!(heartbeat, r#"{"type":"heartbeat","data":{"seq":5}}"#);
        let reset = ServerMessage::Reset {
            reason: "gone".into(),
            seq: 9,
        };
        let back: ServerMessage = serde_json::from_str(&reset.to_json()).unwrap();
        assert_eq!(back, reset);
    }
}
