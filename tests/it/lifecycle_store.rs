//! File operations in the store (schema 5, issue #27): every op with its old path and arguments
//! is written, read back, witnessed and chained like an open; segments written before read as
//! opens only.

use std::path::Path;

use open_forensics::bytes::Str;
use open_forensics::event::{Event, Op};
use open_forensics::store::{RotateConfig, Writer};

use crate::helpers::{event, fixtures_dir, read_store, scenarios, TempStore};

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
    for scenario in scenarios() {
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
