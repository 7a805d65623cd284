//! The Results tab: laboratory results by day, panels first, with critical results acknowledged
//! in place.

use std::{collections::HashSet, sync::Arc};

use leptos::prelude::*;
use serde_json::Value;

use super::{context::ChartCtx, review::flag_class};
use crate::{
    clinical::{self, Flagged},
    records::{Derived, Record, Records},
    ui::{acknowledge, window, Alerts},
};

#[component]
pub(super) fn ResultsTab() -> impl IntoView {
    let ctx = expect_context::<ChartCtx>();
    let records = ctx.records;
    let Alerts(alerts) = expect_context::<Alerts>();
    // What each report and result shows, read off its JSON once per version.
    let derived = StoredValue::new(Derived::<Arc<Facts>>::default());
    // Days, newest first; in each, panels (reports with their results) then loose results.
    let lines = move || {
        records.with(|r| {
            derived
                .try_update_value(|derived| {
                    derived.forget_gone(r);
                    lines_of(r, derived)
                })
                .unwrap_or_default()
        })
    };
    view! {
        <div class="results card" data-testid="results">
            <Show when=move || records.with(|r| r.of_type("Observation").next().is_some())
                fallback=|| view! { <p class="muted">"No results yet."</p> }>
                <table class="result-table windowed">
                    <colgroup><col class="c-name"/><col class="c-value"/><col class="c-flag"/><col class="c-ack"/></colgroup>
                    {window::windowed_body(lines, 4, move |line| match line {
                        Line::Day(day) => view! {
                            <tr class="day-row line-day"><th colspan="4" scope="rowgroup"><h2>{clinical::short_time(&day)}</h2></th></tr>
                        }.into_any(),
                        Line::Panel { name, when, .. } => view! {
                            <tr class="panel-row line-panel"><th colspan="4" scope="rowgroup"><h3>{name}<span class="muted">" · "{clinical::short_time(&when)}</span></h3></th></tr>
                        }.into_any(),
                        Line::Result { record, .. } => view! { <ResultRow record alerts records/> }.into_any(),
                    })}
                </table>
            </Show>
        </div>
    }
    .into_any()
}

/// What the table needs of a report or a result.
#[derive(Debug)]
struct Facts {
    /// A vital sign: shown in Chart Review, not here.
    vital: bool,
    when: Arc<str>,
    day: Arc<str>,
    name: Arc<str>,
    /// A report's results (`Observation/id`).
    results: Vec<String>,
    /// The key of the panel it heads (a report's, or a loose result's own).
    panel: Arc<str>,
}

impl Facts {
    fn of(record: &Record) -> Arc<Self> {
        let json = &record.json;
        let vital = json
            .get("category")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| clinical::codes(Some(c)).contains(&"vital-signs"))
            });
        let results: Vec<String> = json
            .get("result")
            .and_then(Value::as_array)
            .map(|refs| {
                refs.iter()
                    .filter_map(|x| x.get("reference")?.as_str())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let when = clinical::result_time(json);
        let name = clinical::concept_text(json.get("code"));
        // A report's panel is keyed by its first result, as a loose result's by itself.
        let first = match record.resource_type.as_str() {
            "DiagnosticReport" => results
                .first()
                .and_then(|r| r.strip_prefix("Observation/"))
                .unwrap_or_default(),
            _ => record.id.as_str(),
        };
        Arc::new(Self {
            vital,
            day: clinical::day_of(&when).into(),
            panel: format!("{when}|{name}|{first}").into(),
            when: when.into(),
            name: name.into(),
            results,
        })
    }
}

/// The table's lines: days, newest first; in each, panels (reports with their results) then
/// loose results.
fn lines_of(r: &Records, derived: &mut Derived<Arc<Facts>>) -> Vec<Line> {
    struct Group {
        facts: Arc<Facts>,
        results: Vec<Record>,
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut in_report: HashSet<String> = HashSet::new();
    for report in r.of_type("DiagnosticReport") {
        let facts = derived.of(report, Facts::of);
        let results: Vec<Record> = facts
            .results
            .iter()
            .filter_map(|reference| r.resolve(reference).cloned())
            .collect();
        in_report.extend(results.iter().map(|o| o.id.clone()));
        groups.push(Group { facts, results });
    }
    for o in r.of_type("Observation") {
        if in_report.contains(&o.id) {
            continue;
        }
        let facts = derived.of(o, Facts::of);
        if facts.vital {
            continue;
        }
        groups.push(Group {
            facts,
            results: vec![o.clone()],
        });
    }
    groups.sort_by(|a, b| {
        b.facts
            .when
            .cmp(&a.facts.when)
            .then_with(|| a.facts.name.cmp(&b.facts.name))
    });
    // One flat, keyed list of lines, so that a new result inserts one row instead of rebuilding
    // every table.
    let mut lines = Vec::with_capacity(groups.len() * 2 + 32);
    let mut last_day: Option<Arc<str>> = None;
    for Group { facts, results } in groups {
        if last_day.as_ref() != Some(&facts.day) {
            lines.push(Line::Day(facts.day.clone()));
            last_day = Some(facts.day.clone());
        }
        lines.push(Line::Panel {
            key: facts.panel.clone(),
            name: facts.name.clone(),
            when: facts.when.clone(),
        });
        lines.extend(results.into_iter().map(|record| Line::Result {
            panel: facts.panel.clone(),
            record,
        }));
    }
    lines
}

/// One line of the Results table.
#[derive(Debug, Clone)]
enum Line {
    Day(Arc<str>),
    Panel {
        key: Arc<str>,
        name: Arc<str>,
        when: Arc<str>,
    },
    Result {
        panel: Arc<str>,
        record: Record,
    },
}

impl window::Line for Line {
    type Key = String;

    fn height(&self) -> f64 {
        match self {
            Line::Day(_) => 44.0,
            Line::Panel { .. } => 40.0,
            Line::Result { .. } => 36.0,
        }
    }

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
        <tr class=format!("line-row {}", flag_class(flag)) data-testid="result-row" data-result=key.clone()>
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
