//! `crate = "…"` for a renamed scopegate: the expansion names only `sg::…`.
extern crate scopegate as sg;

use axum::{Router, routing::get};
use sg::__private::Requirement;

#[sg::requires_scope("read:appointments", crate = "sg", aud = "https://api.example.test")]
async fn list() -> &'static str {
    "[]"
}

mod nested {
    // The renamed crate is in the extern prelude, so the path works in any module.
    #[sg::requires_scope("read:patients", crate = "sg")]
    pub(crate) async fn patients() -> &'static str {
        "[]"
    }
}

fn app(authority: sg::Authority) -> axum::Router {
    Router::new().route("/appointments", get(list)).route("/patients", get(nested::patients)).with_state(authority)
}

fn main() {
    let _ = app;
    assert_eq!(__scopegate_requirement_list::CHALLENGE, "read:appointments");
}
