//! Security spec section 3: the JOSE header (RFC 7515 §4.1; RFC 8725 §3.1, §3.10, §3.11).

use std::net::TcpListener;

use scopegate::{Algorithm, Authority, TokenError};
use serde_json::{Value, json};

use crate::harness::*;

// --- 3a. alg -------------------------------------------------------------------------

#[tokio::test]
async fn case_028_missing_alg_is_refused() {
    let app = default_app();
    for header in [r#"{"typ":"at+jwt","kid":"rsa-1"}"#, r#"{"alg":null,"typ":"at+jwt","kid":"rsa-1"}"#] {
        let token = issuer().access_token().raw_header(header).sign();
        call(&app, &token).await.labelled(header).badtok(TokenError::AlgorithmNotAllowed);
    }
    for alg in [json!(256), json!(["RS256"]), json!({"name": "RS256"}), json!(true)] {
        let token = issuer().access_token().header("alg", alg.clone()).sign();
        call(&app, &token).await.labelled(alg.to_string()).badtok(TokenError::AlgorithmNotAllowed);
    }
}

#[tokio::test]
async fn case_029_alg_none_is_refused_in_any_spelling() {
    let app = default_app();
    for none in ["none", "None", "NONE", "nOnE"] {
        let signed = issuer().access_token().header("alg", none).sign();
        call(&app, &signed).await.labelled(none).badtok(TokenError::AlgorithmNotAllowed);
        // Unsigned: `header.payload.` (an empty signature is refused as malformed first).
        let (input, _) = signed.rsplit_once('.').expect("a JWS");
        call(&app, &format!("{input}.")).await.labelled(none).badtok(TokenError::Malformed);
        // A one-byte "signature".
        call(&app, &format!("{input}.AA")).await.labelled(none).badtok(TokenError::AlgorithmNotAllowed);
    }
}

#[tokio::test]
async fn case_030_alg_names_are_case_sensitive() {
    let app = default_app();
    for alg in ["rs256", "Rs256", "RS256 ", " RS256", "eddsa", "EDDSA", "es256"] {
        let token = issuer().access_token().header("alg", alg).sign();
        call(&app, &token).await.labelled(alg).badtok(TokenError::AlgorithmNotAllowed);
    }
}

#[tokio::test]
async fn case_031_hmac_algorithms_are_refused_for_a_key_set_issuer() {
    let app = default_app();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let token = issuer().access_token().algorithm(alg).hmac_secret(vec![7u8; 64]).sign();
        call(&app, &token).await.labelled(alg.as_str()).badtok(TokenError::AlgorithmNotAllowed);
    }
    // The classic confusion: HS256 with the issuer's RSA public key as the HMAC secret,
    // against a JWKS-configured and a PEM-configured authority, with and without a kid.
    let pem = issuer().public_key_pem("rsa-1");
    let n = issuer().jwk("rsa-1")["n"].as_str().expect("n").to_owned();
    let pem_authority =
        Authority::builder().issuer(ISS).audience(AUD).public_key_pem(pem.clone()).build().expect("PEM");
    let pem_app = app_for(pem_authority);
    call(&pem_app, &issuer().access_token().without_header("kid").sign()).await.accept();
    for secret in [pem.into_bytes(), n.into_bytes(), unb64(issuer().jwk("rsa-1")["n"].as_str().expect("n"))] {
        let forged = issuer().access_token().algorithm(Algorithm::HS256).hmac_secret(secret.clone());
        let with_kid = forged.clone().kid("rsa-1").sign();
        let without_kid = forged.sign();
        for router in [&app, &pem_app] {
            call(router, &with_kid).await.badtok(TokenError::AlgorithmNotAllowed);
            call(router, &without_kid).await.badtok(TokenError::AlgorithmNotAllowed);
        }
    }
    // And the builder refuses to list an HMAC algorithm next to a key set.
    let error =
        issuer().authority_builder(AUD).algorithms([Algorithm::RS256, Algorithm::HS256]).build().expect_err("HS*");
    assert_eq!(error.setting(), "algorithms");
}

#[tokio::test]
async fn case_032_alg_outside_the_configured_allowlist_is_refused() {
    let authority =
        issuer().authority_builder(AUD).algorithms([Algorithm::RS256, Algorithm::ES256]).build().expect("allowlist");
    let app = app_for(authority);
    for alg in [Algorithm::RS256, Algorithm::ES256] {
        call(&app, &issuer().access_token().algorithm(alg).sign()).await.labelled(alg.as_str()).accept();
    }
    for alg in [Algorithm::PS512, Algorithm::PS256, Algorithm::RS384, Algorithm::RS512, Algorithm::EdDSA] {
        let token = issuer().access_token().algorithm(alg).sign();
        call(&app, &token).await.labelled(alg.as_str()).badtok(TokenError::AlgorithmNotAllowed);
    }
}

#[tokio::test]
async fn case_033_alg_must_be_the_keys_declared_alg() {
    let mut rsa = issuer().jwk("rsa-1");
    rsa["alg"] = "RS512".into();
    let app = app_for(authority_with_jwks(&[rsa, issuer().jwk("ec-1")]));
    call(&app, &issuer().access_token().algorithm(Algorithm::RS512).sign()).await.accept();
    for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::PS256, Algorithm::PS512] {
        let token = issuer().access_token().algorithm(alg).sign();
        call(&app, &token).await.labelled(alg.as_str()).badtok(TokenError::UnknownKey);
    }
}

#[tokio::test]
async fn case_034_alg_family_must_match_the_key_type() {
    let app = default_app();
    let cases = [
        (Algorithm::ES256, "rsa-1"),
        (Algorithm::EdDSA, "rsa-1"),
        (Algorithm::RS256, "ec-1"),
        (Algorithm::PS256, "ed-1"),
        (Algorithm::ES256, "ed-1"),
        (Algorithm::EdDSA, "ec-1"),
    ];
    for (alg, kid) in cases {
        let token = issuer().access_token().algorithm(alg).kid(kid).sign();
        call(&app, &token).await.labelled(format!("{alg} with {kid}")).badtok(TokenError::UnknownKey);
    }
}

#[tokio::test]
async fn case_035_unsupported_algorithms_are_refused() {
    // ES512 issuers cannot be served: scopegate has no ES512 support.
    let app = default_app();
    for alg in ["ES512", "ES256K", "RSA-OAEP", "dir", "RS1", "HS1", "Ed25519", "ECDH-ES"] {
        let token = issuer().access_token().header("alg", alg).sign();
        call(&app, &token).await.labelled(alg).badtok(TokenError::AlgorithmNotAllowed);
    }
}

#[tokio::test]
async fn case_036_rs256_and_every_supported_algorithm_is_accepted() {
    let app = default_app();
    call(&app, &issuer().access_token().sign()).await.accept();
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        call(&app, &issuer().access_token().algorithm(alg).sign()).await.labelled(alg.as_str()).accept();
    }
}

// --- 3b. typ -------------------------------------------------------------------------

#[tokio::test]
async fn case_037_typ_at_jwt_is_accepted() {
    expect_accept(&default_app(), &issuer().access_token().typ("at+jwt").sign()).await;
}

#[tokio::test]
async fn case_038_typ_application_at_jwt_is_accepted() {
    expect_accept(&default_app(), &issuer().access_token().typ("application/at+jwt").sign()).await;
}

#[tokio::test]
async fn case_039_typ_compares_case_insensitively() {
    let app = default_app();
    for typ in ["AT+JWT", "At+Jwt", "Application/At+Jwt", "APPLICATION/AT+JWT"] {
        call(&app, &issuer().access_token().typ(typ).sign()).await.labelled(typ).accept();
    }
}

#[tokio::test]
async fn case_040_typ_jwt_is_refused() {
    // An access-token claim set (client_id, scope) typed `JWT`: not an access token. The
    // ID-token variant is case 119.
    let app = default_app();
    for typ in ["JWT", "jwt", "application/jwt", "application/JWT"] {
        let token = issuer().access_token().typ(typ).scope(READ).sign();
        call(&app, &token).await.labelled(typ).badtok(TokenError::NotAnAccessToken);
    }
}

#[tokio::test]
async fn case_041_missing_typ_is_refused_in_the_default_profile() {
    let token = issuer().access_token().without_header("typ").scope(READ).sign();
    expect_badtok(&default_app(), &token, TokenError::NotAnAccessToken).await;
}

#[tokio::test]
async fn case_042_typ_that_is_not_a_string_is_refused() {
    let app = default_app();
    for typ in [json!(5), Value::Null, json!(["at+jwt"]), json!({"typ": "at+jwt"}), json!(true)] {
        let token = issuer().access_token().header("typ", typ.clone()).sign();
        call(&app, &token).await.labelled(typ.to_string()).badtok(TokenError::Malformed);
    }
}

#[tokio::test]
async fn case_043_typ_is_compared_exactly_after_case_folding() {
    let app = default_app();
    for typ in [
        "at+jwt ",
        " at+jwt",
        "at+jwt;v=1",
        "at+jwt\u{0}",
        "at+jwt\n",
        "application/at+jwt; charset=utf-8",
        "application/application/at+jwt",
        "at+jwt+jwt",
        "at_jwt",
        "аt+jwt", // Cyrillic а
    ] {
        let token = issuer().access_token().typ(typ).sign();
        call(&app, &token).await.labelled(format!("{typ:?}")).badtok(TokenError::NotAnAccessToken);
    }
}

#[tokio::test]
async fn case_044_other_registered_jwt_types_are_refused() {
    let app = default_app();
    for typ in [
        "logout+jwt",
        "token-introspection+jwt",
        "application/token-introspection+jwt",
        "secevent+jwt",
        "dpop+jwt",
        "oauth-authz-req+jwt",
        "client-authentication+jwt",
        "entity-statement+jwt",
        "JOSE",
        "JOSE+JSON",
    ] {
        let token = issuer().access_token().typ(typ).scope(READ).sign();
        call(&app, &token).await.labelled(typ).badtok(TokenError::NotAnAccessToken);
    }
}

// --- 3c. crit, b64, cty, enc, zip ----------------------------------------------------

async fn expect_unsupported_header(members: &[(&str, Value)]) {
    let app = default_app();
    let mut token = issuer().access_token();
    for (name, value) in members {
        token = token.header(name, value.clone());
    }
    call(&app, &token.sign()).await.labelled(format!("{members:?}")).badtok(TokenError::UnsupportedHeader);
}

#[tokio::test]
async fn case_045_unknown_critical_extension_is_refused() {
    expect_unsupported_header(&[("crit", json!(["urn:x-unknown"])), ("urn:x-unknown", json!(true))]).await;
    expect_unsupported_header(&[("crit", json!(["exp"])), ("exp", json!(now() + 60))]).await;
}

#[tokio::test]
async fn case_046_b64_false_is_refused() {
    expect_unsupported_header(&[("crit", json!(["b64"])), ("b64", json!(false))]).await;
    // `b64` without `crit`, either value: refused as well.
    expect_unsupported_header(&[("b64", json!(false))]).await;
    expect_unsupported_header(&[("b64", json!(true))]).await;
}

#[tokio::test]
async fn case_047_every_crit_form_is_refused() {
    for crit in [json!([]), json!("x"), json!(["alg"]), json!(["x", "x"]), json!(["absent"]), Value::Null, json!(5)] {
        expect_unsupported_header(&[("crit", crit), ("x", json!(1))]).await;
    }
}

#[tokio::test]
async fn case_048_nested_jwt_cty_is_refused() {
    for cty in ["JWT", "jwt", "application/jwt", "at+jwt", "json"] {
        expect_unsupported_header(&[("cty", json!(cty))]).await;
    }
}

#[tokio::test]
async fn case_049_jwe_parameters_in_a_jws_are_refused() {
    expect_unsupported_header(&[("enc", json!("A256GCM"))]).await;
    expect_unsupported_header(&[("zip", json!("DEF"))]).await;
    expect_unsupported_header(&[("enc", json!("A128CBC-HS256")), ("zip", json!("DEF"))]).await;
}

#[tokio::test]
async fn case_050_unknown_non_critical_header_members_are_ignored() {
    let token = issuer()
        .access_token()
        .header("x-foo", "bar")
        .header("x-nested", json!({"a": [1, 2, {"b": null}]}))
        .header("iat", now())
        .sign();
    expect_accept(&default_app(), &token).await;
}

// --- 3d. key-carrying header parameters -------------------------------------------------

#[tokio::test]
async fn case_051_embedded_jwk_is_refused() {
    let app = default_app();
    let attacker = other_issuer();
    // Signed by the attacker, with the attacker's key embedded (and the kid it names).
    for kid in ["rsa-1", "attacker"] {
        let token = attacker.access_token().kid(kid).header("jwk", attacker.jwk("rsa-1")).sign();
        call(&app, &token).await.labelled(kid).badtok(TokenError::UnsupportedHeader);
    }
    // Even the issuer's own key, embedded in a token the issuer really signed.
    let token = issuer().access_token().header("jwk", issuer().jwk("rsa-1")).sign();
    expect_badtok(&app, &token, TokenError::UnsupportedHeader).await;
}

#[tokio::test]
async fn case_052_jku_and_x5u_are_refused_without_any_fetch() {
    let trap = TcpListener::bind("127.0.0.1:0").expect("a loopback trap");
    trap.set_nonblocking(true).expect("non-blocking");
    let base = format!("http://{}", trap.local_addr().expect("an address"));
    let app = default_app();
    for (name, path) in [("jku", "/jwks.json"), ("x5u", "/cert.pem")] {
        // Validly signed by the issuer, and forged by an attacker.
        for token in [issuer().access_token(), other_issuer().access_token()] {
            let token = token.header(name, format!("{base}{path}")).sign();
            call(&app, &token).await.labelled(name).badtok(TokenError::UnsupportedHeader);
        }
    }
    match trap.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the verifier connected to the URL in the token: {other:?}"),
    }
}

#[tokio::test]
async fn case_053_x5c_is_never_used_to_select_or_trust_a_key() {
    let app = default_app();
    let chain = json!(["MIIBszCCAVmgAwIBAgIUXdcb0Jz8y7OkF8xxfmhpxL8Vd5kwCgYIKoZIzj0EAwIw"]);
    let forged = other_issuer().access_token().header("x5c", chain.clone()).sign();
    expect_badtok(&app, &forged, TokenError::InvalidSignature).await;
    let forged_no_kid = other_issuer().access_token().without_header("kid").header("x5c", chain.clone()).sign();
    expect_badtok(&app, &forged_no_kid, TokenError::InvalidSignature).await;
    // With a signature from the configured key, x5c is simply ignored.
    expect_accept(&app, &issuer().access_token().header("x5c", chain).sign()).await;
}

#[tokio::test]
async fn case_054_x5t_thumbprints_are_ignored() {
    let token = issuer()
        .access_token()
        .header("x5t", "dGhpcyBpcyBub3QgYSByZWFsIHRodW1icHJpbnQ")
        .header("x5t#S256", "bm90IGEgcmVhbCB0aHVtYnByaW50IGVpdGhlciwgcmVhbGx5")
        .sign();
    expect_accept(&default_app(), &token).await;
}

// --- 3e. kid -------------------------------------------------------------------------

#[tokio::test]
async fn case_055_kid_matching_exactly_selects_the_key() {
    let app = default_app();
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        call(&app, &issuer().access_token().algorithm(alg).sign()).await.labelled(alg.as_str()).accept();
    }
    // Any kid string works when it matches byte for byte.
    let mut jwk = issuer().jwk("ec-1");
    jwk["kid"] = "2024-01/ключ:1".into();
    let app = app_for(authority_with_jwks(&[jwk]));
    let token = issuer().access_token().algorithm(Algorithm::ES256).kid("2024-01/ключ:1").sign();
    expect_accept(&app, &token).await;
}

#[tokio::test]
async fn case_056_hostile_kids_are_plain_map_misses() {
    let app = default_app();
    for kid in [
        "../../../../dev/null",
        "' OR '1'='1",
        "file:///etc/passwd",
        "http://127.0.0.1:9/jwks.json",
        "rsa-1\u{0}",
        "rsa-1/../rsa-1",
        "",
    ] {
        let token = issuer().access_token().kid(kid).sign();
        call(&app, &token).await.labelled(format!("{kid:?}")).badtok(TokenError::UnknownKey);
    }
}

#[tokio::test]
async fn case_057_kid_over_256_bytes_is_refused_before_any_key_work() {
    let authority = authority();
    let app = app_for(authority.clone());
    let before = authority.stats().signatures_checked;
    for kid in ["k".repeat(257), "é".repeat(129), "k".repeat(1_000)] {
        let token = issuer().access_token().kid(&kid).sign();
        call(&app, &token).await.labelled(format!("{} bytes", kid.len())).badtok(TokenError::Malformed);
    }
    assert_eq!(authority.stats().signatures_checked, before, "no signature was checked");
    // 256 bytes is still a kid (that no key has).
    expect_badtok(&app, &issuer().access_token().kid(&"k".repeat(256)).sign(), TokenError::UnknownKey).await;
    // That no JWKS refresh follows is observed with keys over HTTP, in the jwks suite
    // (`case_057_kid_over_256_bytes_triggers_no_jwks_refresh`).
}

#[tokio::test]
async fn case_058_kid_that_is_not_a_string_is_refused() {
    let app = default_app();
    for kid in [json!(1), json!({"kid": "rsa-1"}), json!(["rsa-1"]), Value::Null, json!(true)] {
        let token = issuer().access_token().header("kid", kid.clone()).sign();
        call(&app, &token).await.labelled(kid.to_string()).badtok(TokenError::Malformed);
    }
}

#[tokio::test]
async fn case_059_kid_is_case_sensitive() {
    let app = default_app();
    for kid in ["RSA-1", "Rsa-1", "rsa-1 ", " rsa-1", "EC-1"] {
        let token = issuer().access_token().kid(kid).sign();
        call(&app, &token).await.labelled(kid).badtok(TokenError::UnknownKey);
    }
}

#[tokio::test]
async fn case_060_no_kid_uses_the_single_compatible_key_only() {
    // Policy (spec case 60): no kid and exactly one key compatible with `alg` → that key;
    // several compatible keys → refused (no try-all mode).
    let app = default_app();
    for alg in [Algorithm::RS256, Algorithm::PS384, Algorithm::ES256, Algorithm::EdDSA] {
        let token = issuer().access_token().algorithm(alg).without_header("kid").sign();
        call(&app, &token).await.labelled(alg.as_str()).accept();
    }
    // Without a kid the wrong key is never "found": the only RSA key fails the signature.
    let forged = other_issuer().access_token().without_header("kid").sign();
    expect_badtok(&app, &forged, TokenError::InvalidSignature).await;

    let mut second_rsa = other_issuer().jwk("rsa-1");
    second_rsa["kid"] = "rsa-2".into();
    let authority = authority_with_jwks(&[issuer().jwk("rsa-1"), second_rsa, issuer().jwk("ec-1")]);
    let app = app_for(authority.clone());
    for signer in [issuer(), other_issuer()] {
        let token = signer.access_token().without_header("kid").sign();
        call(&app, &token).await.badtok(TokenError::UnknownKey);
    }
    assert_eq!(authority.stats().signatures_checked, 0, "ambiguous: nothing was tried");
    // The EC key is still unambiguous, and kids still select.
    call(&app, &issuer().access_token().algorithm(Algorithm::ES256).without_header("kid").sign()).await.accept();
    call(&app, &other_issuer().access_token().kid("rsa-2").sign()).await.accept();
}
