//! Compile-time behaviour of `#[requires_scope]`: every file in `ui/pass` compiles and
//! runs, every file in `ui/fail` fails with exactly the blessed `.stderr` next to it.
//!
//! Compiler messages change between releases, so the `.stderr` files are blessed with one
//! toolchain ([`PINNED`], also named in the README). On another toolchain the suite cannot
//! judge anything:
//! - under CI ([`scopegate_tests::under_ci`]: `CI` set, and not empty, `false` or `0`)
//!   the test FAILS, saying which toolchain it needs: a CI that passed it would have
//!   checked nothing;
//! - elsewhere it is skipped, with a [`scopegate_tests::skip_notice`] written straight
//!   to the terminal (libtest captures `eprintln!` of passing tests, not writes to the
//!   stderr handle).
//!
//! To re-bless after a deliberate change, with the pinned toolchain:
//! `TRYBUILD=overwrite cargo test -p scopegate-tests --test ui`, then review every diff.

use std::process::Command;

/// The toolchain the `.stderr` files were blessed with.
const PINNED: &str = "rustc 1.95.";

#[test]
fn ui() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default();
    if !version.starts_with(PINNED) {
        let why = format!(
            "the ui tests are blessed for `{PINNED}x` and this is `{version}`: run them with that toolchain \
             (`rustup run 1.95 cargo test -p scopegate-tests --test ui`)"
        );
        assert!(!scopegate_tests::under_ci(), "CI must run the ui suite, but {why}");
        scopegate_tests::skip_notice("ui", &why);
        return;
    }
    let cases = trybuild::TestCases::new();
    cases.pass("ui/pass/*.rs");
    cases.compile_fail("ui/fail/*.rs");
}
