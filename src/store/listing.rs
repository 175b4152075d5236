//! Listing a store by time, and pruning it. Sealed segments are listed from their metadata frames
//! alone; anything in the directory that is not a regular segment file is skipped with a reason
//! (a FIFO named like a segment must not hang a reader, a link must not be followed).

use std::path::PathBuf;

use serde::Serialize;

use super::dir::{Kind, StoreDir};
use super::lock::StoreLock;
use super::segment::{self, frame, parse_name, sealed_name, ActiveMeta, SegmentData, SegmentMeta};
use super::{io_err, Need, Result, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentState {
    Sealed,
    /// Being written by a live writer.
    Active,
    /// Left unsealed by a writer that died; the next writer recovers it.
    Unsealed,
}

#[derive(Clone, Debug)]
pub struct SegmentInfo {
    pub path: PathBuf,
    /// The file name in the store.
    pub file: String,
    pub state: SegmentState,
    pub meta: SegmentMeta,
    /// Bytes on disk (for an active segment: database + WAL).
    pub file_bytes: u64,
}

impl SegmentInfo {
    pub fn name(&self) -> String {
        self.file.clone()
    }

    /// Whether the segment may hold an event that satisfies `need`, by its summary: without
    /// one (sealed before schema 6, or active), or with loss records (a reading reports them),
    /// it may.
    pub fn may_match(&self, need: &Need) -> bool {
        need.is_all()
            || self.state != SegmentState::Sealed
            || self.meta.lost > 0
            || self.meta.alert_drops > 0
            || self.meta.summary().is_none_or(|s| s.may_match(need))
    }

    /// Uncompressed database size over bytes on disk.
    pub fn compression_ratio(&self) -> f64 {
        if self.file_bytes == 0 {
            0.0
        } else {
            self.meta.db_bytes as f64 / self.file_bytes as f64
        }
    }

    /// Loads the segment. An active one that was sealed (and removed) since the listing is read
    /// from its sealed file instead: a reader racing a rotation never fails for it.
    pub fn load(&self, dir: &StoreDir) -> Result<SegmentData> {
        match self.state {
            SegmentState::Sealed => SegmentData::load_sealed(dir, &self.file),
            SegmentState::Active | SegmentState::Unsealed => {
                let alive = self.state == SegmentState::Active;
                match SegmentData::load_active(dir, &self.file, alive) {
                    Ok(s) => Ok(s),
                    Err(e) => match sealed_twin(dir, &self.file, self.meta.seq) {
                        Some(sealed) => SegmentData::load_sealed(dir, &sealed),
                        None => Err(e),
                    },
                }
            }
        }
    }
}

/// The sealed file of segment `seq`, when reading its active file `active` failed because the
/// writer sealed it meanwhile. A seal renames the sealed file into place before it removes the
/// active files, so an active file that has vanished has its twin — unless it was removed
/// otherwise (pruned, or empty); a short wait covers a reader that looks in between.
fn sealed_twin(dir: &StoreDir, active: &str, seq: u64) -> Option<String> {
    let sealed = sealed_name(seq);
    for _ in 0..20 {
        if matches!(dir.kind(&sealed), Ok(Some((Kind::File, _)))) {
            return Some(sealed);
        }
        if !matches!(dir.kind(active), Ok(None)) {
            return None; // still there: the failure was not a seal
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

/// Every segment in `dir`, sealed ones from their metadata frames, in time order (then sequence);
/// and, separately, what could not be listed (unreadable segments; entries that are not segment
/// files, as [`StoreError::Skipped`]), so a caller can report them and carry on with the rest.
pub fn list(dir: &StoreDir) -> Result<(Vec<SegmentInfo>, Vec<StoreError>)> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let writer_alive = StoreLock::is_held(dir);
    let mut names = dir.names()?;
    names.sort();
    // A sealed segment whose metadata reads (and whose link matches it): its active leftovers,
    // if any, are redundant. Anything else at a sealed name does not hide an active database.
    let mut sealed_ok = std::collections::HashSet::new();
    let mut actives = Vec::new();
    for name in names {
        let Some((seq, sealed)) = parse_name(&name) else {
            continue;
        };
        let path = dir.join(&name);
        let size = match dir.kind(&name) {
            Ok(Some((Kind::File, size))) => size,
            Ok(None) => continue, // removed meanwhile (sealed, pruned)
            Ok(Some((kind, _))) => {
                bad.push(StoreError::Skipped {
                    path,
                    reason: format!("{} where a segment file belongs; skipped", kind_name(kind)),
                });
                continue;
            }
            Err(e) => {
                bad.push(io_err(&path)(e));
                continue;
            }
        };
        if !sealed {
            actives.push((seq, name, path, size));
            continue;
        }
        match frame::read_meta(dir, &name).and_then(|m| self_consistent(&path, m)) {
            Ok(meta) => {
                sealed_ok.insert(seq);
                out.push(SegmentInfo {
                    path,
                    file: name,
                    state: SegmentState::Sealed,
                    meta,
                    file_bytes: size,
                });
            }
            Err(e) => bad.push(e),
        }
    }
    for (seq, name, path, size) in actives {
        if sealed_ok.contains(&seq) {
            continue; // sealed already; a writer died before removing the active files
        }
        match segment::active_meta(dir, &name, writer_alive) {
            Ok(ActiveMeta::Segment(meta)) => {
                let wal = match dir.kind(&format!("{name}-wal")) {
                    Ok(Some((Kind::File, n))) => n,
                    _ => 0,
                };
                out.push(SegmentInfo {
                    path,
                    file: name,
                    state: if writer_alive {
                        SegmentState::Active
                    } else {
                        SegmentState::Unsealed
                    },
                    meta: *meta,
                    file_bytes: size + wal,
                });
            }
            // Being created (or its writer died creating it): nothing recorded in it yet.
            Ok(ActiveMeta::Uninitialized) => {}
            Ok(ActiveMeta::Foreign) => bad.push(StoreError::Skipped {
                path,
                reason: "a database that is not an open-forensics segment; skipped (the next writer moves it aside)".into(),
            }),
            // Sealed and removed between the listing and the snapshot: list the sealed file.
            Err(e) => match sealed_twin(dir, &name, seq) {
                Some(sealed) => match frame::read_meta(dir, &sealed) {
                    Ok(meta) => out.push(SegmentInfo {
                        path: dir.join(&sealed),
                        file: sealed.clone(),
                        state: SegmentState::Sealed,
                        meta,
                        file_bytes: dir.kind(&sealed).ok().flatten().map_or(0, |k| k.1),
                    }),
                    Err(e) => bad.push(e),
                },
                // Gone with no sealed twin (pruned, or removed as empty): like a file removed
                // before it could be looked at, above.
                None if matches!(dir.kind(&name), Ok(None)) => {}
                None => bad.push(e),
            },
        }
    }
    bad.extend(tamper_warnings(&out));
    out.sort_by_key(|s| (s.meta.first_ts_ns.unwrap_or(i64::MAX), s.meta.seq));
    Ok((out, bad))
}

/// What the tamper evidence of readable segments says, for every reader to warn of: a segment
/// sealed as edited while it was recorded, and an unchained one after the chain began (inserted,
/// or stripped of its chain). `verify` says more.
fn tamper_warnings(segments: &[SegmentInfo]) -> Vec<StoreError> {
    let sealed = || segments.iter().filter(|s| s.state == SegmentState::Sealed);
    let start = sealed()
        .filter(|s| s.meta.link.is_some())
        .map(|s| s.meta.seq)
        .min();
    let mut out = Vec::new();
    for s in sealed() {
        if let Some(t) = &s.meta.tampered {
            out.push(StoreError::Tampered {
                path: s.path.clone(),
                reason: format!("tampered: {t} (read anyway; see `verify`)"),
            });
        }
        if s.meta.link.is_none() && start.is_some_and(|f| s.meta.seq > f) {
            out.push(StoreError::Tampered {
                path: s.path.clone(),
                reason: "tampered: not chained, though the store's hash chain began before it (inserted, or its chain removed); read anyway, see `verify`".into(),
            });
        }
    }
    out
}

/// A sealed segment's metadata must hash to its own link: a frame edited by hand (say, its time
/// range, so that ranged queries skip it unread) is an error here, before anything trusts it.
fn self_consistent(path: &std::path::Path, meta: SegmentMeta) -> Result<SegmentMeta> {
    if meta.stripped() {
        return Err(StoreError::Corrupt {
            path: path.into(),
            reason: segment::STRIPPED.into(),
        });
    }
    match &meta.link {
        Some(link) if *link != segment::link_of(&meta) => Err(StoreError::Corrupt {
            path: path.into(),
            reason: "metadata edited after sealing (it no longer matches its chain link)".into(),
        }),
        _ => Ok(meta),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Dir => "a directory",
        Kind::Symlink => "a symbolic link",
        Kind::File => "a file",
        Kind::Other => "a special file (FIFO, socket or device)",
    }
}

/// [`list`] by path.
pub fn list_segments(dir: &std::path::Path) -> Result<(Vec<SegmentInfo>, Vec<StoreError>)> {
    list(&StoreDir::open_for_reading(dir)?)
}
