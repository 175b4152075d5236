//! The segment store: round trips, rotation, crash recovery, locking, corruption, permissions.

use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use open_forensics::bytes::Str;
use open_forensics::event::Event;
use open_forensics::store::{list_segments, Reader, RotateConfig, SegmentState, TimeRange, Writer};

use crate::helpers::{event, fixtures_dir, write_jsonl, TempStore};

fn read_all(dir: &std::path::Path) -> Vec<Event> {
    let mut out = Vec::new();
    let stats = Reader::open(dir).unwrap().scan(&TimeRange::default(), |e| {
        out.push(Event {
            table: 0,
            proc_key: Str::NO_KEY,
            ..e.clone()
        });
        ControlFlow::Continue(())
    });
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    out
}

/// Strips interning keys so events compare by content.
fn plain(mut e: Event) -> Event {
    for s in [&mut e.comm, &mut e.path, &mut e.raw_path] {
        *s = Str::new(s.bytes.clone());
    }
    e.table = 0;
    e
}

fn workload(n: i64) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let mut e = event(i, &format!("/usr/lib/x86_64-linux-gnu/lib{}.so.6", i % 13));
            if i % 5 == 0 {
                e.raw_path = Str::from("relative/name");
                e.ret = -2;
                e.path_source = open_forensics::event::PathSource::Cwd;
            }
            if i % 11 == 0 {
                e.dirfd = None;
                e.syscall = open_forensics::event::Syscall::Open;
                e.ts_ns -= 700; // out of order by a little: dt must handle negatives
            }
            e
        })
        .collect()
}

#[test]
fn round_trip_through_sealed_segment_and_export_import_is_stable() {
    let s = TempStore::new();
    let events = workload(2_000);
    let mut w = Writer::open(&s.dir, RotateConfig::default()).unwrap();
    for e in &events {
        w.append(&mut e.clone()).unwrap();
    }
    let summary = w.close().unwrap();
    assert_eq!(summary.events, 2_000);
    let (segs, bad) = list_segments(&s.dir).unwrap();
    assert!(bad.is_empty());
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].state, SegmentState::Sealed);
    assert_eq!(segs[0].meta.events, 2_000);
    assert_eq!(
        read_all(&s.dir).into_iter().map(plain).collect::<Vec<_>>(),
        events
    );

    // export | import into an empty store | export gives identical output.
    let first = s.ok(&["export"]);
    assert_eq!(first.lines().count(), 2_000);
    let file = s.path("export.jsonl");
    std::fs::write(&file, &first).unwrap();
    let other = TempStore::new();
    other.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(other.ok(&["export"]), first);
}

#[test]
fn export_filters_by_time() {
    let s = TempStore::new();
    let events = workload(100);
    s.import(&events);
    let since = open_forensics::timespec::format_ts(events[10].ts_ns);
    let until = open_forensics::timespec::format_ts(events[19].ts_ns);
    let out = s.ok(&["export", "--since", &since, "--until", &until]);
    let want: Vec<String> = events
        .iter()
        .filter(|e| e.ts_ns >= events[10].ts_ns && e.ts_ns <= events[19].ts_ns)
        .map(|e| e.to_json_line())
        .collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
    let bad = s.run(&["export", "--since", "last tuesday"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since"));
}

#[test]
fn non_utf8_path_survives_store_export_import() {
    let s = TempStore::new();
    let mut e = event(1, "x");
    e.path = Str::new(&b"/tmp/caf\xe9 \n\x01name"[..]);
    e.raw_path = Str::new(&b"caf\xe9 \n\x01name"[..]);
    e.comm = Str::new(&b"b\xffd"[..]);
    let mut w = Writer::open(&s.dir, RotateConfig::default()).unwrap();
    w.append(&mut e.clone()).unwrap();
    w.close().unwrap();
    assert_eq!(
        read_all(&s.dir).into_iter().map(plain).collect::<Vec<_>>(),
        vec![e.clone()]
    );
    let line = s.ok(&["export"]);
    assert!(line.contains("\"path_b64\""), "{line}");
    let file = s.path("e.jsonl");
    std::fs::write(&file, &line).unwrap();
    let other = TempStore::new();
    other.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(
        read_all(&other.dir)
            .into_iter()
            .map(plain)
            .collect::<Vec<_>>(),
        vec![e]
    );
}

#[test]
fn rotation_by_event_count_keeps_order() {
    let s = TempStore::new();
    let events = workload(1_000);
    let config = RotateConfig {
        max_events: 300,
        batch_events: 64,
        ..RotateConfig::default()
    };
    let mut w = Writer::open(&s.dir, config).unwrap();
    for e in &events {
        w.append(&mut e.clone()).unwrap();
    }
    let summary = w.close().unwrap();
    assert_eq!(summary.segments_sealed, 4);
    let (segs, _) = list_segments(&s.dir).unwrap();
    assert_eq!(
        segs.iter().map(|s| s.meta.events).collect::<Vec<_>>(),
        vec![300, 300, 300, 100]
    );
    assert_eq!(
        read_all(&s.dir).into_iter().map(plain).collect::<Vec<_>>(),
        events
    );
}

#[test]
fn rotation_by_size() {
    let s = TempStore::new();
    let config = RotateConfig {
        max_bytes: 1 << 20,
        batch_events: 1_000,
        ..RotateConfig::default()
    };
    let mut w = Writer::open(&s.dir, config).unwrap();
    for i in 0..60_000 {
        w.append(&mut event(
            i,
            &format!("/data/{i}/unique/path/to/make/the/database/grow"),
        ))
        .unwrap();
    }
    w.close().unwrap();
    let (segs, _) = list_segments(&s.dir).unwrap();
    assert!(
        segs.len() >= 2,
        "expected size rotation, got {} segment(s)",
        segs.len()
    );
    assert!(
        segs.iter()
            .all(|s| s.meta.db_bytes <= (1 << 20) + (1 << 20)),
        "segments far over the limit"
    );
    assert_eq!(segs.iter().map(|s| s.meta.events).sum::<u64>(), 60_000);
}

#[test]
fn losses_are_kept_and_reported() {
    let s = TempStore::new();
    let mut w = Writer::open(&s.dir, RotateConfig::default()).unwrap();
    let e = event(5, "/etc/passwd");
    w.append(&mut e.clone()).unwrap();
    w.record_loss(open_forensics::store::Loss {
        start_ns: e.ts_ns - 10,
        end_ns: e.ts_ns + 10,
        count: 42,
        reason: "ringbuf_full".into(),
    })
    .unwrap();
    w.close().unwrap();
    let (segs, _) = list_segments(&s.dir).unwrap();
    assert_eq!(segs[0].meta.lost, 42);
    // JSON output: the notice is a JSON object on stderr.
    let out = s.run(&["export"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let notice: serde_json::Value = serde_json::from_str(err.trim()).expect("one JSON notice");
    assert_eq!(notice["warning"], "incomplete");
    assert_eq!(notice["lost"], 42);
    assert_eq!(
        notice["from"],
        open_forensics::timespec::format_ts(e.ts_ns - 10)
    );
    // A table for a person: the same in words.
    let out = s.run(&["query", "--format", "table"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: incomplete: 42 events were lost"),
        "{err}"
    );
    // A window that does not overlap the loss is complete.
    let out = s.run(&["export", "--until", "1970-01-02T00:00:00Z"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("incomplete"));
}

/// A capability the recorder lacked on its kernel is stored in every segment it wrote (inside the
/// hash-chained metadata) and reported by every reading command over that time, as losses are:
/// `query` (a scan and SQL), `replay` and `export` — and a segment without it reads as whole.
#[test]
fn coverage_gaps_are_stored_and_every_query_reports_them() {
    let s = TempStore::new();
    let mut w = Writer::open(&s.dir, RotateConfig::default()).unwrap();
    let gap = open_forensics::store::Uncaptured {
        what: "io_uring opens".into(),
        why: "kernel 5.10.0-32-cloud-amd64 has no io_uring_submit_req tracepoint".into(),
    };
    w.set_uncaptured(vec![gap.clone()]);
    let e = event(5, "/etc/passwd");
    w.append(&mut e.clone()).unwrap();
    w.close().unwrap();
    let (segs, _) = list_segments(&s.dir).unwrap();
    assert_eq!(segs[0].meta.uncaptured, vec![gap]);
    s.ok(&["verify"]);
    let rules = fixtures_dir().join("rules/detections.yaml");
    let rules = rules.to_str().unwrap();
    for args in [
        &["export"][..],
        &["query", "--format", "jsonl"],
        &["query", "--sql", "SELECT count(*) FROM events"],
        &["replay", "--rules", rules],
    ] {
        let out = s.run(args);
        assert!(out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let notice: serde_json::Value = err
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .find(|n: &serde_json::Value| n["warning"] == "not_captured")
            .unwrap_or_else(|| panic!("{args:?}: no not_captured notice in {err}"));
        assert_eq!(notice["what"], "io_uring opens", "{args:?}");
        assert_eq!(
            notice["text"],
            "io_uring opens not captured: kernel 5.10.0-32-cloud-amd64 has no io_uring_submit_req tracepoint"
        );
        assert_eq!(notice["from"], open_forensics::timespec::format_ts(e.ts_ns));
    }
    let out = s.run(&["query", "--format", "table"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: io_uring opens not captured: kernel 5.10"),
        "{err}"
    );
    // Outside the recording's time, and in a store recorded whole, nothing is said.
    let out = s.run(&["export", "--until", "1970-01-01T00:00:00.000000001Z"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not_captured"));
    let whole = TempStore::new();
    whole.import(&[e]);
    let out = whole.run(&["export"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not captured"));
}

/// Not a test on its own: the writer process that `recovery_after_sigkill_keeps_every_committed_batch`
/// starts and kills. It prints the number of committed events after every commit.
#[test]
#[ignore = "child process of recovery_after_sigkill_keeps_every_committed_batch"]
fn writer_child() {
    let dir = std::env::var("OF_TEST_WRITER_DIR").expect("run by the recovery test");
    let config = RotateConfig {
        batch_events: 500,
        ..RotateConfig::default()
    };
    let mut w = Writer::open(std::path::Path::new(&dir), config).unwrap();
    let mut i = 0;
    loop {
        w.append(&mut event(i, &format!("/var/log/app/{}.log", i % 50)))
            .unwrap();
        i += 1;
        if i % 500 == 0 {
            // The batch was committed by append; announce it.
            println!("committed {i}");
        }
    }
}

#[test]
fn recovery_after_sigkill_keeps_every_committed_batch() {
    let s = TempStore::new();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::writer_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OF_TEST_WRITER_DIR", &s.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut committed = 0u64;
    for line in BufReader::new(child.stdout.as_mut().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("committed ") {
            committed = n.parse().unwrap();
            if committed >= 20_000 {
                break;
            }
        }
    }
    // Mid-batch: the child keeps appending while we kill it.
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(committed >= 20_000);

    let (segs, _) = list_segments(&s.dir).unwrap();
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].state, SegmentState::Unsealed);

    // Readers see the committed events without writing anything into the store.
    let before = snapshot(&s.dir);
    let read = read_all(&s.dir).len() as u64;
    assert!(read >= committed, "read {read} < committed {committed}");
    assert_eq!(snapshot(&s.dir), before, "a reader changed the store");

    // The next writer seals it, losing nothing committed.
    let w = Writer::open(&s.dir, RotateConfig::default()).unwrap();
    assert_eq!(w.summary().recovered.len(), 1);
    drop(w);
    let (segs, _) = list_segments(&s.dir).unwrap();
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].state, SegmentState::Sealed);
    assert_eq!(segs[0].meta.events, read);
    let events = read_all(&s.dir);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.ts_ns, event(i as i64, "").ts_ns, "event {i} out of place");
    }
}

/// Names, sizes and modification times of everything in a directory.
fn snapshot(dir: &std::path::Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                m.modified().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn second_writer_gets_a_lock_error() {
    let s = TempStore::new();
    let _w = Writer::open(&s.dir, RotateConfig::default()).unwrap();
    let err = Writer::open(&s.dir, RotateConfig::default())
        .err()
        .expect("second writer must fail");
    assert!(
        err.to_string().contains(&format!(
            "locked by another writer (pid {})",
            std::process::id()
        )),
        "{err}"
    );
    let file = s.path("e.jsonl");
    write_jsonl(&file, &[event(1, "/etc/hosts")]);
    let out = s.run(&["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("locked by another writer"));
}

#[test]
fn corrupt_and_truncated_segments_are_named_and_others_still_read() {
    let s = TempStore::new();
    let config = RotateConfig {
        max_events: 100,
        ..RotateConfig::default()
    };
    let mut w = Writer::open(&s.dir, config).unwrap();
    for (i, e) in workload(300).iter().enumerate() {
        let mut e = e.clone();
        e.ts_ns += i as i64 * 1_000_000; // keep segments apart in time
        w.append(&mut e).unwrap();
    }
    w.close().unwrap();
    let (segs, _) = list_segments(&s.dir).unwrap();
    assert_eq!(segs.len(), 3);
    // Flip bytes in the middle of the compressed database of the first one.
    let p0 = segs[0].path.clone();
    let mut bytes = std::fs::read(&p0).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&p0, bytes).unwrap();
    // Truncate the second one.
    let p1 = segs[1].path.clone();
    let len = std::fs::metadata(&p1).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p1)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let out = s.run(&["export"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        100,
        "the intact segment must still be read"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for p in [&p0, &p1] {
        assert!(
            stderr.contains(&p.display().to_string()),
            "error must name {}: {stderr}",
            p.display()
        );
    }

    // A file that is not a segment at all.
    std::fs::write(s.dir.join("0000000099.seg.zst"), b"hello").unwrap();
    let out = s.run(&["segments", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("0000000099.seg.zst: not a sealed open-forensics segment"));
}

#[test]
fn store_is_owner_only() {
    let s = TempStore::new();
    let mut w = Writer::open(
        &s.dir,
        RotateConfig {
            batch_events: 1,
            ..RotateConfig::default()
        },
    )
    .unwrap();
    w.append(&mut event(1, "/etc/shadow")).unwrap();
    // While writing: the active database and its WAL.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.dir), 0o700);
    for entry in std::fs::read_dir(&s.dir).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    w.close().unwrap();
    for entry in std::fs::read_dir(&s.dir).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    // An existing store directory that others can read is tightened.
    std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    Writer::open(&s.dir, RotateConfig::default())
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(mode(&s.dir), 0o700);
}

#[test]
fn malformed_import_names_line_and_field_and_writes_nothing() {
    let s = TempStore::new();
    let file = s.path("bad.jsonl");
    let good = event(1, "/etc/hosts").to_json_line();
    let bad = good.replace("\"syscall\":\"openat\"", "\"syscall\":\"openz\"");
    std::fs::write(&file, format!("{good}\n{good}\n{bad}\n")).unwrap();
    let out = s.run(&["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:3: field `syscall`: unknown value \"openz\""),
        "{err}"
    );
    assert!(
        !s.dir.exists() || list_segments(&s.dir).unwrap().0.is_empty(),
        "a rejected file wrote events"
    );

    let missing = good.replace("\"pid\":1001,", "");
    std::fs::write(&file, format!("{missing}\n")).unwrap();
    let err =
        String::from_utf8_lossy(&s.run(&["import", file.to_str().unwrap()]).stderr).into_owned();
    assert!(err.contains("bad.jsonl:1: missing field `pid`"), "{err}");
}

#[test]
fn segments_lists_without_decompressing() {
    let s = TempStore::new();
    s.import(&workload(50));
    let out = s.ok(&["segments", "--format", "jsonl"]);
    let row: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(row["events"], 50);
    assert_eq!(row["state"], "sealed");
    // Imported events were never held by a reorder window: none is late.
    assert_eq!(row["late"], 0);
    assert!(row["ratio"].as_f64().unwrap() > 1.0);
    // Damage only the database frame: listing still works because it reads the metadata frame alone.
    let seg = list_segments(&s.dir).unwrap().0.remove(0).path;
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 20..].fill(0);
    std::fs::write(&seg, bytes).unwrap();
    assert!(s.run(&["segments", "--format", "csv"]).status.success());
    assert_eq!(s.run(&["export"]).status.code(), Some(1));
}

#[test]
fn prune_removes_only_old_segments() {
    let s = TempStore::new();
    let config = RotateConfig {
        max_events: 10,
        ..RotateConfig::default()
    };
    let mut w = Writer::open(&s.dir, config).unwrap();
    for i in 0..30 {
        let mut e = event(0, "/etc/hosts");
        e.ts_ns += i * 1_000_000_000;
        w.append(&mut e).unwrap();
    }
    w.close().unwrap();
    let cut = open_forensics::timespec::format_ts(event(0, "").ts_ns + 15 * 1_000_000_000);
    s.ok(&["prune", "--before", &cut]);
    let (segs, _) = list_segments(&s.dir).unwrap();
    assert_eq!(segs.len(), 2);
    assert_eq!(read_all(&s.dir).len(), 20);
}

#[test]
fn segment_database_holds_events_by_column_block() {
    let s = TempStore::new();
    let events = workload(500);
    let mut w = Writer::open(
        &s.dir,
        RotateConfig {
            batch_events: 128,
            ..RotateConfig::default()
        },
    )
    .unwrap();
    for e in &events {
        w.append(&mut e.clone()).unwrap();
    }
    w.close().unwrap();
    let reader = Reader::open(&s.dir).unwrap();
    let seg = reader.load(&reader.segments()[0]).unwrap();
    let (blocks, n, min): (i64, i64, i64) = seg
        .conn()
        .query_row(
            "SELECT count(*), sum(count), min(min_ts_ns) FROM blocks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (blocks, n),
        (4, 500),
        "one block per committed batch of 128"
    );
    assert_eq!(min, events.iter().map(|e| e.ts_ns).min().unwrap());
    let strings: i64 = seg
        .conn()
        .query_row("SELECT count(*) FROM strings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        strings,
        13 + 1 + 1,
        "13 library paths, one relative name, one comm: each stored once"
    );
}

/// JSON lines with lineage as `export` writes them: a python process (non-UTF-8 argv) under a
/// shell under init, in a container.
fn lineage_lines() -> String {
    let anc = r#""ancestors":[{"pid":40,"comm":"bash","exe":"/usr/bin/bash","proc_start":"2025-11-24T16:00:00.000000000Z","exec_ts":null},{"pid":1,"comm":"systemd","exe":"/usr/lib/systemd/systemd","proc_start":"2025-11-24T15:00:00.000000000Z","exec_ts":null}]"#;
    let identity = r#""exec_ts":"2025-11-24T16:00:01.500000000Z","proc_root":null,"mntns":4026531841,"exe_id":"8:1:9","exe_verified":true"#;
    let mut out = String::new();
    for (i, path) in ["/etc/shadow", "/etc/passwd", "/tmp/x"].iter().enumerate() {
        let ts = 1_764_000_000_000_000_000i64 + i as i64;
        out.push_str(&format!(
            r#"{{"ts":"{}","ts_ns":{ts},"pid":42,"tid":42,"ppid":40,"uid":1000,"gid":1000,"comm":"passwd","syscall":"openat","path":"{path}","path_source":"file","path_truncated":false,"raw_path":"{path}","dirfd":-100,"flags":0,"mode":0,"ret":3,"exe":"/usr/bin/python3.11","argv":["python3","�"],"argv_b64":["cHl0aG9uMw==","/w=="],"proc_start":"2025-11-24T16:00:01.000000000Z","euid":0,"egid":0,"auid":1000,"user":"alice","cgroup":"/docker/{c}","container_id":"{c}","parent_exe":"/usr/bin/bash",{anc},"root":null,"file":"8:1:{i}","alias_of":null,{identity}}}"#,
            open_forensics::timespec::format_ts(ts),
            c = "ab".repeat(32),
        ));
        out.push('\n');
    }
    out
}

#[test]
fn export_import_export_keeps_lineage() {
    let a = TempStore::new();
    let input = a.path("in.jsonl");
    std::fs::write(&input, lineage_lines()).unwrap();
    a.ok(&["import", input.to_str().unwrap()]);
    let first = a.ok(&["export"]);
    assert_eq!(
        first,
        lineage_lines(),
        "export must print back what was imported"
    );
    let b = TempStore::new();
    let again = b.path("again.jsonl");
    std::fs::write(&again, &first).unwrap();
    b.ok(&["import", again.to_str().unwrap()]);
    assert_eq!(b.ok(&["export"]), first);
    // One process image (and two ancestors) stored once, not once per event.
    let reader = Reader::open(&b.dir).unwrap();
    let seg = reader.load(&reader.segments()[0]).unwrap();
    let procs = seg.processes().unwrap();
    assert_eq!(procs.len(), 3, "{procs:?}");
    let events = read_all(&b.dir);
    let p = events[0].process.as_ref().expect("lineage");
    assert_eq!(p.args(), vec![&b"python3"[..], b"\xff"]);
    assert_eq!(
        p.ancestors().map(|a| a.pid).collect::<Vec<_>>(),
        vec![40, 1]
    );
}

#[test]
fn import_accepts_lines_without_lineage_path_source_or_one_of_ts() {
    let s = TempStore::new();
    let f = s.path("loose.jsonl");
    std::fs::write(
        &f,
        concat!(
            r#"{"ts_ns":1764000000000000000,"pid":1,"tid":1,"ppid":0,"uid":0,"gid":0,"comm":"a","syscall":"openat","path":"/a","raw_path":"/a","dirfd":null,"flags":0,"mode":0,"ret":3}"#,
            "\n",
            r#"{"ts":"2025-11-24T16:00:00.000000001Z","pid":1,"tid":1,"ppid":0,"uid":0,"gid":0,"comm":"a","syscall":"open","path":"/b","path_source":"raw","raw_path":"/b","dirfd":null,"flags":0,"mode":0,"ret":-2}"#,
            "\n"
        ),
    )
    .unwrap();
    s.ok(&["import", f.to_str().unwrap()]);
    let out = s.ok(&["export"]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["path_source"], "unresolved");
    assert_eq!(lines[0]["ts"], "2025-11-24T16:00:00.000000000Z");
    assert_eq!(lines[1]["ts_ns"], 1_764_000_000_000_000_001i64);
    // No lineage was given, so none is invented.
    assert!(lines[0].get("exe").is_none(), "{out}");
    // Lineage keys without the process start cannot name a process.
    let bad = s.path("bad.jsonl");
    std::fs::write(
        &bad,
        out.lines()
            .next()
            .unwrap()
            .replace("\"ret\":3}", "\"ret\":3,\"exe\":\"/x\"}"),
    )
    .unwrap();
    let r = s.run(&["import", bad.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("bad.jsonl:1: lineage keys without `proc_start`"),
        "{err}"
    );
}

#[test]
fn schema_1_segments_read_with_null_lineage() {
    let dir = fixtures_dir().join("segments/attack");
    let reader = Reader::open(&dir).unwrap();
    let seg = reader.load(&reader.segments()[0]).unwrap();
    assert_eq!(
        seg.version, 1,
        "the kept fixture must stay a schema 1 segment"
    );
    assert!(seg.processes().unwrap().is_empty());
    let events = read_all(&dir);
    assert!(!events.is_empty());
    assert!(events
        .iter()
        .all(|e| e.process.is_none() && e.user.is_none() && e.euid.is_none()));
    // SQL sees the lineage columns, empty.
    let out = Command::new(crate::helpers::bin())
        .args(["--store", dir.to_str().unwrap(), "query", "--sql"])
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/golden/../../queries/process_tree.sql"),
        )
        .args(["--format", "jsonl"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn schema_2_segments_read_with_lineage_and_null_root() {
    let dir = fixtures_dir().join("segments/lineage");
    let reader = Reader::open(&dir).unwrap();
    let seg = reader.load(&reader.segments()[0]).unwrap();
    assert_eq!(
        seg.version, 2,
        "the kept lineage fixture must stay a schema 2 segment"
    );
    let procs = seg.processes().unwrap();
    assert!(!procs.is_empty());
    assert!(procs.iter().all(|p| p.process.root.is_none()));
    let events = read_all(&dir);
    assert!(events.iter().all(|e| e.process.is_some()));
}

/// Rotation faster than sealing (tiny segments, as `--max-events 500` on a busy host) must not
/// pile up segments waiting to be sealed — each holds an open database: it once reached 7,000 of
/// them and 3.4 GB. The writer waits for its seals instead (backpressure, like the ring), and
/// every event still ends up sealed, in order.
#[test]
fn segments_waiting_to_be_sealed_stay_bounded_when_rotation_outpaces_sealing() {
    let store = TempStore::new();
    let cfg = RotateConfig {
        max_events: 2,
        batch_events: 2,
        ..RotateConfig::default()
    };
    let mut w = Writer::open(&store.dir, cfg).expect("open");
    let mut most = 0;
    for i in 0..400 {
        w.append(&mut event(i, "/etc/hosts")).expect("append");
        most = most.max(w.seals_waiting());
    }
    assert!(
        most <= open_forensics::store::MAX_SEALS_WAITING,
        "{most} segments waited to be sealed"
    );
    let summary = w.close().expect("close");
    assert_eq!(summary.unsealed, 0);
    let reader = Reader::open(&store.dir).expect("reader");
    let mut seen = Vec::new();
    reader.scan(&TimeRange::default(), |e| {
        seen.push(e.ts_ns);
        ControlFlow::Continue(())
    });
    assert_eq!(seen.len(), 400);
    assert!(seen.windows(2).all(|p| p[0] <= p[1]));
}

/// The id decoding aggregates use (`path_counts`) gives each event's time, op, result, path and
/// comm exactly as the full decoding does, on every fixture schema and in a window that cuts
/// blocks.
#[test]
fn event_ids_decode_as_the_events_do() {
    let key = |ts: i64, op, path: &Str, comm: &Str, ret| {
        (ts, op, path.bytes.to_vec(), comm.bytes.to_vec(), ret)
    };
    let mut compared = 0;
    for scenario in crate::helpers::scenarios() {
        let s = crate::history::fixture_copy(&scenario);
        let r = Reader::open(&s.dir).unwrap();
        for info in r.segments() {
            let seg = r.load(info).unwrap();
            let (first, last) = (info.meta.first_ts_ns, info.meta.last_ts_ns);
            let mid = TimeRange {
                since: first.map(|f| f + (last.unwrap() - f) / 3),
                until: last.map(|l| l - (l - first.unwrap()) / 3),
            };
            for range in [TimeRange::default(), mid] {
                let mut full = Vec::new();
                let flow = seg.for_each_event_in(&range, |e| {
                    full.push(key(e.ts_ns, e.op, &e.path, &e.comm, e.ret));
                    ControlFlow::Continue(())
                });
                assert!(flow.unwrap().is_continue());
                let strings = seg.strings().unwrap();
                let mut ids = Vec::new();
                seg.for_each_ids_in(&range, |block| {
                    let s = |id: u32| &strings[id as usize];
                    for e in block {
                        ids.push(key(e.ts_ns, e.op, s(e.path), s(e.comm), e.ret));
                    }
                })
                .unwrap();
                assert_eq!(ids, full, "{scenario} {}", info.file);
                compared += ids.len();
            }
        }
    }
    assert!(compared > 1000, "only {compared} events compared");
}
