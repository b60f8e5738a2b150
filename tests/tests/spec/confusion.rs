//! Security spec section 7: ID-token and other-JWT confusion (RFC 9068 §5; RFC 8725 §2.8,
//! §3.11-3.12; OIDC Core §2, §3.1.3.6).

use scopegate::{Algorithm, Authority, Profile, TokenError};
use serde_json::json;

use crate::harness::*;

const SPA: &str = "spa-client";

fn compatible() -> Authority {
    issuer().authority_builder(AUD).profile(Profile::Compatible).build().expect("compatible profile")
}

#[tokio::test]
async fn case_119_genuine_id_token_is_refused_as_an_id_token() {
    let app = default_app();
    let id_token = issuer().id_token(SPA).sign();
    expect_badtok(&app, &id_token, TokenError::IdToken).await;
    with_token(&app, "/appointments", &id_token).await.badtok(TokenError::IdToken);
    // With scopes added by a confused client, and with every key type.
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let token = issuer().id_token(SPA).algorithm(alg).scope(READ).sign();
        call(&app, &token).await.labelled(alg.as_str()).badtok(TokenError::IdToken);
    }
}

#[tokio::test]
async fn case_120_id_token_is_refused_even_when_the_audience_equals_the_client_id() {
    // The realm defaults to the (first) audience.
    let app = app_for(issuer().authority(SPA));
    call(&app, &issuer().id_token(SPA).sign()).await.badtok_in(SPA, TokenError::IdToken);
    // Without nonce and at_hash (a code-flow ID token): typ alone blocks it.
    let bare = issuer().id_token(SPA).without_claim("nonce").without_claim("at_hash").sign();
    call(&app, &bare).await.badtok_in(SPA, TokenError::IdToken);
}

#[tokio::test]
async fn case_121_untyped_id_token_is_refused() {
    let app = default_app();
    let token = issuer().id_token(SPA).without_header("typ").sign();
    expect_badtok(&app, &token, TokenError::IdToken).await;
    let token = issuer().id_token(SPA).without_header("typ").audience(AUD).sign();
    expect_badtok(&app, &token, TokenError::IdToken).await;
}

#[tokio::test]
async fn case_122_at_jwt_with_id_token_claims_is_refused_by_default() {
    let app = default_app();
    for claim in ["nonce", "at_hash", "c_hash"] {
        let token = issuer().access_token().claim(claim, "n-0S6_WzA2Mj").sign();
        call(&app, &token).await.labelled(claim).badtok(TokenError::IdToken);
    }
    // Configurable.
    let lenient = app_lenient();
    for claim in ["nonce", "at_hash", "c_hash"] {
        call(&lenient, &issuer().access_token().claim(claim, "x").sign()).await.labelled(claim).accept();
    }
}

fn app_lenient() -> axum::Router {
    app_for(issuer().authority_builder(AUD).reject_id_token_claims(false).build().expect("lenient"))
}

#[tokio::test]
async fn case_123_back_channel_logout_token_is_refused() {
    let token = issuer()
        .access_token()
        .typ("logout+jwt")
        .without_claim("exp")
        .without_claim("client_id")
        .audience(AUD)
        .claim("sid", "08a5019c-17e1-4977-8f42-65a12843ea02")
        .claim("events", json!({"http://schemas.openid.net/event/backchannel-logout": {}}))
        .sign();
    expect_badtok(&default_app(), &token, TokenError::NotAnAccessToken).await;
}

#[tokio::test]
async fn case_124_signed_userinfo_and_jarm_responses_are_refused() {
    // Both are typed `JWT` and carry no access-token claim (client_id, scope), so the
    // verifier describes them as ID-token look-alikes; aud is the client in any case.
    let app = default_app();
    let userinfo = issuer()
        .id_token(SPA)
        .without_claim("nonce")
        .without_claim("at_hash")
        .without_claim("auth_time")
        .claim("name", "Jane Doe")
        .claim("email", "jane@example.test")
        .sign();
    expect_badtok(&app, &userinfo, TokenError::IdToken).await;
    let jarm = issuer()
        .id_token(SPA)
        .without_claim("nonce")
        .without_claim("at_hash")
        .without_claim("sub")
        .claim("code", "SplxlOBeZQQYbYS6WxSbIA")
        .claim("state", "af0ifjsldkj")
        .sign();
    expect_badtok(&app, &jarm, TokenError::IdToken).await;
    // The same with the API as audience: still refused (typ).
    let aimed = issuer().id_token(SPA).without_claim("nonce").without_claim("at_hash").audience(AUD).sign();
    expect_badtok(&app, &aimed, TokenError::IdToken).await;
}

#[tokio::test]
async fn case_125_keycloak_refresh_token_is_refused() {
    let app = default_app();
    let hs = issuer()
        .access_token()
        .algorithm(Algorithm::HS256)
        .hmac_secret(vec![9u8; 32])
        .typ("JWT")
        .claim("typ", "Refresh")
        .sign();
    expect_badtok(&app, &hs, TokenError::AlgorithmNotAllowed).await;
    // Even if it were signed with the realm's RSA key and typed as an access token.
    for typ in ["JWT", "at+jwt"] {
        let token = issuer().access_token().typ(typ).claim("typ", "Refresh").sign();
        call(&app, &token).await.labelled(typ).badtok(TokenError::NotAnAccessToken);
    }
}

#[tokio::test]
async fn case_126_compatible_profile_relaxes_typ_only_for_access_token_shaped_claims() {
    let app = app_for(compatible());
    for typ in [Some("JWT"), Some("jwt"), None, Some("at+jwt")] {
        let token = match typ {
            Some(typ) => issuer().access_token().typ(typ),
            None => issuer().access_token().without_header("typ"),
        };
        call(&app, &token.sign()).await.labelled(format!("{typ:?}")).accept();
    }
    // azp or cid name the client when client_id is absent; jti becomes optional.
    for name in ["azp", "cid"] {
        let token = issuer().access_token().typ("JWT").without_claim("client_id").claim(name, "vendor-client");
        let body = call(&app, &token.without_claim("jti").sign()).await.labelled(name).accept();
        assert_eq!(body["client_id"], "vendor-client");
    }
    // Every condition must hold.
    let jwt = || issuer().access_token().typ("JWT");
    call(&app, &jwt().without_claim("client_id").sign()).await.badtok(TokenError::InvalidClaim);
    for claim in ["nonce", "at_hash", "c_hash"] {
        call(&app, &jwt().claim(claim, "x").sign()).await.labelled(claim).badtok(TokenError::IdToken);
    }
    call(&app, &jwt().claim("typ", "ID").sign()).await.badtok(TokenError::IdToken);
    call(&app, &jwt().audience("billing-api").sign()).await.badtok(TokenError::InvalidAudience);
    // Only `JWT` and absent are relaxed; other types stay refused.
    call(&app, &issuer().access_token().typ("logout+jwt").sign()).await.badtok(TokenError::NotAnAccessToken);
}

#[tokio::test]
async fn case_127_compatible_profile_still_refuses_id_tokens() {
    let app = app_for(compatible());
    // With nonce/at_hash: the ID-token markers refuse it.
    expect_badtok(&app, &issuer().id_token(SPA).sign(), TokenError::IdToken).await;
    // A code-flow ID token without them: `azp` names a client, so the audience decides.
    let bare = issuer().id_token(SPA).without_claim("nonce").without_claim("at_hash").sign();
    expect_badtok(&app, &bare, TokenError::InvalidAudience).await;
}

#[tokio::test]
async fn case_128_compatible_profile_is_off_by_default_and_warns() {
    let token = issuer().access_token().typ("JWT").sign();
    expect_badtok(&default_app(), &token, TokenError::NotAnAccessToken).await;
    let (logs, guard) = capture_logs();
    let _authority = compatible();
    drop(guard);
    let text = logs.text();
    assert!(text.contains("WARN") && text.contains("compatible token profile enabled"), "{text}");
    let (logs, guard) = capture_logs();
    let _authority = authority();
    drop(guard);
    assert!(!logs.text().contains("compatible"), "{}", logs.text());
}

#[tokio::test]
async fn case_129_private_key_jwt_client_assertion_is_refused() {
    let app = default_app();
    let assertion = |typ: &str| {
        issuer()
            .access_token()
            .typ(typ)
            .claim("iss", SPA)
            .subject(SPA)
            .audience(format!("{ISS}token"))
            .without_claim("client_id")
    };
    // Typed `JWT`, no client_id or scope: refused by type (and described as an ID-token
    // look-alike).
    expect_badtok(&app, &assertion("JWT").sign(), TokenError::IdToken).await;
    expect_badtok(&app, &assertion("client-authentication+jwt").sign(), TokenError::NotAnAccessToken).await;
    // Mis-typed as an access token: the issuer check refuses it, then the audience.
    expect_badtok(&app, &assertion("at+jwt").sign(), TokenError::InvalidIssuer).await;
    let with_iss = assertion("at+jwt").claim("iss", ISS).client_id(SPA).sign();
    expect_badtok(&app, &with_iss, TokenError::InvalidAudience).await;
}

#[tokio::test]
async fn case_130_dpop_proof_sent_as_bearer_is_refused() {
    let app = default_app();
    let attacker = other_issuer();
    let proof = attacker
        .access_token()
        .algorithm(Algorithm::ES256)
        .typ("dpop+jwt")
        .without_header("kid")
        .header("jwk", attacker.jwk("ec-1"))
        .raw_claims(&format!(
            r#"{{"jti":"e1j3V_bKic8-LAEB","htm":"GET","htu":"https://api.example.test/me","iat":{}}}"#,
            now()
        ))
        .sign();
    expect_badtok(&app, &proof, TokenError::UnsupportedHeader).await;
    // Without the embedded key it is still the wrong type.
    let keyless = attacker.access_token().algorithm(Algorithm::ES256).typ("dpop+jwt").sign();
    expect_badtok(&app, &keyless, TokenError::NotAnAccessToken).await;
}
