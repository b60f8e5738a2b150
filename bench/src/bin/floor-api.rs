//! The signature floor as a service, for `scripts/load-bench.sh`: `GET /api/me` checks
//! only the RS256 signature of the bearer token with one pre-parsed aws-lc-rs key, then
//! answers the same JSON as the example service (subject, client id, scopes), read from
//! the payload without any other check. `GET /health` as the example's. Nothing else.
//! It is the least a service can do with a JWT and still check its signature: the bar
//! scopegate's full verification is measured against, not an example to follow.
//!
//! Environment: `PUBLIC_KEY_PEM` (a file with the issuer's RSA public key), `BIND`.

use std::{process::ExitCode, sync::Arc};

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    routing::get,
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: String,
}

/// The example service's `/api/me` answer.
#[derive(Serialize)]
struct Me {
    subject: String,
    client_id: Option<String>,
    scopes: Vec<String>,
}

async fn me(State(key): State<Arc<ParsedPublicKey>>, headers: HeaderMap) -> Result<Json<Me>, StatusCode> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let (signed, signature) = token.rsplit_once('.').ok_or(StatusCode::UNAUTHORIZED)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| StatusCode::UNAUTHORIZED)?;
    key.verify_sig(signed.as_bytes(), &signature).map_err(|_| StatusCode::UNAUTHORIZED)?;
    let payload = signed.split_once('.').map(|(_, p)| p).ok_or(StatusCode::UNAUTHORIZED)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| StatusCode::UNAUTHORIZED)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| StatusCode::UNAUTHORIZED)?;
    Ok(Json(Me {
        subject: claims.sub,
        client_id: claims.client_id,
        scopes: claims.scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
    }))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("floor-api: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let pem_file = env("PUBLIC_KEY_PEM")?;
    let bind = env("BIND").unwrap_or_else(|_| "127.0.0.1:3200".to_owned());
    let pem = std::fs::read_to_string(&pem_file).map_err(|e| format!("{pem_file}: {e}"))?;
    let base64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(base64).map_err(|e| format!("{pem_file}: not PEM: {e}"))?;
    let key =
        ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der).map_err(|_| format!("{pem_file}: not an RSA key"))?;
    let app = Router::new().route("/health", get(health)).route("/api/me", get(me)).with_state(Arc::new(key));
    let listener = tokio::net::TcpListener::bind(&bind).await.map_err(|e| format!("BIND {bind}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("listening on http://{address}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
