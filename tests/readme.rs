//! What the docs promise and the suite can check: every test a row of
//! docs/behaviour.md names exists, so the table cannot drift from the suite;
//! README.md stays small enough for Artifact Hub and `kwctl annotate`, with
//! links that work where relative ones do not; and every link into the
//! repository names a file, folder and heading that exist.

// A test may unwrap, expect and panic: that is how it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Component, Path, PathBuf};

/// Artifact Hub shows README.md whole, and `kwctl annotate -u README.md`
/// embeds it in the module (issue 18).
const README_LIMIT_BYTES: usize = 16 * 1024;

/// Links into this repository, as README.md must write them.
const REPOSITORY_URLS: [&str; 2] = [
    "https://github.com/irsa-policy/irsa-policy/blob/main/",
    "https://github.com/irsa-policy/irsa-policy/tree/main/",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rust_sources(dir: &Path, out: &mut String) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&read(&path));
        }
    }
}

/// The markdown files whose links are checked: README.md, CONTRIBUTING.md and docs/*.md.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("CONTRIBUTING.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines of a markdown text outside fenced code blocks, where a `#` is a
/// heading and `[text](target)` a link.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut in_fence = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        } else if !in_fence {
            lines.push(line);
        }
    }
    lines
}

/// GitHub's anchor for a heading: lowercase, spaces to `-`, punctuation other
/// than `-` and `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a markdown text's headings; a repeated heading gets `-1`,
/// `-2`, ... as on GitHub.
fn heading_anchors(text: &str) -> Vec<String> {
    let mut anchors: Vec<String> = Vec::new();
    for line in prose_lines(text) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let mut anchor = base.clone();
        let mut n = 0;
        while anchors.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        anchors.push(anchor);
    }
    anchors
}

/// The targets of the inline links `[text](target)` of a markdown text, outside
/// code blocks and code spans.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(text) {
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let mut depth = 1;
            let end = after
                .char_indices()
                .find_map(|(i, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    (depth == 0).then_some(i)
                })
                .unwrap_or(after.len());
            let target = after[..end].split_whitespace().next().unwrap_or("");
            targets.push(target.trim_matches(|c| c == '<' || c == '>').to_owned());
            rest = &after[end..];
        }
    }
    targets
}

fn is_url(target: &str) -> bool {
    target.starts_with("https://") || target.starts_with("http://")
}

/// Whether `path` (inside the repository) exists and, for an anchor into a
/// markdown file, has a heading with that anchor; `Err` says what is missing.
fn resolves(path: &Path, anchor: Option<&str>) -> Result<(), String> {
    let inside = path.components().all(|c| c != Component::ParentDir)
        || path
            .canonicalize()
            .is_ok_and(|p| p.starts_with(root().canonicalize().unwrap()));
    if !inside {
        return Err("points outside the repository".into());
    }
    if !path.exists() {
        return Err("names a path that does not exist".into());
    }
    match anchor {
        Some(anchor) if path.extension().is_some_and(|e| e == "md") => {
            if heading_anchors(&read(path)).iter().any(|a| a == anchor) {
                Ok(())
            } else {
                Err(format!("has no heading #{anchor}"))
            }
        }
        _ => Ok(()),
    }
}

/// Every row of every table in docs/behaviour.md, with the `###` section it is in.
fn behaviour_rows() -> Vec<(String, String)> {
    let behaviour = read(&root().join("docs/behaviour.md"));
    let mut section = String::new();
    let mut rows = Vec::new();
    for line in prose_lines(&behaviour) {
        if let Some(title) = line.strip_prefix("### ") {
            section = title.to_owned();
        } else if line.starts_with('|') {
            if line.starts_with("|---") || line == "| Behaviour | Tests |" {
                continue;
            }
            assert!(
                !section.is_empty(),
                "a behaviour row before the first ### section: {line}"
            );
            rows.push((section.clone(), line.to_owned()));
        }
    }
    rows
}

#[test]
fn every_behaviour_row_names_tests_that_exist() {
    let root = root();
    let mut code = String::new();
    rust_sources(&root.join("src"), &mut code);
    rust_sources(&root.join("tests"), &mut code);

    let behaviour = read(&root.join("docs/behaviour.md"));
    let tables = behaviour.lines().filter(|l| l.starts_with("|---")).count();
    let headers = behaviour
        .lines()
        .filter(|l| *l == "| Behaviour | Tests |")
        .count();
    assert_eq!(
        tables, headers,
        "every table in docs/behaviour.md has the columns | Behaviour | Tests |"
    );

    let rows = behaviour_rows();
    assert!(rows.len() >= 30, "only {} behaviour rows", rows.len());

    let mut missing = Vec::new();
    for (section, row) in &rows {
        let tests = row.trim_end_matches('|').rsplit(" | ").next().unwrap();
        let names: Vec<&str> = tests.split('`').skip(1).step_by(2).collect();
        assert!(!names.is_empty(), "row without a test in {section}: {row}");
        for name in names {
            let found = if name.contains('/') {
                root.join(name).exists()
            } else if name.contains('_') {
                code.contains(&format!("fn {name}("))
            } else {
                root.join("e2e-tests/cases")
                    .join(name)
                    .join("expect.json")
                    .exists()
            };
            if !found {
                missing.push(format!("{section}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/behaviour.md names tests that do not exist: {missing:?}"
    );
}

#[test]
fn the_readme_fits_in_16_kb() {
    let size = read(&root().join("README.md")).len();
    assert!(
        size <= README_LIMIT_BYTES,
        "README.md is {size} bytes, over {README_LIMIT_BYTES}: move the detail to docs/ and link to it"
    );
}

/// Artifact Hub and `kwctl inspect` show README.md away from the repository,
/// where a relative link leads nowhere.
#[test]
fn links_out_of_the_readme_are_absolute() {
    let readme = read(&root().join("README.md"));
    let anchors = heading_anchors(&readme);
    let targets = link_targets(&readme);
    assert!(!targets.is_empty(), "no links found in README.md");
    let wrong: Vec<&String> = targets
        .iter()
        .filter(|target| match target.strip_prefix('#') {
            Some(anchor) => !anchors.iter().any(|a| a == anchor),
            None => !is_url(target),
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "README.md links must be https:// URLs or anchors of its own headings {anchors:?}; these are not: {wrong:?}"
    );
}

#[test]
fn every_docs_link_resolves() {
    let root = root();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let is_readme = file == root.join("README.md");
        let dir = file.parent().unwrap();
        for target in link_targets(&read(&file)) {
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if let Some(in_repository) = REPOSITORY_URLS
                .iter()
                .find_map(|prefix| path.strip_prefix(prefix))
            {
                root.join(in_repository.trim_end_matches('/'))
            } else if is_url(path) || path.starts_with("mailto:") {
                continue;
            } else if path.is_empty() {
                file.clone()
            } else if is_readme {
                // Relative links out of the README fail links_out_of_the_readme_are_absolute.
                continue;
            } else {
                dir.join(path)
            };
            checked += 1;
            if let Err(what) = resolves(&resolved, anchor) {
                broken.push(format!(
                    "{}: {target} {what}",
                    file.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    assert!(checked > 0, "no links checked");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The project's rule: the two commands are in README.md, the rest in CONTRIBUTING.md.
#[test]
fn the_readme_keeps_the_two_commands_and_points_to_contributing() {
    let readme = read(&root().join("README.md"));
    let block = readme
        .split("\n## Build and test\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README.md has a Build and test section");
    for command in ["make run", "make test"] {
        assert!(
            block.lines().any(|l| l.starts_with(command)),
            "{command} missing from README.md's Build and test"
        );
    }
    assert!(
        block.contains("https://github.com/irsa-policy/irsa-policy/blob/main/CONTRIBUTING.md"),
        "README.md's Build and test links to CONTRIBUTING.md"
    );
}

/// A measured figure goes stale; it lives once, in docs/performance.md.
#[test]
fn the_readme_carries_no_measured_figures() {
    let readme = read(&root().join("README.md"));
    let words: Vec<&str> = readme.split_whitespace().collect();
    let figures: Vec<String> = words
        .windows(2)
        .filter(|pair| {
            let number = pair[0].trim_start_matches(|c: char| !c.is_ascii_digit());
            let unit = pair[1].trim_end_matches(|c: char| !c.is_alphabetic());
            number.ends_with(|c: char| c.is_ascii_digit())
                && ["µs", "ms", "bytes", "KB", "KiB"].contains(&unit)
        })
        .map(|pair| pair.join(" "))
        .collect();
    assert!(
        figures.is_empty(),
        "README.md has measured figures {figures:?}: put them in docs/performance.md and link to it"
    );
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("1. Let the policy-server read ServiceAccounts"),
        "1-let-the-policy-server-read-serviceaccounts"
    );
    assert_eq!(
        slug("Region, envFrom and STS endpoint"),
        "region-envfrom-and-sts-endpoint"
    );
    assert_eq!(slug("`make run` and make_test"), "make-run-and-make_test");
    assert_eq!(
        heading_anchors("# A\n```\n# not a heading\n```\n## A\n"),
        ["a", "a-1"]
    );
    assert_eq!(
        link_targets("[a](x.md#b) `[c](not-a-link)` [d](https://e/(f)) [g](<h> \"t\")"),
        ["x.md#b", "https://e/(f)", "h"]
    );
}
