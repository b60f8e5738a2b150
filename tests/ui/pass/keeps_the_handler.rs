//! The handler is kept as written: docs, attributes, generics, where-clause, return type,
//! body (with its inner attributes), and `r#` names.
#![deny(warnings)]

use axum::{
    Router,
    extract::{FromRef, State},
    response::IntoResponse,
    routing::get,
};
use scopegate::{Authority, requires_scope};

#[derive(Clone)]
struct AppState {
    authority: Authority,
    greeting: &'static str,
}

impl FromRef<AppState> for Authority {
    fn from_ref(state: &AppState) -> Self {
        state.authority.clone()
    }
}

/// Greets, generically over the state.
#[requires_scope("read:greetings")]
#[allow(clippy::unused_async)]
#[doc(alias = "hello")]
async fn r#greet<S>(State(state): State<S>) -> impl IntoResponse
where
    S: Clone + Send + Sync + 'static,
    &'static str: From<S>,
{
    #![allow(clippy::let_and_return)]
    let greeting: &'static str = state.into();
    greeting
}

impl From<AppState> for &'static str {
    fn from(state: AppState) -> Self {
        state.greeting
    }
}

/// Removed by `cfg` with its requirement type: nothing of it is left to be unused.
#[requires_scope("never")]
#[cfg(any())]
async fn never() {}

fn app(state: AppState) -> Router {
    Router::new().route("/", get(r#greet::<AppState>)).with_state(state)
}

fn main() {
    let _ = app;
}
