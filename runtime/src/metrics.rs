//! Counters exported through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`), under stable names: the same events as [`Authority::stats`], for the
//! exporter the application installs (Prometheus, StatsD, OpenTelemetry, …).
//!
//! The table of names, labels and what each counts is in the crate docs ("Metrics").
//!
//! The counters are process-wide: several [`Authority`] values add to the same series
//! (their [`Authority::stats`] stay apart). Without the feature the names below still
//! exist and nothing is recorded; with it but no recorder installed, recording costs a
//! check of the facade's global.
//!
//! [`Authority`]: crate::Authority
//! [`Authority::stats`]: crate::Authority::stats

/// Tokens that passed every check, labelled `issuer`.
pub const TOKENS_ACCEPTED: &str = "scopegate_tokens_accepted_total";
/// Refused requests, labelled `reason` with the reason code, and `issuer` once the token
/// reached an issuer's checks.
pub const TOKENS_REJECTED: &str = "scopegate_tokens_rejected_total";
/// Signature verifications performed, labelled `issuer` (whose keys checked it).
pub const SIGNATURES_CHECKED: &str = "scopegate_signatures_checked_total";
/// Tokens accepted from the verified-token cache, labelled `issuer`.
pub const TOKEN_CACHE_HITS: &str = "scopegate_token_cache_hits_total";
/// JWKS fetches finished, labelled `outcome` (`success` or `failure`).
pub const JWKS_FETCHES: &str = "scopegate_jwks_fetches_total";
/// Fetches that changed the set of key ids.
pub const KEY_SET_CHANGES: &str = "scopegate_key_set_changes_total";
/// Requests sent to the introspection endpoint.
pub const INTROSPECTION_REQUESTS: &str = "scopegate_introspection_requests_total";
/// Requests sent to the userinfo endpoint.
pub const USERINFO_REQUESTS: &str = "scopegate_userinfo_requests_total";

#[cfg(feature = "metrics")]
mod record {
    use super::*;

    pub(crate) fn describe() {
        ::metrics::describe_counter!(TOKENS_ACCEPTED, "Access tokens that passed every check");
        ::metrics::describe_counter!(TOKENS_REJECTED, "Requests refused, by reason code");
        ::metrics::describe_counter!(SIGNATURES_CHECKED, "Token signature verifications performed");
        ::metrics::describe_counter!(TOKEN_CACHE_HITS, "Tokens accepted from the verified-token cache");
        ::metrics::describe_counter!(JWKS_FETCHES, "JWKS fetches finished, by outcome");
        ::metrics::describe_counter!(KEY_SET_CHANGES, "JWKS fetches that changed the set of key ids");
        ::metrics::describe_counter!(INTROSPECTION_REQUESTS, "Requests sent to the introspection endpoint");
        ::metrics::describe_counter!(USERINFO_REQUESTS, "Requests sent to the userinfo endpoint");
    }

    pub(crate) fn increment(name: &'static str) {
        ::metrics::counter!(name).increment(1);
    }

    pub(crate) fn increment_labelled(name: &'static str, label: &'static str, value: &'static str) {
        ::metrics::counter!(name, label => value).increment(1);
    }

    /// `name`, labelled `issuer` when it is known, and `label` when given.
    pub(crate) fn increment_by_issuer(
        name: &'static str,
        issuer: Option<&str>,
        label: Option<(&'static str, &'static str)>,
    ) {
        let mut labels = Vec::with_capacity(2);
        if let Some((key, value)) = label {
            labels.push(::metrics::Label::from_static_parts(key, value));
        }
        if let Some(issuer) = issuer {
            labels.push(::metrics::Label::new("issuer", issuer.to_owned()));
        }
        ::metrics::counter!(name, labels).increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
mod record {
    pub(crate) fn describe() {}
    pub(crate) fn increment(_: &'static str) {}
    pub(crate) fn increment_labelled(_: &'static str, _: &'static str, _: &'static str) {}
    pub(crate) fn increment_by_issuer(_: &'static str, _: Option<&str>, _: Option<(&'static str, &'static str)>) {}
}

/// Whether counters are recorded at all (the `metrics` feature): without it, the issuer
/// a label would name is not even looked up.
pub(crate) const ENABLED: bool = cfg!(feature = "metrics");

/// Registers the description of every counter with the installed recorder (at every
/// `Authority` build: recorders keep the latest, and builds are rare).
pub(crate) fn describe() {
    record::describe();
}

// `issuer`: the identifier of the trusted issuer whose checks the token went through, as
// configured (never a value read from a token, so the label's values are the configured
// issuers and nothing an attacker chooses); `None` when the token reached no issuer.

pub(crate) fn token_accepted(issuer: Option<&str>) {
    record::increment_by_issuer(TOKENS_ACCEPTED, issuer, None);
}

pub(crate) fn token_rejected(reason: &'static str, issuer: Option<&str>) {
    record::increment_by_issuer(TOKENS_REJECTED, issuer, Some(("reason", reason)));
}

pub(crate) fn signature_checked(issuer: &str) {
    record::increment_by_issuer(SIGNATURES_CHECKED, Some(issuer), None);
}

pub(crate) fn token_cache_hit(issuer: &str) {
    record::increment_by_issuer(TOKEN_CACHE_HITS, Some(issuer), None);
}

pub(crate) fn jwks_fetch(succeeded: bool) {
    record::increment_labelled(JWKS_FETCHES, "outcome", if succeeded { "success" } else { "failure" });
}

pub(crate) fn key_set_changed() {
    record::increment(KEY_SET_CHANGES);
}

pub(crate) fn introspection_request() {
    record::increment(INTROSPECTION_REQUESTS);
}

pub(crate) fn userinfo_request() {
    record::increment(USERINFO_REQUESTS);
}
