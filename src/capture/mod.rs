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
pub mod coverage;
pub mod decode;
mod drain;
/// The benchmark's counting probes (not used by any command).
#[doc(hidden)]
pub mod floor;
pub mod hooks;
pub mod kernel;
pub mod load;
pub mod losses;
pub mod plan;
pub mod privilege;
pub mod proctable;
pub mod skel;
pub mod users;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use libbpf_rs::skel::Skel;
use libbpf_rs::{ErrorKind, MapHandle, RingBufferBuilder};

pub use batch::{Batch, Gauges, QUEUE_BATCHES};
use batch::{Batcher, BATCH_BYTES};
pub use clock::{boot_ns, clock_anchor_ns};
use coverage::Capability;
use drain::{ring_filling, Pause, DRAIN_PAUSE};
use kernel::Kernel;
pub use losses::KernelLosses;
use plan::Plan;
use skel::OpensLinks;

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
    /// What they capture on this kernel, and what not and why.
    pub coverage: Vec<Capability>,
    /// The probes' loss counters.
    pub losses: KernelLosses,
}

/// The plan for the running kernel (see [`plan::FORCE_COMPAT_ENV`]).
fn plan_here(no_ia32: bool) -> anyhow::Result<Plan> {
    let syscall_events = hooks::SYSCALL_EXIT_EVENTS
        .iter()
        .all(|e| privilege::has_tracepoint("syscalls", e));
    let force_compat = std::env::var_os(plan::FORCE_COMPAT_ENV).is_some_and(|v| v == "1");
    let plan = Plan::new(&Kernel::running(), no_ia32, syscall_events, force_compat)?;
    for n in &plan.notices {
        eprintln!("open-forensics: notice: {n}");
    }
    Ok(plan)
}

/// What the probes capture here, by loading them as `record` does (and unloading them).
pub fn probe_coverage() -> anyhow::Result<Vec<Capability>> {
    let mut objects = load::objects();
    // The ring's size changes nothing the verifier checks: a small legal one (a power of two
    // pages on any page size up to 64 KiB).
    let ring_bytes = 1 << 16;
    let (_skel, plan) = load::load(&mut objects, ring_bytes, plan_here(false)?)?;
    Ok(plan.coverage())
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
    let mut objects = load::objects();
    let (mut skel, plan) = load::load(&mut objects, opts.ring_bytes, plan_here(opts.no_ia32)?)?;
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
        probes: plan.slots.len(),
        coverage: plan.coverage(),
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
