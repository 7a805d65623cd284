//! The patient chart: banner and the Chart Review, Orders, Results and Documentation tabs.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde_json::Value;

use super::{error_text, keep, now_iso, on_updates_while_mounted, write, Alerts, Me, Toasts};
use crate::{
    api::{load_chart, Chart},
    clinical::{self, Flagged},
    realtime::{self, Interest},
    records::{Record, Records},
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

/// The chart's store and who it is about, for the tabs.
#[derive(Clone)]
pub struct ChartCtx {
    pub patient_id: String,
    pub patient_name: String,
    pub records: RwSignal<Records>,
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
                    Tab::Orders => view! { <super::orders::OrdersTab/> }.into_any(),
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
    let patient_alerts = {
        let reference = format!("Patient/{patient_id}");
        move || {
            let mut open = alerts.with(clinical::open_alerts);
            open.retain(|a| a.str_at("/subject/reference") == Some(reference.as_str()));
            let from_chart = records.with(clinical::open_alerts);
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

#[component]
fn ChartReview() -> impl IntoView {
    let ctx = expect_context::<ChartCtx>();
    let records = ctx.records;
    let problems = move || {
        records.with(|r| {
            let mut list: Vec<(String, String)> = r
                .of_type("Condition")
                .filter(|c| {
                    clinical::codes(c.json.get("clinicalStatus"))
                        .first()
                        .is_none_or(|s| matches!(*s, "active" | "recurrence" | "relapse"))
                })
                .map(|c| {
                    (
                        clinical::concept_text(c.json.get("code")),
                        c.str_at("/onsetDateTime")
                            .or(c.str_at("/recordedDate"))
                            .map(clinical::short_time)
                            .unwrap_or_default(),
                    )
                })
                .collect();
            list.sort();
            list
        })
    };
    let allergies = move || {
        records.with(|r| {
            r.of_type("AllergyIntolerance")
                .map(|a| {
                    (
                        clinical::concept_text(a.json.get("code")),
                        a.str_at("/criticality").unwrap_or("").to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        })
    };
    let medications = move || {
        records.with(|r| {
            let mut list: Vec<(String, String, String)> = r
                .of_type("MedicationRequest")
                .filter(|m| matches!(m.str_at("/status"), Some("active" | "on-hold" | "draft")))
                .map(|m| {
                    (
                        clinical::concept_text(m.json.get("medicationCodeableConcept")),
                        m.str_at("/dosageInstruction/0/text")
                            .unwrap_or("")
                            .to_owned(),
                        clinical::stage(r, m).label(),
                    )
                })
                .collect();
            list.sort();
            list
        })
    };
    let vitals = move || {
        records.with(|r| {
            let mut by_code: std::collections::BTreeMap<String, Vec<&Record>> = Default::default();
            for o in r.of_type("Observation").filter(|o| {
                o.json
                    .get("category")
                    .and_then(Value::as_array)
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| clinical::codes(Some(c)).contains(&"vital-signs"))
                    })
            }) {
                by_code
                    .entry(clinical::concept_text(o.json.get("code")))
                    .or_default()
                    .push(o);
            }
            by_code
                .into_iter()
                .map(|(name, mut list)| {
                    list.sort_by_key(|o| clinical::result_time(&o.json));
                    let points: Vec<f64> = list
                        .iter()
                        .rev()
                        .take(12)
                        .rev()
                        .filter_map(|o| clinical::value_number(&o.json))
                        .collect();
                    let latest = list.last().map(|o| {
                        (
                            clinical::value_text(&o.json),
                            clinical::short_time(&clinical::result_time(&o.json)),
                            clinical::flagged(&o.json),
                        )
                    });
                    (name, latest, points)
                })
                .collect::<Vec<_>>()
        })
    };
    view! {
        <div class="review-grid" data-testid="chart-review">
            <section class="card">
                <h2>"Problems"</h2>
                <ul class="plain" data-testid="problems">
                    {move || problems().into_iter().map(|(name, since)| view! {
                        <li><span>{name}</span><span class="muted">{since}</span></li>
                    }).collect_view()}
                </ul>
            </section>
            <section class="card">
                <h2>"Allergies"</h2>
                <ul class="plain">
                    {move || {
                        let list = allergies();
                        if list.is_empty() {
                            view! { <li class="muted">"No known allergies"</li> }.into_any()
                        } else {
                            list.into_iter().map(|(name, criticality)| view! {
                                <li><span>{name}</span><span class="muted">{criticality}</span></li>
                            }).collect_view().into_any()
                        }
                    }}
                </ul>
            </section>
            <section class="card wide">
                <h2>"Active medications"</h2>
                <ul class="plain" data-testid="active-medications">
                    {move || medications().into_iter().map(|(name, sig, stage)| view! {
                        <li><span><strong>{name}</strong>" "<span class="muted">{sig}</span></span><span class="pill">{stage}</span></li>
                    }).collect_view()}
                </ul>
            </section>
            <section class="card wide">
                <h2>"Latest vitals"</h2>
                <table class="vitals" data-testid="vitals">
                    <thead><tr><th scope="col">"Vital"</th><th scope="col">"Latest"</th><th scope="col">"When"</th><th scope="col">"Trend"</th></tr></thead>
                    <tbody>
                        {move || vitals().into_iter().map(|(name, latest, points)| {
                            let (value, when, flag) = latest.unwrap_or((String::new(), String::new(), Flagged::Normal));
                            let label = format!("{name} trend");
                            view! {
                                <tr>
                                    <th scope="row">{name}</th>
                                    <td class=flag_class(flag)>{value}</td>
                                    <td class="muted">{when}</td>
                                    <td><Sparkline points label/></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        </div>
    }
    .into_any()
}

fn flag_class(flag: Flagged) -> &'static str {
    match flag {
        Flagged::Normal => "",
        Flagged::Abnormal => "abnormal",
        Flagged::Critical => "critical-value",
    }
}

/// A small trend line of the last values.
#[component]
fn Sparkline(points: Vec<f64>, label: String) -> impl IntoView {
    let (w, h) = (120.0, 28.0);
    let path = if points.len() < 2 {
        String::new()
    } else {
        let lo = points.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = points.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let step = w / (points.len() - 1) as f64;
        points
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    i as f64 * step,
                    h - 3.0 - (v - lo) / span * (h - 6.0)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    view! {
        <svg class="sparkline" width="120" height="28" viewBox="0 0 120 28" role="img" aria-label=label>
            <polyline points=path fill="none" stroke="currentColor" stroke-width="1.5"/>
        </svg>
    }
}

#[component]
fn ResultsTab() -> impl IntoView {
    let ctx = expect_context::<ChartCtx>();
    let records = ctx.records;
    let Alerts(alerts) = expect_context::<Alerts>();
    // Days, newest first; in each, panels (reports with their results) then loose results.
    let lines = move || {
        records.with(|r| {
            let is_vital = |o: &Record| {
                o.json
                    .get("category")
                    .and_then(Value::as_array)
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| clinical::codes(Some(c)).contains(&"vital-signs"))
                    })
            };
            let mut in_report = std::collections::HashSet::new();
            let mut groups: Vec<(String, String, String, Vec<Record>)> = Vec::new();
            for report in r.of_type("DiagnosticReport") {
                let results: Vec<Record> = report
                    .json
                    .get("result")
                    .and_then(Value::as_array)
                    .map(|refs| {
                        refs.iter()
                            .filter_map(|x| x.get("reference")?.as_str())
                            .filter_map(|x| r.resolve(x).cloned())
                            .collect()
                    })
                    .unwrap_or_default();
                for o in &results {
                    in_report.insert(o.id.clone());
                }
                let when = clinical::result_time(&report.json);
                groups.push((
                    clinical::day_of(&when).to_owned(),
                    when.clone(),
                    clinical::concept_text(report.json.get("code")),
                    results,
                ));
            }
            for o in r.of_type("Observation") {
                if in_report.contains(&o.id) || is_vital(o) {
                    continue;
                }
                let when = clinical::result_time(&o.json);
                groups.push((
                    clinical::day_of(&when).to_owned(),
                    when.clone(),
                    clinical::concept_text(o.json.get("code")),
                    vec![o.clone()],
                ));
            }
            groups.sort_by(|a, b| (&b.1, &a.2).cmp(&(&a.1, &b.2)));
            // One flat, keyed list of lines, so that a new result inserts one row instead of
            // rebuilding every table.
            let mut lines = Vec::new();
            let mut last_day = String::new();
            for (day, when, name, results) in groups {
                if day != last_day {
                    lines.push(Line::Day(day.clone()));
                    last_day = day;
                }
                let panel = format!(
                    "{when}|{name}|{}",
                    results.first().map(|r| r.id.as_str()).unwrap_or("")
                );
                lines.push(Line::Panel {
                    key: panel.clone(),
                    name,
                    when,
                });
                lines.extend(results.into_iter().map(|record| Line::Result {
                    panel: panel.clone(),
                    record,
                }));
            }
            lines
        })
    };
    view! {
        <div class="results card" data-testid="results">
            <Show when=move || records.with(|r| r.of_type("Observation").next().is_some())
                fallback=|| view! { <p class="muted">"No results yet."</p> }>
                <table class="result-table">
                    <tbody>
                        <For
                            each=lines
                            key=Line::key
                            children=move |line| match line {
                                Line::Day(day) => view! {
                                    <tr class="day-row"><th colspan="4" scope="rowgroup"><h2>{clinical::short_time(&day)}</h2></th></tr>
                                }.into_any(),
                                Line::Panel { name, when, .. } => view! {
                                    <tr class="panel-row"><th colspan="4" scope="rowgroup"><h3>{name}<span class="muted">" · "{clinical::short_time(&when)}</span></h3></th></tr>
                                }.into_any(),
                                Line::Result { record, .. } => view! { <ResultRow record alerts records/> }.into_any(),
                            }
                        />
                    </tbody>
                </table>
            </Show>
        </div>
    }
    .into_any()
}

/// One line of the Results table.
#[derive(Debug, Clone)]
enum Line {
    Day(String),
    Panel {
        key: String,
        name: String,
        when: String,
    },
    Result {
        panel: String,
        record: Record,
    },
}

impl Line {
    fn key(&self) -> String {
        match self {
            Line::Day(day) => format!("d|{day}"),
            Line::Panel { key, .. } => format!("p|{key}"),
            Line::Result { panel, record } => format!(
                "r|{panel}|{}|{}|{}",
                record.resource_type, record.id, record.version
            ),
        }
    }
}

#[component]
fn ResultRow(
    record: Record,
    alerts: RwSignal<Records>,
    records: RwSignal<Records>,
) -> impl IntoView {
    let flag = clinical::flagged(&record.json);
    let key = format!("{}/{}", record.resource_type, record.id);
    let patient_ref = record
        .str_at("/subject/reference")
        .unwrap_or_default()
        .to_owned();
    let acknowledged = {
        let key = key.clone();
        move || {
            let by = |r: &Records| {
                clinical::acknowledgement(r, &key).map(|t| {
                    format!(
                        "Acknowledged by {} {}",
                        t.str_at("/owner/display").unwrap_or("a colleague"),
                        clinical::short_time(t.str_at("/lastModified").unwrap_or_default())
                    )
                })
            };
            alerts.with(by).or_else(|| records.with(by))
        }
    };
    let marker = match flag {
        Flagged::Critical => "Critical",
        Flagged::Abnormal => "Abnormal",
        Flagged::Normal => "",
    };
    let name = clinical::concept_text(record.json.get("code"));
    let label = format!("Acknowledge critical {name}");
    view! {
        <tr class=flag_class(flag) data-testid="result-row" data-result=key.clone()>
            <th scope="row">{name.clone()}</th>
            <td class="value">{clinical::value_text(&record.json)}</td>
            <td>{(!marker.is_empty()).then(|| view! { <span class=format!("pill {}", if flag == Flagged::Critical { "critical" } else { "warn" })>{marker}</span> })}</td>
            <td class="ack">
                {(flag == Flagged::Critical).then(|| {
                    let acknowledged = acknowledged.clone();
                    let key = key.clone();
                    let patient_ref = patient_ref.clone();
                    let label = label.clone();
                    move || match acknowledged() {
                        Some(text) => view! { <span class="muted" data-testid="acknowledged">{text}</span> }.into_any(),
                        None => {
                            let key = key.clone();
                            let patient_ref = patient_ref.clone();
                            view! {
                                <button class="small" data-testid="acknowledge-result" aria-label=label.clone()
                                    on:click=move |_| super::acknowledge(key.clone(), patient_ref.clone())>
                                    "Acknowledge"
                                </button>
                            }.into_any()
                        }
                    }
                })}
            </td>
        </tr>
    }
    .into_any()
}

/// A note being edited: its id, the version the edit started from, the text.
#[derive(Debug, Clone, PartialEq)]
struct Editing {
    id: String,
    base: i64,
    text: String,
}

/// A save refused because someone saved first: my text and their version.
#[derive(Debug, Clone, PartialEq)]
struct NoteConflict {
    id: String,
    mine: String,
    theirs: Option<Value>,
    /// Whether my change was a signature (else a text edit).
    signing: bool,
}

#[component]
fn DocumentationTab() -> impl IntoView {
    let ctx = expect_context::<ChartCtx>();
    let me = expect_context::<Me>();
    let toasts = expect_context::<Toasts>();
    let records = ctx.records;
    let editing = RwSignal::new(None::<Editing>);
    let conflict = RwSignal::new(None::<NoteConflict>);
    let (draft_kind, set_draft_kind) = signal("Progress note".to_owned());
    let (draft_text, set_draft_text) = signal(String::new());
    let saving = RwSignal::new(false);
    let notes = move || {
        records.with(|r| {
            let mut list: Vec<Record> = r
                .of_type("DocumentReference")
                .filter(|n| n.str_at("/status") != Some("entered-in-error"))
                .cloned()
                .collect();
            list.sort_by_key(|n| {
                std::cmp::Reverse(n.str_at("/date").unwrap_or_default().to_owned())
            });
            list
        })
    };
    let may_write = me.may_write_notes();
    let patient = (ctx.patient_id.clone(), ctx.patient_name.clone());
    let me_for_new = me.clone();
    let create_note = move |_| {
        let text = draft_text.get_untracked();
        if text.trim().is_empty() {
            toasts.show(false, "Write something before saving the note.");
            return;
        }
        let tag = super::new_tag();
        let note = clinical::note(
            &draft_kind.get_untracked(),
            &text,
            (&patient.0, &patient.1),
            me_for_new.practitioner.as_ref(),
            &now_iso(),
            &tag,
        );
        let mut pending = note.clone();
        pending["id"] = Value::from(format!("pending-{tag}"));
        records.try_update(|r| {
            r.upsert(pending);
        });
        saving.set(true);
        leptos::task::spawn_local(async move {
            match write::create(&note).await {
                Ok(stored) => {
                    keep(records, stored);
                    set_draft_text.set(String::new());
                }
                Err(error) => {
                    records.try_update(|r| {
                        r.discard_pending("DocumentReference", &format!("pending-{tag}"));
                    });
                    toasts.show(
                        false,
                        format!("The note was not saved: {}", error.message()),
                    );
                }
            }
            saving.set(false);
        });
    };
    let me_for_rows = StoredValue::new(me.clone());
    view! {
        <div class="documentation" data-testid="documentation">
            {may_write.then(|| view! {
                <section class="card new-note">
                    <h2>"New note"</h2>
                    <label for="note-kind">"Type"</label>
                    <select id="note-kind" on:change=move |ev| set_draft_kind.set(event_target_value(&ev))>
                        <option value="Progress note">"Progress note"</option>
                        <option value="Nursing note">"Nursing note"</option>
                        <option value="Consult note">"Consult note"</option>
                    </select>
                    <label for="note-text">"Note"</label>
                    <textarea id="note-text" rows="4" data-testid="note-text"
                        prop:value=draft_text
                        on:input=move |ev| set_draft_text.set(event_target_value(&ev))></textarea>
                    <button class="primary" data-testid="save-note" disabled=move || saving.get() on:click=create_note>
                        "Save draft"
                    </button>
                </section>
            })}
            {move || conflict.get().map(|c| view! { <ConflictPanel conflict=c current=conflict editing/> })}
            <ul class="notes" data-testid="notes">
                <For
                    each=notes
                    key=|n| (n.id.clone(), n.version)
                    children=move |note| view! { <NoteItem note editing conflict me=me_for_rows.get_value()/> }
                />
            </ul>
        </div>
    }
    .into_any()
}

#[component]
fn NoteItem(
    note: Record,
    editing: RwSignal<Option<Editing>>,
    conflict: RwSignal<Option<NoteConflict>>,
    me: Me,
) -> impl IntoView {
    let ctx = expect_context::<ChartCtx>();
    let toasts = expect_context::<Toasts>();
    let records = ctx.records;
    let signed = note.str_at("/docStatus") == Some("final");
    let text = clinical::note_text(&note.json);
    let kind = clinical::concept_text(note.json.get("type"));
    let author = note.str_at("/author/0/display").unwrap_or("").to_owned();
    let when = clinical::short_time(note.str_at("/date").unwrap_or_default());
    let id = note.id.clone();
    let note_id = note.id.clone();
    let version = note.version;
    let json = note.json.clone();
    let pending = note.is_pending();
    let may_write = me.may_write_notes() && !pending;
    let is_editing = {
        let id = id.clone();
        move || editing.with(|e| e.as_ref().is_some_and(|e| e.id == id))
    };
    let start_edit = {
        let id = id.clone();
        let text = text.clone();
        move |_| {
            editing.set(Some(Editing {
                id: id.clone(),
                base: version,
                text: text.clone(),
            }))
        }
    };
    let practitioner = me.practitioner.clone();
    let save_edit = {
        let json = json.clone();
        move |_| {
            let Some(edit) = editing.get_untracked() else {
                return;
            };
            let next = clinical::with_note_text(&json, &edit.text);
            leptos::task::spawn_local(async move {
                match write::update(&next, edit.base).await {
                    Ok(stored) => {
                        keep(records, stored);
                        editing.set(None);
                    }
                    Err(write::WriteError::Conflict { current }) => {
                        if let Some(current) = &current {
                            keep(records, current.clone());
                        }
                        conflict.set(Some(NoteConflict {
                            id: edit.id.clone(),
                            mine: edit.text.clone(),
                            theirs: current,
                            signing: false,
                        }));
                        editing.set(None);
                    }
                    Err(error) => toasts.show(false, format!("Not saved: {}", error.message())),
                }
            });
        }
    };
    let sign = {
        let json = json.clone();
        let text = text.clone();
        let id = id.clone();
        move |_| {
            let next = clinical::signed(&json, practitioner.as_ref());
            let text = text.clone();
            let id = id.clone();
            leptos::task::spawn_local(async move {
                match write::update(&next, version).await {
                    Ok(stored) => keep(records, stored),
                    Err(write::WriteError::Conflict { current }) => {
                        if let Some(current) = &current {
                            keep(records, current.clone());
                        }
                        conflict.set(Some(NoteConflict {
                            id,
                            mine: text,
                            theirs: current,
                            signing: true,
                        }));
                    }
                    Err(error) => toasts.show(false, format!("Not signed: {}", error.message())),
                }
            });
        }
    };
    view! {
        <li class="note card" class:pending=pending data-testid="note" data-note-id=note_id>
            <div class="note-head">
                <strong>{kind}</strong>
                <span class="muted">{author}" · "{when}</span>
                <span class=if signed { "pill ok" } else { "pill warn" } data-testid="note-status">
                    {if pending { "Saving…" } else if signed { "Signed" } else { "Draft" }}
                </span>
            </div>
            {move || if is_editing() {
                view! {
                    <div class="note-edit">
                        <label class="visually-hidden" for=format!("edit-{}", id)>"Note text"</label>
                        <textarea id=format!("edit-{}", id) rows="5" data-testid="edit-text"
                            prop:value=move || editing.with(|e| e.as_ref().map(|e| e.text.clone()).unwrap_or_default())
                            on:input=move |ev| {
                                let value = event_target_value(&ev);
                                editing.update(|e| if let Some(e) = e { e.text = value });
                            }></textarea>
                        <button class="primary" data-testid="save-edit" on:click=save_edit.clone()>"Save"</button>
                        <button class="link-button dark" on:click=move |_| editing.set(None)>"Cancel"</button>
                    </div>
                }.into_any()
            } else {
                view! { <p class="note-text" data-testid="note-body">{text.clone()}</p> }.into_any()
            }}
            {(may_write && !signed).then(|| view! {
                <div class="note-actions">
                    <button class="small" data-testid="edit-note" on:click=start_edit.clone()>"Edit"</button>
                    <button class="small" data-testid="sign-note" on:click=sign.clone()>"Sign"</button>
                </div>
            })}
        </li>
    }
    .into_any()
}

/// Shows what someone else saved first, and lets the user redo their change on it.
#[component]
fn ConflictPanel(
    conflict: NoteConflict,
    current: RwSignal<Option<NoteConflict>>,
    editing: RwSignal<Option<Editing>>,
) -> impl IntoView {
    let ctx = expect_context::<ChartCtx>();
    let me = expect_context::<Me>();
    let toasts = expect_context::<Toasts>();
    let records = ctx.records;
    let theirs_text = conflict
        .theirs
        .as_ref()
        .map(clinical::note_text)
        .unwrap_or_default();
    let theirs_status = match conflict
        .theirs
        .as_ref()
        .and_then(|t| t.get("docStatus").and_then(Value::as_str))
    {
        Some("final") => "signed",
        Some(_) => "a draft",
        None => "unreadable",
    };
    let when = conflict
        .theirs
        .as_ref()
        .and_then(|t| t.pointer("/meta/lastUpdated").and_then(Value::as_str))
        .map(clinical::short_time)
        .unwrap_or_default();
    let redo = {
        let conflict = conflict.clone();
        move |_| {
            let Some(theirs) = conflict.theirs.clone() else {
                current.set(None);
                return;
            };
            let version = Record::from_json(theirs.clone())
                .map(|r| r.version)
                .unwrap_or(0);
            if conflict.signing {
                let next = clinical::signed(&theirs, me.practitioner.as_ref());
                current.set(None);
                leptos::task::spawn_local(async move {
                    match write::update(&next, version).await {
                        Ok(stored) => keep(records, stored),
                        Err(error) => {
                            toasts.show(false, format!("Not signed: {}", error.message()))
                        }
                    }
                });
            } else {
                editing.set(Some(Editing {
                    id: conflict.id.clone(),
                    base: version,
                    text: conflict.mine.clone(),
                }));
                current.set(None);
            }
        }
    };
    view! {
        <section class="conflict card" role="alert" data-testid="conflict">
            <h2>"This note changed while you were working"</h2>
            <p>{format!("A newer version was saved {when}; it is {theirs_status}.")}</p>
            <div class="conflict-grid">
                <div><h3>"Their version"</h3><p class="note-text" data-testid="conflict-theirs">{theirs_text}</p></div>
                <div><h3>"Your change"</h3><p class="note-text" data-testid="conflict-mine">{conflict.mine.clone()}</p></div>
            </div>
            <button class="primary" data-testid="redo" on:click=redo>
                {if conflict.signing { "Sign their latest version" } else { "Redo my change on their version" }}
            </button>
            <button class="link-button dark" on:click=move |_| current.set(None)>"Keep theirs"</button>
        </section>
    }
    .into_any()
}
