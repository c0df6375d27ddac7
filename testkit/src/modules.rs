//! The import graph between a crate's top-level modules, read from its source, so a test can
//! hold the layering (issue 10: no module imports a module that imports it back).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Top-level module name -> the top-level modules its code names as `crate::<module>` (in `use`
/// lines or paths; comments and `#[cfg(test)] mod tests` blocks are skipped). `src` is the
/// crate's `src/` folder; `lib.rs` and `main.rs` are the roots, not modules.
///
/// # Panics
/// When `src` cannot be read (a test helper: the test fails).
pub fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    collect(src, &mut files);
    for file in files {
        let rel = file.strip_prefix(src).unwrap_or(&file);
        let Some(first) = rel.components().next() else {
            continue;
        };
        let top = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" || rel.components().any(|c| c.as_os_str() == "tests") {
            continue;
        }
        let text = fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        // Unit tests may reach anywhere; only product code must keep the layers.
        let text = match text.find("#[cfg(test)]\nmod tests") {
            Some(at) => &text[..at],
            None => &text[..],
        };
        let deps = graph.entry(top.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    // `use crate::{a, b::c}`: the first word of each item.
                    for item in group.split([',', '}']) {
                        push(deps, item.trim(), &top);
                    }
                } else {
                    push(deps, rest, &top);
                }
            }
        }
    }
    let names: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| names.contains(d));
    }
    graph
}

/// Every pair of modules that reach each other (directly or through others), each pair once,
/// in name order. Empty when the graph has no cycle.
pub fn module_cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<(String, String)> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for d in graph.get(&m).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    };
    let mut cycles = BTreeSet::new();
    for (module, deps) in graph {
        for dep in deps {
            if reach(dep).contains(module) {
                let pair = if module < dep {
                    (module.clone(), dep.clone())
                } else {
                    (dep.clone(), module.clone())
                };
                cycles.insert(pair);
            }
        }
    }
    cycles.into_iter().collect()
}

fn push(deps: &mut BTreeSet<String>, path: &str, own: &str) {
    let word: String = path
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if !word.is_empty() && word != own {
        deps.insert(word);
    }
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cycle_through_a_third_module() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.rs"), "use crate::b::X;\n").unwrap();
        fs::write(
            dir.path().join("b.rs"),
            "use crate::{c, std};\n// crate::a\n",
        )
        .unwrap();
        fs::write(dir.path().join("c.rs"), "fn f() { crate::a::g() }\n").unwrap();
        fs::write(dir.path().join("d.rs"), "use crate::a;\n").unwrap();
        let graph = module_graph(dir.path());
        assert_eq!(graph["b"], BTreeSet::from(["c".to_owned()]));
        let cycles = module_cycles(&graph);
        assert_eq!(
            cycles,
            vec![
                ("a".to_owned(), "b".to_owned()),
                ("a".to_owned(), "c".to_owned()),
                ("b".to_owned(), "c".to_owned())
            ]
        );
        fs::write(dir.path().join("c.rs"), "fn f() {}\n").unwrap();
        assert!(module_cycles(&module_graph(dir.path())).is_empty());
    }
}
