//! Rules over file operations (#27), end to end: a store holding what `sed -i`, `mv`, `ln`, `rm`,
//! `chmod` and `truncate` leave is replayed with the shipped detections (the persistence rules
//! fire on the renames, the new rules on their operations), `rules check` lists each rule's
//! operations, and `rules sql` returns exactly `replay`'s alerts on DuckDB and Spark over the
//! Parquet export.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use open_forensics::bytes::Str;
use open_forensics::event::{Event, Op};
use open_forensics::store::{RotateConfig, Writer};

use crate::helpers::{bin, event, fixtures_dir, TempStore};
use crate::lifecycle_store::one_of_each;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const RENAME_NOREPLACE: u64 = 1;
const EXDEV: i64 = 18;

fn op(i: i64, o: Op, path: &str) -> Event {
    Event {
        op: o,
        flags: 0,
        ret: 0,
        ..event(i, path)
    }
}

fn moved(i: i64, o: Op, old: &str, new: &str) -> Event {
    Event {
        old_path: Some(Str::from(old)),
        ..op(i, o, new)
    }
}

/// The story, and the shipped rules each event must fire (and nothing else).
fn story() -> Vec<(Event, &'static [&'static str])> {
    vec![
        // sed -i: the target opened read-only (no alert), a temp file renamed over it.
        (event(100, "/root/.ssh/authorized_keys"), &[]),
        (
            moved(
                101,
                Op::Rename,
                "/root/.ssh/sedAb12Cd",
                "/root/.ssh/authorized_keys",
            ),
            &["authorized_keys_write"],
        ),
        (
            moved(102, Op::Rename, "/etc/sedQ1w2E3", "/etc/ld.so.preload"),
            &["ld_preload_tamper"],
        ),
        // mv into /etc/cron.d: one renameat2; from another mount it fails (EXDEV) and copies.
        (
            Event {
                flags: RENAME_NOREPLACE,
                ..moved(103, Op::Rename, "/etc/job.new", "/etc/cron.d/job")
            },
            &["cron_persistence"],
        ),
        (
            Event {
                flags: RENAME_NOREPLACE,
                ret: -EXDEV,
                ..moved(104, Op::Rename, "/tmp/x", "/etc/cron.d/job2")
            },
            &["cron_persistence"],
        ),
        (
            moved(105, Op::Link, "/tmp/x", "/etc/cron.d/job3"),
            &["cron_persistence"],
        ),
        (moved(106, Op::Rename, "/etc/cron.d/job", "/tmp/y"), &[]),
        (
            Event {
                length: Some(0),
                ..op(107, Op::Truncate, "/var/log/of-lab/app.log")
            },
            &["log_deleted_or_truncated"],
        ),
        (
            op(108, Op::Unlink, "/var/log/of-lab/gone.log"),
            &["log_deleted_or_truncated"],
        ),
        (
            moved(
                109,
                Op::Rename,
                "/var/log/of-lab/moved.log",
                "/tmp/moved.log",
            ),
            &["log_moved_away"],
        ),
        (
            Event {
                mode: 0o4755,
                ..op(110, Op::Chmod, "/tmp/of-lab/true-copy")
            },
            &["setuid_bit_set", "tmp_file_made_executable"],
        ),
        (
            Event {
                mode: 0o644,
                ..op(111, Op::Chmod, "/tmp/of-lab/data")
            },
            &[],
        ),
        (
            op(112, Op::Unlink, "/tmp/of-lab/home/.bash_history"),
            &["shell_history_tampered"],
        ),
        (
            moved(
                113,
                Op::Symlink,
                "/dev/null",
                "/tmp/of-lab/home/.zsh_history",
            ),
            &["shell_history_tampered"],
        ),
        (
            moved(
                114,
                Op::Rename,
                "/usr/local/bin/.tool.new",
                "/usr/local/bin/tool",
            ),
            &["system_binary_replaced"],
        ),
        (
            Event {
                flags: libc::O_WRONLY as u64,
                ..event(115, "/etc/cron.d/job4")
            },
            &["cron_persistence"],
        ),
    ]
}

pub(crate) fn of(store: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("--store").arg(store).args(args);
    c.stdin(std::process::Stdio::null());
    c
}

pub(crate) fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

pub(crate) fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// A store of the story, with lc-store's one event of each op around it.
fn recorded() -> TempStore {
    let s = TempStore::new();
    let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("writer");
    for mut e in one_of_each()
        .into_iter()
        .chain(story().into_iter().map(|(e, _)| e))
    {
        w.append(&mut e).expect("append");
    }
    w.close().expect("close");
    s
}

fn detections() -> String {
    fixtures_dir()
        .join("rules/detections.yaml")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn shipped_rules_fire_on_the_operations_of_the_story_on_replay() {
    let s = recorded();
    let alerts = lines(&ok(&mut of(
        &s.dir,
        &["replay", "--rules", &detections(), "--format", "jsonl"],
    )));
    // By event time: each event of the story has its own.
    let fired: BTreeSet<(i64, String)> = alerts
        .iter()
        .map(|a| {
            let ts = open_forensics::timespec::parse_ts(a["ts"].as_str().unwrap()).unwrap();
            (ts, a["rule"].as_str().unwrap().to_owned())
        })
        .collect();
    for (e, rules) in story() {
        let got: BTreeSet<&str> = fired
            .iter()
            .filter(|(ts, _)| *ts == e.ts_ns)
            .map(|(_, r)| r.as_str())
            .collect();
        let want: BTreeSet<&str> = rules.iter().copied().collect();
        assert_eq!(got, want, "{:?} {}", e.op, e.path.lossy());
    }
    let away = alerts
        .iter()
        .find(|a| a["rule"] == "log_moved_away")
        .expect("log_moved_away");
    assert_eq!(
        away["matched"], "/var/log/**",
        "matched falls back to old_path"
    );
}

#[test]
fn rules_check_lists_the_operations_of_each_rule() {
    let s = TempStore::new();
    let rows = lines(&ok(&mut of(
        &s.dir,
        &["rules", "check", &detections(), "--format", "jsonl"],
    )));
    let ops = |name: &str| {
        rows.iter()
            .find(|r| r["rule"] == name)
            .unwrap_or_else(|| panic!("{name}"))["ops"]
            .clone()
    };
    assert_eq!(ops("shadow_read"), json!(["open"]));
    assert_eq!(
        ops("cron_persistence"),
        json!(["open", "rename", "link", "symlink", "truncate"])
    );
    assert_eq!(
        ops("tmp_program_changes_files"),
        json!([
            "rename", "link", "symlink", "unlink", "rmdir", "mkdir", "chmod", "chown", "truncate"
        ])
    );
    let bad = s.path("bad.yaml");
    std::fs::write(
        &bad,
        "rules:\n  - name: r\n    description: d\n    severity: low\n    path: /x\n    op: [open, move]\n",
    )
    .unwrap();
    let out = of(&s.dir, &["rules", "check", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:6:16: rules[0].op[1]: unknown op \"move\", expected one of open, rename, link"),
        "{err}"
    );
}

/// The alert as both sides see it: what identifies the event, the rule and `matched`.
pub(crate) fn key(a: &Value) -> String {
    let ts = match a.get("ts_ns") {
        Some(v) => v.as_i64().expect("ts_ns"),
        None => open_forensics::timespec::parse_ts(a["ts"].as_str().expect("ts")).expect("ts"),
    };
    json!([
        a["rule"],
        ts,
        a["pid"],
        a["path"],
        a["path_b64"],
        a["raw_path"],
        a["syscall"],
        a["flags"],
        a["ret"],
        a["matched"],
        a["severity"]
    ])
    .to_string()
}

/// What `rules sql RULES --dialect ENGINE` finds on that engine over each Parquet export of
/// `jobs` (name, directory): one list of alert lines per job. `None` where the engine is not
/// installed (`test`, the test that then skips, is named).
pub(crate) fn rules_sql_alerts<N: AsRef<str>>(
    s: &TempStore,
    rules: &str,
    engine: &str,
    jobs: &[(N, PathBuf)],
    test: &str,
) -> Option<Vec<Vec<Value>>> {
    if !crate::fleet::engine_available(engine, test) {
        return None;
    }
    let sql = s.path(&format!("q.{engine}.sql"));
    let text = ok(&mut of(
        &s.dir,
        &["rules", "sql", rules, "--dialect", engine],
    ));
    std::fs::write(&sql, text).unwrap();
    let outs: Vec<PathBuf> = jobs
        .iter()
        .map(|(n, _)| s.path(&format!("{engine}.{}.jsonl", n.as_ref())))
        .collect();
    let manifest = s.path(&format!("{engine}.json"));
    let manifest_jobs: Vec<_> = jobs
        .iter()
        .zip(&outs)
        .map(|((n, pq), out)| json!({"name": n.as_ref(), "parquet": pq, "sql": sql, "out": out}))
        .collect();
    std::fs::write(&manifest, json!({ "jobs": manifest_jobs }).to_string()).unwrap();
    ok(Command::new("python3")
        .arg(format!("{ROOT}/tests/fleet/run_sql.py"))
        .arg(engine)
        .arg(&manifest));
    Some(
        outs.iter()
            .map(|o| lines(&std::fs::read_to_string(o).unwrap()))
            .collect(),
    )
}

#[test]
fn rules_sql_over_operations_equals_replay() {
    let s = recorded();
    let rules = detections();
    let mut want: Vec<String> = lines(&ok(&mut of(
        &s.dir,
        &["replay", "--rules", &rules, "--format", "jsonl"],
    )))
    .iter()
    .map(key)
    .collect();
    want.sort();
    assert!(want.len() >= 15, "{want:?}");
    let parquet = s.path("parquet");
    ok(of(&s.dir, &["export", "--format", "parquet", "--out"]).arg(&parquet));
    let jobs = [("lifecycle", parquet)];
    for engine in ["duckdb", "spark"] {
        let test = "rules_sql_over_operations_equals_replay";
        let Some(found) = rules_sql_alerts(&s, &rules, engine, &jobs, test) else {
            continue;
        };
        let mut got: Vec<String> = found[0].iter().map(key).collect();
        got.sort();
        assert_eq!(got, want, "{engine}");
    }
}
