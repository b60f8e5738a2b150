//! The cost of verification, side by side with its floor.
//!
//! For each algorithm: the bare signature check with a pre-parsed aws-lc-rs key (the
//! floor), `jsonwebtoken::decode` with a full `Validation`, and scopegate's path
//! (`Authority::verify` with the verified-token cache off; for RS256 also with
//! introspection configured, which must cost the same: a JWT is verified locally unless a
//! handler asks for `introspect`). Then the cache hit, scope evaluation, and ES256
//! verification of one repeated signature next to 1000 distinct ones (P-256 is
//! variable-time: the repeated one runs the same branches each time). Then one whole
//! request through an axum router, bearer next to DPoP (the same token from the verified-token cache; the DPoP request adds the proof checks and the
//! in-memory replay store). After criterion's own report, a summary table prints the median of each
//! and its ratio to the floor (`scripts/bench.sh` copies it into BENCHMARKS.md).
//!
//! Run: `cargo bench -p scopegate --bench verify`

// A benchmark fails loudly (a panic means the setup is wrong) and prints its summary table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout, missing_docs)]

mod support;

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header::AUTHORIZATION},
    routing::get,
};
use base64::Engine as _;
use criterion::{BatchSize, Criterion, criterion_group};
use jsonwebtoken::{DecodingKey, Validation, jwk::Jwk};
use scopegate::{
    AccessToken, Algorithm, Authority, ScopeExpr, Scopes,
    dpop::{DpopPolicy, MemoryReplayStore},
    testing::{DpopKey, TestIssuer},
};
use support::{ready, typical_token};
use tower::ServiceExt as _;

const AUD: &str = "https://api.example.test";

struct Case {
    alg: Algorithm,
    token: String,
    floor_key: ParsedPublicKey,
    message: Vec<u8>,
    signature: Vec<u8>,
    jwt_key: DecodingKey,
    validation: Validation,
    authority: Authority,
    cached: Authority,
    /// As `authority`, with introspection configured: a JWT is still verified locally (the
    /// endpoint, a closed port, is never called).
    introspecting: Authority,
}

fn spki_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}

fn case(issuer: &TestIssuer, alg: Algorithm) -> Case {
    let (kid, algorithm, jwt_alg): (&str, &'static dyn VerificationAlgorithm, jsonwebtoken::Algorithm) = match alg {
        Algorithm::RS256 => ("rsa-1", &sig::RSA_PKCS1_2048_8192_SHA256, jsonwebtoken::Algorithm::RS256),
        Algorithm::PS256 => ("rsa-1", &sig::RSA_PSS_2048_8192_SHA256, jsonwebtoken::Algorithm::PS256),
        Algorithm::ES256 => ("ec-1", &sig::ECDSA_P256_SHA256_FIXED, jsonwebtoken::Algorithm::ES256),
        Algorithm::EdDSA => ("ed-1", &sig::ED25519, jsonwebtoken::Algorithm::EdDSA),
        other => panic!("no benchmark for {other}"),
    };
    let token = typical_token(issuer, alg);
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).unwrap();
    let floor_key = ParsedPublicKey::new(algorithm, spki_der(&issuer.public_key_pem(kid))).unwrap();
    assert!(floor_key.verify_sig(input.as_bytes(), &signature).is_ok());

    let jwk: Jwk = serde_json::from_value(issuer.jwk(kid)).unwrap();
    let jwt_key = DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = Validation::new(jwt_alg);
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[issuer.issuer()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    jsonwebtoken::decode::<serde_json::Value>(&token, &jwt_key, &validation).unwrap();

    let authority = issuer.authority_builder(AUD).token_cache_capacity(0).build().unwrap();
    let cached = issuer.authority(AUD);
    let introspecting = issuer
        .authority_builder(AUD)
        .token_cache_capacity(0)
        .introspection("api", "secret")
        .introspection_endpoint("http://127.0.0.1:9/introspect")
        .build()
        .unwrap();
    ready(authority.verify(&token)).unwrap();
    ready(introspecting.verify(&token)).unwrap();
    Case {
        alg,
        message: input.as_bytes().to_vec(),
        token,
        floor_key,
        signature,
        jwt_key,
        validation,
        authority,
        cached,
        introspecting,
    }
}

fn cases() -> Vec<Case> {
    let issuer = TestIssuer::new();
    [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA]
        .into_iter()
        .map(|a| case(&issuer, a))
        .collect()
}

fn floor(c: &Case) {
    c.floor_key.verify_sig(black_box(&c.message), black_box(&c.signature)).unwrap();
}

/// ES256 signatures of distinct messages, verified in turn: as DPoP proofs arrive, each
/// with a new signature. P-256 verification is variable-time, so one signature verified
/// over and over (the floor row) may let the branch predictor learn its pattern.
struct FreshSignatures {
    key: ParsedPublicKey,
    signed: Vec<(Vec<u8>, Vec<u8>)>,
}

fn fresh_signatures() -> FreshSignatures {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pair = sig::EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let key = ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, sig::KeyPair::public_key(&pair).as_ref()).unwrap();
    let signed = (0..1000u32)
        .map(|i| {
            let message = format!("message {i}").into_bytes();
            let signature = pair.sign(&rng, &message).unwrap().as_ref().to_vec();
            (message, signature)
        })
        .collect();
    FreshSignatures { key, signed }
}

fn jsonwebtoken_decode(c: &Case) {
    jsonwebtoken::decode::<serde_json::Value>(black_box(&c.token), &c.jwt_key, &c.validation).unwrap();
}

fn scopegate_verify(c: &Case) {
    ready(c.authority.verify(black_box(&c.token))).unwrap();
}

fn scopegate_verify_introspection_configured(c: &Case) {
    ready(c.introspecting.verify(black_box(&c.token))).unwrap();
}

fn scopegate_cache_hit(c: &Case) {
    ready(c.cached.verify(black_box(&c.token))).unwrap();
}

const ALL: ScopeExpr = ScopeExpr::All(&[ScopeExpr::Scope("read:appointments"), ScopeExpr::Scope("write:appointments")]);
const ANY: ScopeExpr = ScopeExpr::Any(&[ScopeExpr::Scope("admin"), ScopeExpr::Scope("read:appointments")]);
const NESTED: ScopeExpr = ScopeExpr::Any(&[
    ScopeExpr::Scope("admin"),
    ScopeExpr::All(&[ScopeExpr::Scope("write:appointments"), ScopeExpr::Scope("delete:appointments")]),
]);

fn granted() -> Scopes {
    Scopes::from_space_delimited(
        "openid profile email offline_access read:appointments write:appointments delete:appointments \
         read:patients write:patients read:billing read:reports export:reports",
    )
}

/// An authority whose introspection cache holds `OPAQUE`: one real introspection call
/// against an endpoint on 127.0.0.1, served by the returned runtime.
fn introspected() -> (Authority, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let authority = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let answer = serde_json::json!({
            "active": true, "iss": issuer, "sub": "user-7", "client_id": "web-app", "aud": AUD,
            "scope": "read:appointments openid", "exp": now + 3 * 3600, "iat": now, "token_type": "Bearer"
        })
        .to_string();
        let app = axum::Router::new().route(
            "/introspect",
            axum::routing::post(move || {
                let answer = answer.clone();
                async move { ([("content-type", "application/json")], answer) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let authority = TestIssuer::new()
            .with_issuer(issuer.clone())
            .authority_builder(AUD)
            .introspection("api", "secret")
            .introspection_endpoint(format!("{issuer}/introspect"))
            .introspection_cache_ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        authority.verify(OPAQUE).await.unwrap();
        authority
    });
    (authority, runtime)
}

/// An opaque token of a typical provider's size (43 characters, 256 bits).
const OPAQUE: &str = "Xk2V9qL0mN3bR7tY5wZ1aC8dF4gH6jK2pQ9sU3vB1xE";

fn introspection_cache_hit(authority: &Authority) {
    ready(authority.verify(black_box(OPAQUE))).unwrap();
}

/// One guarded route behind an authority with DPoP on, a bearer token and a DPoP-bound
/// token (both RS256, both served from the verified-token cache after the first request).
struct Requests {
    router: Router,
    bearer: String,
    bound: String,
    key: DpopKey,
}

const ME: &str = "https://api.example.test/me";

fn requests() -> Requests {
    let issuer = TestIssuer::new();
    // Room for every proof a run makes: the store refuses new proofs when full.
    let store = std::sync::Arc::new(MemoryReplayStore::new(10_000_000));
    let authority = issuer.authority_builder(AUD).dpop(DpopPolicy::Allowed).dpop_replay_store(store).build().unwrap();
    // `/open` answers what `/me` answers without taking the token: the difference between
    // the two is the extractor's cost on a cache hit.
    let router = Router::new()
        .route("/me", get(|token: AccessToken| async move { token.subject().len().to_string() }))
        .route("/open", get(|| async move { "user-0".len().to_string() }))
        .with_state(authority);
    let key = DpopKey::generate();
    let scope = "openid profile email read:appointments write:appointments offline_access";
    let requests = Requests {
        router,
        bearer: format!("Bearer {}", issuer.access_token().scope(scope).sign()),
        bound: issuer.access_token().scope(scope).dpop_bound(&key).sign(),
        key,
    };
    bearer_request(&requests);
    dpop_request(&requests, &requests.proof());
    requests
}

impl Requests {
    fn proof(&self) -> String {
        self.key.proof("GET", ME).access_token(&self.bound).sign()
    }
}

fn bearer_request(r: &Requests) {
    request_to(r, "/me");
}

/// The same request (with its token) to the route that does not take the token.
fn open_request(r: &Requests) {
    request_to(r, "/open");
}

fn request_to(r: &Requests, path: &str) {
    let request = Request::get(path).header(AUTHORIZATION, black_box(&r.bearer)).body(Body::empty()).unwrap();
    let response = ready(r.router.clone().oneshot(request)).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn dpop_request(r: &Requests, proof: &str) {
    let request = Request::get("/me")
        .header(AUTHORIZATION, format!("DPoP {}", black_box(&r.bound)))
        .header("dpop", black_box(proof))
        .body(Body::empty())
        .unwrap();
    let response = ready(r.router.clone().oneshot(request)).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn bench(c: &mut Criterion) {
    let cases = cases();
    for case in &cases {
        let mut group = c.benchmark_group(format!("verify/{}", case.alg));
        group.bench_function("floor (signature only)", |b| b.iter(|| floor(case)));
        group.bench_function("jsonwebtoken::decode", |b| b.iter(|| jsonwebtoken_decode(case)));
        group.bench_function("scopegate", |b| b.iter(|| scopegate_verify(case)));
        if case.alg == Algorithm::RS256 {
            group.bench_function("scopegate, introspection configured", |b| {
                b.iter(|| scopegate_verify_introspection_configured(case));
            });
        }
        group.finish();
    }
    c.bench_function("verify/cache hit (RS256)", |b| b.iter(|| scopegate_cache_hit(&cases[0])));
    let fresh = fresh_signatures();
    let mut group = c.benchmark_group("ES256 verification");
    let (message, signature) = &fresh.signed[0];
    group.bench_function("one signature, repeated", |b| {
        b.iter(|| fresh.key.verify_sig(black_box(message), black_box(signature)).unwrap());
    });
    let mut turn = 0;
    group.bench_function("1000 signatures in turn", |b| {
        b.iter(|| {
            turn = (turn + 1) % fresh.signed.len();
            let (message, signature) = &fresh.signed[turn];
            fresh.key.verify_sig(black_box(message), black_box(signature)).unwrap();
        });
    });
    group.finish();
    let requests = requests();
    let mut group = c.benchmark_group("request");
    group.bench_function("bearer (cache hit)", |b| b.iter(|| bearer_request(&requests)));
    group.bench_function("DPoP (cache hit + ES256 proof)", |b| {
        b.iter_batched(|| requests.proof(), |proof| dpop_request(&requests, &proof), BatchSize::SmallInput);
    });
    group.finish();
    let (introspecting, _runtime) = introspected();
    c.bench_function("verify/introspection cache hit (opaque)", |b| b.iter(|| introspection_cache_hit(&introspecting)));
    let scopes = granted();
    let mut group = c.benchmark_group("scopes");
    for (name, expr) in [("all", ALL), ("any", ANY), ("nested", NESTED)] {
        group.bench_function(name, |b| b.iter(|| black_box(expr).is_satisfied_by(black_box(&scopes))));
    }
    group.finish();
}

/// The median time of `f` over `batches` batches of `per_batch` calls.
fn median(mut f: impl FnMut(), per_batch: u32, batches: usize) -> Duration {
    let mut samples: Vec<Duration> = (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            start.elapsed() / per_batch
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The median time per call of each of `paths`, measured in alternation (31 batches of
/// `per_batch` calls each, one batch of every path in turn), so that drift hits every
/// path alike.
fn in_alternation<const N: usize>(per_batch: u32, mut paths: [&mut dyn FnMut(); N]) -> [Duration; N] {
    let mut samples: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::new());
    for _ in 0..31 {
        for (path, samples) in paths.iter_mut().zip(&mut samples) {
            samples.push(median(&mut **path, per_batch, 1));
        }
    }
    samples.map(|mut v| {
        v.sort_unstable();
        v[v.len() / 2]
    })
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns >= 10_000 { format!("{:.1} µs", ns as f64 / 1000.0) } else { format!("{ns} ns") }
}

/// Prints the side-by-side table: each path's median and its ratio to the floor,
/// measured in alternation so that machine drift hits every column alike.
fn summary() {
    let cases = cases();
    println!("\n## Summary (median of 31 batches; ratio = time / floor)\n");
    println!("| algorithm | floor (signature only) | jsonwebtoken::decode | ratio | scopegate | ratio |");
    println!("|---|---|---|---|---|---|");
    for case in &cases {
        let per_batch = if case.alg == Algorithm::ES256 { 100 } else { 200 };
        let [fl, jw, sg] = in_alternation(
            per_batch,
            [&mut || floor(case), &mut || jsonwebtoken_decode(case), &mut || scopegate_verify(case)],
        );
        let ratio = |d: Duration| d.as_secs_f64() / fl.as_secs_f64();
        println!("| {} | {} | {} | {:.2}× | {} | {:.2}× |", case.alg, fmt(fl), fmt(jw), ratio(jw), fmt(sg), ratio(sg));
    }
    // The same RS256 JWT with introspection configured: verified locally all the same.
    let [plain, configured] = in_alternation(
        200,
        [&mut || scopegate_verify(&cases[0]), &mut || scopegate_verify_introspection_configured(&cases[0])],
    );
    println!(
        "\n| RS256 JWT, cache off: without introspection | with introspection configured |\n|---|---|\n| {} | {} |",
        fmt(plain),
        fmt(configured)
    );
    let hit = median(|| scopegate_cache_hit(&cases[0]), 20_000, 31);
    println!("\n| verified-token cache hit (RS256 token, {} bytes) | {} |", cases[0].token.len(), fmt(hit));
    println!("|---|---|");
    let (introspecting, _runtime) = introspected();
    let hit = median(|| introspection_cache_hit(&introspecting), 20_000, 31);
    println!("| introspection cache hit (opaque token, {} bytes) | {} |", OPAQUE.len(), fmt(hit));
    let requests = requests();
    let [open, bearer] = in_alternation(2_000, [&mut || open_request(&requests), &mut || bearer_request(&requests)]);
    // Proofs are single-use: make them first, outside the timing.
    let mut proofs: Vec<String> = (0..31 * 200).map(|_| requests.proof()).collect();
    let mut samples: Vec<Duration> = (0..31)
        .map(|_| {
            let batch: Vec<String> = proofs.drain(..200).collect();
            let start = Instant::now();
            for proof in &batch {
                dpop_request(&requests, proof);
            }
            start.elapsed() / 200
        })
        .collect();
    samples.sort_unstable();
    let dpop = samples[samples.len() / 2];
    println!("| request through axum: a route that does not take the token (same request) | {} |", fmt(open));
    println!(
        "| request through axum: bearer (RS256 token, cache hit) | {} (+{}) |",
        fmt(bearer),
        fmt(bearer.saturating_sub(open))
    );
    println!(
        "| request through axum: DPoP (same, plus ES256 proof and replay check) | {} (+{}) |",
        fmt(dpop),
        fmt(dpop.saturating_sub(bearer))
    );
    let scopes = granted();
    for (name, expr) in [("all", ALL), ("any", ANY), ("nested", NESTED)] {
        let t = median(
            || {
                black_box(black_box(expr).is_satisfied_by(black_box(&scopes)));
            },
            100_000,
            31,
        );
        println!("| scope evaluation: {name} | {} |", fmt(t));
    }
    println!(
        "\nToken sizes: {}",
        cases.iter().map(|c| format!("{} {} bytes", c.alg, c.token.len())).collect::<Vec<_>>().join(", ")
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(30);
    targets = bench
}

fn main() {
    // `SUMMARY_ONLY=1` skips criterion's runs and prints only the summary table.
    if std::env::var_os("SUMMARY_ONLY").is_none() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    summary();
}
