//! Replaying rules over a store: the `Alerter`'s stream over the segments of a time range, as
//! `record` raised it live. Used by `replay` and `rules test`.

use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;

use crate::event::Event;
use crate::need::Need;
use crate::rules::{Alerter, Raised};
use crate::store::{Reader, ScanStats, SegmentData, SegmentMeta, TimeRange};

/// The alerts of `range` of a store: each segment's events with that segment's `host`, then
/// (unless `f` stopped the scan) the end-of-stream summaries. Where the segments' `recording`
/// changes, a recorder stopped and another started: the first one's end-of-stream summaries, and
/// throttling starts afresh ([`Alerter::next_run`]). `on_event` sees every event first (progress
/// bars). Only events that satisfy `need` must be fed (pass `RuleSet::need` of the alerter's
/// set): segments and blocks that cannot hold one are skipped, and the alerter is told how far
/// time went over them ([`Alerter::advance`]: a throttled rule's summaries fall due by time), so
/// the stream is the one a full scan gives.
pub fn alerts(
    alerter: &mut Alerter,
    reader: &Reader,
    range: &TimeRange,
    need: &Need,
    on_event: impl FnMut(&Event),
    f: impl FnMut(&Raised) -> ControlFlow<()>,
) -> ScanStats {
    alerts_with(alerter, reader, range, need, |_| {}, on_event, f)
}

/// Like [`alerts`], and hands each loaded segment to `on_segment` first (its process table).
pub fn alerts_with(
    alerter: &mut Alerter,
    reader: &Reader,
    range: &TimeRange,
    need: &Need,
    mut on_segment: impl FnMut(&SegmentData),
    mut on_event: impl FnMut(&Event),
    f: impl FnMut(&Raised) -> ControlFlow<()>,
) -> ScanStats {
    // The host of the segment just entered, until the alerter takes it (once per segment, not
    // per event); the previous segment's recording (`None` before the first), and whether the
    // one entered starts another.
    let host: RefCell<Option<String>> = RefCell::new(None);
    let run: RefCell<Option<Option<String>>> = RefCell::new(None);
    let new_run = Cell::new(false);
    let enter = |meta: &SegmentMeta| {
        *host.borrow_mut() = Some(meta.host.clone());
        let this = &meta.recording;
        let mut prev = run.borrow_mut();
        if prev.as_ref().is_some_and(|p| p != this) {
            new_run.set(true);
        }
        *prev = Some(this.clone());
    };
    let flow = Cell::new(ControlFlow::Continue(()));
    let alerter = RefCell::new(alerter);
    let f = RefCell::new(f);
    let emit = |r: &Raised| {
        if flow.get().is_continue() {
            flow.set((f.borrow_mut())(r));
        }
    };
    // Before an event or a skipped stretch: the recording that ended, and the host.
    let catch_up = || {
        let mut alerter = alerter.borrow_mut();
        if new_run.replace(false) {
            alerter.next_run(emit);
        }
        if let Some(h) = host.borrow_mut().take() {
            alerter.set_host(&h);
        }
    };
    let stats = reader.scan_advancing(
        range,
        need,
        |seg| {
            on_segment(seg);
            enter(&seg.meta);
        },
        |meta, latest| {
            enter(meta);
            if let Some(ts) = latest {
                catch_up();
                alerter.borrow_mut().advance(ts, emit);
            }
        },
        |ev| {
            catch_up();
            if flow.get().is_break() {
                return ControlFlow::Break(());
            }
            on_event(ev);
            alerter.borrow_mut().eval(ev, emit);
            flow.get()
        },
    );
    if flow.get().is_continue() {
        alerter.borrow_mut().finish(emit);
    }
    stats
}
