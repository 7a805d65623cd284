//! What differs between the two engines, and only that: one file each, of the same shape
//! (`open`, `begin`, `begin_events`); PostgreSQL adds what several nodes need.

pub mod postgres;
pub mod sqlite;
