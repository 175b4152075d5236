//! Tamper evidence that holds (issue #26, #25 item 10): every regression is named after the
//! defect an adversarial trial found, and forges with `tamper_forge` (the documented format).

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use open_forensics::store::{link_of, RotateConfig, SegmentMeta, Writer};
use serde_json::{json, Value};

use crate::helpers::{event, live_capture_available, TempStore};
use crate::recorder::Recorder;
use crate::tamper_forge::Forged;

const KEY: &[u8] = b"a signing key of thirty-two byte";

fn sealed(seq: u64) -> String {
    format!("{seq:010}.seg.zst")
}

/// A store of `segments` sealed segments of 5 events each, signed with [`KEY`]; its head. The
/// key is in `STORE/../sign.key`.
fn signed_store(tag: &str, segments: i64) -> (TempStore, String) {
    let s = TempStore::new();
    fs::write(s.path("sign.key"), KEY).expect("key");
    let config = RotateConfig {
        max_events: 5,
        ..RotateConfig::default()
    };
    let mut w = Writer::open(&s.dir, config).expect("open writer");
    w.set_sign_key(KEY.to_vec());
    for k in 0..segments {
        for j in 0..5 {
            let mut e = event(k * 1000 + j, &format!("/tamper/{tag}/{k}/{j}"));
            w.append(&mut e).expect("append");
        }
    }
    let head = w.close().expect("close").head;
    (s, head)
}

fn key_arg(s: &TempStore) -> String {
    s.path("sign.key").to_str().expect("utf-8").to_owned()
}

struct Ran {
    code: Option<i32>,
    text: String,
}

fn run(s: &TempStore, args: &[&str]) -> Ran {
    let o: Output = s.run(args);
    Ran {
        code: o.status.code(),
        text: format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

/// Runs `verify ARGS` and asserts it exits `code` and names every one of `what`.
fn verify(s: &TempStore, args: &[&str], code: i32, what: &[&str]) -> String {
    let mut a = vec!["verify", "--format", "jsonl"];
    a.extend_from_slice(args);
    let r = run(s, &a);
    assert_eq!(r.code, Some(code), "verify {args:?}: {}", r.text);
    for w in what {
        assert!(
            r.text.contains(w),
            "verify {args:?} does not say {w:?}: {}",
            r.text
        );
    }
    r.text
}

/// `export` names `file` as tampered on stderr.
fn readers_warn(s: &TempStore, file: &str) {
    for cmd in [&["export"][..], &["query", "--format", "jsonl"][..]] {
        let r = run(s, cmd);
        assert!(
            r.text
                .lines()
                .any(|l| l.contains(file) && l.contains("tampered")),
            "{cmd:?} does not name {file} as tampered: {}",
            r.text
        );
    }
}

#[test]
fn stripped_chain_fields_are_named_as_tampered() {
    let (s, head) = signed_store("strip", 4);
    let key = key_arg(&s);
    verify(&s, &["--head", &head, "--key", &key], 0, &[]);
    // The trial's forgery: chain fields removed, the events edited, the frame left at schema 3.
    let mut f = Forged::open(&s.dir.join(sealed(2)));
    f.strip_chain();
    assert!(f.rewrite_paths("/tamper/strip/", "/innocent/") > 0);
    f.write(&s.dir.join(sealed(2)), false);
    verify(
        &s,
        &["--head", &head, "--key", &key],
        1,
        &[&sealed(2), "tampered"],
    );
    verify(&s, &[], 1, &[&sealed(2), "tampered"]);
    readers_warn(&s, &sealed(2));

    // Made to look sealed before tamper evidence (schema 2, no `processes.root`): after the
    // start of the chain, that is an insertion or a strip, with or without a key.
    let (s, head) = signed_store("legacy", 4);
    let key = key_arg(&s);
    for seq in [2, 3] {
        let mut f = Forged::open(&s.dir.join(sealed(seq)));
        f.strip_chain();
        f.downgrade_to_schema_2();
        f.rewrite_paths("/tamper/legacy/", "/innocent/");
        f.write(&s.dir.join(sealed(seq)), false);
    }
    verify(
        &s,
        &[],
        1,
        &[&sealed(2), &sealed(3), "inserted or stripped"],
    );
    verify(
        &s,
        &["--head", &head, "--key", &key],
        1,
        &[&sealed(2), "unverifiable"],
    );
    readers_warn(&s, &sealed(3));

    // Every segment so made over: nothing chained is left, and the key vouches for none.
    for seq in [1, 4] {
        let mut f = Forged::open(&s.dir.join(sealed(seq)));
        f.strip_chain();
        f.downgrade_to_schema_2();
        f.write(&s.dir.join(sealed(seq)), false);
    }
    verify(
        &s,
        &["--head", &head, "--key", &key],
        1,
        &[&sealed(1), &sealed(4), "unverifiable", "truncated"],
    );
}

#[test]
fn a_segment_appended_after_the_head_is_named() {
    let (s, head) = signed_store("append", 3);
    let key = key_arg(&s);
    // A made-up segment 4 from a copy of 3, passed off as sealed before tamper evidence.
    let mut f = Forged::open(&s.dir.join(sealed(3)));
    f.strip_chain();
    f.downgrade_to_schema_2();
    f.set_both("seq", json!(4));
    f.rewrite_paths("/tamper/append/", "/fabricated/");
    f.write(&s.dir.join(sealed(4)), false);
    verify(&s, &[], 1, &[&sealed(4), "inserted or stripped"]);
    verify(&s, &["--head", &head, "--key", &key], 1, &[&sealed(4)]);
    readers_warn(&s, &sealed(4));

    // Chained properly after the head, but without the key: only the key can tell.
    fs::remove_file(s.dir.join(sealed(4))).expect("rm");
    let mut f = Forged::open(&s.dir.join(sealed(3)));
    f.set_both("seq", json!(4));
    f.meta.remove("sig");
    f.meta.insert("prev".into(), head.clone().into());
    f.write(&s.dir.join(sealed(4)), true);
    let mut meta: SegmentMeta =
        serde_json::from_value(Value::Object(f.meta.clone())).expect("meta");
    meta.link = None;
    f.meta.insert("link".into(), link_of(&meta).into());
    f.write(&s.dir.join(sealed(4)), true);
    let text = verify(&s, &["--head", &head], 0, &[]);
    assert!(
        text.contains("neither the head nor a key vouches for it"),
        "{text}"
    );
    verify(
        &s,
        &["--head", &head, "--key", &key],
        1,
        &[&sealed(4), "not signed"],
    );
}

#[test]
fn deleting_the_oldest_segments_behind_a_planted_prune_record_is_named() {
    let (s, _) = signed_store("prune", 5);
    let key = key_arg(&s);
    let link2 = Forged::open(&s.dir.join(sealed(2))).meta["link"].clone();
    fs::remove_file(s.dir.join(sealed(1))).expect("rm");
    fs::remove_file(s.dir.join(sealed(2))).expect("rm");
    verify(&s, &[], 1, &[&sealed(3), "deleted"]);
    let record = json!({"link": link2, "seq": 2, "before_ns": 0, "pruned_at_ns": 0});
    fs::write(s.dir.join("prune.json"), record.to_string()).expect("plant");
    verify(
        &s,
        &["--key", &key],
        1,
        &["prune.json", "not signed with this key"],
    );

    // A prune made with the key passes; one made without it is named.
    let cut = open_forensics::timespec::format_ts(event(2000, "x").ts_ns - 1);
    let (s, head) = signed_store("prune-ok", 5);
    let key = key_arg(&s);
    s.ok(&["prune", "--before", &cut, "--sign-key", &key]);
    assert!(!s.dir.join(sealed(2)).exists());
    verify(&s, &["--key", &key, "--head", &head], 0, &[]);
    let (s, _) = signed_store("prune-nokey", 5);
    let key = key_arg(&s);
    s.ok(&["prune", "--before", &cut]);
    verify(&s, &[], 0, &[]);
    verify(&s, &["--key", &key], 1, &["not signed with this key"]);

    // Retention signs with the recorder's key.
    let (s, head) = signed_store("retain", 4);
    let key = key_arg(&s);
    let policy = open_forensics::store::Retention {
        max_bytes: None,
        max_age: Some(Duration::from_secs(1)),
    };
    let now = open_forensics::timespec::now_ns();
    let r = open_forensics::store::retain(&s.dir, &policy, now, Some(KEY)).expect("retain");
    assert_eq!(r.expect("removed").segments, 3);
    verify(&s, &["--key", &key, "--head", &head], 0, &[]);
}

/// Edits the path strings of the active database `db` from another connection, as `sqlite3`
/// would; returns the rows changed.
fn edit_active(db: &Path, from: &str, to: &str) -> usize {
    let c = rusqlite::Connection::open(db).expect("open the active database");
    c.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    c.execute(
        "UPDATE strings SET value = CAST(replace(CAST(value AS TEXT), ?1, ?2) AS BLOB)
         WHERE instr(CAST(value AS TEXT), ?1) > 0",
        rusqlite::params![from, to],
    )
    .expect("edit the active database")
}

#[test]
fn an_active_database_edited_by_another_process_is_sealed_as_tampered() {
    let s = TempStore::new();
    fs::write(s.path("sign.key"), KEY).expect("key");
    let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("open writer");
    w.set_sign_key(KEY.to_vec());
    for j in 0..5 {
        w.append(&mut event(j, &format!("/tamper/active/{j}")))
            .expect("append");
    }
    w.commit().expect("commit");
    let changed = edit_active(
        &s.dir.join("0000000001.active.db"),
        "/tamper/active/",
        "/innocent/",
    );
    assert_eq!(changed, 5);
    let summary = w.close().expect("close");
    assert!(
        summary.warnings.iter().any(|m| m.contains("tampered")),
        "{:?}",
        summary.warnings
    );
    let key = key_arg(&s);
    verify(
        &s,
        &["--key", &key, "--head", &summary.head],
        1,
        &[&sealed(1), "tampered while it was recorded", "strings"],
    );
    readers_warn(&s, &sealed(1));
}

#[test]
fn an_active_database_edited_while_recording_live_is_named_by_verify() {
    if !live_capture_available("an_active_database_edited_while_recording_live_is_named_by_verify")
    {
        return;
    }
    let s = TempStore::new();
    fs::write(s.path("sign.key"), KEY).expect("key");
    let key = key_arg(&s);
    let work = tempfile::tempdir().expect("workload dir");
    let rec = Recorder::start(&s, &["--sign-key", &key]);
    let marker = format!("tamper-live-{}", std::process::id());
    for i in 0..20 {
        fs::write(work.path().join(format!("{marker}-{i}")), b"x").expect("open");
    }
    // The recorder commits at least every second.
    let db = s.dir.join("0000000001.active.db");
    let mut changed = 0;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        changed = edit_active(&db, &marker, "innocent");
        if changed > 0 {
            break;
        }
    }
    assert!(changed > 0, "the recorder never committed {marker}");
    let text = rec.stop();
    assert!(text.contains("sealed as tampered"), "{text}");
    verify(
        &s,
        &["--key", &key],
        1,
        &[&sealed(1), "tampered while it was recorded"],
    );
}

#[test]
fn verify_head_takes_the_printed_prefix_in_either_case() {
    let (s, head) = signed_store("head", 3);
    let printed = verify(&s, &[], 0, &[]);
    let short: String = printed
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["link"].as_str().map(str::to_owned))
        .next_back()
        .expect("a link column");
    assert_eq!(short.len(), 16);
    assert!(head.starts_with(&short));
    for h in [
        &short,
        &short.to_uppercase(),
        &head[..8],
        &head.to_uppercase(),
    ] {
        verify(&s, &["--head", h], 0, &[]);
    }
    for bad in ["1234567", "zzzzzzzz", "0x12345678"] {
        verify(&s, &["--head", bad], 2, &["not a chain head"]);
    }
    let other = if head.starts_with('0') {
        "11111111"
    } else {
        "00000000"
    };
    verify(&s, &["--head", other], 1, &["truncated"]);
}
