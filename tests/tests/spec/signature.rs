//! Security spec section 5: signature verification edge cases (RFC 7515 §5.2; RFC 7518 §3).

use num_bigint::BigUint;
use scopegate::{Algorithm, TokenError};
use serde_json::json;

use crate::harness::*;

/// The order n of the P-256 group.
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

fn hex(text: &str) -> BigUint {
    BigUint::parse_bytes(text.as_bytes(), 16).expect("hex")
}

/// `value` as exactly `len` big-endian bytes.
fn fixed(value: &BigUint, len: usize) -> Vec<u8> {
    let bytes = value.to_bytes_be();
    assert!(bytes.len() <= len);
    [vec![0u8; len - bytes.len()], bytes].concat()
}

#[tokio::test]
async fn case_073_only_a_valid_signature_with_the_admitted_key_passes() {
    let app = default_app();
    for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
        let builder = issuer().access_token().algorithm(alg);
        call(&app, &builder.sign()).await.labelled(alg.as_str()).accept();
        // One flipped bit anywhere in the signature.
        let (input, signature) = builder.sign_parts();
        for index in [0, signature.len() / 2, signature.len() - 1] {
            let mut tampered = signature.clone();
            tampered[index] ^= 0x01;
            let token = format!("{input}.{}", b64(&tampered));
            call(&app, &token).await.labelled(format!("{alg} bit {index}")).badtok(TokenError::InvalidSignature);
        }
        // A valid signature by another key with the same kid (a wrong EC key, [probe G06]).
        let forged = other_issuer().access_token().algorithm(alg).sign();
        call(&app, &forged).await.labelled(format!("{alg} other key")).badtok(TokenError::InvalidSignature);
        // A signature over other content (payload swapped in from another token).
        let [h, _, s] = segments(&builder.sign());
        let [_, p, _] = segments(&issuer().access_token().subject("admin").sign());
        call(&app, &format!("{h}.{p}.{s}"))
            .await
            .labelled(format!("{alg} swapped"))
            .badtok(TokenError::InvalidSignature);
    }
}

#[tokio::test]
async fn case_074_psychic_signatures_are_refused() {
    // CVE-2022-21449: r = s = 0, and r = s = n.
    let app = default_app();
    let token = issuer().access_token().algorithm(Algorithm::ES256).sign();
    let n = fixed(&hex(P256_N), 32);
    for (label, signature) in [
        ("r=s=0", vec![0u8; 64]),
        ("r=s=n", [n.clone(), n.clone()].concat()),
        ("r=0", [vec![0u8; 32], n.clone()].concat()),
        ("s=n", [n.clone(), n].concat()),
    ] {
        call(&app, &with_signature(&token, &signature)).await.labelled(label).badtok(TokenError::InvalidSignature);
    }
}

/// A DER INTEGER for a big-endian magnitude.
fn der_integer(magnitude: &[u8]) -> Vec<u8> {
    let start = magnitude.iter().position(|&b| b != 0).unwrap_or(magnitude.len());
    let mut body = magnitude[start..].to_vec();
    if body.first().is_none_or(|b| b & 0x80 != 0) {
        body.insert(0, 0);
    }
    [vec![0x02, u8::try_from(body.len()).expect("short")], body].concat()
}

#[tokio::test]
async fn case_075_der_encoded_ecdsa_signature_is_refused() {
    let app = default_app();
    let builder = issuer().access_token().algorithm(Algorithm::ES256);
    let (input, raw) = builder.sign_parts();
    assert_eq!(raw.len(), 64);
    let body = [der_integer(&raw[..32]), der_integer(&raw[32..])].concat();
    let der = [vec![0x30, u8::try_from(body.len()).expect("short")], body].concat();
    let token = format!("{input}.{}", b64(&der));
    expect_badtok(&app, &token, TokenError::InvalidSignature).await;
    // Raw R||S with a byte too many or too few.
    for bad in [[raw.clone(), vec![0]].concat(), raw[..63].to_vec(), [vec![0], raw.clone()].concat()] {
        expect_badtok(&app, &format!("{input}.{}", b64(&bad)), TokenError::InvalidSignature).await;
    }
}

#[tokio::test]
async fn case_076_ecdsa_signatures_are_malleable_so_jti_is_the_identity() {
    // Policy (spec case 76): (r, n - s) verifies as well as (r, s) on every backend. The
    // token string is therefore never an identity: the handler gets `jti`, which both
    // strings share.
    let app = default_app();
    let builder = issuer().access_token().algorithm(Algorithm::ES256);
    let (input, raw) = builder.sign_parts();
    let s = BigUint::from_bytes_be(&raw[32..]);
    let flipped = [raw[..32].to_vec(), fixed(&(hex(P256_N) - s), 32)].concat();
    assert_ne!(flipped, raw);
    let original = call(&app, &format!("{input}.{}", b64(&raw))).await.accept();
    let malleated = call(&app, &format!("{input}.{}", b64(&flipped))).await.accept();
    assert_eq!(original["jti"], malleated["jti"]);
    assert!(original["jti"].is_string());
}

/// A 2048-bit RSA test key with e = 3, fixed so the vectors below are regression vectors.
/// Generated with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048
/// -pkeyopt rsa_keygen_pubexp:3`. Test material only.
const E3_N: [&str; 6] = [
    "9e43a3f6a39fe2c43f6176ceb7476baead77387d674907383626d0e5c846758c554eec99955b9ffde7f932c9ca30acfa",
    "03d4c3a349d4310642bc7fdb5cf484dcba165a6a6eb0bdee312443bff77cd978876a4bfe3acba35295a061a6ba04e2cb",
    "816ff70678f5ad081013cc98915d387e41d072ddb8273c7075e1a47f99615476070bed8d5ea8b224ea1b406655739b5e",
    "20a13b3b4a97187728319c5f09376027121da3553d0418ebf14045c52e5e05dd077f2ce0e67a6238d4c4de48586fe6ea",
    "cf403196c3f1d675cf3ebb7a988add7642325fff2e5151a569240af60830f864842a2d4c0ffe2027540be1e8b5084e1d",
    "cf0a7ceae8c2bfcbc20a92ca64d7bfb1",
];
const E3_D: [&str; 6] = [
    "69826d4f17bfec82d4eba489cf84f27473a4d0539a30af7acec48b43dad9a3b2e389f3110e3d1553effb77313175c8a6",
    "ad38826cdbe2cb5981d2ffe7934dade87c0ee6f19f207e9ecb6d827ffa533ba5af9c32a97c87c2370e6aebc47c0341dd",
    "00f54f59a5f91e05600d331060e8d0542be04c93d01a284af941185510eb8da2f82fd698da53a86040a0a475f4b5538b",
    "26884dc81032a87cfc4a8f8a79c4ca36b3870725ecb2c058daa34b65b377d6c6c4902099b525e5f268b7a989c3601366",
    "54e1bf44e5cf8ac6fd49385da844acef48f36ad966d876f651875f357f4cafe9c977fe5ad733e84e6de6b68464786cd4",
    "01487de89b746b7158e8df3650f6f5a3",
];

/// DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

/// `00 BT FF..FF 00 DigestInfo hash suffix`, with `ps` padding bytes of `pad`.
fn encoded_message(block_type: u8, pad: u8, ps: usize, hash: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut em = vec![0x00, block_type];
    em.extend(std::iter::repeat_n(pad, ps));
    em.push(0x00);
    em.extend_from_slice(&SHA256_DIGEST_INFO);
    em.extend_from_slice(hash);
    em.extend_from_slice(suffix);
    em
}

#[tokio::test]
async fn case_077_lax_pkcs1_v1_5_encodings_are_refused() {
    let n = hex(&E3_N.concat());
    let d = hex(&E3_D.concat());
    let jwk = json!({"kty": "RSA", "kid": "e3", "use": "sig", "n": b64(n.to_bytes_be()), "e": b64([3u8])});
    let app = app_for(authority_with_jwks(&[jwk]));
    let input = format!("{}.{}", b64(r#"{"alg":"RS256","typ":"at+jwt","kid":"e3"}"#), b64(raw_claims(&[], "")));
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input.as_bytes());
    let hash = hash.as_ref();
    let sign = |em: &[u8]| {
        assert_eq!(em.len(), 256);
        fixed(&BigUint::from_bytes_be(em).modpow(&d, &n), 256)
    };

    // The correct encoding verifies: the key is admitted and e = 3 works.
    let correct = encoded_message(1, 0xff, 202, hash, &[]);
    call(&app, &format!("{input}.{}", b64(sign(&correct)))).await.accept();

    let garbage = vec![0x5a; 194];
    for (label, em) in [
        ("garbage after the DigestInfo", encoded_message(1, 0xff, 8, hash, &garbage)),
        ("padding byte 0xfe", encoded_message(1, 0xfe, 202, hash, &[])),
        ("block type 2", encoded_message(2, 0xff, 202, hash, &[])),
        ("hash of other content", encoded_message(1, 0xff, 202, &[0x11; 32], &[])),
    ] {
        call(&app, &format!("{input}.{}", b64(sign(&em)))).await.labelled(label).badtok(TokenError::InvalidSignature);
    }

    // Bleichenbacher's e = 3 forgery, made without the private key: the integer cube root
    // of `00 01 FF 00 DigestInfo hash FF..FF` cubes to that prefix followed by garbage.
    let prefix = encoded_message(1, 0xff, 1, hash, &[]);
    let upper = BigUint::from_bytes_be(&[prefix.clone(), vec![0xff; 256 - prefix.len()]].concat());
    let forged = upper.nth_root(3);
    let cubed = fixed(&forged.pow(3), 256);
    assert!(cubed.starts_with(&prefix), "the forgery is a lax-parser forgery");
    call(&app, &format!("{input}.{}", b64(fixed(&forged, 256)))).await.badtok(TokenError::InvalidSignature);
}

#[tokio::test]
async fn case_078_claims_are_parsed_only_after_the_signature_verifies() {
    // A bad signature is reported as such, whatever the payload holds: the payload was not
    // decoded or parsed. Only the header is read first (and it is bounded, case 22).
    let app = default_app();
    let bad = b64(vec![0x42; 256]);
    let id_token = issuer().id_token("spa-client").sign();
    let untyped = issuer().access_token().without_header("typ").sign();
    let [h, _, _] = segments(&issuer().access_token().sign());
    let [h_id, p_id, _] = segments(&id_token);
    let [h_untyped, _, _] = segments(&untyped);
    for (label, token) in [
        ("duplicate claims", format!("{h}.{}.{bad}", b64(raw_claims(&[], r#","sub":"admin""#)))),
        ("not JSON", format!("{h}.{}.{bad}", b64("not json"))),
        ("not base64url", format!("{h}.a.{bad}")),
        ("deep", format!("{h}.{}.{bad}", b64("[".repeat(5000)))),
        ("ID token, bad signature", format!("{h_id}.{p_id}.{bad}")),
        ("ID token header, payload not base64url", format!("{h_id}.a.{bad}")),
        ("untyped, payload not JSON", format!("{h_untyped}.{}.{bad}", b64("{"))),
    ] {
        call(&app, &token).await.labelled(label).badtok(TokenError::InvalidSignature);
    }
    // A malformed header is reported first.
    expect_badtok(&app, &format!("{}.a.{bad}", b64("{")), TokenError::Malformed).await;
}

#[tokio::test]
async fn es384_tokens_are_signed_with_the_p384_key_and_accepted() {
    let jwk = issuer().jwk("ec-384");
    assert_eq!((&jwk["kty"], &jwk["crv"], &jwk["kid"]), (&json!("EC"), &json!("P-384"), &json!("ec-384")));
    assert_eq!((unb64(jwk["x"].as_str().expect("x")).len(), unb64(jwk["y"].as_str().expect("y")).len()), (48, 48));
    assert!(issuer().jwks()["keys"].as_array().expect("keys").contains(&jwk), "the JWK set has the P-384 key");

    let app = default_app();
    let builder = issuer().access_token().algorithm(Algorithm::ES384).scope(READ);
    let token = builder.sign();
    let header: serde_json::Value = serde_json::from_slice(&unb64(&segments(&token)[0])).expect("a JSON header");
    assert_eq!((&header["alg"], &header["kid"]), (&json!("ES384"), &json!("ec-384")));
    assert_eq!(builder.sign_parts().1.len(), 96, "a P-384 signature is r || s of 48 bytes each");
    call(&app, &token).await.accept();
    with_token(&app, "/appointments", &token).await.accept();
    // The PEM form of the key verifies the same token.
    let pem = scopegate::Authority::builder()
        .issuer(ISS)
        .audience(AUD)
        .public_key_pem_with_kid("ec-384", issuer().public_key_pem("ec-384"))
        .build()
        .expect("a P-384 PEM key");
    call(&app_for(pem), &token).await.accept();

    // An ES384 header signed with the P-256 key: refused with the P-384 key named, and no
    // P-256 key serves ES384.
    let with_p256 = issuer().access_token().algorithm(Algorithm::ES256).header("alg", "ES384");
    call(&app, &with_p256.clone().kid("ec-384").sign()).await.badtok(TokenError::InvalidSignature);
    call(&app, &with_p256.kid("ec-1").sign()).await.badtok(TokenError::UnknownKey);
}
