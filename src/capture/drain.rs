//! When the consumer drains the ring: in bursts a short pause apart while records keep coming,
//! at once when the ring fills past a threshold or the probes wake it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::batch::Batcher;

/// The pause between two drains while the ring is busy (records wait in it meanwhile, far below
/// its size: 5 ms of 1M opens/s is ~750 KiB). Skipped when the ring is an eighth full.
pub(super) const DRAIN_PAUSE: Duration = Duration::from_millis(5);

/// The fill at which the consumer stops pausing between drains, and whose every multiple the
/// probes wake it at: an eighth of the ring (a power of two, as the ring is), at most 4 MiB.
pub(super) fn drain_threshold(ring_bytes: u32) -> u32 {
    (ring_bytes / 8).clamp(1, 4 << 20)
}

/// Whether the ring holds at least the drain threshold: then the consumer drains without pausing.
pub(super) fn ring_filling(batcher: &Batcher) -> bool {
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
pub(super) struct Pause(std::os::fd::OwnedFd);

impl Pause {
    pub(super) fn new(ring: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Self> {
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
    pub(super) fn wait(&self, d: Duration) {
        use std::os::fd::AsRawFd;
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        let ms = i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: a valid epoll fd and room for one event.
        unsafe { libc::epoll_wait(self.0.as_raw_fd(), &mut ev, 1, ms) };
    }
}
