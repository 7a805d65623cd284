//! The end of a session in the browser: refreshing an expired access token, signing out, and
//! leaving for the sign-in page.
//!
//! Leaving is a full navigation (`location.replace("/login")`), never a client-side route change:
//! it is the one way to be sure that no store, handler, timer or DOM node with patient data
//! outlives the session, and the next user starts with a fresh page. Every tab of the user
//! leaves together: the tab that signs out tells the others on the realtime channel
//! (`TabMessage::SigningOut`, then `SignedOut`), and a tab that missed that leaves on its first
//! 401 that a refresh cannot cure.

/// Where a signed-out tab goes.
pub const SIGN_IN_PATH: &str = "/login";

#[cfg(feature = "hydrate")]
mod browser {
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    use super::SIGN_IN_PATH;

    /// Rotates the access token with the refresh cookie: `Some(true)` refreshed, `Some(false)`
    /// the session is over (signed out, revoked, expired), `None` the network failed.
    pub async fn refresh() -> Option<bool> {
        let response = post("/auth/refresh").await?;
        match response.status() {
            _ if response.ok() => Some(true),
            401 | 403 => Some(false),
            // The server is there but failing (a database outage, say): try again later.
            _ => None,
        }
    }

    /// Ends the session on the server: true when it answered.
    pub async fn end() -> bool {
        post("/auth/logout").await.is_some()
    }

    async fn post(path: &str) -> Option<web_sys::Response> {
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_credentials(web_sys::RequestCredentials::SameOrigin);
        let request = leptos::prelude::window().fetch_with_str_and_init(path, &init);
        JsFuture::from(request).await.ok()?.dyn_into().ok()
    }

    /// Leaves the page for the sign-in page, dropping everything it held.
    pub fn leave() {
        let _ = leptos::prelude::window().location().replace(SIGN_IN_PATH);
    }

    /// Where the server functions' redirects go: full navigations, so that a sign-in lands on a
    /// page of its own and leaving for the sign-in page leaves nothing of the session behind. A
    /// redirect to the sign-in page means the server saw no valid access token: one that merely
    /// expired is renewed and the page loaded again; an ended session leaves. Set before the
    /// router sets its own.
    pub fn redirect(location: &str) {
        if location != SIGN_IN_PATH {
            if let Err(error) = leptos::prelude::window().location().assign(location) {
                web_sys::console::warn_2(&JsValue::from_str("redirect failed"), &error);
            }
            return;
        }
        leptos::task::spawn_local(async {
            if refresh().await == Some(true) {
                let _ = leptos::prelude::window().location().reload();
            } else {
                leave();
            }
        });
    }
}

#[cfg(feature = "hydrate")]
pub use browser::{end, leave, redirect, refresh};
