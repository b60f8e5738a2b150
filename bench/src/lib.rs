//! Tools for `scripts/load-bench.sh`: `naive-api`, the baseline a developer would write
//! by hand (an extractor calling `jsonwebtoken::decode`), and `mint-tokens`, which asks
//! the example service's development issuer for many distinct access tokens.
