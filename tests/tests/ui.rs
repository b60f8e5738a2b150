//! Compile-time behaviour of `#[requires_scope]`: every file in `ui/pass` compiles and
//! runs, every file in `ui/fail` fails with exactly the blessed `.stderr` next to it.
//!
//! Compiler messages change between releases, so the suite is pinned to one toolchain and
//! skipped (loudly) on any other. To re-bless after a deliberate change:
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
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    if !version.starts_with(PINNED) {
        eprintln!(
            "SKIPPED: the ui tests are blessed for `{PINNED}x` and this is `{}`; run them with that toolchain",
            version.trim()
        );
        return;
    }
    let cases = trybuild::TestCases::new();
    cases.pass("ui/pass/*.rs");
    cases.compile_fail("ui/fail/*.rs");
}
