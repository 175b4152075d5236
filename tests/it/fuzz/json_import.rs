//! Fuzz target 2: the JSON-lines importer.

use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseResult;
use serde_json::{Map, Value};

use open_forensics::bytes::Str;
use open_forensics::event::{Event, EventJson, ImportedProcs};
use open_forensics::process::Process;

use super::{
    apply_bytes, byte_op, eval_rules, evaluate, fail, fuzz, generated_events, long_cases,
    scenario_dirs, shown, within, ByteOp, LINES_IMPORTED, T0,
};
use crate::helpers::{bin, event};

/// Lines exported from every fixture scenario (by the binary) and from generated events.
fn json_seeds() -> &'static [String] {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut lines = Vec::new();
        for dir in scenario_dirs() {
            let out = std::process::Command::new(bin())
                .arg("--store")
                .arg(&dir)
                .arg("export")
                .stdin(std::process::Stdio::null())
                .output()
                .expect("run export");
            assert!(
                out.status.success(),
                "export {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).expect("UTF-8 export");
            // Every 7th line: the scenarios repeat themselves.
            lines.extend(text.lines().step_by(7).map(str::to_owned));
        }
        lines.extend(generated_events().iter().map(Event::to_json_line));
        assert!(lines.len() > 50, "{} seed lines", lines.len());
        lines
    })
}

const EVENT_KEYS: &[&str] = &[
    "ts",
    "ts_ns",
    "pid",
    "tid",
    "ppid",
    "uid",
    "gid",
    "comm",
    "comm_b64",
    "syscall",
    "path",
    "path_b64",
    "path_source",
    "path_truncated",
    "raw_path",
    "raw_path_b64",
    "dirfd",
    "flags",
    "mode",
    "ret",
    "exe",
    "exe_b64",
    "argv",
    "argv_b64",
    "proc_start",
    "euid",
    "egid",
    "auid",
    "user",
    "cgroup",
    "container_id",
    "parent_exe",
    "ancestors",
    "user_b64",
    "cgroup_b64",
    "unknown",
];

const TIMES: &[&str] = &[
    "2026-11-25T13:52:50.883969754Z",
    "1970-01-01T00:00:00Z",
    "1677-09-21T00:12:43.145224192Z",
    "1677-09-21T00:12:43.145224191Z",
    "2262-04-11T23:47:16.854775807Z",
    "2262-04-11T23:47:16.854775808Z",
    "9999-12-31T23:59:59.999999999Z",
    "0000-01-01T00:00:00Z",
    "2016-12-31T23:59:60.5Z",
    "2026-11-25T13:52:50.8839697541234Z",
    "2026-11-25T13:52:50+14:00",
    "2026-11-25T13:52:50-23:59",
    "2026-11-25t13:52:50z",
    "2026-02-30T00:00:00Z",
    "2026-11-25 13:52:50Z",
    "",
    "now",
];

const STRINGS: &[&str] = &[
    "",
    "openat",
    "open",
    "creat",
    "openat2",
    "open_by_handle_at",
    "io_uring",
    "OPENAT",
    "file",
    "raw",
    "cwd",
    "dirfd",
    "unresolved",
    "/etc/shadow",
    "cat",
    "123456789012345",
    "1234567890123456",
    "ééééééé1",
    "\u{0}",
    "\u{85}",
    "\u{9b}2J",
    "\u{2028}",
    "\u{fffd}",
    "😀",
    "AAAA",
    "////",
    "=",
    "A",
    "AA==",
    "AA=",
    "/w==",
    "/w",
    "_-8=",
    "a\nb",
];

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        2 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        2 => select(&[0i64, 1, -1, -100, 3, 4294967295, 4294967296, i64::MAX, i64::MIN][..]).prop_map(Value::from),
        1 => select(&[0.5f64, -0.0, 1e300, 3.0][..]).prop_map(Value::from),
        3 => select(STRINGS).prop_map(Value::from),
        2 => select(TIMES).prop_map(Value::from),
        2 => ".{0,24}".prop_map(Value::from),
        1 => (prop_oneof![Just(16usize), Just(4096), Just(4097), Just(8192), Just(8193), 0usize..20_000],
              select(&["a", "é", "/", "\u{0}", "😀"][..]))
            .prop_map(|(n, s)| Value::from(s.repeat(n / s.len().max(1)))),
        2 => prop::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| Value::from(base64::engine::general_purpose::STANDARD.encode(b))),
    ]
    .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(4, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((select(EVENT_KEYS), inner), 0..6).prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
        .boxed()
}

fn ancestor() -> BoxedStrategy<Value> {
    let pid = prop_oneof![
        4 => (0u32..5000).prop_map(Value::from),
        1 => json_leaf(),
    ];
    let text = prop_oneof![3 => select(STRINGS).prop_map(Value::from), 1 => json_leaf()];
    let exe = prop_oneof![
        1 => Just(Value::Null),
        2 => select(&["/usr/bin/bash", "/memfd:x (deleted)", "\u{fffd}"][..]).prop_map(Value::from),
        1 => json_leaf(),
    ];
    let start = prop_oneof![4 => select(TIMES).prop_map(Value::from), 1 => json_leaf()];
    (pid, text, exe, start, 0u8..10, json_leaf())
        .prop_map(|(pid, comm, exe, start, shape, extra)| {
            let mut o = Map::new();
            o.insert("pid".into(), pid);
            o.insert("comm".into(), comm);
            o.insert("exe".into(), exe);
            o.insert("proc_start".into(), start);
            match shape {
                0 => {
                    o.remove("exe");
                }
                1 => {
                    o.insert("extra".into(), extra);
                }
                2 => {
                    o.remove("proc_start");
                }
                _ => {}
            }
            Value::Object(o)
        })
        .boxed()
}

#[derive(Clone, Debug)]
enum LineOp {
    Set(&'static str, Value),
    Remove(&'static str),
    /// `<field>_b64` with these exact bytes (usually not UTF-8).
    B64(&'static str, Vec<u8>),
    ArgvB64(Vec<Vec<u8>>),
    Ancestors(Vec<Value>),
    /// A value nested this deep (arrays or objects).
    Deep(&'static str, u16, bool),
}

fn line_op() -> BoxedStrategy<LineOp> {
    prop_oneof![
        6 => (select(EVENT_KEYS), json_value()).prop_map(|(k, v)| LineOp::Set(k, v)),
        3 => select(EVENT_KEYS).prop_map(LineOp::Remove),
        2 => (select(&["comm", "path", "raw_path", "exe"][..]), prop::collection::vec(any::<u8>(), 0..32))
            .prop_map(|(k, b)| LineOp::B64(k, b)),
        1 => prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..5).prop_map(LineOp::ArgvB64),
        2 => prop::collection::vec(ancestor(), 0..40).prop_map(LineOp::Ancestors),
        1 => (select(EVENT_KEYS), 1u16..400, any::<bool>()).prop_map(|(k, n, a)| LineOp::Deep(k, n, a)),
    ]
    .boxed()
}

#[derive(Clone, Debug)]
struct LineCase {
    seed: Index,
    ops: Vec<LineOp>,
    text: Vec<ByteOp>,
}

fn line_case() -> BoxedStrategy<LineCase> {
    (
        any::<Index>(),
        prop::collection::vec(line_op(), 0..5),
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(byte_op(), 1..4)],
    )
        .prop_map(|(seed, ops, text)| LineCase { seed, ops, text })
        .boxed()
}

fn build_line(case: &LineCase) -> String {
    let seed = case.seed.get(json_seeds());
    let mut obj: Map<String, Value> = serde_json::from_str(seed).expect("seed line is an object");
    let mut raw = Vec::new();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    for op in &case.ops {
        match op {
            LineOp::Set(k, v) => {
                obj.insert((*k).into(), v.clone());
            }
            LineOp::Remove(k) => {
                obj.remove(*k);
            }
            LineOp::B64(k, bytes) => {
                obj.insert(format!("{k}_b64"), b64(bytes).into());
                obj.insert(
                    (*k).into(),
                    String::from_utf8_lossy(bytes).into_owned().into(),
                );
            }
            LineOp::ArgvB64(args) => {
                obj.insert(
                    "argv_b64".into(),
                    args.iter().map(|a| Value::from(b64(a))).collect(),
                );
            }
            LineOp::Ancestors(list) => {
                obj.insert("ancestors".into(), Value::Array(list.clone()));
            }
            LineOp::Deep(k, n, arrays) => {
                let (open, close) = if *arrays {
                    ("[", "]")
                } else {
                    ("{\"a\":", "}")
                };
                let marker = format!("@@deep{}@@", raw.len());
                raw.push((
                    format!("\"{marker}\""),
                    format!("{}1{}", open.repeat(*n as usize), close.repeat(*n as usize)),
                ));
                obj.insert((*k).into(), marker.into());
            }
        }
    }
    let mut line = serde_json::to_string(&obj).expect("serializes");
    for (marker, text) in raw {
        line = line.replace(&marker, &text);
    }
    let mut bytes = line.into_bytes();
    apply_bytes(&mut bytes, &case.text);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Imports one line; a line that imports must export and re-import to the same line.
fn import_round_trip(line: &str) -> Result<(), String> {
    let Ok(j) = serde_json::from_str::<EventJson>(line) else {
        return Ok(());
    };
    let mut procs = ImportedProcs::default();
    let first = procs.event(j.clone());
    // The same line again, through the interned processes.
    let again = procs.event(j);
    match (&first, &again) {
        (Ok(a), Ok(b)) if a.to_json_line() == b.to_json_line() => {}
        (Err(a), Err(b)) if a == b => {}
        _ => {
            return Err(format!(
                "importing a line twice differs: {first:?} / {again:?}"
            ))
        }
    }
    let Ok(ev) = first else {
        return Ok(());
    };
    LINES_IMPORTED.fetch_add(1, Ordering::Relaxed);
    evaluate(&mut eval_rules().engine(), &ev);
    let line1 = ev.to_json_line();
    let j1 = serde_json::from_str::<EventJson>(&line1)
        .map_err(|e| format!("the export of an imported line does not import: {e}\n{line1}"))?;
    let ev1 = ImportedProcs::default()
        .event(j1)
        .map_err(|e| format!("the export of an imported line is refused: {e}\n{line1}"))?;
    let line2 = ev1.to_json_line();
    if line1 != line2 {
        return Err(format!(
            "export → import → export is not stable:\n{line1}\n{line2}"
        ));
    }
    Ok(())
}

/// Found by `long_json_import`, fixed in ed3ceae (argv) and 407b1ab (exe, cgroup): import bounded
/// these by the length of their *text*, while their bytes come from the `_b64` key; export writes
/// non-UTF-8 bytes as lossy text, each bad byte one U+FFFD (3 bytes). So 3,000 non-UTF-8 bytes,
/// which import accepted, exported as ~9,000 bytes of text, and import refused the exported line
/// ("field `cgroup` is 9000 bytes long; at most 4096 are recorded").
#[test]
fn non_utf8_long_fields_export_imports_again() {
    let long = || Some(Str::new(vec![0xffu8; 3000]));
    let mut refused = Vec::new();
    for field in ["argv", "exe", "cgroup"] {
        let mut p = Process::from_event(60, T0 - 5, 1, Str::from("sh"), 0, 0);
        match field {
            "argv" => p.argv = long(),
            "exe" => p.exe = long(),
            _ => p.cgroup = long(),
        }
        let ev = Event {
            process: Some(Arc::new(p)),
            euid: Some(0),
            egid: Some(0),
            ..event(1, "/etc/passwd")
        };
        let line = ev.to_json_line();
        let j = serde_json::from_str::<EventJson>(&line).expect("the exported line parses");
        if let Err(e) = ImportedProcs::default().event(j) {
            refused.push(format!("{field}: {e}"));
        }
    }
    assert!(refused.is_empty(), "{refused:#?}");
}

fn check_line(case: LineCase) -> TestCaseResult {
    let line = build_line(&case);
    let l = line.clone();
    within("JSON-lines import", move || import_round_trip(&l))
        .map_err(|e| fail(format!("{e}\nline: {}", shown(&line))))
}

const JSON_SUITE_CASES: u32 = 1_000;

#[test]
fn json_import_survives_mutated_lines() {
    fuzz(
        "JSON import",
        JSON_SUITE_CASES,
        &LINES_IMPORTED,
        line_case(),
        check_line,
    );
}

#[test]
#[ignore = "long fuzz run: FUZZ_CASES=N cargo test --release --test it fuzz:: -- --ignored"]
fn long_json_import() {
    fuzz(
        "JSON import",
        long_cases(),
        &LINES_IMPORTED,
        line_case(),
        check_line,
    );
}

/// Export → import → export of events with arbitrary bytes where the kernel gives bytes (not
/// only what an import can make): the exported line must import and export the same way again.
#[derive(Clone, Debug)]
struct ByteEvent {
    comm: Vec<u8>,
    path: Vec<u8>,
    raw_path: Vec<u8>,
    exe: Option<Vec<u8>>,
    argv: Option<Vec<u8>>,
    cgroup: Option<Vec<u8>>,
    user: Option<Vec<u8>>,
    parent_exe: Option<Vec<u8>>,
}

fn bytes_of(max: usize) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => "[a-z/]{0,12}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..max),
    ]
    .boxed()
}

fn byte_event() -> BoxedStrategy<ByteEvent> {
    (
        bytes_of(15),
        bytes_of(64),
        bytes_of(64),
        proptest::option::of(bytes_of(64)),
        proptest::option::of(bytes_of(64)),
        proptest::option::of(bytes_of(64)),
        proptest::option::of(bytes_of(16)),
        proptest::option::of(bytes_of(64)),
    )
        .prop_map(
            |(comm, path, raw_path, exe, argv, cgroup, user, parent_exe)| ByteEvent {
                comm,
                path,
                raw_path,
                exe,
                argv,
                cgroup,
                user,
                parent_exe,
            },
        )
        .boxed()
}

fn export_round_trip(b: ByteEvent) -> Result<(), String> {
    let s = |v: &[u8]| Str::new(v.to_vec());
    let parent = b.parent_exe.as_ref().map(|x| {
        Arc::new(Process {
            exe: Some(s(x)),
            ..Process::from_event(50, T0 - 10, 1, Str::from("sh"), 0, 0)
        })
    });
    let has_process = b.exe.is_some() || b.argv.is_some() || b.cgroup.is_some() || parent.is_some();
    let process = has_process.then(|| {
        Arc::new(Process {
            exe: b.exe.as_deref().map(s),
            argv: b.argv.as_deref().map(s),
            cgroup: b.cgroup.as_deref().map(s),
            parent,
            ..Process::from_event(60, T0 - 5, 50, s(&b.comm), 0, 0)
        })
    });
    let ev = Event {
        comm: s(&b.comm),
        path: s(&b.path),
        raw_path: s(&b.raw_path),
        user: b.user.as_deref().map(s),
        euid: process.as_ref().map(|_| 0),
        egid: process.as_ref().map(|_| 0),
        process,
        ..event(1, "")
    };
    let line0 = ev.to_json_line();
    let j0 = serde_json::from_str::<EventJson>(&line0)
        .map_err(|e| format!("an exported line does not import: {e}\n{line0}"))?;
    let ev0 = ImportedProcs::default()
        .event(j0)
        .map_err(|e| format!("an exported line is refused: {e}\n{line0}"))?;
    import_round_trip(&ev0.to_json_line())
}

const EXPORT_SUITE_CASES: u32 = 500;

#[test]
fn exported_lines_of_any_bytes_import_again() {
    fuzz(
        "export of any bytes",
        EXPORT_SUITE_CASES,
        &LINES_IMPORTED,
        byte_event(),
        |b| export_round_trip(b).map_err(fail),
    );
}

#[test]
#[ignore = "long fuzz run: FUZZ_CASES=N cargo test --release --test it fuzz:: -- --ignored"]
fn long_exported_lines_of_any_bytes() {
    fuzz(
        "export of any bytes",
        long_cases(),
        &LINES_IMPORTED,
        byte_event(),
        |b| export_round_trip(b).map_err(fail),
    );
}

/// Found by `exported_lines_of_any_bytes_import_again`, fixed in efd0a10: export wrote a non-UTF-8
/// `user`, `cgroup`, `container_id` or parent exe with a `_b64` key that import rejected.
#[test]
fn non_utf8_lineage_export_imports_again() {
    let bad = || Some(Str::new(&b"x\xff"[..]));
    let parent = Arc::new(Process {
        exe: bad(),
        ..Process::from_event(50, T0 - 10, 1, Str::from("sh"), 0, 0)
    });
    let base = Process {
        parent: Some(parent.clone()),
        ..Process::from_event(60, T0 - 5, 50, Str::from("cat"), 0, 0)
    };
    let mut refused = Vec::new();
    for field in ["user", "cgroup", "container_id", "parent_exe"] {
        let mut p = base.clone();
        let mut user = Some(Str::from("root"));
        match field {
            "user" => user = bad(),
            "cgroup" => p.cgroup = bad(),
            "container_id" => p.container_id = bad(),
            _ => {}
        }
        if field != "parent_exe" {
            p.parent = None;
        }
        let ev = Event {
            process: Some(Arc::new(p)),
            user,
            euid: Some(0),
            egid: Some(0),
            ..event(1, "/etc/passwd")
        };
        if let Err(e) = import_round_trip(&ev.to_json_line()) {
            refused.push(format!("{field}: {e}"));
        }
    }
    assert!(refused.is_empty(), "{refused:#?}");
}
