//! Issuers as users have them: several trusted by one `Authority`, each routed to its own
//! keys, and the presets (Auth0, Okta, Entra ID, Keycloak, Cognito) against tokens shaped
//! exactly as each issuer documents its access tokens. Every issuer here is a server the
//! test starts on 127.0.0.1, serving a discovery document and a JWKS and counting the
//! requests it gets.

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{Request, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;
use scopegate::{AccessToken, Authority, AuthorityBuilder, ScopeClaim, requires_scope, testing::TestIssuer};
use serde_json::{Value, json};
use tower::ServiceExt;

const AUD: &str = "https://api.example.test";

struct Served {
    issuer: String,
    jwks: Value,
    requests: AtomicUsize,
}

/// An issuer over HTTP: `{anything}/.well-known/openid-configuration` answers a discovery
/// document for `issuer` with `jwks_uri` `/keys`, and any path ending in `/keys` the JWKS.
struct IssuerServer {
    base: String,
    state: Arc<Served>,
}

impl IssuerServer {
    /// Starts a server whose issuer identifier `issuer(base)` derives from its base URL
    /// (`http://127.0.0.1:port`), serving the public keys of `keys`.
    async fn start(issuer: impl FnOnce(&str) -> String, keys: &TestIssuer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Served { issuer: issuer(&base), jwks: keys.jwks(), requests: AtomicUsize::new(0) });
        let app = Router::new().fallback(serve).with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, state }
    }

    fn issuer(&self) -> &str {
        &self.state.issuer
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

async fn serve(State(state): State<Arc<Served>>, uri: Uri) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let path = uri.path();
    let body = if path.ends_with("/.well-known/openid-configuration") {
        let base = state.issuer.split('/').take(3).collect::<Vec<_>>().join("/");
        json!({"issuer": state.issuer, "jwks_uri": format!("{base}/keys")})
    } else if path.ends_with("/keys") {
        state.jwks.clone()
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A token with exactly this header and claim set, signed by `keys` (RS256, `rsa-1`).
fn token(keys: &TestIssuer, header: &Value, claims: &Value) -> String {
    keys.access_token().raw_header(&header.to_string()).raw_claims(&claims.to_string()).sign()
}

/// The reason a token is refused for, or `accepted`.
async fn outcome(authority: &Authority, token: &str) -> String {
    match authority.verify(token).await {
        Ok(_) => "accepted".to_owned(),
        Err(rejection) => rejection.reason().to_owned(),
    }
}

/// A strict RFC 9068 access token of `issuer` for `AUD`.
fn at_jwt(keys: &TestIssuer, issuer: &str) -> String {
    let t = now();
    token(
        keys,
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"}),
        &json!({"iss": issuer, "sub": "user-1", "aud": AUD, "client_id": "app", "iat": t, "exp": t + 300,
                "jti": format!("jti-{issuer}"), "scope": "read"}),
    )
}

/// Two issuers with keys of their own, each served over HTTP, and one authority trusting
/// both (discovery and first fetch done).
async fn two_issuers() -> (TestIssuer, IssuerServer, TestIssuer, IssuerServer, Authority) {
    let keys_a = TestIssuer::with_fresh_keys("a");
    let keys_b = TestIssuer::with_fresh_keys("b");
    let a = IssuerServer::start(|base| format!("{base}/a/"), &keys_a).await;
    let b = IssuerServer::start(|base| format!("{base}/b/"), &keys_b).await;
    let authority = Authority::builder()
        .issuer(a.issuer())
        .audience(AUD)
        .also_trust(Authority::builder().issuer(b.issuer()).audience(AUD))
        .connect()
        .await
        .unwrap();
    (keys_a, a, keys_b, b, authority)
}

// ---------------------------------------------------------------------------------------
// Several issuers in one authority

#[tokio::test]
async fn an_authority_trusting_two_issuers_accepts_each_ones_tokens_and_says_which() {
    let (keys_a, a, keys_b, b, authority) = two_issuers().await;
    let from_a = authority.verify(&at_jwt(&keys_a, a.issuer())).await.unwrap();
    let from_b = authority.verify(&at_jwt(&keys_b, b.issuer())).await.unwrap();
    assert_eq!(from_a.issuer(), a.issuer());
    assert_eq!(from_b.issuer(), b.issuer());
    assert_eq!(authority.issuer(), a.issuer(), "the first issuer is the builder's own");
    assert_eq!(authority.issuers(), [a.issuer(), b.issuer()]);
    assert_eq!(authority.stats().accepted, 2);
    assert_eq!(authority.stats().signatures_checked, 2);
    assert_eq!(authority.stats().jwks_fetches, 2, "one discovery-and-keys load per issuer");
}

#[tokio::test]
async fn a_token_of_one_issuer_signed_with_the_other_issuers_key_is_refused() {
    let (keys_a, a, keys_b, b, authority) = two_issuers().await;
    // Both key sets have a `rsa-1`: the token names `b`, so only `b`'s key is tried.
    assert_eq!(outcome(&authority, &at_jwt(&keys_a, b.issuer())).await, "invalid_signature");
    assert_eq!(outcome(&authority, &at_jwt(&keys_b, a.issuer())).await, "invalid_signature");
}

#[tokio::test]
async fn an_unknown_issuer_is_refused_before_any_key_work_and_never_fetches() {
    let (keys_a, a, _keys_b, b, authority) = two_issuers().await;
    let before = (a.requests(), b.requests(), authority.stats());
    let t = now();
    for i in 0..20 {
        // Unknown kids too: with a known issuer each would be a reason to fetch.
        let token = token(
            &keys_a,
            &json!({"alg": "RS256", "typ": "at+jwt", "kid": format!("unknown-{i}")}),
            &json!({"iss": format!("{}/c/", a.base), "sub": "u", "aud": AUD, "client_id": "app",
                    "iat": t, "exp": t + 300, "jti": format!("j{i}")}),
        );
        assert_eq!(outcome(&authority, &token).await, "invalid_issuer");
    }
    let no_iss = token(
        &keys_a,
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": "unknown"}),
        &json!({"sub": "u", "aud": AUD, "client_id": "app", "iat": t, "exp": t + 300, "jti": "j"}),
    );
    assert_eq!(outcome(&authority, &no_iss).await, "invalid_issuer");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!((a.requests(), b.requests()), (before.0, before.1), "no request reached either issuer");
    let after = authority.stats();
    assert_eq!(after.signatures_checked, before.2.signatures_checked, "no signature was checked");
    assert_eq!(after.jwks_fetches, before.2.jwks_fetches);
    assert_eq!(after.rejected, 21);
}

#[tokio::test]
async fn a_token_seen_again_is_served_from_its_own_issuers_cache() {
    let (_keys_a, _a, keys_b, b, authority) = two_issuers().await;
    let token = at_jwt(&keys_b, b.issuer());
    assert_eq!(outcome(&authority, &token).await, "accepted");
    assert_eq!(outcome(&authority, &token).await, "accepted");
    let stats = authority.stats();
    assert_eq!((stats.signatures_checked, stats.token_cache_hits), (1, 1));
}

#[tokio::test]
async fn each_issuer_applies_its_own_audience_profile_and_clients() {
    let a = TestIssuer::with_fresh_keys("https://a.example.test/");
    let b = TestIssuer::with_fresh_keys("https://b.example.test/");
    let authority = a
        .authority_builder(AUD)
        .also_trust(
            b.authority_builder("https://other-api.example.test")
                .profile(scopegate::Profile::Compatible)
                .allowed_clients(["b-app"]),
        )
        .build()
        .unwrap();
    let for_other = |issuer: &TestIssuer| issuer.access_token().audience("https://other-api.example.test");
    assert_eq!(outcome(&authority, &for_other(&a).sign()).await, "invalid_audience");
    assert_eq!(outcome(&authority, &for_other(&b).client_id("b-app").sign()).await, "accepted");
    assert_eq!(outcome(&authority, &for_other(&b).sign()).await, "client_not_allowed");
    // `b` is compatible (a `JWT`-typed token with a client is fine), `a` strict.
    assert_eq!(outcome(&authority, &for_other(&b).client_id("b-app").typ("JWT").sign()).await, "accepted");
    assert_eq!(outcome(&authority, &a.access_token().typ("JWT").scope("x").sign()).await, "not_an_access_token");
}

#[tokio::test]
async fn an_issuer_trusted_twice_is_refused_at_build() {
    let a = TestIssuer::with_fresh_keys("https://a.example.test/");
    let error = a.authority_builder(AUD).also_trust(a.authority_builder(AUD)).build().unwrap_err();
    assert_eq!(error.setting(), "also_trust");
    assert_eq!(
        error.to_string(),
        "scopegate: invalid `also_trust` setting: the issuer `https://a.example.test/` is trusted twice: each issuer is configured once"
    );
}

#[tokio::test]
async fn a_bad_setting_of_an_added_issuer_names_that_issuer() {
    let a = TestIssuer::with_fresh_keys("https://a.example.test/");
    let error = a.authority_builder(AUD).also_trust(Authority::builder().issuer("https://b.example.test/")).build();
    let error = error.unwrap_err();
    assert_eq!(error.setting(), "audience");
    assert!(
        error.to_string().starts_with(
            "scopegate: invalid `audience` setting: for the issuer `https://b.example.test/` added with also_trust: no audience set"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn an_error_body_set_on_an_added_issuer_is_refused_at_build_and_the_first_builders_renders_every_issuer() {
    let a = TestIssuer::with_fresh_keys("https://a.example.test/");
    let b = TestIssuer::with_fresh_keys("https://b.example.test/");
    let envelope = |rejection: &scopegate::Rejection| axum::Json(json!({"error": {"code": rejection.reason()}}));
    let error =
        a.authority_builder(AUD).also_trust(b.authority_builder(AUD).on_rejection(envelope)).build().unwrap_err();
    assert_eq!(error.setting(), "on_rejection");
    assert_eq!(
        error.to_string(),
        "scopegate: invalid `on_rejection` setting: for the issuer `https://b.example.test/` added with also_trust: the error body is the API's, not an issuer's: set .on_rejection(...) on the first builder, which renders the refusals of every issuer"
    );
    // Set on the first builder, it renders the added issuer's refusals too.
    let authority =
        a.authority_builder(AUD).on_rejection(envelope).also_trust(b.authority_builder(AUD)).build().unwrap();
    let app = Router::new().route("/any", axum::routing::get(any_issuer)).with_state(authority);
    for issuer in [&a, &b] {
        let expired = issuer.access_token().scope("read").expires_in(-120).sign();
        assert_eq!(
            get(&app, "/any", &expired).await,
            (
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="https://api.example.test", error="invalid_token", error_description="The access token expired""#.to_owned(),
                r#"{"error":{"code":"token_expired"}}"#.to_owned()
            ),
            "{}",
            issuer.issuer()
        );
    }
}

#[tokio::test]
async fn each_issuer_reads_scopes_from_its_own_claims_only() {
    let a = TestIssuer::with_fresh_keys("https://a.example.test/");
    let b = TestIssuer::with_fresh_keys("https://b.example.test/");
    let authority = a
        .authority_builder(AUD)
        .scope_claims([ScopeClaim::Scp])
        .also_trust(b.authority_builder(AUD).scope_claims([ScopeClaim::Scope]))
        .build()
        .unwrap();
    let app = Router::new().route("/any", axum::routing::get(any_issuer)).with_state(authority.clone());
    let insufficient = r#"Bearer realm="https://api.example.test", error="insufficient_scope", scope="read""#;
    let (scp, scope) =
        (|i: &TestIssuer| i.access_token().claim("scp", "read"), |i: &TestIssuer| i.access_token().scope("read"));
    assert_eq!(get(&app, "/any", &scp(&a).sign()).await, (StatusCode::OK, String::new(), a.issuer().to_owned()));
    assert_eq!(get(&app, "/any", &scope(&b).sign()).await, (StatusCode::OK, String::new(), b.issuer().to_owned()));
    // Each issuer's token carrying only the other's claim lacks the scope, and so does one
    // whose own claim lacks it, whatever the other claim says (claims are never merged).
    for (what, token) in [
        ("a's token with `scope` only", scope(&a).sign()),
        ("b's token with `scp` only", scp(&b).sign()),
        ("a's token with `scp` other, `scope` read", a.access_token().claim("scp", "write").scope("read").sign()),
        ("b's token with `scope` other, `scp` read", b.access_token().scope("write").claim("scp", "read").sign()),
    ] {
        let (status, challenge, _) = get(&app, "/any", &token).await;
        assert_eq!((status, challenge.as_str()), (StatusCode::FORBIDDEN, insufficient), "{what}");
    }
    assert_eq!(authority.rejections_by_reason(), [("insufficient_scope", 4)]);
}

#[tokio::test]
async fn an_unreachable_added_issuer_fails_connect_naming_it() {
    let a = TestIssuer::with_fresh_keys("a");
    let server = IssuerServer::start(|base| format!("{base}/a/"), &a).await;
    let error = Authority::builder()
        .issuer(server.issuer())
        .audience(AUD)
        .also_trust(Authority::builder().issuer("http://127.0.0.1:9/b/").audience(AUD))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(error.setting(), "also_trust");
    assert!(error.is_unreachable());
    assert!(error.to_string().contains("for the issuer `http://127.0.0.1:9/b/` added with also_trust"), "{error}");
}

// ---------------------------------------------------------------------------------------
// A handler that requires one issuer

const STAFF_ISSUER: &str = "https://staff.example.test/";

#[requires_scope("read", iss = "https://staff.example.test/")]
async fn staff_only(token: AccessToken) -> String {
    token.issuer().to_owned()
}

#[requires_scope("read")]
async fn any_issuer(token: AccessToken) -> String {
    token.issuer().to_owned()
}

async fn get(app: &Router, path: &str, token: &str) -> (StatusCode, String, String) {
    let request = Request::get(path).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty());
    let response = app.clone().oneshot(request.unwrap()).await.unwrap();
    let status = response.status();
    let challenge = response.headers().get(header::WWW_AUTHENTICATE).map_or("", |v| v.to_str().unwrap()).to_owned();
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, challenge, body)
}

#[tokio::test]
async fn a_handler_requiring_an_issuer_refuses_the_other_trusted_issuers_tokens() {
    let customers = TestIssuer::with_fresh_keys("https://customers.example.test/");
    let staff = TestIssuer::with_fresh_keys(STAFF_ISSUER);
    let authority = customers.authority_builder(AUD).also_trust(staff.authority_builder(AUD)).build().unwrap();
    let app = Router::new()
        .route("/staff", axum::routing::get(staff_only))
        .route("/any", axum::routing::get(any_issuer))
        .with_state(authority.clone());
    let staff_token = staff.access_token().audience(AUD).scope("read").sign();
    let customer_token = customers.access_token().audience(AUD).scope("read").sign();

    assert_eq!(get(&app, "/staff", &staff_token).await, (StatusCode::OK, String::new(), STAFF_ISSUER.to_owned()));
    let (status, challenge, body) = get(&app, "/staff", &customer_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge,
        r#"Bearer realm="https://api.example.test", error="invalid_token", error_description="The access token was issued by an issuer this resource does not accept""#
    );
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["reason"], "issuer_not_allowed_here");
    // Without `iss`, any trusted issuer.
    assert_eq!(get(&app, "/any", &customer_token).await.2, "https://customers.example.test/");
    assert_eq!(get(&app, "/any", &staff_token).await.2, STAFF_ISSUER);
    assert_eq!(authority.rejections_by_reason(), [("issuer_not_allowed_here", 1)]);
}

// ---------------------------------------------------------------------------------------
// Presets, each against its issuer's documented token shapes, served over HTTP

/// A preset connected to `server` (discovery and keys over HTTP).
async fn connect(builder: AuthorityBuilder) -> Authority {
    builder.connect().await.unwrap()
}

#[tokio::test]
async fn auth0_accepts_both_token_profiles_with_the_userinfo_audience_and_rbac_permissions() {
    let keys = TestIssuer::with_fresh_keys("auth0");
    // A custom domain is just another domain to the preset: the issuer is what it serves.
    let server = IssuerServer::start(|base| format!("{base}/"), &keys).await;
    let authority = connect(Authority::auth0(&server.base, AUD)).await;
    assert_eq!(authority.issuer(), server.issuer());
    let t = now();
    let audience = json!([AUD, format!("{}userinfo", server.issuer())]);
    // The default "Auth0 token profile": typed `JWT`, the client in `azp`, no `jti`.
    let auth0_profile = token(
        &keys,
        &json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}),
        &json!({"iss": server.issuer(), "sub": "auth0|123456", "aud": audience, "azp": "my_client_id",
                "exp": t + 300, "iat": t, "scope": "openid profile read:patients read:admin",
                "permissions": ["read:patients", "read:admin"]}),
    );
    // The "RFC 9068 token profile": `at+jwt`, `client_id` and `jti`.
    let rfc9068_profile = token(
        &keys,
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"}),
        &json!({"iss": server.issuer(), "sub": "auth0|123456", "aud": audience, "client_id": "my_client_id",
                "exp": t + 300, "iat": t, "jti": "73WakrfVbNJBaAmhQtEeDv", "scope": "openid profile read:patients",
                "permissions": ["read:patients"]}),
    );
    for token in [&auth0_profile, &rfc9068_profile] {
        let verified = authority.verify(token).await.unwrap();
        assert_eq!(verified.client_id(), Some("my_client_id"));
        assert_eq!(verified.audiences().count(), 2);
        assert!(verified.has_scope("openid") && verified.has_scope("read:patients"));
    }
    // RBAC with one builder call: the scopes are the permissions.
    let rbac = connect(Authority::auth0(&server.base, AUD).scope_claims([ScopeClaim::Permissions])).await;
    let verified = rbac.verify(&auth0_profile).await.unwrap();
    assert_eq!(verified.scopes().iter().collect::<Vec<_>>(), ["read:admin", "read:patients"]);
    // An Auth0 ID token (aud = the client, `nonce`) is refused as such.
    let id_token = token(
        &keys,
        &json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}),
        &json!({"iss": server.issuer(), "sub": "auth0|123456", "aud": "my_client_id", "exp": t + 300, "iat": t,
                "nonce": "n-0S6", "sid": "s"}),
    );
    assert_eq!(outcome(&authority, &id_token).await, "id_token");
}

#[tokio::test]
async fn auth0_trusting_a_tenant_and_its_custom_domain_accepts_either_iss_and_fetches_each_once() {
    // One tenant reached through two domains: the same keys, an issuer for each (Auth0
    // puts the domain the token was requested through in `iss`).
    let keys = TestIssuer::with_fresh_keys("auth0");
    let tenant = IssuerServer::start(|base| format!("{base}/"), &keys).await;
    let custom = IssuerServer::start(|base| format!("{base}/"), &keys).await;
    let authority = connect(Authority::auth0(&tenant.base, AUD).also_trust(Authority::auth0(&custom.base, AUD))).await;
    assert_eq!(authority.issuers(), [tenant.issuer(), custom.issuer()]);
    let t = now();
    let signed = |keys: &TestIssuer, iss: &str| {
        token(
            keys,
            &json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}),
            &json!({"iss": iss, "sub": "auth0|123456", "aud": AUD, "azp": "my_client_id", "exp": t + 300,
                    "iat": t, "scope": "read:patients"}),
        )
    };
    for server in [&tenant, &custom] {
        let verified = authority.verify(&signed(&keys, server.issuer())).await.unwrap();
        assert_eq!(verified.issuer(), server.issuer());
        assert!(verified.has_scope("read:patients"));
    }
    // Another tenant's key (the same `kid`) under either domain's `iss`.
    let stranger = TestIssuer::with_fresh_keys("another tenant");
    for server in [&tenant, &custom] {
        assert_eq!(outcome(&authority, &signed(&stranger, server.issuer())).await, "invalid_signature");
    }
    assert_eq!((tenant.requests(), custom.requests()), (2, 2), "one discovery and one JWKS fetch each");
    assert_eq!(authority.stats().jwks_fetches, 2);
}

#[tokio::test]
async fn okta_custom_and_org_authorization_servers_read_scp_arrays_and_cid() {
    let keys = TestIssuer::with_fresh_keys("okta");
    let custom = IssuerServer::start(|base| format!("{base}/oauth2/aus1a2b3c"), &keys).await;
    let authority = connect(Authority::okta(&format!("{}/oauth2/aus1a2b3c", custom.base), "api://default")).await;
    assert_eq!(authority.issuer(), custom.issuer());
    let t = now();
    // Okta's access tokens carry no `typ`; `ver`, `cid`, `uid`, `scp` as an array.
    let header = json!({"kid": "rsa-1", "alg": "RS256"});
    let okta_token = |iss: &str, aud: &str| {
        token(
            &keys,
            &header,
            &json!({"ver": 1, "jti": "AT.0mP4JKAZX1iACIT4vbEDF7LpvDVjxypPMf0D7uX39RE", "iss": iss, "aud": aud,
                    "sub": "00uk1u7AsAk6dZL3z0g3", "iat": t, "exp": t + 3600, "cid": "0oah2s3t9fcAyb4E1d5e",
                    "uid": "00uk1u7AsAk6dZL3z0g3", "scp": ["openid", "email", "appointments:read"], "auth_time": t}),
        )
    };
    let verified = authority.verify(&okta_token(custom.issuer(), "api://default")).await.unwrap();
    assert_eq!(verified.client_id(), Some("0oah2s3t9fcAyb4E1d5e"));
    assert!(verified.has_scope("appointments:read"));
    assert_eq!(verified.raw_claims()["uid"], "00uk1u7AsAk6dZL3z0g3");
    // The default custom server, from the bare domain.
    assert_eq!(
        Authority::okta("dev-1.okta.com", AUD).build().unwrap().issuer(),
        "https://dev-1.okta.com/oauth2/default"
    );

    let org = IssuerServer::start(|base| base.to_owned(), &keys).await;
    let org_authority = connect(Authority::okta_org(&org.base, org.issuer())).await;
    assert_eq!(org_authority.issuer(), org.base);
    assert_eq!(outcome(&org_authority, &okta_token(org.issuer(), org.issuer())).await, "accepted");
    // The org server's token is not the custom server's, and the other way round.
    assert_eq!(outcome(&authority, &okta_token(org.issuer(), "api://default")).await, "invalid_issuer");
    assert_eq!(outcome(&org_authority, &okta_token(custom.issuer(), org.issuer())).await, "invalid_issuer");
}

/// Entra ID's header: `typ: JWT`, RS256, `kid` and (v1.0 and v2.0 alike) `x5t`.
fn entra_header() -> Value {
    json!({"typ": "JWT", "alg": "RS256", "x5t": "nOo3ZDrODXEK1jKWhXslHR_KXEg", "kid": "rsa-1"})
}

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const API_APP: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

#[tokio::test]
async fn entra_v2_reads_delegated_scp_and_app_only_roles_with_azp() {
    let keys = TestIssuer::with_fresh_keys("entra");
    let server = IssuerServer::start(|base| format!("{base}/{TENANT}/v2.0"), &keys).await;
    let authority = connect(Authority::entra_at(&server.base, TENANT, API_APP)).await;
    assert_eq!(authority.issuer(), server.issuer());
    let t = now();
    let delegated = token(
        &keys,
        &entra_header(),
        &json!({"aud": API_APP, "iss": server.issuer(), "iat": t, "nbf": t, "exp": t + 3600,
                "aio": "AXQAi/8I", "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "azpacr": "0", "name": "Abe Lincoln",
                "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474", "preferred_username": "abeli@microsoft.com",
                "rh": "I", "scp": "access_as_user Appointments.Read", "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
                "tid": TENANT, "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0"}),
    );
    let verified = authority.verify(&delegated).await.unwrap();
    assert!(verified.has_scope("Appointments.Read"));
    assert_eq!(verified.client_id(), Some(API_APP));
    let app_only = token(
        &keys,
        &entra_header(),
        &json!({"aud": API_APP, "iss": server.issuer(), "iat": t, "nbf": t, "exp": t + 3600,
                "azp": "1f2e3d4c-0000-4000-8000-000000000001", "azpacr": "1", "idtyp": "app",
                "oid": "d0c2c7b6-0000-4000-8000-000000000002", "rh": "I", "roles": ["Appointments.Read.All"],
                "sub": "d0c2c7b6-0000-4000-8000-000000000002", "tid": TENANT, "uti": "u", "ver": "2.0"}),
    );
    let verified = authority.verify(&app_only).await.unwrap();
    assert!(verified.has_scope("Appointments.Read.All"));
    assert_eq!(verified.client_id(), Some("1f2e3d4c-0000-4000-8000-000000000001"));
    // A v1.0 token of the same tenant names another issuer.
    let v1 = token(
        &keys,
        &entra_header(),
        &json!({"aud": API_APP, "iss": format!("https://sts.windows.net/{TENANT}/"), "iat": t, "exp": t + 3600,
                "appid": "a", "scp": "x", "sub": "s", "tid": TENANT, "ver": "1.0"}),
    );
    assert_eq!(outcome(&authority, &v1).await, "invalid_issuer");
}

#[tokio::test]
async fn entra_v1_names_the_client_with_appid() {
    let keys = TestIssuer::with_fresh_keys("entra-v1");
    let server = IssuerServer::start(|base| format!("{base}/{TENANT}/"), &keys).await;
    let authority = connect(Authority::entra_v1_at(&server.base, TENANT, "api://appointments")).await;
    assert_eq!(authority.issuer(), server.issuer());
    let t = now();
    let claims = |with_appid: bool| {
        let mut claims = json!({"aud": "api://appointments", "iss": server.issuer(), "iat": t, "nbf": t,
                "exp": t + 3600, "acr": "1", "aio": "ASQA2/8D", "amr": ["pwd"], "appidacr": "0",
                "family_name": "Lincoln", "given_name": "Abe", "ipaddr": "192.0.2.1", "name": "Abe Lincoln",
                "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474", "scp": "user_impersonation", "sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA",
                "tid": TENANT, "unique_name": "abeli@microsoft.com", "upn": "abeli@microsoft.com", "uti": "fqiBqXLPj0eQa82S-IYFAA",
                "ver": "1.0"});
        if with_appid {
            claims["appid"] = json!("75dbe77f-10a3-4e59-85fd-8c127544f17c");
        }
        claims
    };
    let verified = authority.verify(&token(&keys, &entra_header(), &claims(true))).await.unwrap();
    assert_eq!(verified.client_id(), Some("75dbe77f-10a3-4e59-85fd-8c127544f17c"));
    assert!(verified.has_scope("user_impersonation"));
    // A `JWT`-typed token naming no client is not taken for an access token.
    assert_eq!(outcome(&authority, &token(&keys, &entra_header(), &claims(false))).await, "invalid_claim");
    // Without the v1 preset, `appid` names no client.
    let v2_preset =
        connect(Authority::entra_at(&server.base, TENANT, "api://appointments").issuer(server.issuer())).await;
    assert_eq!(outcome(&v2_preset, &token(&keys, &entra_header(), &claims(true))).await, "invalid_claim");
}

#[tokio::test]
async fn entra_multi_tenant_checks_the_tenant_template_against_tid_and_the_allowlist() {
    let keys = TestIssuer::with_fresh_keys("entra-common");
    let server = IssuerServer::start(|base| format!("{base}/common/v2.0"), &keys).await;
    let (contoso, fabrikam, other) = ("tenant-contoso", "tenant-fabrikam", "tenant-other");
    let authority = connect(Authority::entra_multi_tenant_at(&server.base, [contoso, fabrikam], API_APP)).await;
    assert_eq!(authority.issuer(), format!("{}/{{tenantid}}/v2.0", server.base));
    assert_eq!(
        authority.issuers(),
        [format!("{}/{contoso}/v2.0", server.base), format!("{}/{fabrikam}/v2.0", server.base)]
    );
    let t = now();
    let tenant_token = |iss_tenant: &str, tid: &str| {
        token(
            &keys,
            &entra_header(),
            &json!({"aud": API_APP, "iss": format!("{}/{iss_tenant}/v2.0", server.base), "iat": t, "nbf": t,
                    "exp": t + 3600, "azp": "c", "scp": "access_as_user", "sub": "s", "oid": "o", "tid": tid, "ver": "2.0"}),
        )
    };
    assert_eq!(outcome(&authority, &tenant_token(contoso, contoso)).await, "accepted");
    assert_eq!(outcome(&authority, &tenant_token(fabrikam, fabrikam)).await, "accepted");
    assert_eq!(outcome(&authority, &tenant_token(other, other)).await, "invalid_issuer", "a tenant not allowed");
    assert_eq!(outcome(&authority, &tenant_token(contoso, fabrikam)).await, "invalid_issuer", "`tid` is not `iss`'s");
    assert_eq!(outcome(&authority, &tenant_token("{tenantid}", "{tenantid}")).await, "invalid_issuer");
    assert_eq!(server.state.requests.load(Ordering::SeqCst), 1, "the common key set only, no discovery");
    let empty: [&str; 0] = [];
    let error = Authority::entra_multi_tenant(empty, API_APP).build().unwrap_err();
    assert_eq!(error.setting(), "tenants");
}

#[tokio::test]
async fn keycloak_reads_azp_the_audience_mappers_aud_and_roles_when_asked() {
    let keys = TestIssuer::with_fresh_keys("keycloak");
    let server = IssuerServer::start(|base| format!("{base}/realms/clinic"), &keys).await;
    let authority = connect(Authority::keycloak(&server.base, "clinic", "appointments-api")).await;
    assert_eq!(authority.issuer(), server.issuer());
    let t = now();
    let access = json!({"exp": t + 300, "iat": t, "jti": "onrtac:4c2a5d1e", "iss": server.issuer(),
        "aud": ["appointments-api", "account"], "sub": "f2a6c5e0-7c5b-4b7e-9c1d-2f1f3b0e8a11", "typ": "Bearer",
        "azp": "frontend", "sid": "0d1f", "acr": "1", "allowed-origins": ["http://localhost:5173"],
        "realm_access": {"roles": ["offline_access", "uma_authorization", "default-roles-clinic", "clinician"]},
        "resource_access": {"appointments-api": {"roles": ["appointments:read", "appointments:write"]},
                            "account": {"roles": ["manage-account"]}},
        "scope": "openid email profile", "email_verified": true, "preferred_username": "alice"});
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"});
    let verified = authority.verify(&token(&keys, &header, &access)).await.unwrap();
    assert_eq!(verified.client_id(), Some("frontend"));
    assert!(verified.has_scope("email") && !verified.has_scope("clinician"));
    let realm =
        connect(Authority::keycloak(&server.base, "clinic", "appointments-api").scope_claims([ScopeClaim::RealmRoles]))
            .await;
    let verified = realm.verify(&token(&keys, &header, &access)).await.unwrap();
    assert!(verified.has_scope("clinician") && !verified.has_scope("email"));
    let client = connect(
        Authority::keycloak(&server.base, "clinic", "appointments-api").scope_claims([ScopeClaim::ClientRoles]),
    )
    .await;
    let verified = client.verify(&token(&keys, &header, &access)).await.unwrap();
    assert_eq!(verified.scopes().iter().collect::<Vec<_>>(), ["appointments:read", "appointments:write"]);
    // A role list of the wrong shape is refused, not skipped.
    let mut bad = access.clone();
    bad["realm_access"]["roles"] = json!("clinician");
    assert_eq!(outcome(&realm, &token(&keys, &header, &bad)).await, "invalid_scope_claim");
    // Without the audience mapper, `aud` is only `account`.
    let mut unmapped = access.clone();
    unmapped["aud"] = json!("account");
    assert_eq!(outcome(&authority, &token(&keys, &header, &unmapped)).await, "invalid_audience");
    // Keycloak's ID and refresh tokens, told apart by their `typ` claim.
    for (typ, reason) in [("ID", "id_token"), ("Refresh", "not_an_access_token")] {
        let mut other = access.clone();
        other["typ"] = json!(typ);
        assert_eq!(outcome(&authority, &token(&keys, &header, &other)).await, reason);
    }
}

#[tokio::test]
async fn cognito_checks_client_id_and_token_use_and_refuses_id_tokens() {
    let keys = TestIssuer::with_fresh_keys("cognito");
    let pool = "us-east-1_EXAMPLE";
    let server = IssuerServer::start(|base| format!("{base}/{pool}"), &keys).await;
    let authority = connect(Authority::cognito_at(&server.base, pool, ["1example23456789"])).await;
    assert_eq!(authority.issuer(), server.issuer());
    let t = now();
    let header = json!({"kid": "rsa-1", "alg": "RS256"});
    let access = json!({"sub": "aaaaaaaa-bbbb-cccc-dddd-example", "cognito:groups": ["admin"], "iss": server.issuer(),
        "version": 2, "client_id": "1example23456789", "origin_jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "event_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "token_use": "access",
        "scope": "aws.cognito.signin.user.admin phone openid profile email", "auth_time": t, "exp": t + 3600,
        "iat": t, "jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "username": "my-test-user"});
    let verified = authority.verify(&token(&keys, &header, &access)).await.unwrap();
    assert_eq!(verified.client_id(), Some("1example23456789"));
    assert_eq!(verified.audiences().count(), 0);
    assert!(verified.has_scope("openid"));
    let id = json!({"at_hash": "aaaaaaaa", "sub": "aaaaaaaa-bbbb-cccc-dddd-example", "cognito:groups": ["admin"],
        "email_verified": true, "iss": server.issuer(), "cognito:username": "my-test-user",
        "origin_jti": "aaaaaaaa", "aud": "1example23456789", "event_id": "e", "token_use": "id",
        "auth_time": t, "exp": t + 3600, "iat": t, "jti": "j", "email": "my-test-user@example.com"});
    assert_eq!(outcome(&authority, &token(&keys, &header, &id)).await, "id_token");
    let mut id_without_hash = id.clone();
    id_without_hash.as_object_mut().unwrap().remove("at_hash");
    assert_eq!(outcome(&authority, &token(&keys, &header, &id_without_hash)).await, "id_token");
    let mut other_client = access.clone();
    other_client["client_id"] = json!("another-app-client");
    assert_eq!(outcome(&authority, &token(&keys, &header, &other_client)).await, "client_not_allowed");
    let mut unmarked = access.clone();
    unmarked.as_object_mut().unwrap().remove("token_use");
    assert_eq!(outcome(&authority, &token(&keys, &header, &unmarked)).await, "not_an_access_token");
    // An `aud` the preset did not ask for is refused (Cognito's access tokens carry none).
    let mut with_aud = access.clone();
    with_aud["aud"] = json!("1example23456789");
    assert_eq!(outcome(&authority, &token(&keys, &header, &with_aud)).await, "invalid_audience");
    assert_eq!(
        Authority::cognito("eu-west-1", pool, ["c"]).build().unwrap().issuer(),
        "https://cognito-idp.eu-west-1.amazonaws.com/us-east-1_EXAMPLE"
    );
}
