//! The timeline of a time range (the model `timeline` and the HTML report draw): per time bucket,
//! how many events there were, how many failed, how many alerts a rule set raised, how many
//! events were lost and whether no recorder ran (an outage) — so a burst stands out, and a quiet
//! stretch that is a gap in the recording is not mistaken for calm.
//!
//! Buckets are aligned to multiples of their size since the epoch (UTC) and cover the range's
//! recorded span: from the first to the last event of its segments, narrowed by `--since` and
//! `--until` (when both are given, exactly that window). The size is given, or the smallest of
//! [`STEPS`] that gives at most the wanted number of buckets. Plain data (`serde::Serialize`);
//! times in ns since the epoch.

use std::ops::ControlFlow;

use serde::Serialize;

use crate::event::Event;
use crate::need::Need;
use crate::rules::{Alerter, Raised, RuleSet};
use crate::store::{Loss, Reader, ScanStats, TimeRange, OUTAGE};

const SEC: i64 = 1_000_000_000;

/// Bucket sizes chosen automatically, smallest first.
pub const STEPS: &[i64] = &[
    SEC,
    2 * SEC,
    5 * SEC,
    10 * SEC,
    15 * SEC,
    30 * SEC,
    60 * SEC,
    2 * 60 * SEC,
    5 * 60 * SEC,
    10 * 60 * SEC,
    15 * 60 * SEC,
    30 * 60 * SEC,
    3600 * SEC,
    2 * 3600 * SEC,
    3 * 3600 * SEC,
    6 * 3600 * SEC,
    12 * 3600 * SEC,
    86400 * SEC,
    7 * 86400 * SEC,
];

/// A timeline holds at most this many buckets (a given size that needs more is refused).
pub const MAX_BUCKETS: usize = 100_000;

/// How the bucket size is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucketing {
    /// The smallest of [`STEPS`] that gives at most this many buckets.
    Auto(usize),
    /// This size, in ns.
    Fixed(i64),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BucketError {
    #[error("a bucket must be at least 1ms long")]
    TooShort,
    #[error("buckets of {size} over {span} make {count} buckets; at most {MAX_BUCKETS}: give a larger --bucket or a shorter range")]
    TooMany {
        size: String,
        span: String,
        count: u64,
    },
}

/// One bucket: `[start_ns, start_ns + bucket_ns)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub start_ns: i64,
    pub events: u64,
    /// Events that failed (opens and operations).
    pub failures: u64,
    /// Alerts a rule set raised (as `replay` prints them; summaries not counted).
    pub alerts: u64,
    /// Events lost by the recorder (loss records), counted in the bucket where the loss began.
    pub lost: u64,
    /// A time no recorder ran overlaps the bucket: nothing was captured then.
    pub outage: bool,
}

/// A stretch of the range that the answer is missing something for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// What: `pruned` (deleted on purpose), or what the recorder could not capture.
    pub what: String,
    pub from_ns: i64,
    pub to_ns: i64,
}

/// Counts per time bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Timeline {
    pub bucket_ns: i64,
    /// Every bucket of the span, empty ones too, in time order.
    pub buckets: Vec<Bucket>,
    pub events: u64,
    pub failures: u64,
    pub alerts: u64,
    pub lost: u64,
    /// Ranges pruned on purpose and capabilities not captured, overlapping the range.
    pub gaps: Vec<Gap>,
}

/// The size for `bucketing` over `[from_ns, to_ns]`.
pub fn bucket_size(from_ns: i64, to_ns: i64, bucketing: Bucketing) -> Result<i64, BucketError> {
    let count = |size: i64| ((to_ns.div_euclid(size) - from_ns.div_euclid(size)) + 1) as u64;
    match bucketing {
        Bucketing::Fixed(size) if size < 1_000_000 => Err(BucketError::TooShort),
        Bucketing::Fixed(size) => match count(size) {
            n if n > MAX_BUCKETS as u64 => Err(BucketError::TooMany {
                size: humantime(size),
                span: humantime(to_ns - from_ns),
                count: n,
            }),
            _ => Ok(size),
        },
        Bucketing::Auto(wanted) => {
            let wanted = wanted.clamp(1, MAX_BUCKETS) as u64;
            Ok(STEPS
                .iter()
                .copied()
                .find(|&s| count(s) <= wanted)
                .unwrap_or_else(|| {
                    // Longer than the largest step allows: whole weeks.
                    let week = 7 * 86400 * SEC;
                    ((to_ns - from_ns) / wanted as i64 / week + 1) * week
                }))
        }
    }
}

/// A duration the way `--bucket` takes it: `5s`, `2m`, `1h`, `1d`, `500ms`.
pub fn humantime(ns: i64) -> String {
    const UNITS: &[(i64, &str)] = &[
        (7 * 86400 * SEC, "w"),
        (86400 * SEC, "d"),
        (3600 * SEC, "h"),
        (60 * SEC, "m"),
        (SEC, "s"),
        (1_000_000, "ms"),
    ];
    UNITS
        .iter()
        .find(|(u, _)| ns >= *u && ns % u == 0)
        .map_or_else(
            || format!("{ns}ns"),
            |(u, name)| format!("{}{name}", ns / u),
        )
}

/// Gathers a timeline over a known span.
pub struct Builder {
    timeline: Timeline,
    first_ns: i64,
}

impl Builder {
    /// Buckets covering `[from_ns, to_ns]`.
    pub fn new(from_ns: i64, to_ns: i64, bucketing: Bucketing) -> Result<Builder, BucketError> {
        let size = bucket_size(from_ns, to_ns, bucketing)?;
        let first_ns = from_ns.div_euclid(size) * size;
        let n = (to_ns.div_euclid(size) - from_ns.div_euclid(size) + 1) as usize;
        Ok(Builder {
            timeline: Timeline {
                bucket_ns: size,
                buckets: (0..n)
                    .map(|i| Bucket {
                        start_ns: first_ns + i as i64 * size,
                        ..Bucket::default()
                    })
                    .collect(),
                ..Timeline::default()
            },
            first_ns,
        })
    }

    /// The bucket of `ts`, clamped into the span.
    fn at(&mut self, ts_ns: i64) -> Option<&mut Bucket> {
        let last = self.timeline.buckets.len().checked_sub(1)?;
        let i =
            (ts_ns.saturating_sub(self.first_ns) / self.timeline.bucket_ns).clamp(0, last as i64);
        self.timeline.buckets.get_mut(i as usize)
    }

    pub fn event(&mut self, ev: &Event) {
        let failed = ev.ret < 0;
        if let Some(b) = self.at(ev.ts_ns) {
            b.events += 1;
            b.failures += u64::from(failed);
        }
        self.timeline.events += 1;
        self.timeline.failures += u64::from(failed);
    }

    pub fn alert(&mut self, ts_ns: i64) {
        if let Some(b) = self.at(ts_ns) {
            b.alerts += 1;
        }
        self.timeline.alerts += 1;
    }

    /// Marks loss records: lost events, and outages over every bucket they overlap.
    pub fn losses<'a>(&mut self, losses: impl IntoIterator<Item = &'a Loss>) {
        for l in losses.into_iter().filter(|l| l.is_event_loss()) {
            if l.reason == OUTAGE {
                let size = self.timeline.bucket_ns;
                for b in &mut self.timeline.buckets {
                    if b.start_ns <= l.end_ns && l.start_ns < b.start_ns + size {
                        b.outage = true;
                    }
                }
            } else {
                if let Some(b) = self.at(l.start_ns) {
                    b.lost += l.count;
                }
                self.timeline.lost += l.count;
            }
        }
    }

    /// The timeline, with the losses, pruned ranges and coverage gaps a scan saw.
    pub fn finish(mut self, stats: &ScanStats) -> Timeline {
        self.losses(&stats.losses);
        let t = &mut self.timeline;
        t.gaps.extend(stats.pruned.iter().map(|p| Gap {
            what: "pruned".to_owned(),
            from_ns: p.from_ns,
            to_ns: p.to_ns,
        }));
        t.gaps.extend(stats.uncaptured.iter().map(|g| Gap {
            what: g.gap.what.clone(),
            from_ns: g.from_ns,
            to_ns: g.to_ns,
        }));
        self.timeline
    }
}

/// The span a timeline of `range` covers: the range when both ends are given, else its ends
/// narrowed to the first and last event of the store's segments; `None` when nothing is recorded
/// there.
pub fn span(reader: &Reader, range: &TimeRange) -> Option<(i64, i64)> {
    if let (Some(s), Some(u)) = (range.since, range.until) {
        return Some((s, u));
    }
    let (first, last) = reader
        .segments_in(range)
        .filter_map(|s| Some((s.meta.first_ts_ns?, s.meta.last_ts_ns?)))
        .fold(None, |acc: Option<(i64, i64)>, (f, l)| {
            Some(acc.map_or((f, l), |(a, b)| (a.min(f), b.max(l))))
        })?;
    let from = range.since.map_or(first, |s| s.max(first));
    let to = range.until.map_or(last, |u| u.min(last));
    (from <= to).then_some((from, to))
}

/// Reads `range` of a store into a timeline: every event, and with `rules` the alerts they raise.
/// `on_event` sees each event (progress bars). `None` when nothing is recorded in the range.
pub fn read(
    reader: &Reader,
    range: &TimeRange,
    rules: Option<&RuleSet>,
    bucketing: Bucketing,
    mut on_event: impl FnMut(&Event),
) -> Result<Option<(Timeline, ScanStats)>, BucketError> {
    let Some((from, to)) = span(reader, range) else {
        return Ok(None);
    };
    let b = std::cell::RefCell::new(Builder::new(from, to, bucketing)?);
    let mut each = |ev: &Event| {
        on_event(ev);
        b.borrow_mut().event(ev);
    };
    let stats = match rules {
        Some(set) => super::replay::alerts(
            &mut Alerter::new(set),
            reader,
            range,
            &Need::all(),
            &mut each,
            |r| {
                if let Raised::Alert(a) = r {
                    b.borrow_mut().alert(a.event.ts_ns);
                }
                ControlFlow::Continue(())
            },
        ),
        None => reader.scan(range, |ev| {
            each(ev);
            ControlFlow::Continue(())
        }),
    };
    let timeline = b.into_inner().finish(&stats);
    Ok(Some((timeline, stats)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64, ret: i64) -> Event {
        Event {
            ts_ns: ts,
            ret,
            ..Event::default()
        }
    }

    /// The scenario: a 2-second burst inside 163 seconds of quiet stands out.
    #[test]
    fn burst_of_two_seconds_in_163_stands_out_in_automatic_buckets() {
        let t0 = 1_000 * SEC;
        let mut b = Builder::new(t0, t0 + 163 * SEC, Bucketing::Auto(60)).unwrap();
        for s in 0..163 {
            b.event(&ev(t0 + s * SEC, 0));
        }
        for i in 0..2000 {
            b.event(&ev(t0 + 100 * SEC + i * 1_000_000, -2));
        }
        b.alert(t0 + 101 * SEC);
        let t = b.finish(&ScanStats::default());
        assert_eq!(t.bucket_ns, 5 * SEC, "163 s in at most 60 buckets");
        assert_eq!(t.buckets.len(), 33);
        let busiest = t.buckets.iter().max_by_key(|b| b.events).unwrap();
        assert_eq!(busiest.start_ns, t0 + 100 * SEC);
        assert_eq!((busiest.failures, busiest.alerts), (2000, 1));
        let others = t.buckets.iter().filter(|b| b.start_ns != busiest.start_ns);
        assert!(others.map(|b| b.events).max().unwrap() <= 5);
        assert_eq!((t.events, t.failures, t.alerts), (2163, 2000, 1));
    }

    #[test]
    fn losses_count_where_they_began_and_outages_mark_every_bucket_they_cover() {
        let mut b = Builder::new(0, 10 * SEC - 1, Bucketing::Fixed(SEC)).unwrap();
        let loss = |s: i64, e: i64, count: u64, reason: &str| Loss {
            start_ns: s,
            end_ns: e,
            count,
            reason: reason.to_owned(),
        };
        b.losses(&[
            loss(2 * SEC + 5, 3 * SEC, 7, "ringbuf_full"),
            loss(5 * SEC, 7 * SEC + 1, 0, OUTAGE),
            loss(SEC, SEC, 3, "alert_dropped:file"),
        ]);
        let t = b.finish(&ScanStats::default());
        let lost: Vec<u64> = t.buckets.iter().map(|b| b.lost).collect();
        assert_eq!(lost, [0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
        let out: Vec<bool> = t.buckets.iter().map(|b| b.outage).collect();
        assert_eq!(
            out,
            [false, false, false, false, false, true, true, true, false, false]
        );
        assert_eq!(t.lost, 7, "dropped alert lines are not lost events");
    }

    #[test]
    fn bucket_sizes_are_validated_and_chosen_from_the_range() {
        let day = 86400 * SEC;
        assert_eq!(bucket_size(0, 59 * SEC, Bucketing::Auto(60)), Ok(SEC));
        assert_eq!(bucket_size(0, day, Bucketing::Auto(60)), Ok(30 * 60 * SEC));
        assert_eq!(
            bucket_size(0, 1000 * day, Bucketing::Auto(60)),
            Ok(3 * 7 * day)
        );
        assert_eq!(
            bucket_size(0, SEC, Bucketing::Fixed(1000)),
            Err(BucketError::TooShort)
        );
        let err = bucket_size(0, 7 * day, Bucketing::Fixed(SEC)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "buckets of 1s over 1w make 604801 buckets; at most 100000: give a larger --bucket or a shorter range"
        );
        assert_eq!(humantime(90 * SEC), "90s");
        assert_eq!(humantime(500_000_000), "500ms");
    }

    #[test]
    fn timeline_serialises_to_json_for_the_report() {
        let t = Builder::new(0, SEC, Bucketing::Fixed(SEC))
            .unwrap()
            .finish(&ScanStats::default());
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["bucket_ns"], SEC);
        assert_eq!(v["buckets"][1]["start_ns"], SEC);
        assert_eq!(v["buckets"][0]["outage"], false);
    }
}
