//! The FHIR R4 model the server speaks, pure and below the store: instants and date ranges,
//! the search-parameter table, search parsing, validation and the unknown-element check, the
//! error an answer carries (an OperationOutcome) and content negotiation. Nothing here reads
//! the database or decides access; the REST handlers are `crate::rest`.

pub mod date;
pub mod elements;
pub mod error;
pub mod format;
pub mod params;
pub mod search;
pub mod validate;
