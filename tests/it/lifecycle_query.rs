//! Asking about file operations (issue #27): `events` in SQL and Parquet carry `op`, `old_path`,
//! `new_uid`, `new_gid` and `length`; `query --op` and `--path` (either name of a rename) find
//! them; the named queries answer "who deleted this log" and "who made this setuid".

use std::sync::Arc;

use serde_json::{json, Value};

use open_forensics::bytes::Str;
use open_forensics::event::{Event, Op};
use open_forensics::process::Process;
use open_forensics::store::{RotateConfig, Writer};

use crate::helpers::{scenarios_before, TempStore};
use crate::lifecycle_store::one_of_each;

/// The program that does each operation, as the shell tools do them.
fn exe_of(op: Op) -> &'static str {
    match op {
        Op::Open => "/usr/bin/cat",
        Op::Rename => "/usr/bin/sed",
        Op::Link | Op::Symlink => "/usr/bin/ln",
        Op::Unlink | Op::Rmdir => "/usr/bin/rm",
        Op::Mkdir => "/usr/bin/mkdir",
        Op::Chmod => "/usr/bin/chmod",
        Op::Chown => "/usr/bin/chown",
        Op::Truncate => "/usr/bin/truncate",
        Op::Exec => "/usr/bin/env",
    }
}

/// `one_of_each` with lineage (each by its own tool, run by mallory), written as `record`
/// writes (sealed on close).
fn lifecycle_store() -> TempStore {
    let s = TempStore::new();
    let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("writer");
    for (i, e) in one_of_each().into_iter().enumerate() {
        let pid = 2000 + i as u32;
        let exe = exe_of(e.op);
        let p = Arc::new(Process {
            exe: Some(Str::from(exe)),
            argv: Some(Str::new(
                format!("{exe}\0{}\0", e.path.lossy()).into_bytes(),
            )),
            auid: Some(1001),
            ..Process::from_event(pid, e.ts_ns - 1_000, 1, Str::from("bash"), 1001, 1001)
        });
        let mut e = Event {
            pid,
            tid: pid,
            uid: 1001,
            gid: 1001,
            comm: Str::from(exe.rsplit('/').next().unwrap()),
            user: Some(Str::from("mallory")),
            process: Some(p),
            ..e
        };
        w.append(&mut e).expect("append");
    }
    w.close().expect("close");
    s
}

fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// CSV rows of `query` with the given filters, as (op, path, old_path).
fn listed(s: &TempStore, filters: &[&str]) -> Vec<(String, String, String)> {
    let mut args = vec!["query", "--format", "csv"];
    args.extend_from_slice(filters);
    let out = s.ok(&args);
    let mut lines = out.lines().map(csv_fields);
    let header = lines.next().expect("header");
    let at = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (op, path, old) = (at("op"), at("path"), at("old_path"));
    lines
        .map(|f| (f[op].clone(), f[path].clone(), f[old].clone()))
        .collect()
}

/// The fields of one CSV line (quoted fields may hold commas and doubled quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

#[test]
fn sql_events_carry_each_operations_fields_and_opens_read_open_with_nulls() {
    let s = lifecycle_store();
    let rows = jsonl(&s.ok(&[
        "query",
        "--sql",
        "SELECT op, path, old_path, new_uid, new_gid, length, mode, access, result \
         FROM events ORDER BY seq",
        "--format",
        "jsonl",
    ]));
    let want = [
        json!([
            "open",
            "/etc/passwd",
            null,
            null,
            null,
            null,
            0,
            "read,cloexec",
            "success"
        ]),
        json!([
            "rename",
            "/etc/passwd",
            "/etc/sedAb12Cd",
            null,
            null,
            null,
            0,
            "write,create",
            "success"
        ]),
        json!([
            "rename",
            "/etc/cron.d/job",
            "/tmp/\u{FFFD}x",
            null,
            null,
            null,
            0,
            "write,create",
            "success"
        ]),
        json!([
            "link",
            "/tmp/t",
            "/usr/bin/true",
            null,
            null,
            null,
            0,
            "write,create",
            "success"
        ]),
        json!([
            "symlink",
            "/tmp/ln",
            "../\u{FFFD}/target",
            null,
            null,
            null,
            0,
            "write,create",
            "success"
        ]),
        json!([
            "unlink",
            "/var/log/auth.log",
            null,
            null,
            null,
            null,
            0,
            "",
            "success"
        ]),
        json!([
            "rmdir",
            "/var/log",
            null,
            null,
            null,
            null,
            0,
            "",
            "ENOTEMPTY"
        ]),
        json!([
            "mkdir",
            "/tmp/a",
            null,
            null,
            null,
            null,
            0o755,
            "create,directory",
            "success"
        ]),
        json!(["chmod", "/tmp/sh", null, null, null, null, 0o4755, "", "success"]),
        json!(["chown", "/tmp/sh", null, 0, null, null, 0, "", "success"]),
        json!([
            "chown",
            "/tmp/sh",
            null,
            null,
            u32::MAX - 1,
            null,
            0,
            "",
            "success"
        ]),
        json!([
            "truncate",
            "/root/.bash_history",
            null,
            null,
            null,
            0,
            0,
            "write,truncate",
            "success"
        ]),
        json!([
            "truncate",
            "/tmp/x",
            null,
            null,
            null,
            i64::MIN,
            0,
            "write,truncate",
            "EINVAL"
        ]),
    ];
    let got: Vec<Value> = rows
        .iter()
        .map(|r| {
            let cols = [
                "op", "path", "old_path", "new_uid", "new_gid", "length", "mode", "access",
                "result",
            ];
            Value::Array(cols.iter().map(|c| r[*c].clone()).collect())
        })
        .collect();
    assert_eq!(got, want);
}

/// Segments recorded before operations were (schema 4 and older) hold only opens: every fixture
/// scenario reads `op = 'open'` with the operation columns NULL.
#[test]
fn old_segments_read_as_opens_in_sql() {
    for scenario in scenarios_before(5) {
        let s = crate::history::fixture_copy(&scenario);
        let out = s.ok(&[
            "query",
            "--sql",
            "SELECT count(*) AS n, sum(op = 'open' AND old_path IS NULL AND new_uid IS NULL \
             AND new_gid IS NULL AND length IS NULL) AS opens FROM events",
            "--format",
            "jsonl",
        ]);
        let r = &jsonl(&out)[0];
        assert!(r["n"].as_i64().unwrap() > 0, "{scenario}");
        assert_eq!(r["n"], r["opens"], "{scenario}: {out}");
    }
}

#[test]
fn query_op_keeps_the_named_operations_and_rejects_unknown_ones() {
    let s = lifecycle_store();
    assert_eq!(listed(&s, &[]).len(), 13, "every operation by default");
    let ops = |f: &[&str]| -> Vec<String> { listed(&s, f).into_iter().map(|r| r.0).collect() };
    assert_eq!(ops(&["--op", "chmod,chown"]), ["chmod", "chown", "chown"]);
    assert_eq!(
        ops(&["--op", "link", "--op", "symlink"]),
        ["link", "symlink"]
    );
    assert_eq!(ops(&["--op", "open"]), ["open"]);

    let out = s.run(&["query", "--op", "delete"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--op") && err.contains("\"delete\"") && err.contains("unlink, rmdir"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// `sed -i /etc/passwd` reads it, then renames a temp file over it: `--path /etc/passwd` shows
/// both, and the temp name finds the rename too (by its old name); `ln /usr/bin/true /tmp/t`
/// is found by the file linked.
#[test]
fn query_path_shows_the_rename_that_replaced_the_file() {
    let s = lifecycle_store();
    assert_eq!(
        listed(&s, &["--path", "/etc/passwd"]),
        [
            ("open".into(), "/etc/passwd".into(), "".into()),
            (
                "rename".into(),
                "/etc/passwd".into(),
                "/etc/sedAb12Cd".into()
            ),
        ]
    );
    assert_eq!(
        listed(&s, &["--path", "/etc/sed*"]),
        [(
            "rename".into(),
            "/etc/passwd".into(),
            "/etc/sedAb12Cd".into()
        )]
    );
    assert_eq!(
        listed(&s, &["--path", "/usr/bin/true", "--op", "link"]),
        [("link".into(), "/tmp/t".into(), "/usr/bin/true".into())]
    );
    // Other filters hold on either name: the rename by sed only, not cat's open.
    assert_eq!(
        listed(&s, &["--path", "/etc/passwd", "--exe", "/usr/bin/sed"]).len(),
        1
    );
}

/// `--failed` is any event that returned an error: an open's or an operation's.
#[test]
fn query_failed_covers_operations() {
    let s = lifecycle_store();
    let failed: Vec<String> = listed(&s, &["--failed"]).into_iter().map(|r| r.0).collect();
    assert_eq!(failed, ["rmdir", "truncate"]);
}

/// The named queries that answer #27's questions directly; their answers over the lifecycle
/// store are golden (fixtures/golden/lifecycle_sql.jsonl).
#[test]
fn named_queries_answer_who_deleted_the_log_and_who_made_it_setuid() {
    let s = lifecycle_store();
    let mut all = String::new();
    for name in [
        "file_changes",
        "log_deletions",
        "setuid_changes",
        "sensitive_timeline",
    ] {
        let out = s.ok(&["query", "--sql", name, "--format", "jsonl"]);
        all.push_str(&format!("## {name}\n{out}"));
    }
    let deleted = jsonl(&s.ok(&["query", "--sql", "log_deletions", "--format", "jsonl"]));
    let who: Vec<(&str, &str, &str)> = deleted
        .iter()
        .map(|r| {
            (
                r["op"].as_str().unwrap(),
                r["path"].as_str().unwrap(),
                r["exe"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        who,
        [
            ("truncate", "/root/.bash_history", "/usr/bin/truncate"),
            ("rmdir", "/var/log", "/usr/bin/rm"),
            ("unlink", "/var/log/auth.log", "/usr/bin/rm"),
        ]
    );
    let setuid = jsonl(&s.ok(&["query", "--sql", "setuid_changes", "--format", "jsonl"]));
    assert_eq!(setuid.len(), 1);
    assert_eq!(
        (
            &setuid[0]["path"],
            &setuid[0]["mode"],
            &setuid[0]["user"],
            &setuid[0]["auid"]
        ),
        (
            &json!("/tmp/sh"),
            &json!("4755"),
            &json!("mallory"),
            &json!(1001)
        )
    );
    let golden = crate::helpers::fixtures_dir().join("golden/lifecycle_sql.jsonl");
    if std::env::var("OPEN_FORENSICS_BLESS").as_deref() == Ok("1") {
        std::fs::write(&golden, &all).expect("bless");
        return;
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (OPEN_FORENSICS_BLESS=1 creates it)",
            golden.display()
        )
    });
    assert_eq!(all, want, "{} differs", golden.display());
}

/// Parquet schema 3 (and every later one: 4 appended `cwd`) holds the operation columns, and
/// DuckDB reads them (as a fleet would).
#[test]
fn parquet_schema_3_holds_operations_and_duckdb_reads_them() {
    let test = "lifecycle_query::parquet_schema_3_holds_operations_and_duckdb_reads_them";
    let s = lifecycle_store();
    let out = s.path("pq");
    let out_s = out.to_str().expect("utf-8");
    s.ok(&["export", "--format", "parquet", "--out", out_s]);
    let files = crate::fleet::parquet_files(&out);
    let events = files
        .iter()
        .find(|f| f.starts_with("events/"))
        .expect("events");
    let (_, kv) = crate::fleet::read_parquet(&out.join(events));
    assert!(
        kv.contains(&(
            "open_forensics.schema_version".into(),
            open_forensics::columns::PARQUET_SCHEMA_VERSION.to_string()
        )),
        "{kv:?}"
    );
    if !crate::fleet::engine_available("duckdb", test) {
        return;
    }
    let script = format!(
        "import duckdb, json\n\
         rows = duckdb.sql(\"SELECT op, path, old_path, old_path_b64, new_uid, new_gid, length, mode \
         FROM read_parquet('{out_s}/events/**/*.parquet', hive_partitioning = true) ORDER BY seq\").fetchall()\n\
         print(json.dumps(rows))\n"
    );
    let py = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&py.stdout).expect("json");
    assert_eq!(rows.len(), 13);
    assert_eq!(
        rows[0],
        json!(["open", "/etc/passwd", null, null, null, null, null, 0])
    );
    assert_eq!(
        rows[2],
        json!([
            "rename",
            "/etc/cron.d/job",
            "/tmp/\u{FFFD}x",
            "L3RtcC//eA==",
            null,
            null,
            null,
            0
        ])
    );
    assert_eq!(
        rows[8],
        json!(["chmod", "/tmp/sh", null, null, null, null, null, 0o4755])
    );
    assert_eq!(
        rows[9],
        json!(["chown", "/tmp/sh", null, null, 0, null, null, 0])
    );
    assert_eq!(
        rows[12],
        json!(["truncate", "/tmp/x", null, null, null, null, i64::MIN, 0])
    );
    // An operation by its op, as a fleet asks: who removed anything under /var/log.
    let who = format!(
        "import duckdb\n\
         print(duckdb.sql(\"SELECT string_agg(op || ' ' || path || ' ' || exe, ';' ORDER BY seq) \
         FROM read_parquet('{out_s}/events/**/*.parquet') WHERE op IN ('unlink', 'rmdir') \
         AND path LIKE '/var/log%'\").fetchall()[0][0])\n"
    );
    let py = std::process::Command::new("python3")
        .args(["-c", &who])
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&py.stdout).trim(),
        "unlink /var/log/auth.log /usr/bin/rm;rmdir /var/log /usr/bin/rm",
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
}
