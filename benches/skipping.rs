//! Skipping benchmark (issue #29): what summaries cost at seal, and what they save at read, in
//! one run on one generated store.
//!
//! The store: `OF_BENCH_EVENTS` (default 10M) events of the store benchmark's workload with
//! lineage (a Zipf over ~4000 paths, a few hundred processes), plus three reads of `/etc/shadow`
//! (the rare path a responder asks about). Kept in `OF_BENCH_DIR` (default a temporary directory)
//! between runs.
//!
//! Written: ingest time; the seals' wall time and, of it, building the segments' summaries, as
//! the writer measures them (`WriterSummary::seal_time`…), so the ratio is what summaries add to
//! a seal; the blocks' summaries built at commit, against the ingest; the CPU time of rebuilding
//! every summary (segment and blocks) from the sealed databases; sealed bytes per
//! event, and what they would be without summaries (each database with `blocks.summary` cleared
//! and vacuumed, compressed as the seal does, plus the metadata frame without `summary`).
//! Read, with the real binary (wall time, peak RSS by `/usr/bin/time`): `query` by a rare and a
//! common path, an executable, a pid, `--rule` with one rule, `replay` of a rule set, each
//! against a full scan in the same run (`--comm`, which summaries do not record: every segment
//! and block read, nothing printed).
//!
//! `cargo bench --bench skipping` (`OF_BENCH_SEGMENT_EVENTS`: events a segment, default 1M as
//! `record`'s).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use open_forensics::store::{list_segments, Reader, RotateConfig, Writer, WriterSummary};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Generates the store unless `dir` holds a complete one; returns the ingest time and what the
/// writer measured (none if reused), a rare and a common exe, and a rare pid.
fn generate(dir: &Path, n: usize) -> (Option<(f64, WriterSummary)>, String, String, u32) {
    let mut w = common::Workload::with_lineage(42);
    let mut exes: HashMap<String, u64> = HashMap::new();
    let mut pids: HashMap<u32, u64> = HashMap::new();
    let marker = dir.with_extension("complete");
    let reuse = marker.exists();
    if !reuse {
        let _ = std::fs::remove_dir_all(dir);
    }
    let t = Instant::now();
    let config = RotateConfig {
        max_events: env_usize("OF_BENCH_SEGMENT_EVENTS", 1_000_000) as u64,
        ..RotateConfig::default()
    };
    let mut writer = (!reuse).then(|| Writer::open(dir, config).expect("open"));
    for i in 0..n {
        let mut e = w.next_event();
        if [n / 7, n / 2, n - 3].contains(&i) {
            e.path = "/etc/shadow".into();
            e.raw_path = "/etc/shadow".into();
        }
        if let Some(x) = e.process.as_ref().and_then(|p| p.exe.as_ref()) {
            *exes.entry(x.lossy().into_owned()).or_default() += 1;
        }
        *pids.entry(e.pid).or_default() += 1;
        if let Some(w) = writer.as_mut() {
            w.append(&mut e).expect("append");
        }
    }
    let ingest = writer.map(|w| {
        let summary = w.close().expect("close");
        std::fs::write(&marker, "").expect("marker");
        (t.elapsed().as_secs_f64(), summary)
    });
    let by = |m: &HashMap<String, u64>, rare: bool| {
        let mut v: Vec<_> = m.iter().collect();
        v.sort_by_key(|(k, c)| (**c, (*k).clone()));
        let (k, c) = if rare { v[0] } else { v[v.len() - 1] };
        eprintln!("exe {k}: {c} events");
        k.clone()
    };
    let mut p: Vec<_> = pids.into_iter().collect();
    p.sort_by_key(|&(pid, c)| (c, pid));
    eprintln!("pid {}: {} events", p[0].0, p[0].1);
    (ingest, by(&exes, true), by(&exes, false), p[0].0)
}

/// Sealed bytes with and without summaries, and the time to rebuild every summary.
fn summary_costs(dir: &Path) -> (u64, u64, f64) {
    let (segments, _) = list_segments(dir).expect("list");
    let reader = Reader::open(dir).expect("reader");
    let (mut with, mut without, mut rebuild_s) = (0u64, 0u64, 0.0);
    for info in &segments {
        with += info.file_bytes;
        let seg = reader.load(info).expect("load");
        let t = Instant::now();
        assert!(seg.summary_problems().is_empty());
        rebuild_s += t.elapsed().as_secs_f64();
        // The blocks' summaries cost what the database compresses to with them, less without
        // them (both vacuumed alike).
        let tmp = tempfile::tempdir().expect("tempdir");
        let copy = tmp.path().join("copy.db");
        let sql = format!("VACUUM INTO '{}'", copy.display());
        seg.conn().execute_batch(&sql).expect("vacuum into");
        let zst = |p: &Path| {
            zstd::bulk::compress(&std::fs::read(p).expect("read copy"), 3)
                .expect("zstd")
                .len() as u64
        };
        let with_blocks = zst(&copy);
        let c = rusqlite::Connection::open(&copy).expect("open copy");
        c.execute_batch("UPDATE blocks SET summary = NULL; VACUUM")
            .expect("clear summaries");
        drop(c);
        let blocks = with_blocks.saturating_sub(zst(&copy));
        // `,"summary":"…"` in the metadata frame.
        let frame = info
            .meta
            .summary
            .as_ref()
            .map_or(0, |s| s.len() as u64 + 13);
        without += info.file_bytes - blocks - frame;
    }
    (with, without, rebuild_s)
}

struct Run {
    wall_s: f64,
    rss_mb: f64,
    lines: usize,
}

fn run(bin: &Path, store: &Path, args: &[&str]) -> Run {
    let rss = tempfile::NamedTempFile::new().expect("temp file");
    let t = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(rss.path())
        .arg(bin)
        .arg("--store")
        .arg(store)
        .args(args)
        .env("OPEN_FORENSICS_CONFIG", "/dev/null")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run");
    let wall_s = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "{args:?}: {:?}", out.status);
    let kb: f64 = std::fs::read_to_string(rss.path())
        .ok()
        .and_then(|s| s.lines().last()?.trim().parse().ok())
        .unwrap_or(0.0);
    Run {
        wall_s,
        rss_mb: kb / 1024.0,
        lines: out.stdout.iter().filter(|&&b| b == b'\n').count(),
    }
}

fn main() {
    let n = env_usize("OF_BENCH_EVENTS", 10_000_000);
    let bin = std::env::var_os("OF_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_open-forensics")));
    let (_tmp, root) = match std::env::var_os("OF_BENCH_DIR") {
        Some(d) => (None, PathBuf::from(d)),
        None => {
            let t = tempfile::tempdir().expect("tempdir");
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    std::fs::create_dir_all(&root).expect("bench dir");
    let store = root.join(format!("skipping-{n}"));
    let (ingest, rare_exe, common_exe, rare_pid) = generate(&store, n);
    let (with, without, rebuild_s) = summary_costs(&store);
    let segments = list_segments(&store).expect("list").0.len();
    println!("skipping benchmark: {n} events, {segments} segments");
    if let Some((ingest_s, w)) = ingest {
        println!(
            "  ingest (append + seal)        {ingest_s:>8.2} s; rebuilding every summary from the databases {rebuild_s:.2} s ({:.1}% of ingest, an upper bound of what summaries add)",
            100.0 * rebuild_s / ingest_s
        );
        // As the writer measured them: a seal without its summary is the rest of its time.
        let (seal, summary) = (w.seal_time.as_secs_f64(), w.seal_summary_time.as_secs_f64());
        println!(
            "  seal time (wall, {} seals)    {seal:>8.2} s; of it the segments' summaries {summary:.2} s: {:+.1}% on a seal without them (target <= +10%)",
            w.segments_sealed,
            100.0 * summary / (seal - summary).max(1e-9)
        );
        let blocks = w.block_summary_time.as_secs_f64();
        println!(
            "  blocks' summaries at commit   {blocks:>8.2} s: {:.1}% of ingest",
            100.0 * blocks / ingest_s
        );
    } else {
        println!(
            "  rebuilding every summary      {rebuild_s:>8.2} s (store reused: no ingest time)"
        );
    }
    println!(
        "  sealed bytes/event            {:>8.3} with summaries, {:.3} without ({:+.1}%)",
        with as f64 / n as f64,
        without as f64 / n as f64,
        100.0 * (with as f64 / without as f64 - 1.0)
    );
    let rules = root.join("one-rule.yaml");
    std::fs::write(
        &rules,
        "rules:\n- name: shadow_read\n  description: d\n  severity: high\n  path: /etc/shadow\n",
    )
    .expect("rules");
    let rules = rules.to_str().expect("utf-8").to_owned();
    // The same rule throttled: its summaries fall due by time, which skipped stretches still
    // advance (a pruned replay reads what the unthrottled one does, and each recording's end).
    let throttled = root.join("one-throttled-rule.yaml");
    std::fs::write(
        &throttled,
        "rules:\n- name: shadow_read\n  description: d\n  severity: high\n  path: /etc/shadow\n  \
         throttle: {key: [pid], window: 1m, max: 1}\n",
    )
    .expect("rules");
    let throttled = throttled.to_str().expect("utf-8").to_owned();
    let set = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules/detections.yaml");
    let set = set.to_str().expect("utf-8").to_owned();
    let pid = rare_pid.to_string();
    let q = |extra: &[&str]| {
        let mut a = vec!["query", "--format", "jsonl", "--no-pager"];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "full scan (query --comm none)",
            q(&["--comm", "no-such-comm"]),
        ),
        (
            "query --path /etc/shadow (rare)",
            q(&["--path", "/etc/shadow"]),
        ),
        (
            "query --path libc.so.0 (common)",
            q(&[
                "--path",
                "/usr/lib/x86_64-linux-gnu/libc.so.0",
                "--limit",
                "10",
            ]),
        ),
        ("query --exe (rarest exe)", q(&["--exe", &rare_exe])),
        (
            "query --exe (commonest, --limit 10)",
            q(&["--exe", &common_exe, "--limit", "10"]),
        ),
        ("query --pid (rarest pid)", q(&["--pid", &pid])),
        (
            "query --rules R --rule shadow_read",
            q(&["--rules", &rules, "--rule", "shadow_read"]),
        ),
        (
            "replay --rules detections.yaml",
            ["replay", "--rules", &set, "--no-pager"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "replay --rules R (one unthrottled rule)",
            ["replay", "--rules", &rules, "--no-pager"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "replay --rules T (the same rule throttled)",
            ["replay", "--rules", &throttled, "--no-pager"]
                .map(String::from)
                .to_vec(),
        ),
    ];
    let mut full = None;
    for (what, args) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(&bin, &store, &args);
        let ratio = full.map_or(String::new(), |f: f64| {
            if r.wall_s < f {
                format!("  1/{:.0} of the full scan", f / r.wall_s.max(1e-9))
            } else {
                format!("  {:.2}x the full scan", r.wall_s / f)
            }
        });
        println!(
            "  {what:<40} {:>7.3} s {:>7.1} MB peak RSS {:>8} lines{ratio}",
            r.wall_s, r.rss_mb, r.lines
        );
        full.get_or_insert(r.wall_s);
    }
}
