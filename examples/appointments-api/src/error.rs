//! The API's error responses: `{"error": "<code>", "message": "<what to fix>"}`, and the
//! body and path extractors that answer with them instead of axum's plain-text errors.
//!
//! Authentication and scope failures are not here: scopegate's `Rejection` answers them
//! (401/403 with the RFC 6750 `WWW-Authenticate` challenge) before a handler runs.

use axum::{
    Json,
    extract::{
        FromRequest, FromRequestParts,
        rejection::{JsonRejection, PathRejection},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::store::StoreError;

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// 422: the request is well-formed but a field's value is not acceptable.
    pub(crate) fn invalid_field(message: impl Into<String>) -> Self {
        Self { status: StatusCode::UNPROCESSABLE_ENTITY, code: "invalid_field", message: message.into() }
    }

    /// 404: nothing here, or nothing the caller may see (the two are indistinguishable on
    /// purpose: someone else's appointment does not exist for you).
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, code: "not_found", message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.code, "message": self.message }))).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let code = match rejection {
            // Valid JSON of the wrong shape: a missing, unknown or mistyped field (422).
            JsonRejection::JsonDataError(_) => "invalid_body",
            // Not JSON at all (400).
            JsonRejection::JsonSyntaxError(_) => "malformed_json",
            // No `Content-Type: application/json` (415).
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            // Larger than the router's `DefaultBodyLimit` (413).
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            // The body could not be read (400).
            _ => "invalid_body",
        };
        Self { status: rejection.status(), code, message: rejection.body_text() }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        // For example `/api/appointments/abc`: "Invalid URL: Cannot parse `abc` to a `i64`".
        Self { status: rejection.status(), code: "invalid_path", message: rejection.body_text() }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "request failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
            message: "the request could not be completed; try again later".to_owned(),
        }
    }
}

/// `axum::Json`, with bad bodies answered as [`ApiError`]s.
#[derive(Debug, FromRequest)]
#[from_request(via(Json), rejection(ApiError))]
pub(crate) struct ApiJson<T>(pub(crate) T);

/// `axum::extract::Path`, with bad path parameters answered as [`ApiError`]s.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct ApiPath<T>(pub(crate) T);
