//! One test per numbered case of sections 1 to 9 of the security specification
//! (`docs/security.md`), each run through a real axum `Router` and asserting the
//! exact outcome: status, `WWW-Authenticate` challenge and the body's reason code.
//!
//! Test names start with the case number (`case_040_…`); the module is the spec section.

// The harness helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

/// Section 1: credential extraction.
mod credentials;

/// Section 2: compact serialization.
mod compact;

/// Section 3: the JOSE header.
mod header;

/// Section 4: JWKS key admission.
mod admission;

/// Section 5: signature verification edge cases.
mod signature;

/// Section 6: claims.
mod claims;

/// Section 7: ID-token and other-JWT confusion.
mod confusion;

/// Section 8: scope authorization.
mod scopes;

/// Sections 6 and 8 again, through a warm verified-token cache.
mod cache;

/// Section 9: error-response and logging hygiene.
mod hygiene;

/// Section 12: the macro and axum integration.
mod integration;
