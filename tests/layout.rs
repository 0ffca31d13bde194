//! `src/` is laid out as the flow (`src/lib.rs` says it): each stage uses only
//! the stages before it and `error`, and no two files use each other. This
//! reads every `crate::` path under `src/` and fails on one that reaches back
//! up, or on a cycle between files, so the layout cannot drift.

// A test may unwrap, expect and panic: that is how it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The stages in the order a `validate` call goes through them. A module
/// under `src/` belongs to the stage named by its first path component.
const STAGES: [&str; 10] = [
    "error",
    "input",
    "settings",
    "lookup",
    "resolve",
    "edit",
    "audit",
    "decision",
    "invariants",
    "lib",
];

fn rank(stage: &str) -> Option<usize> {
    STAGES.iter().position(|s| *s == stage)
}

/// Every `.rs` file under `dir`, by its module path (`["edit", "plan"]`).
fn modules(dir: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<String>, PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).unwrap().with_extension("");
                let mut parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if parts.last().is_some_and(|p| p == "mod") {
                    parts.pop();
                }
                out.insert(parts, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The module paths a source file names with `crate::` (in `use` lines,
/// inline paths and serde's `with` strings), comments left out.
fn crate_paths(source: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let path: Vec<String> = after
                .split("::")
                .map(|part| {
                    part.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|part| !part.is_empty())
                .collect();
            // A `use crate::a::{b, c}` names a::b and a::c.
            let braces = after.find('{').filter(|brace| {
                after[..*brace]
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == ':')
            });
            match braces {
                Some(brace) => {
                    let inside = after[brace + 1..].split('}').next().unwrap_or_default();
                    for item in inside.split(',') {
                        let mut full = path.clone();
                        full.extend(
                            item.trim()
                                .split("::")
                                .map(|p| p.trim().to_owned())
                                .filter(|p| !p.is_empty() && p != "self"),
                        );
                        paths.push(full);
                    }
                }
                None => paths.push(path),
            }
            rest = &after[1..];
        }
    }
    paths
}

/// The file a path names: its longest prefix that is a module of the crate.
fn file_of(path: &[String], modules: &BTreeMap<Vec<String>, PathBuf>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains_key(prefix))
}

fn stage_of(module: &[String]) -> &str {
    module.first().map(String::as_str).unwrap_or("lib")
}

/// What goes against the rule in the crate at `src`: upward imports and
/// cycles between files, one line each.
fn violations(src: &Path) -> Vec<String> {
    let modules = modules(src);
    let mut problems = Vec::new();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        let source = fs::read_to_string(file).unwrap();
        let from = stage_of(module);
        let Some(from_rank) = rank(from) else {
            problems.push(format!("{}: not in a stage of the flow", file.display()));
            continue;
        };
        for path in crate_paths(&source) {
            let Some(target) = file_of(&path, &modules) else {
                continue;
            };
            let to = stage_of(&target);
            match rank(to) {
                Some(to_rank) if to_rank > from_rank => problems.push(format!(
                    "{} ({from}) uses crate::{} ({to}), a later stage",
                    file.display(),
                    path.join("::")
                )),
                _ => {}
            }
            if &target != module && !module.starts_with(&target) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    // A cycle between files: a depth-first search that meets a file on its own path.
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        path: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
        problems: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            let cycle: Vec<String> = path[at..]
                .iter()
                .chain([node])
                .map(|m| m.join("::"))
                .collect();
            problems.push(format!("a cycle: {}", cycle.join(" -> ")));
            return;
        }
        if !done.insert(node.clone()) {
            return;
        }
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done, problems);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for module in modules.keys() {
        visit(module, &edges, &mut Vec::new(), &mut done, &mut problems);
    }
    problems
}

#[test]
fn every_import_goes_down_the_flow_and_no_files_use_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = violations(&src);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn lib_rs_opens_with_the_flow_in_the_order_checked_here() {
    let lib = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let flow: Vec<usize> = STAGES[1..8]
        .iter()
        .map(|stage| {
            lib.find(&format!("[`{stage}`]:"))
                .unwrap_or_else(|| panic!("src/lib.rs's flow does not name {stage}"))
        })
        .collect();
    assert!(
        flow.windows(2).all(|w| w[0] < w[1]),
        "src/lib.rs lists the stages out of order"
    );
}

/// The check itself, on a crate written for it: an upward import and a
/// cycle are found, a downward import is not.
#[test]
fn an_upward_import_and_a_cycle_are_found() {
    let dir = std::env::temp_dir().join(format!("irsa-layout-{}", std::process::id()));
    let write = |path: &str, text: &str| {
        let file = dir.join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, text).unwrap();
    };
    write("lib.rs", "pub mod input;\npub mod edit;\n");
    write("input/mod.rs", "pub mod pod;\npub mod fields;\n");
    write("input/pod.rs", "use crate::input::fields::describe;\n");
    write(
        "input/fields.rs",
        "use crate::error::PolicyError; // crate::edit in a comment\n",
    );
    write("edit/mod.rs", "use crate::input::pod::PodFacts;\n");
    write("error.rs", "");
    assert_eq!(violations(&dir), Vec::<String>::new());

    write(
        "input/fields.rs",
        "use crate::{error::PolicyError, edit::Plan};\n",
    );
    let found = violations(&dir);
    assert!(
        found
            .iter()
            .any(|p| p.ends_with("(input) uses crate::edit::Plan (edit), a later stage")),
        "{found:?}"
    );

    write("input/fields.rs", "use crate::input::pod::PodFacts;\n");
    let found = violations(&dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("a cycle: input::"), "{found:?}");
    fs::remove_dir_all(&dir).unwrap();
}
