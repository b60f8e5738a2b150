//! Under scopegate's router only a *first* `AccessToken` (or `UserInfo`) argument counts
//! as protection: one in another position does not compile, and the note says to move it
//! first (see `scopegate::routing`'s docs for why another position cannot count).
use axum::{Router, extract::Path};
use scopegate::{AccessToken, Authority, routing::get};

async fn show(Path(id): Path<u32>, token: AccessToken) -> String {
    format!("{id} for {}", token.subject())
}

fn main() {
    let _app = |authority: Authority| -> Router { Router::new().route("/items/{id}", get(show)).with_state(authority) };
}
