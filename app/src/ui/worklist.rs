//! The patient panel: my patients and my units', with live badges, admissions and discharges.

use std::collections::HashMap;

use leptos::prelude::*;
use serde_json::Value;

use super::{error_text, on_updates_while_mounted, watch_while_mounted, Alerts, Me};
use crate::{
    api::{load_workspace, PatientSummary, Workspace},
    clinical,
    realtime::Interest,
    records::Records,
};

/// The types whose changes the panel counts.
const PANEL_TYPES: &[&str] = &[
    "Patient",
    "Encounter",
    "ServiceRequest",
    "Observation",
    "DiagnosticReport",
    "DocumentReference",
];

#[component]
pub fn WorklistPage() -> impl IntoView {
    let workspace = Resource::new(|| (), |_| load_workspace());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading your patients…"</p> }>
            {move || Suspend::new(async move {
                match workspace.await {
                    Ok(workspace) => view! { <Worklist workspace/> }.into_any(),
                    Err(error) => view! { <p class="error" role="alert">{error_text(&error)}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// What the panel tracks of each patient beyond the row itself.
#[derive(Debug, Clone, Default, PartialEq)]
struct Live {
    /// Changes since the page opened.
    changes: u32,
    /// Results that arrived since the page opened.
    new_results: u32,
}

#[component]
fn Worklist(workspace: Workspace) -> impl IntoView {
    let Workspace {
        patients,
        census,
        seq,
        units,
        resources,
        ..
    } = workspace;
    let Alerts(alerts) = expect_context::<Alerts>();
    let me = expect_context::<Me>();
    let rows = RwSignal::new(patients);
    let records = RwSignal::new(Records::from_resources(resources));
    let live = RwSignal::new(HashMap::<String, Live>::new());
    let (unit, set_unit) = signal(None::<String>);
    let (sidebar_open, set_sidebar_open) = signal(true);

    // The panel's subscription follows its rows: admissions add a patient room.
    let units = StoredValue::new(units);
    let interest = move || Interest {
        patient_ids: rows.with_untracked(|r| r.iter().map(|p| p.id.clone()).collect()),
        rooms: units
            .with_value(|units| units.iter().map(|u| crate::events::unit_room(u)).collect()),
        resource_types: PANEL_TYPES.iter().map(|t| t.to_string()).collect(),
    };
    watch_while_mounted("panel", interest(), seq);
    let my_units = StoredValue::new(interest().rooms);
    let unit_names = StoredValue::new(
        census
            .iter()
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect::<Vec<_>>(),
    );
    on_updates_while_mounted(false, move |batch| {
        let mut admitted = Vec::new();
        live.try_update(|live| {
            for update in batch {
                let Some(patient) = update.patient_id.clone() else {
                    continue;
                };
                let entry = live.entry(patient.clone()).or_default();
                entry.changes += 1;
                if update.event_type == "RESULT_AVAILABLE" {
                    entry.new_results += 1;
                }
            }
        });
        records.try_update(|store| {
            store.apply_all(batch.iter().filter(|u| {
                matches!(
                    u.resource_type.as_str(),
                    "ServiceRequest" | "DocumentReference"
                )
            }));
        });
        for update in batch.iter().filter(|u| u.resource_type == "Encounter") {
            let Some(patient) = update.patient_id.clone() else {
                continue;
            };
            let status = update.resource.get("status").and_then(Value::as_str);
            let ended = update.action == "deleted"
                || matches!(status, Some("finished" | "cancelled" | "entered-in-error"));
            let unit_id = crate::fhir::encounter_unit(&update.resource);
            let on_my_unit = unit_id.as_ref().is_some_and(|u| {
                my_units.with_value(|rooms| rooms.contains(&crate::events::unit_room(u)))
            });
            let known = rows.with_untracked(|r| r.iter().any(|p| p.id == patient));
            if ended {
                rows.try_update(|r| r.retain(|p| p.id != patient));
            } else if known {
                rows.try_update(|r| {
                    if let Some(row) = r.iter_mut().find(|p| p.id == patient) {
                        row.unit_id = unit_id.clone();
                    }
                });
            } else if on_my_unit {
                admitted.push((patient, unit_id));
            }
        }
        for (patient, unit_id) in admitted {
            let unit_name = unit_id.as_ref().and_then(|u| {
                unit_names.with_value(|names| {
                    names.iter().find(|(id, _)| id == u).map(|(_, n)| n.clone())
                })
            });
            add_admitted(rows, patient, unit_id, unit_name, interest);
        }
    });

    let shown = move || {
        rows.with(|all| {
            all.iter()
                .filter(|p| unit.with(|u| u.is_none() || u.as_deref() == p.unit_id.as_deref()))
                .cloned()
                .collect::<Vec<PatientSummary>>()
        })
    };
    let census_items = census.clone();
    let heading = move || match unit.get() {
        Some(id) => census
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
            .unwrap_or(id),
        None => "My patients".to_owned(),
    };
    // Badges per patient, from the stores.
    let badges = Memo::new(move |_| {
        let mut counts: HashMap<String, (usize, usize, usize)> = HashMap::new();
        records.with(|store| {
            for order in store.of_type("ServiceRequest") {
                if order.str_at("/status") == Some("active") {
                    if let Some(p) = crate::fhir::patient_id(&order.json) {
                        counts.entry(p).or_default().0 += 1;
                    }
                }
            }
            for note in store.of_type("DocumentReference") {
                if note.str_at("/docStatus") != Some("final")
                    && note.str_at("/status") == Some("current")
                {
                    if let Some(p) = crate::fhir::patient_id(&note.json) {
                        counts.entry(p).or_default().1 += 1;
                    }
                }
            }
        });
        alerts.with(|store| {
            for alert in clinical::open_alerts(store) {
                if alert.resource_type != "Flag" {
                    if let Some(p) = crate::fhir::patient_id(&alert.json) {
                        counts.entry(p).or_default().2 += 1;
                    }
                }
            }
        });
        counts
    });
    let _ = &me;
    view! {
        <div class="body">
            <nav
                id="sidebar"
                class="sidebar"
                class:collapsed=move || !sidebar_open.get()
                data-testid="sidebar"
                aria-label="Units"
            >
                <h2>"Units"</h2>
                <ul data-testid="unit-census">
                    {census_items
                        .into_iter()
                        .map(|entry| {
                            let id = entry.id.clone();
                            let selected_id = entry.id.clone();
                            view! {
                                <li>
                                    <button
                                        class="unit"
                                        class:selected=move || unit.get().as_deref() == Some(selected_id.as_str())
                                        on:click=move |_| {
                                            let id = id.clone();
                                            set_unit.update(|u| {
                                                *u = if u.as_deref() == Some(id.as_str()) { None } else { Some(id) }
                                            })
                                        }
                                    >
                                        <span>{entry.name.clone()}</span>
                                        <span class="count">{entry.patients}</span>
                                    </button>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </nav>
            <main class="content" id="main">
                <div class="page-head">
                    <button
                        class="icon-button quiet"
                        data-testid="sidebar-toggle"
                        aria-controls="sidebar"
                        aria-expanded=move || sidebar_open.get().to_string()
                        aria-label="Show or hide the unit list"
                        on:click=move |_| set_sidebar_open.update(|open| *open = !*open)
                    >
                        "☰"
                    </button>
                    <h1>{heading}</h1>
                </div>
                <p class="muted" data-testid="worklist-count">
                    {move || format!("{} of {} patients", shown().len(), rows.with(Vec::len))}
                </p>
                <table class="worklist" data-testid="worklist">
                    <thead>
                        <tr>
                            <th scope="col">"Patient"</th>
                            <th scope="col">"MRN"</th>
                            <th scope="col">"Age / sex"</th>
                            <th scope="col">"Unit"</th>
                            <th scope="col">"Bed"</th>
                            <th scope="col">"Status"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=shown
                            key=|p| (p.id.clone(), p.unit_id.clone())
                            children=move |p| view! { <PatientRow patient=p live badges/> }
                        />
                    </tbody>
                </table>
            </main>
        </div>
    }
    .into_any()
}

/// A patient admitted to one of my units: read them and add their row and room.
fn add_admitted(
    rows: RwSignal<Vec<PatientSummary>>,
    patient_id: String,
    unit_id: Option<String>,
    unit_name: Option<String>,
    interest: impl Fn() -> Interest + 'static,
) {
    leptos::task::spawn_local(async move {
        let Ok(patient) = super::write::read(&format!("Patient/{patient_id}")).await else {
            return;
        };
        let summary = PatientSummary {
            id: patient_id.clone(),
            name: clinical::patient_name(&patient),
            mrn: patient
                .pointer("/identifier/0/value")
                .and_then(Value::as_str)
                .map(str::to_owned),
            gender: patient
                .get("gender")
                .and_then(Value::as_str)
                .map(str::to_owned),
            birth_date: patient
                .get("birthDate")
                .and_then(Value::as_str)
                .map(str::to_owned),
            unit_id,
            unit_name,
            bed: None,
        };
        rows.try_update(|r| {
            if !r.iter().any(|p| p.id == patient_id) {
                r.push(summary);
            }
        });
        crate::realtime::watch("panel", interest(), None);
    });
}

#[component]
fn PatientRow(
    patient: PatientSummary,
    live: RwSignal<HashMap<String, Live>>,
    badges: Memo<HashMap<String, (usize, usize, usize)>>,
) -> impl IntoView {
    let age_sex = crate::age_sex(patient.birth_date.as_deref(), patient.gender.as_deref());
    let id = patient.id.clone();
    let changes = {
        let id = id.clone();
        move || live.with(|l| l.get(&id).cloned().unwrap_or_default())
    };
    let counts = {
        let id = id.clone();
        move || badges.with(|b| b.get(&id).copied().unwrap_or_default())
    };
    let change_badge = {
        let changes = changes.clone();
        move || {
            let count = changes().changes;
            (count > 0).then(|| {
                view! {
                    <span class="badge" data-testid="live-badge" title="Changes since you opened the page">
                        {format!("{count} new")}
                    </span>
                }
            })
        }
    };
    let status = move || {
        let (orders, notes, critical) = counts();
        let results = changes().new_results;
        let mut pills = Vec::new();
        if critical > 0 {
            pills.push((
                "pill critical",
                format!("{critical} critical"),
                "badge-critical",
            ));
        }
        if results > 0 {
            pills.push((
                "pill info",
                format!("{results} new result{}", plural(results as usize)),
                "badge-results",
            ));
        }
        if orders > 0 {
            pills.push((
                "pill",
                format!("{orders} active order{}", plural(orders)),
                "badge-orders",
            ));
        }
        if notes > 0 {
            pills.push((
                "pill warn",
                format!("{notes} unsigned note{}", plural(notes)),
                "badge-notes",
            ));
        }
        pills
            .into_iter()
            .map(|(class, text, testid)| view! { <span class=class data-testid=testid>{text}</span> })
            .collect_view()
    };
    let href = format!("/patient/{}", patient.id);
    view! {
        <tr data-testid="patient-row" data-patient-id=patient.id.clone()>
            <td class="name"><a href=href>{patient.name}</a>{change_badge}</td>
            <td>{patient.mrn.unwrap_or_default()}</td>
            <td>{age_sex}</td>
            <td>{patient.unit_name.unwrap_or_default()}</td>
            <td>{patient.bed.unwrap_or_default()}</td>
            <td class="pills">{status}</td>
        </tr>
    }
    .into_any()
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
