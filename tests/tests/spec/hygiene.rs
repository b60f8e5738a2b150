//! Security spec section 9: error-response and logging hygiene (RFC 6750 §3).

use axum::{
    Router,
    body::Body,
    http::{StatusCode, header},
};
use scopegate::{Authority, RequestError, TokenError};
use serde_json::json;

use crate::harness::*;

/// Every `TokenError` and `RequestError` variant (both enums are `#[non_exhaustive]`, so
/// this list is kept by hand).
const TOKEN_ERRORS: [TokenError; 19] = [
    TokenError::TooLarge,
    TokenError::Malformed,
    TokenError::AlgorithmNotAllowed,
    TokenError::NotAnAccessToken,
    TokenError::IdToken,
    TokenError::UnsupportedHeader,
    TokenError::UnknownKey,
    TokenError::InvalidSignature,
    TokenError::InvalidIssuer,
    TokenError::InvalidAudience,
    TokenError::Expired,
    TokenError::NotYetValid,
    TokenError::IssuedInFuture,
    TokenError::LifetimeExceeded,
    TokenError::InvalidClaim,
    TokenError::InvalidScopeClaim,
    TokenError::ClientNotAllowed,
    TokenError::SenderConstrained,
    TokenError::EmptyClaim,
];
const REQUEST_ERRORS: [RequestError; 5] = [
    RequestError::EmptyToken,
    RequestError::MalformedCredentials,
    RequestError::NonAsciiHeader,
    RequestError::MultipleAuthorizationHeaders,
    RequestError::MultipleMethods,
];

/// One request of each rejecting outcome: NOAUTH, BADREQ, BADTOK, NOSCOPE.
async fn one_of_each(app: &Router) -> Vec<Outcome> {
    vec![
        call_without_credentials(app, "/me").await,
        with_authorization(app, "/me", b"Bearer a,b").await,
        call(app, &issuer().access_token().expires_in(-3600).sign()).await,
        with_token(app, "/appointments", &issuer().access_token().sign()).await,
    ]
}

#[tokio::test]
async fn case_145_every_challenge_has_exactly_one_realm() {
    for outcome in one_of_each(&default_app()).await {
        let challenge = outcome.challenge().expect("a challenge");
        assert!(challenge.starts_with(&format!("Bearer realm=\"{REALM}\"")), "{challenge}");
        assert_eq!(challenge.matches("realm=").count(), 1, "{challenge}");
    }
    // A configured realm.
    let app = app_for(issuer().authority_builder(AUD).realm("appointments").build().expect("realm"));
    let outcomes = one_of_each(&app).await;
    outcomes[0].noauth_in("appointments");
    outcomes[1].badreq_in("appointments", RequestError::MalformedCredentials);
    outcomes[2].badtok_in("appointments", TokenError::Expired);
    outcomes[3].noscope_in("appointments", READ);
    // A realm that cannot be a quoted-string is a configuration error; an audience that
    // cannot be one falls back to `api`.
    for bad in ["a\"b", "a\\b", "", "line\nbreak", "ré"] {
        assert_eq!(issuer().authority_builder(AUD).realm(bad).build().expect_err("bad realm").setting(), "realm");
    }
    let odd = app_for(issuer().authority(r#"urn:"quoted""#));
    call_without_credentials(&odd, "/me").await.noauth_in("api");
}

#[tokio::test]
async fn case_146_error_descriptions_are_fixed_and_header_safe() {
    let allowed = |b: u8| b == 0x20 || b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b);
    for description in
        TOKEN_ERRORS.map(TokenError::description).into_iter().chain(REQUEST_ERRORS.map(RequestError::description))
    {
        assert!(!description.is_empty() && description.bytes().all(allowed), "{description:?}");
    }
    let mut codes: Vec<_> =
        TOKEN_ERRORS.map(TokenError::code).into_iter().chain(REQUEST_ERRORS.map(RequestError::code)).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), TOKEN_ERRORS.len() + REQUEST_ERRORS.len(), "reason codes are unique");

    // Header injection through the kid: the response is built from fixed strings only.
    let app = default_app();
    let kid = "\"\r\nSet-Cookie: x=1\r\n\r\n<script>";
    let token = issuer().access_token().kid(kid).sign();
    let outcome = call(&app, &token).await;
    outcome.badtok(TokenError::UnknownKey);
    assert!(outcome.headers.get(header::SET_COOKIE).is_none());
    assert!(!outcome.body.contains("Set-Cookie") && !outcome.body.contains("<script>"), "{}", outcome.body);
    // Nor through claims a serde message would quote.
    let token = issuer().access_token().claim("exp", "\"\r\nSet-Cookie: y").sign();
    let outcome = call(&app, &token).await;
    outcome.badtok(TokenError::InvalidClaim);
    assert!(!outcome.body.contains("Set-Cookie"));

    // Descriptions can be switched off: then no error_description at all, nor a reason.
    let quiet = app_quiet();
    let outcome = call(&quiet, &issuer().access_token().expires_in(-3600).sign()).await;
    outcome.rejected(
        StatusCode::UNAUTHORIZED,
        &format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
        &json!({"error": "invalid_token"}),
    );
    let outcome = with_authorization(&quiet, "/me", b"Bearer").await;
    assert_eq!(
        outcome.challenge().as_deref(),
        Some(format!("Bearer realm=\"{REALM}\", error=\"invalid_request\"").as_str())
    );
}

fn app_quiet() -> Router {
    app_for(quiet_authority())
}

fn quiet_authority() -> Authority {
    issuer().authority_builder(AUD).error_descriptions(false).build().expect("quiet")
}

#[tokio::test]
async fn without_descriptions_the_body_does_not_tell_an_unknown_key_from_a_bad_signature() {
    let authority = quiet_authority();
    let quiet = app_for(authority.clone());
    let unknown_key = issuer().access_token().kid("no-such-key").sign();
    let bad_signature = other_issuer().access_token().sign();

    let (logs, guard) = capture_logs();
    let outcomes = [call(&quiet, &unknown_key).await, call(&quiet, &bad_signature).await];
    drop(guard);
    for outcome in &outcomes {
        assert_eq!(outcome.status, StatusCode::UNAUTHORIZED, "{}", outcome.body);
        assert_eq!(
            outcome.challenge().as_deref(),
            Some(format!("Bearer realm=\"{REALM}\", error=\"invalid_token\"").as_str())
        );
        assert_eq!(outcome.body, r#"{"error":"invalid_token"}"#);
    }
    assert_eq!(outcomes[0].headers, outcomes[1].headers, "the responses are identical");
    // The reason stays in the counters and the logs.
    assert_eq!(authority.rejections_by_reason(), vec![("unknown_key", 1), ("invalid_signature", 1)]);
    let text = logs.text();
    assert!(text.contains("reason=\"unknown_key\""), "{text}");
    assert!(text.contains("reason=\"invalid_signature\""), "{text}");

    // The other outcomes carry no reason either.
    let reader = issuer().access_token().scope(READ).sign();
    let without_scope = with_token(&quiet, "/ab", &reader).await;
    assert_eq!(without_scope.status, StatusCode::FORBIDDEN);
    assert_eq!(
        without_scope.json(),
        json!({
            "error": "insufficient_scope",
            "error_description": "The access token lacks a scope this route requires",
            "scope": "a b",
            "requirement": "all(\"a\", \"b\")",
        })
    );
    let anonymous = call_without_credentials(&quiet, "/me").await;
    assert_eq!(
        anonymous.json(),
        json!({"error": "unauthorized", "error_description": "The request carries no bearer access token"})
    );

    // With descriptions (the default) the body keeps its reason.
    let app = default_app();
    call(&app, &unknown_key).await.badtok(TokenError::UnknownKey);
    call(&app, &bad_signature).await.badtok(TokenError::InvalidSignature);
}

#[tokio::test]
async fn case_147_no_resource_metadata_unless_enabled() {
    // RFC 9728 metadata is off unless the builder enables it: no challenge may point at a
    // metadata document the application does not serve.
    let app = default_app();
    for outcome in one_of_each(&app).await {
        let challenge = outcome.challenge().expect("a challenge");
        assert!(!challenge.contains("resource_metadata"), "{challenge}");
    }
    let request = get_req("/.well-known/oauth-protected-resource").body(Body::empty()).expect("a request");
    assert_eq!(send(&app, request).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn case_148_scopegate_logs_reasons_and_ids_never_the_token() {
    let (logs, _guard) = capture_logs();
    let app = default_app();
    let tokens = [
        issuer().access_token().scope(READ).claim("jti", "jti-148-accepted").sign(),
        issuer().access_token().claim("jti", "jti-148-expired").expires_in(-3600).sign(),
        issuer().access_token().kid("kid-148\n\"injected\"").sign(),
        other_issuer().access_token().sign(),
        issuer().access_token().typ("JWT").sign(),
        issuer().id_token("spa-client").sign(),
    ];
    call(&app, &tokens[0]).await.accept();
    with_token(&app, "/ab", &tokens[0]).await.noscope("a b");
    call(&app, &tokens[1]).await.badtok(TokenError::Expired);
    call(&app, &tokens[2]).await.badtok(TokenError::UnknownKey);
    call(&app, &tokens[3]).await.badtok(TokenError::InvalidSignature);
    call(&app, &tokens[4]).await.badtok(TokenError::NotAnAccessToken);
    call(&app, &tokens[5]).await.badtok(TokenError::IdToken);
    with_token(&app, "/me?access_token=x", &tokens[0]).await.badreq(RequestError::MultipleMethods);
    let long_kid = format!("kid-{}", "k".repeat(200));
    call(&app, &issuer().access_token().kid(&long_kid).sign()).await.badtok(TokenError::UnknownKey);
    let text = logs.text();

    for token in &tokens {
        for segment in segments(token) {
            assert!(!text.contains(&segment), "a token segment was logged:\n{text}");
        }
    }
    // Every rejection is logged with its reason code.
    for reason in [
        "insufficient_scope",
        "token_expired",
        "unknown_key",
        "invalid_signature",
        "not_an_access_token",
        "id_token",
        "multiple_methods",
    ] {
        assert!(text.lines().any(|l| l.contains("scopegate") && l.contains(reason)), "no {reason} event:\n{text}");
    }
    // With the kid (escaped: no raw newline or quote from the token) and, once the
    // signature has verified, iss and jti.
    let refused: Vec<&str> = text.lines().filter(|l| l.contains("access token refused")).collect();
    assert!(refused.iter().any(|l| l.contains(r#"kid=kid-148\n\"injected\""#)), "{text}");
    assert!(!text.contains("kid-148\n"), "{text}");
    let expired = refused.iter().find(|l| l.contains("token_expired")).expect("the expired event");
    assert!(expired.contains("jti-148-expired") && expired.contains(ISS) && expired.contains("rsa-1"), "{expired}");
    // Truncated.
    let long = refused.iter().find(|l| l.contains("kid-kkk")).expect("the long kid event");
    assert!(!long.contains(&long_kid), "{long}");
}

#[scopegate::requires_scope("read:appointments", introspect)]
async fn introspected() -> &'static str {
    "introspected"
}

/// scopegate's events (target `scopegate` or below) among captured log lines, each as its
/// level and the rest of the line.
fn scopegate_events(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (_time, level, target) = (words.next()?, words.next()?, words.next()?);
            target.starts_with("scopegate").then_some((level, line))
        })
        .collect()
}

#[tokio::test]
async fn each_refused_request_is_logged_once_at_one_level_with_what_may_be_said_of_the_token() {
    let app = default_app();
    let misconfigured = Router::new().route("/introspected", axum::routing::get(introspected)).with_state(authority());
    let expired = issuer().access_token().claim("jti", "jti-once").expires_in(-3600).sign();
    let (logs, guard) = capture_logs();
    call(&app, &expired).await.badtok(TokenError::Expired);
    drop(guard);
    let text = logs.text();
    let events = scopegate_events(&text);
    assert_eq!(events.len(), 1, "{text}");
    let (level, line) = events[0];
    assert_eq!(level, "DEBUG", "{line}");
    for field in ["reason=\"token_expired\"", "status=401", "kid=rsa-1", "jti=jti-once", &format!("iss={ISS}")] {
        assert!(line.contains(field), "no {field}: {line}");
    }

    let (logs, guard) = capture_logs();
    let outcome = call_without_credentials(&app, "/appointments").await;
    drop(guard);
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    let text = logs.text();
    let events = scopegate_events(&text);
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0].0, "DEBUG", "{text}");
    assert!(events[0].1.contains("reason=\"missing_credentials\""), "{text}");

    let (logs, guard) = capture_logs();
    let outcome =
        with_token(&misconfigured, "/introspected", &issuer().access_token().scope("read:appointments").sign()).await;
    drop(guard);
    assert_eq!(outcome.status, StatusCode::INTERNAL_SERVER_ERROR);
    let text = logs.text();
    let events = scopegate_events(&text);
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0].0, "ERROR", "{text}");
    assert!(events[0].1.contains("reason=\"misconfigured\""), "{text}");
    assert!(events[0].1.contains("configure it with .introspection(client_id, client_secret)"), "{text}");
}

async fn profile(user: scopegate::UserInfo) -> String {
    user.subject().to_owned()
}

/// The refusal's event is the only one: the introspection and userinfo endpoints' answers
/// (the calls went through) and a `UserInfo` handler the authority cannot serve log
/// nothing of their own, and the event says what the operator needs (refused by
/// introspection; what to configure).
#[tokio::test]
async fn an_introspection_refusal_and_a_userinfo_misconfiguration_are_each_logged_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let endpoint = Router::new()
        .route("/introspect", axum::routing::post(|| async { axum::Json(json!({ "active": false })) }))
        .route("/userinfo", axum::routing::get(|| async { StatusCode::UNAUTHORIZED }));
    tokio::spawn(async move { axum::serve(listener, endpoint).await });
    let introspecting = issuer()
        .authority_builder(AUD)
        .introspection("api", "secret")
        .introspection_endpoint(format!("http://{address}/introspect"))
        .build()
        .unwrap();
    let app = app_for(introspecting);
    let (logs, guard) = capture_logs();
    let outcome = call(&app, "opaque-token-1").await;
    drop(guard);
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert_eq!(outcome.json()["reason"], "inactive_token");
    let text = logs.text();
    let events = scopegate_events(&text);
    assert_eq!(events.len(), 1, "{text}");
    let (level, line) = events[0];
    assert_eq!(level, "DEBUG", "{line}");
    for field in ["request refused: access token refused by introspection", "reason=\"inactive_token\"", "status=401"] {
        assert!(line.contains(field), "no {field}: {line}");
    }

    // The userinfo endpoint refuses the token (the call went through).
    let refusing = issuer().authority_builder(AUD).userinfo_endpoint(format!("http://{address}/userinfo")).build();
    let refusing = Router::new().route("/profile", axum::routing::get(profile)).with_state(refusing.unwrap());
    let (logs, guard) = capture_logs();
    let outcome = with_token(&refusing, "/profile", &issuer().access_token().sign()).await;
    drop(guard);
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert_eq!(outcome.json()["reason"], "userinfo_refused");
    let text = logs.text();
    let events = scopegate_events(&text);
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0].0, "DEBUG", "{text}");
    assert!(events[0].1.contains("reason=\"userinfo_refused\""), "{text}");

    // Static keys and no userinfo endpoint: nothing to discover it from.
    let profiles = Router::new().route("/profile", axum::routing::get(profile)).with_state(authority());
    let (logs, guard) = capture_logs();
    let outcome = with_token(&profiles, "/profile", &issuer().access_token().sign()).await;
    drop(guard);
    assert_eq!(outcome.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(outcome.json()["reason"], "misconfigured");
    let text = logs.text();
    let events = scopegate_events(&text);
    assert_eq!(events.len(), 1, "{text}");
    let (level, line) = events[0];
    assert_eq!(level, "ERROR", "{line}");
    let why =
        "request refused: UserInfo needs .userinfo_endpoint(url): with static keys there is no discovery document";
    assert!(line.contains(why), "{line}");
    assert!(line.contains("reason=\"misconfigured\""), "{line}");
}
