//! How a node hears what the other nodes sharing its PostgreSQL database commit: the head `seq`,
//! the matcher's position, revoked sessions. (On SQLite there are no other nodes.)
//!
//! A notice is only a hint that moves a watch early; what a node missed while it was not
//! listening it re-reads from the tables once it listens again, revocations first, so that no
//! socket of a session that ended meanwhile gets what the re-read head brings.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    backend::postgres::{Notice, PgDb},
    events::head_seq,
    handle::{advance, Store},
    model::StoreError,
    subscriptions::matcher_position,
};
use crate::fhir::date::format_instant;

/// How far before the last moment this node was known to be listening a re-read of revocations
/// reaches back: `revoked_at` is stamped by the revoking node's clock, and its transaction may
/// commit (and notify) a moment after the stamp.
const REVOCATION_CLOCK_SLACK: chrono::Duration = chrono::Duration::seconds(30);

/// Follows the other nodes for the life of the process (until nobody watches the head or the
/// matcher any more), listening again whenever the connection is lost.
pub(super) fn spawn(store: Store, pg: PgDb) {
    tokio::spawn(async move {
        // Every revocation committed before this instant (less the clock slack) has reached
        // this node; at first, none matters, as no socket is open yet.
        let mut heard = Utc::now();
        loop {
            let listened = listen(&store, &pg, &mut heard).await;
            store.hearing.send_replace(false);
            if let Err(error) = listened {
                tracing::warn!(%error, "the LISTEN connection failed; reconnecting");
            }
            if store.head.is_closed() && store.matcher.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
}

/// Listens on a new connection until it is lost. Once listening, whatever was notified while
/// this node was not is read from the tables (the re-read must follow the LISTEN).
async fn listen(store: &Store, pg: &PgDb, heard: &mut DateTime<Utc>) -> Result<(), StoreError> {
    let mut listening = pg.listen().await?;
    let listening_since = Utc::now();
    let since = *heard - REVOCATION_CLOCK_SLACK;
    for session_id in pg.revoked_since(&format_instant(since)).await? {
        let _ = store.revoked.send(session_id);
    }
    *heard = listening_since;
    store.hearing.send_replace(true);
    advance(&store.head, head_seq(&store.db).await?);
    advance(&store.matcher, matcher_position(&store.db).await?);
    while let Some(notice) = listening.next().await? {
        *heard = Utc::now();
        match notice {
            Notice::Events(seq) => advance(&store.head, seq),
            Notice::Matcher(position) => advance(&store.matcher, position),
            Notice::Revoked(session_id) => {
                let _ = store.revoked.send(session_id);
            }
        }
    }
    Ok(())
}
