//! One pass over the store for the whole report: each segment's process table and every event
//! into the process tree and the timeline, and, with rules, each alert into both and into the
//! alerts list — the same alert stream `replay` prints.

use std::cell::RefCell;
use std::ops::ControlFlow;

use super::alerts::Alerts;
use crate::event::Event;
use crate::need::Need;
use crate::query::replay;
use crate::query::{timeline, tree};
use crate::rules::{Alerter, Raised, RuleSet};
use crate::store::{Reader, ScanStats, TimeRange};

/// The alert the report is about: the one of its rule nearest to a time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Nearest {
    pub ts_ns: i64,
    pub key: Option<tree::Key>,
}

pub struct Gathered {
    pub tree: tree::Builder,
    pub timeline: Option<timeline::Builder>,
    pub alerts: Alerts,
    pub nearest: Option<Nearest>,
    pub stats: ScanStats,
}

/// Reads `range`; `near` is `(rule, time)` for an alert focus.
pub fn gather(
    reader: &Reader,
    range: &TimeRange,
    rules: Option<&RuleSet>,
    caps: tree::Caps,
    timeline: Option<timeline::Builder>,
    max_alerts: usize,
    near: Option<(&str, i64)>,
) -> Gathered {
    let st = RefCell::new(Gathered {
        tree: tree::Builder::new(*range, caps),
        timeline,
        alerts: Alerts::default(),
        nearest: None,
        stats: ScanStats::default(),
    });
    let on_event = |ev: &Event| {
        let mut g = st.borrow_mut();
        g.tree.event(ev);
        if let Some(t) = &mut g.timeline {
            t.event(ev);
        }
    };
    let stats = match rules {
        Some(set) => replay::alerts_with(
            &mut Alerter::new(set),
            reader,
            range,
            &Need::all(),
            |seg| st.borrow_mut().tree.segment(seg),
            on_event,
            |r| {
                let mut g = st.borrow_mut();
                g.alerts.push(r, max_alerts);
                if let Raised::Alert(a) = r {
                    g.tree.alert(a.event, &a.rule.name);
                    if let Some(t) = &mut g.timeline {
                        t.alert(a.event.ts_ns);
                    }
                    if let Some((rule, at)) = near {
                        let e = a.event;
                        let closer = g
                            .nearest
                            .is_none_or(|n| (e.ts_ns - at).abs() < (n.ts_ns - at).abs());
                        if a.rule.name == rule && closer {
                            g.nearest = Some(Nearest {
                                ts_ns: e.ts_ns,
                                key: e.process.as_deref().map(|p| (p.pid, p.start_ns)),
                            });
                        }
                    }
                }
                ControlFlow::Continue(())
            },
        ),
        None => reader.scan_with(
            range,
            |seg| st.borrow_mut().tree.segment(seg),
            |ev| {
                on_event(ev);
                ControlFlow::Continue(())
            },
        ),
    };
    let mut g = st.into_inner();
    g.stats = stats;
    g
}
