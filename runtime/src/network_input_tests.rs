//! Property tests over what arrives from the network besides tokens: JWK set documents,
//! single JWKs, discovery documents and `Cache-Control` values, each as arbitrary bytes
//! or strings and as structured-random JSON built from the members that matter.
//!
//! The property: no input panics (in debug builds, where integer overflow panics too),
//! and every outcome is one of the documented ones. Bounded: a fixed number of cases per
//! property, 3 700 in all (600 + 500 + 1 000 + 600 + 200 + 800), a few seconds in a debug
//! build.

use proptest::{
    collection::{btree_map, vec},
    prelude::*,
    sample::select,
    test_runner::{Config, TestCaseError, TestRunner},
};
use serde_json::{Map, Number, Value};

use crate::{
    algorithm::Algorithm,
    discovery::{Metadata, read_document},
    http::{FetchError, is_blocked},
    jwks::{CachePolicy, ttl},
    keys::{KeyRejection, KeySet, KeySetError, MAX_KEYS, admit_jwk},
};

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// Base64url text of random bytes, with the lengths key members have (and around them).
fn b64_member() -> impl Strategy<Value = String> {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    let lengths = || select(vec![0usize, 1, 3, 4, 31, 32, 33, 47, 48, 49, 64, 255, 256, 257, 384, 512, 1025]);
    prop_oneof![
        4 => lengths().prop_flat_map(|len| vec(any::<u8>(), len)).prop_map(|bytes| URL_SAFE_NO_PAD.encode(bytes)),
        1 => lengths().prop_map(|len| URL_SAFE_NO_PAD.encode(vec![0u8; len])),
        1 => lengths().prop_map(|len| URL_SAFE_NO_PAD.encode(vec![0xffu8; len])),
        1 => "[A-Za-z0-9_=+/.-]{0,80}",
        1 => Just("AQAB".to_owned()),
    ]
}

/// Any JSON value, nested a few levels, with the strings and numbers that trip parsers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        select(vec!["RSA", "EC", "OKP", "oct", "sig", "enc", "verify", "P-256", "P-384", "Ed25519", "RS256", ""])
            .prop_map(Value::from),
        "[ -~]{0,40}".prop_map(Value::from),
        b64_member().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(member_name(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "kty", "kid", "use", "key_ops", "alg", "n", "e", "x", "y", "crv", "d", "p", "k", "keys", "issuer",
            "jwks_uri", "x5c",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z_]{0,8}",
    ]
}

/// A JWK shaped like a real one, with every member drawn from plausible and wrong values.
fn structured_jwk() -> impl Strategy<Value = Value> {
    let kty = select(vec!["RSA", "EC", "OKP", "oct", "", "rsa"]);
    let crv = prop::option::of(select(vec!["P-256", "P-384", "P-521", "Ed25519", "X25519", "secp256k1"]));
    let alg =
        prop::option::of(select(vec!["RS256", "PS384", "ES256", "ES384", "EdDSA", "HS256", "none", "RS1", "ES512"]));
    let usage = prop::option::of(select(vec!["sig", "enc", ""]));
    let ops = prop::option::of(vec(select(vec!["verify", "sign", "encrypt", ""]), 0..3));
    let members = (b64_member(), b64_member(), b64_member(), b64_member());
    let extra = prop::option::of((member_name(), json_value()));
    (kty, crv, alg, usage, ops, members, prop::option::of("[ -~]{0,300}"), extra).prop_map(
        |(kty, crv, alg, usage, ops, (n, e, x, y), kid, extra)| {
            let mut jwk = Map::new();
            jwk.insert("kty".into(), kty.into());
            match kty {
                "RSA" => {
                    jwk.insert("n".into(), n.into());
                    jwk.insert("e".into(), e.into());
                }
                _ => {
                    jwk.insert("x".into(), x.into());
                    jwk.insert("y".into(), y.into());
                }
            }
            for (name, value) in [("crv", crv), ("alg", alg), ("use", usage)] {
                if let Some(value) = value {
                    jwk.insert(name.into(), value.into());
                }
            }
            if let Some(ops) = ops {
                jwk.insert("key_ops".into(), ops.into());
            }
            if let Some(kid) = kid {
                jwk.insert("kid".into(), kid.into());
            }
            if let Some((name, value)) = extra {
                jwk.insert(name, value);
            }
            Value::Object(jwk)
        },
    )
}

fn jwk() -> impl Strategy<Value = Value> {
    prop_oneof![4 => structured_jwk(), 1 => json_value()]
}

/// Checks one key set outcome against the documented ones.
fn check_key_set(result: Result<KeySet, KeySetError>, keys: Option<usize>) -> Result<(), TestCaseError> {
    match result {
        Ok(set) => {
            prop_assert!(set.len() >= 1 && set.len() <= MAX_KEYS);
            if let Some(keys) = keys {
                prop_assert_eq!(set.len() + set.rejected.len(), keys);
            }
        }
        Err(KeySetError::NotAJwks) => {}
        Err(KeySetError::TooManyKeys) => prop_assert!(keys.is_none_or(|n| n > MAX_KEYS)),
        Err(KeySetError::NoUsableKeys(rejected)) => {
            if let Some(keys) = keys {
                prop_assert_eq!(rejected.len(), keys);
            }
        }
    }
    Ok(())
}

#[test]
fn arbitrary_bytes_as_a_jwk_set_never_panic() {
    let strategy = prop_oneof![
        vec(any::<u8>(), 0..2048),
        "[ -~]{0,400}".prop_map(String::into_bytes),
        "\\{\"keys\":\\[[ -~]{0,300}\\]\\}".prop_map(String::into_bytes),
    ];
    runner(600).run(&strategy, |bytes| check_key_set(KeySet::from_jwks(&bytes, &Algorithm::ASYMMETRIC), None)).unwrap();
}

#[test]
fn structured_jwk_sets_never_panic_and_account_for_every_key() {
    let strategy = prop_oneof![
        8 => vec(jwk(), 0..8),
        1 => (1usize..3).prop_map(|extra| vec![Value::Null; MAX_KEYS + extra]),
    ];
    let algorithms = prop_oneof![
        Just(Algorithm::ASYMMETRIC.to_vec()),
        Just(vec![Algorithm::ES256]),
        Just(vec![Algorithm::EdDSA, Algorithm::PS256]),
    ];
    runner(500)
        .run(&(strategy, algorithms), |(keys, allowed)| {
            let count = keys.len();
            let doc = serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap();
            check_key_set(KeySet::from_jwks(&doc, &allowed), Some(count))
        })
        .unwrap();
}

#[test]
fn single_jwks_are_admitted_or_refused_without_panicking() {
    runner(1000)
        .run(&jwk(), |jwk| {
            match admit_jwk(&jwk, &Algorithm::ASYMMETRIC) {
                Ok(key) => {
                    let kty = jwk.get("kty").and_then(Value::as_str);
                    prop_assert!(matches!(kty, Some("RSA" | "EC" | "OKP")), "admitted {jwk}");
                    prop_assert!(key.algorithms().all(|alg| !alg.is_symmetric()));
                    prop_assert!(jwk.get("d").is_none() && jwk.get("k").is_none(), "admitted private material");
                }
                Err(why) => prop_assert!(!why.code().is_empty()),
            }
            Ok(())
        })
        .unwrap();
    // A sample of the refusals is what the admission rules say.
    assert_eq!(admit_jwk(&Value::Null, &Algorithm::ASYMMETRIC).err(), Some(KeyRejection::Malformed));
}

/// A discovery document: the issuer (right or wrong) and a `jwks_uri` from the URLs the
/// policy must judge, or random members.
fn discovery_document() -> impl Strategy<Value = (Vec<u8>, &'static str)> {
    let issuer = select(vec!["https://issuer.example/", "http://127.0.0.1:4455"]);
    let host = prop_oneof![
        select(vec![
            "issuer.example",
            "127.0.0.1",
            "localhost",
            "[::1]",
            "169.254.169.254",
            "10.0.0.1",
            "[64:ff9b::a00:1]",
            "[2002:a00:1::1]",
            "[::ffff:192.168.0.1]",
            "[fe80::1%25eth0]",
            "0",
            "0x7f.1",
            "198.18.0.1",
            "240.0.0.1",
            "[::]",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9.-]{0,20}",
    ];
    let jwks_uri = prop_oneof![
        4 => (select(vec!["https", "http", "ftp", "HTTPS", "file", ""]), host, "(:[0-9]{0,6})?", "[ -~]{0,20}")
            .prop_map(|(scheme, host, port, path)| Value::from(format!("{scheme}://{host}{port}/{path}"))),
        1 => json_value(),
    ];
    let doc_issuer = prop_oneof![
        3 => Just(None),
        1 => json_value().prop_map(Some),
    ];
    (issuer, jwks_uri, doc_issuer, btree_map(member_name(), json_value(), 0..3)).prop_map(
        |(issuer, jwks_uri, doc_issuer, extra)| {
            let mut doc: Map<String, Value> = extra.into_iter().collect();
            doc.insert("issuer".into(), doc_issuer.unwrap_or_else(|| issuer.into()));
            doc.insert("jwks_uri".into(), jwks_uri);
            (serde_json::to_vec(&doc).unwrap(), issuer)
        },
    )
}

fn check_discovery(result: Result<Metadata, FetchError>, issuer: &str) -> Result<(), TestCaseError> {
    match result {
        Ok(metadata) => {
            let plain_http_issuer = issuer.starts_with("http://");
            let urls = [
                Some(&metadata.jwks_uri),
                metadata.introspection_endpoint.as_ref(),
                metadata.userinfo_endpoint.as_ref(),
            ];
            for url in urls.into_iter().flatten() {
                prop_assert!(url.scheme() == "https" || (url.scheme() == "http" && plain_http_issuer), "{url}");
                prop_assert!(url.username().is_empty() && url.password().is_none(), "{url}");
                if let Some(ip) = url.host_str().and_then(|h| h.trim_matches(['[', ']']).parse().ok()) {
                    prop_assert!(!is_blocked(ip), "{url}");
                }
            }
        }
        Err(FetchError::NotJson | FetchError::IssuerMismatch | FetchError::BadJwksUri(_)) => {}
        Err(other) => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
    }
    Ok(())
}

#[test]
fn discovery_documents_never_panic_and_never_yield_a_url_the_policy_refuses() {
    runner(600)
        .run(&discovery_document(), |(doc, issuer)| check_discovery(read_document(&doc, issuer, false), issuer))
        .unwrap();
    let bytes = vec(any::<u8>(), 0..1024);
    runner(200)
        .run(&bytes, |bytes| {
            let issuer = "https://issuer.example/";
            check_discovery(read_document(&bytes, issuer, false), issuer)
        })
        .unwrap();
}

#[test]
fn cache_control_values_never_panic_and_stay_in_the_bounds() {
    let directive = prop_oneof![
        select(vec![
            "public",
            "private",
            "no-store",
            "no-cache",
            "must-revalidate",
            "immutable",
            "max-age",
            "max-age="
        ])
        .prop_map(str::to_owned),
        any::<u64>().prop_map(|n| format!("max-age={n}")),
        "[0-9]{0,40}".prop_map(|digits| format!("max-age={digits}")),
        "[0-9]{0,25}".prop_map(|digits| format!("MAX-AGE=\"{digits}\"")),
        "-?[0-9]{1,5}(\\.[0-9]{1,3})?".prop_map(|n| format!("max-age={n}")),
        "s-maxage=[0-9]{1,12}",
        "[ -~]{0,30}",
    ];
    let value = prop_oneof![
        vec((directive, "[ \t]{0,2}"), 0..5).prop_map(|parts| {
            parts.into_iter().map(|(d, space)| format!("{space}{d}")).collect::<Vec<_>>().join(",")
        }),
        "[ -~]{0,120}",
    ];
    let bounds = (1u64..=7 * 86_400, 1u64..=7 * 86_400).prop_map(|(a, b)| (a.min(b), a.max(b)));
    runner(800)
        .run(&(prop::option::of(value), bounds), |(value, (min, max))| {
            let policy = CachePolicy {
                min_ttl: std::time::Duration::from_secs(min),
                max_ttl: std::time::Duration::from_secs(max),
                ..CachePolicy::default()
            };
            let got = ttl(value.as_deref(), &policy);
            prop_assert!(policy.min_ttl <= got && got <= policy.max_ttl, "{value:?} gave {got:?}");
            Ok(())
        })
        .unwrap();
}
