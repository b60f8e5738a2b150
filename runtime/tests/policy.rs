//! The route table built from the `#[requires_scope]` declarations, the RFC 9728
//! protected resource metadata served from it, and the `resource_metadata` challenges.

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::{
    Router,
    body::Body,
    http::{Method, Request, header},
    routing::{delete, get},
};
use http_body_util::BodyExt;
use scopegate::{
    AccessToken, Authority,
    policy::{self, Policy, ProtectedResource, Requirement},
    requires_scope,
    testing::TestIssuer,
};
use tower::ServiceExt;

const AUD: &str = "https://api.example.test";

#[requires_scope("read:appointments")]
async fn list() -> &'static str {
    "[]"
}

#[requires_scope(any("admin", all("write:appointments", "delete:appointments")))]
async fn remove() -> &'static str {
    "gone"
}

#[requires_scope("reports:read", aud = "https://reports.example.test")]
async fn reports() -> &'static str {
    "reports"
}

#[requires_scope("payments:write", iss = "https://workforce.example.test/", introspect)]
async fn pay() -> &'static str {
    "paid"
}

async fn me(token: AccessToken) -> String {
    token.subject().to_owned()
}

async fn health() -> &'static str {
    "ok"
}

async fn forgotten() -> &'static str {
    "open by accident"
}

fn policy() -> Policy {
    Policy::new(AUD)
        .route(Method::GET, "/appointments", list)
        .route(Method::DELETE, "/appointments/{id}", remove)
        .route(Method::GET, "/reports", reports)
        .authenticated(Method::GET, "/me", me)
        .public(Method::GET, "/health", health)
}

fn app(authority: Authority, policy: &Policy) -> Router {
    let metadata = ProtectedResource::new(AUD, [TestIssuer::new().issuer()]).scopes(policy.scopes());
    Router::new()
        .route("/appointments", get(list))
        .route("/appointments/{id}", delete(remove))
        .route("/reports", get(reports))
        .route("/me", get(me))
        .route("/health", get(health))
        .merge(metadata.router())
        .with_state(authority)
}

async fn call(app: &Router, method: Method, path: &str, token: Option<&str>) -> (u16, Option<String>, String) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let challenge = response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, challenge, body)
}

#[test]
fn every_guarded_handler_is_declared_with_its_path_scopes_audience_and_location() {
    let declaration = policy::declaration_of(&reports).unwrap();
    assert_eq!(declaration.handler(), "policy::reports");
    assert_eq!(declaration.scopes().to_string(), r#"all("reports:read")"#);
    assert_eq!(declaration.audience(), Some("https://reports.example.test"));
    assert!(declaration.file().ends_with("policy.rs"), "{}", declaration.file());
    let attribute =
        include_str!("policy.rs").lines().position(|l| l.starts_with("#[requires_scope(\"reports:read\"")).unwrap();
    assert_eq!(declaration.line() as usize, attribute + 1);
    assert!(policy::declaration_of(&health).is_none());
    let mut names: Vec<_> = policy::declarations().map(|d| d.handler()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "policy::list",
            // `handler()` is `module_path!()` and the name: the three handlers named
            // `local` in function bodies (two of them told apart by their type's path).
            "policy::local",
            "policy::local",
            "policy::local",
            "policy::pay",
            "policy::pay_with_proof",
            "policy::remove",
            "policy::reports",
            "policy::statement"
        ]
    );
}

#[test]
fn the_route_table_reads_each_requirement_from_the_handler() {
    let policy = policy();
    let rows: Vec<_> = policy
        .routes()
        .iter()
        .map(|r| (r.method().as_str(), r.path(), r.requirement().to_string(), r.audience()))
        .collect();
    assert_eq!(
        rows,
        [
            ("GET", "/appointments", r#""read:appointments""#.to_owned(), Some(AUD)),
            (
                "DELETE",
                "/appointments/{id}",
                r#"any("admin", all("write:appointments", "delete:appointments"))"#.to_owned(),
                Some(AUD)
            ),
            ("GET", "/reports", r#""reports:read""#.to_owned(), Some("https://reports.example.test")),
            ("GET", "/me", "any valid access token".to_owned(), Some(AUD)),
            ("GET", "/health", "public".to_owned(), None),
        ]
    );
    assert!(policy.unprotected().is_empty());
    assert_eq!(
        policy.scopes(),
        ["read:appointments", "admin", "write:appointments", "delete:appointments", "reports:read"]
    );
}

#[test]
fn a_route_neither_guarded_nor_marked_is_listed_as_unprotected() {
    let policy = policy().route(Method::GET, "/forgotten", forgotten).route(Method::GET, "/health2", health);
    let open: Vec<_> = policy.unprotected().iter().map(|r| (r.path(), r.handler(), r.requirement())).collect();
    assert_eq!(
        open,
        [
            ("/forgotten", "policy::forgotten", Requirement::Unprotected),
            ("/health2", "policy::health", Requirement::Unprotected)
        ]
    );
}

#[test]
fn the_table_prints_aligned_columns() {
    let table =
        Policy::new(AUD).route(Method::GET, "/appointments", list).public(Method::GET, "/health", health).to_string();
    assert_eq!(
        table,
        "METHOD  PATH           REQUIREMENT          AUDIENCE                  HANDLER\n\
         GET     /appointments  \"read:appointments\"  https://api.example.test  policy::list\n\
         GET     /health        public               -                         policy::health\n"
    );
}

#[test]
fn the_route_table_shows_a_handlers_iss_and_introspect() {
    let declaration = policy::declaration_of(&pay).unwrap();
    assert_eq!((declaration.issuer(), declaration.introspects()), (Some("https://workforce.example.test/"), true));
    let plain = policy::declaration_of(&list).unwrap();
    assert_eq!((plain.issuer(), plain.introspects()), (None, false));

    let policy = Policy::new(AUD).route(Method::POST, "/pay", pay).route(Method::GET, "/appointments", list);
    let rows: Vec<_> = policy.routes().iter().map(|r| (r.path(), r.issuer(), r.introspects())).collect();
    assert_eq!(rows, [("/pay", Some("https://workforce.example.test/"), true), ("/appointments", None, false)]);
    assert_eq!(
        policy.to_string(),
        "METHOD  PATH           REQUIREMENT                                                            AUDIENCE                  HANDLER\n\
         POST    /pay           \"payments:write\", iss = \"https://workforce.example.test/\", introspect  https://api.example.test  policy::pay\n\
         GET     /appointments  \"read:appointments\"                                                    https://api.example.test  policy::list\n"
    );
}

#[tokio::test]
async fn case_171_the_metadata_document_names_the_resource_issuer_and_the_declared_scopes() {
    let issuer = TestIssuer::new();
    let app = app(issuer.authority(AUD), &policy());
    let (status, challenge, body) = call(&app, Method::GET, "/.well-known/oauth-protected-resource", None).await;
    assert_eq!((status, challenge), (200, None));
    assert_eq!(
        body,
        format!(
            r#"{{"authorization_servers":["{}"],"bearer_methods_supported":["header"],"resource":"https://api.example.test","scopes_supported":["read:appointments","admin","write:appointments","delete:appointments","reports:read"]}}"#,
            issuer.issuer()
        )
    );
}

#[tokio::test]
async fn a_resource_with_a_path_is_also_served_at_the_path_suffixed_metadata_url() {
    let router: Router =
        ProtectedResource::new("https://example.test/tenant/api", ["https://issuer.example.test/"]).router();
    for path in ["/.well-known/oauth-protected-resource/tenant/api", "/.well-known/oauth-protected-resource"] {
        let (status, _, body) = call(&router, Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(r#""resource":"https://example.test/tenant/api""#), "{body}");
    }
}

#[tokio::test]
async fn case_147_challenges_carry_resource_metadata_and_a_guarded_routes_scope_when_enabled() {
    let issuer = TestIssuer::new();
    let authority = issuer.authority_builder(AUD).protected_resource_metadata(true).build().unwrap();
    let app = app(authority, &policy());
    let meta = r#"resource_metadata="https://api.example.test/.well-known/oauth-protected-resource""#;
    let (status, challenge, _) = call(&app, Method::DELETE, "/appointments/7", None).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (401, Some(format!(r#"Bearer realm="{AUD}", scope="admin", {meta}"#).as_str()))
    );
    let (status, challenge, _) = call(&app, Method::GET, "/appointments", Some("not-a-jwt")).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (
            401,
            Some(
                format!(
                    r#"Bearer realm="{AUD}", error="invalid_token", error_description="The access token is malformed", scope="read:appointments", {meta}"#
                )
                .as_str()
            )
        )
    );
    let (status, challenge, _) = call(&app, Method::GET, "/me", None).await;
    assert_eq!((status, challenge.as_deref()), (401, Some(format!(r#"Bearer realm="{AUD}", {meta}"#).as_str())));
    let token = issuer.access_token().scope("write:appointments").sign();
    let (status, challenge, _) = call(&app, Method::DELETE, "/appointments/7", Some(&token)).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (403, Some(format!(r#"Bearer realm="{AUD}", error="insufficient_scope", scope="admin", {meta}"#).as_str()))
    );
}

#[tokio::test]
async fn challenges_have_no_resource_metadata_unless_enabled() {
    let app = app(TestIssuer::new().authority(AUD), &policy());
    let (status, challenge, _) = call(&app, Method::DELETE, "/appointments/7", None).await;
    assert_eq!((status, challenge.as_deref()), (401, Some(format!(r#"Bearer realm="{AUD}""#).as_str())));
}

#[tokio::test]
async fn the_metadata_url_comes_from_the_public_url_never_from_the_host_header() {
    let authority = TestIssuer::new()
        .authority_builder("api://appointments")
        .public_url("https://public.example.test/base")
        .build()
        .unwrap();
    let app = Router::new().route("/me", get(me)).with_state(authority);
    let response = app
        .oneshot(Request::builder().uri("/me").header(header::HOST, "evil.example").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer realm="api://appointments", resource_metadata="https://public.example.test/.well-known/oauth-protected-resource/base""#
    );
}

#[test]
fn metadata_without_a_url_to_form_it_from_is_a_configuration_error() {
    let error = TestIssuer::new()
        .authority_builder("api://appointments")
        .protected_resource_metadata(true)
        .build()
        .unwrap_err();
    assert_eq!(error.setting(), "audience");
    assert!(error.to_string().contains("`api://appointments` is not one: set `public_url`"), "{error}");
    let error = TestIssuer::new().authority_builder(AUD).public_url("https://a.test/\"x").build().unwrap_err();
    assert_eq!(error.setting(), "public_url");
}

/// An unguarded handler of the same name as a guarded one, one module further down.
mod v2 {
    pub(crate) async fn list() -> &'static str {
        "[] in v2, open by accident"
    }
}

#[test]
fn a_handler_is_found_by_its_exact_path_never_by_a_guarded_namesake() {
    assert!(policy::declaration_of(&v2::list).is_none());
    let policy =
        Policy::new(AUD).route(Method::GET, "/appointments", list).route(Method::GET, "/v2/appointments", v2::list);
    let requirements: Vec<_> = policy.routes().iter().map(|r| (r.handler(), r.requirement())).collect();
    assert_eq!(
        requirements,
        [
            ("policy::list", Requirement::Scopes(policy::declaration_of(&list).unwrap().scopes())),
            ("policy::v2::list", Requirement::Unprotected),
        ]
    );
    assert_eq!(policy.unprotected().iter().map(|r| r.path()).collect::<Vec<_>>(), ["/v2/appointments"]);
}

#[test]
fn two_handlers_of_one_name_in_two_function_bodies_are_told_apart() {
    fn first() -> Option<&'static policy::Declaration> {
        #[requires_scope("first:read")]
        async fn local() -> &'static str {
            "first"
        }
        policy::declaration_of(&local)
    }
    fn second() -> Option<&'static policy::Declaration> {
        #[requires_scope("second:read")]
        async fn local() -> &'static str {
            "second"
        }
        policy::declaration_of(&local)
    }
    fn third() -> Option<&'static policy::Declaration> {
        async fn local() -> &'static str {
            "open"
        }
        policy::declaration_of(&local)
    }
    assert_eq!(first().unwrap().scopes().to_string(), r#"all("first:read")"#);
    assert_eq!(second().unwrap().scopes().to_string(), r#"all("second:read")"#);
    assert!(third().is_none());
}

#[test]
fn a_guarded_handler_listed_as_public_or_authenticated_is_listed_with_its_scopes() {
    let policy =
        Policy::new(AUD).public(Method::GET, "/appointments", list).authenticated(Method::GET, "/reports", reports);
    let requirements: Vec<_> = policy.routes().iter().map(|r| (r.requirement(), r.audience())).collect();
    assert_eq!(
        requirements,
        [
            (Requirement::Scopes(policy::declaration_of(&list).unwrap().scopes()), Some(AUD)),
            (
                Requirement::Scopes(policy::declaration_of(&reports).unwrap().scopes()),
                Some("https://reports.example.test")
            ),
        ]
    );
}

#[test]
fn a_handler_declared_inside_a_function_body_is_found_by_its_full_path() {
    #[requires_scope("local:read")]
    async fn local() -> &'static str {
        "local"
    }
    let declaration = policy::declaration_of(&local).unwrap();
    assert_eq!(
        (declaration.handler(), declaration.scopes().to_string()),
        ("policy::local", r#"all("local:read")"#.to_owned())
    );
    let policy = Policy::new(AUD).route(Method::GET, "/local", local);
    assert_eq!(
        policy.routes()[0].handler(),
        "policy::a_handler_declared_inside_a_function_body_is_found_by_its_full_path::local"
    );
    assert!(policy.unprotected().is_empty());
}

/// The metadata says what the authority does with DPoP: its proof algorithms when DPoP is
/// on, `dpop_bound_access_tokens_required` only when bearer tokens are refused, and
/// nothing about DPoP when it is off.
#[test]
fn the_metadata_states_the_authoritys_dpop_policy() {
    use scopegate::{Algorithm, dpop::DpopPolicy};
    let issuer = TestIssuer::new();
    let document = |authority: &scopegate::Authority| {
        ProtectedResource::new(AUD, authority.issuers()).dpop_from(authority).document()
    };

    let off = document(&issuer.authority(AUD));
    assert_eq!(
        (off.get("dpop_signing_alg_values_supported"), off.get("dpop_bound_access_tokens_required")),
        (None, None)
    );

    let allowed =
        issuer.authority_builder(AUD).dpop(DpopPolicy::Allowed).dpop_algorithms([Algorithm::ES256]).build().unwrap();
    let allowed = document(&allowed);
    assert_eq!(allowed["dpop_signing_alg_values_supported"], serde_json::json!(["ES256"]));
    assert_eq!(allowed.get("dpop_bound_access_tokens_required"), None);

    let required = issuer.authority_builder(AUD).dpop(DpopPolicy::Required).build().unwrap();
    assert_eq!(required.dpop_policy(), Some(DpopPolicy::Required));
    let names: Vec<&str> = required.dpop_algorithms().iter().map(|alg| alg.as_str()).collect();
    let required = document(&required);
    assert_eq!(required["dpop_signing_alg_values_supported"], serde_json::json!(names));
    assert_eq!(required["dpop_bound_access_tokens_required"], true);
}

/// A `dpop = "required"` operation tells the OpenAPI reader that bearer tokens are
/// refused there; the others keep the bearer wording.
#[test]
fn the_openapi_401_of_a_dpop_only_operation_says_dpop_is_required() {
    use scopegate::openapi::{
        OpenApiSecurity,
        utoipa::openapi::{Info, OpenApi, Paths, RefOr},
    };
    #[requires_scope("payments:write", dpop = "required")]
    async fn pay_with_proof() {}
    #[requires_scope("payments:read")]
    async fn statement() {}
    let policy =
        Policy::new(AUD).route(Method::POST, "/pay", pay_with_proof).route(Method::GET, "/statement", statement);
    let document = policy.openapi(OpenApi::new(Info::new("API", "1"), Paths::new()), &OpenApiSecurity::bearer());
    let unauthorized = |path: &str, method: &str| {
        let item = &document.paths.paths[path];
        let operation = if method == "post" { item.post.as_ref() } else { item.get.as_ref() };
        match &operation.unwrap().responses.responses["401"] {
            RefOr::T(response) => response.description.clone(),
            RefOr::Ref(_) => panic!("an inline response"),
        }
    };
    assert_eq!(
        unauthorized("/pay", "post"),
        "No DPoP-bound access token with a valid DPoP proof (RFC 9449: `Authorization: DPoP …` and a `DPoP` header; bearer tokens are refused), or one that is invalid, expired or for another API"
    );
    assert_eq!(
        unauthorized("/statement", "get"),
        "No access token, or one that is invalid, expired or for another API"
    );
}
