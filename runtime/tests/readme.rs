//! The README's `Cargo.toml` lines are the ones its snippets need. The snippets themselves
//! are compiled as doctests (`ReadmeDoctests` in `src/lib.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

const README: &str = include_str!("../../README.md");

/// The lines of the README's first ```toml block.
fn toml_block() -> Vec<&'static str> {
    let start = README.find("```toml\n").expect("the README shows the Cargo.toml lines") + "```toml\n".len();
    let end = start + README[start..].find("```").expect("the toml block ends");
    README[start..end].lines().collect()
}

fn line_for(lines: &[&'static str], dependency: &str) -> Vec<&'static str> {
    lines.iter().copied().filter(|line| line.starts_with(&format!("{dependency} = "))).collect()
}

#[test]
fn the_readme_names_the_axum_and_tokio_features_its_tour_needs() {
    let lines = toml_block();
    let axum = line_for(&lines, "axum");
    assert_eq!(axum.len(), 1, "{lines:?}");
    // `#[derive(FromRef)]` needs axum's `macros` feature; the default features carry
    // `json`, `tokio` and `http1`, which the tour uses too, so they must stay on.
    assert!(README.contains("#[derive(Clone, FromRef)]"));
    assert!(axum[0].contains(r#"features = ["macros"]"#), "{}", axum[0]);
    assert!(!axum[0].contains("default-features"), "{}", axum[0]);
    let tokio = line_for(&lines, "tokio");
    assert_eq!(tokio.len(), 1, "{lines:?}");
    assert!(README.contains("#[tokio::main]"));
    assert!(tokio[0].contains(r#""macros""#) && tokio[0].contains(r#""rt-multi-thread""#), "{}", tokio[0]);
}

#[test]
fn the_readme_puts_the_testing_feature_under_dev_dependencies_only() {
    let lines = toml_block();
    let dev = lines.iter().position(|line| *line == "[dev-dependencies]").expect("a [dev-dependencies] section");
    let (normal, dev_lines) = lines.split_at(dev);
    assert!(line_for(normal, "scopegate").iter().all(|line| !line.contains("testing")), "{normal:?}");
    assert!(line_for(dev_lines, "scopegate").iter().any(|line| line.contains(r#"features = ["testing"]"#)));
}

/// The info strings of the README's fenced blocks, in order (closing fences left out).
fn fences() -> Vec<&'static str> {
    let mut open = false;
    let mut infos = Vec::new();
    for line in README.lines().map(str::trim_start).filter(|line| line.starts_with("```")) {
        if !open {
            infos.push(&line["```".len()..]);
        }
        open = !open;
    }
    assert!(!open, "the README's last fenced block is not closed");
    infos
}

#[test]
fn every_rust_snippet_of_the_readme_is_compiled() {
    // The doctest compiles `rust` and `rust,no_run` (which it only does not run); any other
    // attribute (`ignore`, `compile_fail`, `should_panic`, an edition) or spelling (`rs`, a
    // bare fence) would exempt a snippet or change what is checked. The other languages
    // are not Rust and are not compiled.
    const COMPILED: [&str; 2] = ["rust", "rust,no_run"];
    const NOT_RUST: [&str; 5] = ["bash", "sh", "toml", "text", "json"];
    let fences = fences();
    for (i, info) in fences.iter().enumerate() {
        assert!(COMPILED.contains(info) || NOT_RUST.contains(info), "fenced block {i} is marked {info:?}");
    }
    // Every Rust fence was seen (and read as an opening one).
    let rust = fences.iter().filter(|info| COMPILED.contains(info)).count();
    assert_eq!(rust, README.matches("```rust").count(), "{fences:?}");
}
