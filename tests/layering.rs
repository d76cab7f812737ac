//! No module imports one that imports it back. For every crate of the workspace, each
//! reference a file makes to another module of its crate (`crate::…`, `super::…`,
//! `self::…`, in `use` items and in paths, grouped imports expanded; comments aside) is an
//! edge between the two siblings under their nearest common parent (`relay::worker` →
//! `lifecycle` is `relay` → `lifecycle`; `api::documents` → `api::ops` is `documents` → `ops`
//! under `api`). A module's references to its own parent or children are not edges. The
//! graph of each parent's children must have no cycle. Run: `cargo test --test layering`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod source;
use source::{CRATES, rust_files};

type Module = Vec<String>;

/// The module a file is, from its path under the crate's `src`; `None` for a binary's root.
fn module_of(src: &Path, file: &Path) -> Option<Module> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    match stem {
        "lib" if parts.is_empty() => {}
        "main" if parts.is_empty() => return None,
        "mod" => {}
        _ => parts.push(stem.to_owned()),
    }
    Some(parts)
}

/// The text without comments (line and block comments). Strings are left as they are: a
/// string that spells `crate::x` would read as a reference.
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn ident_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len())
}

/// Expands the path starting at `s` (just after `crate`, `super` or `self` and its `::`)
/// into every path it names, grouped imports included.
fn expand(s: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let s = s.trim_start();
    if let Some(group) = s.strip_prefix('{') {
        // Split the group at its top-level commas.
        let (mut depth, mut start) = (0, 0);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(&group[start..i], prefix, out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&group[start..i], prefix, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let n = ident_len(s);
    if n == 0 {
        if !prefix.is_empty() {
            out.push(prefix.to_vec());
        }
        return;
    }
    let mut path = prefix.to_vec();
    path.push(s[..n].to_owned());
    match s[n..].trim_start().strip_prefix("::") {
        Some(rest) => expand(rest, &path, out),
        None => out.push(path),
    }
}

/// Every module path `text` (a file of module `me`) refers to, absolute within its crate.
/// A file's inline test module (`#[cfg(test)]`, at its end) is not read: its `super` is the
/// file, and what tests import is not the gateway's layering.
fn references(me: &Module, text: &str) -> Vec<Vec<String>> {
    let text = code(text.split("#[cfg(test)]").next().unwrap_or_default());
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            // A whole word: not `mycrate::` nor `x.self::`.
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            // `super::super::` is read by the first `super`.
            if at >= 7 && &text[at - 7..at] == "super::" {
                continue;
            }
            let mut base: Vec<String> = match start {
                "crate::" => Vec::new(),
                _ => me.clone(),
            };
            let mut rest = &text[from..];
            if start == "super::" {
                base.pop();
                while let Some(r) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = r;
                }
            }
            let mut paths = Vec::new();
            expand(rest, &base, &mut paths);
            found.extend(paths);
        }
    }
    found
}

/// The longest prefix of `path` that is a module of the crate.
fn module_prefix(path: &[String], modules: &BTreeSet<Module>) -> Option<Module> {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains(p))
}

/// Edges `(crate dir, parent, from, to)` known to close a cycle, each until the change that
/// removes it; the check leaves them out, and fails when one is no longer there (so that the
/// list only shrinks).
/// None is known now.
const KNOWN: &[(&str, &str, &str, &str)] = &[];

/// Cycles among the children of each parent, each with one reference that makes each edge.
fn cycles(src: &Path) -> Vec<String> {
    cycles_but(src, &[])
}

fn cycles_but(src: &Path, known: &[(&str, &str)]) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules = BTreeSet::new();
    let mut sources = Vec::new();
    for file in &files {
        if let Some(m) = module_of(src, file) {
            modules.insert(m.clone());
            sources.push((m, file.clone()));
        }
    }
    // parent → (from child → (to child → an example)).
    let mut graph: BTreeMap<Module, BTreeMap<String, BTreeMap<String, String>>> = BTreeMap::new();
    for (me, file) in &sources {
        let text = std::fs::read_to_string(file).unwrap();
        for target in references(me, &text) {
            let Some(target) = module_prefix(&target, &modules) else { continue };
            let common = me.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common == me.len() || common == target.len() {
                continue; // an ancestor or a descendant: not a sibling
            }
            let parent = me[..common].to_vec();
            let example = format!("{} → {}", file.display(), target.join("::"));
            graph
                .entry(parent)
                .or_default()
                .entry(me[common].clone())
                .or_default()
                .entry(target[common].clone())
                .or_insert(example);
        }
    }
    let mut problems = Vec::new();
    for (parent, from, to) in known.iter().map(|(p, e)| (p, e.split_once('>').unwrap())).map(|(p, (f, t))| (p, f, t)) {
        let parent: Module = parent.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect();
        let found = graph.get_mut(&parent).and_then(|g| g.get_mut(from)).and_then(|o| o.remove(to));
        if found.is_none() {
            problems.push(format!("{}: {from} → {to} is gone: take it off the known list", src.display()));
        }
    }
    for (parent, edges) in &graph {
        // Every cycle is found through some edge a → b with a path b →* a.
        for (a, outs) in edges {
            for (b, example) in outs {
                if a < b
                    && let Some(back) = path(edges, b, a)
                {
                    let name = if parent.is_empty() { "crate".to_owned() } else { parent.join("::") };
                    let back_examples: Vec<String> = back.windows(2).map(|w| edges[&w[0]][&w[1]].clone()).collect();
                    problems.push(format!(
                        "{}: under {name}: {a} → {b} ({example}) and back: {} ({})",
                        src.display(),
                        back.join(" → "),
                        back_examples.join("; ")
                    ));
                }
            }
        }
    }
    problems
}

/// A path `from` →* `to` in `edges`, if there is one.
fn path(edges: &BTreeMap<String, BTreeMap<String, String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from.to_owned()]];
    while let Some(p) = stack.pop() {
        let last = p.last().unwrap();
        if last == to {
            return Some(p);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in edges.get(last).into_iter().flat_map(|o| o.keys()) {
            let mut q = p.clone();
            q.push(next.clone());
            stack.push(q);
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let problems: Vec<String> = CRATES
        .iter()
        .flat_map(|c| {
            let known: Vec<(&str, String)> =
                KNOWN.iter().filter(|k| k.0 == *c).map(|k| (k.1, format!("{}>{}", k.2, k.3))).collect();
            let known: Vec<(&str, &str)> = known.iter().map(|(p, e)| (*p, e.as_str())).collect();
            cycles_but(&root.join(c), &known)
        })
        .collect();
    assert!(problems.is_empty(), "import cycles:\n{}", problems.join("\n"));
}

#[test]
fn the_check_sees_a_cycle_and_reads_grouped_imports() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a; mod b; mod c;").unwrap();
    std::fs::write(src.join("a/mod.rs"), "mod x; mod y;\nuse crate::{c::Thing, b::{self, Other}};").unwrap();
    std::fs::write(src.join("a/x.rs"), "// use super::y::Gone;\nfn f() { super::y::g() }").unwrap();
    std::fs::write(src.join("a/y.rs"), "use super::super::c;").unwrap();
    std::fs::write(src.join("b.rs"), "pub struct Other;").unwrap();
    std::fs::write(src.join("c.rs"), "pub type Back = crate::a::x::T;").unwrap();
    let found = cycles(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("under crate: a → c") && found[0].contains("c → a"), "{found:?}");
    // x → y alone, and y → c leaves `a`: no cycle under `a`.
    std::fs::write(src.join("c.rs"), "pub struct Thing;").unwrap();
    assert!(cycles(src).is_empty());
    std::fs::write(src.join("a/y.rs"), "use super::x;").unwrap();
    let found = cycles(src);
    assert!(found.len() == 1 && found[0].contains("under a: x → y"), "{found:?}");
}
