//! The routes, each with its scope requirement in one line.
//!
//! `#[requires_scope(...)]` puts a guard in front of the handler's own arguments: the
//! token is verified and the requirement checked before anything else is extracted (an
//! unauthorized request never has its body read). The forms:
//!
//! - `#[requires_scope("read:appointments")]`: one scope;
//! - `#[requires_scope("a", "b")]`: all of them;
//! - `#[requires_scope(any("admin", all("a", "b")))]`: alternatives, nested freely;
//! - `#[requires_scope("a", aud = "https://other-api.example")]`: another audience than
//!   the configured one.
//!
//! A handler that needs a token but no particular scope takes [`AccessToken`] alone
//! (`Option<AccessToken>` for optional authentication). A handler with a guard can take
//! [`AccessToken`] too, to know who is calling: the token is verified once per request.

use std::time::Duration;

use axum::{
    Json, Router,
    body::Body,
    extract::{DefaultBodyLimit, FromRef, State},
    http::{Method, Request, Response, StatusCode, header},
    response::IntoResponse,
};
use scopegate::{
    AccessToken, Authority, Scopes, UserInfo,
    openapi::{
        OpenApiSecurity,
        utoipa::openapi::{Info, OpenApi, Paths},
    },
    policy::{Policy, ProtectedResource},
    requires_scope,
    routing::{delete, get, post, public},
};
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::{
    error::{ApiError, ApiJson, ApiPath},
    store::{Appointment, NewAppointment, Owner, Store},
};

/// The largest request body accepted (appointments are small).
const MAX_BODY_BYTES: usize = 16 * 1024;

/// What every handler can extract from: the verifier and the database.
///
/// `FromRef` lets handlers take `State<Store>`, and lets scopegate find its
/// [`Authority`] (a state without one fails to compile, with a message naming the fix).
#[derive(Debug, Clone, FromRef)]
pub(crate) struct AppState {
    pub(crate) authority: Authority,
    pub(crate) store: Store,
}

/// The route table: each route next to its handler, its requirement read from the
/// handler's attribute (`cargo run -p appointments-api -- --routes` prints it).
pub(crate) fn policy(audience: &str) -> Policy {
    Policy::new(audience)
        .public(Method::GET, "/health", health)
        .public(Method::GET, "/openapi.json", openapi_json)
        .route(Method::GET, "/api/appointments", list_appointments)
        .route(Method::POST, "/api/appointments", create_appointment)
        .route(Method::DELETE, "/api/appointments/{id}", delete_appointment)
        .authenticated(Method::GET, "/api/me", me)
        .authenticated(Method::GET, "/api/profile", profile)
}

/// Every scope the routes name, derived from their attributes: the development issuer
/// grants these, and the RFC 9728 metadata lists them.
pub(crate) fn api_scopes() -> Vec<&'static str> {
    policy("").scopes()
}

/// The application: routes, the RFC 9728 metadata, body limit, request logging.
///
/// The routing functions are scopegate's: a handler that is neither guarded, nor takes
/// `AccessToken`/`UserInfo` first, nor wrapped in `public(…)` does not compile.
pub(crate) fn router(state: AppState) -> Router {
    let audience = state.authority.audiences().next().unwrap_or_default().to_owned();
    let metadata = ProtectedResource::new(audience.clone(), state.authority.issuers())
        .scopes(policy(&audience).scopes())
        .resource_name("Appointments API");
    Router::new()
        .route("/health", get(public(health)))
        .route("/openapi.json", get(public(openapi_json)))
        .route("/api/appointments", get(list_appointments).merge(post(create_appointment)))
        .route("/api/appointments/{id}", delete(delete_appointment))
        .route("/api/me", get(me))
        .route("/api/profile", get(profile))
        .merge(metadata.router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            // Logs method, path, status and latency. Never headers (`Authorization` carries
            // the token) and never the query string (it may carry `access_token=`).
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<Body>| {
                    tracing::info_span!("request", method = %request.method(), path = request.uri().path())
                })
                .on_request(())
                .on_response(|response: &Response<Body>, latency: Duration, _span: &Span| {
                    tracing::info!(status = response.status().as_u16(), latency_us = latency.as_micros(), "response");
                })
                .on_failure(()),
        )
        .with_state(state)
}

/// Open: for load balancers and uptime checks.
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Open: the OpenAPI 3.1 document, each operation's `security` generated from its
/// handler's attribute (`any(…)` as alternatives), and an `openIdConnect` scheme naming
/// the issuer's discovery document.
async fn openapi_json(State(authority): State<Authority>) -> Json<OpenApi> {
    let audience = authority.audiences().next().unwrap_or_default().to_owned();
    let mut info = Info::new("Appointments API", env!("CARGO_PKG_VERSION"));
    info.description = Some("Appointments of the caller, protected by OAuth 2.0 access tokens.".to_owned());
    Json(
        policy(&audience)
            .openapi(OpenApi::new(info, Paths::new()), &OpenApiSecurity::openid_connect(authority.issuer())),
    )
}

/// The caller's appointments, soonest first.
#[requires_scope("read:appointments")]
async fn list_appointments(token: AccessToken, State(store): State<Store>) -> Result<Json<Vec<Appointment>>, ApiError> {
    Ok(Json(store.list(owner(&token)).await?))
}

/// The caller's appointments are those of the token's issuer and subject: a `sub` names a
/// user only within its issuer.
fn owner(token: &AccessToken) -> Owner<'_> {
    Owner { issuer: token.issuer(), subject: token.subject() }
}

/// The body of `POST /api/appointments`. Unknown fields are refused, so a typo
/// (`"startsAt"`) is an error instead of a silently missing value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAppointment {
    title: String,
    /// An RFC 3339 timestamp with an offset, such as `2030-01-31T09:30:00+01:00`.
    starts_at: String,
    #[serde(default)]
    notes: Option<String>,
}

impl CreateAppointment {
    const MAX_TITLE_CHARS: usize = 200;
    const MAX_NOTES_CHARS: usize = 2000;

    fn validate(self) -> Result<NewAppointment, ApiError> {
        let title = self.title.trim();
        let title_chars = title.chars().count();
        if title_chars == 0 || title_chars > Self::MAX_TITLE_CHARS {
            return Err(ApiError::invalid_field(format!(
                "title must be 1 to {} characters (not counting surrounding spaces)",
                Self::MAX_TITLE_CHARS
            )));
        }
        if title.chars().any(char::is_control) {
            return Err(ApiError::invalid_field("title must not contain control characters"));
        }
        let starts_at = OffsetDateTime::parse(self.starts_at.trim(), &Rfc3339).map_err(|_| {
            ApiError::invalid_field("starts_at must be an RFC 3339 timestamp, such as 2030-01-31T09:30:00Z")
        })?;
        if self.notes.as_ref().is_some_and(|notes| notes.chars().count() > Self::MAX_NOTES_CHARS) {
            return Err(ApiError::invalid_field(format!("notes must be at most {} characters", Self::MAX_NOTES_CHARS)));
        }
        Ok(NewAppointment { title: title.to_owned(), starts_at, notes: self.notes })
    }
}

/// Creates an appointment owned by the caller.
#[requires_scope("write:appointments")]
async fn create_appointment(
    token: AccessToken,
    State(store): State<Store>,
    ApiJson(body): ApiJson<CreateAppointment>,
) -> Result<(StatusCode, [(header::HeaderName, String); 1], Json<Appointment>), ApiError> {
    let new = body.validate()?;
    let created = store.create(owner(&token), new).await?;
    // RFC 9110 §15.3.2: a 201 names the created resource.
    let location = format!("/api/appointments/{}", created.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(created)))
}

/// Deletes one of the caller's appointments. An administrator, or a client holding both
/// the write and the delete scope, may call it; either way only the caller's own
/// appointments can be deleted. COPY: if `admin` should reach everyone's, check
/// `token.has_scope("admin")` here and use a store call without the owner filter.
#[requires_scope(any("admin", all("write:appointments", "delete:appointments")))]
async fn delete_appointment(
    token: AccessToken,
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    if store.delete(owner(&token), id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no appointment {id}")))
    }
}

/// Who is calling, as the verified token says.
#[derive(Debug, Serialize)]
struct Me<'a> {
    /// `sub`: the user, or for a client-credentials token the client itself.
    subject: &'a str,
    client_id: Option<&'a str>,
    scopes: &'a Scopes,
}

/// Any valid access token for this API: no scope required. The answer borrows from the
/// token, so it is serialized here, while the token lives.
async fn me(token: AccessToken) -> axum::response::Response {
    let me = Me { subject: token.subject(), client_id: token.client_id(), scopes: token.scopes() };
    Json(me).into_response()
}

/// Any valid access token for this API: the issuer's `/userinfo` answer for it (its `sub`
/// is the token's; asked on demand, cached per token for a minute).
async fn profile(user: UserInfo) -> Json<serde_json::Map<String, serde_json::Value>> {
    Json(user.raw_claims().clone())
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;

    fn body(title: &str, starts_at: &str) -> CreateAppointment {
        CreateAppointment { title: title.to_owned(), starts_at: starts_at.to_owned(), notes: None }
    }

    #[test]
    fn validation() {
        let ok = body("  Dentist ", "2030-01-31T09:30:00+01:00").validate().unwrap();
        assert_eq!(ok.title, "Dentist");
        assert!(body("x".repeat(200).as_str(), "2030-01-31T09:30:00Z").validate().is_ok());
        assert!(body("é".repeat(200).as_str(), "2030-01-31T09:30:00Z").validate().is_ok(), "characters, not bytes");
        for (title, starts_at) in [
            ("", "2030-01-31T09:30:00Z"),
            ("   ", "2030-01-31T09:30:00Z"),
            (&"x".repeat(201), "2030-01-31T09:30:00Z"),
            ("a\u{7}b", "2030-01-31T09:30:00Z"),
            ("ok", "2030-01-31"),
            ("ok", "2030-01-31 09:30:00"),
            ("ok", "2030-01-31T09:30:00"),
            ("ok", "tomorrow"),
        ] {
            let error = body(title, starts_at).validate().unwrap_err();
            assert_eq!(
                error.clone().into_response().status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{title:?} {starts_at}"
            );
        }
        let long_notes = CreateAppointment { notes: Some("n".repeat(2001)), ..body("ok", "2030-01-31T09:30:00Z") };
        assert!(long_notes.validate().is_err());
    }

    /// The route table and the router are written side by side: this holds them to each
    /// other. Over a real socket, every route of the table is served (never 404 or 405),
    /// without a token each protected one answers 401 and each public one does not, and
    /// every other method on a table's path is 405: the router serves nothing on those
    /// paths that the table does not list.
    #[tokio::test]
    async fn every_route_of_the_table_is_served_with_the_protection_the_table_lists() {
        const AUD: &str = "https://api.example.test";
        let issuer = scopegate::testing::TestIssuer::new();
        let state = AppState { authority: issuer.authority(AUD), store: crate::store::Store::open(None).unwrap() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });
        let client = reqwest::Client::new();
        let table = policy(AUD);
        for route in table.routes() {
            let path = route.path().replace("{id}", "1");
            let response = client.request(route.method().clone(), format!("{base}{path}")).send().await.unwrap();
            let status = response.status();
            match route.requirement() {
                scopegate::policy::Requirement::Public => {
                    assert!(status.is_success(), "{} {path}: {status}", route.method());
                }
                scopegate::policy::Requirement::Scopes(_) | scopegate::policy::Requirement::AnyToken => {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {path}", route.method());
                    assert!(response.headers().contains_key(header::WWW_AUTHENTICATE), "{} {path}", route.method());
                }
                other => panic!("{} {path} is {other:?} in the table", route.method()),
            }
            for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                if table.routes().iter().any(|r| r.path() == route.path() && *r.method() == method) {
                    continue;
                }
                let status = client.request(method.clone(), format!("{base}{path}")).send().await.unwrap().status();
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is served but not in the table");
            }
        }
        server.abort();
    }
}
