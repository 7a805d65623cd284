//! The store, realtime and subscription suites again, on PostgreSQL: one throwaway cluster per
//! run of this binary (started by the first test, stopped at exit), one database per test. Plus
//! the CapabilityStatement check (every search parameter in PostgreSQL's SQL) and the scenarios
//! only several nodes have (`multinode`).

/// Which backend `helpers::spawn_app` gives each test.
pub const POSTGRES: bool = true;

#[path = "../api/access.rs"]
mod access;
#[path = "../api/auth.rs"]
mod auth;
#[path = "../api/capability.rs"]
mod capability;
#[path = "../api/critical_index.rs"]
mod critical_index;
#[path = "../api/event_log.rs"]
mod event_log;
#[path = "../api/fhir_crud.rs"]
mod fhir_crud;
#[path = "../api/fhir_search.rs"]
mod fhir_search;
#[path = "../api/gate.rs"]
mod gate;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/multinode.rs"]
mod multinode;
#[path = "../api/pg_cluster.rs"]
mod pg_cluster;
#[path = "../api/poll.rs"]
mod poll;
#[path = "../api/realtime.rs"]
mod realtime;
#[path = "../api/subscription_numbers.rs"]
mod subscription_numbers;
#[path = "../api/subscriptions.rs"]
mod subscriptions;
