//! FHIR Subscriptions with a websocket channel, for outside FHIR clients (a lab, a pharmacy, a bed
//! board), compatible with Medplum's protocol and numbered as the Subscriptions Backport IG says.
//!
//! Where it sits: beside the realtime hub, reading the same event log. The matcher walks the log
//! in `seq` order; for each event it decides which active Subscriptions match (criteria with the
//! REST search's semantics, the optional interaction filter, and the owner's access rights),
//! hands each match the subscription's next event number, and commits those numbers with its
//! position in one transaction before anything is sent. Numbers are therefore durable, gap-free
//! per subscription and survive restarts; `$events` and a re-bind with `eventsSinceNumber` replay
//! them from the log.
//!
//! With several nodes on PostgreSQL exactly one of them runs the matcher: the holder of an
//! advisory lock (`Store::matcher_lease`); when it dies another takes over from the committed
//! position, and a compare-and-set on that position stops a matcher that lost its lease from
//! committing anything. Every node runs a follower that reads what the matcher committed, in
//! `seq` order, and delivers it to the sockets bound on that node; binding tokens, `$events` and
//! catch-up read the database, so they work on any node.
//!
//! - `resource`: the Subscription resource: checks of a write, its owner, `Active`;
//! - `hook`: the one seam through which the generic REST interactions apply those rules;
//! - `criteria` and `topics`: `Type?params` and the topics, matched in memory;
//! - `registry`: this node's active subscriptions and bound sockets;
//! - `notify`: the status and notification Bundles, checked against the owner's access;
//! - `matcher`: the matcher and the follower;
//! - `socket`: `/ws/subscriptions-r4` (bind-with-token, unbind-from-token, ping);
//! - `operations`: `$get-ws-binding-token`, `$events`, `$status`;
//! - `context`: what they need of the server ([`Context`]).
//!
//! What it must never do: notify about a resource the subscription's owner may not read, or hand
//! out an event number twice.

pub mod context;
pub mod criteria;
pub mod hook;
pub mod matcher;
pub mod notify;
pub mod operations;
pub mod registry;
pub mod resource;
pub mod socket;
pub mod topics;

pub use context::Context;
