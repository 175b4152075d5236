//! A full disk is never a silent hole (issue #26, part 2): on a small tmpfs filled behind the
//! recorder's back, every lost event is counted in a stored loss record, the records name the
//! time the disk was full, `--duration` and SIGTERM are honoured, the summary is printed and no
//! active database is left behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{cmd_at, live_capture_available, Tmpfs};
use crate::recorder::Recorder;

/// Opens (and fails to open: the directory does not exist) `n` unique paths `PREFIX/I`; returns
/// them.
fn open_counted(prefix: &str, n: usize) -> Vec<String> {
    let paths: Vec<String> = (0..n).map(|i| format!("{prefix}/{i}")).collect();
    for p in &paths {
        let _ = fs::File::open(p);
    }
    paths
}

/// Opens nonexistent files as fast as it can until told to stop: the load under which the store
/// thread must keep pace while the disk is full.
struct Load {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(prefix: String) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                let _ = fs::File::open(format!("{prefix}/{i}"));
                i += 1;
            }
        });
        Load {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn of(store: &Path, args: &[&str]) -> Output {
    cmd_at(store, args).output().expect("run open-forensics")
}

/// Sum of the stored loss records' counts by reason (alert drops left out).
fn stored_losses(store: &Path) -> (u64, u64) {
    let out = of(
        store,
        &[
            "query",
            "--sql",
            "SELECT reason, sum(count) AS n FROM losses GROUP BY reason",
            "--format",
            "jsonl",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let (mut disk_full, mut all) = (0, 0);
    for v in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let reason = v["reason"].as_str().unwrap_or_default().to_owned();
        let n = v["n"].as_u64().unwrap_or(0);
        if reason == "disk_full" {
            disk_full += n;
        }
        if !reason.starts_with("alert_dropped") {
            all += n;
        }
    }
    (disk_full, all)
}

/// `lost N` of the summary line.
fn summary_lost(text: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.contains("open-forensics: recorded "))
        .unwrap_or_else(|| panic!("no summary line: {text}"));
    line.split("lost ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lost count in {line}"))
}

fn leftovers(store: &Path) -> Vec<String> {
    fs::read_dir(store)
        .expect("read the store")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".active.db") || n == "reserve")
        .collect()
}

fn stored_paths(store: &Path, prefix: &str) -> std::collections::HashSet<String> {
    let out = of(store, &["export"]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["path"].as_str().map(str::to_owned))
        .filter(|p| p.starts_with(prefix))
        .collect()
}

/// Regression (issue #26: 4,656,456 lost events counted, loss records stored for 497,087, and a
/// query over the full minutes answering "0 events, 0 losses"): after the disk frees, every open
/// is either stored or counted in a stored `disk_full` record, the summary's lost count is
/// exactly what the loss records hold, and a query over the full time says it is incomplete.
#[test]
fn a_full_disk_is_no_silent_hole() {
    if !live_capture_available("a_full_disk_is_no_silent_hole") {
        return;
    }
    let fs_ = Tmpfs::mount("16m");
    let store = fs_.dir.path().join("store");
    let prefix = format!("/of-diskfull-{}", std::process::id());
    let mut rec = Recorder::start_cmd(cmd_at(&store, &["record"]));
    let before = open_counted(&format!("{prefix}/before"), 2000);
    std::thread::sleep(Duration::from_millis(1500));

    let filler = fs_.fill();
    let full_from = open_forensics::timespec::now_ns();
    let full = open_counted(&format!("{prefix}/full"), 5000);
    std::thread::sleep(Duration::from_millis(2500));
    let full_to = open_forensics::timespec::now_ns();
    assert!(rec.running(), "the recorder died on a full disk");
    fs::remove_file(&filler).expect("remove the filler");
    assert!(
        rec.wait_line("space returned", Duration::from_secs(10))
            .is_some(),
        "the recorder never saw space return"
    );
    let after = open_counted(&format!("{prefix}/after"), 2000);
    std::thread::sleep(Duration::from_millis(1500));
    let text = rec.stop();

    let have = stored_paths(&store, &prefix);
    for (phase, opens) in [("before", &before), ("after", &after)] {
        let missing = opens.iter().filter(|p| !have.contains(*p)).count();
        assert_eq!(
            missing, 0,
            "{missing} opens {phase} the full disk are missing\n{text}"
        );
    }
    let stored_full = full.iter().filter(|p| have.contains(*p)).count() as u64;
    let (disk_full, all) = stored_losses(&store);
    // Every loss counts the host's opens, not only ours: at least ours are in it.
    assert!(
        stored_full + disk_full >= full.len() as u64,
        "{} opens while full: {stored_full} stored, {disk_full} counted lost\n{text}",
        full.len()
    );
    assert!(disk_full > 0, "no disk_full loss stored\n{text}");
    assert_eq!(
        summary_lost(&text),
        all,
        "the summary's lost count is not what the loss records hold\n{text}"
    );
    // On a loaded host the seal backlog can fill this 16 MB disk again after it freed (seen in
    // CI: nine active databases): what could not be sealed stays, complete and committed, and
    // the next recorder seals it first. Never lost, never left for good.
    if !leftovers(&store).is_empty() {
        Recorder::start_cmd(cmd_at(&store, &["record"])).stop();
        assert_eq!(
            leftovers(&store),
            Vec::<String>::new(),
            "the next recorder did not seal what was left"
        );
        let have = stored_paths(&store, &prefix);
        assert!(before.iter().chain(&after).all(|p| have.contains(p)));
    }

    // A reading of the full time alone names the loss (it is in a segment of its own).
    let ts = |ns: i64| open_forensics::timespec::format_ts(ns);
    let out = of(
        &store,
        &[
            "export",
            "--since",
            &ts(full_from + 500_000_000),
            "--until",
            &ts(full_to),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let incomplete: Vec<Value> = err
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["warning"] == "incomplete")
        .collect();
    assert_eq!(
        incomplete.len(),
        1,
        "no incomplete warning over the full time: {err}"
    );
    assert!(incomplete[0]["lost"].as_u64() > Some(0), "{err}");
}

/// Starts a recorder on a fresh 16 MB tmpfs, then fills it under load; returns the recorder, the
/// tmpfs, the load and the store.
fn record_onto_a_full_disk(extra: &[&str]) -> (Recorder, Tmpfs, Load, PathBuf, Instant) {
    let fs_ = Tmpfs::mount("16m");
    let store = fs_.dir.path().join("store");
    let mut args = vec!["record"];
    args.extend_from_slice(extra);
    let rec = Recorder::start_cmd(cmd_at(&store, &args));
    let attached = Instant::now();
    let load = Load::start(format!("/of-diskfull-load-{}", std::process::id()));
    std::thread::sleep(Duration::from_millis(1200));
    fs_.fill();
    (rec, fs_, load, store, attached)
}

/// Regression (issue #26: `--duration 75s` ran 383.7 s on a full disk): the recorder stops
/// within about a second of its duration however full the disk, prints its summary and leaves
/// every loss named and nothing active.
#[test]
fn duration_is_honoured_with_the_disk_full() {
    if !live_capture_available("duration_is_honoured_with_the_disk_full") {
        return;
    }
    let (mut rec, _fs, load, store, attached) = record_onto_a_full_disk(&["--duration", "5s"]);
    let done = rec.wait_line("open-forensics: recorded ", Duration::from_secs(30));
    let took = attached.elapsed();
    drop(load);
    let line = done.expect("no summary line");
    // The old build took 20.7 s here (and 383.7 s for 75 s): a bound well short of that, with
    // room for a loaded CI host (the point is a stop within a second of the disk's state, which
    // the summary's timing shows on a quiet one).
    assert!(
        took < Duration::from_secs(12),
        "--duration 5s took {took:?} on a full disk"
    );
    let status = rec.wait();
    assert!(status.success(), "exit {status}: {line}");
    assert_eq!(leftovers(&store), Vec::<String>::new());
    let (disk_full, all) = stored_losses(&store);
    assert!(disk_full > 0);
    assert_eq!(summary_lost(&line), all, "{line}");
}

/// Regression (issue #26: with the disk persistently full the first SIGTERM was ignored, the
/// second exited 1 with no summary and the active database left behind): the first SIGTERM
/// ends the recording within a second, with the summary, exit 0 and nothing left active.
#[test]
fn sigterm_with_the_disk_full_ends_with_the_summary() {
    if !live_capture_available("sigterm_with_the_disk_full_ends_with_the_summary") {
        return;
    }
    let (mut rec, _fs, load, store, _) = record_onto_a_full_disk(&[]);
    std::thread::sleep(Duration::from_millis(2500));
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(rec.pid() as i32, libc::SIGTERM) };
    let done = rec.wait_line("open-forensics: recorded ", Duration::from_secs(30));
    let took = sent.elapsed();
    drop(load);
    let line = done.expect("no summary line after SIGTERM");
    // Guards against a stop that waits on the full disk. The bound is wide because the parallel
    // suite loads both cores (1.5 s failed at load 10): how fast the stop is on a quiet machine
    // is a figure for a benchmark, not for a timed test.
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    let status = rec.wait();
    assert!(status.success(), "exit {status}: {line}");
    assert_eq!(leftovers(&store), Vec::<String>::new());
    let (_, all) = stored_losses(&store);
    assert_eq!(summary_lost(&line), all, "{line}");
}

/// Regression (seen as a flaky `a_full_disk_is_no_silent_hole`: "0000000001.seg.zst: tampered:
/// changed by another process while it was being recorded"): a COMMIT that the full disk refuses
/// after SQLite ran the commit hook is rolled back at once; the rows of that transaction must
/// not count in the writer's witness, or the segment is sealed as tampered though nobody
/// touched it.
#[test]
fn a_commit_refused_by_a_full_disk_is_not_sealed_as_tampering() {
    use open_forensics::store::{RotateConfig, Writer};
    if !crate::helpers::is_root() {
        crate::helpers::skip(
            "a_commit_refused_by_a_full_disk_is_not_sealed_as_tampering",
            "needs root",
        );
        return;
    }
    let fs_ = Tmpfs::mount("16m");
    let store = fs_.dir.path().join("store");
    let mut w = Writer::open(&store, RotateConfig::default()).expect("writer");
    let long = "x".repeat(200);
    let append = |w: &mut Writer, from: i64, to: i64, phase: &str| {
        for i in from..to {
            let path = format!("/{phase}/{i}/{long}");
            w.append(&mut crate::helpers::event(i, &path))
                .expect("append");
        }
        w.commit().expect("commit");
    };
    append(&mut w, 0, 100, "before");
    let filler = fs_.fill();
    // New strings on every row: each commit has pages to write, so the full disk refuses it.
    for round in 0..20 {
        append(&mut w, 100 + round * 500, 600 + round * 500, "full");
    }
    fs::remove_file(&filler).expect("remove the filler");
    for _ in 0..50 {
        w.tick().expect("tick");
        std::thread::sleep(Duration::from_millis(20));
    }
    append(&mut w, 20_000, 20_100, "after");
    w.close().expect("close");
    let out = of(&store, &["verify"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && !text.contains("tampered"), "{text}");
}
