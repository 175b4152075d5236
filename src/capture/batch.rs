//! The hand-over from the ring-buffer consumer to whoever stores the records: batches of raw
//! records on a bounded queue, with backpressure instead of drops, and the levels both sides
//! update for health reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

/// A batch is handed over when it holds this much (or at the end of every poll).
pub(super) const BATCH_BYTES: usize = 256 << 10;
/// Batches the queue holds before the consumer waits (leaving records in the kernel ring): up to
/// 32 MiB, about a second of a busy host.
pub const QUEUE_BATCHES: usize = 128;

/// Records copied out of the ring, framed as a native-endian `u32` length then the bytes.
pub struct Batch {
    pub buf: Vec<u8>,
    pub records: u64,
    /// Boot-clock ns taken just before the consumer last emptied the ring: every record committed
    /// before this instant is in this batch or an earlier one.
    pub drained_at_ns: u64,
}

impl Batch {
    pub fn with_capacity(bytes: usize) -> Batch {
        Batch {
            buf: Vec::with_capacity(bytes),
            records: 0,
            drained_at_ns: 0,
        }
    }

    pub fn push(&mut self, rec: &[u8]) {
        self.buf
            .extend_from_slice(&(rec.len() as u32).to_ne_bytes());
        self.buf.extend_from_slice(rec);
        self.records += 1;
    }

    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.buf[..];
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = (u32::from_ne_bytes(*len) as usize).min(tail.len());
            let (rec, tail) = tail.split_at(len);
            rest = tail;
            Some(rec)
        })
    }
}

#[derive(Debug, Default)]
pub struct Gauges {
    /// The kernel ring's size, and the most it held when the consumer started a batch since
    /// the last [`Gauges::take_ring_peak`].
    pub ring_size: AtomicU64,
    pub ring_peak: AtomicU64,
    /// Batches handed to the store thread and not yet taken.
    pub queued: AtomicU64,
}

impl Gauges {
    pub fn take_ring_peak(&self) -> u64 {
        self.ring_peak.swap(0, Ordering::Relaxed)
    }
}

/// Copies ring records into batches and hands them to the store thread. When the store side
/// lags and the queue is full, it waits: records stay in the kernel ring (backpressure) instead of
/// being dropped in user space, so a loss can only happen where the kernel counts it
/// (`ringbuf_full`), and the ring's size (`--ring-mb`) is how long a stall it absorbs.
pub(super) struct Batcher {
    pub(super) batch: Batch,
    pub(super) tx: SyncSender<Batch>,
    pub(super) hung_up: bool,
    pub(super) gauges: Arc<Gauges>,
    /// The ring, to sample its fill as each batch starts (the most it holds before a drain).
    pub(super) ring: Option<std::ptr::NonNull<libbpf_sys::ring>>,
}

impl Batcher {
    /// Bytes waiting in the kernel ring, if it is known.
    pub(super) fn ring_used(&self) -> Option<u64> {
        // SAFETY: the ring belongs to the RingBuffer, which outlives every callback and the
        // poll loop; `ring` is cleared before it is dropped. Two loads of its positions.
        self.ring
            .map(|r| unsafe { libbpf_sys::ring__avail_data_size(r.as_ptr()) })
    }

    pub(super) fn push(&mut self, rec: &[u8]) -> i32 {
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
    pub(super) fn send(&mut self, drained_at_ns: u64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_frame_records() {
        let mut b = Batch::with_capacity(64);
        b.push(b"abc");
        b.push(b"");
        b.push(b"defgh");
        let got: Vec<&[u8]> = b.records().collect();
        assert_eq!(got, vec![&b"abc"[..], b"", b"defgh"]);
        assert_eq!(b.records, 3);
    }
}
