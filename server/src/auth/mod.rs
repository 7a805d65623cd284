//! Sign-in: passwords, sessions, tokens and the `AuthUser` extractor.
//!
//! A login creates a session (a shift: 12 hours) and answers with a short-lived JWT access token
//! (15 minutes unless `--access-token-secs` says otherwise) and an opaque refresh token that
//! rotates on every use; browsers get both as HttpOnly cookies, API clients send the access token
//! as `Authorization: Bearer`. A refresh token presented twice (outside a short grace for tabs
//! racing each other) revokes the whole session. Cookie-authenticated state-changing requests
//! must come from our own origin (CSRF).
//! This module authenticates; what a user may see is decided in `access`, never here.
//!
//! From the bottom up: `identity` (who is signed in; imports nothing from the crate), `tokens`,
//! `cookies`, `address`, `throttle` and `password` (each for one concern), `signin` and
//! `authenticate` (the logic, on [`Auth`]: it takes exactly what it needs, never the application
//! state), then the handlers, which alone take the state: `extract` (the `AuthUser` extractor)
//! and `routes`. Lower files import their siblings by their deep paths, never through this file,
//! which only re-exports: so what needs an `AuthUser` can import `auth::identity` without
//! depending on the handlers.

mod address;
mod authenticate;
pub mod cookies;
mod extract;
pub mod identity;
pub mod password;
mod routes;
pub mod signin;
mod throttle;
pub mod tokens;

pub use cookies::{cleared_cookies, cookie, ACCESS_COOKIE, REFRESH_COOKIE};
pub use identity::{AuthUser, Purpose, Role, UserInfo};
pub use routes::{oauth_token, resolve_client, routes};
pub use signin::{Auth, IssuedSession, SESSION_TTL};
pub use tokens::{AuthKeys, Claims, WS_TOKEN_TTL};
