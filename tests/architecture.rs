//! Checks the module dependency table of the design: each module may use only the
//! modules listed for it, so dependencies point one way and never form a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `module -> modules it may use`, exactly as the design's table gives it.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "cli",
        &[
            "builder",
            "container",
            "graph",
            "registry",
            "archive",
            "network",
            "layers",
            "store",
            "exec",
            "parser",
            "oci",
        ],
    ),
    ("archive", &["layers", "store", "oci"]),
    (
        "builder",
        &["graph", "layers", "exec", "store", "registry", "oci"],
    ),
    ("container", &["exec", "network", "layers", "store", "oci"]),
    ("network", &[]),
    ("graph", &["parser", "oci"]),
    ("registry", &["store", "oci"]),
    ("layers", &["store", "oci"]),
    ("store", &["oci"]),
    ("exec", &[]),
    ("parser", &[]),
    ("oci", &[]),
];

/// Module names referenced as `crate::<name>` in a file.
fn crate_references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

#[test]
fn modules_only_use_what_the_design_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut violations = Vec::new();
    let mut seen_modules = BTreeSet::new();
    for entry in walkdir::WalkDir::new(&src).into_iter().map(Result::unwrap) {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(&src).unwrap();
        let Some(module) = relative.iter().next().and_then(|c| c.to_str()) else {
            continue;
        };
        let module = module.trim_end_matches(".rs");
        if matches!(module, "lib" | "main") {
            continue;
        }
        seen_modules.insert(module.to_string());
        let Some(may_use) = allowed.get(module) else {
            violations.push(format!("{module}: a module the design does not list"));
            continue;
        };
        let text = std::fs::read_to_string(path).unwrap();
        for used in crate_references(&text) {
            if used != module && !may_use.contains(&used.as_str()) {
                violations.push(format!(
                    "{}: uses crate::{used}, which {module} may not use",
                    relative.display()
                ));
            }
        }
    }
    assert!(seen_modules.contains("parser") && seen_modules.contains("graph"));
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn every_module_says_why_it_exists() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    for entry in walkdir::WalkDir::new(&src).into_iter().map(Result::unwrap) {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(path).unwrap();
            let is_test_module = path.file_name().is_some_and(|n| n == "tests.rs");
            if !is_test_module && !text.trim_start().starts_with("//!") {
                missing.push(path.display().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "files without a //! doc: {missing:?}");
}
