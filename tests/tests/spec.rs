//! One test per numbered case of sections 1 to 9 of the security specification
//! (`shared/security-spec.md`), each run through a real axum `Router` and asserting the
//! exact outcome: status, `WWW-Authenticate` challenge and the body's reason code.
//!
//! Test names start with the case number (`case_040_…`); the module is the spec section.

// The harness helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "spec/harness.rs"]
mod harness;

/// Section 1: credential extraction.
#[path = "spec/credentials.rs"]
mod credentials;

/// Section 2: compact serialization.
#[path = "spec/compact.rs"]
mod compact;

/// Section 3: the JOSE header.
#[path = "spec/header.rs"]
mod header;

/// Section 4: JWKS key admission.
#[path = "spec/admission.rs"]
mod admission;

/// Section 5: signature verification edge cases.
#[path = "spec/signature.rs"]
mod signature;

/// Section 6: claims.
#[path = "spec/claims.rs"]
mod claims;

/// Section 7: ID-token and other-JWT confusion.
#[path = "spec/confusion.rs"]
mod confusion;

/// Section 8: scope authorization.
#[path = "spec/scopes.rs"]
mod scopes;

/// Sections 6 and 8 again, through a warm verified-token cache.
#[path = "spec/cache.rs"]
mod cache;

/// Section 9: error-response and logging hygiene.
#[path = "spec/hygiene.rs"]
mod hygiene;

/// Section 12: the macro and axum integration.
#[path = "spec/integration.rs"]
mod integration;
