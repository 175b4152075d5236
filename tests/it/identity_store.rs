//! Identities in the store (schema 4): an open's file, root and alias, an image's exec time,
//! root, mount namespace, executable identity and verdict — written, read back, printed by every
//! output, and carried through export → import; segments written before them read as null.

use std::path::Path;
use std::sync::Arc;

use open_forensics::bytes::Str;
use open_forensics::event::Event;
use open_forensics::file_id::FileId;
use open_forensics::process::{ProcSource, Process};
use open_forensics::store::{RotateConfig, Writer};
use serde_json::{json, Value};

use crate::helpers::{
    assert_import_refuses, event, fixtures_dir, read_store, scenarios_before, TempStore,
};

const START: i64 = 1_764_000_000_000_000_000;
const MNTNS: u32 = 4_026_531_841;

/// pid 100: a shell (`/usr/bin/bash`, the host's own file) that execs `cat` (a file that only
/// bears its name, chrooted in `/srv/jail`), started by init. Every identity field is set.
fn images() -> (Arc<Process>, Arc<Process>) {
    let init = Arc::new(Process {
        exe: Some(Str::from("/usr/lib/systemd/systemd")),
        source: ProcSource::Procfs,
        mntns: Some(MNTNS),
        ..Process::from_event(1, START - 9_000_000_000, 0, Str::from("systemd"), 0, 0)
    });
    let bash = Process {
        exec_ns: Some(START - 2_000_000),
        parent: Some(init),
        source: ProcSource::Exec,
        exe: Some(Str::from("/usr/bin/bash")),
        argv: Some(Str::from("bash\0-c\0cat /etc/shadow\0")),
        mntns: Some(MNTNS),
        exe_id: Some(FileId::new(8, 1, 1111)),
        exe_verified: Some(true),
        ..Process::from_event(100, START - 3_000_000, 1, Str::from("bash"), 0, 0)
    };
    let cat = Process {
        exec_ns: Some(START - 1_000_000),
        exe: Some(Str::from("/usr/bin/cat")),
        argv: Some(Str::from("cat\0/etc/shadow\0")),
        comm: Str::from("cat"),
        root: Some(Str::from("/srv/jail")),
        exe_id: Some(FileId::new(259, 300, 2222)),
        exe_verified: Some(false),
        ..bash.clone()
    };
    (Arc::new(bash), Arc::new(cat))
}

/// bash reads its rc file; cat, chrooted, reads the jail's hard link of `/etc/shadow` and fails
/// to open a missing file.
fn events() -> Vec<Event> {
    let (bash, cat) = images();
    let lineage = |e: Event, p: &Arc<Process>| Event {
        pid: 100,
        tid: 100,
        ppid: 1,
        uid: 0,
        gid: 0,
        euid: Some(0),
        egid: Some(0),
        user: Some(Str::from("root")),
        comm: p.comm.clone(),
        process: Some(p.clone()),
        ..e
    };
    vec![
        lineage(
            Event {
                file: Some(FileId::new(8, 1, 3333)),
                ..event(0, "/etc/bash.bashrc")
            },
            &bash,
        ),
        lineage(
            Event {
                raw_path: Str::from("/etc/shadow"),
                root: Some(Str::from("/srv/jail")),
                file: Some(FileId::new(8, 1, 4444)),
                alias_of: Some(Str::from("/etc/shadow")),
                ..event(1, "/srv/jail/etc/shadow")
            },
            &cat,
        ),
        lineage(
            Event {
                ret: -2,
                root: Some(Str::from("/srv/jail")),
                ..event(2, "/srv/jail/nope")
            },
            &cat,
        ),
    ]
}

/// A store holding [`events`], written by the writer itself (as `record` does).
fn recorded() -> TempStore {
    let s = TempStore::new();
    let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("writer");
    for e in events() {
        w.append(&mut e.clone()).expect("append");
    }
    w.close().expect("close");
    s
}

fn json_lines(text: &str) -> Vec<serde_json::Map<String, Value>> {
    text.lines()
        .map(|l| match serde_json::from_str(l) {
            Ok(Value::Object(o)) => o,
            other => panic!("not a JSON object: {l}: {other:?}"),
        })
        .collect()
}

/// The store an export of `from` imports into.
fn reimported(from: &TempStore) -> (TempStore, String) {
    let exported = from.ok(&["export"]);
    let file = from.path("export.jsonl");
    std::fs::write(&file, &exported).expect("write export");
    let to = TempStore::new();
    to.ok(&["import", file.to_str().expect("utf-8 path")]);
    (to, exported)
}

#[test]
fn identities_round_trip_through_the_writer_and_reader() {
    let s = recorded();
    let back = read_store(&s.dir);
    let want = events();
    assert_eq!(back.len(), want.len());
    for (b, w) in back.iter().zip(&want) {
        assert_eq!(b.file, w.file, "{}", w.path.lossy());
        assert_eq!(
            b.root.as_ref().map(Str::as_bytes),
            w.root.as_ref().map(Str::as_bytes)
        );
        assert_eq!(
            b.alias_of.as_ref().map(Str::as_bytes),
            w.alias_of.as_ref().map(Str::as_bytes)
        );
        let (bp, wp) = (b.process.as_deref().unwrap(), w.process.as_deref().unwrap());
        assert_eq!(
            (bp.exec_ns, bp.mntns, bp.exe_id, bp.exe_verified),
            (wp.exec_ns, wp.mntns, wp.exe_id, wp.exe_verified)
        );
        assert_eq!(
            bp.root.as_ref().map(Str::as_bytes),
            wp.root.as_ref().map(Str::as_bytes)
        );
        // Everything else too: the line is every field.
        assert_eq!(b.to_json_line(), w.to_json_line());
    }
}

/// Issue #25 item 2: `root` was documented but never written — not by export, `query --format
/// jsonl`, alerts or `proc`, not even for a chrooted process — and export → import lost it and
/// `mntns`.
#[test]
fn root_was_never_written() {
    let s = recorded();
    let shadow = |lines: &[serde_json::Map<String, Value>]| {
        lines
            .iter()
            .find(|o| o["path"] == "/srv/jail/etc/shadow")
            .cloned()
            .expect("the chrooted read")
    };
    let want = json!({
        "root": "/srv/jail", "file": "8:1:4444", "alias_of": "/etc/shadow",
        "exec_ts": "2025-11-24T15:59:59.999000000Z", "proc_root": "/srv/jail", "mntns": MNTNS,
        "exe_id": "259:300:2222", "exe_verified": false,
    });
    let check = |what: &str, o: &serde_json::Map<String, Value>| {
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(o.get(k), Some(v), "{what}: key {k} in {o:?}");
        }
    };
    check("export", &shadow(&json_lines(&s.ok(&["export"]))));
    check(
        "query",
        &shadow(&json_lines(&s.ok(&["query", "--format", "jsonl"]))),
    );
    let rules = s.path("r.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: jail\n    description: d\n    severity: low\n    path: /srv/jail/etc/shadow\n",
    )
    .unwrap();
    let alerts = json_lines(&s.ok(&[
        "replay",
        "--rules",
        rules.to_str().unwrap(),
        "--format",
        "jsonl",
    ]));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    check("alert", &alerts[0]);
    // The identity keys follow every lineage key, and the alert's own keys end the line.
    let keys: Vec<&str> = alerts[0].keys().map(String::as_str).collect();
    let user = keys.iter().position(|k| *k == "user").unwrap();
    assert_eq!(
        &keys[user..],
        [
            "user",
            "root",
            "file",
            "alias_of",
            "exec_ts",
            "proc_root",
            "mntns",
            "exe_id",
            "exe_verified",
            "hostname",
            "description",
            "tags"
        ]
    );
    // proc: the image's root, mount namespace and executable identity; its opens' roots.
    let proc = json_lines(&s.ok(&["proc", "100", "--format", "jsonl"]));
    let cat = proc
        .iter()
        .find(|o| o["kind"] == "image" && o["exe"] == "/usr/bin/cat")
        .expect("cat's image");
    assert_eq!(
        (
            &cat["root"],
            &cat["mntns"],
            &cat["exe_id"],
            &cat["exe_verified"]
        ),
        (
            &json!("/srv/jail"),
            &json!(MNTNS),
            &json!("259:300:2222"),
            &json!(false)
        )
    );
    let table = s.ok(&["proc", "100", "--format", "csv"]);
    assert!(table.contains("/srv/jail"), "{table}");
    // export → import → export: the same lines, so nothing was lost on the way.
    let (again, first) = reimported(&s);
    assert_eq!(again.ok(&["export"]), first);
    check(
        "after import",
        &shadow(&json_lines(&again.ok(&["query", "--format", "jsonl"]))),
    );
}

/// Issue #25 item 5: after export → import a process kept only its first image, so `proc PID`
/// and image joins named the wrong program (cat's opens showed `image_exe=/usr/bin/bash`).
#[test]
fn import_collapsed_exec_images() {
    let (s, _) = reimported(&recorded());
    let proc = json_lines(&s.ok(&["proc", "100", "--format", "jsonl"]));
    let exes: Vec<&Value> = proc
        .iter()
        .filter(|o| o["kind"] == "image")
        .map(|o| &o["exe"])
        .collect();
    assert_eq!(exes, [&json!("/usr/bin/bash"), &json!("/usr/bin/cat")]);
    let joined = json_lines(&s.ok(&[
        "query",
        "--format",
        "jsonl",
        "--sql",
        "SELECT e.path, p.exe AS image_exe FROM events e JOIN processes p ON p.image = e.image ORDER BY e.seq",
    ]));
    let got: Vec<(&Value, &Value)> = joined
        .iter()
        .map(|o| (&o["path"], &o["image_exe"]))
        .collect();
    assert_eq!(
        got,
        [
            (&json!("/etc/bash.bashrc"), &json!("/usr/bin/bash")),
            (&json!("/srv/jail/etc/shadow"), &json!("/usr/bin/cat")),
            (&json!("/srv/jail/nope"), &json!("/usr/bin/cat")),
        ]
    );
}

#[test]
fn sql_and_parquet_have_the_identity_columns() {
    let s = recorded();
    let rows = json_lines(&s.ok(&[
        "query",
        "--format",
        "jsonl",
        "--sql",
        "SELECT root, file, alias_of, mntns, exe_id, exe_verified FROM events ORDER BY seq",
    ]));
    assert_eq!(
        Value::Array(rows.into_iter().map(Value::Object).collect()),
        json!([
            {"root": null, "file": "8:1:3333", "alias_of": null, "mntns": MNTNS,
             "exe_id": "8:1:1111", "exe_verified": 1},
            {"root": "/srv/jail", "file": "8:1:4444", "alias_of": "/etc/shadow", "mntns": MNTNS,
             "exe_id": "259:300:2222", "exe_verified": 0},
            {"root": "/srv/jail", "file": null, "alias_of": null, "mntns": MNTNS,
             "exe_id": "259:300:2222", "exe_verified": 0},
        ])
    );
    let procs = json_lines(&s.ok(&[
        "query",
        "--format",
        "jsonl",
        "--sql",
        "SELECT exe, root, exe_id, exe_verified FROM processes WHERE pid = 100 ORDER BY exec",
    ]));
    assert_eq!(
        Value::Array(procs.into_iter().map(Value::Object).collect()),
        json!([
            {"exe": "/usr/bin/bash", "root": null, "exe_id": "8:1:1111", "exe_verified": 1},
            {"exe": "/usr/bin/cat", "root": "/srv/jail", "exe_id": "259:300:2222", "exe_verified": 0},
        ])
    );

    let out = s.path("parquet");
    s.ok(&[
        "export",
        "--format",
        "parquet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let files = crate::fleet::parquet_files(&out);
    let events = files
        .iter()
        .find(|f| f.starts_with("events/"))
        .expect("events file");
    let (batches, kv) = crate::fleet::read_parquet(&out.join(events));
    assert!(
        kv.contains(&(
            "open_forensics.schema_version".into(),
            open_forensics::columns::PARQUET_SCHEMA_VERSION.to_string()
        )),
        "{kv:?}"
    );
    let schema = batches[0].schema();
    for c in [
        "root",
        "file",
        "alias_of",
        "proc_root",
        "mntns",
        "exe_id",
        "exe_verified",
    ] {
        assert!(
            schema.field_with_name(c).is_ok(),
            "events.{c} missing: {schema:?}"
        );
    }
    use arrow_array::cast::AsArray;
    let col = |name: &str| batches[0].column_by_name(name).unwrap().clone();
    let text = |name: &str| col(name).as_string::<i32>().value(1).to_owned();
    assert_eq!(
        ["root", "file", "alias_of", "proc_root", "exe_id"].map(text),
        [
            "/srv/jail",
            "8:1:4444",
            "/etc/shadow",
            "/srv/jail",
            "259:300:2222"
        ]
    );
    assert!(!col("exe_verified").as_boolean().value(1));
    let procs = files.iter().find(|f| f.starts_with("processes/")).unwrap();
    let (batches, _) = crate::fleet::read_parquet(&out.join(procs));
    let schema = batches[0].schema();
    for c in ["exe_id", "exe_verified"] {
        assert!(schema.field_with_name(c).is_ok(), "processes.{c} missing");
    }
}

#[test]
fn import_rejects_malformed_identities_naming_line_and_field() {
    let line = events()[1].to_json_line();
    for (from, to, says) in [
        ("\"file\":\"8:1:4444\"", "\"file\":\"8:1\"", "field `file`"),
        (
            "\"exe_id\":\"259:300:2222\"",
            "\"exe_id\":\"x\"",
            "field `exe_id`",
        ),
        (
            "\"exe_id\":\"259:300:2222\"",
            "\"exe_id\":null",
            "`exe_verified` without `exe_id`",
        ),
        (
            "\"exec_ts\":\"2025",
            "\"exec_ts\":\"later",
            "field `exec_ts`",
        ),
    ] {
        assert!(line.contains(from), "{line}");
        assert_import_refuses(&events()[0].to_json_line(), &line.replace(from, to), says);
    }
}

/// The fixture recorded to show identities (`evasion`, schema 4) keeps what was recorded: opened
/// files' and executables' identities, and the recorder's verdict on each executable.
#[test]
fn the_schema_4_fixture_reads_with_its_identities() {
    let scenario = "evasion";
    let events = read_store(&fixtures_dir().join("segments").join(scenario));
    assert!(events.iter().any(|e| e.file.is_some()), "{scenario}");
    assert!(events.iter().any(|e| e.alias_of.is_some()), "{scenario}");
    let verdicts: Vec<Option<bool>> = events
        .iter()
        .filter_map(|e| e.process.as_ref())
        .map(|p| p.exe_verified)
        .collect();
    assert!(verdicts.contains(&Some(true)), "{scenario}");
    assert!(verdicts.contains(&Some(false)), "{scenario}");
}

/// Segments of every earlier schema read with the new fields null, and their lines gain no key
/// where they had no lineage.
#[test]
fn old_fixture_segments_read_with_identities_null() {
    for scenario in scenarios_before(4) {
        let dir = fixtures_dir().join("segments").join(&scenario);
        let events = read_store(&dir);
        assert!(!events.is_empty(), "{scenario}");
        for e in &events {
            assert_eq!(
                (&e.file, &e.root, &e.alias_of),
                (&None, &None, &None),
                "{scenario}"
            );
            if let Some(p) = &e.process {
                assert_eq!((p.exe_id, p.exe_verified), (None, None), "{scenario}");
            }
        }
        let out = crate::helpers::cmd_at(&dir, &["export"]).output().unwrap();
        assert!(out.status.success(), "{scenario}");
        for o in json_lines(std::str::from_utf8(&out.stdout).unwrap()) {
            if o.contains_key("proc_start") {
                assert_eq!((&o["file"], &o["exe_id"]), (&Value::Null, &Value::Null));
            } else {
                assert!(!o.contains_key("file") && !o.contains_key("root"), "{o:?}");
            }
        }
    }
    assert!(Path::new(&fixtures_dir().join("segments/lineage")).exists());
}
