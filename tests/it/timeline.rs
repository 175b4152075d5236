//! `timeline` (issue #28): a 2-second burst inside 163 seconds of quiet stands out at once; the
//! bucket size is checked.

use serde_json::Value;

use crate::helpers::{event, TempStore};
use open_forensics::event::Event;

const SEC: i64 = 1_000_000_000;
/// 2025-11-24T16:00:00Z.
const T0: i64 = 1_764_000_000 * SEC;

/// One event a second for 163 s, and 2000 events (500 failed) in 2 s from second 100.
fn burst_store() -> TempStore {
    let s = TempStore::new();
    let mut events: Vec<Event> = (0..163)
        .map(|i| Event {
            ts_ns: T0 + i * SEC,
            ..event(i, "/var/log/syslog")
        })
        .collect();
    events.extend((0..2000).map(|i| Event {
        ts_ns: T0 + 100 * SEC + i * SEC / 1000,
        ret: if i % 4 == 0 { -13 } else { 3 },
        ..event(i, "/etc/shadow")
    }));
    events.sort_by_key(|e| e.ts_ns);
    s.import(&events);
    s
}

#[test]
fn timeline_shows_a_two_second_burst_in_163_seconds_at_once() {
    let s = burst_store();
    let out = s.ok(&["timeline", "--format", "jsonl"]);
    let buckets: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        buckets.len(),
        33,
        "5 s buckets: the smallest that fits 60 lines"
    );
    let events = |b: &Value| b["events"].as_u64().unwrap();
    let burst = buckets.iter().max_by_key(|b| events(b)).unwrap();
    assert_eq!(burst["start"], "2025-11-24T16:01:40.000000000Z");
    assert_eq!(burst["end"], "2025-11-24T16:01:45.000000000Z");
    assert_eq!(
        (events(burst), burst["failures"].as_u64()),
        (2005, Some(500))
    );
    assert!(buckets
        .iter()
        .filter(|b| b["start"] != burst["start"])
        .all(|b| events(b) <= 5));
    // On a terminal: the burst's bar is the long one, every line fits.
    let out = s
        .cmd(&["timeline", "--format", "table", "--no-pager"])
        .env("COLUMNS", "80")
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("2163 events, 500 failed; one line per 5s\n"),
        "{text}"
    );
    let bar = |l: &str| l.matches('█').count();
    let longest = text.lines().max_by_key(|l| bar(l)).unwrap();
    assert!(longest.starts_with("16:01:40"), "{text}");
    assert!(text.lines().filter(|l| bar(l) > 1).count() == 1, "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
}

#[test]
fn bucket_sizes_are_checked() {
    let s = burst_store();
    let out = s.ok(&["timeline", "--bucket", "1m", "--format", "jsonl"]);
    assert_eq!(out.lines().count(), 3);
    for (bucket, says) in [
        ("0s", "at least 1ms"),
        ("1ms", "make 162001 buckets; at most 100000"),
        ("ten", "invalid duration"),
    ] {
        let out = s.run(&["timeline", "--bucket", bucket]);
        assert_eq!(out.status.code(), Some(2), "{bucket}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{bucket}: {err}");
    }
    let out = s.run(&["timeline", "--since", "2030-01-01"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing is recorded between"));
}
