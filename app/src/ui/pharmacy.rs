//! The pharmacy queue: prescriptions to verify, verified ones to dispense, and today's dispenses.
//! Items move between the lists as any pharmacist acts, through the `pharmacy:queue` room.

use leptos::prelude::*;

use super::{
    error_text, keep, now_iso, on_updates_while_mounted, watch_while_mounted, write, Me, Toasts,
};
use crate::{
    api::{load_pharmacy, PharmacyQueue},
    clinical::{self, Stage},
    realtime::Interest,
    records::{Record, Records},
};

#[component]
pub fn PharmacyPage() -> impl IntoView {
    let queue = Resource::new(|| (), |_| load_pharmacy());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading the pharmacy queue…"</p> }>
            {move || Suspend::new(async move {
                match queue.await {
                    Ok(queue) => view! { <Queue queue/> }.into_any(),
                    Err(error) => view! {
                        <main class="content"><p class="error" role="alert" data-testid="pharmacy-error">{error_text(&error)}</p></main>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Queue(queue: PharmacyQueue) -> impl IntoView {
    let records = RwSignal::new(Records::from_resources(queue.resources));
    let today = queue.today;
    watch_while_mounted(
        "pharmacy",
        Interest {
            rooms: vec![crate::events::PHARMACY_QUEUE.into()],
            resource_types: ["MedicationRequest", "Task", "MedicationDispense"]
                .map(String::from)
                .to_vec(),
            ..Interest::default()
        },
        queue.seq,
    );
    on_updates_while_mounted(false, move |batch| {
        records.try_update(|store| {
            store.apply_all(batch.iter().filter(|u| {
                matches!(
                    u.resource_type.as_str(),
                    "MedicationRequest" | "Task" | "MedicationDispense"
                )
            }));
        });
    });
    let lists = Memo::new(move |_| {
        records.with(|r| {
            let mut to_verify = Vec::new();
            let mut to_dispense = Vec::new();
            let mut dispensed = Vec::new();
            for mr in r.of_type("MedicationRequest") {
                match clinical::stage(r, mr) {
                    Stage::ToVerify => to_verify.push((mr.clone(), String::new())),
                    Stage::ToDispense { verified_by } => {
                        to_dispense.push((mr.clone(), verified_by))
                    }
                    Stage::Dispensed { at } if clinical::day_of(&at) == today => {
                        dispensed.push((mr.clone(), at))
                    }
                    _ => {}
                }
            }
            let by_time = |list: &mut Vec<(Record, String)>| {
                list.sort_by_key(|(m, _)| m.str_at("/authoredOn").unwrap_or_default().to_owned())
            };
            by_time(&mut to_verify);
            by_time(&mut to_dispense);
            dispensed.sort_by_key(|(_, at)| std::cmp::Reverse(at.clone()));
            (to_verify, to_dispense, dispensed)
        })
    });
    view! {
        <main class="content pharmacy" id="main" data-testid="pharmacy">
            <h1>"Pharmacy queue"</h1>
            <div class="queue-grid">
                <QueueList title="To verify" testid="to-verify" items=Signal::derive(move || lists.get().0) action=Action::Verify records/>
                <QueueList title="To dispense" testid="to-dispense" items=Signal::derive(move || lists.get().1) action=Action::Dispense records/>
                <QueueList title="Dispensed today" testid="dispensed" items=Signal::derive(move || lists.get().2) action=Action::None records/>
            </div>
        </main>
    }
    .into_any()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Verify,
    Dispense,
    None,
}

#[component]
fn QueueList(
    title: &'static str,
    testid: &'static str,
    items: Signal<Vec<(Record, String)>>,
    action: Action,
    records: RwSignal<Records>,
) -> impl IntoView {
    let me = expect_context::<Me>();
    let toasts = expect_context::<Toasts>();
    let heading_id = format!("{testid}-heading");
    view! {
        <section class="card queue" aria-labelledby=heading_id.clone()>
            <h2 id=heading_id.clone()>{title}" "<span class="count">{move || items.with(Vec::len)}</span></h2>
            <ul class="plain" data-testid=testid>
                <For
                    each=move || items.get()
                    key=|(m, note)| (m.id.clone(), m.version, note.clone())
                    children=move |(mr, note)| {
                        let medicine = clinical::concept_text(mr.json.get("medicationCodeableConcept"));
                        let patient = clinical::patient_label(&mr.json);
                        let me = me.clone();
                        let for_action = mr.clone();
                        let label = match action {
                            Action::Verify => format!("Verify {medicine} for {patient}"),
                            Action::Dispense => format!("Dispense {medicine} for {patient}"),
                            Action::None => String::new(),
                        };
                        let act = move |_| {
                            let mr = for_action.clone();
                            let resource = match action {
                                Action::Verify => clinical::verification_task(&mr, me.practitioner.as_ref(), &now_iso()),
                                Action::Dispense => clinical::dispense(&mr, me.practitioner.as_ref(), &now_iso()),
                                Action::None => return,
                            };
                            leptos::task::spawn_local(async move {
                                match write::create(&resource).await {
                                    Ok(stored) => keep(records, stored),
                                    Err(error) => toasts.show(false, format!("Not recorded: {}", error.message())),
                                }
                            });
                        };
                        view! {
                            <li class="queue-item" data-testid="queue-item" data-order-id=mr.id.clone()>
                                <div>
                                    <strong>{medicine}</strong>
                                    <div class="muted">{patient}" · "{mr.str_at("/dosageInstruction/0/text").unwrap_or("").to_owned()}</div>
                                    <div class="muted small-text">
                                        {match action {
                                            Action::Verify => format!("Ordered {} by {}", clinical::short_time(mr.str_at("/authoredOn").unwrap_or_default()), mr.str_at("/requester/display").unwrap_or("?")),
                                            Action::Dispense => format!("Verified by {note}"),
                                            Action::None => format!("Handed over {}", clinical::short_time(&note)),
                                        }}
                                    </div>
                                </div>
                                {(action != Action::None).then(|| view! {
                                    <button class="small" data-testid=if action == Action::Verify { "verify" } else { "dispense" } aria-label=label on:click=act>
                                        {if action == Action::Verify { "Verify" } else { "Dispense" }}
                                    </button>
                                })}
                            </li>
                        }
                    }
                />
            </ul>
        </section>
    }
}
