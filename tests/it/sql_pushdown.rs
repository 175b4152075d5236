//! SQL pushdown (issue #29): constraints pushed into the `events` cursor return exactly the rows
//! of the same statement with nothing pushed, on every kept fixture (every schema); they hand
//! SQLite fewer rows; and `path_counts` groups exactly as `GROUP BY` over `events` does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use open_forensics::event::Event;
use open_forensics::query::{Limits, Session};
use open_forensics::store::{Reader, RotateConfig, TimeRange, Writer};

use crate::helpers::{event, scenarios};
use crate::history::fixture_copy;

fn jsonl(s: &crate::helpers::TempStore, sql: &str) -> String {
    s.ok(&["query", "--sql", sql, "--format", "jsonl"])
}

/// `x || ''` and `x + 0` are expressions, not columns: SQLite cannot push them, so the second
/// statement of each pair is the unpushed answer.
#[test]
fn pushed_down_constraints_return_the_rows_of_the_unpushed_statement() {
    let mut compared = 0;
    for scenario in scenarios() {
        let s = fixture_copy(&scenario);
        // Values the scenario holds: its first event's, and its failed opens' errno names.
        let first = jsonl(
            &s,
            "SELECT path, pid, comm, uid, exe, user, op FROM events ORDER BY seq LIMIT 1",
        );
        let Some(first) = first.lines().next() else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(first).unwrap();
        let text = |k: &str| match &v[k] {
            serde_json::Value::String(s) => format!("'{}'", s.replace('\'', "''")),
            _ => "NULL".to_owned(),
        };
        let (path, comm, exe, user, op) = (
            text("path"),
            text("comm"),
            text("exe"),
            text("user"),
            text("op"),
        );
        let (pid, uid) = (v["pid"].clone(), v["uid"].clone());
        let cols = "seq, ts_ns, op, path, pid, comm, uid, exe, result";
        let pairs = [
            (format!("path = {path}"), format!("path || '' = {path}")),
            (
                format!("path IN ({path}, '/etc/shadow', '/etc/passwd')"),
                format!("path || '' IN ({path}, '/etc/shadow', '/etc/passwd')"),
            ),
            (
                format!("op = {op} AND pid = {pid} AND comm = {comm}"),
                format!("op || '' = {op} AND pid + 0 = {pid} AND comm || '' = {comm}"),
            ),
            (format!("exe = {exe}"), format!("exe || '' = {exe}")),
            (format!("user = {user}"), format!("user || '' = {user}")),
            (format!("uid = {uid}"), format!("uid + 0 = {uid}")),
            // Another type: SQLite converts it by the column's affinity; the pushdown keeps rows.
            (format!("pid = '{pid}'"), format!("pid + 0 = {pid}")),
            (format!("uid = {uid}.0"), format!("uid + 0 = {uid}")),
            (
                "result IN ('ENOENT', 'EACCES')".into(),
                "result || '' IN ('ENOENT', 'EACCES')".into(),
            ),
            // Another collation: the pushdown must not compare bytes.
            (
                format!("path = upper({path}) COLLATE NOCASE"),
                format!("path || '' = upper({path}) COLLATE NOCASE"),
            ),
            // A subquery's list, and NULL in a list.
            (
                "path IN (SELECT path FROM events WHERE ret < 0)".into(),
                "path || '' IN (SELECT path FROM events WHERE ret < 0)".into(),
            ),
            ("pid IN (NULL, 1)".into(), "pid + 0 IN (NULL, 1)".into()),
        ];
        for (pushed, plain) in pairs {
            let a = jsonl(
                &s,
                &format!("SELECT {cols} FROM events WHERE {pushed} ORDER BY seq"),
            );
            let b = jsonl(
                &s,
                &format!("SELECT {cols} FROM events WHERE {plain} ORDER BY seq"),
            );
            assert_eq!(a, b, "{scenario}: {pushed}");
            compared += usize::from(!a.is_empty());
        }
        // A join on image pushes nothing into the inner scan, and still answers the same.
        let a = jsonl(
            &s,
            &format!(
                "SELECT e.seq, p.exe FROM events e JOIN processes p ON p.image = e.image \
                 WHERE e.comm = {comm} ORDER BY e.seq"
            ),
        );
        let b = jsonl(
            &s,
            &format!(
                "SELECT e.seq, p.exe FROM events e JOIN processes p ON p.image = e.image \
                 WHERE e.comm || '' = {comm} ORDER BY e.seq"
            ),
        );
        assert_eq!(a, b, "{scenario}: join");
    }
    // The comparisons compare rows, not empty answers.
    assert!(compared >= 40, "only {compared} non-empty answers");
}

/// `path_counts` is `GROUP BY op, path, comm` over `events`, whole and in a window.
#[test]
fn path_counts_equal_group_by_over_events() {
    for scenario in scenarios() {
        let s = fixture_copy(&scenario);
        for window in [&[][..], &["--since", "2000-01-01T00:00:00Z"][..]] {
            let run = |sql: &str| {
                let mut args = vec!["query", "--sql", sql, "--format", "jsonl"];
                args.extend_from_slice(window);
                s.ok(&args)
            };
            let a = run(
                "SELECT op, path, comm, events, failed, first_ts_ns, last_ts_ns, \
                         first_ts, last_ts FROM path_counts ORDER BY op, path, comm",
            );
            let b = run(
                "SELECT op, path, comm, count(*) AS events, sum(ret < 0) AS failed, \
                         min(ts_ns) AS first_ts_ns, max(ts_ns) AS last_ts_ns, \
                         min(ts) AS first_ts, max(ts) AS last_ts \
                         FROM events GROUP BY op, path, comm ORDER BY op, path, comm",
            );
            assert_eq!(a, b, "{scenario} {window:?}");
        }
    }
}

/// A writer of segments of 1000 events in blocks of 100.
fn small_segments(s: &crate::helpers::TempStore) -> Writer {
    let config = RotateConfig {
        max_events: 1000,
        batch_events: 100,
        ..RotateConfig::default()
    };
    Writer::open(&s.dir, config).expect("open store")
}

/// Over many segments `path_counts` is counted two segments at a time: its groups are still
/// `GROUP BY op, path, comm` over `events` (the same path and comm merged across segments, whole
/// and in a window that cuts segments), and it hands rows over sorted by op, path and comm.
#[test]
fn path_counts_over_many_segments_counted_in_parallel_equal_group_by() {
    let s = crate::helpers::TempStore::new();
    let mut w = small_segments(&s);
    let n = 12_345;
    for i in 0..n {
        let mut e: Event = event(i, &format!("/srv/data/{}", i % 37));
        e.comm = ["cat", "sed", "vim"][(i % 3) as usize].into();
        if i % 11 == 0 {
            e.ret = -2;
        }
        if i % 5 == 0 {
            e.op = open_forensics::event::Op::Unlink;
        }
        w.append(&mut e).expect("append");
    }
    w.close().expect("close");
    let segments = std::fs::read_dir(&s.dir).expect("store").count();
    assert!(
        segments >= 12,
        "{segments} files: the test needs many segments"
    );
    // Mid-way through the fourth segment to mid-way through the ninth.
    let ts = |i: i64| event(i, "").ts_ns;
    let since = open_forensics::timespec::format_ts(ts(3_500));
    let until = open_forensics::timespec::format_ts(ts(8_700));
    for window in [&[][..], &["--since", &*since, "--until", &*until][..]] {
        let run = |sql: &str| {
            let mut args = vec!["query", "--sql", sql, "--format", "jsonl"];
            args.extend_from_slice(window);
            s.ok(&args)
        };
        let counted =
            run("SELECT op, path, comm, events, failed, first_ts_ns, last_ts_ns FROM path_counts");
        let grouped = run(
            "SELECT op, path, comm, count(*) AS events, sum(ret < 0) AS failed, \
                     min(ts_ns) AS first_ts_ns, max(ts_ns) AS last_ts_ns \
                     FROM events GROUP BY op, path, comm ORDER BY op, path, comm",
        );
        assert_eq!(counted, grouped, "{window:?}");
        assert_eq!(counted.lines().count(), 2 * 37 * 3, "{window:?}");
    }
}

/// Rows SQLite is handed, counted by the session's progress callback (one call per
/// `PROGRESS_EVERY` rows): a pushed `path = ?` hands over only its path's events, the same
/// statement unpushed every event — and both count the same.
#[test]
fn a_pushed_constraint_hands_sqlite_only_the_rows_that_can_match() {
    let s = crate::helpers::TempStore::new();
    let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("open store");
    let n = 5 * open_forensics::query::PROGRESS_EVERY as i64;
    for i in 0..n {
        let mut e: Event = event(i, &format!("/srv/data/{}", i % 37));
        w.append(&mut e).expect("append");
    }
    w.close().expect("close");
    let rows_handed = |sql: &str| {
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let session = Session::open(
            Reader::open(&s.dir).expect("reader"),
            TimeRange::default(),
            Limits::default(),
            Box::new(move || {
                c.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .expect("session");
        let answer = session
            .run(
                "t",
                sql,
                None,
                |_| Ok(Vec::new()),
                |out, row| {
                    out.push(row);
                    Ok(())
                },
            )
            .expect("run");
        (answer.sink, calls.load(Ordering::Relaxed))
    };
    let (pushed, pushed_calls) =
        rows_handed("SELECT count(*) FROM events WHERE path = '/srv/data/5'");
    let (plain, plain_calls) =
        rows_handed("SELECT count(*) FROM events WHERE path || '' = '/srv/data/5'");
    assert_eq!(pushed, plain);
    assert_eq!(pushed[0][0], serde_json::json!((n + 36 - 5) / 37));
    assert_eq!(pushed_calls, 0, "a pushed path hands over 1/37 of the rows");
    assert!(plain_calls >= 4, "{plain_calls}");
}

/// Segments whose summaries rule out a pushed `path =`, `pid IN` or `op =` are not read; the
/// answer is the unpushed statement's.
#[test]
fn summaries_skip_the_segments_a_pushed_constraint_rules_out() {
    let s = crate::helpers::TempStore::new();
    let mut w = small_segments(&s);
    for i in 0..20_000 {
        let path = if i == 17_345 {
            "/etc/rare".to_owned()
        } else {
            format!("/srv/{}", i % 37)
        };
        let mut e: Event = event(i, &path);
        if i == 17_345 {
            e.pid = 4242;
        }
        w.append(&mut e).expect("append");
    }
    w.close().expect("close");
    let answer = |sql: &str| {
        let session = Session::open(
            Reader::open(&s.dir).expect("reader"),
            TimeRange::default(),
            Limits::default(),
            Box::new(|| {}),
        )
        .expect("session");
        let rows = session
            .run(
                "t",
                sql,
                None,
                |_| Ok(Vec::new()),
                |out, row| {
                    out.push(row);
                    Ok(())
                },
            )
            .expect("run")
            .sink;
        (rows, session.stats())
    };
    for (pushed, plain) in [
        ("path = '/etc/rare'", "path || '' = '/etc/rare'"),
        ("pid IN (4242, 99999)", "pid + 0 IN (4242, 99999)"),
        ("op = 'rename'", "op || '' = 'rename'"),
    ] {
        let (a, st) = answer(&format!("SELECT seq, path FROM events WHERE {pushed}"));
        let (b, plain_st) = answer(&format!("SELECT seq, path FROM events WHERE {plain}"));
        assert_eq!(a, b, "{pushed}");
        assert_eq!(plain_st.segments_skipped, 0);
        assert_eq!(plain_st.segments, 20, "{plain}");
        // Bloom filters may let a segment through; nearly all are skipped.
        assert!(st.segments_skipped >= 15, "{pushed}: {st:?}");
        assert_eq!(st.segments + st.segments_skipped, 20, "{pushed}");
    }
}
