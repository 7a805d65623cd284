//! What every tab of the chart reads: who the chart is about and the chart's store.
//!
//! A leaf, so that the tabs and the page that holds them never import each other.

use leptos::prelude::*;

use crate::records::Records;

/// The chart's store and who it is about, for the tabs.
#[derive(Clone)]
pub struct ChartCtx {
    pub patient_id: String,
    pub patient_name: String,
    pub records: RwSignal<Records>,
}
