//! History benchmark (issue #11): reads of a large store on one host, as a user runs them — the
//! real binary, its wall time and its peak RSS (`wait4` rusage), against a baseline binary when
//! one is given, in the same run on the same stores.
//!
//! One store of `OF_BENCH_EVENTS` (default 100M) generated events with lineage (the store
//! benchmark's workload), spread evenly over the week before now, as a busy host records them:
//! - `query --since T --until T+1m` (a one-minute window in the middle of the history), jsonl;
//! - `query --rules R --rule etc_read --since 1h` (a rule over the last hour), jsonl;
//! - `query --sql top_paths` over the whole store.
//!
//! And `import` of `OF_BENCH_IMPORT` (default 10M) events from a JSON lines file.
//!
//! The baseline (`OF_BASELINE_BIN=/path/to/old/open-forensics`) held the whole answer or file in
//! memory: it runs the window and rule queries on the same large store, and `top_paths` and
//! `import` on a small store / file of `OF_BENCH_SMALL` (default 1M) events, where the new binary
//! runs too, for the ratio. `OF_BENCH_DIR` keeps the generated stores between runs.
//!
//! `cargo bench --bench history` (`OF_BENCH_BIN` runs another build of the new binary).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use open_forensics::store::{RotateConfig, Writer};
use open_forensics::timespec::format_ts;

const WEEK_NS: i64 = 7 * 24 * 3600 * 1_000_000_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A store of `n` events over the week before `end_ns`, unless `dir` already holds one.
fn generate(dir: &Path, n: usize, end_ns: i64) -> (i64, i64) {
    let marker = dir.join("../").join(format!(
        "{}.complete",
        dir.file_name().unwrap().to_string_lossy()
    ));
    let step = WEEK_NS / n as i64;
    let start = end_ns - WEEK_NS;
    if let Ok(s) = std::fs::read_to_string(&marker) {
        if let Some((a, b)) = s.trim().split_once(' ') {
            if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                eprintln!("reusing {} ({n} events)", dir.display());
                return (a, b);
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    let t = Instant::now();
    let mut w = common::Workload::with_lineage(42);
    let mut writer = Writer::open(dir, RotateConfig::default()).expect("open store");
    let mut last = start;
    for i in 0..n {
        let mut e = w.next_event();
        // Evenly over the week, with the workload's jitter kept below one step.
        e.ts_ns = start + i as i64 * step + (e.ts_ns % step.max(1));
        last = e.ts_ns;
        writer.append(&mut e).expect("append");
        if i % 10_000_000 == 0 && i > 0 {
            eprintln!("  {i} events, {:.0}s", t.elapsed().as_secs_f64());
        }
    }
    writer.close().expect("close");
    eprintln!(
        "generated {n} events in {:.0}s into {}",
        t.elapsed().as_secs_f64(),
        dir.display()
    );
    std::fs::write(&marker, format!("{start} {last}")).expect("marker");
    (start, last)
}

/// A JSON lines file of `n` events (no lineage: what another tool would export).
fn jsonl(path: &Path, n: usize) {
    if path.exists() {
        return;
    }
    use std::io::Write;
    let mut w = common::Workload::new(7);
    let tmp = path.with_extension("partial");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).expect("create"));
    for _ in 0..n {
        writeln!(f, "{}", w.next_event().to_json_line()).expect("write");
    }
    f.flush().expect("flush");
    drop(f);
    std::fs::rename(&tmp, path).expect("rename");
}

struct Run {
    wall_s: f64,
    max_rss_mb: f64,
    ok: bool,
    stdout_lines: u64,
}

/// Runs `bin --store store args…` with stdout counted and discarded: wall time and the peak RSS
/// of the binary itself.
///
/// The peak comes from `/usr/bin/time -f %M` when it is installed: a child forked straight from
/// this process inherits its high-water mark (Linux keeps the larger of the old and new address
/// space's peak across `exec`), so `wait4` here would report at least this benchmark's own RSS;
/// a child of `time` starts from `time`'s few pages. Without `time`, `wait4`'s figure is printed
/// and is an upper bound.
fn run(bin: &Path, store: &Path, args: &[&str]) -> Run {
    use std::io::Read;
    let time = Path::new("/usr/bin/time");
    let rss_file = tempfile::NamedTempFile::new().expect("temp file");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(rss_file.path())
            .arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let t = Instant::now();
    let mut child = cmd
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut lines = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => lines += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64,
        }
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for the child we spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child by pid.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(r, child.id() as i32, "wait4");
    std::mem::forget(child);
    let wall_s = t.elapsed().as_secs_f64();
    let from_time = std::fs::read_to_string(rss_file.path())
        .ok()
        .and_then(|s| s.lines().last()?.trim().parse::<f64>().ok());
    Run {
        wall_s,
        max_rss_mb: from_time.unwrap_or(usage.ru_maxrss as f64) / 1024.0,
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout_lines: lines,
    }
}

fn report(what: &str, new: &Run, base: Option<&Run>) {
    let line = |who: &str, r: &Run| {
        println!(
            "  {what:<44} {who:<8} {:>8.2} s  {:>8.1} MB peak RSS  {:>9} lines{}",
            r.wall_s,
            r.max_rss_mb,
            r.stdout_lines,
            if r.ok { "" } else { "  (FAILED)" }
        )
    };
    line("new", new);
    if let Some(b) = base {
        line("baseline", b);
        println!(
            "  {:<44} ratio    {:>8.2}x time {:>7.2}x RSS (baseline / new)",
            "",
            b.wall_s / new.wall_s.max(1e-9),
            b.max_rss_mb / new.max_rss_mb.max(1e-9)
        );
    }
}

fn main() {
    let n = env_usize("OF_BENCH_EVENTS", 100_000_000);
    let import_n = env_usize("OF_BENCH_IMPORT", 10_000_000);
    let small = env_usize("OF_BENCH_SMALL", 1_000_000);
    // OF_BENCH_BIN: a copy of the binary, so that a rebuild during a long run does not swap it.
    let new_bin = std::env::var_os("OF_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_open-forensics")));
    let base_bin = std::env::var_os("OF_BASELINE_BIN").map(PathBuf::from);
    let (_tmp, root) = match std::env::var_os("OF_BENCH_DIR") {
        Some(d) => (None, PathBuf::from(d)),
        None => {
            let t = tempfile::tempdir().expect("tempdir");
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    std::fs::create_dir_all(&root).expect("bench dir");
    // Whole minutes, so that reruns over a kept store agree on "the last hour".
    let now = open_forensics::timespec::now_ns() / 60_000_000_000 * 60_000_000_000;
    let big = root.join(format!("store-{n}"));
    let (start, last) = generate(&big, n, now);
    let small_store = root.join(format!("store-{small}"));
    generate(&small_store, small, now);
    let rules = root.join("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: etc_read\n    description: reads under /etc\n    severity: low\n    path: [\"/etc/**\"]\n    access: read\n",
    )
    .expect("rules");
    let rules = rules.to_str().expect("utf-8").to_owned();

    println!(
        "history benchmark: {n} events over a week ({} to {})",
        format_ts(start),
        format_ts(last)
    );
    let mid = start + (last - start) / 2;
    let (since, until) = (format_ts(mid), format_ts(mid + 60_000_000_000));
    let window = [
        "query", "--since", &since, "--until", &until, "--format", "jsonl",
    ];
    let hour = [
        "query", "--rules", &rules, "--rule", "etc_read", "--since", "1h", "--format", "jsonl",
    ];
    let top = ["query", "--sql", "top_paths", "--format", "jsonl"];
    for (what, args, store) in [
        ("query: 1-minute window (mid-week)", &window[..], &big),
        ("query --rule over the last hour", &hour[..], &big),
    ] {
        let new = run(&new_bin, store, args);
        let base = base_bin.as_ref().map(|b| run(b, store, args));
        report(what, &new, base.as_ref());
    }
    let new = run(&new_bin, &big, &top);
    report(&format!("--sql top_paths, {n} events"), &new, None);
    let new = run(&new_bin, &small_store, &top);
    let base = base_bin.as_ref().map(|b| run(b, &small_store, &top));
    report(
        &format!("--sql top_paths, {small} events"),
        &new,
        base.as_ref(),
    );

    let file = root.join(format!("import-{import_n}.jsonl"));
    jsonl(&file, import_n);
    let small_file = root.join(format!("import-{small}.jsonl"));
    jsonl(&small_file, small);
    for (label, f, with_base) in [
        (format!("import {import_n} events"), &file, false),
        (format!("import {small} events"), &small_file, true),
    ] {
        let f = f.to_str().expect("utf-8").to_owned();
        let fresh = |tag: &str| {
            let d = root.join(format!("import-store-{tag}"));
            let _ = std::fs::remove_dir_all(&d);
            d
        };
        let new = run(&new_bin, &fresh("new"), &["import", &f]);
        let base = if with_base {
            base_bin
                .as_ref()
                .map(|b| run(b, &fresh("base"), &["import", &f]))
        } else {
            None
        };
        report(&label, &new, base.as_ref());
        let _ = std::fs::remove_dir_all(root.join("import-store-new"));
        let _ = std::fs::remove_dir_all(root.join("import-store-base"));
    }
}
