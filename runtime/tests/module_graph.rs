//! The modules of `runtime/src` and `macros/src` depend one way (ARCHITECTURE.md draws
//! the layers): no module reaches, through the `crate::…` paths of its code, a module
//! that reaches it back.
//!
//! A module is a top-level file or folder of `src/` (`lib.rs` is the root and left out);
//! its dependencies are the modules named by `crate::name` and `crate::{name, …}` in its
//! code, outside comments and outside its `#[cfg(test)]` part. The check reads text, so a
//! path a macro builds is not seen.

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The code of a file without its comments and without what follows its first
/// `#[cfg(test)]`.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The first segment of each member of the `{…}` group that `text` starts with.
fn group_heads(text: &str) -> Vec<String> {
    let (mut heads, mut depth, mut expect) = (Vec::new(), 0usize, false);
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => {
                depth += 1;
                expect = depth == 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expect = true,
            c if expect && depth == 1 && (c.is_ascii_alphabetic() || c == '_') => {
                let end =
                    text[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(text.len(), |n| i + n);
                heads.push(text[i..end].to_owned());
                while chars.peek().is_some_and(|&(j, _)| j < end) {
                    chars.next();
                }
                expect = false;
            }
            c if !c.is_whitespace() && depth == 1 => expect = false,
            _ => {}
        }
    }
    heads
}

/// The modules `code` names after `crate::`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` or `other_crate::`
        }
        let rest = &code[at + "crate::".len()..];
        if rest.starts_with('{') {
            names.extend(group_heads(rest));
        } else {
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            names.insert(rest[..end].to_owned());
        }
    }
    names
}

fn graph(src: &Path) -> Graph {
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            modules.entry(name).or_default().extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" {
            modules.entry(name).or_default().push(path);
        }
    }
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, files)| {
            let deps = files
                .iter()
                .flat_map(|file| named_modules(&code(&fs::read_to_string(file).unwrap())))
                .filter(|dep| dep != name && known.contains(dep))
                .collect();
            (name.clone(), deps)
        })
        .collect()
}

/// A cycle of `graph`, as the modules along it, if it has one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(graph: &Graph, node: &str, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(graph, dep, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(graph, node, &mut Vec::new(), &mut done))
}

#[test]
fn the_runtime_and_macro_modules_depend_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for src in ["runtime/src", "macros/src"] {
        let graph = graph(&root.join(src));
        assert!(graph.len() > 3, "{src}: only {} modules found", graph.len());
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{src}: the modules {} depend on each other in a cycle", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_check_sees_plain_and_grouped_paths_and_finds_a_cycle() {
    let code = code(
        "use crate::{a::X, b, c::{d, e}};\nfn f() { crate::g::h(); $crate::no(); }\n// crate::comment\n#[cfg(test)]\nuse crate::test_only;",
    );
    assert_eq!(named_modules(&code), ["a", "b", "c", "g"].map(str::to_owned).into());
    let mut graph = Graph::new();
    graph.insert("a".into(), ["b".into()].into());
    graph.insert("b".into(), ["c".into()].into());
    graph.insert("c".into(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
    graph.insert("c".into(), ["a".into()].into());
    assert_eq!(find_cycle(&graph), Some(["a", "b", "c", "a"].map(str::to_owned).to_vec()));
}

/// Before the `resource` module, `authority -> policy -> routing -> extract -> authority`
/// was a cycle this test would have named; it holds the graph as it is now.
#[test]
fn the_builder_forms_metadata_urls_below_the_policy() {
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(!graph["authority"].contains("policy"), "{:?}", graph["authority"]);
    assert!(graph["authority"].contains("resource"));
}
