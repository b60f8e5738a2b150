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
//! untouched valid token is accepted (status 200). 2 000 cases in all.

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
use harness::{ISS, access_claims, app_for, authority, issuer, raw_header};
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

#[test]
fn validly_signed_random_headers_are_refused() {
    let runtime = runtime();
    // Either a random document, or the valid header with random members added: a `typ`
    // from the vocabulary is never `at+jwt`, so every one of these must be refused.
    let strategy = prop_oneof![
        json_value().prop_map(|v| v.to_string()),
        object().prop_map(|m| Value::Object(m).to_string()),
        (object(), json_value()).prop_map(|(mut extra, typ)| {
            extra.insert("typ".into(), typ);
            let mut header: Map<String, Value> =
                serde_json::from_str(&raw_header("")).expect("the valid header is JSON");
            header.extend(extra);
            Value::Object(header).to_string()
        }),
    ];
    runner(400)
        .run(&strategy, |header| {
            let token = issuer().access_token().algorithm(Algorithm::EdDSA).raw_header(&header).sign();
            refused(decide(&runtime, &bearer(&token)), &header)
        })
        .expect("no random header is accepted");
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
