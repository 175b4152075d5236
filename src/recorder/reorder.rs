//! The reorder window: records come out of the ring almost, not quite, in time order; they are
//! held for a short window and released sorted, so the store and the live rules see one order.

use crate::capture::decode::Record;
use crate::event::Event;

/// How far behind the newest record events are held to be put in kernel-timestamp order: the
/// default of `record --reorder-window` (as the flag's text, so that its help shows it).
///
/// Records reach the ring in the order their probes called `bpf_ringbuf_output`, which is not
/// quite timestamp order: a probe can be interrupted between taking its timestamp and writing, its
/// vCPU stopped by the hypervisor, and CPUs race. Holding events and releasing them sorted makes
/// the store (and so replay) and the live rules see one and the same time order. An event later
/// than the window is still stored, just out of order, and counted as `late`.
///
/// The default is a wide margin over the disorder measured at full speed on a busy host, and the
/// window's cost is its size (held events fall out of the CPU's cache): docs/benchmarks.md,
/// "Design figures".
pub const DEFAULT_REORDER_WINDOW: &str = "10ms";

/// Holds events until the watermark passes them, then yields them in timestamp order.
///
/// A ring of records in time order, kept in a `Vec` whose slots outside the held range hold
/// released records: the decoder fills the slot after the newest in place
/// ([`Reorder::next_slot`], `Decoder::decode_into`), and release hands each record to the store
/// where it lies. An event is ~200 bytes: moving it into a deque and out again, dropping it (its
/// strings' and process's reference counts) and making the next one were a third of the
/// recorder's CPU (docs/benchmarks.md, "Design figures").
///
/// Records arrive almost sorted, so one is placed by a short scan back from the newest (a
/// binary search beyond), and a late one moves back by swaps. Each entry keeps its timestamp
/// beside it: the search reads a dense `i64` per entry instead of matching on the record. The
/// ring grows to the most the window ever held and stays that size.
#[derive(Default)]
pub(super) struct Reorder {
    /// (timestamp, came after a later record was released, the record)
    slots: Vec<(i64, bool, Record)>,
    /// The oldest held record's slot, and how many are held.
    head: usize,
    len: usize,
    pub(super) newest_ns: i64,
    released_ns: i64,
    pub(super) late: u64,
}

/// How far back from the newest entry a late record's place is looked for one by one before a
/// binary search: almost every late record is a few places late.
const REORDER_SCAN: usize = 16;

impl Reorder {
    /// The slot of the `i`th held record (`i == len`: the next one).
    fn at(&self, i: usize) -> usize {
        (self.head + i) & (self.slots.len() - 1)
    }

    /// The slot after the newest held record, for the decoder to fill: it holds a released
    /// record (or an empty one). [`Reorder::hold_next`] then holds it.
    pub(super) fn next_slot(&mut self) -> &mut Record {
        if self.len == self.slots.len() {
            // Double, the held records first (so that `head` is 0), never below 1024 slots.
            let grown = (self.slots.len() * 2).max(1024);
            self.slots.rotate_left(self.head);
            self.head = 0;
            self.slots
                .resize_with(grown, || (0, false, Record::Open(Event::default(), 0)));
        }
        let i = self.at(self.len);
        &mut self.slots[i].2
    }

    /// Holds the record [`Reorder::next_slot`] gave, in time order: after every record with
    /// the same or an earlier timestamp (ties keep arrival order).
    pub(super) fn hold_next(&mut self) {
        let next = self.at(self.len);
        let ts = self.slots[next].2.ts_ns();
        let late = ts < self.released_ns;
        self.slots[next].0 = ts;
        self.slots[next].1 = late;
        self.late += u64::from(late);
        self.newest_ns = self.newest_ns.max(ts);
        let pos = self.place(ts);
        for j in (pos..self.len).rev() {
            let (a, b) = (self.at(j), self.at(j + 1));
            self.slots.swap(a, b);
        }
        self.len += 1;
    }

    #[cfg(test)]
    fn push(&mut self, rec: Record) {
        *self.next_slot() = rec;
        self.hold_next();
    }

    /// The place (0..=len) after the last held entry with a timestamp `<= ts`.
    fn place(&self, ts: i64) -> usize {
        let mut pos = self.len;
        for _ in 0..REORDER_SCAN {
            match pos.checked_sub(1).map(|i| self.slots[self.at(i)].0) {
                Some(t) if t > ts => pos -= 1,
                _ => return pos,
            }
        }
        // Entries from `pos` on are all later than `ts`: search before them.
        let (mut lo, mut hi) = (0, pos);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.slots[self.at(mid)].0 <= ts {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Hands every held record up to `upto_ns` to `f` in place, in order, with whether it is
    /// late (it arrived after a later record had been released); their slots are then free for
    /// the decoder. A record `f` fails on stays held.
    pub(super) fn release(
        &mut self,
        upto_ns: i64,
        mut f: impl FnMut(&mut Record, bool) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        while self.len > 0 && self.slots[self.head].0 <= upto_ns {
            let (ts, late, rec) = &mut self.slots[self.head];
            self.released_ns = self.released_ns.max(*ts);
            f(rec, *late)?;
            self.head = self.at(1);
            self.len -= 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorder_releases_in_time_order_up_to_the_watermark() {
        let mut r = Reorder::default();
        let at = |ts| {
            Record::Open(
                Event {
                    ts_ns: ts,
                    ..Event::default()
                },
                0,
            )
        };
        for ts in [30, 10, 20, 50, 40] {
            r.push(at(ts));
        }
        let mut out = Vec::new();
        r.release(35, |e, _| {
            out.push(e.ts_ns());
            Ok(())
        })
        .unwrap();
        assert_eq!(out, vec![10, 20, 30]);
        r.push(at(5));
        assert_eq!(r.late, 1);
        r.release(i64::MAX, |e, _| {
            out.push(e.ts_ns());
            Ok(())
        })
        .unwrap();
        assert_eq!(out, vec![10, 20, 30, 5, 40, 50]);
    }

    /// Holding and releasing by turns wraps the ring around, and it grows while wrapped: what
    /// comes out is still every record once, each release in time order, late ones counted.
    #[test]
    fn the_reorder_ring_wraps_and_grows_without_losing_or_reordering_a_record() {
        let mut r = Reorder::default();
        let (mut out, mut model) = (Vec::new(), Vec::<(i64, u32)>::new());
        let (mut late, mut flagged) = (0, 0);
        let mut released = i64::MIN;
        let (mut ts, mut upto) = (1_000_000i64, 0);
        for round in 0..40u32 {
            // Rounds of 300 records, then 1,500: the ring fills, wraps, and doubles wrapped.
            let n = if round % 8 == 7 { 1500 } else { 300 };
            for k in 0..n {
                ts += 10;
                // Every fifth a little behind; one a round behind what was released.
                let t = match k {
                    1 if round > 0 => upto - 5,
                    k if k % 5 == 0 => ts - 35,
                    _ => ts,
                };
                if t < released {
                    late += 1;
                }
                let tid = round * 10_000 + k;
                r.push(Record::Open(
                    Event {
                        ts_ns: t,
                        tid,
                        ..Event::default()
                    },
                    0,
                ));
                model.push((t, tid));
            }
            upto = ts - 2_000;
            model.sort_by_key(|&(t, _)| t);
            let cut = model.partition_point(|&(t, _)| t <= upto);
            let want: Vec<(i64, u32)> = model.drain(..cut).collect();
            let mut got = Vec::new();
            r.release(upto, |e, late| {
                if let Record::Open(e, _) = e {
                    got.push((e.ts_ns, e.tid));
                }
                flagged += u64::from(late);
                Ok(())
            })
            .unwrap();
            released = released.max(got.last().map_or(i64::MIN, |g| g.0));
            assert_eq!(got, want, "round {round}");
            out.extend(got);
        }
        r.release(i64::MAX, |e, _| {
            if let Record::Open(e, _) = e {
                out.push((e.ts_ns, e.tid));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(r.len, 0);
        let pushed = (0..40)
            .map(|r| if r % 8 == 7 { 1500 } else { 300 })
            .sum::<usize>();
        assert_eq!(out.len(), pushed, "every record came out once");
        assert!(r.slots.len() >= 2048, "the ring grew: {}", r.slots.len());
        assert_eq!(r.late, late);
        assert_eq!(flagged, late, "each late record is released flagged");
        assert!(late > 0);
    }

    /// Late by one place, by more than the back scan looks at, and ties: the release order is a
    /// stable sort of the arrival order, whichever way each place was found.
    #[test]
    fn reorder_places_late_records_like_a_stable_sort() {
        let mut r = Reorder::default();
        let mut arrived = Vec::new();
        for i in 0..2000i64 {
            // Mostly rising, every 7th a little late, every 97th far late, many equal stamps.
            let ts = match i {
                i if i % 97 == 0 => i * 10 - 900,
                i if i % 7 == 0 => i * 10 - 25,
                i => (i / 3) * 30,
            };
            arrived.push((ts, i));
            r.push(Record::Open(
                Event {
                    ts_ns: ts,
                    tid: i as u32,
                    ..Event::default()
                },
                0,
            ));
        }
        let mut out = Vec::new();
        r.release(i64::MAX, |e, _| {
            if let Record::Open(e, _) = e {
                out.push((e.ts_ns, i64::from(e.tid)));
            }
            Ok(())
        })
        .unwrap();
        arrived.sort_by_key(|&(ts, _)| ts);
        assert_eq!(out, arrived);
    }
}
