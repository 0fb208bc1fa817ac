//! The shape of the code: `src/lib.rs` names every top-level module's layer, and imports point
//! down only. This test reads that map and the sources (as `../shared/tools/modcycles.py` does:
//! every `crate::NAME` path outside comments and `#[cfg(test)] mod tests`), and fails on an
//! import that points up, on a module the map does not name, and on a cycle inside a layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `layer N: [`a`] (...), [`b`] (...)` lines of the crate doc, joined over their continuation
/// lines: module -> layer.
fn layer_map() -> BTreeMap<String, u32> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut layers: Vec<(u32, String)> = Vec::new();
    let mut open = false;
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            break;
        };
        let doc = doc.trim();
        if let Some(rest) = doc.strip_prefix("- layer ") {
            let (n, body) = rest.split_once(':').expect("`- layer N: ...`");
            layers.push((n.trim().parse().expect("a layer number"), body.to_string()));
            open = true;
        } else if doc.is_empty() || doc.starts_with('#') || doc.starts_with("- ") {
            open = false;
        } else if open {
            let last = layers.last_mut().unwrap();
            last.1.push(' ');
            last.1.push_str(doc);
        }
    }
    let mut map = BTreeMap::new();
    for (n, text) in layers {
        collect(&text, n, &mut map);
    }
    map
}

/// The module names written as intra-doc links (`` [`name`] ``) in a piece of the map.
fn collect(text: &str, layer: u32, map: &mut BTreeMap<String, u32>) {
    for part in text.split("[`").skip(1) {
        if let Some((name, rest)) = part.split_once("`]") {
            // a link followed by a description in parentheses names a module of the map
            if rest.trim_start().starts_with('(') {
                let old = map.insert(name.to_string(), layer);
                assert!(old.is_none(), "`{name}` is named twice in src/lib.rs's map");
            }
        }
    }
}

fn declared_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments and without its unit tests.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(i) = code.find("#[cfg(test)]\nmod tests") {
        code.truncate(i);
    }
    code
}

/// Which top-level modules each module imports (`crate::NAME`, also inside `use crate::{..}`).
fn edges(modules: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for m in modules {
        let file = src().join(format!("{m}.rs"));
        let mut files = Vec::new();
        if file.is_file() {
            files.push(file);
        } else {
            rust_files(&src().join(m), &mut files);
        }
        let mut to = BTreeSet::new();
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with("_tests.rs") {
                continue;
            }
            let code = code_of(&f);
            for part in code.split("crate::").skip(1) {
                let word: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if modules.contains(&word) && &word != m {
                    to.insert(word);
                }
            }
            for group in code.split("use crate::{").skip(1) {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split([',', '{', '\n']) {
                    let word = item.trim().split("::").next().unwrap_or("").trim();
                    if modules.contains(word) && word != m {
                        to.insert(word.to_string());
                    }
                }
            }
        }
        out.insert(m.clone(), to);
    }
    out
}

#[test]
fn every_import_points_down_and_the_map_in_lib_rs_is_true() {
    let map = layer_map();
    let modules = declared_modules();
    let named: BTreeSet<String> = map.keys().cloned().collect();
    assert_eq!(
        named, modules,
        "src/lib.rs's layer map must name exactly the crate's modules"
    );
    let edges = edges(&modules);
    let mut upward = Vec::new();
    for (from, tos) in &edges {
        for to in tos {
            if map[to] > map[from] {
                upward.push(format!(
                    "{from} (layer {}) imports {to} (layer {})",
                    map[from], map[to]
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up:\n{}",
        upward.join("\n")
    );
    // No cycle inside a layer: a depth-first search over each module's edges.
    fn reaches(
        edges: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        target: &str,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in &edges[from] {
            if next == target {
                return true;
            }
            if seen.insert(next.clone()) && reaches(edges, next, target, seen) {
                return true;
            }
        }
        false
    }
    let cycles: Vec<&String> = modules
        .iter()
        .filter(|m| reaches(&edges, m, m, &mut BTreeSet::new()))
        .collect();
    assert!(cycles.is_empty(), "modules on an import cycle: {cycles:?}");
}

#[test]
fn the_check_sees_an_upward_import() {
    // The parser of the map and of the sources, on what this crate really has: `cli` imports
    // `app`, and `app` is below `cli`; `domain` imports nothing of the crate.
    let modules = declared_modules();
    let e = edges(&modules);
    let map = layer_map();
    assert!(e["cli"].contains("app"));
    assert!(map["cli"] > map["app"]);
    assert!(e["domain"].is_empty());
    assert_eq!(map["domain"], 0);
}
