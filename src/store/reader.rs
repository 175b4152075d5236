//! Reading history: the segments of a time range, loaded one at a time (never written), decoded
//! into `Event`s.

use std::ops::ControlFlow;
use std::path::Path;

use super::dir::StoreDir;
use super::listing::{list, SegmentInfo};
use super::retention::PrunedRange;
use super::segment::{Loss, SegmentData, SegmentMeta, Uncaptured};
use super::{Need, Result, StoreError, TimeRange};
use crate::event::Event;

/// All segments of a store, for reading.
pub struct Reader {
    dir: StoreDir,
    segments: Vec<SegmentInfo>,
    /// Sealed files whose metadata could not be read.
    unreadable: Vec<StoreError>,
    /// Entries skipped because they are not segment files (links, FIFOs, directories).
    skipped: Vec<String>,
    /// History deleted on purpose (`prune`, retention).
    pruned: Vec<PrunedRange>,
}

/// What a scan saw; `errors` are segments that could not be read (the scan went on without them).
#[derive(Debug, Default)]
pub struct ScanStats {
    /// Segments read.
    pub segments: u64,
    /// Segments in the range left unread because their summary rules out what was asked for.
    pub segments_skipped: u64,
    /// Blocks of the segments read left undecoded for the same reason.
    pub blocks_skipped: u64,
    pub events_scanned: u64,
    pub events_in_range: u64,
    /// Loss records overlapping the range.
    pub losses: Vec<Loss>,
    pub errors: Vec<StoreError>,
    /// What was skipped without being an error (entries that are not segment files).
    pub warnings: Vec<String>,
    /// Ranges of history deleted on purpose that overlap the range (the answer holds nothing
    /// from them: not because nothing happened).
    pub pruned: Vec<PrunedRange>,
    /// What the recorder could not capture, and over which span of the range's segments.
    pub uncaptured: Vec<CoverageGap>,
}

/// A capability missing from the recording over a span of time (see [`Uncaptured`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoverageGap {
    pub gap: Uncaptured,
    pub from_ns: i64,
    pub to_ns: i64,
}

impl ScanStats {
    /// Takes note of the coverage gaps a segment of the range carries.
    pub fn note_coverage(&mut self, meta: &SegmentMeta) {
        let (Some(first), Some(last)) = (meta.first_ts_ns, meta.last_ts_ns) else {
            return;
        };
        for gap in &meta.uncaptured {
            match self.uncaptured.iter_mut().find(|g| g.gap == *gap) {
                Some(g) => (g.from_ns, g.to_ns) = (g.from_ns.min(first), g.to_ns.max(last)),
                None => self.uncaptured.push(CoverageGap {
                    gap: gap.clone(),
                    from_ns: first,
                    to_ns: last,
                }),
            }
        }
    }

    /// Events lost in the range (loss records of alert lines an output dropped do not count:
    /// every event is there).
    pub fn lost(&self) -> u64 {
        self.event_losses().map(|l| l.count).sum()
    }

    /// The loss records that count lost events.
    pub fn event_losses(&self) -> impl Iterator<Item = &Loss> {
        self.losses.iter().filter(|l| l.is_event_loss())
    }

    /// The loss records of alert lines that outputs dropped while recording (replay shows them).
    pub fn alert_drops(&self) -> impl Iterator<Item = &Loss> {
        self.losses.iter().filter(|l| !l.is_event_loss())
    }

    /// Events in the pruned ranges that overlap the range.
    pub fn pruned_events(&self) -> u64 {
        self.pruned.iter().map(|p| p.events).sum()
    }
}

impl Reader {
    /// Lists the store; fails only if the directory itself cannot be read.
    pub fn open(dir: &Path) -> Result<Reader> {
        let dir = StoreDir::open_for_reading(dir)?;
        let (segments, problems) = list(&dir)?;
        let (skipped, unreadable): (Vec<_>, Vec<_>) = problems
            .into_iter()
            .partition(|e| matches!(e, StoreError::Skipped { .. } | StoreError::Tampered { .. }));
        let pruned = super::retention::pruned_ranges(&dir);
        Ok(Reader {
            pruned,
            dir,
            segments,
            unreadable,
            skipped: skipped.iter().map(|e| e.to_string()).collect(),
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Loads one listed segment.
    pub fn load(&self, info: &SegmentInfo) -> Result<SegmentData> {
        info.load(&self.dir)
    }

    pub fn segments(&self) -> &[SegmentInfo] {
        &self.segments
    }

    /// Segments that overlap `range`, in time order.
    pub fn segments_in(&self, range: &TimeRange) -> impl Iterator<Item = &SegmentInfo> {
        let range = *range;
        self.segments
            .iter()
            .filter(move |s| s.meta.overlaps(&range))
    }

    /// Calls `f` with every event in `range`, segment by segment in time order. A segment that cannot
    /// be read is recorded in the returned stats and skipped.
    pub fn scan<F>(&self, range: &TimeRange, f: F) -> ScanStats
    where
        F: FnMut(&Event) -> ControlFlow<()>,
    {
        self.scan_with(range, |_| {}, f)
    }

    /// Like `scan`, and hands each loaded segment to `on_segment` before its events (e.g. to read
    /// its process table: one load per segment serves both).
    pub fn scan_with<S, F>(&self, range: &TimeRange, on_segment: S, f: F) -> ScanStats
    where
        S: FnMut(&SegmentData),
        F: FnMut(&Event) -> ControlFlow<()>,
    {
        self.scan_where(range, &Need::all(), on_segment, f)
    }

    /// Like `scan_with`, skipping the segments (unread) and blocks (undecoded) whose summaries
    /// rule out `need`: `f` still sees every event that satisfies `need`, and maybe others
    /// (the caller filters). A segment with loss records is read for them; one without a
    /// summary (sealed before schema 6, or active) is read, its blocks pruned where they have
    /// summaries.
    pub fn scan_where<S, F>(&self, range: &TimeRange, need: &Need, on_segment: S, f: F) -> ScanStats
    where
        S: FnMut(&SegmentData),
        F: FnMut(&Event) -> ControlFlow<()>,
    {
        self.scan_pruned(
            range,
            need,
            on_segment,
            None::<fn(&SegmentMeta, Option<i64>)>,
            f,
        )
    }

    /// Like [`Reader::scan_where`], for a reader whose state moves with time, not only with the
    /// events it wants (the alert stream: a throttled rule's summary falls due at the first event
    /// past its window, whatever that event is). `on_skip` is called, in stream order, for each
    /// segment or block left unread, with its metadata and its latest event time (`None`: no
    /// event) — what the skipped events would have told such a reader. Exact: a block holding
    /// events past the range's end is decoded rather than summarized by its latest time, and so is
    /// the last block of a recording (and of the range), whose last event in arrival order (not
    /// the latest) ends the recording's alert stream.
    pub fn scan_advancing<S, K, F>(
        &self,
        range: &TimeRange,
        need: &Need,
        on_segment: S,
        on_skip: K,
        f: F,
    ) -> ScanStats
    where
        S: FnMut(&SegmentData),
        K: FnMut(&SegmentMeta, Option<i64>),
        F: FnMut(&Event) -> ControlFlow<()>,
    {
        self.scan_pruned(range, need, on_segment, Some(on_skip), f)
    }

    fn scan_pruned<S, K, F>(
        &self,
        range: &TimeRange,
        need: &Need,
        mut on_segment: S,
        mut on_skip: Option<K>,
        mut f: F,
    ) -> ScanStats
    where
        S: FnMut(&SegmentData),
        K: FnMut(&SegmentMeta, Option<i64>),
        F: FnMut(&Event) -> ControlFlow<()>,
    {
        let mut stats = ScanStats {
            errors: self.unreadable_errors(),
            warnings: self.skipped.clone(),
            pruned: self.pruned_in(range),
            ..ScanStats::default()
        };
        let advancing = on_skip.is_some();
        let past_end = |max: Option<i64>| max.zip(range.until).is_some_and(|(m, u)| m > u);
        let segments: Vec<&SegmentInfo> = self.segments_in(range).collect();
        for (i, info) in segments.iter().enumerate() {
            // The last segment of a recording, or of the range: its last block is read.
            let run_end = advancing
                && segments
                    .get(i + 1)
                    .is_none_or(|next| next.meta.recording != info.meta.recording);
            let must_read = advancing && (run_end || past_end(info.meta.last_ts_ns));
            if !info.may_match(need) && !must_read {
                stats.segments_skipped += 1;
                stats.note_coverage(&info.meta);
                if let Some(k) = on_skip.as_mut() {
                    k(&info.meta, info.meta.last_ts_ns);
                }
                continue;
            }
            let seg = match info.load(&self.dir) {
                Ok(s) => s,
                Err(e) => {
                    stats.errors.push(e);
                    continue;
                }
            };
            stats.segments += 1;
            stats.note_coverage(&info.meta);
            on_segment(&seg);
            match seg.losses() {
                Ok(l) => stats.losses.extend(
                    l.into_iter()
                        .filter(|l| range.overlaps(l.start_ns, l.end_ns)),
                ),
                Err(e) => stats.errors.push(e),
            }
            let flow = seg.block_plan(range, need).and_then(|plan| {
                let last = plan.len().saturating_sub(1);
                for (j, b) in plan.iter().enumerate() {
                    let must_read =
                        advancing && ((run_end && j == last) || past_end(Some(b.max_ts_ns)));
                    if !b.may_match && !must_read {
                        stats.blocks_skipped += 1;
                        if let Some(k) = on_skip.as_mut() {
                            k(&seg.meta, Some(b.max_ts_ns));
                        }
                        continue;
                    }
                    let flow = seg.for_each_event_in_block(b.id, |ev| {
                        stats.events_scanned += 1;
                        if range.contains(ev.ts_ns) {
                            stats.events_in_range += 1;
                            f(ev)
                        } else {
                            ControlFlow::Continue(())
                        }
                    })?;
                    if flow.is_break() {
                        return Ok(flow);
                    }
                }
                Ok(ControlFlow::Continue(()))
            });
            match flow {
                Ok(ControlFlow::Break(())) => break,
                Ok(ControlFlow::Continue(())) => {}
                Err(e) => stats.errors.push(e),
            }
        }
        stats
    }

    /// The ranges deleted on purpose (`prune`, retention) that overlap `range`.
    pub fn pruned_in(&self, range: &TimeRange) -> Vec<PrunedRange> {
        self.pruned
            .iter()
            .filter(|p| range.overlaps(p.from_ns, p.to_ns))
            .cloned()
            .collect()
    }

    /// Entries of the store directory that are not segment files (skipped, not errors).
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The listed sealed files whose metadata could not be read, as errors.
    pub fn unreadable_errors(&self) -> Vec<StoreError> {
        // StoreError is not Clone (it wraps io and SQLite errors); re-describe each.
        self.unreadable
            .iter()
            .map(|e| match e {
                StoreError::Corrupt { path, reason } => StoreError::Corrupt {
                    path: path.clone(),
                    reason: reason.clone(),
                },
                other => StoreError::Corrupt {
                    path: self.dir.path().into(),
                    reason: other.to_string(),
                },
            })
            .collect()
    }
}
