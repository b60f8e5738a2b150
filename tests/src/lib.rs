//! Integration and compile-fail tests for scopegate live under `tests/`; this library
//! holds what they share.

use std::io::Write as _;

/// Whether the tests run under CI: the `CI` environment variable is set, not empty, and
/// neither `false` nor `0`. A test whose prerequisite is missing (a toolchain,
/// `redis-server`) fails under CI, where passing it would have checked nothing, and is
/// skipped with a [`skip_notice`] elsewhere.
#[must_use]
pub fn under_ci() -> bool {
    means_ci(std::env::var("CI").ok().as_deref())
}

/// The rule of [`under_ci`] for a value of `CI` (`None` when it is not set or not UTF-8).
fn means_ci(value: Option<&str>) -> bool {
    value.is_some_and(|value| !value.is_empty() && value != "false" && value != "0")
}

/// Says that `test` was skipped and why, on a line of its own written straight to the
/// stderr handle: libtest captures `eprintln!` and shows it only for a failing test, so a
/// skip told that way would never be seen on the passing test it leaves.
pub fn skip_notice(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "\nSKIPPED {test}: {why}");
}

#[cfg(test)]
mod tests {
    use super::means_ci;

    #[test]
    fn ci_is_any_set_value_but_empty_false_and_0() {
        for value in ["true", "1", "yes", "github-actions", "FALSE", " "] {
            assert!(means_ci(Some(value)), "{value:?}");
        }
        for value in [None, Some(""), Some("false"), Some("0")] {
            assert!(!means_ci(value), "{value:?}");
        }
    }
}
