//! The house's layering, measured on the source: no import circle between files, and no arrow
//! from a lower layer up to a higher one (docs/architecture.md). A `use` that breaks either fails
//! here, naming the files.
//!
//! References are read from the text (`crate::a::b`, `super::x`, `crate::{a, b}`), outside
//! comments and `#[cfg(test)] mod tests`; a file and the `mod.rs` above it do not count as a
//! circle (a module re-exports its children).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The ground floor: uses nothing of the crate.
const GROUND: &[&str] = &[
    "bytes",
    "wire",
    "diag",
    "file_id",
    "error",
    "errno",
    "yaml_pos",
    "timespec",
    "json",
    "text",
    "safe_path",
    "need",
];

/// What each top-level module above the ground floor may use besides it, lowest first.
/// `cli` (and the crate root) wire everything and may use anything.
const LAYERS: &[(&str, &[&str])] = &[
    ("process", &[]),
    ("columns", &[]),
    ("event", &["process", "columns"]),
    ("capture", &["process", "event"]),
    ("store", &["process", "event", "columns"]),
    ("rules", &["process", "event", "columns"]),
    ("output", &["process", "event", "columns", "store"]),
    ("alerts", &["process", "event", "rules"]),
    (
        "query",
        &["process", "event", "columns", "store", "rules", "output"],
    ),
    (
        "recorder",
        &["process", "event", "capture", "store", "rules", "alerts"],
    ),
    (
        "service",
        &[
            "process", "event", "capture", "recorder", "store", "rules", "alerts",
        ],
    ),
];

const TOP: &[&str] = &["cli", "lib"];

/// Whether top-level module `from` may use `to`.
fn may_use(from: &str, to: &str) -> Option<bool> {
    if GROUND.contains(&from) {
        return Some(false);
    }
    let (_, ok) = LAYERS.iter().find(|(m, _)| *m == from)?;
    Some(GROUND.contains(&to) || ok.contains(&to))
}

/// Module path (`["rules", "compile"]`; `[]` is the crate root) → file.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let Some(rel) = p.strip_prefix(src).unwrap().to_str() else {
                continue;
            };
            let Some(rel) = rel.strip_suffix(".rs") else {
                continue;
            };
            let mut m: Vec<String> = rel.split('/').map(str::to_owned).collect();
            if m.last().is_some_and(|l| l == "mod") {
                m.pop();
            }
            if m == ["lib"] || m == ["main"] {
                m.clear();
            }
            out.insert(m, p);
        }
    }
    out
}

/// The code of a file without comments and without its unit tests.
fn code(text: &str) -> String {
    let text = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i]);
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The module paths a file refers to (`crate::a::b::C` → `["a", "b", "C"]`).
fn references(module: &[String], is_mod_rs: bool, code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (kw, base) in [
        ("crate::", Vec::new()),
        ("super::", {
            // The parent of `a::b` (a/b.rs) is `a`; of `a` (a/mod.rs) the root.
            let _ = is_mod_rs;
            module[..module.len().saturating_sub(1)].to_vec()
        }),
    ] {
        let mut rest = code;
        while let Some(i) = rest.find(kw) {
            let before = rest[..i].chars().last();
            rest = &rest[i + kw.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name = ident(item.trim());
                    if !name.is_empty() {
                        out.push([base.clone(), vec![name.to_owned()]].concat());
                    }
                }
                continue;
            }
            let mut path = base.clone();
            let mut s = rest;
            loop {
                let name = ident(s);
                if name.is_empty() {
                    break;
                }
                path.push(name.to_owned());
                s = &s[name.len()..];
                match s.strip_prefix("::") {
                    Some(t) => s = t,
                    None => break,
                }
            }
            out.push(path);
        }
    }
    out
}

/// Module → modules it uses (the longest known prefix of each reference), ancestors and
/// descendants left out.
fn graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mods = modules(src);
    let mut g: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, file) in &mods {
        let text = code(&std::fs::read_to_string(file).unwrap());
        let is_mod_rs = file.ends_with("mod.rs");
        let deps = g.entry(m.clone()).or_default();
        for r in references(m, is_mod_rs, &text) {
            let Some(target) = (1..=r.len())
                .rev()
                .map(|n| r[..n].to_vec())
                .find(|p| mods.contains_key(p))
            else {
                continue;
            };
            if target.starts_with(m) || m.starts_with(&target) {
                continue;
            }
            deps.insert(target);
        }
    }
    g
}

/// Strongly connected components of more than one node (Tarjan).
fn circles<T: Ord + Clone>(g: &BTreeMap<T, BTreeSet<T>>) -> Vec<Vec<T>> {
    struct St<'a, T> {
        g: &'a BTreeMap<T, BTreeSet<T>>,
        index: BTreeMap<T, usize>,
        low: BTreeMap<T, usize>,
        stack: Vec<T>,
        out: Vec<Vec<T>>,
    }
    fn visit<T: Ord + Clone>(s: &mut St<'_, T>, v: &T) {
        let n = s.index.len();
        s.index.insert(v.clone(), n);
        s.low.insert(v.clone(), n);
        s.stack.push(v.clone());
        for w in s.g.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                let done = &w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                s.out.push(comp);
            }
        }
    }
    let mut s = St {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn top(m: &[String]) -> String {
    m.first().cloned().unwrap_or_else(|| "lib".to_owned())
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let found: Vec<String> = circles(&graph(&src()))
        .iter()
        .map(|c| {
            c.iter()
                .map(|m| m.join("::"))
                .collect::<Vec<_>>()
                .join(" ↔ ")
        })
        .collect();
    assert!(found.is_empty(), "import circles: {found:#?}");
}

#[test]
fn no_layer_reaches_up() {
    let mut wrong = Vec::new();
    for (m, deps) in graph(&src()) {
        let from = top(&m);
        if TOP.contains(&from.as_str()) {
            continue;
        }
        for d in deps {
            let to = top(&d);
            let Some(ok) = may_use(&from, &to) else {
                wrong.push(format!(
                    "{from}: a top-level module the layer table does not know"
                ));
                break;
            };
            if to != from && !ok {
                wrong.push(format!("{} uses {}", m.join("::"), d.join("::")));
            }
        }
    }
    assert!(wrong.is_empty(), "arrows up the layers: {wrong:#?}");
}

/// The measuring itself: the circle the house step removed (event.rs ↔ process.rs) is found
/// when it is put back, and a reference through `super::` and a `crate::{…}` group are read.
#[test]
fn the_layer_check_sees_circles_and_grouped_uses() {
    let refs = references(
        &["rules".into(), "load".into()],
        false,
        &code(
            "use super::compile::Builder;\nuse crate::{event::Event, store};\n// crate::output\n",
        ),
    );
    assert_eq!(
        refs,
        vec![
            vec!["event".to_owned()],
            vec!["store".to_owned()],
            vec![
                "rules".to_owned(),
                "compile".to_owned(),
                "Builder".to_owned()
            ],
        ]
    );
    let g: BTreeMap<&str, BTreeSet<&str>> = [
        ("event", BTreeSet::from(["process"])),
        ("process", BTreeSet::from(["event", "bytes"])),
        ("bytes", BTreeSet::new()),
    ]
    .into();
    assert_eq!(circles(&g).len(), 1);
}
