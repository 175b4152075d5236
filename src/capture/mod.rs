//! Live capture: the BPF probes' lifecycle (open → load → attach → poll) and the pipeline that
//! turns kernel records into stored events.
//!
//! Threads: this one owns the BPF object and is the ring-buffer consumer; it only copies records
//! into batches for a bounded queue. The `of-store` thread ([`pipeline`]) decodes, reorders,
//! stores, runs the rules and accounts losses.
//!
//! Wakeups: probes write with `BPF_RB_NO_WAKEUP` and force a wakeup only on the record that
//! takes the data waiting across a multiple of the drain threshold ([`drain_threshold`]: an
//! eighth of the ring, at most 4 MiB); the consumer also polls every [`POLL`], so latency is
//! bounded by time and a busy host costs a few wakeups, not one per open. While records keep
//! coming, the consumer drains in bursts [`DRAIN_PAUSE`] apart instead of chasing every record:
//! a consumer right behind the probes reads the ring's cache lines (records, positions) while
//! they are still being written. Measured with BPF stats (`cargo bench --bench capture`, 1
//! thread): `sys_exit_openat` 340 → ~295 ns per run; publishing the consumer position once per
//! drain instead of libbpf's once per record (an own consumer, tried) gained nothing more.
//! Draining never pauses while the threshold is reached, and a wakeup ends a pause early
//! ([`Pause`]). A wakeup is an irq_work self-interrupt, microseconds in a VM: forcing one on
//! every record past the threshold (the rule before) cost a 1-thread open loop 3x with a 1 MiB
//! ring and 1.35x on a busy host (`benches/ab.sh`, README).

pub mod decode;
/// The benchmark's counting probes (not used by any command).
#[doc(hidden)]
pub mod floor;
pub mod pipeline;
pub mod privilege;
pub mod proctable;
pub mod skel;

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{ErrorKind, MapHandle, PrintLevel, RingBufferBuilder};

use crate::error::BadInput;
use crate::rules::RuleSet;
use crate::store::Writer;
use pipeline::{Batch, Gauges, LossSources, Settings, Sinks, Supervisor};
use skel::{OpensLinks, OpensSkelBuilder};

/// The consumer's longest sleep: the bound on capture latency when the ring stays below the
/// wakeup threshold.
pub const POLL: Duration = Duration::from_millis(50);
/// The pause between two drains while the ring is busy (records wait in it meanwhile, far below
/// its size: 5 ms of 1M opens/s is ~750 KiB). Skipped when the ring is an eighth full.
const DRAIN_PAUSE: Duration = Duration::from_millis(5);
/// A batch is handed over when it holds this much (or at the end of every poll).
const BATCH_BYTES: usize = 256 << 10;
/// Batches the queue holds before the consumer waits (leaving records in the kernel ring): up to
/// 32 MiB, about a second of a busy host.
pub const QUEUE_BATCHES: usize = 128;

/// What `record` was asked for, validated.
#[derive(Clone, Debug)]
pub struct Options {
    /// Ring buffer size in bytes: a power of two, at least a page.
    pub ring_bytes: u32,
    pub duration: Option<Duration>,
    pub stats_every: Option<Duration>,
    pub debug: bool,
    /// Leave out the 32-bit entry's probe (it runs, briefly, on every syscall of the host).
    pub no_ia32: bool,
    /// How long events are held to be released in time order (see `pipeline::Stage`).
    pub reorder_window: Duration,
}

#[derive(Debug)]
pub struct Summary {
    pub events: u64,
    pub lost: u64,
    pub late: u64,
    pub elapsed: Duration,
    pub bytes_written: u64,
    pub segments_sealed: u64,
    /// The store's hash-chain head after the last seal.
    pub head: String,
    /// Segments whose seal failed (they stay active databases; the next writer seals them).
    pub unsealed: u64,
    pub warnings: Vec<String>,
    /// The alert outputs' final counters.
    pub outputs: Vec<crate::alerts::OutputState>,
    /// The retention in force when recording stopped (a SIGHUP may have changed the start's).
    pub retention: Option<crate::store::Retention>,
}

static DEBUG: AtomicBool = AtomicBool::new(false);

/// A line on stderr when debugging (`-v` / `OPEN_FORENSICS_DEBUG`).
pub fn debug(msg: &str) {
    if DEBUG.load(Ordering::Relaxed) {
        eprintln!("open-forensics: debug: {msg}");
    }
}

fn libbpf_print(level: PrintLevel, msg: String) {
    if DEBUG.load(Ordering::Relaxed) {
        let level = match level {
            PrintLevel::Warn => "warn",
            PrintLevel::Info => "info",
            PrintLevel::Debug => "debug",
        };
        eprint!("open-forensics: libbpf {level}: {msg}");
    }
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks exist on every Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// The kernel's `bpf_ktime_get_boot_ns()` clock, read from user space.
pub fn boot_ns() -> i64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

/// Wall clock minus boot clock, from the tightest of a few bracketed reads.
pub fn clock_anchor_ns() -> i64 {
    (0..5)
        .map(|_| {
            let before = clock_ns(libc::CLOCK_REALTIME);
            let boot = boot_ns();
            let after = clock_ns(libc::CLOCK_REALTIME);
            (after - before, before + (after - before) / 2 - boot)
        })
        .min()
        .map(|(_, anchor)| anchor)
        .unwrap_or(0)
}

static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);
/// Set by SIGHUP: a request to reload the configuration and rules (`crate::service` takes it; a
/// recorder without a supervisor says it has nothing to reload, and keeps recording).
pub static HANGUP: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);

/// Makes SIGINT and SIGTERM set the returned flag instead of killing the process (a second one
/// ends it at once, exit 1: the next writer seals what it leaves), and SIGHUP set [`HANGUP`] (a
/// terminal closing must not end a recording and leave a segment unsealed). signal-hook's
/// handlers only store to atomics, which is async-signal-safe.
pub fn stop_on_signals() -> anyhow::Result<&'static AtomicBool> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        // Registered first: it sees the flag as it was before this signal set it.
        signal_hook::flag::register_conditional_shutdown(sig, 1, STOP.clone())
            .context("install a signal handler")?;
        signal_hook::flag::register(sig, STOP.clone()).context("install a signal handler")?;
    }
    signal_hook::flag::register(SIGHUP, HANGUP.clone()).context("install a signal handler")?;
    Ok(&STOP)
}

/// A group of probes that covers one way of opening, and the tracepoints it needs.
struct Hook {
    what: &'static str,
    progs: &'static [&'static str],
    tracepoints: &'static [(&'static str, &'static str)],
}

/// What `record` loads for the syscalls by default: one program on every syscall's exit that
/// picks out the opens by number, through the 64-bit and the 32-bit entry alike. Cheaper per open
/// than the per-syscall tracepoints (no ftrace syscall event or perf record is built for it), at
/// the price of a few instructions on every other syscall (bpf/opens.bpf.c, benches/ab.sh).
const RAW_EXIT: Hook = Hook {
    what: "open, creat, openat, openat2, open_by_handle_at (64- and 32-bit entry)",
    progs: &["tp_btf__sys_exit"],
    tracepoints: &[("raw_syscalls", "sys_exit")],
};

/// With `--no-ia32` (or a kernel without the raw tracepoint): one syscalls:* exit tracepoint
/// per open syscall, which no other syscall pays for and the 32-bit entry never reaches.
const SYSCALL_HOOKS: &[Hook] = &[
    Hook {
        what: "open",
        progs: &["tracepoint__syscalls__sys_exit_open"],
        tracepoints: &[("syscalls", "sys_exit_open")],
    },
    Hook {
        what: "creat",
        progs: &["tracepoint__syscalls__sys_exit_creat"],
        tracepoints: &[("syscalls", "sys_exit_creat")],
    },
    Hook {
        what: "openat",
        progs: &["tracepoint__syscalls__sys_exit_openat"],
        tracepoints: &[("syscalls", "sys_exit_openat")],
    },
    Hook {
        what: "openat2",
        progs: &["tracepoint__syscalls__sys_exit_openat2"],
        tracepoints: &[("syscalls", "sys_exit_openat2")],
    },
    Hook {
        what: "open_by_handle_at",
        progs: &["tracepoint__syscalls__sys_exit_open_by_handle_at"],
        tracepoints: &[("syscalls", "sys_exit_open_by_handle_at")],
    },
];

const OTHER_HOOKS: &[Hook] = &[
    // Process lifecycle (lineage): tp_btf, like io_uring.
    Hook {
        what: "process lifecycle",
        progs: &[
            "tp_btf__sched_process_exec",
            "tp_btf__sched_process_fork",
            "tp_btf__sched_process_exit",
        ],
        tracepoints: &[
            ("sched", "sched_process_exec"),
            ("sched", "sched_process_fork"),
            ("sched", "sched_process_exit"),
        ],
    },
    // tp_btf programs need no tracefs, but the tracefs entry is the cheapest sign that the
    // kernel has these tracepoints (io_uring_submit_req takes only the request since 5.18).
    Hook {
        what: "io_uring",
        progs: &["tp_btf__io_uring_submit_req", "tp_btf__io_uring_complete"],
        tracepoints: &[
            ("io_uring", "io_uring_submit_req"),
            ("io_uring", "io_uring_complete"),
        ],
    },
];

/// Copies ring records into batches and hands them to the store thread. When the store side
/// lags and the queue is full, it waits: records stay in the kernel ring (backpressure) instead of
/// being dropped in user space, so a loss can only happen where the kernel counts it
/// (`ringbuf_full`), and the ring's size (`--ring-mb`) is how long a stall it absorbs.
struct Batcher {
    batch: Batch,
    tx: SyncSender<Batch>,
    hung_up: bool,
    gauges: Arc<Gauges>,
    /// The ring, to sample its fill as each batch starts (the most it holds before a drain).
    ring: Option<std::ptr::NonNull<libbpf_sys::ring>>,
}

impl Batcher {
    /// Bytes waiting in the kernel ring, if it is known.
    fn ring_used(&self) -> Option<u64> {
        // SAFETY: the ring belongs to the RingBuffer, which outlives every callback and the
        // poll loop; `ring` is cleared before it is dropped. Two loads of its positions.
        self.ring
            .map(|r| unsafe { libbpf_sys::ring__avail_data_size(r.as_ptr()) })
    }

    fn push(&mut self, rec: &[u8]) -> i32 {
        if self.batch.records == 0 {
            if let Some(used) = self.ring_used() {
                self.gauges.ring_peak.fetch_max(used, Ordering::Relaxed);
            }
        }
        self.batch.push(rec);
        if self.batch.buf.len() >= BATCH_BYTES {
            self.send(0);
        }
        0
    }

    /// Hands the batch over, waiting while the queue is full; `drained_at_ns` (0: unknown) lets
    /// the store thread release events.
    fn send(&mut self, drained_at_ns: u64) {
        if self.hung_up {
            return;
        }
        let mut batch = std::mem::replace(&mut self.batch, Batch::with_capacity(BATCH_BYTES));
        batch.drained_at_ns = drained_at_ns;
        self.gauges.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(batch).is_err() {
            self.hung_up = true;
        }
    }
}

/// Kernel memory the directory path cache may take in all (it is per CPU).
const DIR_CACHE_BUDGET: usize = 16 << 20;

/// Slots per CPU of the probes' directory cache: the most (512 = OF_DIR_SLOTS) that keeps the
/// per-CPU array within [`DIR_CACHE_BUDGET`] for this many possible CPUs, a power of two, at
/// least 32 (a 2-CPU host: 512, 266 KiB per CPU; 256 CPUs: 64, 8.3 MiB in all).
fn dir_cache_slots(cpus: usize) -> u32 {
    let slot = std::mem::size_of::<skel::types::of_dir_slot>();
    let fit = DIR_CACHE_BUDGET / (cpus.max(1) * slot);
    let most = skel::types::of_limits::OF_LIMIT_DIR_SLOTS.0;
    let pow2 = if fit == 0 { 1 } else { 1 << fit.ilog2() };
    (pow2 as u32).clamp(32, most)
}

/// The fill at which the consumer stops pausing between drains, and whose every multiple the
/// probes wake it at: an eighth of the ring (a power of two, as the ring is), at most 4 MiB.
fn drain_threshold(ring_bytes: u32) -> u32 {
    (ring_bytes / 8).clamp(1, 4 << 20)
}

/// Whether the ring holds at least the drain threshold: then the consumer drains without pausing.
fn ring_filling(batcher: &Batcher) -> bool {
    batcher.ring_used().is_none_or(|used| {
        used >= u64::from(drain_threshold(
            batcher.gauges.ring_size.load(Ordering::Relaxed) as u32,
        ))
    })
}

/// The pause between drains, ended early by the probes' wakeup. libbpf's epoll is
/// level-triggered and returns at once while any record waits, so it cannot pause; this one is
/// edge-triggered on the ring's fd, so it returns on the next wakeup only: the record that takes
/// the ring across the drain threshold ends the pause, which a plain sleep would sleep through
/// while the ring overflows (a 1 MiB ring at 1.5M opens/s fills in 4.5 ms).
struct Pause(std::os::fd::OwnedFd);

impl Pause {
    fn new(ring: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Self> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: epoll_create1 takes no pointer; a non-negative result is a new fd owned here.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let ep = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: 0,
        };
        // SAFETY: both fds are open; `ev` is a valid epoll_event for the call's duration.
        if unsafe { libc::epoll_ctl(fd, libc::EPOLL_CTL_ADD, ring.as_raw_fd(), &mut ev) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self(ep))
    }

    /// Waits `d` or until the probes' next wakeup (an interrupted wait just ends early).
    fn wait(&self, d: Duration) {
        use std::os::fd::AsRawFd;
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        let ms = i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: a valid epoll fd and room for one event.
        unsafe { libc::epoll_wait(self.0.as_raw_fd(), &mut ev, 1, ms) };
    }
}

/// Lowers this thread's nice value by `boost` (threads it starts inherit it). A busy host keeps
/// every core busy, and the recorder at the same weight as its load falls behind and loses
/// opens once the ring fills: with three spinning processes on its CPU, 22% of 4.5M opens were
/// lost at nice 0 and none at -4 (the 1-thread open loop; README, capture cost).
pub fn boost_priority(boost: u8) -> std::io::Result<()> {
    if boost == 0 {
        return Ok(());
    }
    // SAFETY: getpriority/setpriority take no pointers; -1 is a valid result of getpriority,
    // so errno tells an error apart.
    unsafe {
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        if now == -1 && *libc::__errno_location() != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let to = (now - i32::from(boost)).max(-20);
        if libc::setpriority(libc::PRIO_PROCESS, 0, to) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// EPERM (a privilege problem) and EACCES (the verifier rejected a program) share an ErrorKind;
/// libbpf-rs keeps the errno only in its message.
fn is_eperm(e: &libbpf_rs::Error) -> bool {
    e.kind() == ErrorKind::PermissionDenied && e.to_string().contains("(os error 1)")
}

/// Records until `stop` is set or the duration passes, then drains the ring, stores everything
/// and seals the store. Prints one line containing `attached` once every probe is attached.
pub fn record(
    opts: &Options,
    mut writer: Writer,
    rules: Option<RuleSet>,
    alerts: crate::alerts::Outputs,
    stop: &AtomicBool,
    supervisor: Option<Box<dyn Supervisor>>,
) -> anyhow::Result<Summary> {
    DEBUG.store(opts.debug, Ordering::Relaxed);
    libbpf_rs::set_print(Some((PrintLevel::Debug, libbpf_print)));

    if privilege::ensure_tracefs()? {
        debug("mounted tracefs at /sys/kernel/tracing");
    }
    let anchor_ns = clock_anchor_ns();
    writer.set_clock_anchor(anchor_ns);
    writer.start_recording();

    let mut object = MaybeUninit::uninit();
    let mut open = OpensSkelBuilder::default()
        .open(&mut object)
        .context("open the BPF object")?;
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .ok_or_else(|| anyhow!("the BPF object has no read-only data"))?;
    rodata.targ_self_tgid = std::process::id();
    rodata.wakeup_shift = drain_threshold(opts.ring_bytes).ilog2();
    let slots = dir_cache_slots(libbpf_rs::num_possible_cpus().unwrap_or(1));
    rodata.dir_slots_mask = slots - 1;
    open.maps
        .of_events
        .set_max_entries(opts.ring_bytes)
        .context("size the ring buffer")?;
    open.maps
        .of_dirs
        .set_max_entries(slots)
        .context("size the directory cache")?;

    let mut covered = Vec::new();
    let mut disabled: Vec<&str> = Vec::new();
    let raw = !opts.no_ia32
        && RAW_EXIT
            .tracepoints
            .iter()
            .all(|(cat, name)| privilege::has_tracepoint(cat, name));
    if opts.no_ia32 {
        eprintln!(
            "open-forensics: notice: opens through the 32-bit entry are not recorded (--no-ia32)"
        );
    } else if !raw {
        eprintln!(
            "open-forensics: notice: opens through the 32-bit entry are not recorded: this kernel has no raw_syscalls/sys_exit tracepoint"
        );
    }
    let (syscall_hooks, unused) = if raw {
        (std::slice::from_ref(&RAW_EXIT), SYSCALL_HOOKS)
    } else {
        (SYSCALL_HOOKS, std::slice::from_ref(&RAW_EXIT))
    };
    disabled.extend(unused.iter().flat_map(|h| h.progs.iter().copied()));
    for hook in syscall_hooks.iter().chain(OTHER_HOOKS) {
        match hook
            .tracepoints
            .iter()
            .find(|(cat, name)| !privilege::has_tracepoint(cat, name))
        {
            None => covered.push(hook.what),
            Some((cat, name)) => {
                eprintln!(
                    "open-forensics: notice: {} opens are not recorded: this kernel has no {cat}/{name} tracepoint",
                    hook.what
                );
                disabled.extend(hook.progs.iter().copied());
            }
        }
    }
    if covered.is_empty() {
        return Err(BadInput(
            "this kernel has none of the syscall or io_uring tracepoints capture needs (CONFIG_FTRACE_SYSCALLS)".into(),
        )
        .into());
    }
    let mut attached = 0;
    for mut prog in open.open_object_mut().progs_mut() {
        if disabled.iter().any(|d| prog.name() == *d) {
            prog.set_autoload(false);
        } else {
            attached += 1;
        }
    }

    let mut skel = open.load().map_err(|e| {
        if is_eperm(&e) {
            anyhow::Error::from(BadInput(privilege::privilege_message(
                "the kernel refused to load the BPF programs (EPERM)",
            )))
        } else {
            anyhow::Error::from(e).context("load the BPF programs (run with -v for libbpf's log)")
        }
    })?;
    skel.attach().map_err(|e| {
        if e.kind() == ErrorKind::PermissionDenied {
            anyhow::Error::from(BadInput(privilege::privilege_message(
                "attaching the tracepoints was refused (EACCES/EPERM)",
            )))
        } else {
            anyhow::Error::from(e).context("attach the probes")
        }
    })?;

    let losses = LossSources {
        kernel: MapHandle::try_from(&skel.maps.of_losses).context("open the loss counters")?,
    };
    let (tx, rx) = sync_channel::<Batch>(QUEUE_BATCHES);
    let gauges = Arc::new(Gauges::default());
    let batcher = Rc::new(RefCell::new(Batcher {
        batch: Batch::with_capacity(BATCH_BYTES),
        tx,
        hung_up: false,
        gauges: gauges.clone(),
        ring: None,
    }));
    let mut builder = RingBufferBuilder::new();
    let cb = batcher.clone();
    builder
        .add(&skel.maps.of_events, move |rec: &[u8]| {
            cb.borrow_mut().push(rec)
        })
        .context("set up the ring buffer")?;
    let ring = builder.build().context("set up the ring buffer")?;
    let pause = {
        use std::os::fd::AsFd;
        Pause::new(skel.maps.of_events.as_fd()).context("set up the drain pause")?
    };
    {
        use libbpf_rs::AsRawLibbpf;
        // SAFETY: a valid ring_buffer with one ring (index 0); null if libbpf says otherwise.
        let r = unsafe { libbpf_sys::ring_buffer__ring(ring.as_libbpf_object().as_ptr(), 0) };
        if let Some(r) = std::ptr::NonNull::new(r) {
            // SAFETY: `r` was just returned by libbpf for this live ring buffer.
            let size = unsafe { libbpf_sys::ring__size(r.as_ptr()) };
            gauges.ring_size.store(size, Ordering::Relaxed);
            batcher.borrow_mut().ring = Some(r);
        }
    }

    // After attaching: a process started since is in a kernel record, one started before is here.
    let mut procs = proctable::ProcTable::new(
        anchor_ns,
        proctable::read_users(std::path::Path::new("/etc/passwd")),
    );
    procs.snapshot_proc(std::path::Path::new("/proc"), boot_ns() as u64);
    debug(&format!("{} processes running at start", procs.len()));

    let store_dir = writer.dir().to_owned();
    let started = Instant::now();
    let settings = Settings {
        anchor_ns,
        reorder_window_ns: i64::try_from(opts.reorder_window.as_nanos()).unwrap_or(i64::MAX),
        stats_every: opts.stats_every,
        started,
        supervisor,
        gauges,
    };
    let sinks = Sinks {
        writer,
        rules,
        alerts,
        procs,
    };
    let worker = std::thread::Builder::new()
        .name("of-store".into())
        .spawn(move || pipeline::run(rx, sinks, losses, settings))
        .context("start the store thread")?;

    eprintln!(
        "open-forensics: attached {attached} probes ({}); recording into {}",
        covered.join(", "),
        store_dir.display()
    );

    let deadline = opts.duration.map(|d| started + d);
    let mut poll_result = Ok(());
    let mut busy = false;
    while !stop.load(Ordering::SeqCst)
        && deadline.is_none_or(|d| Instant::now() < d)
        && !batcher.borrow().hung_up
    {
        if busy && !ring_filling(&batcher.borrow()) {
            pause.wait(DRAIN_PAUSE);
        }
        let rc = ring.poll_raw(if busy { Duration::ZERO } else { POLL });
        if rc < 0 && rc != -libc::EINTR {
            poll_result =
                Err(std::io::Error::from_raw_os_error(-rc)).context("poll the ring buffer");
            break;
        }
        let drained = boot_ns() as u64;
        let rc2 = ring.consume_raw();
        if rc2 < 0 && rc2 != -libc::EINTR {
            poll_result =
                Err(std::io::Error::from_raw_os_error(-rc2)).context("read the ring buffer");
            break;
        }
        busy = rc > 0 || rc2 > 0;
        batcher.borrow_mut().send(drained);
    }

    // Detach first so that the final drain sees everything that will ever be written.
    skel.links = OpensLinks::default();
    let drained = boot_ns() as u64;
    let rc = ring.consume_raw();
    batcher.borrow_mut().send(drained);
    batcher.borrow_mut().ring = None;
    drop(ring);
    drop(batcher);

    let outcome = worker
        .join()
        .map_err(|_| anyhow!("the store thread panicked"))??;
    poll_result?;
    if rc < 0 {
        return Err(std::io::Error::from_raw_os_error(-rc)).context("drain the ring buffer");
    }
    let s = outcome.summary;
    Ok(Summary {
        events: s.events,
        lost: s.lost,
        late: outcome.late,
        elapsed: started.elapsed(),
        bytes_written: s.sealed_bytes,
        segments_sealed: s.segments_sealed,
        head: s.head,
        unsealed: s.unsealed,
        warnings: s.warnings,
        outputs: outcome.outputs,
        retention: outcome.retention,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The directory cache takes its full size on small hosts and shrinks, by powers of two, to
    /// stay within its budget on large ones.
    #[test]
    fn directory_cache_stays_within_its_budget_for_any_cpu_count() {
        let slot = std::mem::size_of::<skel::types::of_dir_slot>();
        assert_eq!(dir_cache_slots(2), 512);
        assert_eq!(dir_cache_slots(256), 64);
        for cpus in [1, 2, 3, 8, 31, 64, 100, 256, 1024] {
            let n = dir_cache_slots(cpus);
            assert!(
                n.is_power_of_two() && (32..=512).contains(&n),
                "{cpus} CPUs: {n}"
            );
            assert!(
                n == 32 || cpus * n as usize * slot <= DIR_CACHE_BUDGET,
                "{cpus}: {n}"
            );
        }
        assert_eq!(dir_cache_slots(100_000), 32);
    }
}
