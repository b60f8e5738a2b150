//! Tools for `scripts/load-bench.sh` and `scripts/bench.sh`:
//! - `bench-issuer`: a loopback issuer (discovery and JWKS with scopegate's test keys) that
//!   first signs many distinct RS256 access tokens;
//! - `floor-api`: the signature floor as a service (the RS256 check alone, with one
//!   pre-parsed aws-lc-rs key, answering the example's `/api/me` JSON);
//! - `naive-api`: the baseline a developer would write by hand (an extractor calling
//!   `jsonwebtoken::decode`);
//! - `cache-memory`: the verified-token cache's resident size, filled and past full;
//! - `mint-tokens`: asks the example service's development issuer for many distinct
//!   access tokens.
