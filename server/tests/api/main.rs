//! Integration tests over HTTP: each test spawns its own Rounds with its own database.
//! This binary runs them on SQLite; `tests/api_pg` runs the store, realtime and subscription
//! suites again on PostgreSQL, with the two-node scenarios.

/// Which backend `helpers::spawn_app` gives each test.
pub const POSTGRES: bool = false;

mod access;
mod auth;
mod capability;
mod critical_index;
mod event_log;
mod fhir_crud;
mod fhir_errors;
mod fhir_search;
mod gate;
mod helpers;
mod intake_fuzz;
mod pg_cluster;
mod poll;
mod realtime;
mod startup;
mod subscription_numbers;
mod subscription_soak;
mod subscriptions;
