//! History at scale on one host (issue #11): SQL over streamed virtual tables answers exactly what
//! the materialised copy answered, ad-hoc SQL reads and never writes, time windows prune blocks
//! and return exactly their events (boundaries included) on every schema, and a rejected import
//! leaves nothing behind.

use std::path::Path;

use open_forensics::event::Event;
use open_forensics::store::{Reader, RotateConfig, TimeRange, Writer};

use crate::helpers::{bin, event, fixtures_dir, scenarios, write_jsonl, TempStore};

/// A private copy of a fixture store (the reader refuses stores others could write to).
pub(crate) fn fixture_copy(scenario: &str) -> TempStore {
    let s = TempStore::new();
    std::fs::create_dir(&s.dir).expect("mkdir");
    for e in std::fs::read_dir(fixtures_dir().join("segments").join(scenario)).expect("fixture") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), s.dir.join(e.file_name())).expect("copy");
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    s
}

fn named_queries() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures_dir().parent().unwrap().join("queries"))
        .expect("queries/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".sql").map(str::to_owned))
        .collect();
    v.sort();
    v
}

/// `fixtures/expected/sql/<scenario>/<query>.jsonl` were written by the build before the
/// streaming tables (which copied the whole range into an in-memory table and ran the SQL there):
/// every named query must answer the same, byte for byte, over every kept fixture (schemas 1–3).
#[test]
fn named_sql_over_streamed_tables_equals_the_materialised_answers() {
    let bless = std::env::var_os("OPEN_FORENSICS_BLESS").is_some();
    let queries = named_queries();
    assert!(queries.len() >= 8, "{queries:?}");
    let mut checked = 0;
    for scenario in scenarios() {
        let s = fixture_copy(&scenario);
        for q in &queries {
            let got = s.ok(&["query", "--sql", q, "--format", "jsonl"]);
            let golden = fixtures_dir()
                .join("expected/sql")
                .join(&scenario)
                .join(format!("{q}.jsonl"));
            if bless {
                std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
                std::fs::write(&golden, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&golden)
                .unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
            assert_eq!(got, want, "{q} over {scenario}");
            checked += usize::from(!want.is_empty());
        }
    }
    // Most answers are not empty: the comparison compares something.
    assert!(checked >= 25, "only {checked} non-empty answers");
}

/// Events 1 ms apart, written in blocks of `batch` events.
fn store_with_blocks(n: i64, batch: usize) -> (TempStore, Vec<Event>) {
    let s = TempStore::new();
    let config = RotateConfig {
        batch_events: batch,
        ..RotateConfig::default()
    };
    let mut w = Writer::open(&s.dir, config).expect("open store");
    let mut events = Vec::new();
    for i in 0..n {
        let mut e = Event {
            ts_ns: 1_764_000_000_000_000_000 + i * 1_000_000,
            ..event(i, &format!("/srv/data/{}", i % 37))
        };
        w.append(&mut e).expect("append");
        events.push(e);
    }
    w.close().expect("close");
    (s, events)
}

fn count_between(events: &[Event], lo: i64, hi: i64) -> usize {
    events
        .iter()
        .filter(|e| e.ts_ns >= lo && e.ts_ns <= hi)
        .count()
}

/// A window decodes only the blocks it overlaps, and returns exactly its events: first and last
/// event of a block, a window inside one block, across blocks, and outside everything.
#[test]
fn a_time_window_decodes_only_its_blocks_and_returns_exactly_its_events() {
    let (s, events) = store_with_blocks(1000, 100);
    let t = |i: usize| events[i].ts_ns;
    let reader = Reader::open(&s.dir).expect("reader");
    let seg = reader.load(&reader.segments()[0]).expect("load");
    assert_eq!(seg.block_counts().unwrap().len(), 10);
    let windows = [
        (t(100), t(199)),         // exactly one block
        (t(199), t(200)),         // the last event of one block and the first of the next
        (t(150), t(150)),         // one event
        (t(150) + 1, t(151) - 1), // between two events: nothing
        (t(0) - 5, t(0)),         // the store's first event
        (t(999), t(999) + 5),     // its last
        (t(250), t(749)),
    ];
    for (lo, hi) in windows {
        let range = TimeRange {
            since: Some(lo),
            until: Some(hi),
        };
        // Structural: only the blocks whose time range overlaps are selected for decoding.
        let blocks = seg.blocks_in(&range).expect("blocks");
        let want_blocks = (0..10)
            .filter(|b| t(b * 100 + 99) >= lo && t(b * 100) <= hi)
            .count();
        assert_eq!(blocks.len(), want_blocks, "{lo}..{hi}");
        let want = count_between(&events, lo, hi);
        // Through the reader (what query and replay use)…
        let mut got = Vec::new();
        reader.scan(&range, |e| {
            got.push(e.ts_ns);
            std::ops::ControlFlow::Continue(())
        });
        assert_eq!(got.len(), want, "scan {lo}..{hi}");
        assert!(got.iter().all(|&ts| ts >= lo && ts <= hi));
        // …through SQL bounds pushed into the virtual table…
        let sql = format!("SELECT count(*) AS n FROM events WHERE ts_ns >= {lo} AND ts_ns <= {hi}");
        let out = s.ok(&["query", "--sql", &sql, "--format", "csv"]);
        assert_eq!(out, format!("n\r\n{want}\r\n"), "{sql}");
        let sql = format!("SELECT count(*) AS n FROM events WHERE ts_ns BETWEEN {lo} AND {hi}");
        let out = s.ok(&["query", "--sql", &sql, "--format", "csv"]);
        assert_eq!(out, format!("n\r\n{want}\r\n"), "{sql}");
        // …and through --since/--until.
        let (since, until) = (
            open_forensics::timespec::format_ts(lo),
            open_forensics::timespec::format_ts(hi),
        );
        let out = s.ok(&[
            "query", "--since", &since, "--until", &until, "--format", "jsonl",
        ]);
        assert_eq!(out.lines().count(), want, "--since {since} --until {until}");
    }
    // Strict bounds, equality and a bound SQLite cannot push down (text) answer exactly too.
    let sql = format!(
        "SELECT count(*) AS n FROM events WHERE ts_ns > {} AND ts_ns < {}",
        t(199),
        t(300)
    );
    assert_eq!(
        s.ok(&["query", "--sql", &sql, "--format", "csv"]),
        "n\r\n100\r\n"
    );
    let sql = format!("SELECT count(*) AS n FROM events WHERE ts_ns = {}", t(421));
    assert_eq!(
        s.ok(&["query", "--sql", &sql, "--format", "csv"]),
        "n\r\n1\r\n"
    );
    let sql = format!(
        "SELECT count(*) AS n FROM events WHERE ts_ns >= '{}' AND ts_ns > {}.5",
        t(10),
        t(900)
    );
    assert_eq!(
        s.ok(&["query", "--sql", &sql, "--format", "csv"]),
        "n\r\n99\r\n"
    );
}

/// `seq` names an event whatever the window: a pushed-down bound does not renumber.
#[test]
fn seq_is_the_same_inside_and_outside_a_window() {
    let (s, events) = store_with_blocks(600, 64);
    let all = s.ok(&[
        "query",
        "--sql",
        "SELECT seq, ts_ns FROM events",
        "--format",
        "csv",
    ]);
    let lo = events[333].ts_ns;
    let sql = format!("SELECT seq, ts_ns FROM events WHERE ts_ns >= {lo}");
    let part = s.ok(&["query", "--sql", &sql, "--format", "csv"]);
    let all: Vec<&str> = all.lines().skip(1).collect();
    let part: Vec<&str> = part.lines().skip(1).collect();
    assert_eq!(all.len(), 600);
    assert_eq!(part, all[333..].to_vec());
}

/// Old-schema segments (the kept fixtures: schemas 1 and 2) answer windows exactly too.
#[test]
fn windows_over_old_schema_fixtures_are_exact() {
    for scenario in scenarios() {
        let s = fixture_copy(&scenario);
        let ts: Vec<i64> = s
            .ok(&[
                "query",
                "--sql",
                "SELECT ts_ns FROM events",
                "--format",
                "csv",
            ])
            .lines()
            .skip(1)
            .map(|l| l.trim().parse().expect("ts_ns"))
            .collect();
        assert!(ts.len() > 10, "{scenario}");
        let mut sorted = ts.clone();
        sorted.sort_unstable();
        let (lo, hi) = (sorted[ts.len() / 4], sorted[ts.len() / 2]);
        let want = ts.iter().filter(|&&t| t >= lo && t <= hi).count();
        let sql = format!("SELECT count(*) AS n FROM events WHERE ts_ns BETWEEN {lo} AND {hi}");
        assert_eq!(
            s.ok(&["query", "--sql", &sql, "--format", "csv"]),
            format!("n\r\n{want}\r\n"),
            "{scenario}"
        );
        let (since, until) = (
            open_forensics::timespec::format_ts(lo),
            open_forensics::timespec::format_ts(hi),
        );
        let out = s.ok(&["export", "--since", &since, "--until", &until]);
        assert_eq!(out.lines().count(), want, "{scenario}: export window");
    }
}

fn store_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("store")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Ad-hoc SQL runs over `events`, `processes` and `losses`; anything but one read-only SELECT is
/// refused with exit 2, and the store is byte for byte what it was.
#[test]
fn ad_hoc_sql_reads_and_refuses_to_write() {
    let s = fixture_copy("lineage");
    let out = s.ok(&[
        "query",
        "--sql",
        "SELECT count(*) AS n, count(DISTINCT e.image) AS images FROM events e JOIN processes p ON p.image = e.image",
        "--format",
        "jsonl",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert!(v["n"].as_i64().unwrap() > 0, "{out}");
    assert_eq!(
        s.ok(&[
            "query",
            "--sql",
            "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
            "--format",
            "csv"
        ]),
        "a\r\n1\r\n"
    );
    assert_eq!(
        s.ok(&[
            "query",
            "--sql",
            "SELECT count(*) AS n FROM losses",
            "--format",
            "csv"
        ]),
        "n\r\n0\r\n"
    );
    let before = store_bytes(&s.dir);
    let outside = s.path("created-by-sql.db");
    let attach = format!("ATTACH '{}' AS x", outside.display());
    for bad in [
        "DELETE FROM losses",
        "INSERT INTO losses VALUES (1, 2, 3, 'x')",
        "DROP VIEW events_v",
        "PRAGMA query_only = OFF",
        attach.as_str(),
        "SELECT 1; DELETE FROM losses",
        "WITH x AS (SELECT 1) DELETE FROM losses",
        "UPDATE events SET path = 'x'",
        "CREATE TABLE t (x)",
    ] {
        let out = s.run(&["query", "--sql", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ad-hoc"), "{bad}: {err}");
        assert!(out.stdout.is_empty(), "{bad}");
    }
    assert!(!outside.exists());
    assert_eq!(store_bytes(&s.dir), before);
    // A statement that does not prepare is the user's to fix, too.
    let out = s.run(&["query", "--sql", "SELECT nope FROM events"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Issue #11: a file with a bad line in the middle (after more events than one transaction
/// holds) is refused with its line number, and nothing of it becomes visible.
#[test]
fn import_of_a_file_with_a_bad_middle_line_leaves_nothing() {
    let s = TempStore::new();
    s.import(&[event(0, "/etc/already-there")]);
    let before = store_bytes(&s.dir);
    let events: Vec<Event> = (1..20_001).map(|i| event(i, "/srv/x")).collect();
    let file = s.path("bad.jsonl");
    write_jsonl(&file, &events);
    let mut text = std::fs::read_to_string(&file).unwrap();
    let at = text.match_indices('\n').nth(14_999).unwrap().0 + 1;
    text.insert_str(at, "{\"ts\": \"not a time\"}\n");
    std::fs::write(&file, text).unwrap();
    let out = s.run(&["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:15001:"), "{err}");
    assert_eq!(store_bytes(&s.dir), before);
    assert_eq!(s.ok(&["export"]).lines().count(), 1);

    // The same file, good, through stdin: every event.
    write_jsonl(&file, &events);
    let out = s
        .cmd(&["import", "-"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(s.ok(&["export"]).lines().count(), 20_001);
}

/// A line longer than the import bound is refused by number, before anything is written.
#[test]
fn import_refuses_an_overlong_line() {
    let s = TempStore::new();
    let file = s.path("long.jsonl");
    let mut text = event(0, "/a").to_json_line();
    text.push('\n');
    text.push_str(&"x".repeat(17 << 20));
    text.push('\n');
    std::fs::write(&file, text).unwrap();
    let out = s.run(&["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("long.jsonl:2: longer than"));
    assert!(!s.dir.exists() || s.ok(&["export"]).is_empty());
}

/// `--no-pager` is accepted everywhere answers are printed; off a terminal no pager runs anyway.
#[test]
fn no_pager_flag_and_no_pager_off_a_terminal() {
    let (s, _) = store_with_blocks(50, 10);
    let out = std::process::Command::new(bin())
        .arg("--store")
        .arg(&s.dir)
        .args(["query", "--format", "table", "--no-pager"])
        .env("PAGER", "false")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("/srv/data/1"));
    let rules = fixtures_dir().join("rules/poc.yaml");
    let out = s.run(&[
        "replay",
        "--rules",
        rules.to_str().unwrap(),
        "--no-pager",
        "--format",
        "table",
    ]);
    assert!(out.status.success(), "{out:?}");
}

/// On a terminal the answer goes through `$PAGER` (here a `sed` that marks each line), and
/// `--no-pager` prints it straight. `script` provides the terminal.
#[test]
fn a_terminal_answer_goes_through_the_pager() {
    if !Path::new("/usr/bin/script").exists() {
        crate::helpers::skip(
            "a_terminal_answer_goes_through_the_pager",
            "no /usr/bin/script (apt-get install bsdutils)",
        );
        return;
    }
    let s = fixture_copy("attack");
    let run = |extra: &str| {
        let cmd = format!(
            "stty cols 200; {} --store {} query --sql top_paths --limit 3 {extra}",
            bin().display(),
            s.dir.display()
        );
        let out = std::process::Command::new("/usr/bin/script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("PAGER", "sed s/^/PAGED:/")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("script");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let paged = run("");
    let lines: Vec<&str> = paged.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 5, "{paged}");
    assert!(lines.iter().all(|l| l.starts_with("PAGED:")), "{paged}");
    assert!(paged.contains("authorized_keys"), "{paged}");
    let straight = run("--no-pager");
    assert!(!straight.contains("PAGED:"), "{straight}");
    assert!(straight.contains("authorized_keys"), "{straight}");
}

/// `processes` is one row per image across segments, its exit taken from the segment that saw
/// it, and `losses` holds the range's loss records, with the incompleteness notice on stderr: as
/// the materialised tables had them.
#[test]
fn processes_merge_across_segments_and_losses_are_reported() {
    use open_forensics::process::Process;
    use std::sync::Arc;
    let s = TempStore::new();
    let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("open");
    let first = event(1, "/srv/a");
    let p = Arc::new(Process::from_event(
        4242,
        first.ts_ns - 1_000,
        1,
        "worker".into(),
        1000,
        1000,
    ));
    let mut e = Event {
        pid: 4242,
        process: Some(p.clone()),
        ..first
    };
    w.append(&mut e).expect("append");
    w.seal_active().expect("seal");
    let mut e = Event {
        pid: 4242,
        process: Some(p.clone()),
        ..event(2, "/srv/b")
    };
    w.append(&mut e).expect("append");
    w.record_exit(&p, 3 << 8, e.ts_ns + 5).expect("exit");
    w.record_loss(open_forensics::store::Loss {
        start_ns: e.ts_ns,
        end_ns: e.ts_ns + 10,
        count: 7,
        reason: "ringbuf_full".into(),
    })
    .expect("loss");
    w.close().expect("close");
    assert!(Reader::open(&s.dir).unwrap().segments().len() >= 2);

    let out = s.run(&[
        "query",
        "--sql",
        "SELECT count(*) AS n, max(exit_code) AS code, \
         (SELECT count(*) FROM events e JOIN processes q ON q.image = e.image) AS joined, \
         (SELECT sum(count) FROM losses) AS lost FROM processes WHERE pid = 4242",
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "n,code,joined,lost\r\n1,3,2,7\r\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: incomplete: 7 events were lost"),
        "{err}"
    );
}
