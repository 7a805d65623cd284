//! The patient chart: the banner over the Chart Review, Orders, Results and Documentation tabs.
//!
//! The page loads the chart's snapshot, keeps it in one store that every tab reads through
//! [`ChartCtx`], and follows the active tab's resource types on the realtime client. Each tab is a
//! module of its own; they depend on `context` only, never on this module or on each other
//! (Results borrows Review's colour for a flagged value).

mod context;
mod notes;
mod orders;
mod results;
mod review;

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde_json::Value;

pub use context::ChartCtx;
use notes::DocumentationTab;
use orders::OrdersTab;
use results::ResultsTab;
use review::ChartReview;

use super::{error_text, on_updates_while_mounted, Alerts};
use crate::{
    api::{load_chart, Chart},
    clinical,
    realtime::{self, Interest},
    records::{Derived, Records},
};

/// The chart's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Review,
    Orders,
    Results,
    Documentation,
}

impl Tab {
    const ALL: [Tab; 4] = [Tab::Review, Tab::Orders, Tab::Results, Tab::Documentation];

    fn parse(text: &str) -> Tab {
        match text {
            "orders" => Tab::Orders,
            "results" => Tab::Results,
            "notes" | "documentation" => Tab::Documentation,
            _ => Tab::Review,
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Tab::Review => "review",
            Tab::Orders => "orders",
            Tab::Results => "results",
            Tab::Documentation => "notes",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Tab::Review => "Chart Review",
            Tab::Orders => "Orders",
            Tab::Results => "Results",
            Tab::Documentation => "Documentation",
        }
    }

    /// What the tab needs delivered, besides what the banner always shows.
    fn types(self) -> &'static [&'static str] {
        match self {
            Tab::Review => &[
                "Condition",
                "MedicationRequest",
                "Observation",
                "Task",
                "MedicationDispense",
            ],
            Tab::Orders => &[
                "ServiceRequest",
                "MedicationRequest",
                "Task",
                "MedicationDispense",
            ],
            Tab::Results => &["Observation", "DiagnosticReport", "Task"],
            Tab::Documentation => &["DocumentReference"],
        }
    }
}

/// What the banner shows on every tab.
const BANNER_TYPES: &[&str] = &["Patient", "Encounter", "AllergyIntolerance", "Flag"];

#[component]
pub fn ChartPage() -> impl IntoView {
    let params = use_params_map();
    let patient_id = move || params.read().get("id").unwrap_or_default();
    let chart = Resource::new(patient_id, load_chart);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading the chart…"</p> }>
            {move || Suspend::new(async move {
                match chart.await {
                    Ok(chart) => view! { <ChartView chart/> }.into_any(),
                    Err(error) => {
                        view! {
                            <main class="content">
                                <p class="error" role="alert" data-testid="chart-error">{error_text(&error)}</p>
                                <p><a href="/">"Back to my patients"</a></p>
                            </main>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn ChartView(chart: Chart) -> impl IntoView {
    let Chart {
        patient_id,
        seq,
        resources,
        locations,
    } = chart;
    let records = RwSignal::new(Records::from_resources(resources));
    let query = use_query_map();
    let initial = Tab::parse(&query.read_untracked().get("tab").unwrap_or_default());
    let tab = RwSignal::new(initial);
    let patient_name = records.with_untracked(|r| {
        r.get("Patient", &patient_id)
            .map(|p| clinical::patient_name(&p.json))
            .unwrap_or_else(|| patient_id.clone())
    });
    let ctx = ChartCtx {
        patient_id: patient_id.clone(),
        patient_name: patient_name.clone(),
        records,
    };
    provide_context(ctx);

    // The subscription follows the active tab's types. A switch replays only what the new tab's
    // types missed while hidden, each type from where it was last shown (or from the snapshot).
    {
        let patient_id = patient_id.clone();
        Effect::new(move |watching: Option<()>| {
            let mut types: Vec<String> = BANNER_TYPES.iter().map(|t| t.to_string()).collect();
            types.extend(tab.get().types().iter().map(|t| t.to_string()));
            types.sort();
            types.dedup();
            if watching.is_some() {
                realtime::show_types("chart", types);
            } else {
                let interest = Interest {
                    patient_ids: vec![patient_id.clone()],
                    rooms: Vec::new(),
                    resource_types: types,
                };
                realtime::watch("chart", interest, Some(seq));
            }
        });
        on_cleanup(|| realtime::unwatch("chart"));
    }
    {
        let patient_id = patient_id.clone();
        on_updates_while_mounted(false, move |batch| {
            records.try_update(|store| {
                store.apply_all(
                    batch
                        .iter()
                        .filter(|u| u.patient_id.as_deref() == Some(patient_id.as_str())),
                );
            });
        });
    }

    let tab_button = move |t: Tab| {
        let selected = move || tab.get() == t;
        view! {
            <button
                role="tab"
                id=format!("tab-{}", t.slug())
                class="tab"
                aria-selected=move || selected().to_string()
                aria-controls="tab-panel"
                tabindex=move || if selected() { "0" } else { "-1" }
                data-testid=format!("tab-{}", t.slug())
                on:click=move |_| tab.set(t)
                on:keydown=move |ev| {
                    let index = Tab::ALL.iter().position(|x| *x == t).unwrap_or(0);
                    let next = match ev.key().as_str() {
                        "ArrowRight" => Some((index + 1) % Tab::ALL.len()),
                        "ArrowLeft" => Some((index + Tab::ALL.len() - 1) % Tab::ALL.len()),
                        _ => None,
                    };
                    if let Some(next) = next {
                        tab.set(Tab::ALL[next]);
                        focus_tab(Tab::ALL[next]);
                    }
                }
            >
                {t.label()}
            </button>
        }
    };
    view! {
        <main class="content chart" id="main" data-testid="chart" data-patient-id=patient_id.clone()>
            <PatientBanner locations/>
            <div role="tablist" class="tabs" aria-label="Chart sections">
                {Tab::ALL.into_iter().map(tab_button).collect_view()}
            </div>
            <section
                id="tab-panel"
                role="tabpanel"
                class="tab-panel"
                aria-labelledby=move || format!("tab-{}", tab.get().slug())
            >
                {move || match tab.get() {
                    Tab::Review => view! { <ChartReview/> }.into_any(),
                    Tab::Orders => view! { <OrdersTab/> }.into_any(),
                    Tab::Results => view! { <ResultsTab/> }.into_any(),
                    Tab::Documentation => view! { <DocumentationTab/> }.into_any(),
                }}
            </section>
        </main>
    }
    .into_any()
}

fn focus_tab(_tab: Tab) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(element) = document()
            .get_element_by_id(&format!("tab-{}", _tab.slug()))
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = element.focus();
        }
    }
}

#[component]
fn PatientBanner(locations: Vec<(String, String)>) -> impl IntoView {
    let ctx = expect_context::<ChartCtx>();
    let Alerts(alerts) = expect_context::<Alerts>();
    let records = ctx.records;
    let patient_id = ctx.patient_id.clone();
    let name_of = move |id: &str| {
        locations
            .iter()
            .find(|(l, _)| l == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let patient = {
        let id = patient_id.clone();
        move || records.with(|r| r.get("Patient", &id).map(|p| p.json.clone()))
    };
    let identity = Memo::new({
        let patient = patient.clone();
        move |_| {
            let Some(p) = patient() else {
                return (String::new(), String::new(), String::new());
            };
            (
                clinical::patient_name(&p),
                crate::age_sex(
                    p.get("birthDate").and_then(Value::as_str),
                    p.get("gender").and_then(Value::as_str),
                ),
                p.pointer("/identifier/0/value")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    });
    let placement = move || {
        records.with(|r| {
            let encounter = r
                .of_type("Encounter")
                .filter(|e| {
                    matches!(
                        e.str_at("/status"),
                        Some("in-progress" | "arrived" | "triaged" | "onleave")
                    )
                })
                .max_by_key(|e| e.str_at("/period/start").unwrap_or_default().to_owned())?;
            let unit = crate::fhir::encounter_unit(&encounter.json).map(|u| name_of(&u));
            let bed = encounter
                .json
                .get("location")
                .and_then(Value::as_array)
                .and_then(|l| {
                    l.iter().rev().find_map(|entry| {
                        let is_bed = clinical::codes(entry.get("physicalType")).contains(&"bd");
                        let active = entry
                            .get("status")
                            .and_then(Value::as_str)
                            .is_none_or(|s| s == "active");
                        (is_bed && active)
                            .then(|| entry.pointer("/location/reference")?.as_str())
                            .flatten()
                    })
                })
                .and_then(|r| crate::fhir::reference_id(r, "Location"))
                .map(&name_of);
            Some(match (unit, bed) {
                (Some(u), Some(b)) => format!("{u} · {b}"),
                (Some(u), None) => u,
                (None, Some(b)) => b,
                (None, None) => "Not admitted".into(),
            })
        })
    };
    let allergies = move || {
        let list: Vec<String> = records.with(|r| {
            r.of_type("AllergyIntolerance")
                .filter(|a| {
                    clinical::codes(a.json.get("clinicalStatus"))
                        .first()
                        .is_none_or(|s| *s == "active")
                })
                .map(|a| clinical::concept_text(a.json.get("code")))
                .collect()
        });
        if list.is_empty() {
            "No known allergies".to_owned()
        } else {
            list.join(", ")
        }
    };
    // Which of the chart's records raise an alert, read once per version.
    let raised = StoredValue::new(Derived::<bool>::default());
    let patient_alerts = {
        let reference = format!("Patient/{patient_id}");
        move || {
            let mut open = alerts.with(clinical::open_alerts);
            open.retain(|a| a.str_at("/subject/reference") == Some(reference.as_str()));
            let from_chart = records.with(|r| {
                raised
                    .try_update_value(|raised| {
                        raised.forget_gone(r);
                        clinical::open_alerts_by(r, |record| {
                            raised.of(record, clinical::raises_alert)
                        })
                    })
                    .unwrap_or_default()
            });
            for alert in from_chart {
                if !open
                    .iter()
                    .any(|o| o.id == alert.id && o.resource_type == alert.resource_type)
                {
                    open.push(alert);
                }
            }
            open
        }
    };
    view! {
        <header class="patient-banner" data-testid="patient-banner">
            <div class="who">
                <h1 data-testid="patient-name">{move || identity.get().0}</h1>
                <span>{move || identity.get().1}</span>
                <span class="muted">{move || identity.get().2}</span>
                <span data-testid="placement">{placement}</span>
            </div>
            <div class="allergies" data-testid="allergies">
                <strong>"Allergies: "</strong>
                {allergies}
            </div>
            <ul class="banner-alerts" data-testid="banner-alerts">
                <For
                    each=patient_alerts
                    key=|a| (a.resource_type.clone(), a.id.clone(), a.version)
                    children=|a| {
                        let text = if a.resource_type == "Flag" {
                            clinical::concept_text(a.json.get("code"))
                        } else {
                            format!(
                                "Critical: {} {}",
                                clinical::concept_text(a.json.get("code")),
                                clinical::value_text(&a.json)
                            )
                        };
                        view! { <li class="pill critical" data-testid="banner-alert">{text}</li> }
                    }
                />
            </ul>
        </header>
    }
}
