//! Capture overhead and completeness, measured in one run (root only; prints, never asserts):
//!
//! * opens/s of a load generator with nothing attached (the baseline, measured before and after
//!   and averaged), with the floor attached (`bpf/floor.bpf.c`: probes on the same hooks that only
//!   count), and with `open-forensics record` running: the two ratios against the baseline, for
//!   one and two threads of successful opens at full speed, failing opens and io_uring opens;
//! * events stored for the generator vs opens it performed; any shortfall must be covered by the
//!   loss the store recorded (and with backpressure, only with reason `ringbuf_full`);
//! * recorder CPU seconds per million events (utime+stime from /proc/<pid>/stat);
//! * per-program kernel cost: BPF stats (`kernel.bpf_stats_enabled=1`, restored afterwards) over
//!   a second, shorter generator run in the floor and recorder phases (stats add their own
//!   ~20-40 ns per program run, so the ratios are measured with stats off);
//! * the highest stepped rate with zero loss.
//!
//! `cargo bench --bench capture`; `CAPTURE_BENCH_SECS` (default 3) sets each phase's length,
//! `CAPTURE_BENCH_STEPS=0` leaves out the stepped rates, `CAPTURE_BENCH_RING_MB` sets the
//! recorder's `--ring-mb` (default 16), `CAPTURE_BENCH_ONLY` runs one row (`"open ok1"`,
//! `"open ok2"`, `"ENOENT1"`, `"io_uring1"`, `"rename1"`), `CAPTURE_BENCH_BIN` runs another
//! build's recorder.

use std::ffi::CString;
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use open_forensics::capture::floor::Floor;
use open_forensics::store::{Reader, TimeRange};

mod common;
use common::bpf_stats::{Snapshot, StatsOn};
use common::cpu::CpuTime;
use common::recorder;

const GEN_COMM: &str = "of-gen";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// open + close of existing files
    Ok,
    /// opens that fail with ENOENT
    Fail,
    /// IORING_OP_OPENAT in batches of 16, then close
    Uring,
    /// rename of a file to a sibling name and back: the cost of a file operation (#27). The
    /// floor's probes count opens only, so its row is the price of any program on sys_exit.
    Rename,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Ok => "open ok",
            Mode::Fail => "ENOENT",
            Mode::Uring => "io_uring",
            Mode::Rename => "rename",
        }
    }
}

/// A few hundred paths shaped like a real tree: nested directories, mixed name lengths.
fn make_tree(root: &Path) -> (Vec<CString>, Vec<CString>) {
    let kinds = ["lib", "config", "cache", "share/doc", "include/sys"];
    let exts = ["so.6", "yaml", "json", "h", "txt", "conf"];
    let mut ok = Vec::new();
    let mut missing = Vec::new();
    for d in 0..30 {
        let dir = root.join(format!("{}/pkg-{d:02}/{}", kinds[d % kinds.len()], "v1.2"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..10 {
            let p = dir.join(format!(
                "file-{f}-{}.{}",
                "x".repeat(f * 3),
                exts[(d + f) % 6]
            ));
            std::fs::write(&p, b"bench").expect("write");
            ok.push(CString::new(p.as_os_str().as_bytes()).expect("path"));
            let m = dir.join(format!("absent-{f}.{}", exts[f % 6]));
            missing.push(CString::new(m.as_os_str().as_bytes()).expect("path"));
        }
    }
    (ok, missing)
}

/// Runs `threads` generator threads for `secs`; `rate` caps the total opens/s. Returns the opens
/// performed and the elapsed time.
fn generate(
    mode: Mode,
    threads: usize,
    secs: f64,
    rate: Option<f64>,
    ok: &Arc<Vec<CString>>,
    missing: &Arc<Vec<CString>>,
) -> (u64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let paths = if mode == Mode::Fail {
                missing.clone()
            } else {
                ok.clone()
            };
            let stop = stop.clone();
            let per_thread = rate.map(|r| r / threads as f64);
            std::thread::Builder::new()
                .name(GEN_COMM.into())
                .spawn(move || gen_thread(mode, &paths, i, &stop, per_thread))
                .expect("spawn generator")
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let total = handles.into_iter().map(|h| h.join().expect("gen")).sum();
    (total, start.elapsed())
}

fn gen_thread(
    mode: Mode,
    paths: &[CString],
    seed: usize,
    stop: &AtomicBool,
    per_thread_rate: Option<f64>,
) -> u64 {
    let start = Instant::now();
    let mut n: u64 = 0;
    let mut i = seed * 7919;
    let mut ring = (mode == Mode::Uring).then(|| io_uring::IoUring::new(32).expect("io_uring"));
    while !stop.load(Ordering::Relaxed) {
        if let Some(r) = per_thread_rate {
            let due = Duration::from_secs_f64(n as f64 / r);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if mode == Mode::Rename {
            // Each thread its own file (seeds differ), renamed away and back: 64 events.
            let from = &paths[(seed * 7919) % paths.len()];
            let mut to = from.as_bytes().to_vec();
            to.extend_from_slice(b".renamed");
            let to = CString::new(to).expect("path");
            for _ in 0..32 {
                // SAFETY: NUL-terminated paths; the second rename restores the first.
                unsafe {
                    libc::rename(from.as_ptr(), to.as_ptr());
                    libc::rename(to.as_ptr(), from.as_ptr());
                }
            }
            n += 64;
            continue;
        }
        match ring.as_mut() {
            None => {
                for _ in 0..64 {
                    let p = &paths[i % paths.len()];
                    i = i.wrapping_add(1);
                    // SAFETY: a NUL-terminated path; the fd (if any) is closed right away.
                    unsafe {
                        let fd = libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                        if fd >= 0 {
                            libc::close(fd);
                        }
                    }
                }
                n += 64;
            }
            Some(ring) => {
                const BATCH: usize = 16;
                for _ in 0..BATCH {
                    let p = &paths[i % paths.len()];
                    i = i.wrapping_add(1);
                    let sqe = io_uring::opcode::OpenAt::new(
                        io_uring::types::Fd(libc::AT_FDCWD),
                        p.as_ptr(),
                    )
                    .flags(libc::O_RDONLY | libc::O_CLOEXEC)
                    .build();
                    // SAFETY: the paths outlive the submission, which completes below.
                    unsafe { ring.submission().push(&sqe).expect("sq full") };
                }
                ring.submit_and_wait(BATCH).expect("submit");
                for cqe in ring.completion() {
                    if cqe.result() >= 0 {
                        // SAFETY: closing the fd io_uring just opened for us.
                        unsafe { libc::close(cqe.result()) };
                    }
                }
                n += BATCH as u64;
            }
        }
    }
    n
}

/// The recorder's ring size (`CAPTURE_BENCH_RING_MB`, default 16, the recorder's default).
fn ring_mb() -> u32 {
    std::env::var("CAPTURE_BENCH_RING_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16)
}

/// A running recorder and its CPU clock.
struct Recorder {
    rec: recorder::Recorder,
    cpu: CpuTime,
    store: PathBuf,
}

/// The recorder under test: this build's, or `CAPTURE_BENCH_BIN` (to compare builds A/B under
/// the same load).
fn bin() -> PathBuf {
    std::env::var_os("CAPTURE_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_open-forensics")))
}

impl Recorder {
    fn start(store: &Path) -> Recorder {
        let mut cmd = Command::new(bin());
        cmd.arg("--store")
            .arg(store)
            .args(["record", "--ring-mb", &ring_mb().to_string()])
            .stdin(Stdio::null());
        let rec = recorder::Recorder::spawn(cmd, true);
        let cpu = CpuTime::of(rec.pid());
        Recorder {
            rec,
            cpu,
            store: store.to_owned(),
        }
    }

    /// The recorder's [`CpuTime::secs`] once it has worked off what the load left queued: when
    /// it uses less than a tenth of a CPU over 200 ms (idle, it uses ~2%), where a fixed wait
    /// could read it while a backlog (up to a 16 MiB ring and the queue) was still being stored.
    fn settled_cpu_secs(&self) -> f64 {
        let mut last = self.cpu.secs();
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(200));
            let now = self.cpu.secs();
            if now - last < 0.02 {
                return now;
            }
            last = now;
        }
        last
    }

    /// Stops the recorder and counts the generator's stored events and the store's losses.
    fn stop(self) -> (u64, u64, String) {
        let (stored, _, lost, reasons) = self.stop_all();
        (stored, lost, reasons)
    }

    /// [`Recorder::stop`], with every event stored (the host's too: capture is system-wide).
    fn stop_all(self) -> (u64, u64, u64, String) {
        self.rec.stop();
        let me = std::process::id();
        let (mut stored, mut all) = (0, 0);
        let stats =
            Reader::open(&self.store)
                .expect("open store")
                .scan(&TimeRange::default(), |e| {
                    all += 1;
                    if e.pid == me && e.comm.as_bytes() == GEN_COMM.as_bytes() {
                        stored += 1;
                    }
                    ControlFlow::Continue(())
                });
        let mut reasons: std::collections::BTreeMap<String, u64> = Default::default();
        for l in &stats.losses {
            *reasons.entry(l.reason.clone()).or_default() += l.count;
        }
        let reasons = reasons
            .iter()
            .map(|(r, n)| format!("{r}={n}"))
            .collect::<Vec<_>>()
            .join(",");
        (stored, all, stats.lost(), reasons)
    }
}

struct Row {
    mode: Mode,
    threads: usize,
    base_rate: f64,
    floor_rate: f64,
    rec_rate: f64,
    opens: u64,
    stored: u64,
    lost: u64,
    reasons: String,
    cpu_per_m: f64,
    /// Per program: (name, runs, ns per run), floor's then the recorder's.
    floor_progs: Vec<(String, u64, f64)>,
    rec_progs: Vec<(String, u64, f64)>,
}

fn rate((n, t): (u64, Duration)) -> f64 {
    n as f64 / t.as_secs_f64()
}

/// One row: baseline, floor, recorder, baseline again, each at full speed.
fn measure(
    mode: Mode,
    threads: usize,
    secs: f64,
    store: &Path,
    ok: &Arc<Vec<CString>>,
    missing: &Arc<Vec<CString>>,
) -> Row {
    let me = std::process::id();
    let base0 = rate(generate(mode, threads, secs, None, ok, missing));

    let mut object = std::mem::MaybeUninit::uninit();
    let floor = Floor::attach(&mut object).expect("attach the floor probes");
    let floor_rate = rate(generate(mode, threads, secs, None, ok, missing));
    let floor_progs = {
        let _stats = StatsOn::new().expect("enable BPF stats");
        let before = Snapshot::of_pid(me);
        generate(mode, threads, secs / 2.0, None, ok, missing);
        Snapshot::of_pid(me).since(&before)
    };
    assert!(
        mode == Mode::Rename || floor.count() > 0,
        "the floor probes ran"
    );
    drop(floor);

    let rec = Recorder::start(store);
    let cpu0 = rec.cpu.secs();
    let (n1, t1) = generate(mode, threads, secs, None, ok, missing);
    let (n2, rec_progs) = {
        let _stats = StatsOn::new().expect("enable BPF stats");
        let before = Snapshot::of_pid(rec.rec.pid());
        let (n2, _) = generate(mode, threads, secs / 2.0, None, ok, missing);
        (n2, Snapshot::of_pid(rec.rec.pid()).since(&before))
    };
    let cpu1 = rec.settled_cpu_secs();
    let (stored, all, lost, reasons) = rec.stop_all();

    let base1 = rate(generate(mode, threads, secs, None, ok, missing));
    Row {
        mode,
        threads,
        base_rate: (base0 + base1) / 2.0,
        floor_rate,
        rec_rate: rate((n1, t1)),
        opens: n1 + n2,
        stored,
        lost,
        reasons,
        // Per event the recorder handled: the host's opens are recorded too.
        cpu_per_m: (cpu1 - cpu0) / (all.max(1) as f64 / 1e6),
        floor_progs,
        rec_progs,
    }
}

fn main() {
    // `cargo bench` passes --bench; this bench has no options of its own.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("capture bench: needs root (loads BPF programs); skipped");
        return;
    }
    let env = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let secs = env("CAPTURE_BENCH_SECS", 3.0);
    let steps = env("CAPTURE_BENCH_STEPS", 1.0) > 0.0;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, missing) = make_tree(&tmp.path().join("tree"));
    let (ok, missing) = (Arc::new(ok), Arc::new(missing));
    println!(
        "capture bench: {} paths, {secs}s per phase (+{}s with BPF stats), ring {} MiB, {} CPUs",
        ok.len(),
        secs / 2.0,
        ring_mb(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let plan = [
        (Mode::Ok, 1),
        (Mode::Ok, 2),
        (Mode::Fail, 1),
        (Mode::Uring, 1),
        (Mode::Rename, 1),
    ];
    let only = std::env::var("CAPTURE_BENCH_ONLY").unwrap_or_default();
    let rows: Vec<Row> = plan
        .iter()
        .filter(|(m, t)| only.is_empty() || only == format!("{}{t}", m.name()))
        .enumerate()
        .map(|(k, &(mode, threads))| {
            let store = tmp.path().join(format!("store-{k}"));
            measure(mode, threads, secs, &store, &ok, &missing)
        })
        .collect();

    println!();
    println!(
        "{:<9} {:>3} {:>11} {:>6} {:>6} {:>8} {:>10} {:>10} {:>8} {:>9} {:>9}",
        "mode",
        "thr",
        "base op/s",
        "floor",
        "ratio",
        "+ns/open",
        "opens",
        "stored",
        "lost",
        "shortfall",
        "CPU s/Mev"
    );
    for r in &rows {
        let shortfall = r.opens.saturating_sub(r.stored);
        // Per thread: each thread's time per open, recorder minus baseline.
        let added = r.threads as f64 * (1e9 / r.rec_rate - 1e9 / r.base_rate);
        println!(
            "{:<9} {:>3} {:>11.0} {:>6.2} {:>6.2} {:>8.0} {:>10} {:>10} {:>8} {:>9} {:>9.2}{}",
            r.mode.name(),
            r.threads,
            r.base_rate,
            r.floor_rate / r.base_rate,
            r.rec_rate / r.base_rate,
            added,
            r.opens,
            r.stored,
            r.lost,
            shortfall,
            r.cpu_per_m,
            if shortfall > r.lost {
                "  UNACCOUNTED SHORTFALL".to_owned()
            } else if r.lost > 0 {
                format!("  ({})", r.reasons)
            } else {
                String::new()
            }
        );
    }

    println!();
    println!("per-program kernel cost (BPF stats, second generator run of each row):");
    println!(
        "{:<9} {:>3} {:<6} {:<50} {:>10} {:>9}",
        "mode", "thr", "probe", "program", "runs", "ns/run"
    );
    for r in &rows {
        for (who, progs) in [("floor", &r.floor_progs), ("record", &r.rec_progs)] {
            for (name, runs, ns) in progs.iter() {
                println!(
                    "{:<9} {:>3} {:<6} {:<50} {:>10} {:>9.0}",
                    r.mode.name(),
                    r.threads,
                    who,
                    name,
                    runs,
                    ns
                );
            }
        }
    }

    if !steps {
        return;
    }
    // Step the rate up until events are lost (or the generator cannot go faster).
    let threads = 2;
    println!();
    println!(
        "{:>10} {:>12} {:>10} {:>10} {:>8}   ({threads} threads)",
        "target/s", "achieved/s", "opens", "stored", "lost"
    );
    let unpaced = rows
        .iter()
        .find(|r| r.mode == Mode::Ok && r.threads == threads)
        .map(|r| r.rec_rate)
        .unwrap_or(100_000.0);
    let mut best_zero_loss: Option<f64> = None;
    for frac in [0.25, 0.5, 0.75, 1.0, 1.5] {
        let target = unpaced * frac;
        let store = tmp.path().join(format!("step-{frac}"));
        let rec = Recorder::start(&store);
        let rate = (frac < 1.5).then_some(target);
        let (n, t) = generate(Mode::Ok, threads, secs.min(2.0), rate, &ok, &missing);
        let (stored, lost, reasons) = rec.stop();
        let achieved = n as f64 / t.as_secs_f64();
        println!(
            "{:>10} {achieved:>12.0} {n:>10} {stored:>10} {lost:>8} {reasons}",
            if rate.is_some() {
                format!("{target:.0}")
            } else {
                "max".to_owned()
            }
        );
        if lost == 0 && stored >= n {
            best_zero_loss = Some(best_zero_loss.map_or(achieved, |b: f64| b.max(achieved)));
        }
    }
    match best_zero_loss {
        Some(r) => println!("highest sustained rate with zero loss: {r:.0} opens/s"),
        None => println!("highest sustained rate with zero loss: none of the steps was loss-free"),
    }
}
