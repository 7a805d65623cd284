//! The browser entry point: hydrate the server-rendered page. Nothing else lives here.

// Leptos' statically typed views nest deeply; the app erases types at section boundaries, this
// is the margin on top.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
