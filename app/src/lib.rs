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
pub mod catalogue;
pub mod clinical;
pub mod events;
pub mod fhir;
pub mod realtime;
pub mod records;
pub mod session;
pub mod ui;
pub mod wire;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, Link, MetaTags, Title};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path, SsrMode,
};

use api::SignIn;

/// The HTML document the server renders around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                // The build's hashed names (cargo-leptos `hash-files`), so that every asset can
                // be cached for ever and a new build is fetched at once.
                <HashedStylesheet options=options.clone() id="leptos"/>
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
    // Before the router sets its own (the first hook set wins): server functions' redirects are
    // full navigations, so leaving for the sign-in page leaves nothing of the session behind.
    #[cfg(feature = "hydrate")]
    let _ = leptos::server_fn::redirect::set_redirect_hook(session::redirect);
    // Tests and the debug view wait for this instead of guessing when hydration is done.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg"/>
        <Title text="Rounds"/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/login") view=LoginPage/>
                // Async: the server renders each page with its data (one round trip, no spinner),
                // then hydration takes over.
                <ParentRoute path=path!("") view=ui::AppShell ssr=SsrMode::Async>
                    <Route path=path!("") view=ui::worklist::WorklistPage ssr=SsrMode::Async/>
                    <Route path=path!("patient/:id") view=ui::chart::ChartPage ssr=SsrMode::Async/>
                    <Route path=path!("pharmacy") view=ui::pharmacy::PharmacyPage ssr=SsrMode::Async/>
                </ParentRoute>
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

use ui::error_text;

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

/// "84 F": age in years and sex, as the worklist and the banner show them.
pub fn age_sex(birth_date: Option<&str>, gender: Option<&str>) -> String {
    match (birth_date, gender) {
        (Some(born), gender) => format!(
            "{} {}",
            age_in_years(born)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            gender.map(sex_letter).unwrap_or("")
        )
        .trim()
        .to_owned(),
        (None, Some(gender)) => sex_letter(gender).to_owned(),
        (None, None) => String::new(),
    }
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
