//! The store side of capture, on its own thread: batches of raw records → decode → reorder →
//! store → rules → alerts, plus loss accounting.
//!
//! The ring-buffer consumer only copies records into [`Batch`]es and hands them over a bounded
//! queue; when the queue is full it waits, leaving records in the kernel ring (backpressure): the
//! only losses are the kernel's (`ringbuf_full`), counted per CPU and recorded here. (Segments
//! written before this may hold `queue_full` losses: the user-space drops of earlier versions.)
//!
//! Alerts (the `rules::Alerter` stream: throttled, with summaries) are handed to
//! `alerts::Outputs`, which only enqueues; every second the lines outputs dropped become
//! `alert_dropped:OUTPUT` loss records, and at the end outputs get their grace period before the
//! store is sealed, so what they could not deliver is recorded too.
//!
//! Once per tick, between two events, a [`Supervisor`] (`crate::service`) gets the writer, the
//! counters, the gauges and the outputs' states: retention, health files and SIGHUP reloads happen
//! there, and a reload swaps the rule set at that point, so every event is evaluated by exactly
//! one rule set.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use super::decode::{self, Record};
use super::proctable::{Change, ProcTable};
use super::skel::types::of_loss_reason;
use crate::alerts::{OutputState, Outputs};
use crate::event::Event;
use crate::rules::{Alerter, Raised, RuleSet};
use crate::store::{Loss, Writer, WriterSummary};

/// How far behind the newest record events are held to be put in kernel-timestamp order: the
/// default of `record --reorder-window` (as the flag's text, so that its help shows it).
///
/// Records reach the ring in the order their probes called `bpf_ringbuf_output`, which is not
/// quite timestamp order: a probe can be interrupted between taking its timestamp and writing, its
/// vCPU stopped by the hypervisor, and CPUs race. Holding events and releasing them sorted makes
/// the store (and so replay) and the live rules see one and the same time order. An event later
/// than the window is still stored, just out of order, and counted as `late`.
///
/// Measured on a 2-vCPU VM at full speed, a busy host included: ~1 record in 10,000 arrives
/// behind a later one, by at most 133 µs; 10 ms leaves a margin of 75 over that. The window's
/// cost is its size: at 1M events/s, 100 ms held ~20 MB of events, out of the CPU's cache, and
/// cost the recorder 0.56 CPU-s per million events against 0.47 at 10 ms
/// (`benches/recorder_cpu.sh`).
pub const DEFAULT_REORDER_WINDOW: &str = "10ms";

/// How often losses are read, the writer ticked and alerts flushed.
const TICK: Duration = Duration::from_secs(1);

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

/// Where events go.
pub struct Sinks {
    pub writer: Writer,
    pub rules: Option<RuleSet>,
    /// Alert outputs (each with its own thread and queue: sending never blocks).
    pub alerts: Outputs,
    /// Processes, with the `/proc` snapshot taken at start.
    pub procs: ProcTable,
}

/// Where losses are counted outside this thread.
pub struct LossSources {
    /// The kernel's per-CPU `of_losses` array.
    pub kernel: MapHandle,
}

pub struct Settings {
    pub anchor_ns: i64,
    /// See [`DEFAULT_REORDER_WINDOW`].
    pub reorder_window_ns: i64,
    pub stats_every: Option<Duration>,
    pub started: Instant,
    /// Told every tick (retention, health files, SIGHUP reloads: see `crate::service`).
    pub supervisor: Option<Box<dyn Supervisor>>,
    pub gauges: Arc<Gauges>,
}

/// Levels both capture threads update, for health reports.
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
        self.ring_peak.swap(0, AtomicOrdering::Relaxed)
    }
}

/// Counts the store thread keeps for health reports.
#[derive(Debug, Default)]
pub struct Counters {
    pub alerts_by_rule: BTreeMap<String, u64>,
    /// Losses recorded here, by reason (the kernel's, and malformed records).
    pub lost_by_reason: BTreeMap<&'static str, u64>,
}

/// What a supervisor sees each tick, between two events.
pub struct Tick<'a> {
    pub writer: &'a mut Writer,
    pub counters: &'a Counters,
    pub gauges: &'a Gauges,
    /// The alert outputs' states (name, ok/retrying/down, sent, dropped, queued).
    pub outputs: Vec<OutputState>,
    pub now_ns: i64,
}

/// Runs on the store thread once per tick, between events: what it returns as new rules is in
/// force from the next event on (no event is evaluated twice or skipped).
pub trait Supervisor: Send {
    /// `Some(rules)` swaps the live rule set (`Some(None)`: no rules any more).
    fn tick(&mut self, tick: Tick<'_>) -> anyhow::Result<Option<Option<RuleSet>>>;

    /// The retention in force now (a reload may have changed it since the start), for the
    /// pass after the last seal.
    fn retention(&self) -> Option<crate::store::Retention> {
        None
    }
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub summary: WriterSummary,
    /// Events that arrived after later ones had been released (stored out of order).
    pub late: u64,
    /// The alert outputs' final counters.
    pub outputs: Vec<OutputState>,
    /// The supervisor's retention at the end ([`Supervisor::retention`]).
    pub retention: Option<crate::store::Retention>,
}

/// Holds events until the watermark passes them, then yields them in timestamp order.
///
/// A ring of records in time order, kept in a `Vec` whose slots outside the held range hold
/// released records: the decoder fills the slot after the newest in place
/// ([`Reorder::next_slot`], `Decoder::decode_into`), and release hands each record to the store
/// where it lies. An event is ~200 bytes; moving it into a deque and out again cost a fifth of
/// the recorder's CPU, and dropping it (its strings' and process's reference counts) and making
/// the next one a tenth more (`perf record` of `of-store` under `benches/openloop.c`).
///
/// Records arrive almost sorted, so one is placed by a short scan back from the newest (a
/// binary search beyond), and a late one moves back by swaps. Each entry keeps its timestamp
/// beside it: the search reads a dense `i64` per entry instead of matching on the record. The
/// ring grows to the most the window ever held and stays that size.
#[derive(Default)]
struct Reorder {
    /// (timestamp, came after a later record was released, the record)
    slots: Vec<(i64, bool, Record)>,
    /// The oldest held record's slot, and how many are held.
    head: usize,
    len: usize,
    newest_ns: i64,
    released_ns: i64,
    late: u64,
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
    fn next_slot(&mut self) -> &mut Record {
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
    fn hold_next(&mut self) {
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
    fn release(
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

/// Stores an event, then runs the rules on it (after the store has interned its strings, so the
/// engine's per-string caches work live exactly as on replay).
struct Emitter {
    writer: Writer,
    engine: Option<Alerter<'static>>,
    alerts: Outputs,
    procs: ProcTable,
    /// The string table (segment) whose host the alerter names; alerts say the host of the
    /// segment their event is stored in, as replay does.
    host_table: u64,
    counters: Counters,
}

impl Emitter {
    /// Applies a record in time order: lifecycle records to the process table (and the store),
    /// opens to the store and the rules, with the image their process ran at that instant.
    /// `late`: it came after a later record (the segment's metadata counts those).
    fn emit(&mut self, rec: &mut Record, late: bool) -> anyhow::Result<()> {
        let (ev, start) = match rec {
            Record::Open(ev, start) => (ev, *start),
            Record::Proc(r) => {
                match self.procs.apply(r) {
                    Some(Change::Image(p)) => self.writer.add_process(&p),
                    Some(Change::Exit(p, status, ts)) => self.writer.record_exit(&p, status, ts),
                    None => Ok(()),
                }
                .context("store a process")?;
                return Ok(());
            }
        };
        // A process made up from the open itself is stored by `append` with the event.
        self.procs.attach(ev, start);
        self.writer.append(ev).context("store an event")?;
        if late {
            self.writer.mark_late();
        }
        if let Some(engine) = self.engine.as_mut() {
            if ev.table != self.host_table {
                if let Some(h) = self.writer.host() {
                    engine.set_host(h);
                    self.host_table = ev.table;
                }
            }
            let (alerts, by_rule) = (&self.alerts, &mut self.counters.alerts_by_rule);
            engine.eval(ev, |r| send(alerts, by_rule, r));
        }
        Ok(())
    }
}

/// Hands one alert (or throttle summary) to the outputs and counts alerts by rule for the health
/// files.
fn send(alerts: &Outputs, by_rule: &mut BTreeMap<String, u64>, r: &Raised) {
    if let Raised::Alert(a) = r {
        match by_rule.get_mut(&a.rule.name) {
            Some(n) => *n += 1,
            None => {
                by_rule.insert(a.rule.name.clone(), 1);
            }
        }
    }
    alerts.send(r);
}

/// Turns counter growth into loss records covering the time since the last read.
struct LossTracker {
    src: LossSources,
    kernel_seen: Vec<u64>,
    since_ns: i64,
}

impl LossTracker {
    fn kernel_reason(code: u32) -> &'static str {
        match of_loss_reason(code) {
            of_loss_reason::OF_LOSS_RINGBUF_FULL => "ringbuf_full",
            of_loss_reason::OF_LOSS_STASH_FULL => "stash_full",
            of_loss_reason::OF_LOSS_ALERT_DROPPED => crate::store::ALERT_DROPPED,
            _ => "kernel",
        }
    }

    fn read_kernel(&self, code: u32) -> anyhow::Result<u64> {
        let per_cpu = self
            .src
            .kernel
            .lookup_percpu(&code.to_ne_bytes(), MapFlags::ANY)
            .context("read the kernel's loss counters")?
            .unwrap_or_default();
        Ok(per_cpu
            .iter()
            .filter_map(|v| v.get(..8)?.try_into().ok().map(u64::from_ne_bytes))
            .sum())
    }

    /// `malformed`: records that did not decode since the last call.
    fn poll(
        &mut self,
        writer: &mut Writer,
        counters: &mut Counters,
        malformed: u64,
        now_ns: i64,
    ) -> anyhow::Result<()> {
        let mut grown: Vec<(u64, &'static str)> = Vec::new();
        for code in 0..self.kernel_seen.len() {
            let total = self.read_kernel(code as u32)?;
            let seen = &mut self.kernel_seen[code];
            if total > *seen {
                grown.push((total - *seen, Self::kernel_reason(code as u32)));
                *seen = total;
            }
        }
        if malformed > 0 {
            grown.push((malformed, "malformed"));
        }
        for (count, reason) in grown {
            *counters.lost_by_reason.entry(reason).or_default() += count;
            writer
                .record_loss(Loss {
                    start_ns: self.since_ns,
                    end_ns: now_ns,
                    count,
                    reason: reason.to_owned(),
                })
                .context("record a loss")?;
        }
        self.since_ns = now_ns;
        Ok(())
    }
}

/// Alert lines the outputs dropped since the last call, as loss records (`alert_dropped:NAME`,
/// which queries report apart from lost events).
fn record_alert_drops(
    writer: &mut Writer,
    drops: Vec<(String, u64)>,
    since_ns: &mut i64,
    now_ns: i64,
) -> anyhow::Result<()> {
    for (name, count) in drops {
        let base = LossTracker::kernel_reason(of_loss_reason::OF_LOSS_ALERT_DROPPED.0);
        writer
            .record_loss(Loss {
                start_ns: *since_ns,
                end_ns: now_ns,
                count,
                reason: format!("{base}:{name}"),
            })
            .context("record a loss")?;
    }
    *since_ns = now_ns;
    Ok(())
}

/// Bytes of the files in the store directory (for `--stats`).
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

pub fn stats_line(events: u64, lost: u64, elapsed: Duration, bytes: u64) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    format!(
        "events={events} lost={lost} events/s={:.0} bytes={bytes} elapsed={:.1}s",
        events as f64 / secs,
        secs
    )
}

/// The store thread's work on the records themselves: decode in ring order (a directory cache
/// slot's defining record precedes its uses there, not always in time order), hold for the
/// reorder window, then store and evaluate in time order. Separate from [`run`]'s ticks so that
/// `benches/decode.rs` measures exactly this.
pub struct Stage {
    decoder: decode::Decoder,
    reorder: Reorder,
    em: Emitter,
    anchor_ns: i64,
    window_ns: i64,
    /// Records that did not decode since the loss tracker last took them.
    malformed: u64,
}

impl Stage {
    /// Stores the processes already running first: they are part of the first segment's
    /// history.
    pub fn new(sinks: Sinks, anchor_ns: i64, window_ns: i64) -> anyhow::Result<Stage> {
        let Sinks {
            mut writer,
            rules,
            alerts,
            procs,
        } = sinks;
        for p in procs.snapshot_images() {
            writer.add_process(&p).context("store a process")?;
        }
        Ok(Stage {
            decoder: decode::Decoder::default(),
            reorder: Reorder::default(),
            em: Emitter {
                writer,
                engine: rules.map(|r| Alerter::shared(Arc::new(r))),
                alerts,
                procs,
                host_table: u64::MAX,
                counters: Counters::default(),
            },
            anchor_ns,
            window_ns,
            malformed: 0,
        })
    }

    /// Decodes a batch and emits what the reorder window no longer holds.
    pub fn take(&mut self, batch: &Batch) -> anyhow::Result<()> {
        for rec in batch.records() {
            let slot = self.reorder.next_slot();
            match self.decoder.decode_into(rec, self.anchor_ns, slot) {
                Ok(()) => self.reorder.hold_next(),
                // The slot stays free: the next record is decoded into it.
                Err(e) => {
                    if self.malformed == 0 {
                        super::debug(&format!("dropping a record: {e}"));
                    }
                    self.malformed += 1;
                }
            }
        }
        let drained = (batch.drained_at_ns as i64).wrapping_add(self.anchor_ns);
        let upto = self
            .reorder
            .newest_ns
            .max(drained)
            .saturating_sub(self.window_ns);
        let em = &mut self.em;
        self.reorder.release(upto, |rec, late| em.emit(rec, late))
    }

    /// Emits everything held, and ends the rules' throttle windows.
    pub fn release_all(&mut self) -> anyhow::Result<()> {
        let em = &mut self.em;
        self.reorder
            .release(i64::MAX, |rec, late| em.emit(rec, late))?;
        if self.decoder.unknown_dirs > 0 {
            // Only after a lost defining record (counted as ringbuf_full): those opens keep their
            // raw path, unresolved.
            super::debug(&format!(
                "{} opens named a directory cache slot whose defining record was lost",
                self.decoder.unknown_dirs
            ));
        }
        if let Some(engine) = em.engine.as_mut() {
            // Throttle summaries of windows still open: replay emits them at its end too.
            let (alerts, by_rule) = (&em.alerts, &mut em.counters.alerts_by_rule);
            engine.finish(|r| send(alerts, by_rule, r));
        }
        Ok(())
    }

    /// Everything held emitted, the store sealed.
    pub fn close(mut self) -> anyhow::Result<WriterSummary> {
        self.release_all()?;
        self.em.writer.close().context("seal the store")
    }
}

/// Runs until the consumer hangs up, then releases everything held, records the last losses and
/// seals the store.
pub fn run(
    rx: Receiver<Batch>,
    sinks: Sinks,
    losses: LossSources,
    mut settings: Settings,
) -> anyhow::Result<Outcome> {
    let anchor = settings.anchor_ns;
    let now_ns = || super::boot_ns().wrapping_add(anchor);
    let mut stage = Stage::new(sinks, anchor, settings.reorder_window_ns)?;
    let mut drops_since = now_ns();
    let mut loss = LossTracker {
        kernel_seen: vec![0; of_loss_reason::OF_LOSS_NR.0 as usize],
        src: losses,
        since_ns: now_ns(),
    };
    let mut last_tick = Instant::now();
    let mut last_stats = Instant::now();
    loop {
        match rx.recv_timeout(TICK / 4) {
            Ok(batch) => {
                settings.gauges.queued.fetch_sub(1, AtomicOrdering::Relaxed);
                stage.take(&batch)?;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            let malformed = std::mem::take(&mut stage.malformed);
            let em = &mut stage.em;
            loss.poll(&mut em.writer, &mut em.counters, malformed, now_ns())?;
            em.procs.sweep(now_ns());
            em.writer.tick().context("commit to the store")?;
            for w in em.writer.take_warnings() {
                eprintln!("open-forensics: warning: {w}");
            }
            if let Some(sup) = settings.supervisor.as_mut() {
                let tick = Tick {
                    writer: &mut em.writer,
                    counters: &em.counters,
                    gauges: &settings.gauges,
                    outputs: em.alerts.states(),
                    now_ns: now_ns(),
                };
                // The rule-swap point: between two events, so each is evaluated exactly once.
                if let Some(rules) = sup.tick(tick)? {
                    // Windows the old set throttled are summarised now: a reload loses no count.
                    if let Some(old) = em.engine.as_mut() {
                        let (alerts, by_rule) = (&em.alerts, &mut em.counters.alerts_by_rule);
                        old.finish(|r| send(alerts, by_rule, r));
                    }
                    em.engine = rules.map(|r| Alerter::shared(Arc::new(r)));
                    em.host_table = u64::MAX;
                }
            } else if super::HANGUP.swap(false, AtomicOrdering::SeqCst) {
                eprintln!("open-forensics: SIGHUP: nothing to reload; still recording");
            }
            record_alert_drops(
                &mut em.writer,
                em.alerts.take_drops(),
                &mut drops_since,
                now_ns(),
            )?;
            if let Some(every) = settings.stats_every {
                if last_stats.elapsed() >= every {
                    last_stats = Instant::now();
                    let s = em.writer.summary();
                    eprintln!(
                        "open-forensics: stats: {}{}",
                        stats_line(
                            s.events,
                            s.lost,
                            settings.started.elapsed(),
                            dir_bytes(em.writer.dir())
                        ),
                        crate::alerts::stats_text(&em.alerts.states())
                    );
                }
            }
        }
    }
    stage.release_all()?;
    let (mut em, late, malformed) = (stage.em, stage.reorder.late, stage.malformed);
    loss.poll(&mut em.writer, &mut em.counters, malformed, now_ns())?;
    let Emitter {
        mut writer, alerts, ..
    } = em;
    // Outputs get their grace period; what they could not deliver is recorded as a loss.
    let drops = alerts.close_with_states();
    record_alert_drops(&mut writer, drops.0, &mut drops_since, now_ns())?;
    let summary = writer.close().context("seal the store")?;
    Ok(Outcome {
        summary,
        late,
        outputs: drops.1,
        retention: settings.supervisor.as_ref().and_then(|s| s.retention()),
    })
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

    /// A failed open of an absolute path, as the probes write it.
    fn open_record(ts_ns: u64, tid: u32) -> Vec<u8> {
        use crate::event::{PathSource, Syscall};
        let mut h = decode::tests::hdr(Syscall::Openat, PathSource::Raw);
        (h.ts_ns, h.tid, h.ret) = (ts_ns, tid, -2);
        decode::tests::record(h, b"/etc/hostname", &[])
    }

    /// An open that reaches the store thread after a later one has been released (its probe
    /// was delayed past the window) is still stored, after it, and counted as late in the
    /// metadata of its segment — where `segments` shows it — as well as in the run's count.
    #[test]
    fn an_event_later_than_the_window_is_stored_and_counted_late_in_its_segment() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let sinks = Sinks {
            writer: Writer::open(&dir, crate::store::RotateConfig::default()).unwrap(),
            rules: None,
            alerts: Outputs::none(),
            procs: ProcTable::new(0, std::collections::HashMap::new()),
        };
        let mut stage = Stage::new(sinks, 0, 1_000).unwrap();
        let batch = |recs: &[(u64, u32)], drained_at_ns| {
            let mut b = Batch::with_capacity(1024);
            for &(ts, tid) in recs {
                b.push(&open_record(ts, tid));
            }
            b.drained_at_ns = drained_at_ns;
            b
        };
        stage
            .take(&batch(&[(10_000, 1), (20_000, 2)], 20_000))
            .unwrap();
        // 10,000 is out; 5,000 arrives after it.
        stage
            .take(&batch(&[(30_000, 3), (5_000, 4)], 30_000))
            .unwrap();
        assert_eq!(stage.reorder.late, 1);
        stage.close().unwrap();
        let (segments, bad) = crate::store::list_segments(&dir).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(segments.iter().map(|s| s.meta.late).sum::<u64>(), 1);
        let mut tids = Vec::new();
        crate::store::Reader::open(&dir)
            .unwrap()
            .scan(&crate::store::TimeRange::default(), |e| {
                tids.push(e.tid);
                std::ops::ControlFlow::Continue(())
            });
        assert_eq!(tids, vec![1, 4, 2, 3]);
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
