//! The probes' clock (`bpf_ktime_get_boot_ns`) as user space reads it, and its anchor to the wall
//! clock: events carry boot-clock timestamps from the kernel, stored as wall time.

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
