//! `docs/security.md` and the tests agree: every `case_NNN_…` test is listed in row NNN of
//! the document, every test the document names exists, and every case has one row. A
//! reader can go from a behaviour to its test and from a test to its behaviour.

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// The number of cases the document describes.
const CASES: u32 = 180;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn document() -> String {
    std::fs::read_to_string(root().join("docs/security.md")).unwrap()
}

/// Every `.rs` file under `dir`, skipping build output and installed packages.
fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && name != "node_modules" && !name.starts_with('.') {
                rust_files(&path, into);
            }
        } else if name.ends_with(".rs") {
            into.push(path);
        }
    }
}

/// The case numbers a test name cites: `case_152_and_167_…` cites 152 and 167.
fn cited(name: &str) -> Vec<u32> {
    let mut numbers = Vec::new();
    let mut rest = name.strip_prefix("case_").unwrap();
    loop {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            break;
        }
        numbers.push(digits.parse().unwrap());
        rest = &rest[digits.len()..];
        match rest.strip_prefix("_and_") {
            Some(more) => rest = more,
            None => break,
        }
    }
    numbers
}

/// Every `fn case_…` in the workspace's tests, with the file it is in.
fn case_tests() -> BTreeMap<String, PathBuf> {
    let mut files = Vec::new();
    for dir in ["tests", "runtime", "examples", "macros"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut tests = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices("fn case_") {
            let name: String = text[at + 3..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !cited(&name).is_empty() {
                tests.insert(name, file.strip_prefix(root()).unwrap().to_owned());
            }
        }
    }
    tests
}

/// Row `| NNN | … | tests |` of the document: the code spans of its last cell.
fn rows(document: &str) -> BTreeMap<u32, Vec<String>> {
    let mut rows = BTreeMap::new();
    for line in document.lines() {
        let cells: Vec<&str> = line.split(" | ").collect();
        let Some(number) = cells.first().and_then(|c| c.strip_prefix("| ")).and_then(|c| c.parse::<u32>().ok()) else {
            continue;
        };
        let last = cells.last().unwrap();
        let spans = last.split('`').skip(1).step_by(2).map(str::to_owned).collect();
        assert!(rows.insert(number, spans).is_none(), "case {number} has two rows in docs/security.md");
    }
    rows
}

#[test]
fn docs_security_md_has_one_row_per_case() {
    let rows = rows(&document());
    let numbers: BTreeSet<u32> = rows.keys().copied().collect();
    assert_eq!(numbers, (1..=CASES).collect::<BTreeSet<_>>());
}

#[test]
fn every_case_test_is_listed_under_its_case_in_docs_security_md() {
    let rows = rows(&document());
    let tests = case_tests();
    assert!(tests.len() > 100, "found only {} case tests: is the search looking in the right place?", tests.len());
    for (test, file) in &tests {
        for number in cited(test) {
            let row = rows.get(&number).unwrap_or_else(|| panic!("{test} cites case {number}, which has no row"));
            assert!(
                row.contains(test),
                "{test} ({}) is not listed in row {number} of docs/security.md",
                file.display()
            );
        }
    }
}

#[test]
fn every_test_named_in_docs_security_md_exists() {
    let rows = rows(&document());
    let tests = case_tests();
    for (number, spans) in &rows {
        for span in spans {
            if span.starts_with("case_") {
                assert!(tests.contains_key(span), "row {number} names {span}, which no test file defines");
                assert!(cited(span).contains(number), "row {number} names {span}, which cites another case");
            } else if span.contains('/') {
                assert!(root().join(span).is_file(), "row {number} names {span}, which does not exist");
            }
        }
    }
}
