//! The Orders tab: lab and imaging orders and prescriptions, placed optimistically.
//!
//! A new order appears at once as pending; the server's answer (or the socket, whichever comes
//! first) replaces it by the stored order; a failure removes it and says why. Cancelling saves over
//! the version shown (`If-Match`); if someone changed the order first, the user sees its state now
//! and may cancel that version.

use leptos::prelude::*;
use serde_json::Value;

use super::context::ChartCtx;
use crate::{
    catalogue::{FORMULARY, ORDERS},
    clinical,
    records::{Record, Records},
    ui::{keep, new_tag, now_iso, window, write, Me, Toasts},
};

/// A row of the orders table, drawn a window at a time.
#[derive(Debug, Clone, PartialEq)]
struct OrderLine(Record);

impl window::Line for OrderLine {
    type Key = (String, i64);

    fn key(&self) -> (String, i64) {
        (self.0.id.clone(), self.0.version)
    }

    fn height(&self) -> f64 {
        40.0
    }
}

/// An order whose cancel met a newer version.
#[derive(Debug, Clone, PartialEq)]
struct OrderConflict {
    name: String,
    theirs: Option<Value>,
}

#[component]
pub(super) fn OrdersTab() -> impl IntoView {
    let ctx = expect_context::<ChartCtx>();
    let me = expect_context::<Me>();
    let toasts = expect_context::<Toasts>();
    let records = ctx.records;
    let (choice, set_choice) = signal(ORDERS[0].name.to_owned());
    let (priority, set_priority) = signal("routine".to_owned());
    let (medicine, set_medicine) = signal(FORMULARY[0].name.to_owned());
    let conflict = RwSignal::new(None::<OrderConflict>);
    let patient = (ctx.patient_id.clone(), ctx.patient_name.clone());

    let orders = move || {
        records.with(|r| {
            let mut list: Vec<OrderLine> = r
                .of_type("ServiceRequest")
                .cloned()
                .map(OrderLine)
                .collect();
            list.sort_by_cached_key(|OrderLine(o)| {
                (
                    !o.is_pending(),
                    status_rank(o.str_at("/status")),
                    std::cmp::Reverse(o.str_at("/authoredOn").unwrap_or_default().to_owned()),
                )
            });
            list
        })
    };
    let prescriptions = move || {
        records.with(|r| {
            let mut list: Vec<(Record, String)> = r
                .of_type("MedicationRequest")
                .map(|m| (m.clone(), clinical::stage(r, m).label()))
                .collect();
            list.sort_by_key(|(m, _)| {
                (
                    !m.is_pending(),
                    status_rank(m.str_at("/status")),
                    std::cmp::Reverse(m.str_at("/authoredOn").unwrap_or_default().to_owned()),
                )
            });
            list
        })
    };

    let place = {
        let me = me.clone();
        let patient = patient.clone();
        move |_| {
            let Some(item) = ORDERS.iter().find(|o| o.name == choice.get_untracked()) else {
                return;
            };
            let tag = new_tag();
            let order = clinical::service_request(
                item,
                &priority.get_untracked(),
                (&patient.0, &patient.1),
                me.practitioner.as_ref(),
                &now_iso(),
                &tag,
            );
            optimistic(records, toasts, order, tag, "ServiceRequest", item.name);
        }
    };
    let prescribe = {
        let me = me.clone();
        let patient = patient.clone();
        move |_| {
            let Some(item) = FORMULARY
                .iter()
                .find(|m| m.name == medicine.get_untracked())
            else {
                return;
            };
            let tag = new_tag();
            let request = clinical::medication_request(
                item,
                (&patient.0, &patient.1),
                me.practitioner.as_ref(),
                &now_iso(),
                &tag,
            );
            optimistic(
                records,
                toasts,
                request,
                tag,
                "MedicationRequest",
                item.name,
            );
        }
    };
    let may_order = me.may_order();
    view! {
        <div class="orders" data-testid="orders">
            {may_order.then(|| view! {
                <section class="card order-form">
                    <h2>"Place an order"</h2>
                    <div class="form-row">
                        <label for="order-choice">"Test or study"</label>
                        <select id="order-choice" data-testid="order-choice" on:change=move |ev| set_choice.set(event_target_value(&ev))>
                            {ORDERS.iter().map(|o| view! { <option value=o.name>{o.name}</option> }).collect_view()}
                        </select>
                        <label for="order-priority">"Priority"</label>
                        <select id="order-priority" on:change=move |ev| set_priority.set(event_target_value(&ev))>
                            <option value="routine">"Routine"</option>
                            <option value="urgent">"Urgent"</option>
                            <option value="stat">"STAT"</option>
                        </select>
                        <button class="primary" data-testid="place-order" on:click=place>"Place order"</button>
                    </div>
                    <div class="form-row">
                        <label for="medicine-choice">"Medicine"</label>
                        <select id="medicine-choice" data-testid="medicine-choice" on:change=move |ev| set_medicine.set(event_target_value(&ev))>
                            {FORMULARY.iter().map(|m| view! { <option value=m.name>{m.name}</option> }).collect_view()}
                        </select>
                        <button class="primary" data-testid="prescribe" on:click=prescribe>"Prescribe"</button>
                    </div>
                </section>
            })}
            {move || conflict.get().map(|c| {
                let theirs = c.theirs.clone();
                let status = theirs.as_ref().and_then(|t| t.get("status").and_then(Value::as_str)).unwrap_or("unknown").to_owned();
                let when = theirs.as_ref().and_then(|t| t.pointer("/meta/lastUpdated").and_then(Value::as_str)).map(clinical::short_time).unwrap_or_default();
                let can_redo = status == "active" || status == "on-hold" || status == "draft";
                view! {
                    <section class="conflict card" role="alert" data-testid="order-conflict">
                        <h2>"This order changed before your cancel reached it"</h2>
                        <p>{format!("{} is now {status} (saved {when}).", c.name)}</p>
                        {can_redo.then(|| view! {
                            <button class="primary" data-testid="redo-cancel" on:click=move |_| {
                                if let Some(theirs) = theirs.clone().and_then(Record::from_json) {
                                    conflict.set(None);
                                    cancel(records, toasts, conflict, theirs);
                                }
                            }>"Cancel the current version"</button>
                        })}
                        <button class="link-button dark" on:click=move |_| conflict.set(None)>"Dismiss"</button>
                    </section>
                }
            })}
            <section class="card">
                <h2>"Lab and imaging orders"</h2>
                <table class="order-table windowed" data-testid="order-list">
                    <thead><tr><th scope="col">"Order"</th><th scope="col">"Priority"</th><th scope="col">"Ordered"</th><th scope="col">"By"</th><th scope="col">"Status"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                    {window::windowed_body(orders, 6, move |OrderLine(o)| view! { <OrderRow order=o may_order conflict/> })}
                </table>
            </section>
            <section class="card">
                <h2>"Prescriptions"</h2>
                <table class="order-table" data-testid="prescription-list">
                    <thead><tr><th scope="col">"Medicine"</th><th scope="col">"Directions"</th><th scope="col">"Ordered"</th><th scope="col">"Status"</th><th scope="col">"Pharmacy"</th></tr></thead>
                    <tbody>
                        <For
                            each=prescriptions
                            key=|(m, stage)| (m.id.clone(), m.version, stage.clone())
                            children=|(m, stage)| view! {
                                <tr data-testid="prescription" data-order-id=m.id.clone() class:pending=m.is_pending()>
                                    <th scope="row">{clinical::concept_text(m.json.get("medicationCodeableConcept"))}</th>
                                    <td>{m.str_at("/dosageInstruction/0/text").unwrap_or("").to_owned()}</td>
                                    <td class="muted">{clinical::short_time(m.str_at("/authoredOn").unwrap_or_default())}</td>
                                    <td><span class=format!("pill {}", status_class(m.str_at("/status")))>{if m.is_pending() { "sending…".to_owned() } else { m.str_at("/status").unwrap_or("").to_owned() }}</span></td>
                                    <td data-testid="pharmacy-stage">{if m.is_pending() { String::new() } else { stage }}</td>
                                </tr>
                            }
                        />
                    </tbody>
                </table>
            </section>
        </div>
    }
    .into_any()
}

fn status_rank(status: Option<&str>) -> u8 {
    match status {
        Some("active" | "draft" | "on-hold") => 0,
        Some("completed") => 1,
        _ => 2,
    }
}

fn status_class(status: Option<&str>) -> &'static str {
    match status {
        Some("active") => "info",
        Some("completed") => "ok",
        Some("revoked" | "stopped" | "cancelled" | "entered-in-error") => "muted-pill",
        _ => "",
    }
}

/// Shows `resource` at once as pending, writes it, and settles it either way.
fn optimistic(
    records: RwSignal<Records>,
    toasts: Toasts,
    resource: Value,
    tag: String,
    resource_type: &'static str,
    name: &'static str,
) {
    let pending_id = format!("pending-{tag}");
    let mut pending = resource.clone();
    pending["id"] = Value::from(pending_id.clone());
    records.try_update(|r| {
        r.upsert(pending);
    });
    leptos::task::spawn_local(async move {
        match write::create(&resource).await {
            Ok(stored) => keep(records, stored),
            Err(error) => {
                records.try_update(|r| {
                    r.discard_pending(resource_type, &pending_id);
                });
                toasts.show(
                    false,
                    format!("{name} was not ordered: {}", error.message()),
                );
            }
        }
    });
}

/// Revokes `order` as shown; a newer version shows the conflict.
fn cancel(
    records: RwSignal<Records>,
    toasts: Toasts,
    conflict: RwSignal<Option<OrderConflict>>,
    order: Record,
) {
    let name = clinical::concept_text(order.json.get("code"));
    let next = clinical::with_status(&order.json, "revoked");
    leptos::task::spawn_local(async move {
        match write::update(&next, order.version).await {
            Ok(stored) => keep(records, stored),
            Err(write::WriteError::Conflict { current }) => {
                if let Some(current) = &current {
                    keep(records, current.clone());
                }
                conflict.set(Some(OrderConflict {
                    name,
                    theirs: current,
                }));
            }
            Err(error) => toasts.show(
                false,
                format!("{name} was not cancelled: {}", error.message()),
            ),
        }
    });
}

#[component]
fn OrderRow(
    order: Record,
    may_order: bool,
    conflict: RwSignal<Option<OrderConflict>>,
) -> impl IntoView {
    let ctx = expect_context::<ChartCtx>();
    let toasts = expect_context::<Toasts>();
    let records = ctx.records;
    let name = clinical::concept_text(order.json.get("code"));
    let status = order.str_at("/status").unwrap_or("").to_owned();
    let pending = order.is_pending();
    let cancellable = may_order && !pending && status == "active";
    let label = format!("Cancel {name}");
    let for_cancel = order.clone();
    view! {
        <tr class="line-row" data-testid="order" data-order-id=order.id.clone() class:pending=pending>
            <th scope="row">{name.clone()}</th>
            <td>{order.str_at("/priority").unwrap_or("routine").to_owned()}</td>
            <td class="muted">{clinical::short_time(order.str_at("/authoredOn").unwrap_or_default())}</td>
            <td class="muted">{order.str_at("/requester/display").unwrap_or("").to_owned()}</td>
            <td><span class=format!("pill {}", status_class(Some(&status))) data-testid="order-status">
                {if pending { "sending…".to_owned() } else { status.clone() }}
            </span></td>
            <td>
                {cancellable.then(|| view! {
                    <button class="small" data-testid="cancel-order" aria-label=label
                        on:click=move |_| cancel(records, toasts, conflict, for_cancel.clone())>
                        "Cancel"
                    </button>
                })}
            </td>
        </tr>
    }
    .into_any()
}
