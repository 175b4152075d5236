//! Replaying rules over a store: the `Alerter`'s stream over the segments of a time range, as
//! `record` raised it live. Used by `replay` and `rules test`.

use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;

use crate::event::Event;
use crate::need::Need;
use crate::rules::{Alerter, Raised};
use crate::store::{Reader, ScanStats, SegmentData, TimeRange};

/// The alerts of `range` of a store: each segment's events with that segment's `host`, then
/// (unless `f` stopped the scan) the end-of-stream summaries. Where the segments' `recording`
/// changes, a recorder stopped and another started: the first one's end-of-stream summaries, and
/// throttling starts afresh ([`Alerter::next_run`]). `on_event` sees every event first (progress
/// bars). Only events that satisfy `need` must be fed: segments and blocks that cannot hold one
/// are skipped (pass `RuleSet::alert_need` of the alerter's set).
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
    mut f: impl FnMut(&Raised) -> ControlFlow<()>,
) -> ScanStats {
    let host: RefCell<Option<String>> = RefCell::new(None);
    // The previous segment's run (`None` before the first), and whether this one starts
    // another.
    let run: RefCell<Option<Option<String>>> = RefCell::new(None);
    let new_run = Cell::new(false);
    let mut flow = ControlFlow::Continue(());
    let stats = reader.scan_where(
        range,
        need,
        |seg| {
            on_segment(seg);
            *host.borrow_mut() = Some(seg.meta.host.clone());
            let this = &seg.meta.recording;
            let mut prev = run.borrow_mut();
            if prev.as_ref().is_some_and(|p| p != this) {
                new_run.set(true);
            }
            *prev = Some(this.clone());
        },
        |ev| {
            if new_run.replace(false) {
                alerter.next_run(|r| {
                    if flow.is_continue() {
                        flow = f(r);
                    }
                });
                if flow.is_break() {
                    return flow;
                }
            }
            if let Some(h) = host.borrow_mut().take() {
                alerter.set_host(&h);
            }
            on_event(ev);
            alerter.eval(ev, |r| {
                if flow.is_continue() {
                    flow = f(r);
                }
            });
            flow
        },
    );
    if flow.is_continue() {
        alerter.finish(|r| {
            if flow.is_continue() {
                flow = f(r);
            }
        });
    }
    stats
}
