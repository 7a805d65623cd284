//! The tab bus: what the tabs of one user tell each other on the BroadcastChannel
//! `rounds-realtime:{user}`, as JSON text ([`TabMessage`]).
//!
//! Where it sits: between the leader's connection and every other tab. The leader posts the
//! server's frames and its connection's state; every tab posts its screens' interests and the
//! election's claims. This module carries and dispatches; what a message means is decided by the
//! part it is about. It never holds the client across a call into another part: each message
//! borrows it through `with` on its own.

use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use web_sys::{BroadcastChannel, MessageEvent};

use super::{
    election, reset, stop_for_sign_out, transport, with, Client, ConnectionState, Role, TabMessage,
};
use crate::{
    realtime::Transport,
    session,
    wire::{ServerMessage, Update},
};

/// The channel, and the leader's connection as last heard on it.
pub(super) struct Bus {
    channel: Option<BroadcastChannel>,
    /// The leader's connection state as last heard (in the leader: as last published).
    pub(super) state: ConnectionState,
    /// The leader's transport as last heard.
    pub(super) transport: Transport,
}

impl Bus {
    pub(super) fn new() -> Self {
        Self {
            channel: None,
            state: ConnectionState::Connecting,
            transport: Transport::WebSocket,
        }
    }
}

/// Opens the user's channel and says hello on it; false when the browser has none.
pub(super) fn open() -> bool {
    let name = with(|c| format!("rounds-realtime:{}", c.user));
    let Ok(channel) = BroadcastChannel::new(&name) else {
        return false;
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        let Some(text) = event.data().as_string() else {
            return;
        };
        if let Ok(message) = serde_json::from_str::<TabMessage>(&text) {
            on_channel(message);
        }
    });
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    with(|c| {
        c.bus.channel = Some(channel);
        let tab = c.tab.clone();
        c.post(&TabMessage::Hello { tab });
    });
    true
}

impl Client {
    /// Tells every other tab of the user (a tab does not hear its own messages).
    pub(super) fn post(&self, message: &TabMessage) {
        if let (Some(channel), Ok(text)) = (&self.bus.channel, serde_json::to_string(message)) {
            let _ = channel.post_message(&JsValue::from_str(&text));
        }
    }

    /// The leader tells every tab (and shows) its connection's state.
    pub(super) fn publish_status(&mut self) {
        let Some(connection) = self.connection.as_ref() else {
            return;
        };
        let (state, transport, round) = (connection.state, connection.transport, connection.round);
        self.bus.state = state;
        self.bus.transport = transport;
        let tab = self.tab.clone();
        self.post(&TabMessage::Status {
            tab,
            state,
            transport,
            round,
        });
    }
}

/// A message from another tab.
fn on_channel(message: TabMessage) {
    with(|c| c.log_channel(&message));
    match message {
        TabMessage::Hello { tab } => with(|c| {
            if c.election.role == Role::Leader {
                let me = c.tab.clone();
                c.post(&TabMessage::Leader {
                    tab: me,
                    to: Some(tab),
                });
                c.publish_status();
            }
        }),
        TabMessage::Leader { tab, to } => {
            let addressed = with(|c| to.is_none() || to.as_deref() == Some(c.tab.as_str()));
            election::heard_leader(tab, addressed);
        }
        TabMessage::Status {
            tab,
            state,
            transport,
            round,
        } => {
            election::heard_leader(tab.clone(), false);
            with(|c| {
                if c.election.role == Role::Leader
                    || c.election.leader.as_deref() != Some(tab.as_str())
                {
                    return;
                }
                c.bus.state = state;
                c.bus.transport = transport;
                let me = c.tab.clone();
                c.post(&TabMessage::Alive { tab: me, round });
            });
        }
        TabMessage::Alive { tab, round } => with(|c| {
            if let Some(connection) = c.connection.as_mut() {
                connection.alive.insert(tab, round);
            }
        }),
        TabMessage::Watch {
            tab,
            id,
            nonce,
            interest,
            after_seq,
        } => with(|c| {
            let Some(connection) = c.connection.as_mut() else {
                return;
            };
            let changes = connection.hold(tab, id, nonce, interest, after_seq);
            c.apply(changes);
        }),
        TabMessage::Unwatch { tab, id } => with(|c| {
            let changes = c
                .connection
                .as_mut()
                .map(|connection| connection.union.release(&tab, &id))
                .unwrap_or_default();
            c.apply(changes);
        }),
        TabMessage::Bye { tab } => with(|c| {
            let changes = c
                .connection
                .as_mut()
                .map(|connection| connection.forget_tab(&tab))
                .unwrap_or_default();
            c.apply(changes);
        }),
        TabMessage::Frames { texts, covered } => with(|c| {
            if c.election.role == Role::Leader {
                return;
            }
            let updates: Vec<Update> = texts
                .iter()
                .filter_map(|text| match serde_json::from_str::<ServerMessage>(text) {
                    Ok(ServerMessage::Update(update)) => Some(update),
                    _ => None,
                })
                .collect();
            c.receive_updates(updates, covered);
        }),
        TabMessage::Confirmed { holders, after_seq } => {
            with(|c| c.confirm(&holders, after_seq));
        }
        TabMessage::Reset => reset(),
        TabMessage::SigningOut => with(stop_for_sign_out),
        TabMessage::SignedOut => session::leave(),
        TabMessage::Nudge => {
            if with(|c| c.election.role == Role::Leader) {
                transport::reconnect_now();
            }
        }
        TabMessage::Claim { tab } => with(|c| election::heard_claim(c, &tab)),
        TabMessage::Resign { tab } => election::heard_resign(&tab),
    }
}
