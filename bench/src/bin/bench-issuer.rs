//! A minimal issuer for `scripts/load-bench.sh`: serves a discovery document and a JWK set
//! (the keys of scopegate's test issuer) on 127.0.0.1, after writing COUNT distinct RS256
//! access tokens (one subject each, scope `read:appointments`, valid for two hours) one
//! per line, and the RSA public key as PEM (for `floor-api`).
//!
//! Usage: `bench-issuer COUNT TOKENS_FILE PEM_FILE`. Prints `issuer: http://…` once the
//! files are written and it is serving; runs until killed.

use std::{process::ExitCode, sync::Arc};

use axum::{Json, Router, routing::get};
use scopegate::testing::TestIssuer;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-issuer: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [count, tokens_file, pem_file] = args.as_slice() else {
        return Err("usage: bench-issuer COUNT TOKENS_FILE PEM_FILE".to_owned());
    };
    let count: usize = count.parse().map_err(|_| "COUNT must be a number".to_owned())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
    let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let issuer = TestIssuer::new().with_issuer(url.clone());

    // RSA signing is the slow part: spread it over the machine's cores.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let tokens: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let issuer = &issuer;
                scope.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| {
                            issuer
                                .access_token()
                                .subject(&format!("user-{i}"))
                                .scope("read:appointments")
                                .expires_in(7200)
                                .sign()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
    });
    if tokens.len() != count {
        return Err("a signing thread failed".to_owned());
    }
    std::fs::write(tokens_file, tokens.join("\n") + "\n").map_err(|e| format!("{tokens_file}: {e}"))?;
    std::fs::write(pem_file, issuer.public_key_pem("rsa-1")).map_err(|e| format!("{pem_file}: {e}"))?;

    let discovery: Arc<Value> = Arc::new(json!({ "issuer": url, "jwks_uri": format!("{url}/jwks") }));
    let jwks = Arc::new(issuer.jwks());
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { Json(Value::clone(&discovery)) }))
        .route("/jwks", get(move || async move { Json(Value::clone(&jwks)) }));
    eprintln!("issuer: {url}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
