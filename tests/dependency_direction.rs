//! The top-level modules depend on each other in one direction only. ARCHITECTURE.md's table "Dependency
//! direction" lists, for each module, the modules it may use; this test reads every `crate::…` path in the
//! code of each module (comments and doc comments aside) and fails on any use the table does not allow, and
//! on any cycle in the table itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `module → modules it may use`, from ARCHITECTURE.md.
fn allowed() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find("## Dependency direction")
        .expect("ARCHITECTURE.md has a section `## Dependency direction`");
    let mut map = BTreeMap::new();
    for line in text[start..].lines().skip(1) {
        if line.starts_with("## ") {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let module = cells[1].trim_matches('`').to_string();
        let uses: BTreeSet<String> = cells[2]
            .split(',')
            .map(|s| s.trim().trim_matches('`').to_string())
            .filter(|s| !s.is_empty() && s != "—")
            .collect();
        map.insert(module, uses);
    }
    assert!(!map.is_empty(), "the dependency table is empty");
    map
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

/// The top-level module a source file belongs to (`src/proto/http/head.rs` → `proto`).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(repo().join("src")).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main" | "cli")).then(|| name.to_string())
}

/// Every `crate::NAME` in code (not in comments), with its line number.
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_use_block = false;
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let t = code.trim_start();
        // `use crate::{a::X, b::Y};` over several lines.
        if t.starts_with("use crate::{") && !t.contains("};") {
            in_use_block = true;
        }
        if in_use_block {
            for part in t.trim_start_matches("use crate::{").split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                    out.push((i + 1, name));
                }
            }
            if t.contains("};") {
                in_use_block = false;
            }
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(inner) = rest.strip_prefix('{') {
                for part in inner.split('}').next().unwrap_or("").split(',') {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push((i + 1, name));
                    }
                }
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push((i + 1, name));
            }
        }
    }
    out
}

#[test]
fn modules_use_only_what_the_table_allows() {
    let allowed = allowed();
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    files.sort();
    let top_level: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    for m in &top_level {
        assert!(
            allowed.contains_key(m),
            "module `{m}` is missing from ARCHITECTURE.md's dependency table"
        );
    }
    let mut wrong = Vec::new();
    for f in &files {
        let Some(m) = module_of(f) else { continue };
        let text = std::fs::read_to_string(f).unwrap();
        for (line, used) in uses(&text) {
            if used == m || !top_level.contains(&used) {
                continue; // itself, or an item of lib.rs (`crate::Config`)
            }
            if !allowed[&m].contains(&used) {
                wrong.push(format!(
                    "{}:{line}: `{m}` uses `{used}`, which the table does not allow",
                    f.strip_prefix(repo()).unwrap().display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_table_has_no_cycle() {
    let allowed = allowed();
    // Depth-first search with colours; the path is reported.
    fn visit(
        m: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) {
        match state.get(m) {
            Some(2) => return,
            Some(1) => panic!("cycle: {} → {m}", path.join(" → ")),
            _ => {}
        }
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        for n in g.get(m).into_iter().flatten() {
            visit(n, g, state, path);
        }
        path.pop();
        state.insert(m.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    for m in allowed.keys() {
        visit(m, &allowed, &mut state, &mut Vec::new());
    }
}

#[test]
fn the_reader_sees_uses_in_every_form() {
    let src = "use crate::a::X;\nuse crate::{b::Y, c};\nlet z = crate::d::f(); // crate::e::no\n/// crate::f::no\nuse crate::{\n    g::Z,\n    h::W,\n};\n";
    let names: Vec<String> = uses(src).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["a", "b", "c", "d", "g", "h"]);
}
