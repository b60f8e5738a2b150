//! On an error the handler is still emitted, unchanged: the only error is the bad scope,
//! not "cannot find function `list`" where it is used.
use axum::{Router, routing::get};
use scopegate::requires_scope;

#[requires_scope("read appointments")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _app: Router = Router::new().route("/", get(list));
}
