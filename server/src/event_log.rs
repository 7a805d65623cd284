//! The event log as its readers see it: a position, the events after it, and how long they are
//! kept.
//!
//! Every write appends its events in the store's one transaction (`Store::write`), numbered by a
//! gap-free `seq`. Four readers follow the log, each with its own [`Cursor`]: the dispatcher
//! (live delivery to `/ws` rooms), a resuming socket's replay, the long poll, and the FHIR
//! Subscription matcher. A cursor reads a page after its position and moves only when told, so
//! a reader that fails half-way reads the same page again: nothing is skipped, nothing is read
//! out of order.
//!
//! Retention: [`spawn_retention`] prunes events older than the configured retention, and
//! [`resume_refusal`] tells a client that resumes from before what is kept (or from ahead of the
//! head) that it must refetch, instead of replaying a log that is no longer whole.

use std::time::Duration;

use chrono::Utc;

use crate::{
    fhir::date::format_instant,
    store::{EventRecord, Store, StoreError},
};

/// A reader's place in the log: every event up to and including `position` has been handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    position: i64,
}

impl Cursor {
    /// A cursor that has handled every event up to `seq` (0: none yet).
    pub fn after(seq: i64) -> Self {
        Self { position: seq }
    }

    /// The last `seq` handled.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// The next events after the position, in `seq` order, at most `limit`. The cursor does not
    /// move: call [`Cursor::advance`] for what was handled.
    pub async fn read(&self, store: &Store, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        store.events_after(self.position, limit).await
    }

    /// Marks every event up to `seq` handled. A cursor never moves back.
    pub fn advance(&mut self, seq: i64) {
        self.position = self.position.max(seq);
    }
}

/// Why a client's resume after `after` cannot be served from the log (it is answered with
/// `reset` and refetches), or `None` when every event after it is still kept.
pub async fn resume_refusal(store: &Store, after: i64) -> Result<Option<String>, StoreError> {
    let mut head = store.head();
    if after > head {
        // Another node may have committed it and this one not heard yet.
        head = store.current_head().await?;
    }
    if after > head {
        return Ok(Some(format!(
            "after_seq {after} is ahead of this server's log (head {head}); refetch"
        )));
    }
    let kept_from = store.oldest_seq().await?.unwrap_or(head + 1);
    if after + 1 < kept_from {
        return Ok(Some(format!(
            "events after {after} are no longer kept (the log starts at {kept_from}); refetch"
        )));
    }
    Ok(None)
}

/// Prunes events older than `retention`, now and then every hour (or more often for short
/// retentions), for the life of the process.
pub fn spawn_retention(store: Store, retention: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        loop {
            let cutoff = Utc::now() - chrono::Duration::from_std(retention).unwrap_or_default();
            match store.prune_events(&format_instant(cutoff)).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "pruned events older than the retention"),
                Err(error) => tracing::warn!(%error, "pruning the event log failed"),
            }
            tokio::time::sleep(period).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_moves_only_forward_and_only_when_told() {
        let mut cursor = Cursor::after(7);
        cursor.advance(12);
        cursor.advance(9);
        assert_eq!(cursor.position(), 12);
    }
}
