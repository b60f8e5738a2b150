//! Security spec section 4: JWKS key admission (RFC 7517, RFC 7518, RFC 8725 §3.1-3.2).
//!
//! Each bad key is put into the test issuer's key set in place of the key with the same
//! `kid`, so the set still builds: the bad key must be skipped (with a warning naming the
//! reason), a token naming it must get `unknown_key`, and the other keys must still work.

use scopegate::{Algorithm, Authority, KeyRejection, TokenError, testing::TestIssuer};
use serde_json::{Value, json};

use crate::harness::*;

/// Builds an authority from the issuer's keys with `bad` in place of the key with its kid,
/// and returns it with the warnings the build logged.
fn build_with(bad: Value) -> (Authority, String) {
    let mut keys: Vec<Value> = issuer().jwks()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| bad.get("kid").is_none_or(|kid| k["kid"] != *kid))
        .cloned()
        .collect();
    keys.push(bad);
    let (logs, guard) = capture_logs();
    let authority = authority_with_jwks(&keys);
    drop(guard);
    (authority, logs.text())
}

/// `bad` is not admitted for `why`; `token` (naming it) gets `unknown_key`; the rest of the
/// set still verifies.
async fn assert_not_admitted(bad: Value, token: &str, why: KeyRejection) {
    let label = describe(&bad);
    let kid = bad.get("kid").and_then(Value::as_str).unwrap_or_default().to_owned();
    let (authority, logs) = build_with(bad);
    assert!(
        logs.lines().any(|l| l.contains("WARN") && l.contains("JWK not admitted") && l.contains(why.code())),
        "[{label}] no admission warning with reason {}:\n{logs}",
        why.code()
    );
    let app = app_for(authority);
    call(&app, token).await.labelled(label.clone()).badtok(TokenError::UnknownKey);
    let other = if kid == "ed-1" { Algorithm::ES256 } else { Algorithm::EdDSA };
    call(&app, &issuer().access_token().algorithm(other).sign()).await.labelled(label).accept();
}

fn rsa_token() -> String {
    issuer().access_token().sign()
}

fn ec_token() -> String {
    issuer().access_token().algorithm(Algorithm::ES256).sign()
}

fn ed_token() -> String {
    issuer().access_token().algorithm(Algorithm::EdDSA).sign()
}

fn with(mut jwk: Value, name: &str, value: impl Into<Value>) -> Value {
    jwk[name] = value.into();
    jwk
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).expect("randomness");
    bytes
}

/// A random odd RSA "modulus" of exactly `bits` bits.
fn random_modulus(bits: usize) -> String {
    let mut n = random_bytes(bits.div_ceil(8));
    let top = bits - 8 * (n.len() - 1); // bits used in the first byte, 1..=8
    n[0] = (n[0] & (0xff >> (8 - top))) | (1 << (top - 1));
    *n.last_mut().expect("bytes") |= 1;
    b64(n)
}

#[tokio::test]
async fn case_061_use_enc_is_not_admitted() {
    for usage in ["enc", "Sig", "SIG", "", "sig "] {
        assert_not_admitted(with(issuer().jwk("rsa-1"), "use", usage), &rsa_token(), KeyRejection::NotForSignatures)
            .await;
    }
    // `use` absent is admitted (RFC 7517 makes it optional).
    let mut jwk = issuer().jwk("rsa-1");
    jwk.as_object_mut().expect("an object").remove("use");
    expect_accept(&app_for(authority_with_jwks(&[jwk])), &rsa_token()).await;
}

#[tokio::test]
async fn case_062_key_ops_without_verify_is_not_admitted() {
    for ops in [json!(["encrypt"]), json!(["sign"]), json!([]), json!(["wrapKey", "deriveKey"]), json!(["Verify"])] {
        assert_not_admitted(
            with(issuer().jwk("rsa-1"), "key_ops", ops),
            &rsa_token(),
            KeyRejection::NotForVerification,
        )
        .await;
    }
    assert_not_admitted(with(issuer().jwk("rsa-1"), "key_ops", "verify"), &rsa_token(), KeyRejection::Malformed).await;
    for ops in [json!(["verify"]), json!(["sign", "verify"])] {
        let app = app_for(authority_with_jwks(&[with(issuer().jwk("rsa-1"), "key_ops", ops)]));
        expect_accept(&app, &rsa_token()).await;
    }
}

#[tokio::test]
async fn case_063_symmetric_oct_key_is_not_admitted() {
    let secret = random_bytes(32);
    let oct = json!({"kty": "oct", "kid": "hmac-1", "use": "sig", "alg": "HS256", "k": b64(&secret)});
    // The attack: an HS256 token signed with the (now public) secret.
    let forged = issuer().access_token().algorithm(Algorithm::HS256).hmac_secret(secret).kid("hmac-1").sign();
    let (authority, logs) = build_with(oct.clone());
    assert!(logs.contains(KeyRejection::SymmetricKey.code()), "{logs}");
    let app = app_for(authority);
    expect_badtok(&app, &forged, TokenError::AlgorithmNotAllowed).await;
    // A token naming the oct key with an asymmetric alg finds no key.
    assert_not_admitted(oct, &issuer().access_token().kid("hmac-1").sign(), KeyRejection::SymmetricKey).await;
}

#[tokio::test]
async fn case_064_private_key_members_are_not_admitted() {
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        let bad = with(issuer().jwk("rsa-1"), member, "AQAB");
        assert_not_admitted(bad, &rsa_token(), KeyRejection::PrivateKeyMaterial).await;
    }
    let ec = with(issuer().jwk("ec-1"), "d", b64(random_bytes(32)));
    assert_not_admitted(ec, &ec_token(), KeyRejection::PrivateKeyMaterial).await;
    let ed = with(issuer().jwk("ed-1"), "d", b64(random_bytes(32)));
    assert_not_admitted(ed, &ed_token(), KeyRejection::PrivateKeyMaterial).await;
}

#[tokio::test]
async fn case_065_rsa_modulus_under_2048_bits_is_not_admitted() {
    for bits in [512, 1024, 2047] {
        let weak = with(issuer().jwk("rsa-1"), "n", random_modulus(bits));
        assert_not_admitted(weak, &rsa_token(), KeyRejection::WeakRsaKey).await;
    }
}

#[tokio::test]
async fn case_066_rsa_modulus_over_8192_bits_is_not_admitted() {
    // aws_lc_rs verifies 2048..=8192-bit keys, so that is the admitted range.
    for bits in [8193, 16384] {
        let huge = with(issuer().jwk("rsa-1"), "n", random_modulus(bits));
        assert_not_admitted(huge, &rsa_token(), KeyRejection::WeakRsaKey).await;
    }
    // The upper bound itself is admitted: the key is used (and the signature fails).
    let app = app_for(authority_with_jwks(&[with(issuer().jwk("rsa-1"), "n", random_modulus(8192))]));
    expect_badtok(&app, &rsa_token(), TokenError::InvalidSignature).await;
}

#[tokio::test]
async fn case_067_bad_rsa_exponents_are_not_admitted() {
    // 65536 (even), 2 (even), 1, 0, 2^32 + 1 (over 2^32).
    for e in [vec![1u8, 0, 0], vec![2], vec![1], vec![0], vec![1, 0, 0, 0, 1]] {
        let bad = with(issuer().jwk("rsa-1"), "e", b64(&e));
        assert_not_admitted(bad, &rsa_token(), KeyRejection::WeakRsaKey).await;
    }
}

#[tokio::test]
async fn case_068_ec_curve_must_match_coordinates_and_the_point_must_be_on_it() {
    let ec = issuer().jwk("ec-1");
    let x = unb64(ec["x"].as_str().expect("x"));
    let y = unb64(ec["y"].as_str().expect("y"));
    let padded = |c: &[u8]| b64([vec![0u8; 16], c.to_vec()].concat());
    let without_crv = {
        let mut jwk = ec.clone();
        jwk.as_object_mut().expect("an object").remove("crv");
        jwk
    };
    for bad in [
        with(ec.clone(), "crv", "P-384"),
        with(with(with(ec.clone(), "crv", "P-256"), "x", padded(&x)), "y", padded(&y)),
        with(ec.clone(), "crv", "secp256k1"),
        with(ec.clone(), "crv", "P-521"),
        without_crv,
        with(with(ec.clone(), "x", b64(random_bytes(32))), "y", b64(random_bytes(32))),
        with(with(ec.clone(), "x", b64(&y)), "y", b64(&x)),
        with(ec.clone(), "y", b64(random_bytes(32))),
    ] {
        assert_not_admitted(bad, &ec_token(), KeyRejection::InvalidCurve).await;
    }
    // A P-256 key declared for ES384 fits no algorithm.
    assert_not_admitted(with(ec.clone(), "alg", "ES384"), &ec_token(), KeyRejection::AlgorithmMismatch).await;
    // And an ES384 header naming the P-256 key finds no usable key.
    let es384 = issuer().access_token().algorithm(Algorithm::ES384).kid("ec-1").sign();
    expect_badtok(&default_app(), &es384, TokenError::UnknownKey).await;
}

#[tokio::test]
async fn case_069_okp_keys_other_than_ed25519_are_not_admitted() {
    let ed = issuer().jwk("ed-1");
    let without_crv = {
        let mut jwk = ed.clone();
        jwk.as_object_mut().expect("an object").remove("crv");
        jwk
    };
    for bad in [
        with(ed.clone(), "crv", "X25519"),
        with(with(ed.clone(), "crv", "Ed448"), "x", b64(random_bytes(57))),
        with(ed.clone(), "crv", "X448"),
        with(ed.clone(), "crv", "ed25519"),
        without_crv,
    ] {
        assert_not_admitted(bad, &ed_token(), KeyRejection::InvalidCurve).await;
    }
}

#[tokio::test]
async fn case_070_unusable_keys_are_skipped_and_the_rest_is_used() {
    let rsa = issuer().jwk("rsa-1");
    let strip = |mut jwk: Value, member: &str, kid: &str| {
        jwk.as_object_mut().expect("an object").remove(member);
        jwk["kid"] = kid.into();
        jwk
    };
    let bad_keys = vec![
        json!({"kty": "XYZ", "kid": "k-unknown-kty", "use": "sig"}),
        strip(rsa.clone(), "kty", "k-no-kty"),
        strip(rsa.clone(), "e", "k-no-e"),
        strip(rsa.clone(), "n", "k-no-n"),
        strip(issuer().jwk("ec-1"), "y", "k-no-y"),
        strip(issuer().jwk("ed-1"), "x", "k-no-x"),
        with(with(rsa.clone(), "kid", "k-use-5"), "use", 5),
        with(with(rsa.clone(), "kid", "k-alg-5"), "alg", 5),
        with(with(rsa.clone(), "kid", "k-bad-b64"), "n", "!!not base64!!"),
        with(with(rsa.clone(), "kid", "k-alg-unknown"), "alg", "RS999"),
        with(rsa.clone(), "kid", 5),
        json!("a string"),
        json!(42),
        Value::Null,
    ];
    let mut keys = bad_keys;
    keys.extend(issuer().jwks()["keys"].as_array().expect("keys").iter().cloned());
    let (logs, guard) = capture_logs();
    let authority = authority_with_jwks(&keys);
    drop(guard);
    let logs = logs.text();
    for code in ["unsupported_kty", "malformed_jwk", "invalid_key_material", "alg_mismatch"] {
        assert!(logs.contains(code), "no warning with {code}:\n{logs}");
    }
    assert_eq!(logs.matches("JWK not admitted").count(), 14, "{logs}");
    let app = app_for(authority);
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        call(&app, &issuer().access_token().algorithm(alg).sign()).await.labelled(alg.as_str()).accept();
    }
    for kid in ["k-unknown-kty", "k-no-kty", "k-no-e", "k-no-n", "k-use-5", "k-alg-5", "k-bad-b64", "k-alg-unknown"] {
        call(&app, &issuer().access_token().kid(kid).sign()).await.labelled(kid).badtok(TokenError::UnknownKey);
    }
}

#[tokio::test]
async fn case_071_duplicate_kids_resolve_deterministically() {
    // Policy (spec case 71): keys sharing a kid are filtered by the header alg; at most two
    // remaining candidates are tried; more than two is refused.
    let ours = with(issuer().jwk("rsa-1"), "kid", "dup");
    let theirs = with(other_issuer().jwk("rsa-1"), "kid", "dup");
    let app = app_for(authority_with_jwks(&[ours.clone(), theirs.clone(), issuer().jwk("ed-1")]));
    for signer in [issuer(), other_issuer()] {
        call(&app, &signer.access_token().kid("dup").sign()).await.accept();
    }
    let stranger = TestIssuer::with_fresh_keys(ISS);
    call(&app, &stranger.access_token().kid("dup").sign()).await.badtok(TokenError::InvalidSignature);

    // Three RSA keys with one kid: refused, whoever signed.
    let third = with(stranger.jwk("rsa-1"), "kid", "dup");
    let app = app_for(authority_with_jwks(&[ours.clone(), theirs, third]));
    for signer in [issuer(), other_issuer(), stranger] {
        call(&app, &signer.access_token().kid("dup").sign()).await.badtok(TokenError::UnknownKey);
    }

    // Different key types sharing a kid: the alg picks the one that fits.
    let app = app_for(authority_with_jwks(&[ours, with(issuer().jwk("ec-1"), "kid", "dup")]));
    call(&app, &issuer().access_token().kid("dup").sign()).await.accept();
    call(&app, &issuer().access_token().algorithm(Algorithm::ES256).kid("dup").sign()).await.accept();
    call(&app, &issuer().access_token().algorithm(Algorithm::EdDSA).kid("dup").sign())
        .await
        .badtok(TokenError::UnknownKey);
}

#[tokio::test]
async fn case_072_a_key_set_with_no_admissible_key_is_refused() {
    // For a static key set this is a configuration error at build time. Keeping the last
    // good set after a bad fetch belongs to the JWKS source (spec section 10).
    for keys in [
        json!({"keys": [with(issuer().jwk("rsa-1"), "use", "enc"), json!({"kty": "oct", "k": "c2VjcmV0"})]}),
        json!({"keys": []}),
    ] {
        let error = Authority::builder()
            .issuer(ISS)
            .audience(AUD)
            .static_jwks(keys.to_string())
            .build()
            .expect_err("no usable key");
        assert_eq!(error.setting(), "static_jwks");
        assert!(error.to_string().contains("no usable signing key"), "{error}");
    }
    for not_a_set in [r#"[]"#, r#"{"keys": {}}"#, r#"{"kty":"RSA"}"#, "not json"] {
        let error = Authority::builder().issuer(ISS).audience(AUD).static_jwks(not_a_set).build().expect_err("no set");
        assert_eq!(error.setting(), "static_jwks");
    }
}
