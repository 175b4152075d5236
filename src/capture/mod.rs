//! Live capture: the BPF probes' lifecycle (open → load → attach → poll) and the decoding of
//! what they write. It knows nothing of rules, alerts or the store: [`run`] hands raw records
//! over in [`Batch`]es, and `crate::recorder` wires them to the rest.
//!
//! Threads: the caller's thread owns the BPF object and is the ring-buffer consumer; it only
//! copies records into batches for a bounded queue ([`batch`]).
//!
//! Wakeups: probes write with `BPF_RB_NO_WAKEUP` and force a wakeup only on the record that
//! takes the data waiting across a multiple of the drain threshold ([`drain`]: an eighth of the
//! ring, at most 4 MiB); the consumer also polls every [`POLL`], so latency is bounded by time
//! and a busy host costs a few wakeups, not one per open. While records keep coming, the
//! consumer drains in bursts a short pause apart instead of chasing every record: a consumer
//! right behind the probes reads the ring's cache lines (records, positions) while they are
//! still being written (`cargo bench --bench capture`). Draining never pauses while the
//! threshold is reached, and a wakeup ends a pause early. A wakeup is an irq_work
//! self-interrupt, microseconds in a VM: forcing one on every record past the threshold (the
//! rule before) cost more than it saved (`benches/ab.sh`; docs/benchmarks.md).

pub mod batch;
pub mod clock;
pub mod decode;
mod drain;
/// The benchmark's counting probes (not used by any command).
#[doc(hidden)]
pub mod floor;
pub mod hooks;
pub mod losses;
pub mod privilege;
pub mod proctable;
pub mod skel;

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{ErrorKind, MapHandle, PrintLevel, RingBufferBuilder};

pub use batch::{Batch, Gauges, QUEUE_BATCHES};
use batch::{Batcher, BATCH_BYTES};
pub use clock::{boot_ns, clock_anchor_ns};
use drain::{drain_threshold, ring_filling, Pause, DRAIN_PAUSE};
use hooks::{OTHER_HOOKS, RAW_EXIT, SYSCALL_HOOKS};
pub use losses::KernelLosses;
use skel::{OpensLinks, OpensSkelBuilder};

use crate::error::BadInput;

/// The consumer's longest sleep: the bound on capture latency when the ring stays below the
/// wakeup threshold.
pub const POLL: Duration = Duration::from_millis(50);

/// How the probes are loaded.
#[derive(Clone, Debug)]
pub struct Options {
    /// Ring buffer size in bytes: a power of two, at least a page.
    pub ring_bytes: u32,
    /// Leave out the 32-bit entry's probe (it runs, briefly, on every syscall of the host).
    pub no_ia32: bool,
}

/// What the caller learns once every probe is attached.
pub struct Attached {
    /// Programs loaded and attached.
    pub probes: usize,
    /// What they cover, for the `attached` line.
    pub covered: Vec<&'static str>,
    /// The probes' loss counters.
    pub losses: KernelLosses,
}

fn libbpf_print(level: PrintLevel, msg: String) {
    if crate::diag::verbose() {
        let level = match level {
            PrintLevel::Warn => "warn",
            PrintLevel::Info => "info",
            PrintLevel::Debug => "debug",
        };
        eprint!("open-forensics: libbpf {level}: {msg}");
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

/// EPERM (a privilege problem) and EACCES (the verifier rejected a program) share an ErrorKind;
/// libbpf-rs keeps the errno only in its message.
fn is_eperm(e: &libbpf_rs::Error) -> bool {
    e.kind() == ErrorKind::PermissionDenied && e.to_string().contains("(os error 1)")
}

/// Loads and attaches the probes, calls `attached` (where the caller starts consuming `tx`'s
/// batches), then copies ring records into batches until `stop()` says so or the receiver hangs
/// up. It detaches before the last drain, so every record the probes ever wrote is handed over.
pub fn run(
    opts: &Options,
    tx: SyncSender<Batch>,
    gauges: Arc<Gauges>,
    attached: impl FnOnce(Attached) -> anyhow::Result<()>,
    stop: impl Fn() -> bool,
) -> anyhow::Result<()> {
    libbpf_rs::set_print(Some((PrintLevel::Debug, libbpf_print)));

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
    let mut attached_count = 0;
    for mut prog in open.open_object_mut().progs_mut() {
        if disabled.iter().any(|d| prog.name() == *d) {
            prog.set_autoload(false);
        } else {
            attached_count += 1;
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

    let losses = KernelLosses::new(
        MapHandle::try_from(&skel.maps.of_losses).context("open the loss counters")?,
    );
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

    attached(Attached {
        probes: attached_count,
        covered,
        losses,
    })?;

    let mut poll_result = Ok(());
    let mut busy = false;
    while !stop() && !batcher.borrow().hung_up {
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
    poll_result?;
    if rc < 0 {
        return Err(std::io::Error::from_raw_os_error(-rc)).context("drain the ring buffer");
    }
    Ok(())
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
