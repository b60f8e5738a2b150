//! Asks a development issuer for many distinct access tokens (one subject each) and
//! writes them one per line.
//!
//! Usage: `mint-tokens TOKEN_ENDPOINT CLIENT_ID CLIENT_SECRET COUNT OUTPUT_FILE [SCOPE]`

use std::{fmt::Write as _, process::ExitCode};

use tokio::task::JoinSet;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mint-tokens: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, client_id, secret, count, output, rest @ ..] = args.as_slice() else {
        return Err("usage: mint-tokens TOKEN_ENDPOINT CLIENT_ID CLIENT_SECRET COUNT OUTPUT_FILE [SCOPE]".to_owned());
    };
    let count: usize = count.parse().map_err(|_| "COUNT must be a number".to_owned())?;
    let scope = rest.first().cloned().unwrap_or_else(|| "read:appointments".to_owned());
    let client = reqwest::Client::new();
    let mut tokens = Vec::with_capacity(count);
    let mut tasks = JoinSet::new();
    for i in 0..count {
        let (client, endpoint, client_id, secret, scope) =
            (client.clone(), endpoint.clone(), client_id.clone(), secret.clone(), scope.clone());
        tasks.spawn(async move {
            let body = format!("grant_type=client_credentials&scope={}&subject=user-{i}", scope.replace(' ', "+"));
            let response = client
                .post(&endpoint)
                .basic_auth(client_id, Some(secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let json: serde_json::Value = serde_json::from_slice(&response.bytes().await.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            json["access_token"].as_str().map(str::to_owned).ok_or_else(|| format!("no access_token in {json}"))
        });
        if tasks.len() >= 16
            && let Some(result) = tasks.join_next().await
        {
            tokens.push(result.map_err(|e| e.to_string())??);
        }
    }
    while let Some(result) = tasks.join_next().await {
        tokens.push(result.map_err(|e| e.to_string())??);
    }
    let mut text = String::new();
    for token in &tokens {
        let _ = writeln!(text, "{token}");
    }
    std::fs::write(output, text).map_err(|e| format!("{output}: {e}"))?;
    eprintln!("mint-tokens: wrote {} tokens to {output}", tokens.len());
    Ok(())
}
