//! The verified-token cache's memory, for `scripts/bench.sh`: verifies distinct tokens
//! through one `Authority` with the default cache settings and prints the process's
//! resident size (`VmRSS`) as the cache fills, once it is full, and after one million
//! distinct tokens (the budget must hold).
//!
//! The tokens are HS256, padded with a claim to the size of the benchmark's typical RS256
//! access token (854 bytes): the cache charges by token and claim size whatever the
//! algorithm, and signing a million RSA tokens would take a quarter of an hour.
//!
//! Usage: `cache-memory [TOKENS]` (default 1 000 000). Prints a Markdown table.

// A report tool: its table goes to stdout.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use scopegate::{Algorithm, Authority, DEFAULT_TOKEN_CACHE_CAPACITY as DEFAULT_CAPACITY, testing::TestIssuer};

const SECRET: &[u8] = b"cache-memory-benchmark-secret-of-32+bytes";
const TARGET_TOKEN_BYTES: usize = 854;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cache-memory: {error}");
            ExitCode::FAILURE
        }
    }
}

fn rss_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/self/status".to_owned())
}

async fn run() -> Result<(), String> {
    let total: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|_| "TOKENS must be a number".to_owned())?,
        None => 1_000_000,
    };
    let issuer = TestIssuer::new();
    let authority = Authority::builder()
        .issuer(issuer.issuer())
        .audience("https://api.example.test")
        .shared_secret(Algorithm::HS256, SECRET)
        .build()
        .map_err(|e| e.to_string())?;
    let token = |i: usize, pad: usize| {
        issuer
            .access_token()
            .algorithm(Algorithm::HS256)
            .hmac_secret(SECRET)
            .subject(&format!("user-{i:07}"))
            .scope("read:appointments write:appointments openid profile email offline_access")
            .claim("tenant", "x".repeat(pad))
            .sign()
    };
    // Each padding byte in the claims adds four thirds of a character to the token.
    let pad = TARGET_TOKEN_BYTES.saturating_sub(token(0, 0).len()) * 3 / 4;
    let sample = token(0, pad);

    let before = rss_kib()?;
    let mut rows = vec![("before any token".to_owned(), 0, before)];
    let checkpoints = [DEFAULT_CAPACITY / 2, DEFAULT_CAPACITY, 10 * DEFAULT_CAPACITY, total];
    let started = std::time::Instant::now();
    for i in 0..total {
        authority.verify(&token(i, pad)).await.map_err(|e| format!("token {i} refused: {e}"))?;
        if checkpoints.contains(&(i + 1)) {
            rows.push((format!("after {} distinct tokens", i + 1), i + 1, rss_kib()?));
        }
    }
    let elapsed = started.elapsed();
    let stats = authority.stats();
    let full = rows.iter().find(|r| r.1 == DEFAULT_CAPACITY).map_or(before, |r| r.2);
    println!("| cache state | resident size (VmRSS) | growth |");
    println!("|---|---|---|");
    for (label, _, rss) in &rows {
        println!("| {label} | {:.1} MiB | {:+.1} MiB |", *rss as f64 / 1024.0, (*rss as f64 - before as f64) / 1024.0);
    }
    println!();
    println!(
        "Token size {} bytes; {total} distinct tokens verified in {:.1} s ({} signature checks, {} cache hits). \
         Bytes per cached token (resident growth with the cache full, {DEFAULT_CAPACITY} entries): {:.0}.",
        sample.len(),
        elapsed.as_secs_f64(),
        stats.signatures_checked,
        stats.token_cache_hits,
        (full.saturating_sub(before) as f64 * 1024.0) / DEFAULT_CAPACITY as f64,
    );
    Ok(())
}
