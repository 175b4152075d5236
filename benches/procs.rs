//! Lineage under a fork+exec storm (issue #8; root only; prints, never asserts):
//!
//! * processes/s of a spawner (`/bin/true` through `std::process::Command`, several children in
//!   flight per thread) without and with `open-forensics record` running (ratio);
//! * for the spawned processes, what the store kept: exec images (exe `/bin/true` resolved),
//!   fork images, exits, images made from opens only (their lifecycle record was missed), their
//!   opens and how many of those point at their exec image; any missing record must be covered
//!   by the store's loss records;
//! * recorder CPU per process.
//!
//! `cargo bench --bench procs`; `PROCS_BENCH_COUNT` (default 20000) processes per phase from
//! `PROCS_BENCH_THREADS` (default 2) threads with `PROCS_BENCH_INFLIGHT` (default 4) children in
//! flight per thread.

use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use open_forensics::process::ProcSource;
use open_forensics::store::{Reader, TimeRange};

mod common;
use common::cpu::CpuTime;
use common::recorder::Recorder;

const TRUE: &str = "/bin/true";

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Spawns `count` `/bin/true` from `threads` threads, each keeping up to `inflight` children
/// running; returns their pids and the elapsed time.
fn spawn_storm(count: usize, threads: usize, inflight: usize) -> (Vec<u32>, Duration) {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let n = count / threads + usize::from(t < count % threads);
            std::thread::Builder::new()
                .name("of-spawn".into())
                .spawn(move || {
                    let mut pids = Vec::with_capacity(n);
                    let mut running: std::collections::VecDeque<Child> = Default::default();
                    for _ in 0..n {
                        if running.len() >= inflight {
                            let mut c = running.pop_front().expect("a child");
                            c.wait().expect("wait");
                        }
                        let c = Command::new(TRUE).spawn().expect("spawn /bin/true");
                        pids.push(c.id());
                        running.push_back(c);
                    }
                    for mut c in running {
                        c.wait().expect("wait");
                    }
                    pids
                })
                .expect("spawn a spawner thread")
        })
        .collect();
    let pids = handles
        .into_iter()
        .flat_map(|h| h.join().expect("spawner"))
        .collect();
    (pids, start.elapsed())
}

/// What the store kept about the spawned processes, each counted once per (pid, start) however
/// many segments repeat it.
#[derive(Default)]
struct Kept {
    exec: HashSet<(u32, i64)>,
    exec_other_exe: HashSet<(u32, i64)>,
    fork: HashSet<(u32, i64)>,
    from_opens: HashSet<(u32, i64)>,
    exit: HashSet<(u32, i64)>,
    exit_nonzero: u64,
    /// exec images whose parent is the bench process
    parent_ok: HashSet<(u32, i64)>,
    opens: u64,
    opens_on_exec_image: u64,
    lost: BTreeMap<String, u64>,
    segments: u64,
}

fn read_store(store: &Path, pids: &HashSet<u32>, window: (i64, i64), exe: &[u8]) -> Kept {
    let me = std::process::id();
    let ours = |pid: u32, start: i64| pids.contains(&pid) && start >= window.0 && start <= window.1;
    let (mut opens, mut opens_on_exec_image) = (0, 0);
    let reader = Reader::open(store).expect("open store");
    let mut kept = Kept::default();
    let stats = reader.scan_with(
        &TimeRange::default(),
        |seg| {
            for sp in seg.processes().expect("processes") {
                let p = &sp.process;
                if !ours(p.pid, p.start_ns) {
                    continue;
                }
                let key = (p.pid, p.start_ns);
                match p.source {
                    ProcSource::Exec if p.exe.as_ref().is_some_and(|e| e.as_bytes() == exe) => {
                        kept.exec.insert(key);
                        if p.parent.as_ref().is_some_and(|q| q.pid == me) {
                            kept.parent_ok.insert(key);
                        }
                    }
                    ProcSource::Exec => {
                        kept.exec_other_exe.insert(key);
                    }
                    ProcSource::Fork => {
                        kept.fork.insert(key);
                    }
                    _ => {
                        kept.from_opens.insert(key);
                    }
                }
                if let Some((status, _)) = sp.exit {
                    if kept.exit.insert(key) && status != 0 {
                        kept.exit_nonzero += 1;
                    }
                }
            }
        },
        |e| {
            if pids.contains(&e.pid) {
                if let Some(p) = e.process.as_ref().filter(|p| ours(p.pid, p.start_ns)) {
                    opens += 1;
                    if p.source == ProcSource::Exec {
                        opens_on_exec_image += 1;
                    }
                }
            }
            ControlFlow::Continue(())
        },
    );
    assert!(stats.errors.is_empty(), "store errors: {:?}", stats.errors);
    kept.opens = opens;
    kept.opens_on_exec_image = opens_on_exec_image;
    kept.segments = stats.segments;
    for l in &stats.losses {
        *kept.lost.entry(l.reason.clone()).or_default() += l.count;
    }
    kept
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("procs bench: needs root (loads BPF programs); skipped");
        return;
    }
    // cargo points LD_LIBRARY_PATH at the toolchain and target dirs: the dynamic loader of every
    // child would then try ~100 paths for libc. A host's short processes do not.
    std::env::remove_var("LD_LIBRARY_PATH");
    let count = env_num("PROCS_BENCH_COUNT", 20_000);
    let threads = env_num("PROCS_BENCH_THREADS", 2);
    let inflight = env_num("PROCS_BENCH_INFLIGHT", 4);
    let exe = std::fs::canonicalize(TRUE).expect("resolve /bin/true");
    let exe = std::os::unix::ffi::OsStrExt::as_bytes(exe.as_os_str()).to_vec();
    println!(
        "procs bench: {count} x {TRUE} ({}) per phase, {threads} threads x {inflight} in flight, ring 16 MiB",
        String::from_utf8_lossy(&exe)
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");

    // Warm up (page cache, allocator), then the baseline.
    spawn_storm(200, threads, inflight);
    let (_, base_t) = spawn_storm(count, threads, inflight);
    let base_rate = count as f64 / base_t.as_secs_f64();

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_open-forensics"));
    cmd.arg("--store")
        .arg(&store)
        .arg("record")
        .stdin(Stdio::null());
    let rec = Recorder::spawn(cmd, true);
    let cpu = CpuTime::of(rec.pid());
    let cpu0 = cpu.secs();
    let t0 = now_ns();
    let (pids, rec_t) = spawn_storm(count, threads, inflight);
    let t1 = now_ns();
    // Let the recorder drain what is queued (and the reorder window pass).
    std::thread::sleep(Duration::from_millis(1500));
    let cpu1 = cpu.secs();
    rec.stop();
    let rec_rate = count as f64 / rec_t.as_secs_f64();

    let set: HashSet<u32> = pids.iter().copied().collect();
    let reused = pids.len() - set.len();
    let slack = 2_000_000_000;
    let k = read_store(&store, &set, (t0 - slack, t1 + slack), &exe);
    let lost: u64 = k.lost.values().sum();
    let reasons = k
        .lost
        .iter()
        .map(|(r, n)| format!("{r}={n}"))
        .collect::<Vec<_>>()
        .join(",");

    println!();
    println!(
        "{:<18} {:>9} {:>9} {:>10}",
        "", "spawned", "secs", "procs/s"
    );
    println!(
        "{:<18} {count:>9} {:>9.2} {base_rate:>10.0}",
        "without recorder",
        base_t.as_secs_f64()
    );
    println!(
        "{:<18} {count:>9} {:>9.2} {rec_rate:>10.0}  ratio {:.2}",
        "with recorder",
        rec_t.as_secs_f64(),
        rec_rate / base_rate
    );
    let cpu = cpu1 - cpu0;
    println!(
        "recorder CPU {cpu:.2} s ({:.1} us/process); {} segment(s)",
        cpu / count as f64 * 1e6,
        k.segments
    );
    if reused > 0 {
        println!("note: {reused} pids were reused within the phase (counted once)");
    }
    println!();
    println!("stored for the {} spawned processes:", set.len());
    let row = |what: &str, n: usize| {
        println!(
            "  {what:<34} {n:>7}  missing {:>6}",
            set.len().saturating_sub(n)
        )
    };
    row(
        &format!("exec images (exe {})", String::from_utf8_lossy(&exe)),
        k.exec.len(),
    );
    row("  with the bench as parent", k.parent_ok.len());
    row("fork images", k.fork.len());
    row("exits", k.exit.len());
    println!(
        "  {:<34} {:>7}",
        "exec images with another exe",
        k.exec_other_exe.len()
    );
    println!(
        "  {:<34} {:>7}",
        "images made from opens only",
        k.from_opens.len()
    );
    println!("  {:<34} {:>7}", "non-zero exit statuses", k.exit_nonzero);
    println!(
        "  {:<34} {:>7}  ({} on their exec image)",
        "opens by them", k.opens, k.opens_on_exec_image
    );
    let missing = [k.exec.len(), k.fork.len(), k.exit.len()]
        .iter()
        .map(|n| set.len().saturating_sub(*n) as u64)
        .sum::<u64>();
    println!(
        "lost (all record kinds): {lost}{}",
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({reasons})")
        }
    );
    println!(
        "missing lifecycle records: {missing}{}",
        if missing > lost {
            "  UNACCOUNTED (more than the recorded loss)"
        } else if missing > 0 {
            "  (covered by the recorded loss)"
        } else {
            ""
        }
    );
}
