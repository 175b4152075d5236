//! Issue #29: summaries let readings skip segments and blocks that cannot match — and the answer
//! never changes for it. Every kept fixture is rewritten into a store of many small segments and
//! blocks (so there is something to skip); over it, replay and query through pruned scans must
//! give exactly what full scans give, for every shipped rule set, each rule alone, and filters.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use open_forensics::event::Event;
use open_forensics::need::Need;
use open_forensics::query::replay;
use open_forensics::rules::{Alerter, Filter, RuleSet};
use open_forensics::store::{
    link_of, Reader, RotateConfig, ScanStats, SegmentMeta, TimeRange, Writer,
};

use crate::helpers::{event, fixtures_dir, read_store, scenarios, TempStore};

/// Small segments of small blocks.
fn small() -> RotateConfig {
    RotateConfig {
        max_events: 120,
        max_age: Duration::from_secs(3600),
        batch_events: 16,
        ..RotateConfig::default()
    }
}

/// Writes `events` into about 5 segments of about 4 blocks each.
fn write_store(dir: &Path, events: &[Event]) {
    let per = (events.len() as u64 / 5).max(8);
    let config = RotateConfig {
        max_events: per,
        batch_events: (per as usize / 4).max(2),
        ..small()
    };
    let mut w = Writer::open(dir, config).expect("open writer");
    for e in events {
        w.append(&mut e.clone()).expect("append");
    }
    w.close().expect("close");
}

fn rule_sets() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures_dir().join("rules"))
        .expect("fixtures/rules")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

/// The alert lines of a replay with `need`, and its stats.
fn alert_lines(reader: &Reader, set: &RuleSet, need: &Need) -> (Vec<String>, ScanStats) {
    alert_lines_in(reader, set, need, &TimeRange::default())
}

fn alert_lines_in(
    reader: &Reader,
    set: &RuleSet,
    need: &Need,
    range: &TimeRange,
) -> (Vec<String>, ScanStats) {
    let mut alerter = Alerter::new(set);
    let mut lines = Vec::new();
    let stats = replay::alerts(
        &mut alerter,
        reader,
        range,
        need,
        |_| {},
        |a| {
            lines.push(a.to_json_line());
            ControlFlow::Continue(())
        },
    );
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    (lines, stats)
}

/// The events `query` prints for `set` (as JSON lines) over a scan with `need`, and its stats.
fn query_lines(reader: &Reader, set: &RuleSet, need: &Need) -> (Vec<String>, ScanStats) {
    let mut engine = set.engine();
    let mut lines = Vec::new();
    let stats = reader.scan_where(
        &TimeRange::default(),
        need,
        |_| {},
        |ev| {
            if engine.matches(ev) {
                lines.push(ev.to_json_line());
            }
            ControlFlow::Continue(())
        },
    );
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    (lines, stats)
}

fn skipped(s: &ScanStats) -> u64 {
    s.segments_skipped + s.blocks_skipped
}

#[test]
fn pruned_replay_and_query_equal_full_scans_over_every_fixture_and_rule_set() {
    let mut pruned = 0;
    for sc in scenarios() {
        let events = read_store(&fixtures_dir().join("segments").join(&sc));
        let s = TempStore::new();
        write_store(&s.dir, &events);
        let reader = Reader::open(&s.dir).expect("reader");
        assert!(reader.segments().len() > 1, "{sc}: one segment");
        // What the writer summarized per block, and the seal per segment, is what the events
        // give (what `verify` checks).
        for info in reader.segments() {
            let seg = reader.load(info).expect("load");
            assert_eq!(seg.summary_problems(), Vec::<String>::new(), "{sc}");
            assert!(info.meta.summary.is_some(), "{sc}");
        }
        // The kept fixture as it is (no summaries: nothing to prune, everything read) and the
        // rewritten store (schema 6: summaries everywhere).
        let original = Reader::open(&fixtures_dir().join("segments").join(&sc)).expect("reader");
        for file in rule_sets() {
            let set = RuleSet::load(std::slice::from_ref(&file)).expect("rules load");
            let what = format!("{sc} × {}", file.display());
            for r in [&reader, &original] {
                let (full, _) = alert_lines(r, &set, &Need::all());
                let (some, st) = alert_lines(r, &set, &set.need());
                assert_eq!(some, full, "replay {what}");
                pruned += skipped(&st);
            }
            let (full, _) = query_lines(&reader, &set, &Need::all());
            let (some, st) = query_lines(&reader, &set, &set.need());
            assert_eq!(some, full, "query --rules {what}");
            pruned += skipped(&st);
            for rule in set.rules().iter().filter(|r| r.enabled) {
                let one = set.only(&rule.name).expect("enabled rule");
                let (full, _) = query_lines(&reader, &one, &Need::all());
                let (some, st) = query_lines(&reader, &one, &one.need());
                assert_eq!(some, full, "query --rule {} {what}", rule.name);
                pruned += skipped(&st);
            }
        }
        // Filters by what the fixture holds, and by what it does not.
        let first = &events[0];
        let exe = first
            .process
            .as_ref()
            .and_then(|p| p.exe.as_ref())
            .map(|e| e.lossy().into_owned());
        let filters = [
            Filter {
                path: vec![first.path.lossy().into_owned()],
                ..Filter::default()
            },
            Filter {
                path: vec!["/etc/".into(), "/nonexistent/x".into()],
                failed: true,
                ..Filter::default()
            },
            Filter {
                path: vec!["/usr/lib/**/*.so*".into()],
                ..Filter::default()
            },
            Filter {
                pid: vec![first.pid],
                ..Filter::default()
            },
            Filter {
                uid: vec![0],
                exe: exe.into_iter().collect(),
                ..Filter::default()
            },
        ];
        for f in filters {
            let set = RuleSet::from_filter("query", &f).expect("filter");
            let (full, _) = query_lines(&reader, &set, &Need::all());
            let (some, st) = query_lines(&reader, &set, &set.need());
            assert_eq!(some, full, "query {f:?} over {sc}");
            pruned += skipped(&st);
        }
    }
    assert!(
        pruned > 0,
        "nothing was ever pruned: the test proves nothing"
    );
}

/// 4 segments of 8 blocks of opens by one of 5 processes, and one open of `/rare/file` in one.
fn store_with_one_rare_path() -> (TempStore, Vec<Event>) {
    let s = TempStore::new();
    let mut events: Vec<Event> = (0..480)
        .map(|i| event(i, &format!("/usr/lib/x/{}.so", i % 40)))
        .collect();
    events[300].path = "/rare/file".into();
    events[300].raw_path = "/rare/file".into();
    let config = RotateConfig {
        batch_events: 15,
        ..small()
    };
    let mut w = Writer::open(&s.dir, config).expect("open writer");
    for e in &events {
        w.append(&mut e.clone()).expect("append");
    }
    w.close().expect("close");
    (s, events)
}

/// Throttled rules prune too: a pruned replay is the full scan's alert stream byte for byte —
/// summaries falling due inside skipped segments and blocks, at a recording's end (with its
/// last event's time), across `--since`/`--until` that cut segments and bursts — while most of
/// the store is skipped.
#[test]
fn throttled_replay_prunes_and_equals_the_full_scan() {
    let s = TempStore::new();
    const BASE: i64 = 1_764_000_000_000_000_000;
    let ts = |i: i64| BASE + i * 1_000_000;
    // Shadow reads in bursts (two pids alternating); everything else is a library open.
    // The last one's windows outlast the third recording: their summaries carry its last event's
    // time, in a block no rule matches.
    let bursts = [50..56, 130..133, 420..425, 794..800, 1150..1152, 1180..1184];
    let config = RotateConfig {
        max_events: 100,
        batch_events: 10,
        ..small()
    };
    // Three recordings of 400 events: 4 segments of 10 blocks each, 1 ms apart.
    let mut i = 0;
    for _ in 0..3 {
        let mut w = Writer::open(&s.dir, config.clone()).expect("open writer");
        w.start_recording();
        for _ in 0..400 {
            // A late shadow read (stored after later events, as a reorder past the recorder's
            // window leaves one) by a third pid: it alerts, and the full scan emitted the
            // summary due before it, at a skipped event past its window, first.
            let late = i == 170;
            let shadow = late || bursts.iter().any(|b| b.contains(&i));
            let mut e = event(
                0,
                if shadow {
                    "/etc/shadow"
                } else {
                    "/usr/lib/x.so"
                },
            );
            e.ts_ns = ts(if late { 145 } else { i });
            let pid = if late { 2002 } else { 2000 + (i % 2) as u32 };
            (e.pid, e.tid) = (pid, pid);
            w.append(&mut e).expect("append");
            i += 1;
        }
        w.close().expect("close");
    }
    let reader = Reader::open(&s.dir).expect("reader");
    assert_eq!(reader.segments().len(), 12);
    let rules = s.dir.parent().expect("parent").join("throttled.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: shadow\n    description: shadow read\n    severity: high\n    \
         path: /etc/shadow\n    throttle: {key: [pid], window: 20ms, max: 1}\n",
    )
    .expect("rules");
    let set = RuleSet::load(&[rules]).expect("rules load");
    let ranges = [
        TimeRange::default(),
        // Cutting segments and blocks at both ends.
        TimeRange {
            since: Some(ts(125)),
            until: Some(ts(833)),
        },
        // Ending inside a burst at the end of the second recording, and just after one.
        TimeRange {
            since: None,
            until: Some(ts(797)),
        },
        TimeRange {
            since: Some(ts(421)),
            until: Some(ts(1153)),
        },
    ];
    let (mut skipped_any, mut summaries) = (0, 0);
    for range in &ranges {
        let (full, _) = alert_lines_in(&reader, &set, &Need::all(), range);
        let (pruned, st) = alert_lines_in(&reader, &set, &set.need(), range);
        assert_eq!(pruned, full, "{range:?}");
        skipped_any += skipped(&st);
        summaries += full.iter().filter(|l| l.contains("alert_summary")).count();
    }
    assert!(
        summaries >= 8,
        "only {summaries} summaries: the test proves little"
    );
    // The whole store: of 12 segments, those with a burst and the recordings' last are read
    // (5 and 3, two of them both).
    let (_, st) = alert_lines(&reader, &set, &set.need());
    assert_eq!((st.segments, st.segments_skipped), (6, 6), "{st:?}");
    assert!(skipped_any > 20, "{skipped_any}");
}

#[test]
fn query_path_reads_only_the_segment_and_block_that_can_hold_it() {
    let (s, events) = store_with_one_rare_path();
    let reader = Reader::open(&s.dir).expect("reader");
    assert_eq!(reader.segments().len(), 4);
    let set = RuleSet::from_filter(
        "query",
        &Filter {
            path: vec!["/rare/file".into()],
            ..Filter::default()
        },
    )
    .expect("filter");
    let (lines, st) = query_lines(&reader, &set, &set.need());
    assert_eq!(lines, [events[300].to_json_line()]);
    assert_eq!((st.segments, st.segments_skipped), (1, 3), "{st:?}");
    assert_eq!(st.blocks_skipped, 7, "{st:?}");
    assert_eq!(st.events_scanned, 15);
    // A pid no event has: nothing read at all.
    let none = RuleSet::from_filter(
        "query",
        &Filter {
            pid: vec![4242],
            ..Filter::default()
        },
    )
    .expect("filter");
    let (lines, st) = query_lines(&reader, &none, &none.need());
    assert!(lines.is_empty());
    assert_eq!((st.segments, st.segments_skipped), (0, 4), "{st:?}");
    // The command says the same as the scan.
    let out = s.ok(&["query", "--path", "/rare/file", "--format", "jsonl"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(s.ok(&["verify"]).contains("ok"));
}

/// `--stats` says on stderr what the summaries saved: the rare path's query read one segment
/// of four and one block of eight; `replay` of a rule on it the same and the last block; nothing
/// for a pid no event has.
#[test]
fn stats_say_how_many_segments_and_blocks_the_summaries_skipped() {
    let (s, _) = store_with_one_rare_path();
    let scan = |args: &[&str]| -> serde_json::Value {
        let out = s.run(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find(|l| l.contains(r#""notice":"scan""#))
            .unwrap_or_else(|| panic!("{args:?}: no scan notice in {err}"));
        serde_json::from_str(line).expect("scan notice is JSON")
    };
    let q = scan(&[
        "query",
        "--stats",
        "--path",
        "/rare/file",
        "--format",
        "jsonl",
    ]);
    assert_eq!(q["segments_read"], 1, "{q}");
    assert_eq!(q["segments_skipped"], 3, "{q}");
    assert_eq!(q["blocks_skipped"], 7, "{q}");
    assert_eq!(q["events_decoded"], 15, "{q}");
    let rules = s.dir.parent().expect("parent").join("rare.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: rare\n    description: the rare file\n    severity: low\n    path: [/rare/file]\n",
    )
    .expect("rules");
    let rules = rules.to_str().expect("utf-8");
    // Replay also reads the recording's last block (its alert stream ends there): one more
    // segment, one block of it.
    let r = scan(&["replay", "--stats", "--rules", rules, "--format", "jsonl"]);
    assert_eq!(
        (&r["segments_read"], &r["segments_skipped"]),
        (&2.into(), &2.into()),
        "{r}"
    );
    assert_eq!(r["events_decoded"], 30, "{r}");
    let none = scan(&["query", "--stats", "--pid", "4242", "--format", "jsonl"]);
    assert_eq!(none["segments_read"], 0, "{none}");
    assert_eq!(none["events_decoded"], 0, "{none}");
    // Prose on a table answer; nothing said without --stats.
    let out = s.run(&[
        "query",
        "--stats",
        "--path",
        "/rare/file",
        "--format",
        "csv",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("scan: read 1 of 4 segment(s) in the range (3 ruled out"),
        "{err}"
    );
    let out = s.run(&["query", "--path", "/rare/file", "--format", "jsonl"]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("scan"),
        "{out:?}"
    );
}

/// Rewrites sealed segment `file` as a forger who knows the format would: `sql` run on its
/// database, `edit` on its metadata, the hash and link recomputed so that the file is
/// self-consistent.
fn forge(file: &Path, sql: &str, edit: impl FnOnce(&mut SegmentMeta)) {
    use sha2::Digest;
    let bytes = std::fs::read(file).expect("read segment");
    let len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let tag = b"OFSEG1\n";
    let mut meta: SegmentMeta =
        serde_json::from_slice(&bytes[8 + tag.len()..8 + len]).expect("metadata");
    let tmp = tempfile::tempdir().unwrap();
    let db_path = tmp.path().join("db");
    std::fs::write(&db_path, zstd::decode_all(&bytes[8 + len..]).unwrap()).unwrap();
    let conn = rusqlite::Connection::open(&db_path).unwrap();
    conn.execute_batch(sql).expect("forger's SQL");
    drop(conn);
    let db = std::fs::read(&db_path).unwrap();
    meta.db_bytes = db.len() as u64;
    meta.db_sha256 = Some(
        sha2::Sha256::digest(&db)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    );
    edit(&mut meta);
    meta.link = Some(link_of(&meta));
    let json = serde_json::to_vec(&meta).unwrap();
    let mut out = bytes[..4].to_vec();
    out.extend_from_slice(&((tag.len() + json.len()) as u32).to_le_bytes());
    out.extend_from_slice(tag);
    out.extend_from_slice(&json);
    let mut enc = zstd::Encoder::new(&mut out, 3).unwrap();
    enc.include_checksum(true).unwrap();
    enc.set_pledged_src_size(Some(db.len() as u64)).unwrap();
    enc.include_contentsize(true).unwrap();
    std::io::Write::write_all(&mut enc, &db).unwrap();
    enc.finish().unwrap();
    std::fs::write(file, out).expect("write segment");
}

/// `verify`'s output (exit 1 asserted).
fn verify_fails(s: &TempStore) -> String {
    let v = s.run(&["verify"]);
    assert_eq!(v.status.code(), Some(1), "{v:?}");
    String::from_utf8_lossy(&v.stdout).into_owned() + &String::from_utf8_lossy(&v.stderr)
}

#[test]
fn a_forged_summary_fails_verify_naming_the_segment() {
    let (s, _) = store_with_one_rare_path();
    let reader = Reader::open(&s.dir).expect("reader");
    let segs = reader.segments();
    // The rare path's segment (the third) claims the summary of the last, which lacks it: a
    // `query --path /rare/file` would skip it unread.
    let liar = segs[2].path.clone();
    let other = segs[3].meta.summary.clone();
    assert!(other.is_some() && other != segs[2].meta.summary);
    forge(&liar, "", |m| m.summary = other);
    let out = s.ok(&["query", "--path", "/rare/file", "--format", "jsonl"]);
    assert_eq!(out, "", "the lie hides the event from readings");
    let text = verify_fails(&s);
    let name = liar.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        text.lines()
            .any(|l| l.contains(&name)
                && l.contains("the segment's summary does not match its events")),
        "{text}"
    );
}

/// A string an event refers to, deleted from a segment's table: the reading names the segment,
/// the block and the missing string, prints what it could read, and exits 1.
#[test]
fn a_missing_string_is_named_with_its_block() {
    let (s, _) = store_with_one_rare_path();
    let reader = Reader::open(&s.dir).expect("reader");
    let damaged = reader.segments()[2].path.clone();
    forge(
        &damaged,
        "DELETE FROM strings WHERE id = (SELECT max(id) FROM strings) \
         AND value = CAST('/rare/file' AS BLOB)",
        |_| {},
    );
    let out = s.run(&["query", "--path", "/rare/file", "--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let name = damaged.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        err.lines()
            .any(|l| l.contains(&name) && l.contains("block ") && l.contains(": path: no string ")),
        "{err}"
    );
}

#[test]
fn a_forged_block_summary_fails_verify_naming_the_segment_and_block() {
    let (s, _) = store_with_one_rare_path();
    let reader = Reader::open(&s.dir).expect("reader");
    let liar = reader.segments()[2].path.clone();
    // The rare path's block (the 301st event: block 5 of segment 3) takes its neighbour's
    // summary: the block would be skipped undecoded.
    forge(
        &liar,
        "UPDATE blocks SET summary = (SELECT summary FROM blocks WHERE id = 4) WHERE id = 5",
        |_| {},
    );
    let out = s.ok(&["query", "--path", "/rare/file", "--format", "jsonl"]);
    assert_eq!(out, "", "the lie hides the event from readings");
    let text = verify_fails(&s);
    let name = liar.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        text.lines().any(|l| l.contains(&name)
            && l.contains("block 5's summary does not match its events")),
        "{text}"
    );
}
