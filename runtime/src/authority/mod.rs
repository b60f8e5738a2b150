//! [`Authority`]: one trusted issuer, the audience this API answers to, and every policy
//! the verifier applies. Built once at startup with [`Authority::builder`].
//!
//! [`Authority`] is the cheap handle (an `Arc` of `Inner`); the rest of it lives beside
//! this file: [`AuthorityBuilder`] and its checks in `builder.rs`, the issuer presets
//! (`Authority::auth0`, `okta`, `entra`, `keycloak`, `cognito`, …) in `presets.rs`, the
//! counters and [`Stats`] in `stats.rs`, the crypto backend's self-test in `self_test.rs`;
//! verifying a token is `verify.rs`'s.

mod builder;
mod presets;
mod self_test;
mod stats;

use std::{fmt, sync::Arc};

#[cfg(feature = "testing")]
pub use self::self_test::crypto_self_test_result;
pub(crate) use self::stats::Counters;
pub use self::{builder::AuthorityBuilder, stats::Stats};
use crate::{cache::TokenCache, config::Config, introspection::Introspector, source::KeySource};

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) keys: KeySource,
    pub(crate) stats: Counters,
    pub(crate) token_cache: Option<TokenCache>,
    pub(crate) userinfo: crate::userinfo_client::Userinfo,
    pub(crate) introspection: Option<Introspector>,
    /// The other issuers trusted by [`AuthorityBuilder::also_trust`], each with its own
    /// configuration, keys and caches (and none of its own: the list is flat).
    pub(crate) also: Vec<Authority>,
    /// DPoP proof checking (RFC 9449), when on: see [`crate::dpop`].
    pub(crate) dpop: Option<crate::dpop::Dpop>,
    /// The last verified token's header, read once for the tokens that share it.
    pub(crate) headers: crate::jws::HeaderMemo,
}

/// A trusted issuer and the policy for its access tokens. Cheap to clone (an `Arc`
/// inside); put it in your router state and give the state a `FromRef` for it.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use scopegate::Authority;
///
/// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","use":"sig",
///                "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let authority = Authority::builder()
///     .issuer("https://issuer.example.test/")
///     .audience("https://api.example.test")
///     .static_jwks(jwks)
///     .build()?;
/// # let _ = authority;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Authority {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.inner.config;
        f.debug_struct("Authority")
            .field("issuer", &config.issuer)
            .field("also_trusted", &self.inner.also.iter().map(Authority::issuer).collect::<Vec<_>>())
            .field("audiences", &config.audiences)
            .field("profile", &config.profile)
            .field("algorithms", &config.algorithms)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Starts configuring an authority.
    pub fn builder() -> AuthorityBuilder {
        AuthorityBuilder::default()
    }

    /// The issuer tokens must carry in `iss`, exactly: for an authority trusting several
    /// issuers ([`AuthorityBuilder::also_trust`]), the first one, the one its builder was
    /// given (see [`issuers`](Self::issuers) for all). For the Entra ID multi-tenant
    /// preset, the template `https://login.microsoftonline.com/{tenantid}/v2.0`.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.inner.config.issuer
    }

    /// Every issuer identifier this authority trusts, the first one first: the issuer of
    /// [`issuer`](Self::issuer), each one added with [`AuthorityBuilder::also_trust`], and
    /// for a tenant template each allowed tenant's issuer. What RFC 9728 metadata lists as
    /// `authorization_servers`.
    #[must_use]
    pub fn issuers(&self) -> Vec<String> {
        std::iter::once(self).chain(&self.inner.also).flat_map(|a| a.inner.config.issuers()).collect()
    }

    /// The trusted issuer (this authority, or one added with
    /// [`AuthorityBuilder::also_trust`]) whose configuration trusts `iss`.
    pub(crate) fn member_for(&self, iss: &str) -> Option<&Authority> {
        std::iter::once(self).chain(&self.inner.also).find(|a| a.inner.config.trusts_issuer(iss))
    }

    /// The audiences accepted by default (handlers may name another with `aud = "…"`):
    /// with several issuers, the first issuer's (each checks its own).
    pub fn audiences(&self) -> impl Iterator<Item = &str> {
        self.inner.config.audiences.iter().map(|a| &**a)
    }

    /// How this authority takes DPoP-bound tokens (RFC 9449), or `None` when DPoP is off
    /// ([`AuthorityBuilder::dpop`]).
    #[must_use]
    pub fn dpop_policy(&self) -> Option<crate::dpop::DpopPolicy> {
        self.inner.dpop.as_ref().map(|dpop| dpop.policy)
    }

    /// The algorithms a DPoP proof may be signed with, empty when DPoP is off: what RFC
    /// 9728 metadata lists as `dpop_signing_alg_values_supported`
    /// ([`ProtectedResource::dpop_from`](crate::policy::ProtectedResource::dpop_from)).
    #[must_use]
    pub fn dpop_algorithms(&self) -> &[crate::Algorithm] {
        self.inner.dpop.as_ref().map_or(&[], |dpop| dpop.algorithms())
    }
}
