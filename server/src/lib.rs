//! The Rounds server: configuration, the FHIR R4 API on a versioned store with an event log,
//! sign-in and the access policy, and the server-rendered UI.
//!
//! The event path runs write → `store` (one transaction: resource, history, events, audit) →
//! dispatcher → rooms → sockets; each hop is its own module.

pub mod access;
pub mod auth;
pub mod config;
pub mod demo;
pub mod event_log;
pub mod fhir;
pub mod memory;
pub mod metrics;
pub mod realtime;
pub mod rest;
pub mod seed;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod store;
pub mod subscriptions;
pub mod web;

pub use config::Config;
pub use startup::Application;
