//! Crashes leave no unmarked gap (issue #26, part 3): the next recorder names the time no
//! recorder ran, from the last event committed before it to its own start, and every reading of
//! that time says so.

use std::fs;
use std::path::Path;
use std::time::Duration;

use open_forensics::timespec::{format_ts, now_ns};
use serde_json::Value;

use crate::helpers::{cmd_at, live_capture_available, TempStore};
use crate::recorder::Recorder;

/// The `{"warning":"outage"}` objects `export` prints over `[since, until]`, as (from, to).
fn outages(store: &Path, since: i64, until: i64) -> Vec<(String, String)> {
    let out = cmd_at(
        store,
        &[
            "export",
            "--since",
            &format_ts(since),
            "--until",
            &format_ts(until),
        ],
    )
    .output()
    .expect("run export");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    err.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["warning"] == "outage")
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("from"), s("to"))
        })
        .collect()
}

/// Regression (issue #26: each SIGKILL lost the uncommitted tail and nothing recorded that the
/// recorder was down): after a killed recorder, the next one names the outage from the last
/// committed event to its own start, in JSON and in prose.
#[test]
fn a_killed_recorder_leaves_a_named_outage() {
    if !live_capture_available("a_killed_recorder_leaves_a_named_outage") {
        return;
    }
    let s = TempStore::new();
    let rec = Recorder::start(&s, &[]);
    for i in 0..200 {
        let _ = fs::File::open(format!("/of-outage-{}/{i}", std::process::id()));
    }
    std::thread::sleep(Duration::from_millis(1500));
    rec.kill();
    let killed = now_ns();
    std::thread::sleep(Duration::from_millis(2000));
    let before_second = now_ns();
    let rec = Recorder::start(&s, &[]);
    std::thread::sleep(Duration::from_millis(500));
    rec.stop();

    // Over the time between the two recorders: nothing recorded, and that is said.
    let found = outages(&s.dir, killed + 200_000_000, before_second);
    assert_eq!(found.len(), 1, "{found:?}");
    let (from, to) = &found[0];
    assert!(
        from.as_str() <= format_ts(killed).as_str(),
        "outage from {from}, killed at {}",
        format_ts(killed)
    );
    assert!(
        to.as_str() >= format_ts(before_second).as_str(),
        "outage to {to}"
    );
    let out = s.run(&[
        "query",
        "--format",
        "table",
        "--since",
        &format_ts(killed + 200_000_000),
        "--until",
        &format_ts(before_second),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("recorder not running from {from} to {to}")),
        "{err}"
    );
}

/// Regression (issue #26: two short runs stored nothing, and nothing said so): a recorder killed
/// before its first commit leaves nothing, and the next one names the whole time since the last
/// event stored, across the short run.
#[test]
fn a_run_killed_before_its_first_commit_is_inside_a_named_outage() {
    if !live_capture_available("a_run_killed_before_its_first_commit_is_inside_a_named_outage") {
        return;
    }
    let s = TempStore::new();
    let first = Recorder::start(&s, &[]);
    // An outage runs from the last event stored: make sure the first run stores one, even on an
    // idle host (the probes skip only the recorder itself).
    let _ = fs::File::open(format!("/of-outage-first-{}", std::process::id()));
    std::thread::sleep(Duration::from_millis(300));
    first.stop();
    let first_stopped = now_ns();
    let short = Recorder::start(&s, &[]);
    let short_started = now_ns();
    std::thread::sleep(Duration::from_millis(200));
    short.kill();
    let short_killed = now_ns();
    Recorder::start(&s, &[]).stop();

    let found = outages(&s.dir, short_started, short_killed);
    assert_eq!(found.len(), 1, "{found:?}");
    let (from, to) = &found[0];
    assert!(
        from.as_str() <= format_ts(first_stopped).as_str(),
        "{found:?}"
    );
    assert!(to.as_str() >= format_ts(short_killed).as_str(), "{found:?}");
}
