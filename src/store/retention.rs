//! Deleting history on purpose: `prune --before`, and retention while recording
//! (`record --retain-size`, `--retain-age`). One removal path serves both, so both leave the same
//! evidence behind.
//!
//! # What a removal leaves
//!
//! `STORE/prune.json` ([`PruneRecord`]) says where the hash chain was cut on purpose (so `verify`
//! tells a prune from a deletion) and keeps the time ranges that were removed, with their event
//! and segment counts ([`PrunedRange`]), so that a later `query`, `replay` or `export` over such a
//! range says the history was pruned instead of answering as if nothing had happened then.
//!
//! The record is written *before* the segments are removed (tmp file, fsync, rename over the old
//! record, directory fsync): a crash in between leaves segments the record already calls pruned
//! (a notice too many, never one missing), and the record keeps the previous cut (`prev_link`), so
//! `verify` still accepts the chain as it was before the removal.
//!
//! The record is a signed link of the chain: with a signing key (`record --sign-key`, `prune
//! --sign-key`) it carries an HMAC over all of it ([`signed_by`]), so `verify --key` tells a
//! prune from segments deleted with a planted record, and names a prune made without the key.
//!
//! Only sealed segments are removed, oldest first in sequence (a prefix of the chain); the active
//! segment and any segment waiting to be sealed never are. Adjacent removals are merged into one
//! range, and the list is bounded ([`MAX_RANGES`]: older ranges are merged), so the record stays a
//! few KiB however long retention runs.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::dir::StoreDir;
use super::listing::{list, SegmentInfo, SegmentState};
use super::lock::StoreLock;
use super::writer::Writer;
use super::{io_err, Result};

/// `STORE/prune.json`.
pub(crate) const PRUNE_FILE: &str = "prune.json";

/// Ranges kept in the record; beyond this the two oldest are merged (their union is reported).
pub const MAX_RANGES: usize = 16;

/// The record is read up to this many bytes (it holds at most [`MAX_RANGES`] ranges).
const RECORD_MAX: u64 = 64 << 10;

/// A stretch of history that was deleted on purpose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunedRange {
    /// The first and last event time of the removed segments (ns since the epoch).
    pub from_ns: i64,
    pub to_ns: i64,
    pub events: u64,
    pub segments: u64,
    /// The sequence numbers of the oldest and newest removed segment.
    pub first_seq: u64,
    pub last_seq: u64,
    /// When it was removed.
    pub at_ns: i64,
    /// What removed it: `prune`, `retain-size` or `retain-age` (the newest, for merged ranges).
    pub by: String,
}

/// What `prune` and retention removed: where the chain was cut, and the ranges removed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct PruneRecord {
    /// The link of the newest removed chained segment: the oldest remaining one follows it.
    pub link: String,
    pub seq: u64,
    pub before_ns: i64,
    pub pruned_at_ns: i64,
    /// The cut before this one (the oldest remaining segment followed it until this removal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_link: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<PrunedRange>,
    /// HMAC-SHA-256 under the signing key of [`record_digest`]: everything above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// SHA-256 of a tag and the record without its signature.
fn record_digest(record: &PruneRecord) -> String {
    let body = PruneRecord {
        sig: None,
        ..record.clone()
    };
    let mut h = Sha256::new();
    h.update(b"open-forensics prune v1\0");
    h.update(serde_json::to_vec(&body).expect("PruneRecord serializes"));
    super::segment::hex(&h.finalize())
}

/// Whether `record` carries a valid signature under `key`.
pub(crate) fn signed_by(record: &PruneRecord, key: &[u8]) -> bool {
    record
        .sig
        .as_ref()
        .is_some_and(|s| *s == super::segment::sign_link(key, &record_digest(record)))
}

/// The prune record of a store, if any (unreadable or absent: none).
pub(crate) fn read_prune(dir: &StoreDir) -> Option<PruneRecord> {
    let f = dir.open_read(PRUNE_FILE).ok()?;
    serde_json::from_reader(std::io::Read::take(f, RECORD_MAX)).ok()
}

/// The ranges a store says were pruned.
pub(crate) fn pruned_ranges(dir: &StoreDir) -> Vec<PrunedRange> {
    read_prune(dir).map(|r| r.pruned).unwrap_or_default()
}

/// The ranges `dir` says were pruned (none if it has no readable record).
pub fn pruned(dir: &std::path::Path) -> Vec<PrunedRange> {
    StoreDir::open_for_reading(dir)
        .map(|d| pruned_ranges(&d))
        .unwrap_or_default()
}

/// Limits the recorder keeps the store within.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Bytes on disk of every segment (sealed files, the active database and its WAL).
    pub max_bytes: Option<u64>,
    /// Sealed segments whose newest event is older than this are removed.
    pub max_age: Option<Duration>,
}

impl Retention {
    pub fn is_empty(&self) -> bool {
        self.max_bytes.is_none() && self.max_age.is_none()
    }
}

/// Which sealed segments `policy` removes (indices into `segments`), oldest sequence first, and
/// why: a prefix of the sealed segments by sequence, stopping at the first one that may stay.
fn plan(segments: &[SegmentInfo], policy: &Retention, now_ns: i64) -> (Vec<usize>, &'static str) {
    let mut sealed: Vec<usize> = (0..segments.len())
        .filter(|&i| segments[i].state == SegmentState::Sealed)
        .collect();
    sealed.sort_by_key(|&i| segments[i].meta.seq);
    // Nothing newer than a segment still waiting for its seal goes before it.
    if let Some(first_unsealed) = segments
        .iter()
        .filter(|s| s.state != SegmentState::Sealed)
        .map(|s| s.meta.seq)
        .min()
    {
        sealed.retain(|&i| segments[i].meta.seq < first_unsealed);
    }
    let mut total: u64 = segments.iter().map(|s| s.file_bytes).sum();
    let cutoff = policy
        .max_age
        .map(|a| now_ns.saturating_sub(i64::try_from(a.as_nanos()).unwrap_or(i64::MAX)));
    let mut doomed = Vec::new();
    let mut why = "retain-age";
    for i in sealed {
        let s = &segments[i];
        let too_old = cutoff.is_some_and(|c| s.meta.last_ts_ns.is_none_or(|l| l < c));
        let too_big = policy.max_bytes.is_some_and(|m| total > m);
        if !too_old && !too_big {
            break;
        }
        if too_big && !too_old {
            why = "retain-size";
        }
        total = total.saturating_sub(s.file_bytes);
        doomed.push(i);
    }
    (doomed, why)
}

/// The newest chained link among `segs`.
fn newest_link(segs: &[&SegmentInfo]) -> Option<(String, u64)> {
    segs.iter()
        .filter_map(|s| Some((s.meta.link.clone()?, s.meta.seq)))
        .max_by_key(|(_, seq)| *seq)
}

/// Records the removal of `doomed` (see the module documentation), then removes them. `kept` are
/// the segments that stay (to tell whether the new range continues the last one).
/// Who removes, when and why, and the key that signs the record.
struct Removal<'a> {
    before_ns: i64,
    by: &'a str,
    now_ns: i64,
    key: Option<&'a [u8]>,
}

fn remove(
    dir: &StoreDir,
    doomed: &[&SegmentInfo],
    kept: &[&SegmentInfo],
    how: Removal<'_>,
) -> Result<Option<PrunedRange>> {
    let Removal {
        before_ns,
        by,
        now_ns,
        key,
    } = how;
    if doomed.is_empty() {
        return Ok(None);
    }
    let range = PrunedRange {
        from_ns: doomed
            .iter()
            .filter_map(|s| s.meta.first_ts_ns)
            .min()
            .unwrap_or(before_ns),
        to_ns: doomed
            .iter()
            .filter_map(|s| s.meta.last_ts_ns)
            .max()
            .unwrap_or(before_ns),
        events: doomed.iter().map(|s| s.meta.events).sum(),
        segments: doomed.len() as u64,
        first_seq: doomed.iter().map(|s| s.meta.seq).min().unwrap_or(0),
        last_seq: doomed.iter().map(|s| s.meta.seq).max().unwrap_or(0),
        at_ns: now_ns,
        by: by.to_owned(),
    };
    let old = read_prune(dir).unwrap_or_default();
    let (link, seq) = newest_link(doomed).unwrap_or((old.link.clone(), old.seq));
    // A signed record vouches for the previous cut only if the key signed that one too: an
    // unsigned record may have been planted, and its cut is not carried into a signature.
    let vouched = key.is_none_or(|k| signed_by(&old, k));
    let mut record = PruneRecord {
        prev_link: (!old.link.is_empty() && vouched).then(|| old.link.clone()),
        link,
        seq,
        before_ns,
        pruned_at_ns: now_ns,
        pruned: old.pruned,
        sig: None,
    };
    add_range(&mut record.pruned, range.clone(), kept);
    record.sig = key.map(|k| super::segment::sign_link(k, &record_digest(&record)));
    write_record(dir, &record)?;
    for seg in doomed {
        dir.remove(&seg.file).map_err(io_err(&seg.path))?;
    }
    dir.sync()?;
    Ok(Some(range))
}

/// Appends `new`, merged into the last range when no kept segment lies between them.
fn add_range(ranges: &mut Vec<PrunedRange>, new: PrunedRange, kept: &[&SegmentInfo]) {
    let merge = |a: &PrunedRange, b: &PrunedRange| PrunedRange {
        from_ns: a.from_ns.min(b.from_ns),
        to_ns: a.to_ns.max(b.to_ns),
        events: a.events + b.events,
        segments: a.segments + b.segments,
        first_seq: a.first_seq.min(b.first_seq),
        last_seq: a.last_seq.max(b.last_seq),
        at_ns: a.at_ns.max(b.at_ns),
        by: b.by.clone(),
    };
    match ranges.last_mut() {
        Some(last)
            if !kept
                .iter()
                .any(|s| s.meta.seq > last.last_seq && s.meta.seq < new.first_seq)
                && new.first_seq > last.last_seq =>
        {
            *last = merge(last, &new);
        }
        _ => ranges.push(new),
    }
    while ranges.len() > MAX_RANGES {
        let b = ranges.remove(1);
        ranges[0] = merge(&ranges[0], &b);
    }
}

fn write_record(dir: &StoreDir, record: &PruneRecord) -> Result<()> {
    let tmp = format!("{PRUNE_FILE}.tmp");
    dir.remove(&tmp).map_err(io_err(dir.join(&tmp)))?;
    let mut f = dir.create_new(&tmp).map_err(io_err(dir.join(&tmp)))?;
    std::io::Write::write_all(
        &mut f,
        &serde_json::to_vec(record).expect("PruneRecord serializes"),
    )
    .and_then(|_| f.sync_all())
    .map_err(io_err(dir.join(&tmp)))?;
    dir.rename_replace(&tmp, PRUNE_FILE)
        .map_err(io_err(dir.join(PRUNE_FILE)))?;
    dir.sync()
}

/// Sealed segments whose every event is older than `before` (ns): what `prune --before` removes.
fn older_than(segments: &[SegmentInfo], before: i64) -> Vec<usize> {
    (0..segments.len())
        .filter(|&i| {
            let s = &segments[i];
            s.state == SegmentState::Sealed && s.meta.last_ts_ns.is_some_and(|l| l < before)
        })
        .collect()
}

fn split(segments: &[SegmentInfo], doomed: &[usize]) -> (Vec<SegmentInfo>, Vec<SegmentInfo>) {
    let (a, b): (Vec<_>, Vec<_>) = segments
        .iter()
        .enumerate()
        .partition(|(i, _)| doomed.contains(i));
    (
        a.into_iter().map(|(_, s)| s.clone()).collect(),
        b.into_iter().map(|(_, s)| s.clone()).collect(),
    )
}

/// Removes sealed segments whose every event is older than `before` (ns); with `dry_run`, only
/// says which. Takes the writer lock (a live recorder's store is refused: `Locked`). `key` signs
/// the prune record. Returns the segments removed (or that would be).
pub fn prune_before(
    dir: &std::path::Path,
    before: i64,
    dry_run: bool,
    key: Option<&[u8]>,
) -> Result<Vec<SegmentInfo>> {
    if dry_run {
        let dir = StoreDir::open_for_reading(dir)?;
        let (segments, _) = list(&dir)?;
        let doomed = older_than(&segments, before);
        return Ok(split(&segments, &doomed).0);
    }
    let dir = StoreDir::open_for_writing(dir)?;
    let _lock = StoreLock::acquire(&dir)?;
    let (segments, _) = list(&dir)?;
    let doomed = older_than(&segments, before);
    let (gone, kept) = split(&segments, &doomed);
    let now = crate::timespec::now_ns();
    remove(
        &dir,
        &gone.iter().collect::<Vec<_>>(),
        &kept.iter().collect::<Vec<_>>(),
        Removal {
            before_ns: before,
            by: "prune",
            now_ns: now,
            key,
        },
    )?;
    if gone.is_empty() {
        dir.sync()?;
    }
    Ok(gone)
}

/// [`Writer::retain`] for a store no one is writing (takes the writer lock): what a recorder
/// applies once more after its last seal, signing the record with its `key`. The newest segment
/// always stays (it was the active one a moment ago).
pub fn retain(
    dir: &std::path::Path,
    policy: &Retention,
    now_ns: i64,
    key: Option<&[u8]>,
) -> Result<Option<PrunedRange>> {
    if policy.is_empty() {
        return Ok(None);
    }
    let dir = StoreDir::open_for_writing(dir)?;
    let _lock = StoreLock::acquire(&dir)?;
    apply(&dir, policy, now_ns, true, None, key)
}

fn apply(
    dir: &StoreDir,
    policy: &Retention,
    now_ns: i64,
    keep_newest: bool,
    sealing: Option<u64>,
    key: Option<&[u8]>,
) -> Result<Option<PrunedRange>> {
    let (segments, _) = list(dir)?;
    let (mut doomed, why) = plan(&segments, policy, now_ns);
    // A prefix stays a prefix: everything before the first one kept.
    if let Some(pos) = doomed
        .iter()
        .position(|&i| sealing.is_some_and(|b| segments[i].meta.seq >= b))
    {
        doomed.truncate(pos);
    }
    if keep_newest {
        let newest = segments.iter().map(|s| s.meta.seq).max();
        doomed.retain(|&i| Some(segments[i].meta.seq) != newest);
    }
    if doomed.is_empty() {
        return Ok(None);
    }
    let (gone, kept) = split(&segments, &doomed);
    let cutoff = gone
        .iter()
        .filter_map(|s| s.meta.last_ts_ns)
        .max()
        .map_or(now_ns, |l| l.saturating_add(1));
    remove(
        dir,
        &gone.iter().collect::<Vec<_>>(),
        &kept.iter().collect::<Vec<_>>(),
        Removal {
            before_ns: cutoff,
            by: why,
            now_ns,
            key,
        },
    )
}

impl Writer {
    /// Removes the oldest sealed segments until the store is within `policy` (never the active
    /// one, nor one waiting to be sealed), recording the removal (see the module documentation).
    /// Returns what was removed, if anything. The segment being sealed, and everything newer,
    /// stays ([`Writer::sealing_seq`]). The record is signed with the writer's signing key.
    pub fn retain(&mut self, policy: &Retention, now_ns: i64) -> Result<Option<PrunedRange>> {
        if policy.is_empty() {
            return Ok(None);
        }
        apply(
            self.store_dir(),
            policy,
            now_ns,
            false,
            self.sealing_seq(),
            self.sign_key(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SegmentMeta;

    fn seg(seq: u64, state: SegmentState, last_ts: i64, bytes: u64) -> SegmentInfo {
        SegmentInfo {
            path: format!("/x/{seq}").into(),
            file: format!("{seq}"),
            state,
            meta: SegmentMeta {
                seq,
                first_ts_ns: Some(last_ts - 10),
                last_ts_ns: Some(last_ts),
                events: 5,
                ..SegmentMeta::default()
            },
            file_bytes: bytes,
        }
    }

    #[test]
    fn size_retention_removes_the_oldest_sealed_prefix_never_the_active_segment() {
        use SegmentState::*;
        let segs = vec![
            seg(1, Sealed, 100, 10),
            seg(2, Sealed, 200, 10),
            seg(3, Sealed, 300, 10),
            seg(4, Active, 400, 50),
        ];
        let policy = Retention {
            max_bytes: Some(65),
            max_age: None,
        };
        let (doomed, why) = plan(&segs, &policy, 1000);
        assert_eq!(doomed, vec![0, 1]);
        assert_eq!(why, "retain-size");
        // A limit below the active segment alone removes every sealed one and nothing else.
        let (doomed, _) = plan(
            &segs,
            &Retention {
                max_bytes: Some(1),
                max_age: None,
            },
            1000,
        );
        assert_eq!(doomed, vec![0, 1, 2]);
    }

    #[test]
    fn age_retention_stops_at_the_first_young_segment_and_before_an_unsealed_one() {
        use SegmentState::*;
        let segs = vec![
            seg(1, Sealed, 100, 10),
            seg(2, Unsealed, 150, 10),
            seg(3, Sealed, 200, 10),
        ];
        let policy = Retention {
            max_bytes: None,
            max_age: Some(Duration::from_nanos(10)),
        };
        let (doomed, why) = plan(&segs, &policy, 1000);
        assert_eq!((doomed, why), (vec![0], "retain-age"));
        let segs = vec![seg(1, Sealed, 995, 10), seg(2, Sealed, 100, 10)];
        assert!(plan(&segs, &policy, 1000).0.is_empty());
    }

    #[test]
    fn adjacent_ranges_merge_and_the_list_stays_bounded() {
        let r = |first: u64, last: u64| PrunedRange {
            from_ns: first as i64 * 10,
            to_ns: last as i64 * 10 + 5,
            events: 1,
            segments: last - first + 1,
            first_seq: first,
            last_seq: last,
            at_ns: 0,
            by: "prune".into(),
        };
        let mut ranges = Vec::new();
        add_range(&mut ranges, r(1, 2), &[]);
        add_range(&mut ranges, r(3, 3), &[]);
        assert_eq!(ranges.len(), 1);
        assert_eq!((ranges[0].first_seq, ranges[0].last_seq), (1, 3));
        assert_eq!(ranges[0].events, 2);
        // A kept segment between them: two ranges.
        let kept = seg(5, SegmentState::Sealed, 55, 1);
        add_range(&mut ranges, r(6, 6), &[&kept]);
        assert_eq!(ranges.len(), 2);
        for k in 0..40 {
            let keep = seg(100 + 2 * k, SegmentState::Sealed, 0, 1);
            add_range(&mut ranges, r(101 + 2 * k, 101 + 2 * k), &[&keep]);
        }
        assert_eq!(ranges.len(), MAX_RANGES);
        assert_eq!(ranges[0].first_seq, 1);
        assert_eq!(ranges.iter().map(|r| r.events).sum::<u64>(), 43);
    }
}
