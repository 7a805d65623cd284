//! Rounds: the Leptos UI and everything the server and the browser share.
//!
//! `fhir` (typed views of the resources we read), `events` (the event catalogue and its
//! classifier), `auth` (who the user is) and `api` (server functions) are shared; the components
//! below render on the server first and hydrate in the browser. Browser-only code sits behind the
//! `hydrate` feature, server-only code behind `ssr`.

// Leptos' statically typed views nest deeply; sections erase their types, this is the margin.
#![recursion_limit = "256"]

pub mod api;
pub mod auth;
pub mod events;
pub mod fhir;
pub mod realtime;
pub mod wire;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path,
};

use api::{load_workspace, PatientSummary, SignIn, SignOut, Workspace};

/// The HTML document the server renders around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Tests and the debug view wait for this instead of guessing when hydration is done.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/rounds.css"/>
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg"/>
        <Title text="Rounds"/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/") view=WorkspacePage/>
                <Route path=path!("/login") view=LoginPage/>
            </Routes>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <main class="centered">
            <h1>"Not found"</h1>
            <p><a href="/">"Back to the worklist"</a></p>
        </main>
    }
}

/// The message of a server function error, without the framework's prefix.
fn error_text(error: &ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(message) => message.clone(),
        other => other.to_string(),
    }
}

#[component]
fn LoginPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let error = move || {
        action
            .value()
            .get()
            .and_then(|result| result.err())
            .map(|e| error_text(&e))
    };
    view! {
        <Title text="Sign in · Rounds"/>
        <main class="login" data-testid="login-page">
            <section class="login-card" aria-labelledby="login-title">
                <h1 id="login-title" class="brand">"Rounds"</h1>
                <p class="muted">"Sign in to your clinical workspace"</p>
                <ActionForm action=action attr:class="login-form" attr:data-testid="login-form">
                    <label for="username">"Username"</label>
                    <input id="username" type="text" name="username" autocomplete="username" required/>
                    <label for="password">"Password"</label>
                    <input
                        id="password"
                        type="password"
                        name="password"
                        autocomplete="current-password"
                        required
                    />
                    <button type="submit" class="primary" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
                <Show when=move || error().is_some()>
                    <p class="error" role="alert" data-testid="login-error">
                        {error}
                    </p>
                </Show>
            </section>
        </main>
    }
}

#[component]
fn WorkspacePage() -> impl IntoView {
    let workspace = Resource::new(|| (), |_| load_workspace());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading your workspace…"</p> }>
            {move || Suspend::new(async move {
                match workspace.await {
                    Ok(workspace) => view! { <Shell workspace/> }.into_any(),
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

/// Header, sidebar (units) and the worklist.
#[component]
fn Shell(workspace: Workspace) -> impl IntoView {
    let Workspace {
        user,
        patients,
        census,
    } = workspace;
    let (sidebar_open, set_sidebar_open) = signal(true);
    let (unit, set_unit) = signal(None::<String>);
    let sign_out = ServerAction::<SignOut>::new();
    let total = patients.len();
    let patients = StoredValue::new(patients);
    let shown = move || {
        patients.with_value(|all| {
            all.iter()
                .filter(|p| unit.with(|u| u.is_none() || u.as_deref() == p.unit_id.as_deref()))
                .cloned()
                .collect::<Vec<PatientSummary>>()
        })
    };
    let census_items = census.clone();
    // Live updates start once the page is hydrated (effects do not run on the server).
    let realtime = realtime::Realtime::new();
    let watched: Vec<String> =
        patients.with_value(|all| all.iter().map(|p| p.id.clone()).collect());
    Effect::new(move |started: Option<bool>| {
        if started.is_none() {
            #[cfg(feature = "hydrate")]
            realtime::start(realtime, watched.clone());
            #[cfg(not(feature = "hydrate"))]
            let _ = &watched;
        }
        true
    });
    #[cfg(feature = "hydrate")]
    on_cleanup(realtime::stop);
    provide_context(realtime);
    view! {
        <div class="app-shell" data-testid="app-shell">
            {view! {
            <header class="topbar">
                <button
                    class="icon-button"
                    data-testid="sidebar-toggle"
                    aria-controls="sidebar"
                    aria-expanded=move || sidebar_open.get().to_string()
                    aria-label="Show or hide the unit list"
                    on:click=move |_| set_sidebar_open.update(|open| *open = !*open)
                >
                    "☰"
                </button>
                <span class="brand">"Rounds"</span>
                <span
                    class=move || realtime.state.get().class()
                    data-testid="connection-status"
                    title="Live updates arrive with the realtime hub"
                >
                    {move || realtime.state.get().label()}
                </span>
                <span class="user" data-testid="current-user">
                    {user.name.clone()}
                    <span class="role">{user.role.label()}</span>
                </span>
                <ActionForm action=sign_out attr:class="inline">
                    <button type="submit" class="link-button" data-testid="sign-out">
                        "Sign out"
                    </button>
                </ActionForm>
            </header>
            }.into_any()}
            <div class="body">
                {view! {
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
                }.into_any()}
                {view! {
                <main class="content">
                    <h1>
                        {move || match unit.get() {
                            Some(id) => census
                                .iter()
                                .find(|c| c.id == id)
                                .map(|c| c.name.clone())
                                .unwrap_or(id),
                            None => "My patients".to_owned(),
                        }}
                    </h1>
                    <p class="muted" data-testid="worklist-count">
                        {move || format!("{} of {} patients", shown().len(), total)}
                    </p>
                    <table class="worklist" data-testid="worklist">
                        <thead>
                            <tr>
                                <th scope="col">"Patient"</th>
                                <th scope="col">"MRN"</th>
                                <th scope="col">"Age / sex"</th>
                                <th scope="col">"Unit"</th>
                                <th scope="col">"Bed"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For each=shown key=|p| p.id.clone() children=|p| view! { <PatientRow patient=p/> }/>
                        </tbody>
                    </table>
                </main>
                }.into_any()}
            </div>
        </div>
    }
}

#[component]
fn PatientRow(patient: PatientSummary) -> impl IntoView {
    let age_sex = match (&patient.birth_date, &patient.gender) {
        (Some(born), gender) => format!(
            "{} {}",
            age_in_years(born)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            gender.as_deref().map(sex_letter).unwrap_or("")
        ),
        (None, Some(gender)) => sex_letter(gender).to_owned(),
        (None, None) => String::new(),
    };
    let updates = use_context::<realtime::Realtime>().map(|realtime| {
        let id = patient.id.clone();
        move || {
            realtime
                .per_patient
                .with(|counts| counts.get(&id).copied().unwrap_or(0))
        }
    });
    let badge = move || {
        let count = updates.as_ref().map(|count| count()).unwrap_or(0);
        (count > 0).then(|| {
            view! {
                <span class="badge" data-testid="live-badge" title="Changes since you opened the page">
                    {format!("{count} new")}
                </span>
            }
        })
    };
    view! {
        <tr data-testid="patient-row" data-patient-id=patient.id.clone()>
            <td class="name">{patient.name}{badge}</td>
            <td>{patient.mrn.unwrap_or_default()}</td>
            <td>{age_sex}</td>
            <td>{patient.unit_name.unwrap_or_default()}</td>
            <td>{patient.bed.unwrap_or_default()}</td>
        </tr>
    }
    .into_any()
}

fn sex_letter(gender: &str) -> &'static str {
    match gender {
        "female" => "F",
        "male" => "M",
        "other" => "X",
        _ => "U",
    }
}

/// Age from a FHIR birthDate, against today's date (the same on server and browser within a day;
/// the worklist is re-rendered from server data on hydration, so a midnight edge cannot mismatch
/// for longer than the page's life).
fn age_in_years(birth_date: &str) -> Option<u32> {
    let mut parts = birth_date.split('-').map(|p| p.parse::<i32>().ok());
    let (year, month, day) = (
        parts.next()??,
        parts.next().flatten().unwrap_or(1),
        parts.next().flatten().unwrap_or(1),
    );
    let (today_y, today_m, today_d) = today();
    let mut age = today_y - year;
    if (today_m, today_d) < (month, day) {
        age -= 1;
    }
    u32::try_from(age).ok()
}

#[cfg(feature = "hydrate")]
fn today() -> (i32, i32, i32) {
    let now = js_sys::Date::new_0();
    (
        now.get_utc_full_year() as i32,
        now.get_utc_month() as i32 + 1,
        now.get_utc_date() as i32,
    )
}

#[cfg(not(feature = "hydrate"))]
fn today() -> (i32, i32, i32) {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm), so no clock crate is
    // needed in this shared crate.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month as i32, day as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_whole_years_and_garbage_is_none() {
        let (year, _, _) = today();
        assert_eq!(age_in_years(&format!("{}-01-01", year - 40)), Some(40));
        assert_eq!(age_in_years("not a date"), None);
        assert_eq!(age_in_years(&format!("{}-01-01", year + 5)), None);
    }
}
