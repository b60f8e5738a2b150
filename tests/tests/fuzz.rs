//! A property test over the whole path from an `Authorization` header value to the
//! decision, through a real axum `Router` (security spec G4 and "nothing malformed is
//! accepted"):
//!
//! - arbitrary bytes, b64token-shaped strings and dotted base64url strings;
//! - structured mutations of one valid token (flip, insert or delete a character, swap or
//!   repeat segments, truncate);
//! - validly signed tokens with a random header, or with the valid claims broken in one
//!   place, or with a random claim set.
//!
//! The property: no input panics, every answer is one of the spec's outcomes, and only the
//! untouched valid token is accepted (status 200). Random headers are signed with the key
//! they name, so they reach key lookup and the signature, and each gets exactly the
//! answer (accept or reason code) the pipeline's order of checks gives it. 2 000 cases in
//! all.

// The harness helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "spec/harness.rs"]
mod harness;

use std::sync::OnceLock;

use axum::{
    Router,
    body::Body,
    http::{HeaderValue, StatusCode, header},
};
use harness::{ISS, access_claims, app_for, authority, issuer};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use scopegate::Algorithm;
use serde_json::{Map, Value};
use tower::ServiceExt as _;

fn router() -> &'static Router {
    static APP: OnceLock<Router> = OnceLock::new();
    APP.get_or_init(|| app_for(authority()))
}

/// The one valid token (RS256, `rsa-1`), minted once.
fn valid_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| issuer().access_token().sign())
}

/// The status for this `Authorization` value, or `None` when it is not a representable
/// header value (hyper would refuse it before any handler).
fn decide(runtime: &tokio::runtime::Runtime, authorization: &[u8]) -> Option<StatusCode> {
    let value = HeaderValue::from_bytes(authorization).ok()?;
    let request = axum::http::Request::builder()
        .uri("/me")
        .header(header::AUTHORIZATION, value)
        .body(Body::empty())
        .expect("a request");
    let response = runtime.block_on(router().clone().oneshot(request)).expect("infallible");
    Some(response.status())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a runtime")
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// Refused, with one of the spec's refusal statuses (no 5xx, no 403 on `/me`).
fn refused(status: Option<StatusCode>, input: &str) -> Result<(), TestCaseError> {
    if let Some(status) = status {
        prop_assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST, "{input}: got {status}");
    }
    Ok(())
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

#[test]
fn arbitrary_header_values_are_refused_without_panicking() {
    let runtime = runtime();
    let strategy = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        "[ -~]{0,300}".prop_map(String::into_bytes),
        "(?i:bearer) {1,3}[A-Za-z0-9._~+/=-]{0,400}".prop_map(String::into_bytes),
        "Bearer [A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_=-]{0,350}".prop_map(String::into_bytes),
        "Bearer eyJ[A-Za-z0-9_-]{0,60}\\.eyJ[A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,350}".prop_map(String::into_bytes),
    ];
    runner(600)
        .run(&strategy, |bytes| refused(decide(&runtime, &bytes), &format!("{:?}", String::from_utf8_lossy(&bytes))))
        .expect("no arbitrary header value is accepted");
}

/// A structural change to a compact token.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, char),
    Insert(usize, char),
    Delete(usize),
    /// A permutation of the three segments (index into `PERMUTATIONS`).
    Swap(usize),
    /// Segment `.0` repeated in place of segment `.1`.
    Repeat(usize, usize),
    Truncate(usize),
    /// Several character-level changes at once.
    Many(Vec<(usize, char)>),
}

const PERMUTATIONS: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/~ ";

fn alphabet_char() -> impl Strategy<Value = char> {
    proptest::sample::select(ALPHABET.chars().collect::<Vec<_>>())
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), alphabet_char()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        2 => (any::<usize>(), alphabet_char()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        2 => any::<usize>().prop_map(Mutation::Delete),
        1 => (0..PERMUTATIONS.len()).prop_map(Mutation::Swap),
        1 => (0..3usize, 0..3usize).prop_map(|(a, b)| Mutation::Repeat(a, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => proptest::collection::vec((any::<usize>(), alphabet_char()), 2..6).prop_map(Mutation::Many),
    ]
}

fn apply(token: &str, mutation: &Mutation) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let len = chars.len();
    match mutation {
        Mutation::Replace(i, c) => chars[i % len] = *c,
        Mutation::Insert(i, c) => chars.insert(i % (len + 1), *c),
        Mutation::Delete(i) => {
            chars.remove(i % len);
        }
        Mutation::Swap(p) => {
            let parts: Vec<&str> = token.split('.').collect();
            return PERMUTATIONS[*p].iter().map(|&i| parts[i]).collect::<Vec<_>>().join(".");
        }
        Mutation::Repeat(from, to) => {
            let mut parts: Vec<&str> = token.split('.').collect();
            parts[*to] = parts[*from];
            return parts.join(".");
        }
        Mutation::Truncate(at) => chars.truncate(at % len),
        Mutation::Many(changes) => {
            for (i, c) in changes {
                chars[i % len] = *c;
            }
        }
    }
    chars.into_iter().collect()
}

#[test]
fn only_the_untouched_valid_token_is_accepted() {
    let runtime = runtime();
    let token = valid_token();
    assert_eq!(decide(&runtime, &bearer(token)), Some(StatusCode::OK), "the valid token is accepted");
    runner(600)
        .run(&mutation(), |mutation| {
            let mutated = apply(token, &mutation);
            let status = decide(&runtime, &bearer(&mutated));
            // Spaces before the token are the `1*SP` separator (spec case 5): still the
            // untouched token.
            if mutated.trim_start_matches(' ') == token {
                prop_assert_eq!(status, Some(StatusCode::OK), "{:?} left the token unchanged", mutation);
                Ok(())
            } else {
                refused(status, &format!("{mutation:?}"))
            }
        })
        .expect("no mutated token is accepted");
}

/// A JSON value from a small vocabulary that includes the names and values a header or
/// claim set uses, but never a valid access-token `typ`, the API audience or the issuer
/// (so no generated document is a valid token by accident).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        proptest::sample::select(vec![
            "RS256",
            "EdDSA",
            "ES256",
            "none",
            "HS256",
            "JWT",
            "jwt",
            "logout+jwt",
            "rsa-1",
            "ed-1",
            "ec-1",
            "",
            "at+jwt ",
            "b64",
            "crit",
            "user-123",
            "test-client",
            "read:appointments",
        ])
        .prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((name(), inner), 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "alg",
            "typ",
            "kid",
            "crit",
            "jwk",
            "jku",
            "x5u",
            "x5c",
            "cty",
            "enc",
            "zip",
            "b64",
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "client_id",
            "scope",
            "cnf",
            "nonce",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,6}",
    ]
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::vec((name(), json_value()), 0..8).prop_map(|members| members.into_iter().collect())
}

/// The algorithms the test issuer signs with, and the `kid` of the key for each.
const SIGNABLE: [(Algorithm, &str); 9] = [
    (Algorithm::RS256, "rsa-1"),
    (Algorithm::RS384, "rsa-1"),
    (Algorithm::RS512, "rsa-1"),
    (Algorithm::PS256, "rsa-1"),
    (Algorithm::PS384, "rsa-1"),
    (Algorithm::PS512, "rsa-1"),
    (Algorithm::ES256, "ec-1"),
    (Algorithm::ES384, "ec-384"),
    (Algorithm::EdDSA, "ed-1"),
];

/// A header built member by member: `alg` mostly one the issuer signs with, `kid` mostly
/// one of its keys (the right one or another), `typ` mostly one of the spellings of an
/// access token or a JWT, and random other members, some of them refused extensions.
fn structured_header() -> impl Strategy<Value = Map<String, Value>> {
    let alg = prop_oneof![
        4 => proptest::sample::select(SIGNABLE.map(|(alg, _)| alg.as_str()).to_vec()).prop_map(Value::from),
        1 => proptest::sample::select(vec!["none", "HS256", "rs256", "RS256 ", ""]).prop_map(Value::from),
        1 => json_value(),
    ];
    let kid = prop_oneof![
        4 => proptest::sample::select(vec!["rsa-1", "ec-1", "ec-384", "ed-1"]).prop_map(|k| Some(Value::from(k))),
        1 => Just(None),
        1 => "[ -~]{0,8}".prop_map(|k| Some(Value::from(k))),
        1 => Just(Some(Value::from("k".repeat(257)))),
        1 => json_value().prop_map(Some),
    ];
    let typ = prop_oneof![
        4 => proptest::sample::select(vec!["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"])
            .prop_map(|t| Some(Value::from(t))),
        1 => proptest::sample::select(vec!["JWT", "jwt", "application/jwt", "at+jwt ", "logout+jwt", "at+jwt;v=1"])
            .prop_map(|t| Some(Value::from(t))),
        1 => Just(None),
        1 => json_value().prop_map(Some),
    ];
    let extra = prop_oneof![2 => Just(Map::new()), 1 => object()];
    (alg, kid, typ, extra).prop_map(|(alg, kid, typ, extra)| {
        let mut header: Map<String, Value> =
            extra.into_iter().filter(|(name, _)| !matches!(name.as_str(), "alg" | "kid" | "typ")).collect();
        header.insert("alg".into(), alg);
        if let Some(kid) = kid {
            header.insert("kid".into(), kid);
        }
        if let Some(typ) = typ {
            header.insert("typ".into(), typ);
        }
        header
    })
}

/// What the verifier must answer for a token with this header text and the test issuer's
/// valid claims, signed with the key the header names: `None` for an accept, or the
/// reason code. The order is the pipeline's (security spec G3): header size and JSON,
/// `alg`, refused members, `kid` and `typ` shapes, `typ`, key lookup, then the claims.
fn expected_reason(header: &str) -> Option<&'static str> {
    const REFUSED: [&str; 8] = ["crit", "b64", "cty", "enc", "zip", "jwk", "jku", "x5u"];
    if harness::b64(header).len() > 2048 {
        return Some("malformed_token");
    }
    let Ok(Value::Object(header)) = serde_json::from_str::<Value>(header) else {
        return Some("malformed_token");
    };
    // `SIGNABLE` is the whole default allowlist, ES384 included (the issuer's P-384 key
    // `ec-384`); any other name is refused before the key is looked up.
    let alg = header.get("alg").and_then(Value::as_str);
    let Some(&(_, key)) = SIGNABLE.iter().find(|(signable, _)| alg == Some(signable.as_str())) else {
        return Some("algorithm_not_allowed");
    };
    if header.keys().any(|name| REFUSED.contains(&name.as_str())) {
        return Some("unsupported_header");
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if kid.len() <= 256 => Some(kid.as_str()),
        Some(_) => return Some("malformed_token"),
    };
    let access_token = match header.get("typ") {
        None => false,
        Some(Value::String(typ)) => {
            let short =
                typ.get(..12).filter(|p| p.eq_ignore_ascii_case("application/")).map_or(typ.as_str(), |_| &typ[12..]);
            if short.eq_ignore_ascii_case("at+jwt") {
                true
            } else if short.eq_ignore_ascii_case("jwt") {
                false
            } else {
                return Some("not_an_access_token");
            }
        }
        Some(_) => return Some("malformed_token"),
    };
    // Without `kid` the one key usable for `alg` is found; with one, it must be that key.
    if kid.is_some_and(|kid| kid != key) {
        return Some("unknown_key");
    }
    // The signature verifies; a `JWT`-typed or untyped token is not an access token in
    // the strict profile (its claims name a client, so it is not taken for an ID token).
    if access_token { None } else { Some("not_an_access_token") }
}

/// The status and the body's reason code for this `Authorization` value.
fn decide_with_reason(runtime: &tokio::runtime::Runtime, authorization: &[u8]) -> (StatusCode, Option<String>) {
    let value = HeaderValue::from_bytes(authorization).expect("a representable token");
    let request = axum::http::Request::builder()
        .uri("/me")
        .header(header::AUTHORIZATION, value)
        .body(Body::empty())
        .expect("a request");
    let response = runtime.block_on(router().clone().oneshot(request)).expect("infallible");
    let status = response.status();
    let body = runtime.block_on(http_body_util::BodyExt::collect(response.into_body())).expect("a body").to_bytes();
    let reason = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body.get("reason").and_then(Value::as_str).map(str::to_owned));
    (status, reason)
}

#[test]
fn validly_signed_random_headers_are_refused() {
    let runtime = runtime();
    // A random document, a random object, or a header built member by member; each token
    // is signed with the key its header names (EdDSA when it names none the issuer has),
    // so that the cases reach key lookup and the signature, and the claims are valid: the
    // header alone decides, and the answer must be exactly the one `expected_reason` gives.
    let strategy = prop_oneof![
        1 => json_value().prop_map(|v| v.to_string()),
        1 => object().prop_map(|m| Value::Object(m).to_string()),
        4 => structured_header().prop_map(|m| Value::Object(m).to_string()),
    ];
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<&'static str, u32>::new());
    runner(400)
        .run(&strategy, |header| {
            let named = serde_json::from_str::<Value>(&header)
                .ok()
                .and_then(|h| h.get("alg").and_then(Value::as_str).and_then(Algorithm::from_name));
            let alg = named.filter(|alg| SIGNABLE.iter().any(|(a, _)| a == alg)).unwrap_or(Algorithm::EdDSA);
            let token = issuer().access_token().algorithm(alg).raw_header(&header).sign();
            let (status, reason) = decide_with_reason(&runtime, &bearer(&token));
            let expected = expected_reason(&header);
            prop_assert_eq!(reason.as_deref(), expected, "{}: got {}", header, status);
            let expected_status = match expected {
                None => StatusCode::OK,
                Some(_) => StatusCode::UNAUTHORIZED,
            };
            prop_assert_eq!(status, expected_status, "{}", header);
            *seen.borrow_mut().entry(expected.unwrap_or("accepted")).or_default() += 1;
            Ok(())
        })
        .expect("every random header gets exactly its answer");
    // The cases reach every stage, the signature and acceptance included.
    let seen = seen.into_inner();
    for stage in [
        "malformed_token",
        "algorithm_not_allowed",
        "unsupported_header",
        "not_an_access_token",
        "unknown_key",
        "accepted",
    ] {
        assert!(seen.get(stage).is_some_and(|n| *n >= 5), "too few cases reached {stage}: {seen:?}");
    }
}

/// The claims that must be present and well formed.
const REQUIRED: [&str; 7] = ["iss", "sub", "aud", "client_id", "iat", "exp", "jti"];

#[test]
fn validly_signed_broken_claims_are_refused() {
    let runtime = runtime();
    // A value that is wrong for every required claim: not a string, not a number.
    let wrong = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_value().prop_map(|v| Value::Array(vec![v])),
        object().prop_map(Value::Object),
    ];
    let forbidden = proptest::sample::select(vec!["cnf", "nonce", "at_hash", "c_hash"]);
    let strategy = prop_oneof![
        // One required claim removed, others possibly extended with random members.
        (proptest::sample::select(REQUIRED.to_vec()), object()).prop_map(|(claim, extra)| {
            let mut claims = extra;
            claims.extend(access_claims());
            claims.remove(claim);
            claims
        }),
        // One required claim replaced with a wrongly typed value.
        (proptest::sample::select(REQUIRED.to_vec()), wrong).prop_map(|(claim, value)| {
            let mut claims = access_claims();
            claims.insert(claim.into(), value);
            claims
        }),
        // An ID-token or sender-constrained claim added.
        (forbidden, json_value()).prop_map(|(claim, value)| {
            let mut claims = access_claims();
            claims.insert(claim.into(), value);
            claims
        }),
        // A random claim set.
        object(),
    ];
    runner(400)
        .run(&strategy, |claims| {
            let text = Value::Object(claims).to_string();
            let token = issuer().access_token().algorithm(Algorithm::EdDSA).raw_claims(&text).sign();
            refused(decide(&runtime, &bearer(&token)), &text)
        })
        .expect("no broken claim set is accepted");
    // The same path accepts the valid claims: the property is not vacuous.
    let claims = Value::Object(access_claims()).to_string();
    let token = issuer().access_token().algorithm(Algorithm::EdDSA).raw_claims(&claims).sign();
    assert_eq!(decide(&runtime, &bearer(&token)), Some(StatusCode::OK));
    assert!(claims.contains(ISS));
}
