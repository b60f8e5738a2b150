//! The issuer presets: a builder configured for Auth0, Okta, Entra ID, Amazon Cognito or
//! Keycloak, from the values their consoles show.

use super::{Authority, AuthorityBuilder};
use crate::config::{Profile, ScopeClaim};

impl Authority {
    /// Auth0: issuer `https://{domain}/`, the compatible profile (Auth0's default token
    /// profile types access tokens `JWT`; tenants on the RFC 9068 profile send `at+jwt`,
    /// which is accepted either way), scopes from `scope`. For RBAC `permissions`, add
    /// `.scope_claims([ScopeClaim::Permissions])`. Keys come from discovery.
    ///
    /// `domain` is the tenant's domain (`tenant.us.auth0.com`) or its custom domain
    /// (`login.example.com`): Auth0 puts whichever the token was requested through in
    /// `iss`, so an API reached through both trusts both with
    /// [`also_trust`](AuthorityBuilder::also_trust). A domain given with `http://` keeps
    /// it (loopback only, for tests).
    pub fn auth0(domain: &str, audience: impl Into<String>) -> AuthorityBuilder {
        Self::builder()
            .issuer(format!("{}/", origin(domain)))
            .audience(audience)
            .profile(Profile::Compatible)
            .scope_claims([ScopeClaim::Scope])
    }

    /// Okta: issuer `https://{domain}/oauth2/default` (pass `domain` with an
    /// `/oauth2/{server}` path for another custom authorization server), the compatible
    /// profile, scopes from `scp` (an array), the client from `cid`. Keys come from
    /// discovery.
    pub fn okta(domain: &str, audience: impl Into<String>) -> AuthorityBuilder {
        let domain = origin(domain);
        let issuer = if domain.contains("/oauth2/") { domain } else { format!("{domain}/oauth2/default") };
        Self::builder().issuer(issuer).audience(audience).profile(Profile::Compatible).scope_claims([ScopeClaim::Scp])
    }

    /// Okta's org authorization server: issuer `https://{domain}` (no path), otherwise as
    /// [`okta`](Self::okta). Its access tokens are minted for Okta's own APIs (`aud` is the
    /// org URL), so an API of yours normally uses a custom authorization server instead.
    pub fn okta_org(domain: &str, audience: impl Into<String>) -> AuthorityBuilder {
        Self::builder()
            .issuer(origin(domain))
            .audience(audience)
            .profile(Profile::Compatible)
            .scope_claims([ScopeClaim::Scp])
    }

    /// Microsoft Entra ID (v2.0 tokens): issuer
    /// `https://login.microsoftonline.com/{tenant_id}/v2.0`, the compatible profile,
    /// scopes from `scp` (space-delimited), the client from `azp`. The audience is the
    /// API's application ID (or its App ID URI, as configured in the app registration).
    /// Delegated tokens carry `scp`, app-only (client-credentials) tokens carry app
    /// `roles`: both are read, `scp` first.
    pub fn entra(tenant_id: &str, audience: impl Into<String>) -> AuthorityBuilder {
        Self::entra_at(ENTRA_LOGIN, tenant_id, audience)
    }

    /// [`entra`](Self::entra) at another login host: a national cloud
    /// (`https://login.microsoftonline.us`, `https://login.chinacloudapi.cn`), or a test's
    /// loopback server.
    pub fn entra_at(login_url: &str, tenant_id: &str, audience: impl Into<String>) -> AuthorityBuilder {
        Self::builder()
            .issuer(format!("{}/{tenant_id}/v2.0", login_url.trim_end_matches('/')))
            .audience(audience)
            .profile(Profile::Compatible)
            .scope_claims([ScopeClaim::Scp, ScopeClaim::Roles])
    }

    /// Microsoft Entra ID v1.0 tokens (`ver: "1.0"`, an API whose manifest keeps
    /// `accessTokenAcceptedVersion` at 1 or null): issuer `https://sts.windows.net/{tenant_id}/`,
    /// the client in `appid`, otherwise as [`entra`](Self::entra) (`scp` then `roles`).
    pub fn entra_v1(tenant_id: &str, audience: impl Into<String>) -> AuthorityBuilder {
        Self::entra_v1_at("https://sts.windows.net", tenant_id, audience)
    }

    /// [`entra_v1`](Self::entra_v1) at another token service host (a national cloud, or a
    /// test's loopback server).
    pub fn entra_v1_at(sts_url: &str, tenant_id: &str, audience: impl Into<String>) -> AuthorityBuilder {
        let mut builder = Self::builder()
            .issuer(format!("{}/{tenant_id}/", sts_url.trim_end_matches('/')))
            .audience(audience)
            .profile(Profile::Compatible)
            .scope_claims([ScopeClaim::Scp, ScopeClaim::Roles]);
        builder.appid_names_client = true;
        builder
    }

    /// Microsoft Entra ID multi-tenant apps (v2.0 tokens, signed in through `common` or
    /// `organizations`): the issuer is the template
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`, and a token is accepted only
    /// when its `tid` is one of `tenants` and its `iss` is the template with that `tid` in
    /// place. Keys come from the common key set
    /// (`https://login.microsoftonline.com/common/discovery/v2.0/keys`), which signs for
    /// every tenant. Otherwise as [`entra`](Self::entra).
    pub fn entra_multi_tenant<I, S>(tenants: I, audience: impl Into<String>) -> AuthorityBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::entra_multi_tenant_at(ENTRA_LOGIN, tenants, audience)
    }

    /// [`entra_multi_tenant`](Self::entra_multi_tenant) at another login host (a national
    /// cloud, or a test's loopback server).
    pub fn entra_multi_tenant_at<I, S>(login_url: &str, tenants: I, audience: impl Into<String>) -> AuthorityBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let login_url = login_url.trim_end_matches('/');
        let mut builder = Self::entra_at(login_url, crate::config::TENANT_PLACEHOLDER, audience)
            .jwks_uri(format!("{login_url}/common/discovery/v2.0/keys"));
        builder.tenants = Some(tenants.into_iter().map(Into::into).collect());
        builder
    }

    /// Amazon Cognito user pools: issuer
    /// `https://cognito-idp.{region}.amazonaws.com/{user_pool_id}`, the compatible profile
    /// (Cognito's tokens carry no `typ`), scopes from `scope`. Cognito's access tokens
    /// carry no `aud`: a token is accepted only when its `client_id` is one of
    /// `client_ids` (the app clients of the pool allowed to call this API) and its
    /// `token_use` is `access`; ID tokens (`token_use: id`) are refused as such. No
    /// audience is needed; [`audience`](AuthorityBuilder::audience) may still be set, and
    /// then a token must carry it (Cognito's never do).
    pub fn cognito<I, S>(region: &str, user_pool_id: &str, client_ids: I) -> AuthorityBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::cognito_at(&format!("https://cognito-idp.{region}.amazonaws.com"), user_pool_id, client_ids)
    }

    /// [`cognito`](Self::cognito) at another base URL (a test's loopback server).
    pub fn cognito_at<I, S>(base_url: &str, user_pool_id: &str, client_ids: I) -> AuthorityBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut builder = Self::builder()
            .issuer(format!("{}/{user_pool_id}", base_url.trim_end_matches('/')))
            .profile(Profile::Compatible)
            .scope_claims([ScopeClaim::Scope])
            .allowed_clients(client_ids);
        builder.require_token_use = true;
        builder
    }

    /// Keycloak: issuer `{base_url}/realms/{realm}`, the compatible profile (Keycloak
    /// types access tokens `JWT`; its ID and refresh tokens are told apart by their
    /// `typ` claim and refused), scopes from `scope`, the client from `azp`. Keycloak
    /// puts the API in `aud` only with an audience mapper on the client scope. To read
    /// roles as scopes, ask for them: `.scope_claims([ScopeClaim::RealmRoles])` (realm
    /// roles) or `[ScopeClaim::ClientRoles]` (the roles of the API's client, keyed by its
    /// audience in `resource_access`).
    pub fn keycloak(base_url: &str, realm: &str, audience: impl Into<String>) -> AuthorityBuilder {
        Self::builder()
            .issuer(format!("{}/realms/{realm}", base_url.trim_end_matches('/')))
            .audience(audience)
            .profile(Profile::Compatible)
            .scope_claims([ScopeClaim::Scope])
    }
}

/// Entra ID's login host, in the public cloud.
const ENTRA_LOGIN: &str = "https://login.microsoftonline.com";

/// A host name given with or without a scheme or trailing slash, as an https origin; one
/// given with `http://` keeps it (the URL policy allows that for loopback hosts only).
fn origin(domain: &str) -> String {
    match domain.strip_prefix("http://") {
        Some(rest) => format!("http://{}", rest.trim_end_matches('/')),
        None => format!("https://{}", domain.trim_start_matches("https://").trim_end_matches('/')),
    }
}
