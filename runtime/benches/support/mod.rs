//! What the benchmark binaries share.

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

/// The token both benches verify: a typical access token (RFC 9068 claims, a handful of
/// scopes and one custom claim) signed with `alg`.
pub(crate) fn typical_token(issuer: &scopegate::testing::TestIssuer, alg: scopegate::Algorithm) -> String {
    issuer
        .access_token()
        .algorithm(alg)
        .scope("openid profile email read:appointments write:appointments offline_access")
        .claim("auth_time", 1_764_000_000)
        .claim("https://api.example.test/roles", serde_json::json!(["scheduler", "viewer"]))
        .sign()
}

/// Polls a future that completes without waiting (static keys never do I/O).
pub(crate) fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("verification with static keys never waits"),
    }
}
