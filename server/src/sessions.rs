//! The sessions behind this node's open sockets and held long polls, and how a session ends here.
//!
//! A session ends by sign-out, by revocation (a replayed refresh token) or by expiry, and then
//! every socket of it must close, on every node: `/ws` with 4401, `/ws/subscriptions-r4` with an
//! OperationOutcome and 4401, a held `POST /ws/poll` with 401. The node that ends a session ends
//! it here at once ([`Sessions::end`]); the other nodes hear of it from the store
//! (`Store::subscribe_revoked`: PostgreSQL's NOTIFY, and the revocations re-read from the table
//! whenever the `LISTEN` connection comes back). Should every notice be lost all the same, the
//! re-check ([`Sessions::spawn_recheck`]) asks the database every `session_recheck` about the sessions held
//! here, in one query, and ends those that are over: once the database answers, no socket
//! outlives its session by more than that period.
//!
//! What ending a session closes is not known here: the hub (`/ws` sockets), the FHIR
//! Subscriptions (bound sockets) and the token keys (the revoked-session memory) each register
//! what to do with [`Sessions::on_end`] at start-up, so this module depends on the store alone.
//!
//! What it must never do: hold its lock across an await, or keep a session alive (it only ends).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, RwLock},
    time::Duration,
};

use chrono::Utc;
use tokio::sync::watch;

use crate::{
    fhir::date::format_instant,
    store::{Store, StoreError},
};

/// What a part of the server does when a session ends on this node: given the session's id and
/// the close reason of its `/ws` sockets.
pub type OnEnd = Box<dyn Fn(&str, &'static str) + Send + Sync>;

/// One session held by at least one socket or poll of this node.
struct Entry {
    holders: usize,
    ended: watch::Sender<bool>,
}

/// The sessions held on this node; one per node, in `AppState`.
#[derive(Default)]
pub struct Sessions {
    held: Mutex<HashMap<String, Entry>>,
    on_end: RwLock<Vec<OnEnd>>,
}

/// A socket's or a held poll's claim on its session: it is re-checked while held, and
/// [`Hold::ended`] returns once the session ends. Released on drop.
pub struct Hold {
    sessions: Arc<Sessions>,
    session_id: String,
    ended: watch::Receiver<bool>,
}

impl Sessions {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a holder of `session_id`.
    pub fn hold(self: &Arc<Self>, session_id: &str) -> Hold {
        let mut held = self.lock();
        let entry = held.entry(session_id.to_owned()).or_insert_with(|| Entry {
            holders: 0,
            ended: watch::channel(false).0,
        });
        entry.holders += 1;
        Hold {
            sessions: self.clone(),
            session_id: session_id.to_owned(),
            ended: entry.ended.subscribe(),
        }
    }

    /// The sessions held now that have not ended yet.
    pub fn held(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, entry)| !*entry.ended.borrow())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Wakes every holder of `session_id`.
    fn mark_ended(&self, session_id: &str) {
        if let Some(entry) = self.lock().get(session_id) {
            entry.ended.send_replace(true);
        }
    }

    /// Registers what ending a session also does (close its sockets, forget its tokens).
    pub fn on_end(&self, action: OnEnd) {
        self.on_end
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(action);
    }

    /// Ends session `session_id` on this node: every registered part acts on it (its tokens are
    /// refused at once, every socket of it closes; `reason` is the close reason of its `/ws`
    /// sockets), and every held poll of it wakes.
    pub fn end(&self, session_id: &str, reason: &'static str) {
        for action in self
            .on_end
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            action(session_id, reason);
        }
        self.mark_ended(session_id);
    }

    /// Asks the database which of the sessions held here are still active, and ends the others.
    /// Returns how many it ended.
    pub async fn recheck(&self, store: &Store) -> Result<usize, StoreError> {
        let held = self.held();
        if held.is_empty() {
            return Ok(0);
        }
        let active: HashSet<String> = store
            .active_sessions(&held, &format_instant(Utc::now()))
            .await?
            .into_iter()
            .collect();
        let over: Vec<&String> = held.iter().filter(|id| !active.contains(*id)).collect();
        for session_id in &over {
            self.end(session_id, "session ended");
        }
        Ok(over.len())
    }

    /// Re-checks the held sessions every `period` for the life of the process.
    pub fn spawn_recheck(self: &Arc<Self>, store: Store, period: Duration) {
        let sessions = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match sessions.recheck(&store).await {
                    Ok(0) => {}
                    Ok(ended) => tracing::info!(ended, "the session re-check ended sessions"),
                    Err(error) => tracing::warn!(%error, "re-checking the held sessions failed"),
                }
            }
        });
    }
}

impl Hold {
    /// Returns once the session has ended.
    pub async fn ended(&mut self) {
        if self.ended.wait_for(|ended| *ended).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut held = self.sessions.lock();
        if let Some(entry) = held.get_mut(&self.session_id) {
            entry.holders -= 1;
            if entry.holders == 0 {
                held.remove(&self.session_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hold_wakes_when_its_session_ends_and_is_released_on_drop() {
        let sessions = Sessions::new();
        let mut first = sessions.hold("s1");
        let second = sessions.hold("s1");
        let _other = sessions.hold("s2");
        let mut held = sessions.held();
        held.sort();
        assert_eq!(held, ["s1", "s2"]);

        sessions.mark_ended("s1");
        first.ended().await;
        assert_eq!(
            sessions.held(),
            ["s2"],
            "an ended session is not re-checked"
        );
        drop(first);
        drop(second);
        assert!(
            !sessions.lock().contains_key("s1"),
            "released by its last holder"
        );
    }

    #[tokio::test]
    async fn ending_a_session_runs_every_registered_action_and_wakes_its_holds() {
        let sessions = Sessions::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        for part in ["hub", "subscriptions"] {
            let seen = seen.clone();
            sessions.on_end(Box::new(move |id, reason| {
                seen.lock().unwrap().push(format!("{part}:{id}:{reason}"));
            }));
        }
        let mut hold = sessions.hold("s1");
        sessions.end("s1", "session revoked");
        hold.ended().await;
        assert_eq!(
            *seen.lock().unwrap(),
            ["hub:s1:session revoked", "subscriptions:s1:session revoked"]
        );
    }
}
