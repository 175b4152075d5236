//! Fuzz target 3: the rule loader.

use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseResult;

use open_forensics::bytes::Str;
use open_forensics::errno;
use open_forensics::event::Event;
use open_forensics::rules::{RuleSet, RulesError};

use super::{
    apply_bytes, byte_op, evaluate, fail, files, fuzz, generated_events, long_cases, shown, within,
    ByteOp, RULES_LOADED,
};
use crate::helpers::{event, fixtures_dir, read_store};

const COND_KEYS: &[&str] = &[
    "path",
    "path_prefix",
    "comm",
    "exe",
    "uid",
    "gid",
    "pid",
    "ppid",
    "syscall",
    "access",
    "result",
    "cmdline",
    "parent_exe",
    "parent_comm",
    "ancestor_exe",
    "ancestor_comm",
    "container",
    "user",
    "euid",
    "auid",
    "ancestor_pid",
];

const INT_KEYS: &[&str] = &["uid", "gid", "pid", "ppid", "euid", "auid", "ancestor_pid"];

const JUNK_KEYS: &[&str] = &[
    "paths",
    "Path",
    "not_",
    "",
    "name",
    "except",
    "enabled",
    "severity",
    "description",
    "lists",
    "rules",
    "not_not_path",
    "path ",
];

const LIST_NAMES: &[&str] = &["l0", "l1", "l2", "shells", "", "a b", "l$", "ĺ"];

const ACCESS: &[&str] = &[
    "read",
    "write",
    "create",
    "truncate",
    "append",
    "exclusive",
    "directory",
    "tmpfile",
    "path",
    "nofollow",
    "cloexec",
    "READ",
    "exec",
];

const RESULTS: &[&str] = &[
    "success",
    "failure",
    "EACCES",
    "ENOENT",
    "EPERM",
    "E2BIG",
    "EAGAIN",
    "EWOULDBLOCK",
    "EOPNOTSUPP",
    "ENOTSUP",
    "eacces",
    "EFOO",
    "0",
    "-13",
];

const SYSCALLS: &[&str] = &[
    "open",
    "creat",
    "openat",
    "openat2",
    "open_by_handle_at",
    "io_uring",
    "execve",
    "",
];

/// Pieces of globs: brackets, braces, escapes, separators.
const GLOB_PIECES: &[&str] = &[
    "/", "/", "/", "a", "b", "etc", "shadow", "*", "**", "**/", "?", "[", "]", "[a-z]", "[!a]",
    "[^a]", "[]]", "[z-a]", "{", "}", "{a,b}", "{,}", "{{a}}", ",", "\\", "\\*", "\\[", "-", ".",
    "..", "$", "$l0", " ", "é", "\u{0}", "\t", "#", ":", "'", "\"",
];

#[derive(Clone, Debug)]
enum Y {
    /// A string written as a JSON (= YAML double-quoted) string.
    Quoted(String),
    /// A string written as it is (may well not be one).
    Plain(String),
    Int(i64),
    /// YAML text as it is.
    Raw(&'static str),
}

const Y_RAW: &[&str] = &[
    "true",
    "null",
    "~",
    "[]",
    "{}",
    "1.5",
    "0x10",
    "-0",
    "!!binary AAAA",
    "{a: b}",
    "[[x]]",
    ".inf",
    "2001-12-14",
];

impl Y {
    fn render(&self) -> String {
        match self {
            Y::Quoted(s) => serde_json::to_string(s).expect("string serializes"),
            Y::Plain(s) => s.clone(),
            Y::Int(i) => i.to_string(),
            Y::Raw(r) => (*r).to_owned(),
        }
    }
}

#[derive(Clone, Debug)]
enum YVal {
    One(Y),
    Flow(Vec<Y>),
    Block(Vec<Y>),
    Null,
}

impl YVal {
    fn render(&self, indent: usize) -> String {
        match self {
            YVal::One(y) => format!(" {}", y.render()),
            YVal::Flow(v) => format!(
                " [{}]",
                v.iter().map(Y::render).collect::<Vec<_>>().join(", ")
            ),
            YVal::Block(v) if v.is_empty() => " []".into(),
            YVal::Block(v) => v
                .iter()
                .map(|y| format!("\n{}- {}", " ".repeat(indent), y.render()))
                .collect(),
            YVal::Null => String::new(),
        }
    }
}

/// Glob pieces that make valid globs, whatever their order.
const TIDY_GLOB_PIECES: &[&str] = &[
    "/", "/", "/", "a", "etc", "shadow", "*", "**", "**/", "?", "[a-z]", "[!a]", "{a,b}", "\\*",
    ".", "..", "é", "-", " ", "$", ":",
];

fn tidy_glob() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::collection::vec(select(TIDY_GLOB_PIECES), 0..10)
            .prop_map(|p| format!("/{}", p.concat())),
        1 => select(&["/etc/shadow", "/etc/ssh/", "/root/.ssh/*", "/home/*/.ssh/**", "/tmp/", "/**"][..])
            .prop_map(str::to_owned),
    ]
    .boxed()
}

fn glob() -> BoxedStrategy<String> {
    prop_oneof![
        3 => (prop::bool::weighted(0.8), prop::collection::vec(select(GLOB_PIECES), 0..12))
            .prop_map(|(abs, p)| format!("{}{}", if abs { "/" } else { "" }, p.concat())),
        1 => select(&["/etc/shadow", "/etc/ssh/", "/root/.ssh/*", "/home/*/.ssh/**", "python*", "host",
            "bash", "/tmp/", "**/x", "/**"][..]).prop_map(str::to_owned),
        1 => (prop_oneof![Just(4096usize), Just(4097), Just(15), Just(16), 0usize..5000],
              select(&["a", "é", "*", "[a]", "{a,b}"][..]))
            .prop_map(|(n, p)| format!("/{}", p.repeat(n / p.len()))),
    ]
    .boxed()
}

const TIDY_LISTS: &[&str] = &["l0", "l1", "l2", "shells"];

fn list_ref(tidy: bool) -> BoxedStrategy<Y> {
    if tidy {
        return prop_oneof![
            4 => select(TIDY_LISTS).prop_map(|n| Y::Quoted(format!("${n}"))),
            1 => select(TIDY_LISTS).prop_map(|n| Y::Plain(format!("${n}"))),
        ]
        .boxed();
    }
    prop_oneof![
        3 => select(LIST_NAMES).prop_map(|n| Y::Quoted(format!("${n}"))),
        1 => select(LIST_NAMES).prop_map(|n| Y::Plain(format!("${n}"))),
        1 => (1u32..120).prop_map(|n| Y::Quoted(format!("$c{n}"))),
        1 => Just(Y::Quoted("$".into())),
    ]
    .boxed()
}

/// A value for condition `key`: of the right type when `tidy`, mostly otherwise.
fn item_for(key: &str, tidy: bool) -> BoxedStrategy<Y> {
    let base = key.strip_prefix("not_").unwrap_or(key);
    let typed: BoxedStrategy<Y> = if INT_KEYS.contains(&base) && tidy {
        prop_oneof![
            8 => (0i64..5).prop_map(Y::Int),
            1 => select(&[4294967295, 65534][..]).prop_map(Y::Int),
        ]
        .boxed()
    } else if INT_KEYS.contains(&base) {
        prop_oneof![
            3 => (0i64..5).prop_map(Y::Int),
            2 => select(&[-1i64, 4294967295, 4294967296, i64::MAX, i64::MIN, 65534][..]).prop_map(Y::Int),
            1 => any::<i64>().prop_map(Y::Int),
        ]
        .boxed()
    } else {
        let names: &'static [&'static str] = match (base, tidy) {
            ("access", false) => ACCESS,
            ("access", true) => &ACCESS[..11],
            ("result", false) => RESULTS,
            ("result", true) => &RESULTS[..10],
            ("syscall", false) => SYSCALLS,
            ("syscall", true) => &SYSCALLS[..6],
            _ => &[],
        };
        if names.is_empty() && tidy {
            match base {
                "path" | "exe" | "parent_exe" | "ancestor_exe" => {
                    tidy_glob().prop_map(Y::Quoted).boxed()
                }
                "path_prefix" => prop_oneof![Just("/tmp/"), Just("/"), Just("/etc/ss")]
                    .prop_map(|s| Y::Quoted(s.into()))
                    .boxed(),
                "container" => prop_oneof![
                    1 => Just(Y::Quoted("host".into())),
                    2 => "[0-9a-f*]{1,12}".prop_map(Y::Quoted),
                ]
                .boxed(),
                _ => prop_oneof![
                    2 => "[a-z0-9*?]{1,16}".prop_map(Y::Quoted),
                    1 => tidy_glob().prop_map(Y::Quoted),
                ]
                .boxed(),
            }
        } else if names.is_empty() {
            prop_oneof![
                4 => glob().prop_map(Y::Quoted),
                1 => glob().prop_map(Y::Plain),
            ]
            .boxed()
        } else {
            select(names).prop_map(|s| Y::Quoted(s.to_owned())).boxed()
        }
    };
    if tidy {
        return prop_oneof![8 => typed, 1 => list_ref(true)].boxed();
    }
    prop_oneof![
        8 => typed,
        2 => list_ref(false),
        1 => select(Y_RAW).prop_map(Y::Raw),
        1 => glob().prop_map(Y::Quoted),
        1 => (0i64..3).prop_map(Y::Int),
    ]
    .boxed()
}

fn value_for(key: &str, tidy: bool) -> BoxedStrategy<YVal> {
    let item = item_for(key, tidy);
    if tidy {
        return prop_oneof![
            4 => item.clone().prop_map(YVal::One),
            4 => prop::collection::vec(item.clone(), 1..5).prop_map(YVal::Flow),
            2 => prop::collection::vec(item, 1..4).prop_map(YVal::Block),
        ]
        .boxed();
    }
    prop_oneof![
        4 => item.clone().prop_map(YVal::One),
        4 => prop::collection::vec(item.clone(), 0..5).prop_map(YVal::Flow),
        2 => prop::collection::vec(item, 0..4).prop_map(YVal::Block),
        1 => Just(YVal::Null),
    ]
    .boxed()
}

fn condition(tidy: bool) -> BoxedStrategy<(String, YVal)> {
    let key = (select(COND_KEYS), any::<bool>()).prop_map(|(k, not)| {
        if not {
            format!("not_{k}")
        } else {
            k.to_owned()
        }
    });
    let key = if tidy {
        key.boxed()
    } else {
        prop_oneof![10 => key, 1 => select(JUNK_KEYS).prop_map(str::to_owned)].boxed()
    };
    key.prop_flat_map(move |k| {
        let v = value_for(&k, tidy);
        (Just(k), v)
    })
    .boxed()
}

/// Conditions of a rule or an except block (a tidy block has each key once, and at least one).
fn conditions(tidy: bool, max: usize) -> BoxedStrategy<Vec<(String, YVal)>> {
    let min = usize::from(tidy);
    prop::collection::vec(condition(tidy), min..max)
        .prop_map(move |mut v| {
            if tidy {
                let mut seen = std::collections::HashSet::new();
                v.retain(|(k, _)| seen.insert(k.clone()));
            }
            v
        })
        .boxed()
}

#[derive(Clone, Debug)]
struct YRule {
    head: Vec<(String, YVal)>,
    conds: Vec<(String, YVal)>,
    excepts: Option<Vec<Vec<(String, YVal)>>>,
}

fn quoted(s: &str) -> YVal {
    YVal::One(Y::Quoted(s.into()))
}

fn yrule(tidy: bool) -> BoxedStrategy<YRule> {
    // A tidy rule is named when the document is rendered (`r0`, `r1`, …: unique).
    let name = prop_oneof![
        4 => select(&["r1", "r2", "r-3.x:y", "shadow_read"][..]).prop_map(quoted),
        1 => select(&["", "bad name", "r1\n", "ř", "r/1"][..]).prop_map(quoted),
        1 => select(Y_RAW).prop_map(|r| YVal::One(Y::Raw(r))),
    ];
    let description = if tidy {
        "[ -~]{0,20}".prop_map(|s| YVal::One(Y::Quoted(s))).boxed()
    } else {
        prop_oneof![
            4 => ".{0,20}".prop_map(|s| YVal::One(Y::Quoted(s))),
            1 => (0i64..3).prop_map(|i| YVal::One(Y::Int(i))),
            1 => Just(YVal::Null),
        ]
        .boxed()
    };
    let valid_severity = select(&["info", "low", "medium", "high", "critical"][..])
        .prop_map(|s| YVal::One(Y::Plain(s.into())));
    let severity = if tidy {
        valid_severity.boxed()
    } else {
        prop_oneof![
            6 => valid_severity,
            1 => select(&["HIGH", "bogus", ""][..]).prop_map(quoted),
            1 => (0i64..3).prop_map(|i| YVal::One(Y::Int(i))),
        ]
        .boxed()
    };
    let enabled = prop_oneof![
        4 => Just(None),
        2 => any::<bool>().prop_map(|b| Some(YVal::One(Y::Raw(if b { "true" } else { "false" })))),
        1 => Just(Some(if tidy { YVal::One(Y::Raw("true")) } else { quoted("yes") })),
    ];
    // Tidy rules have every required key (and their names are given when rendered).
    let opt = |s: BoxedStrategy<YVal>| {
        if tidy {
            s.prop_map(Some).boxed()
        } else {
            proptest::option::weighted(0.95, s).boxed()
        }
    };
    (
        proptest::option::weighted(0.95, name),
        opt(description),
        opt(severity),
        enabled,
        conditions(tidy, 5),
        proptest::option::weighted(0.3, prop::collection::vec(conditions(tidy, 3), 0..3)),
    )
        .prop_map(|(name, description, severity, enabled, conds, excepts)| {
            let mut head = Vec::new();
            for (k, v) in [
                ("name", name),
                ("description", description),
                ("severity", severity),
                ("enabled", enabled),
            ] {
                if let Some(v) = v {
                    head.push((k.to_owned(), v));
                }
            }
            YRule {
                head,
                conds,
                excepts,
            }
        })
        .boxed()
}

#[derive(Clone, Debug)]
struct YDoc {
    /// Names rules uniquely and defines each list once.
    tidy: bool,
    lists: Option<Vec<(&'static str, YVal)>>,
    /// `c0: [$c1]`, … `cN: [/x]` (or `[$c0]`, a cycle), used by a rule.
    chain: Option<(u8, bool)>,
    /// `b0` two values, `bN: [$bN-1, $bN-1]`: 2^N values, used by a rule.
    bomb: Option<u8>,
    /// YAML anchors doubling at every level.
    aliases: Option<u8>,
    open_monitor: Option<Vec<(&'static str, YVal)>>,
    rules: Option<Vec<YRule>>,
    text: Vec<ByteOp>,
}

const OPEN_MONITOR_KEYS: &[&str] = &[
    "sensitive_paths",
    "allow_comm",
    "deny_comm",
    "ignore_path_prefixes",
    "other",
];

fn ydoc(tidy: bool) -> BoxedStrategy<YDoc> {
    let names = if tidy { TIDY_LISTS } else { LIST_NAMES };
    let item = if tidy {
        prop_oneof![3 => tidy_glob().prop_map(Y::Quoted), 1 => list_ref(true)].boxed()
    } else {
        prop_oneof![3 => glob().prop_map(Y::Quoted), 2 => list_ref(false),
            1 => (0i64..3).prop_map(Y::Int)]
        .boxed()
    };
    let list = if tidy {
        prop::collection::vec(item, 0..5)
            .prop_map(YVal::Flow)
            .boxed()
    } else {
        prop_oneof![
            3 => prop::collection::vec(item, 0..5).prop_map(YVal::Flow),
            1 => select(Y_RAW).prop_map(|r| YVal::One(Y::Raw(r))),
        ]
        .boxed()
    };
    let lists = prop::collection::vec((select(names), list), 0..5);
    let om_keys = if tidy {
        &OPEN_MONITOR_KEYS[..4]
    } else {
        OPEN_MONITOR_KEYS
    };
    let om = prop::collection::vec(
        select(om_keys).prop_flat_map(move |k| (Just(k), value_for("path", tidy))),
        0..4,
    );
    (
        proptest::option::weighted(0.6, lists),
        proptest::option::weighted(0.15, (1u8..100, any::<bool>())),
        proptest::option::weighted(0.1, 1u8..24),
        proptest::option::weighted(if tidy { 0.01 } else { 0.05 }, 1u8..12),
        proptest::option::weighted(0.2, om),
        if tidy {
            prop::collection::vec(yrule(true), 1..5)
                .prop_map(Some)
                .boxed()
        } else {
            proptest::option::weighted(0.9, prop::collection::vec(yrule(false), 0..5)).boxed()
        },
        if tidy {
            Just(vec![]).boxed()
        } else {
            prop_oneof![4 => Just(vec![]), 1 => prop::collection::vec(byte_op(), 1..4)].boxed()
        },
    )
        .prop_map(
            move |(lists, chain, bomb, aliases, open_monitor, rules, text)| YDoc {
                tidy,
                lists,
                chain,
                bomb,
                aliases,
                open_monitor,
                rules,
                text,
            },
        )
        .boxed()
}

fn render_conds(out: &mut String, conds: &[(String, YVal)], indent: usize) {
    for (i, (k, v)) in conds.iter().enumerate() {
        let pad = if i == 0 {
            format!("{}- ", " ".repeat(indent - 2))
        } else {
            " ".repeat(indent)
        };
        let key = Y::Quoted(k.clone()).render();
        out.push_str(&format!("{pad}{key}:{}\n", v.render(indent + 2)));
    }
}

fn render_doc(d: &YDoc) -> String {
    let mut out = String::new();
    let mut seen = std::collections::HashSet::new();
    let mut once = |k: &str| !d.tidy || seen.insert(k.to_owned());
    if let Some(om) = &d.open_monitor {
        out.push_str("open_monitor:\n");
        for (k, v) in om {
            if once(&format!("open_monitor.{k}")) {
                out.push_str(&format!("  {k}:{}\n", v.render(4)));
            }
        }
    }
    let any_lists =
        d.lists.is_some() || d.chain.is_some() || d.bomb.is_some() || d.aliases.is_some();
    if any_lists {
        out.push_str("lists:\n");
        if d.tidy {
            // Every list a tidy rule may name exists.
            for name in TIDY_LISTS {
                if d.lists.iter().flatten().all(|(n, _)| n != name) {
                    out.push_str(&format!("  {name}: [/tidy/{name}]\n"));
                }
            }
        }
    }
    for (name, v) in d.lists.iter().flatten() {
        if once(&format!("lists.{name}")) {
            let name = Y::Quoted((*name).into()).render();
            out.push_str(&format!("  {name}:{}\n", v.render(4)));
        }
    }
    if let Some((depth, cycle)) = d.chain {
        for i in 0..depth {
            out.push_str(&format!("  c{i}: [\"$c{}\"]\n", i + 1));
        }
        let last = if cycle { "\"$c0\"" } else { "/x" };
        out.push_str(&format!("  c{depth}: [{last}]\n"));
    }
    if let Some(n) = d.bomb {
        out.push_str("  b0: [/a, /b]\n");
        for i in 1..=n {
            out.push_str(&format!("  b{i}: [\"$b{}\", \"$b{}\"]\n", i - 1, i - 1));
        }
    }
    if let Some(n) = d.aliases {
        out.push_str("  y0: &y0 [/a, /a, /a, /a]\n");
        for i in 1..=n {
            let p = i - 1;
            out.push_str(&format!("  y{i}: &y{i} [*y{p}, *y{p}, *y{p}, *y{p}]\n"));
        }
    }
    let mut rules: Vec<String> = Vec::new();
    for (i, r) in d.rules.iter().flatten().enumerate() {
        let mut s = String::new();
        let mut all = r.head.clone();
        if d.tidy {
            all.retain(|(k, _)| k != "name");
            all.insert(0, ("name".into(), quoted(&format!("r{i}"))));
        }
        all.extend(r.conds.iter().cloned());
        render_conds(&mut s, &all, 4);
        if let Some(ex) = &r.excepts {
            s.push_str("    except:\n");
            for block in ex {
                if block.is_empty() {
                    s.push_str("      - {}\n");
                } else {
                    render_conds(&mut s, block, 8);
                }
            }
        }
        rules.push(s);
    }
    let extra = [
        d.chain.map(|_| "\"$c0\"".to_owned()),
        d.bomb.map(|n| format!("\"$b{n}\"")),
        d.aliases.map(|n| format!("\"$y{n}\"")),
    ];
    for (i, r) in extra.iter().flatten().enumerate() {
        rules.push(format!(
            "  - name: list_user_{i}\n    description: d\n    severity: low\n    path: [{r}]\n"
        ));
    }
    if d.rules.is_some() || !rules.is_empty() {
        out.push_str("rules:\n");
        if rules.is_empty() {
            out.push_str("  []\n");
        }
        for r in rules {
            out.push_str(&r);
        }
    }
    let mut bytes = out.into_bytes();
    apply_bytes(&mut bytes, &d.text);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The example rule files and the malformed corpus.
fn rule_fixtures() -> &'static [String] {
    static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        let dir = fixtures_dir().join("rules");
        let mut v: Vec<String> = files(&dir, ".yaml")
            .into_iter()
            .chain(files(&dir.join("bad"), ".yaml"))
            .map(|p| {
                String::from_utf8_lossy(&std::fs::read(p).expect("read rule file")).into_owned()
            })
            .collect();
        assert!(v.len() > 5);
        v.retain(|t| t.len() < 200_000);
        v
    })
}

/// Events to evaluate loaded rules on: recorded ones (with lineage and string keys) and odd ones.
fn eval_events() -> &'static [Event] {
    static EVENTS: OnceLock<Vec<Event>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let recorded = read_store(&fixtures_dir().join("segments").join("lineage"));
        let mut v: Vec<Event> = recorded.into_iter().step_by(9).collect();
        v.extend(generated_events().into_iter().step_by(3));
        let mut odd = event(5, "");
        odd.path = Str::new(&b"\xff/\xfe"[..]);
        odd.raw_path = Str::default();
        odd.comm = Str::default();
        odd.ret = i64::MIN;
        odd.flags = u64::MAX;
        v.push(odd);
        v
    })
}

/// Loads `text`; on success evaluates events, on failure checks the diagnostics.
fn load_rules(text: &str) -> Result<(), String> {
    // Lines as YAML counts them: CR, LF, CRLF, NEL, LS and PS all break lines.
    let lines = 1 + text
        .replace("\r\n", "\n")
        .matches(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
        .count();
    match RuleSet::from_yaml("f.yaml", text) {
        Ok(set) => {
            RULES_LOADED.fetch_add(1, Ordering::Relaxed);
            for r in set.rules() {
                let _ = set.only(&r.name);
            }
            let mut engine = set.engine();
            for ev in eval_events() {
                evaluate(&mut engine, ev);
            }
            Ok(())
        }
        Err(RulesError::Invalid(diags)) => {
            if diags.is_empty() {
                return Err("an error without diagnostics".into());
            }
            for d in &diags {
                if d.file != "f.yaml" {
                    return Err(format!("diagnostic names another file: {d:?}"));
                }
                if let Some((l, c)) = d.pos {
                    // libyaml places an error at the end of a file without a final newline
                    // on the line after the last.
                    if l == 0 || c == 0 || l > lines + 1 {
                        return Err(format!("position {l}:{c} outside a {lines}-line file: {d}"));
                    }
                }
                if d.message.is_empty() {
                    return Err(format!("empty message: {d:?}"));
                }
            }
            let all = RulesError::Invalid(diags).to_string();
            for l in all.lines() {
                if !l.starts_with("f.yaml:") {
                    return Err(format!("error line without the `f.yaml:` prefix: {l:?}"));
                }
            }
            Ok(())
        }
        Err(e) => Err(format!("not a diagnostic: {e}")),
    }
}

#[derive(Clone, Debug)]
enum RuleCase {
    Generated(YDoc),
    Fixture(Index, Vec<ByteOp>),
}

fn rule_case() -> BoxedStrategy<RuleCase> {
    prop_oneof![
        3 => ydoc(true).prop_map(RuleCase::Generated),
        2 => ydoc(false).prop_map(RuleCase::Generated),
        2 => (any::<Index>(), prop::collection::vec(byte_op(), 0..5))
            .prop_map(|(i, ops)| RuleCase::Fixture(i, ops)),
    ]
    .boxed()
}

fn rule_text(case: &RuleCase) -> String {
    match case {
        RuleCase::Generated(d) => render_doc(d),
        RuleCase::Fixture(i, ops) => {
            let mut b = i.get(rule_fixtures()).clone().into_bytes();
            apply_bytes(&mut b, ops);
            String::from_utf8_lossy(&b).into_owned()
        }
    }
}

fn check_rules(case: RuleCase) -> TestCaseResult {
    let text = rule_text(&case);
    let t = text.clone();
    within("rule loader", move || load_rules(&t))
        .map_err(|e| fail(format!("{e}\ntext: {}", shown(&text))))
}

/// Found by `rule_loader_survives_generated_and_mutated_files`, fixed in ed3ceae: an event with
/// `ret` = i64::MIN (`import` accepts `"ret": -9223372036854775808`) panicked a debug build with
/// "attempt to negate with overflow" in any rule with an errno `result:` (`-ev.ret`): `replay`
/// exited 101.
#[test]
fn result_rule_on_ret_i64_min_does_not_panic() {
    let set = RuleSet::from_yaml(
        "f.yaml",
        "rules:\n  - name: denied\n    description: d\n    severity: low\n    result: [EACCES]\n",
    )
    .expect("rule loads");
    let ev = Event {
        ret: i64::MIN,
        ..event(1, "/etc/shadow")
    };
    let mut n = 0;
    set.engine().eval(&ev, |_| n += 1);
    assert_eq!(n, 0);
}

/// The same negation in `errno::name_of_ret`, which `query --format table`, SQL over events and
/// `proc` call for every failed open (fixed in ed3ceae).
#[test]
fn errno_name_of_ret_i64_min_does_not_panic() {
    assert_eq!(errno::name_of_ret(i64::MIN), None);
}

const RULES_SUITE_CASES: u32 = 400;

#[test]
fn rule_loader_survives_generated_and_mutated_files() {
    fuzz(
        "rule loader",
        RULES_SUITE_CASES,
        &RULES_LOADED,
        rule_case(),
        check_rules,
    );
}

#[test]
#[ignore = "long fuzz run: FUZZ_CASES=N cargo test --release --test it fuzz:: -- --ignored"]
fn long_rule_loader() {
    fuzz(
        "rule loader",
        long_cases(),
        &RULES_LOADED,
        rule_case(),
        check_rules,
    );
}
