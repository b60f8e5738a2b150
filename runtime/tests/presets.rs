//! The issuer presets choose the issuer URL form, the token profile and the scope claim
//! each issuer needs.

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::{Router, body::Body, http::Request, routing::get};
use http_body_util::BodyExt;
use scopegate::{AccessToken, Authority, AuthorityBuilder, testing::TestIssuer};
use serde_json::json;
use tower::ServiceExt;

async fn scopes(token: AccessToken) -> String {
    format!("{}|{}", token.client_id().unwrap_or("-"), token.scopes().iter().collect::<Vec<_>>().join(","))
}

async fn call(authority: &Authority, token: &str) -> (u16, String) {
    let app = Router::new().route("/", get(scopes)).with_state(authority.clone());
    let request = Request::get("/").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn with_test_keys(builder: AuthorityBuilder, issuer: &TestIssuer) -> Authority {
    builder.static_jwks(issuer.jwks().to_string()).build().unwrap()
}

#[tokio::test]
async fn auth0_accepts_jwt_typed_access_tokens_with_azp_and_refuses_id_tokens() {
    let authority =
        with_test_keys(Authority::auth0("tenant.eu.auth0.com", "https://api.example.test"), &TestIssuer::new());
    assert_eq!(authority.issuer(), "https://tenant.eu.auth0.com/");
    let issuer = TestIssuer::new().with_issuer("https://tenant.eu.auth0.com/");
    let token = issuer
        .access_token()
        .typ("JWT")
        .without_claim("client_id")
        .without_claim("jti")
        .claim("azp", "spa")
        .scope("read:appointments")
        .sign();
    assert_eq!(call(&authority, &token).await, (200, "spa|read:appointments".to_owned()));
    let id_token = issuer.id_token("spa").audience("https://api.example.test").sign();
    assert_eq!(call(&authority, &id_token).await.0, 401);
}

#[tokio::test]
async fn okta_reads_scp_arrays_and_cid() {
    let authority = with_test_keys(Authority::okta("dev-1.okta.com", "api://default"), &TestIssuer::new());
    assert_eq!(authority.issuer(), "https://dev-1.okta.com/oauth2/default");
    let issuer = TestIssuer::new().with_issuer("https://dev-1.okta.com/oauth2/default");
    let token = issuer
        .access_token()
        .without_header("typ")
        .audience("api://default")
        .without_claim("client_id")
        .claim("cid", "0oa1")
        .claim("scp", json!(["read", "write"]))
        .sign();
    assert_eq!(call(&authority, &token).await, (200, "0oa1|read,write".to_owned()));
    let custom = Authority::okta("https://dev-1.okta.com/oauth2/aus1/", "api://x");
    assert_eq!(with_test_keys(custom, &TestIssuer::new()).issuer(), "https://dev-1.okta.com/oauth2/aus1");
}

#[tokio::test]
async fn entra_reads_space_delimited_scp() {
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let authority = with_test_keys(Authority::entra(tenant, "api://my-api"), &TestIssuer::new());
    assert_eq!(authority.issuer(), format!("https://login.microsoftonline.com/{tenant}/v2.0"));
    let issuer = TestIssuer::new().with_issuer(authority.issuer());
    let token = issuer
        .access_token()
        .typ("JWT")
        .audience("api://my-api")
        .without_claim("client_id")
        .claim("azp", "app-1")
        .claim("scp", "Appointments.Read Appointments.Write")
        .sign();
    assert_eq!(call(&authority, &token).await, (200, "app-1|Appointments.Read,Appointments.Write".to_owned()));
}

#[test]
fn entra_v1_and_multi_tenant_name_the_public_entra_issuers_and_keys() {
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let v1 = with_test_keys(Authority::entra_v1(tenant, "api://my-api"), &TestIssuer::new());
    assert_eq!(v1.issuer(), format!("https://sts.windows.net/{tenant}/"));
    // The multi-tenant preset fetches the common key set, so it cannot take static keys;
    // building it would start that fetch. The builder says what it would fetch and trust.
    let multi = format!("{:?}", Authority::entra_multi_tenant([tenant], "api://my-api"));
    for field in [
        r#"issuer: Some("https://login.microsoftonline.com/{tenantid}/v2.0")"#,
        r#"jwks_uri: Some("https://login.microsoftonline.com/common/discovery/v2.0/keys")"#,
        r#"tenants: Some(["72f988bf-86f1-41af-91ab-2d7cd011db47"])"#,
    ] {
        assert!(multi.contains(field), "{field} in {multi}");
    }
}

#[tokio::test]
async fn entra_v1_refuses_a_v2_token_of_the_same_tenant() {
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let authority = with_test_keys(Authority::entra_v1(tenant, "api://my-api"), &TestIssuer::new());
    // The same claims, both client claims, under each version's issuer.
    let token = |iss: &str, ver: &str| {
        TestIssuer::new()
            .with_issuer(iss)
            .access_token()
            .typ("JWT")
            .audience("api://my-api")
            .without_claim("client_id")
            .claim("appid", "app-1")
            .claim("azp", "app-1")
            .claim("scp", "Appointments.Read")
            .claim("tid", tenant)
            .claim("ver", ver)
            .sign()
    };
    let v1 = token(&format!("https://sts.windows.net/{tenant}/"), "1.0");
    assert_eq!(call(&authority, &v1).await, (200, "app-1|Appointments.Read".to_owned()));
    let v2 = token(&format!("https://login.microsoftonline.com/{tenant}/v2.0"), "2.0");
    assert_eq!(authority.verify(&v2).await.unwrap_err().reason(), "invalid_issuer");
    assert_eq!(call(&authority, &v2).await.0, 401);
}

#[tokio::test]
async fn keycloak_refuses_its_id_and_refresh_tokens_by_their_typ_claim() {
    let authority =
        with_test_keys(Authority::keycloak("https://sso.example/", "demo", "appointments"), &TestIssuer::new());
    assert_eq!(authority.issuer(), "https://sso.example/realms/demo");
    let issuer = TestIssuer::new().with_issuer(authority.issuer());
    let access = issuer
        .access_token()
        .typ("JWT")
        .audience("appointments")
        .without_claim("client_id")
        .claim("azp", "web")
        .claim("typ", "Bearer")
        .scope("profile read")
        .sign();
    assert_eq!(call(&authority, &access).await, (200, "web|profile,read".to_owned()));
    for marker in ["ID", "Refresh"] {
        let token = issuer
            .access_token()
            .typ("JWT")
            .audience("appointments")
            .without_claim("client_id")
            .claim("azp", "web")
            .claim("typ", marker)
            .sign();
        assert_eq!(call(&authority, &token).await.0, 401, "{marker}");
    }
}
