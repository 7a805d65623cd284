//! Integration tests over HTTP: each test spawns its own Rounds with its own database.

mod access;
mod auth;
mod event_log;
mod fhir_crud;
mod fhir_errors;
mod fhir_search;
mod helpers;
mod intake_fuzz;
mod realtime;
mod startup;
mod subscriptions;
