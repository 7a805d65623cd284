//! The Chart Review tab: problems, allergies, active medications and the latest vitals with their
//! trends.

use leptos::prelude::*;
use serde_json::Value;

use super::context::ChartCtx;
use crate::{
    clinical::{self, Flagged},
    records::Record,
};

#[component]
pub(super) fn ChartReview() -> impl IntoView {
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

/// The class that colours a value as it is flagged.
pub(super) fn flag_class(flag: Flagged) -> &'static str {
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
