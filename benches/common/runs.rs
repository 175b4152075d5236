//! Timing the real binary over generated stores, for the history and query-speed benchmarks: a
//! store of a realistic workload spread over a week, and one run's wall time and peak RSS.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use open_forensics::store::{RotateConfig, Writer};

pub const WEEK_NS: i64 = 7 * 24 * 3600 * 1_000_000_000;

/// A path opened once, mid-week: the incident file a responder asks "who opened this?" about.
/// The workload's own paths recur all week (its rarest in every segment), so without it no
/// lookup shows what skipping by summaries does for the question a responder actually asks.
pub const NEEDLE_PATH: &str = "/etc/cron.d/incident-needle";

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A store of `n` events over the week before `end_ns`, unless `dir` already holds one.
pub fn generate(dir: &Path, n: usize, end_ns: i64) -> (i64, i64) {
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
    let mut w = super::Workload::with_lineage(42);
    let mut writer = Writer::open(dir, RotateConfig::default()).expect("open store");
    let mut last = start;
    for i in 0..n {
        let mut e = w.next_event();
        // Evenly over the week, with the workload's jitter kept below one step.
        e.ts_ns = start + i as i64 * step + (e.ts_ns % step.max(1));
        last = e.ts_ns;
        if i == n / 2 {
            e.path = NEEDLE_PATH.into();
            e.raw_path = e.path.clone();
        }
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

pub struct Run {
    pub wall_s: f64,
    pub max_rss_mb: f64,
    pub ok: bool,
    pub stdout_lines: u64,
}

/// Runs `bin --store store args…` with stdout counted and discarded: wall time and the peak RSS
/// of the binary itself.
///
/// The peak comes from `/usr/bin/time -f %M` when it is installed: a child forked straight from
/// this process inherits its high-water mark (Linux keeps the larger of the old and new address
/// space's peak across `exec`), so `wait4` here would report at least this benchmark's own RSS;
/// a child of `time` starts from `time`'s few pages. Without `time`, `wait4`'s figure is printed
/// and is an upper bound.
pub fn run(bin: &Path, store: &Path, args: &[&str]) -> Run {
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

pub fn report(what: &str, new: &Run, base: Option<&Run>) {
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
