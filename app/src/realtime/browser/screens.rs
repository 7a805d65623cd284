//! Each tab's screens: what they show (their watches, each with a cursor), the handlers that get
//! every new update once, and the batch handed to them per animation frame, alerts first.
//!
//! Where it sits: at the end of the event path in every tab, the leader's too. Updates arrive
//! from the tab's own connection or from the leader on the bus; a screen's interest goes to the
//! leader (over the bus, or straight into the union in the leader).
//!
//! What it must never do: hand an update to the screens twice, move a cursor while its replay
//! runs, or run a handler while the client is borrowed.

use std::{collections::BTreeMap, time::Duration};

use leptos::prelude::*;
use wasm_bindgen::JsValue;

use super::{
    debug::update_summary, now_ms, refresh_indicator, wall_ms, with, Client, Handler, Interest,
    Role, TabMessage,
};
use crate::{
    realtime::{union::Holder, Seen, TypeCursors},
    records::alerts_first,
    wire::Update,
};

/// The suffix of the watch that replays, for a screen that changed its types, what it missed.
const CATCH_UP: &str = "+catch-up";

/// The id of the catch-up watch of screen `id`.
pub(super) fn catch_up_id(id: &str) -> String {
    format!("{id}{CATCH_UP}")
}

/// What one screen shows, and how far it has got.
pub(super) struct LocalWatch {
    pub(super) interest: Interest,
    /// Everything in this interest up to here has reached the screens; `None`: nothing loaded.
    pub(super) cursor: Option<i64>,
    /// Tells this registration's confirmation apart from an earlier one's.
    nonce: u64,
    /// Registered, and the replay that covers it not yet confirmed: the cursor stays put.
    pub(super) replaying: bool,
    /// Where each type stands that the screen showed and stopped showing, and where the
    /// screen's data was loaded (for types it never showed): see [`super::show_types`].
    types: TypeCursors,
}

impl LocalWatch {
    pub(super) fn new(interest: Interest, cursor: Option<i64>, nonce: u64) -> Self {
        Self {
            interest,
            cursor,
            nonce,
            replaying: true,
            types: TypeCursors::new(cursor),
        }
    }
}

/// The tab's screens: their watches, their handlers, and the batch waiting for the next frame.
pub(super) struct Screens {
    pub(super) watches: BTreeMap<String, LocalWatch>,
    next_nonce: u64,
    /// (id, alerts first?, handler)
    handlers: Vec<(u64, bool, Handler)>,
    next_handler: u64,
    seen: Seen,
    /// Updates waiting for the next animation frame, with their arrival time (ms).
    queue: Vec<(Update, f64)>,
    animation_frame_requested: bool,
    /// Arrival-to-paint times (ms) of the last updates, for `window.__ROUNDS_PAINT__`.
    paint_ms: Vec<f64>,
    /// Frame-start-to-paint times (ms) of the last batches, for `window.__ROUNDS_RENDER__`.
    render_ms: Vec<f64>,
    /// Updates handed to the handlers so far.
    pub(super) applied: u64,
}

impl Screens {
    pub(super) fn new() -> Self {
        Self {
            watches: BTreeMap::new(),
            next_nonce: 0,
            handlers: Vec::new(),
            next_handler: 1,
            seen: Seen::default(),
            queue: Vec::new(),
            animation_frame_requested: false,
            paint_ms: Vec::new(),
            render_ms: Vec::new(),
            applied: 0,
        }
    }

    /// A new registration's nonce.
    pub(super) fn nonce(&mut self) -> u64 {
        self.next_nonce += 1;
        self.next_nonce
    }

    /// Adds a handler for each frame's batch (`alerts` ones first); its id.
    pub(super) fn add_handler(&mut self, alerts: bool, handler: Handler) -> u64 {
        let id = self.next_handler;
        self.next_handler += 1;
        self.handlers.push((id, alerts, handler));
        self.handlers.sort_by_key(|(_, alerts, _)| !*alerts);
        id
    }

    pub(super) fn remove_handler(&mut self, id: u64) {
        self.handlers.retain(|(h, _, _)| *h != id);
    }

    /// Whether updates wait for the screen or a replay runs (the indicator shows *receiving*).
    pub(super) fn busy(&self) -> bool {
        !self.queue.is_empty() || self.watches.values().any(|w| w.replaying)
    }
}

impl Client {
    /// See [`super::show_types`].
    pub(super) fn show_types(&mut self, id: &str, resource_types: Vec<String>) {
        let catch_up = catch_up_id(id);
        let Some(watch) = self.screens.watches.get(id) else {
            return;
        };
        let catching_up = self
            .screens
            .watches
            .get(&catch_up)
            .map(|w| (w.interest.resource_types.clone(), w.cursor));
        let plan = watch.types.switch(
            (&watch.interest.resource_types, watch.cursor),
            catching_up
                .as_ref()
                .map(|(types, cursor)| (types.as_slice(), *cursor)),
            &resource_types,
        );
        let mut interest = watch.interest.clone();
        interest.resource_types = resource_types;
        let replay = plan.catch_up.map(|(types, from)| {
            let mut interest = interest.clone();
            interest.resource_types = types;
            (interest, from)
        });
        if let Some(watch) = self.screens.watches.get_mut(id) {
            watch.types = plan.cursors;
            watch.interest = interest;
        }
        self.forget(&catch_up);
        if let Some((interest, from)) = replay {
            let watch = LocalWatch::new(interest, from, self.screens.nonce());
            self.screens.watches.insert(catch_up.clone(), watch);
            self.register(&catch_up);
        }
        self.register(id);
    }

    /// Lets go of watch `id`'s rooms (nothing when it is not watched).
    pub(super) fn forget(&mut self, id: &str) {
        if self.screens.watches.remove(id).is_none() {
            return;
        }
        let tab = self.tab.clone();
        if self.election.role == Role::Leader {
            let changes = self
                .connection
                .as_mut()
                .map(|connection| connection.union.release(&tab, id))
                .unwrap_or_default();
            self.apply(changes);
        } else if self.election.registered_with.is_some() {
            self.post(&TabMessage::Unwatch {
                tab,
                id: id.to_owned(),
            });
        }
    }

    /// Sends screen `id`'s interest to the leader (or, in the leader, into the union). With no
    /// leader known it waits: every tab registers everything when a leader announces itself.
    pub(super) fn register(&mut self, id: &str) {
        let nonce = self.screens.nonce();
        let tab = self.tab.clone();
        let Some(watch) = self.screens.watches.get_mut(id) else {
            return;
        };
        watch.nonce = nonce;
        watch.replaying = true;
        let (interest, after_seq) = (watch.interest.clone(), watch.cursor);
        if self.election.role == Role::Leader {
            let holder = Holder {
                tab,
                watch: id.to_owned(),
                nonce,
            };
            let changes = self
                .connection
                .as_mut()
                .map(|connection| connection.union.hold(holder, interest, after_seq))
                .unwrap_or_default();
            self.apply(changes);
        } else if self.election.registered_with.is_some() {
            self.post(&TabMessage::Watch {
                tab,
                id: id.to_owned(),
                nonce,
                interest,
                after_seq,
            });
        }
    }

    /// Registers every screen's interest (with a new leader).
    pub(super) fn register_all(&mut self) {
        let ids: Vec<String> = self.screens.watches.keys().cloned().collect();
        for id in ids {
            self.register(&id);
        }
    }

    /// The replay covering these registrations is done.
    pub(super) fn confirm(&mut self, holders: &[Holder], after_seq: Option<i64>) {
        let mut any = false;
        let mut caught_up = Vec::new();
        for holder in holders.iter().filter(|h| h.tab == self.tab) {
            if let Some(watch) = self
                .screens
                .watches
                .get_mut(&holder.watch)
                .filter(|w| w.nonce == holder.nonce)
            {
                if watch.replaying {
                    watch.replaying = false;
                    if watch.cursor.is_none() {
                        watch.cursor = after_seq;
                    }
                }
                any = true;
                if holder.watch.ends_with(CATCH_UP) {
                    caught_up.push(holder.watch.clone());
                }
            }
        }
        // What a catch-up replayed has reached the screen; from now on its screen's own watch
        // delivers those types live.
        for id in caught_up {
            self.forget(&id);
        }
        if any && self.screens.watches.values().all(|w| !w.replaying) {
            self.milestones.resumed_at = Some(wall_ms());
        }
    }

    /// Frames from the connection: keep what this tab's screens show, once each.
    pub(super) fn receive_updates(&mut self, updates: Vec<Update>, covered: Option<i64>) {
        let now = now_ms();
        for update in updates {
            if self.election.role != Role::Leader {
                self.log_frame("update (shared)", Some(update.seq), update_summary(&update));
            }
            let screens = &mut self.screens;
            // What no screen shows is not marked seen: a screen that opens later and asks for
            // a replay must still get it.
            if !screens
                .watches
                .values()
                .any(|w| w.interest.matches(&update))
            {
                continue;
            }
            if !screens.seen.first_time(update.seq) {
                continue;
            }
            screens.queue.push((update, now));
        }
        let screens = &mut self.screens;
        if let Some(covered) = covered {
            for watch in screens.watches.values_mut().filter(|w| !w.replaying) {
                watch.cursor = Some(watch.cursor.map_or(covered, |c| c.max(covered)));
            }
        }
        if !screens.queue.is_empty() && !screens.animation_frame_requested {
            screens.animation_frame_requested = true;
            request_animation_frame(flush);
        }
    }
}

/// Hands the frame's batch to the handlers, alerts first, then records when it was painted.
fn flush() {
    let taken = with(|c| {
        let screens = &mut c.screens;
        screens.animation_frame_requested = false;
        let handlers: Vec<Handler> = screens.handlers.iter().map(|(_, _, h)| h.clone()).collect();
        screens.applied += screens.queue.len() as u64;
        Some((std::mem::take(&mut screens.queue), handlers, c.realtime))
    });
    let Some((mut batch, handlers, realtime)) = taken.filter(|(batch, _, _)| !batch.is_empty())
    else {
        return;
    };
    let frame_start = now_ms();
    let arrivals: Vec<f64> = batch.iter().map(|(_, at)| *at).collect();
    let mut updates: Vec<Update> = batch.drain(..).map(|(u, _)| u).collect();
    alerts_first(&mut updates);
    let highest = updates.iter().map(|u| u.seq).max().unwrap_or(0);
    if realtime
        .last_seq
        .try_get_untracked()
        .is_some_and(|last| highest > last)
    {
        realtime.last_seq.try_set(highest);
    }
    // A handler may unmount screens (and dispose what the others hold): each uses `try_*`.
    for handler in handlers {
        handler(&updates);
    }
    refresh_indicator();
    // The DOM changes of this frame are painted before a zero timeout set now runs.
    set_timeout(
        move || {
            let now = now_ms();
            with(|c| {
                let screens = &mut c.screens;
                screens.paint_ms.extend(arrivals.iter().map(|at| now - at));
                let excess = screens.paint_ms.len().saturating_sub(1000);
                screens.paint_ms.drain(..excess);
                screens.render_ms.push(now - frame_start);
                let excess = screens.render_ms.len().saturating_sub(1000);
                screens.render_ms.drain(..excess);
                publish_times("__ROUNDS_PAINT__", &screens.paint_ms);
                publish_times("__ROUNDS_RENDER__", &screens.render_ms);
            });
        },
        Duration::ZERO,
    );
}

/// `window.__ROUNDS_PAINT__` (the last arrival-to-paint times of updates) and
/// `window.__ROUNDS_RENDER__` (per frame: applying the batch, rendering and painting), in ms.
fn publish_times(name: &str, times: &[f64]) {
    let array = js_sys::Array::new();
    for t in times {
        array.push(&JsValue::from_f64(*t));
    }
    let _ = js_sys::Reflect::set(&window(), &JsValue::from_str(name), &array);
}
