//! The Documentation tab: notes written, edited and signed over the version shown, and the panel
//! that shows a conflict when someone saved first.

use leptos::prelude::*;
use serde_json::Value;

use super::context::ChartCtx;
use crate::{
    clinical,
    records::Record,
    ui::{keep, new_tag, now_iso, write, Me, Toasts},
};

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
pub(super) fn DocumentationTab() -> impl IntoView {
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
        let tag = new_tag();
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
