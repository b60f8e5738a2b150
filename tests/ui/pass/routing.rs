//! scopegate's routing functions accept every protected handler: guarded (with other
//! extractors and a substate), taking `AccessToken` or `UserInfo` first, and `public(…)`
//! handlers and closures; several methods of one path chain with `.merge(…)`.
use axum::{
    Router,
    extract::{FromRef, Path, State},
};
use scopegate::{
    AccessToken, Authority, UserInfo, requires_scope,
    routing::{delete, get, patch, post, public, put},
};

#[derive(Clone)]
struct Db;

#[derive(Clone, FromRef)]
struct AppState {
    authority: Authority,
    db: Db,
}

#[requires_scope("read:appointments")]
async fn list(State(_db): State<Db>, token: AccessToken) -> String {
    token.subject().to_owned()
}

#[requires_scope("write:appointments")]
async fn create(body: String) -> String {
    body
}

#[requires_scope(any("admin", "write:appointments"))]
async fn update(Path(id): Path<u32>, body: String) -> String {
    format!("{id} {body}")
}

#[requires_scope("delete:appointments")]
async fn remove() {}

async fn me(token: AccessToken, State(_db): State<Db>) -> String {
    token.subject().to_owned()
}

async fn profile(user: UserInfo) -> String {
    user.subject().to_owned()
}

async fn health() -> &'static str {
    "ok"
}

fn app(state: AppState) -> Router {
    Router::new()
        .route("/appointments", get(list).merge(post(create)))
        .route("/appointments/{id}", put(update).merge(patch(update)).merge(delete(remove)))
        .route("/me", get(me))
        .route("/profile", get(profile))
        .route("/health", get(public(health)))
        .route("/version", get(public(|| async { "1" })))
        .with_state(state)
}

fn main() {
    let _ = app;
}
