//! The store thread's work on the records themselves: decode, reorder, then store and evaluate
//! each event in time order.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;

use super::identity::Watched;
use super::reorder::Reorder;
use super::supervisor::Counters;
use crate::alerts::Outputs;
use crate::capture::decode::{self, Record};
use crate::capture::proctable::{Change, ProcTable};
use crate::capture::Batch;
use crate::diag::debug;
use crate::rules::{Alerter, Raised, RuleSet};
use crate::store::{Writer, WriterSummary};

/// Where events go.
pub struct Sinks {
    pub writer: Writer,
    pub rules: Option<RuleSet>,
    /// Alert outputs (each with its own thread and queue: sending never blocks).
    pub alerts: Outputs,
    /// Processes, with the `/proc` snapshot taken at start.
    pub procs: ProcTable,
}

/// Stores an event, then runs the rules on it (after the store has interned its strings, so the
/// engine's per-string caches work live exactly as on replay).
pub(super) struct Emitter {
    pub(super) writer: Writer,
    pub(super) engine: Option<Alerter<'static>>,
    pub(super) alerts: Outputs,
    pub(super) procs: ProcTable,
    /// Identities of watched files: sets each open's `alias_of`.
    pub(super) watched: Watched,
    /// The string table (segment) whose host the alerter names; alerts say the host of the
    /// segment their event is stored in, as replay does.
    pub(super) host_table: u64,
    pub(super) counters: Counters,
}

impl Emitter {
    /// Applies a record in time order: lifecycle records to the process table (and the store),
    /// opens to the store and the rules, with the image their process ran at that instant.
    /// `late`: it came after a later record (the segment's metadata counts those).
    /// An exec is both: its image goes to the table first, then its event to the store and
    /// the rules, attached to that image.
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
                let start = r.start_boot;
                match r.event.as_mut() {
                    Some(ev) => (ev, start),
                    None => return Ok(()),
                }
            }
        };
        // A process made up from the open itself is stored by `append` with the event.
        self.procs.attach(ev, start);
        self.watched.mark(ev);
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
pub(super) fn send(alerts: &Outputs, by_rule: &mut BTreeMap<String, u64>, r: &Raised) {
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

/// The store thread's work on the records themselves: decode in ring order (a directory cache
/// slot's defining record precedes its uses there, not always in time order), hold for the
/// reorder window, then store and evaluate in time order. Separate from [`run`]'s ticks so that
/// `benches/decode.rs` measures exactly this.
pub struct Stage {
    pub(super) decoder: decode::Decoder,
    pub(super) reorder: Reorder,
    pub(super) em: Emitter,
    pub(super) anchor_ns: i64,
    pub(super) window_ns: i64,
    /// Records that did not decode since the loss tracker last took them.
    pub(super) malformed: u64,
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
                watched: Watched::for_rules(rules.as_ref()),
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
                        debug(&format!("dropping a record: {e}"));
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
            debug(&format!(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
