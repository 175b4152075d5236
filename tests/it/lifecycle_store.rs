//! File operations in the store (schema 5, issue #27): every op with its old path and arguments
//! is written, read back, witnessed and chained like an open; segments written before read as
//! opens only.

use std::path::Path;

use open_forensics::bytes::Str;
use open_forensics::event::{Event, Op};
use open_forensics::store::{RotateConfig, Writer};
use serde_json::Value;

use crate::helpers::{
    assert_import_refuses, event, fixtures_dir, read_store, scenarios_before, TempStore,
};
use crate::tamper_forge::Forged;

const RENAME_NOREPLACE: u64 = 1;
const AT_REMOVEDIR: u64 = 0x200;
const AT_SYMLINK_FOLLOW: u64 = 0x400;

/// One event of each op, as `sed -i`, `mv`, `ln`, `rm`, `chmod u+s`, `chown` and `: >` leave
/// them; the symlink's target and one old name are not UTF-8.
pub fn one_of_each() -> Vec<Event> {
    let op = |i, op, path: &str| Event {
        op,
        ret: 0,
        flags: 0,
        ..event(i, path)
    };
    vec![
        event(0, "/etc/passwd"),
        Event {
            old_path: Some(Str::from("/etc/sedAb12Cd")),
            ..op(1, Op::Rename, "/etc/passwd")
        },
        Event {
            old_path: Some(Str::new(&b"/tmp/\xffx"[..])),
            flags: RENAME_NOREPLACE,
            ..op(2, Op::Rename, "/etc/cron.d/job")
        },
        Event {
            old_path: Some(Str::from("/usr/bin/true")),
            flags: AT_SYMLINK_FOLLOW,
            ..op(3, Op::Link, "/tmp/t")
        },
        Event {
            old_path: Some(Str::new(&b"../\xfe/target"[..])),
            dirfd: None,
            ..op(4, Op::Symlink, "/tmp/ln")
        },
        op(5, Op::Unlink, "/var/log/auth.log"),
        Event {
            flags: AT_REMOVEDIR,
            ret: -39,
            ..op(6, Op::Rmdir, "/var/log")
        },
        Event {
            mode: 0o755,
            ..op(7, Op::Mkdir, "/tmp/a")
        },
        Event {
            mode: 0o4755,
            ..op(8, Op::Chmod, "/tmp/sh")
        },
        Event {
            new_uid: Some(0),
            new_gid: None,
            ..op(9, Op::Chown, "/tmp/sh")
        },
        Event {
            new_uid: None,
            new_gid: Some(u32::MAX - 1),
            ..op(10, Op::Chown, "/tmp/sh")
        },
        Event {
            length: Some(0),
            ..op(11, Op::Truncate, "/root/.bash_history")
        },
        Event {
            length: Some(i64::MIN),
            ret: -22,
            dirfd: None,
            ..op(12, Op::Truncate, "/tmp/x")
        },
    ]
}

/// What an event says, without the keys its producer gave its strings.
pub type Facts = (
    Op,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<u32>,
    Option<u32>,
    Option<i64>,
    String,
);

pub fn facts(e: &Event) -> Facts {
    let bytes = |s: &Str| s.as_bytes().to_vec();
    let unkeyed = Event {
        comm: Str::new(e.comm.as_bytes()),
        path: Str::new(e.path.as_bytes()),
        raw_path: Str::new(e.raw_path.as_bytes()),
        old_path: e.old_path.as_ref().map(|o| Str::new(o.as_bytes())),
        table: 0,
        proc_key: Str::NO_KEY,
        ..e.clone()
    };
    (
        e.op,
        bytes(&e.path),
        e.old_path.as_ref().map(bytes),
        e.new_uid,
        e.new_gid,
        e.length,
        format!("{unkeyed:?}"),
    )
}

/// A store holding `events`, written by the writer itself (as `record` does); returns the events
/// as the writer left them (their strings interned).
fn recorded(events: &[Event]) -> (TempStore, Vec<Event>) {
    let s = TempStore::new();
    let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("writer");
    let mut appended = Vec::new();
    for e in events {
        let mut e = e.clone();
        w.append(&mut e).expect("append");
        appended.push(e);
    }
    w.close().expect("close");
    (s, appended)
}

#[test]
fn every_op_round_trips_through_the_writer_and_reader() {
    let want = one_of_each();
    let (s, _) = recorded(&want);
    let back = read_store(&s.dir);
    assert_eq!(
        back.iter().map(facts).collect::<Vec<_>>(),
        want.iter().map(facts).collect::<Vec<_>>()
    );
}

/// The live rules cache verdicts by string key: a rename's old name must be interned in the same
/// table as paths, so that `/etc/sedAb12Cd` has one key whether it is opened or renamed away.
#[test]
fn old_path_is_interned_with_paths_before_rules_see_it() {
    let mut events = one_of_each();
    events.push(event(13, "/etc/sedAb12Cd"));
    let (_s, appended) = recorded(&events);
    let renamed = appended[1].old_path.as_ref().expect("old_path");
    let opened = &appended[13].path;
    assert_ne!(renamed.key, Str::NO_KEY);
    assert_eq!(renamed.key, opened.key);
    assert_eq!(appended[1].table, appended[13].table);
}

/// A block of opens stores the new columns as NULL (no byte per event), and a block of ops only
/// the columns its events use; old-schema readers' NULL is read as "none".
#[test]
fn blocks_store_only_the_op_columns_they_use() {
    let s = TempStore::new();
    let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("writer");
    for i in 0..100 {
        w.append(&mut event(i, "/etc/hosts")).expect("append");
    }
    w.commit().expect("commit");
    let ops = one_of_each();
    for e in ops.iter().filter(|e| e.op == Op::Chown) {
        w.append(&mut e.clone()).expect("append");
    }
    w.commit().expect("commit");
    let db = rusqlite::Connection::open(s.dir.join("0000000001.active.db")).expect("active db");
    let nulls: Vec<[bool; 4]> = db
        .prepare(
            "SELECT old_path IS NULL, new_uid IS NULL, new_gid IS NULL, length IS NULL \
             FROM blocks ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(nulls, [[true; 4], [true, false, false, true]]);
    let ops_of_shapes: Vec<i64> = db
        .prepare("SELECT op FROM shapes ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ops_of_shapes, [1, i64::from(Op::Chown.code())]);
    drop(db);
    w.close().expect("close");
    let back = read_store(&s.dir);
    assert_eq!(back.len(), 102);
    assert!(back[..100].iter().all(|e| e.op == Op::Open));
    assert_eq!(
        back[100..].iter().map(facts).collect::<Vec<_>>(),
        ops.iter()
            .filter(|e| e.op == Op::Chown)
            .map(facts)
            .collect::<Vec<_>>()
    );
}

/// Segments of every earlier schema (the kept fixtures: schemas 1 to 4) read as opens, with no
/// old path or op argument.
#[test]
fn old_fixture_segments_read_as_opens() {
    for scenario in scenarios_before(5) {
        let dir = fixtures_dir().join("segments").join(&scenario);
        let events = read_store(&dir);
        assert!(!events.is_empty(), "{scenario}");
        for e in &events {
            assert_eq!(
                (e.op, &e.old_path, e.new_uid, e.new_gid, e.length),
                (Op::Open, &None, None, None, None),
                "{scenario}: {}",
                e.path.lossy()
            );
        }
    }
    assert!(Path::new(&fixtures_dir().join("segments/baseline")).exists());
}

fn json_keys(line: &str) -> Vec<String> {
    match serde_json::from_str(line) {
        Ok(Value::Object(o)) => o.keys().cloned().collect(),
        other => panic!("not a JSON object: {line}: {other:?}"),
    }
}

/// An open's line is what it always was; every other op's line ends with the op keys, after the
/// identity keys, null where the op has no such value.
#[test]
fn op_keys_end_the_lines_of_ops_and_never_appear_on_opens() {
    let events = one_of_each();
    let open = events[0].to_json_line();
    assert!(!json_keys(&open).iter().any(|k| k == "op"), "{open}");
    let before = json_keys(&open);
    for e in &events[1..] {
        let line = e.to_json_line();
        let keys = json_keys(&line);
        let mut tail = vec!["op", "old_path"];
        if e.old_path
            .as_ref()
            .is_some_and(|o| std::str::from_utf8(o.as_bytes()).is_err())
        {
            tail.push("old_path_b64");
        }
        tail.extend(["new_uid", "new_gid", "length"]);
        assert_eq!(keys[..before.len()], before[..], "{line}");
        assert_eq!(keys[before.len()..], tail, "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["op"], e.op.as_str());
        let num = |n: Option<i64>| n.map_or(Value::Null, Value::from);
        assert_eq!(v["new_uid"], num(e.new_uid.map(i64::from)), "{line}");
        assert_eq!(v["new_gid"], num(e.new_gid.map(i64::from)), "{line}");
        assert_eq!(v["length"], num(e.length), "{line}");
    }
}

/// export → import → export gives the same lines for every op (non-UTF-8 old paths too), and the
/// imported store holds the same events.
#[test]
fn every_op_survives_export_and_import() {
    let want = one_of_each();
    let (s, _) = recorded(&want);
    let first = s.ok(&["export"]);
    assert_eq!(first.lines().count(), want.len());
    let file = s.path("export.jsonl");
    std::fs::write(&file, &first).expect("write export");
    let again = TempStore::new();
    again.ok(&["import", file.to_str().expect("utf-8 path")]);
    assert_eq!(again.ok(&["export"]), first);
    assert_eq!(
        read_store(&again.dir).iter().map(facts).collect::<Vec<_>>(),
        want.iter().map(facts).collect::<Vec<_>>()
    );
}

#[test]
fn import_rejects_unknown_ops_and_misplaced_op_fields_naming_line_and_field() {
    let events = one_of_each();
    let rename = events[1].to_json_line();
    let unlink = events[5].to_json_line();
    let long = format!("\"old_path\":\"/{}\"", "a".repeat(4096));
    for (line, from, to, says) in [
        (
            &rename,
            "\"op\":\"rename\"",
            "\"op\":\"move\"",
            "field `op`: unknown value \"move\"",
        ),
        (
            &rename,
            "\"length\":null",
            "\"length\":0",
            "field `length` on a rename: only truncate",
        ),
        (
            &unlink,
            "\"old_path\":null",
            "\"old_path\":\"/x\"",
            "field `old_path` on an unlink",
        ),
        (
            &unlink,
            "\"new_gid\":null",
            "\"new_gid\":0",
            "field `new_gid` on an unlink: only chown",
        ),
        (
            &rename,
            "\"old_path\":\"/etc/sedAb12Cd\"",
            &long,
            "field `old_path` is 4097 bytes long",
        ),
        // A line without `op` is an open, which has none of them.
        (
            &rename,
            "\"op\":\"rename\",",
            "",
            "field `old_path` on an open",
        ),
    ] {
        assert!(line.contains(from), "{from} in {line}");
        assert_import_refuses(&events[0].to_json_line(), &line.replace(from, to), says);
    }
}

/// Runs `verify ARGS`; returns its exit code and everything it said.
fn verify(s: &TempStore, args: &[&str]) -> (Option<i32>, String) {
    let mut a = vec!["verify", "--format", "jsonl"];
    a.extend_from_slice(args);
    let o = s.run(&a);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), text)
}

/// A rename disguised as an open, or its old name erased, in the active database by another
/// process while recording: the witness names the table and `verify` fails on the segment.
#[test]
fn an_op_or_old_path_edited_in_the_active_database_is_sealed_as_tampered() {
    for (edit, table) in [
        ("UPDATE shapes SET op = 1 WHERE op = 2", "shapes"),
        ("UPDATE blocks SET old_path = NULL", "blocks"),
        ("UPDATE blocks SET length = NULL", "blocks"),
    ] {
        let s = TempStore::new();
        let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("writer");
        for e in one_of_each() {
            w.append(&mut e.clone()).expect("append");
        }
        w.commit().expect("commit");
        let c = rusqlite::Connection::open(s.dir.join("0000000001.active.db")).expect("db");
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert!(c.execute(edit, []).expect(edit) > 0, "{edit}");
        drop(c);
        let summary = w.close().expect("close");
        assert!(
            summary.warnings.iter().any(|m| m.contains("tampered")),
            "{edit}: {:?}",
            summary.warnings
        );
        let (code, text) = verify(&s, &["--head", &summary.head]);
        assert_eq!(code, Some(1), "{edit}: {text}");
        assert!(
            text.contains("tampered while it was recorded") && text.contains(table),
            "{edit}: {text}"
        );
        // The seal summarized the edited image, not the rows the writer committed: the
        // segment's summary is true to what it holds (its blocks' were written before the edit).
        assert!(
            !text.contains("the segment's summary does not match"),
            "{edit}: {text}"
        );
    }
}

/// A sealed segment whose op or old path is changed afterwards fails `verify`, whether or not
/// the forger also rewrote the database's hash in the metadata.
#[test]
fn an_op_or_old_path_edited_in_a_sealed_segment_fails_verify() {
    for (edit, rehash) in [
        ("UPDATE shapes SET op = 1 WHERE op = 2", false),
        ("UPDATE shapes SET op = 1 WHERE op = 2", true),
        ("UPDATE blocks SET old_path = NULL", true),
    ] {
        let (s, _) = recorded(&one_of_each());
        let (code, text) = verify(&s, &[]);
        assert_eq!(code, Some(0), "{text}");
        let file = s.dir.join("0000000001.seg.zst");
        let mut f = Forged::open(&file);
        f.edit_db(|c| assert!(c.execute(edit, []).expect(edit) > 0));
        f.write(&file, rehash);
        let (code, text) = verify(&s, &[]);
        assert_eq!(code, Some(1), "{edit} (rehash {rehash}): {text}");
        assert!(text.contains("0000000001.seg.zst"), "{text}");
    }
}

/// A writer that died left ops in its active database: readers read them as they are, the next
/// writer seals them, and `segments` and `verify` agree.
#[test]
fn ops_in_an_active_database_left_by_a_dead_writer_are_read_and_sealed() {
    use std::os::unix::fs::PermissionsExt;
    let live = TempStore::new();
    let mut w = Writer::open(&live.dir, RotateConfig::default()).expect("writer");
    let want = one_of_each();
    for e in &want {
        w.append(&mut e.clone()).expect("append");
    }
    w.commit().expect("commit");
    // What a SIGKILL leaves: the committed database and its WAL, no seal.
    let dead = TempStore::new();
    std::fs::create_dir(&dead.dir).unwrap();
    std::fs::set_permissions(&dead.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    for f in ["0000000001.active.db", "0000000001.active.db-wal"] {
        if live.dir.join(f).exists() {
            std::fs::copy(live.dir.join(f), dead.dir.join(f)).unwrap();
        }
    }
    w.close().expect("close");
    let facts_of = |s: &TempStore| read_store(&s.dir).iter().map(facts).collect::<Vec<_>>();
    let want: Vec<Facts> = want.iter().map(facts).collect();
    assert_eq!(facts_of(&dead), want, "read while unsealed");
    let w = Writer::open(&dead.dir, RotateConfig::default()).expect("next writer");
    assert_eq!(w.summary().recovered.len(), 1);
    w.close().expect("close");
    assert_eq!(facts_of(&dead), want, "read once sealed");
    let listed = dead.ok(&["segments", "--format", "jsonl"]);
    assert!(listed.contains("\"events\":13"), "{listed}");
    let (code, text) = verify(&dead, &[]);
    assert_eq!(code, Some(0), "{text}");
}
