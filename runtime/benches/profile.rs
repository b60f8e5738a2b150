//! One token verified over and over with the verified-token cache off, for a profiler: the
//! uncached path of the `verify` bench without its other groups.
//!
//! ```text
//! bash scripts/profile-verify.sh            # callgrind: instructions per verification
//! PROFILE_MODE=scopegate target/release/deps/profile-* RS256 1000
//! ```
//!
//! Arguments: the algorithm (`RS256`, `PS256`, `ES256`, `EdDSA`; default `RS256`) and
//! the number of verifications (default 1000). `PROFILE_MODE=floor` runs the signature
//! alone with a pre-parsed aws-lc-rs key instead. Only `verify_many` and `floor_many` are
//! worth counting (`valgrind --tool=callgrind --toggle-collect='*verify_many*'`): the
//! set-up generates keys, whose cost varies from run to run.

// A profiling harness fails loudly: a panic means the setup is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout, missing_docs)]

mod support;

use std::hint::black_box;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use scopegate::{Algorithm, Authority, testing::TestIssuer};
use support::{ready, typical_token};

const AUD: &str = "https://api.example.test";

#[inline(never)]
fn verify_many(authority: &Authority, token: &str, n: u32) {
    for _ in 0..n {
        ready(authority.verify(black_box(token))).unwrap();
    }
}

#[inline(never)]
fn floor_many(key: &ParsedPublicKey, message: &[u8], signature: &[u8], n: u32) {
    for _ in 0..n {
        key.verify_sig(black_box(message), black_box(signature)).unwrap();
    }
}

fn main() {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let alg = match args.first().map_or("RS256", String::as_str) {
        "RS256" => Algorithm::RS256,
        "PS256" => Algorithm::PS256,
        "ES256" => Algorithm::ES256,
        "EdDSA" => Algorithm::EdDSA,
        other => panic!("no profile for {other}"),
    };
    let n: u32 = args.get(1).map_or(1000, |n| n.parse().unwrap());
    let (kid, algorithm): (&str, &'static dyn VerificationAlgorithm) = match alg {
        Algorithm::RS256 => ("rsa-1", &sig::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::PS256 => ("rsa-1", &sig::RSA_PSS_2048_8192_SHA256),
        Algorithm::ES256 => ("ec-1", &sig::ECDSA_P256_SHA256_FIXED),
        _ => ("ed-1", &sig::ED25519),
    };
    let issuer = TestIssuer::new();
    let token = typical_token(&issuer, alg);
    if std::env::var("PROFILE_MODE").as_deref() == Ok("floor") {
        let (input, signature) = token.rsplit_once('.').unwrap();
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).unwrap();
        let pem = issuer.public_key_pem(kid);
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        let key = ParsedPublicKey::new(algorithm, der).unwrap();
        floor_many(&key, input.as_bytes(), &signature, n);
    } else {
        let authority = issuer.authority_builder(AUD).token_cache_capacity(0).build().unwrap();
        verify_many(&authority, &token, n);
    }
    println!("{alg}: {n} verifications of a {}-byte token", token.len());
}
