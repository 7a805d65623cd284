//! What the client shows of itself: the log of its last messages, the snapshot that
//! `window.__ROUNDS_DEBUG__` and the debug view read, and the getter that publishes it.
//!
//! Read-only towards the other parts: nothing here changes what the client does.

use std::collections::VecDeque;

use leptos::prelude::*;
use serde_json::json;
use wasm_bindgen::{closure::Closure, JsValue};

use super::{debug_snapshot, wall_ms, Client, TabMessage};
use crate::wire::Update;

/// Messages kept for the debug view.
const LOG_SIZE: usize = 100;

/// The last [`LOG_SIZE`] messages: from the server, between tabs, and the client's own events.
#[derive(Default)]
pub(super) struct Log(VecDeque<serde_json::Value>);

impl Log {
    fn push(&mut self, entry: serde_json::Value) {
        if self.0.len() >= LOG_SIZE {
            self.0.pop_front();
        }
        self.0.push_back(entry);
    }
}

/// How an update appears in the log: its event and the version it carries.
pub(super) fn update_summary(update: &Update) -> serde_json::Value {
    json!({
        "event_type": update.event_type,
        "resource": format!("{}/{}/_history/{}", update.resource_type, update.resource_id, update.version_id),
    })
}

impl Client {
    /// A frame from the server (or about the server's connection).
    pub(super) fn log_frame(&mut self, kind: &str, seq: Option<i64>, detail: serde_json::Value) {
        self.log.push(
            json!({ "at": wall_ms(), "via": "server", "kind": kind, "seq": seq, "detail": detail }),
        );
    }

    /// Something this tab did or decided.
    pub(super) fn log_event(&mut self, kind: &str, detail: serde_json::Value) {
        self.log
            .push(json!({ "at": wall_ms(), "via": "tab", "kind": kind, "detail": detail }));
    }

    /// A message from another tab.
    pub(super) fn log_channel(&mut self, message: &TabMessage) {
        // Status and Alive come every second; Frames are logged as updates.
        let kind = match message {
            TabMessage::Status { .. } | TabMessage::Alive { .. } | TabMessage::Frames { .. } => {
                return
            }
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
                .unwrap_or_default(),
        };
        self.log
            .push(json!({ "at": wall_ms(), "via": "channel", "kind": kind }));
    }

    pub(super) fn snapshot(&self) -> serde_json::Value {
        let watches: Vec<serde_json::Value> = self
            .screens
            .watches
            .iter()
            .map(|(id, w)| {
                json!({ "id": id, "interest": w.interest, "cursor": w.cursor, "replaying": w.replaying })
            })
            .collect();
        let link = self.connection.as_ref().map(|connection| {
            json!({
                "welcomed": connection.socket.welcomed(),
                "head": connection.head,
                "attempt": connection.socket.backoff.attempt(),
                "failures": connection.socket.failures(),
                "polling": connection.poll.active,
                "subscriptions": connection.union.view(),
                "tabs": connection.alive.keys().collect::<Vec<_>>(),
            })
        });
        json!({
            "tab": self.tab,
            "user": self.user,
            "role": self.election.role,
            "leader": self.election.leader,
            "election": if self.election.locks { "web-locks" } else { "broadcast-channel" },
            "state": self.indicator().machine(),
            "connection": self.bus.state,
            "transport": self.bus.transport,
            "watches": watches,
            "link": link,
            "applied": self.screens.applied,
            "last_seq": self.realtime.last_seq.try_get_untracked(),
            "leader_since": self.milestones.leader_since,
            "connected_at": self.milestones.connected_at,
            "resumed_at": self.milestones.resumed_at,
            "messages": self.log.0,
        })
    }
}

/// `window.__ROUNDS_DEBUG__`: a getter that returns the client's state when read.
pub(super) fn install_hook() {
    let getter = Closure::<dyn Fn() -> JsValue>::new(|| {
        let text = debug_snapshot().to_string();
        js_sys::JSON::parse(&text).unwrap_or(JsValue::NULL)
    });
    let descriptor = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&descriptor, &JsValue::from_str("get"), getter.as_ref());
    let _ = js_sys::Reflect::set(
        &descriptor,
        &JsValue::from_str("configurable"),
        &JsValue::TRUE,
    );
    js_sys::Object::define_property(
        &window(),
        &JsValue::from_str("__ROUNDS_DEBUG__"),
        &descriptor,
    );
    getter.forget();
}
