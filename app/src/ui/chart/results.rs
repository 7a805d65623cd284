//! The Results tab: laboratory results by day, panels first, with critical results acknowledged
//! in place.

use leptos::prelude::*;
use serde_json::Value;

use super::{context::ChartCtx, review::flag_class};
use crate::{
    clinical::{self, Flagged},
    records::{Record, Records},
    ui::{acknowledge, Alerts},
};

#[component]
pub(super) fn ResultsTab() -> impl IntoView {
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
                                    on:click=move |_| acknowledge(key.clone(), patient_ref.clone())>
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
