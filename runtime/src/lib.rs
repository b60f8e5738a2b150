//! # scopegate
//!
//! Protect axum APIs with OAuth 2.0 access tokens: one compile-checked line per handler.
//!
//! ```ignore
//! use scopegate::{requires_scope, AccessToken};
//!
//! #[requires_scope("read:appointments", aud = "https://api.example.test")]
//! async fn list_appointments(token: AccessToken) -> Json<Vec<Appointment>> { /* ... */ }
//! ```
//!
//! An API must accept only *access tokens* meant for it (`aud` = the API's identifier,
//! `scope` = what the caller may do), verified against the issuer's keys, and never *ID
//! tokens* (`aud` = a client's id, meant for that client). scopegate accepts exactly
//! that: RFC 9068 access tokens whose signature, type, issuer, audience, times and
//! required claims all check out, and answers everything else with the RFC 6750 status
//! and `WWW-Authenticate` challenge.
//!
//! ## A tour
//! - [`Authority`]: the trusted issuer and the verification policy, built once with
//!   [`Authority::builder`]. Put it in your router state (with `FromRef`).
//! - [`requires_scope`]: the attribute that guards a handler with a scope requirement.
//!   The guard runs before every other extractor, so an unauthorized request never has
//!   its body read.
//! - [`AccessToken`]: the verified token (subject, client, scopes, claims); the extractor
//!   for "any valid access token". `Option<AccessToken>` for optional authentication.
//! - [`Rejection`]: the one error type, with the RFC 6750 response and a stable reason
//!   code.
//! - `testing` (feature): an in-memory issuer that mints access tokens and ID tokens for
//!   your own tests.
//!
//! ## Feature flags
//! | feature | default | what it adds |
//! |---|---|---|
//! | `testing` | no | [`testing::TestIssuer`], an in-memory issuer for tests. Never enable it in production. |
//!
//! The minimum supported Rust version is 1.88.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod algorithm;
mod authority;
mod claims;
mod credentials;
mod discovery;
mod extract;
mod http;
mod json;
mod jwks;
mod jws;
mod keys;
mod rejection;
mod scope;
mod source;
mod verify;

#[cfg(feature = "testing")]
pub mod testing;

pub use algorithm::Algorithm;
pub use authority::{
    Authority, AuthorityBuilder, ConfigError, DEFAULT_LEEWAY, DEFAULT_MAX_LIFETIME, DEFAULT_MAX_TOKEN_SIZE, MAX_LEEWAY,
    MAX_TOKEN_SIZE_LIMIT, Profile, ScopeClaim, Stats,
};
pub use extract::{AccessToken, AuthorityState};
pub use http::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_DOCUMENT_SIZE, DEFAULT_TOTAL_TIMEOUT, FetchError};
pub use jwks::{DEFAULT_MAX_STALE, DEFAULT_MAX_TTL, DEFAULT_MIN_TTL, DEFAULT_REFRESH_COOLDOWN, DEFAULT_TTL};
pub use keys::{KeyRejection, KeySetError};
pub use rejection::{Rejection, RejectionKind, RequestError, TokenError};
pub use scope::{ScopeExpr, Scopes};

#[doc(inline)]
pub use scopegate_macros::requires_scope;

/// Items the `#[requires_scope]` expansion uses. Not public API: no stability guarantee.
#[doc(hidden)]
pub mod __private {
    pub use crate::{
        extract::{Guard, Requirement},
        scope::ScopeExpr,
    };
}
