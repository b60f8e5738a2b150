//! The baseline for the load benchmark: the extractor a developer writes by hand with
//! `jsonwebtoken::decode`, serving the same `GET /api/me` and `GET /health` as the
//! example service. It fetches the issuer's JWKS once at startup.
//!
//! Environment: `ISSUER` (the development issuer's URL), `AUDIENCE`, `BIND`.
//! It checks less than scopegate does (no `typ`, `iat`, `jti`, `client_id`, duplicate or
//! size checks): it is a speed baseline, not an example to follow.

use std::{collections::HashMap, process::ExitCode, sync::Arc};

use axum::{
    Json, Router,
    extract::{FromRef, FromRequestParts},
    http::{StatusCode, header::AUTHORIZATION, request::Parts},
    routing::get,
};
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use serde::{Deserialize, Serialize};

#[derive(Clone)]
struct Keys {
    by_kid: Arc<HashMap<String, DecodingKey>>,
    issuer: Arc<str>,
    audience: Arc<str>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: String,
}

/// The hand-written extractor: header → kid → key → `jsonwebtoken::decode`.
struct Verified(Claims);

impl<S: Send + Sync> FromRequestParts<S> for Verified
where
    Keys: FromRef<S>,
{
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, StatusCode> {
        let keys = Keys::from_ref(state);
        let value = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(StatusCode::UNAUTHORIZED)?;
        let token = value.strip_prefix("Bearer ").ok_or(StatusCode::UNAUTHORIZED)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| StatusCode::UNAUTHORIZED)?;
        let key = header.kid.as_ref().and_then(|kid| keys.by_kid.get(kid)).ok_or(StatusCode::UNAUTHORIZED)?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&*keys.audience]);
        validation.set_issuer(&[&*keys.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|_| StatusCode::UNAUTHORIZED)?;
        Ok(Self(data.claims))
    }
}

async fn me(Verified(claims): Verified) -> Json<Claims> {
    Json(claims)
}

async fn health() -> &'static str {
    "ok"
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("naive-api: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let issuer = env("ISSUER")?;
    let audience = env("AUDIENCE").unwrap_or_else(|_| "https://api.example.test".to_owned());
    let bind = env("BIND").unwrap_or_else(|_| "127.0.0.1:3100".to_owned());
    let jwks: JwkSet = reqwest::get(format!("{issuer}/jwks"))
        .await
        .map_err(|e| format!("fetching the JWKS: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("reading the JWKS: {e}"))
        .and_then(|body| serde_json::from_slice(&body).map_err(|e| format!("parsing the JWKS: {e}")))?;
    let mut by_kid = HashMap::new();
    for jwk in &jwks.keys {
        if let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) {
            by_kid.insert(kid.clone(), key);
        }
    }
    let keys = Keys { by_kid: Arc::new(by_kid), issuer: issuer.into(), audience: audience.into() };
    let app = Router::new().route("/health", get(health)).route("/api/me", get(me)).with_state(keys);
    let listener = tokio::net::TcpListener::bind(&bind).await.map_err(|e| format!("BIND {bind}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("listening on http://{address}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
