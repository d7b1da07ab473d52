//! Checks the module dependency table of the design: each module may use only the
//! modules listed for it, so dependencies point one way and never form a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `module -> modules it may use`: the module table of the design
/// (`../shared/DESIGN.md`) as written, with the rows of the README's "Changes to the
/// design's module table" put in their place. `None` when the design is not beside the
/// repository (CI always has it).
fn design_table() -> Option<BTreeMap<String, Vec<String>>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let design = std::fs::read_to_string(root.join("../shared/DESIGN.md")).ok()?;
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let mut table = module_rows(section(&design, "## Modules and who may use whom"));
    assert!(table.len() >= 10, "the design's module table was not found");
    let changes = module_rows(section(&readme, "### Changes to the design's module table"));
    assert!(
        !changes.is_empty(),
        "the README's table of changes was not found"
    );
    for (module, may_use) in changes {
        assert!(
            table.contains_key(&module),
            "the README changes a row the design does not have: {module}"
        );
        table.insert(module, may_use);
    }
    let modules: BTreeSet<String> = table.keys().cloned().collect();
    Some(
        table
            .into_iter()
            .map(|(module, may_use)| {
                let may_use = may_use
                    .into_iter()
                    .filter(|m| modules.contains(m))
                    .collect();
                (module, may_use)
            })
            .collect(),
    )
}

/// The text from `heading` to the next heading of any level.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let Some(start) = text.find(heading) else {
        return "";
    };
    let body = &text[start + heading.len()..];
    let end = body.find("\n#").map_or(body.len(), |i| i + 1);
    &body[..end]
}

/// The rows `| `module` | owns | may use |` of a table: the module, and the words of its
/// last column (names that are not modules, such as crates, are dropped by the caller).
fn module_rows(text: &str) -> BTreeMap<String, Vec<String>> {
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
            let module = cells.first()?.trim().strip_prefix('`')?.strip_suffix('`')?;
            let may_use = cells.last()?;
            let words = may_use
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            Some((module.to_string(), words))
        })
        .collect()
}

/// The top-level modules a file refers to, however it spells the path: `use
/// crate::a::b`, grouped `use crate::{a, b::{c}}`, `super::super::a` and `self::` paths
/// reaching across modules, and paths written inline in code, types and attributes'
/// arguments. `module_path` is the file's place in the crate (`["builder", "copy",
/// "key"]`); inline `mod` blocks inside it are followed.
fn crate_references(text: &str, module_path: &[String]) -> Result<BTreeSet<String>, String> {
    let file = syn::parse_file(text).map_err(|e| e.to_string())?;
    let mut finder = References {
        here: module_path.to_vec(),
        found: BTreeSet::new(),
    };
    syn::visit::visit_file(&mut finder, &file);
    Ok(finder.found)
}

struct References {
    /// The module being read, from the crate root.
    here: Vec<String>,
    found: BTreeSet<String>,
}

impl References {
    /// Records the top-level module a path that starts with `segments` reaches.
    fn reach(&mut self, segments: &[String]) {
        let Some(first) = segments.first() else {
            return;
        };
        let absolute: Vec<String> = match first.as_str() {
            "crate" => segments[1..].to_vec(),
            "self" | "super" => {
                let mut base = self.here.clone();
                let mut rest = segments;
                if rest.first().is_some_and(|s| s == "self") {
                    rest = &rest[1..];
                }
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                base
            }
            _ => return,
        };
        if let Some(top) = absolute.first() {
            self.found.insert(top.clone());
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => {
                prefix.push(name.ident.to_string());
                self.reach(prefix);
                prefix.pop();
            }
            syn::UseTree::Rename(rename) => {
                prefix.push(rename.ident.to_string());
                self.reach(prefix);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => self.reach(prefix),
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }
}

impl<'ast> syn::visit::Visit<'ast> for References {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.reach(&segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        self.here.push(item.ident.to_string());
        syn::visit::visit_item_mod(self, item);
        self.here.pop();
    }

    /// Paths inside macro calls (`format!`, `matches!`, ...) are read as far as they
    /// parse as expressions.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let parsed = mac.parse_body_with(
            syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated,
        );
        if let Ok(arguments) = parsed {
            for argument in &arguments {
                self.visit_expr(argument);
            }
        }
        syn::visit::visit_macro(self, mac);
    }
}

/// A file's place in the crate: `src/builder/copy/key.rs` is `builder::copy::key`, a
/// `mod.rs` its folder's module.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// What `module` may not use among the modules `text` refers to.
fn violations_in(text: &str, relative: &Path, may_use: &[&str]) -> Result<Vec<String>, String> {
    let path = module_path(relative);
    let module = path[0].clone();
    Ok(crate_references(text, &path)?
        .into_iter()
        .filter(|used| *used != module && !may_use.contains(&used.as_str()))
        .map(|used| {
            format!(
                "{}: uses crate::{used}, which {module} may not use",
                relative.display()
            )
        })
        .collect())
}

#[test]
fn every_import_form_is_seen() {
    let store = Path::new("store/check.rs");
    let allowed = ["oci"];
    for (text, reaches) in [
        ("use crate::builder::Thing;", Some("builder")),
        ("use crate::{oci::Digest, builder};", Some("builder")),
        ("use crate::{oci, {exec::{self, Spec}}};", Some("exec")),
        ("use super::super::container::Record;", Some("container")),
        ("fn f() { crate::network::setup(); }", Some("network")),
        ("fn f() -> crate::layers::Layer { todo!() }", Some("layers")),
        (
            "fn f() { println!(\"{}\", crate::cli::NAME); }",
            Some("cli"),
        ),
        (
            "mod inner { use super::super::super::registry as r; }",
            Some("registry"),
        ),
        ("use crate::{oci::Digest, store::Store};", None),
        ("use super::blobs; use self::x::y;", None),
    ] {
        let found = violations_in(text, store, &allowed).unwrap();
        match reaches {
            Some(module) => assert!(
                found.len() == 1 && found[0].contains(&format!("crate::{module}")),
                "{text}: {found:?}"
            ),
            None => assert!(found.is_empty(), "{text}: {found:?}"),
        }
    }
}

#[test]
fn modules_only_use_what_the_design_allows() {
    let Some(table) = design_table() else {
        println!("NOTE: ../shared/DESIGN.md is absent: the module table is not checked");
        return;
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
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
        // Entry points, not modules: the crate's root, and the binaries (`main.rs`,
        // `bin/lade-init.rs`), which reach the library only as `lade::...` from outside.
        if matches!(module, "lib" | "main" | "bin") {
            continue;
        }
        seen_modules.insert(module.to_string());
        let Some(may_use) = table.get(module) else {
            violations.push(format!("{module}: a module the design does not list"));
            continue;
        };
        let may_use: Vec<&str> = may_use.iter().map(String::as_str).collect();
        let text = std::fs::read_to_string(path).unwrap();
        match violations_in(&text, relative, &may_use) {
            Ok(found) => violations.extend(found),
            Err(e) => violations.push(format!("{}: cannot be read: {e}", relative.display())),
        }
    }
    assert!(seen_modules.contains("parser") && seen_modules.contains("graph"));
    // The design's rows the code must keep to, as read: a check that the reading works.
    assert_eq!(table["oci"], Vec::<String>::new());
    assert_eq!(table["network"], ["store"]);
    assert!(
        table["cli"].contains(&"engine".to_string()),
        "{:?}",
        table["cli"]
    );
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
