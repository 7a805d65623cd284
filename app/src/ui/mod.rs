//! The signed-in screens: the shell every page shares (header, connection status, alert banner,
//! toasts) and the worklist, chart and pharmacy pages inside it.
//!
//! Each page loads a snapshot through a server function (so the first paint is server-rendered
//! with data), keeps it in a [`Records`] signal, and applies the realtime client's batches to it;
//! every list on screen is derived from those stores.

pub mod chart;
pub mod pharmacy;
pub mod window;
pub mod worklist;
pub mod write;

use std::rc::Rc;

use leptos::{prelude::*, server_fn::ServerFn};
use leptos_router::components::{Outlet, A};

use crate::{
    api::{load_session, PractitionerRef, Session, SignOut},
    auth::{Role, UserInfo},
    clinical,
    realtime::{self, Interest, Realtime},
    records::Records,
    wire,
};

/// Who is signed in, for every page under the shell.
#[derive(Clone)]
pub struct Me {
    pub user: UserInfo,
    pub practitioner: Option<PractitionerRef>,
}

impl Me {
    pub fn may_order(&self) -> bool {
        matches!(self.user.role, Role::Physician | Role::Admin)
    }

    pub fn may_write_notes(&self) -> bool {
        matches!(self.user.role, Role::Physician | Role::Nurse | Role::Admin)
    }
}

/// The alerts every page shows (critical results, active Flags, their acknowledgements).
#[derive(Clone, Copy)]
pub struct Alerts(pub RwSignal<Records>);

/// A message that appears in the corner and goes away.
#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    pub id: u64,
    pub critical: bool,
    pub text: String,
}

#[derive(Clone, Copy)]
pub struct Toasts(pub RwSignal<Vec<Toast>>);

impl Toasts {
    /// Shows a toast (nothing when the shell is gone: a write can finish after sign-out).
    pub fn show(&self, critical: bool, text: impl Into<String>) {
        let text = text.into();
        self.0.try_update(|list| {
            let id = list.iter().map(|t| t.id).max().unwrap_or(0) + 1;
            list.push(Toast { id, critical, text });
            let excess = list.len().saturating_sub(4);
            list.drain(..excess);
        });
    }

    pub fn dismiss(&self, id: u64) {
        self.0.try_update(|list| list.retain(|t| t.id != id));
    }
}

/// The current time as a FHIR instant (in the browser; writes are made only there).
pub fn now_iso() -> String {
    #[cfg(feature = "hydrate")]
    {
        String::from(js_sys::Date::new_0().to_iso_string())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        String::new()
    }
}

/// A fresh client request tag for an optimistic write.
pub fn new_tag() -> String {
    #[cfg(feature = "hydrate")]
    {
        format!(
            "{:x}-{:x}",
            js_sys::Date::now() as u64,
            (js_sys::Math::random() * 1e12) as u64
        )
    }
    #[cfg(not(feature = "hydrate"))]
    {
        String::new()
    }
}

/// Puts a resource the server answered with (a write's result, or the version a 412 found) into a
/// screen's store.
pub fn keep(records: RwSignal<Records>, resource: serde_json::Value) {
    records.try_update(|r| {
        r.upsert(resource);
    });
}

/// Registers `handler` for realtime batches while the calling component lives.
pub fn on_updates_while_mounted(alerts: bool, handler: impl Fn(&[wire::Update]) + 'static) {
    let id = realtime::on_updates(alerts, Rc::new(handler));
    on_cleanup(move || realtime::off(id));
}

/// Declares the component's realtime interest while it lives.
pub fn watch_while_mounted(id: &'static str, interest: Interest, after_seq: i64) {
    realtime::watch(id, interest, Some(after_seq));
    on_cleanup(move || realtime::unwatch(id));
}

/// The message of a server function error, without the framework's prefix.
pub fn error_text(error: &ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(message) => message.clone(),
        other => other.to_string(),
    }
}

/// Header, alert banner and toasts around the signed-in pages.
#[component]
pub fn AppShell() -> impl IntoView {
    let session = Resource::new(|| (), |_| load_session());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading your workspace…"</p> }>
            {move || Suspend::new(async move {
                match session.await {
                    Ok(session) => view! { <SignedIn session/> }.into_any(),
                    Err(error) => {
                        view! {
                            <main class="centered">
                                <p class="error" role="alert">{error_text(&error)}</p>
                                <p><a href="/login">"Sign in"</a></p>
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
fn SignedIn(session: Session) -> impl IntoView {
    let Session {
        user,
        practitioner,
        seq,
        alerts,
    } = session;
    let me = Me {
        user: user.clone(),
        practitioner,
    };
    let realtime = Realtime::new();
    let alert_store = Alerts(RwSignal::new(Records::from_resources(alerts)));
    let toasts = Toasts(RwSignal::new(Vec::new()));
    provide_context(realtime);
    provide_context(me.clone());
    provide_context(alert_store);
    provide_context(toasts);

    // Alerts reach every user who may see the patient through `facility:alerts`.
    if user.role != Role::Pharmacist {
        watch_while_mounted(
            "alerts",
            Interest {
                rooms: vec![crate::events::FACILITY_ALERTS.into()],
                resource_types: ["Observation", "DiagnosticReport", "Flag", "Task"]
                    .map(String::from)
                    .to_vec(),
                ..Interest::default()
            },
            seq,
        );
        on_updates_while_mounted(true, move |batch| {
            let mut arrived = Vec::new();
            alert_store.0.try_update(|store| {
                for update in batch {
                    if !alert_relevant(store, update) {
                        continue;
                    }
                    store.apply(update);
                    // The same version also arrives as RESULT_AVAILABLE (another seq, maybe in
                    // an earlier frame): the alert event itself raises the toast, once.
                    if update.event_type == "CRITICAL_VALUE_ALERT" {
                        arrived.push(format!(
                            "Critical value: {} {} — {}",
                            clinical::concept_text(update.resource.get("code")),
                            clinical::value_text(&update.resource),
                            clinical::patient_label(&update.resource)
                        ));
                    }
                }
            });
            for text in arrived {
                toasts.show(true, text);
            }
        });
    }
    // Live updates start once the page is hydrated (effects do not run on the server).
    {
        let user_id = user.id.clone();
        Effect::new(move |_| realtime::start(realtime, &user_id));
    }

    let is_pharmacy = matches!(user.role, Role::Pharmacist | Role::Admin);
    view! {
        <div class="app-shell" data-testid="app-shell">
            <header class="topbar">
                <A href="/" attr:class="brand">"Rounds"</A>
                <nav class="topnav" aria-label="Main">
                    <A href="/">"Patients"</A>
                    {is_pharmacy.then(|| view! { <A href="/pharmacy">"Pharmacy queue"</A> })}
                </nav>
                <span
                    class=move || realtime.state.get().class()
                    role="status"
                    title="Live updates arrive through the realtime hub"
                    data-state=move || realtime.state.get().machine()
                    data-role=move || match realtime.role.get() {
                        realtime::Role::Leader => "leader",
                        realtime::Role::Follower => "follower",
                        realtime::Role::Electing => "electing",
                    }
                >
                    <span data-testid="connection-status">
                        {move || realtime.state.get().label()}
                    </span>
                    <span class="connection-role" data-testid="connection-role">
                        {move || realtime::role_label(realtime.role.get(), realtime.transport.get())}
                    </span>
                </span>
                <span class="user" data-testid="current-user">
                    {user.name.clone()}
                    <span class="role">{user.role.label()}</span>
                </span>
                // Before hydration a plain post to the server function; after, every tab leaves.
                <form
                    method="post"
                    action=SignOut::url()
                    class="inline"
                    on:submit=move |event| {
                        event.prevent_default();
                        sign_out(toasts);
                    }
                >
                    <button type="submit" class="link-button" data-testid="sign-out">
                        "Sign out"
                    </button>
                </form>
            </header>
            <AlertBanner/>
            <Outlet/>
            <ToastList/>
            {cfg!(debug_assertions).then(|| view! { <RealtimeDebug/> })}
        </div>
    }
    .into_any()
}

/// Signs out in every tab: tells the tabs first (so none reconnects or refreshes into the ending
/// session), ends the session on the server, tells them it is over, and leaves for the sign-in
/// page, as they do.
fn sign_out(toasts: Toasts) {
    #[cfg(feature = "hydrate")]
    {
        realtime::signing_out();
        leptos::task::spawn_local(async move {
            if crate::session::end().await {
                realtime::signed_out();
                crate::session::leave();
            } else {
                realtime::sign_out_failed();
                toasts.show(false, "Not signed out: the server could not be reached.");
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = toasts;
}

/// Whether an update concerns the alert store: critical results (and later versions of ones
/// held), Flags, and acknowledgements.
fn alert_relevant(store: &Records, update: &wire::Update) -> bool {
    match update.resource_type.as_str() {
        "Flag" => true,
        "Task" => {
            crate::fhir::task_kind(&update.resource) == crate::fhir::TaskKind::Acknowledgement
        }
        "Observation" | "DiagnosticReport" => {
            crate::fhir::is_critical(&update.resource)
                || store
                    .get(&update.resource_type, &update.resource_id)
                    .is_some()
        }
        _ => false,
    }
}

/// Records an acknowledgement of `alert` (`Type/id`); shows what went wrong if it fails.
pub fn acknowledge(alert: String, patient_reference: String) {
    let me = expect_context::<Me>();
    let toasts = expect_context::<Toasts>();
    let alerts = expect_context::<Alerts>();
    leptos::task::spawn_local(async move {
        let task = clinical::acknowledgement_task(
            &alert,
            &patient_reference,
            me.practitioner.as_ref(),
            &now_iso(),
        );
        match write::create(&task).await {
            Ok(stored) => {
                alerts.0.try_update(|store| {
                    store.upsert(stored);
                });
            }
            Err(error) => toasts.show(false, format!("Not acknowledged: {}", error.message())),
        }
    });
}

/// The open alerts, on every page, with acknowledge.
#[component]
fn AlertBanner() -> impl IntoView {
    let Alerts(store) = expect_context::<Alerts>();
    let open = Memo::new(move |_| store.with(clinical::open_alerts));
    let (expanded, set_expanded) = signal(false);
    view! {
        <Show when=move || !open.with(Vec::is_empty)>
            <section class="alert-banner" data-testid="alert-banner" aria-label="Alerts">
                <button
                    class="alert-summary"
                    aria-expanded=move || expanded.get().to_string()
                    aria-controls="alert-list"
                    on:click=move |_| set_expanded.update(|e| *e = !*e)
                >
                    <span aria-hidden="true">"⚠ "</span>
                    {move || summary(&open.get())}
                    <span class="muted-inverse">{move || if expanded.get() { " — hide" } else { " — show" }}</span>
                </button>
                <ul id="alert-list" class="alert-list" class:collapsed=move || !expanded.get()>
                    <For
                        each=move || open.get()
                        key=|r| (r.resource_type.clone(), r.id.clone(), r.version)
                        children=move |record| {
                            let key = format!("{}/{}", record.resource_type, record.id);
                            let key_attr = key.clone();
                            let patient_ref = record
                                .json
                                .get("subject")
                                .and_then(|s| s.get("reference"))
                                .and_then(|r| r.as_str())
                                .unwrap_or_default()
                                .to_owned();
                            let chart_href = format!(
                                "/patient/{}?tab=results",
                                patient_ref.trim_start_matches("Patient/")
                            );
                            let what = if record.resource_type == "Flag" {
                                clinical::concept_text(record.json.get("code"))
                            } else {
                                format!(
                                    "{} {}",
                                    clinical::concept_text(record.json.get("code")),
                                    clinical::value_text(&record.json)
                                )
                            };
                            let label = format!("Acknowledge {what}");
                            view! {
                                <li class="alert-item" data-testid="alert-item" data-alert=key_attr>
                                    <span class="alert-kind">
                                        {if record.resource_type == "Flag" { "Alert" } else { "Critical" }}
                                    </span>
                                    <a href=chart_href>{clinical::patient_label(&record.json)}</a>
                                    <span class="alert-what">{what}</span>
                                    <span class="muted-inverse">{clinical::short_time(&clinical::alert_time(&record))}</span>
                                    <button
                                        class="small"
                                        data-testid="acknowledge"
                                        aria-label=label
                                        on:click=move |_| acknowledge(key.clone(), patient_ref.clone())
                                    >
                                        "Acknowledge"
                                    </button>
                                </li>
                            }
                        }
                    />
                </ul>
            </section>
        </Show>
    }
}

fn summary(open: &[crate::records::Record]) -> String {
    let critical = open.iter().filter(|r| r.resource_type != "Flag").count();
    let flags = open.len() - critical;
    let mut parts = Vec::new();
    if critical > 0 {
        parts.push(format!(
            "{critical} critical value{}",
            if critical == 1 { "" } else { "s" }
        ));
    }
    if flags > 0 {
        parts.push(format!(
            "{flags} alert{}",
            if flags == 1 { "" } else { "s" }
        ));
    }
    format!("{} to acknowledge", parts.join(", "))
}

#[component]
fn ToastList() -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    view! {
        <div class="toasts" aria-live="assertive">
            <For
                each=move || toasts.0.get()
                key=|t| t.id
                children=move |toast| {
                    let id = toast.id;
                    view! {
                        <div class="toast" class:critical=toast.critical role="alert" data-testid="toast">
                            <span>{toast.text}</span>
                            <button class="link-button" aria-label="Dismiss" on:click=move |_| toasts.dismiss(id)>
                                "×"
                            </button>
                        </div>
                    }
                }
            />
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_criticals_and_alerts() {
        let record = |t: &str| {
            crate::records::Record::from_json(serde_json::json!({"resourceType": t, "id": "x"}))
                .unwrap()
        };
        assert_eq!(
            summary(&[record("Observation"), record("Observation"), record("Flag")]),
            "2 critical values, 1 alert to acknowledge"
        );
        assert_eq!(summary(&[record("Flag")]), "1 alert to acknowledge");
    }
}

/// Development builds: the realtime client's state, subscriptions and last 100 messages (the same
/// as `window.__ROUNDS_DEBUG__`), refreshed every second while open.
#[component]
fn RealtimeDebug() -> impl IntoView {
    let open = RwSignal::new(false);
    let text = RwSignal::new(String::new());
    let refresh = move || {
        if open.get_untracked() {
            let snapshot = realtime::debug_snapshot();
            text.set(serde_json::to_string_pretty(&snapshot).unwrap_or_default());
        }
    };
    Effect::new(move |_| {
        if open.get() {
            refresh();
        }
    });
    #[cfg(feature = "hydrate")]
    if let Ok(handle) = set_interval_with_handle(refresh, std::time::Duration::from_secs(1)) {
        on_cleanup(move || handle.clear());
    }
    view! {
        <details
            class="realtime-debug"
            data-testid="realtime-debug"
            on:toggle=move |_| open.update(|o| *o = !*o)
        >
            <summary>"Realtime debug"</summary>
            <pre>{move || text.get()}</pre>
        </details>
    }
}
