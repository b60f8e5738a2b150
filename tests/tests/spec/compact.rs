//! Security spec section 2: compact serialization (RFC 7519 §7.2; RFC 7515 §7.1; RFC 7516 §9).

use axum::http::HeaderValue;
use base64::{Engine as _, engine::general_purpose::STANDARD_NO_PAD};
use scopegate::{RequestError, TokenError};

use crate::harness::*;

fn valid() -> String {
    issuer().access_token().sign()
}

#[tokio::test]
async fn case_017_four_or_five_segments_are_refused() {
    let app = default_app();
    let token = valid();
    let [h, p, s] = segments(&token);
    // A JWE compact serialization: protected header, encrypted key, IV, ciphertext, tag.
    let jwe_header = b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM","typ":"at+jwt","kid":"rsa-1"}"#);
    for bad in [
        format!("{token}.{s}"),
        format!("{h}.{p}.{s}.{s}.{s}"),
        format!("{jwe_header}.{s}.AAAAAAAAAAAAAAAA.{p}.AAAAAAAAAAAAAAAAAAAAAA"),
        format!("{h}.{h}.{p}.{s}"),
    ] {
        expect_badtok(&app, &bad, TokenError::Malformed).await;
    }
}

#[tokio::test]
async fn case_018_two_segments_or_an_empty_signature_are_refused() {
    let app = default_app();
    let [h, p, s] = segments(&valid());
    for bad in [format!("{h}.{p}"), format!("{h}.{p}."), format!(".{p}.{s}"), format!("{h}..{s}"), "..".to_owned()] {
        expect_badtok(&app, &bad, TokenError::Malformed).await;
    }
}

#[tokio::test]
async fn case_019_whitespace_around_or_inside_the_token_is_refused() {
    // Whitespace is not a b64token character, so RFC 6750's credential syntax refuses it
    // before the JWS parser sees it: BADREQ (case 8) rather than BADTOK. Leading spaces are
    // the `1*SP` separator (case 5). Newlines cannot travel in a field value at all.
    let app = default_app();
    let token = valid();
    let [h, p, s] = segments(&token);
    for value in [format!("Bearer {token} "), format!("Bearer {token}\t"), format!("Bearer {h}. {p}.{s}")] {
        expect_badreq(&app, value.as_bytes(), RequestError::MalformedCredentials).await;
    }
    for value in [format!("Bearer {h}.{p}\n.{s}"), format!("Bearer {token}\r\n"), format!("Bearer \n{token}")] {
        assert!(HeaderValue::from_bytes(value.as_bytes()).is_err(), "{value:?}");
    }
}

#[tokio::test]
async fn case_020_base64url_must_be_strict() {
    let app = default_app();
    let token = valid();
    let [h, p, s] = segments(&token);

    // `=` padding: at the end of the token it is still a b64token, so the JWS decoder
    // refuses it; inside, RFC 6750's b64token already refuses it (400, see case 8).
    for padded in [format!("{token}="), format!("{token}==")] {
        expect_badtok(&app, &padded, TokenError::Malformed).await;
    }
    for padded in [format!("{h}=.{p}.{s}"), format!("{h}.{p}==.{s}")] {
        expect_badreq(&app, format!("Bearer {padded}").as_bytes(), RequestError::MalformedCredentials).await;
    }

    // Standard-alphabet `+` and `/`, with a signature that is valid over exactly those
    // bytes, so only the decoder can refuse it.
    let signer = RawSigner::new();
    let raw_app = app_for(signer.authority());
    // `???>>>` encodes to `Pz8_Pj4-` in base64url and `Pz8/Pj4+` in standard base64.
    let header = signer.header().replace("\"}", "\",\"x\":\"???>>>\"}");
    let payload = raw_claims(&[], r#","pad":"???>>>""#);
    let good = signer.sign(header.as_bytes(), payload.as_bytes());
    call(&raw_app, &good).await.accept();
    let std_header = STANDARD_NO_PAD.encode(&header);
    let std_payload = STANDARD_NO_PAD.encode(&payload);
    assert!(std_header.contains(['+', '/']) && std_payload.contains(['+', '/']));
    for bad in [signer.sign_segments(&std_header, &b64(&payload)), signer.sign_segments(&b64(&header), &std_payload)] {
        expect_badtok(&raw_app, &bad, TokenError::Malformed).await;
    }

    // Non-canonical trailing bits in each segment (again validly signed where it matters).
    let header = signer.header().replace("\"}", "\",\"x\":\"ab\"}");
    let payload = raw_claims(&[], r#","x":"ab""#);
    let (he, pe) = (b64(&header), b64(&payload));
    if he.len() % 4 == 0 || pe.len() % 4 == 0 {
        panic!("pick other padding: {} {}", he.len(), pe.len());
    }
    call(&raw_app, &signer.sign_segments(&he, &pe)).await.accept();
    for bad in [signer.sign_segments(&non_canonical(&he), &pe), signer.sign_segments(&he, &non_canonical(&pe))] {
        expect_badtok(&raw_app, &bad, TokenError::Malformed).await;
    }
    // An RS256 signature is 256 bytes: 342 characters with 4 unused bits.
    let bad_signature = format!("{h}.{p}.{}", non_canonical(&s));
    expect_badtok(&app, &bad_signature, TokenError::Malformed).await;
}

#[tokio::test]
async fn case_021_invalid_utf8_or_a_bom_is_refused() {
    let app = default_app();
    let [_, p, s] = segments(&valid());
    // Header: parsed before the signature, so the signature does not matter.
    let bad_header = b64(b"{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"x\":\"\xff\"}");
    expect_badtok(&app, &format!("{bad_header}.{p}.{s}"), TokenError::Malformed).await;
    let bom_header = issuer().access_token().raw_header(&format!("\u{feff}{}", raw_header(""))).sign();
    expect_badtok(&app, &bom_header, TokenError::Malformed).await;

    // Payload: validly signed, so the claim parser is what refuses it.
    let bom_payload = issuer().access_token().raw_claims(&format!("\u{feff}{}", raw_claims(&[], ""))).sign();
    expect_badtok(&app, &bom_payload, TokenError::Malformed).await;
    let signer = RawSigner::new();
    let raw_app = app_for(signer.authority());
    let claims = raw_claims(&[], "");
    call(&raw_app, &signer.sign(signer.header().as_bytes(), claims.as_bytes())).await.accept();
    // The subject `user-123` with its `1` replaced by bytes that are not UTF-8: a lone
    // ISO-8859-1 byte, a stray continuation byte, an overlong `/`, a UTF-16 surrogate.
    for bad in [&b"\xe9"[..], b"\x80", b"\xc0\xaf", b"\xed\xa0\x80"] {
        let at = claims.find("user-123").expect("the subject") + 5;
        let payload = [&claims.as_bytes()[..at], bad, &claims.as_bytes()[at + 1..]].concat();
        let token = signer.sign(signer.header().as_bytes(), &payload);
        call(&raw_app, &token).await.labelled(format!("{bad:?}")).badtok(TokenError::Malformed);
    }
}

/// `"x":` followed by `depth - 1` nested arrays, inside the top-level object: a document
/// whose nesting depth is exactly `depth`.
fn nested(depth: usize) -> String {
    format!(r#","x":{}{}"#, "[".repeat(depth - 1), "]".repeat(depth - 1))
}

#[tokio::test]
async fn case_022_header_over_2_kib_or_nesting_over_16_is_refused() {
    let app = default_app();
    // The header segment may be 2048 characters (1536 bytes of JSON), not more.
    let empty = raw_header(r#","x":"""#).len();
    let fill = |len: usize| raw_header(&format!(r#","x":"{}""#, "p".repeat(len - empty)));
    let at_limit = fill(1536);
    assert_eq!(b64(&at_limit).len(), 2048);
    call(&app, &issuer().access_token().raw_header(&at_limit).sign()).await.accept();
    let over = fill(1537);
    assert_eq!(b64(&over).len(), 2050);
    expect_badtok(&app, &issuer().access_token().raw_header(&over).sign(), TokenError::Malformed).await;

    // Nesting: depth 16 passes, 17 does not, in the header and in the payload.
    call(&app, &issuer().access_token().raw_header(&raw_header(&nested(16))).sign()).await.accept();
    call(&app, &issuer().access_token().raw_claims(&raw_claims(&[], &nested(16))).sign()).await.accept();
    for depth in [17, 200] {
        let deep_header = issuer().access_token().raw_header(&raw_header(&nested(depth))).sign();
        expect_badtok(&app, &deep_header, TokenError::Malformed).await;
        let deep_payload = issuer().access_token().raw_claims(&raw_claims(&[], &nested(depth))).sign();
        expect_badtok(&app, &deep_payload, TokenError::Malformed).await;
    }
    // Objects count as well as arrays.
    let objects = format!(r#","x":{}1{}"#, r#"{"a":"#.repeat(16), "}".repeat(16));
    expect_badtok(&app, &issuer().access_token().raw_claims(&raw_claims(&[], &objects)).sign(), TokenError::Malformed)
        .await;
}

#[tokio::test]
async fn case_023_payload_that_is_not_a_json_object_is_refused() {
    let app = default_app();
    let now = now();
    // The positional array jsonwebtoken maps onto its claim struct: [exp, nbf, sub, iss, aud].
    let positional = format!(r#"[{},{},"user-123","{ISS}","{AUD}"]"#, now + 300, now - 10);
    for payload in [positional.as_str(), "[]", "null", r#""a string""#, "42", "true", ""] {
        let token = issuer().access_token().raw_claims(payload).sign();
        if payload.is_empty() {
            // An empty payload leaves an empty segment (case 18).
            expect_badtok(&app, &token, TokenError::Malformed).await;
            continue;
        }
        call(&app, &token).await.labelled(payload).badtok(TokenError::Malformed);
    }
}

#[tokio::test]
async fn case_024_header_that_is_not_a_json_object_is_refused() {
    let app = default_app();
    for header in [r#"["RS256","at+jwt"]"#, "null", r#""RS256""#, "5", "true", "{", r#"{"alg":"RS256"} {}"#] {
        call(&app, &issuer().access_token().raw_header(header).sign())
            .await
            .labelled(header)
            .badtok(TokenError::Malformed);
    }
}

#[tokio::test]
async fn case_025_duplicate_header_members_are_refused() {
    let app = default_app();
    for extra in [
        r#","alg":"RS256""#,
        r#","typ":"at+jwt""#,
        r#","typ":"JWT""#,
        r#","kid":"rsa-1""#,
        r#","x-foo":1,"x-foo":2"#,
        r#","crit":["x"],"x":1,"crit":["x"]"#,
        r#","x":{"a":1,"a":1}"#,
    ] {
        call(&app, &issuer().access_token().raw_header(&raw_header(extra)).sign())
            .await
            .labelled(extra)
            .badtok(TokenError::Malformed);
    }
}

#[tokio::test]
async fn case_026_duplicate_claim_names_are_refused() {
    let app = default_app();
    let now = now();
    for extra in [
        format!(r#","exp":{}"#, now + 100),
        format!(r#","aud":"{AUD}""#),
        format!(r#","iss":"{ISS}""#),
        r#","sub":"admin""#.to_owned(),
        r#","client_id":"other-client""#.to_owned(),
        r#","jti":"again""#.to_owned(),
        format!(r#","iat":{now}"#),
        r#","scope":"a","scope":"read:appointments""#.to_owned(),
        r#","nbf":1,"nbf":2"#.to_owned(),
        r#","cnf":{"jkt":"a"},"cnf":{"jkt":"b"}"#.to_owned(),
        r#","x":{"jkt":"a","jkt":"b"}"#.to_owned(),
    ] {
        call(&app, &issuer().access_token().raw_claims(&raw_claims(&[], &extra)).sign())
            .await
            .labelled(extra)
            .badtok(TokenError::Malformed);
    }
}

#[tokio::test]
async fn case_027_unknown_claims_are_ignored() {
    let app = default_app();
    let token = issuer()
        .access_token()
        .claim("x-foo", "bar")
        .claim("https://example.test/claims/tenant", serde_json::json!({"id": [1, 2, {"deep": null}]}))
        .claim("roles", serde_json::json!(["admin"]))
        .sign();
    expect_accept(&app, &token).await;
}
