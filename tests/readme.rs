//! The README's behaviour table promises a test for every row: this checks
//! that each test and e2e case it names exists, so the table cannot drift
//! from the suite.

use std::fs;
use std::path::Path;

fn rust_sources(dir: &Path, out: &mut String) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_behaviour_row_names_tests_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let mut code = String::new();
    rust_sources(&root.join("src"), &mut code);
    rust_sources(&root.join("tests"), &mut code);

    let section = readme
        .split("\n## Behaviour\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a Behaviour section");
    let rows: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Behaviour"))
        .collect();
    assert!(rows.len() >= 30, "only {} behaviour rows", rows.len());

    let mut missing = Vec::new();
    for row in rows {
        let tests = row.rsplit(" | ").next().unwrap();
        let names: Vec<&str> = tests.split('`').skip(1).step_by(2).collect();
        assert!(!names.is_empty(), "row without a test: {row}");
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
                missing.push(name.to_owned());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the README names tests that do not exist: {missing:?}"
    );
}
