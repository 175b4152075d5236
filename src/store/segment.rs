//! Sealed segment files: the metadata frame, sealing, listing and pruning (see the module docs of
//! `store` for the layout).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io_err, Result, StoreError, TimeRange};

/// zstd skippable-frame magic used for our metadata frame (any of 0x184D2A50..=0x184D2A5F is
/// skippable; decoders ignore the frame).
const META_MAGIC: u32 = 0x184D_2A5E;
const META_TAG: &[u8] = b"OFSEG1\n";
/// A metadata frame larger than this is not ours (it holds a few hundred bytes of JSON).
const META_MAX: u32 = 1 << 20;
pub(crate) const ZSTD_LEVEL: i32 = 3;

pub(crate) const SEALED_SUFFIX: &str = ".seg.zst";
pub(crate) const ACTIVE_SUFFIX: &str = ".active.db";
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// What a segment says about itself; stored in its `meta` table and, once sealed, in the metadata
/// frame too.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SegmentMeta {
    pub seq: u64,
    pub schema_version: i64,
    pub tool_version: String,
    pub host: String,
    pub kernel: String,
    pub boot_id: String,
    /// Earliest and latest event time (ns since the epoch); `None` for an empty segment.
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    pub events: u64,
    /// Sum of the counts of the segment's loss records.
    pub lost: u64,
    /// Process images stored (schema 2 on; 0 before).
    #[serde(default)]
    pub processes: u64,
    /// Size of the SQLite database inside (uncompressed).
    pub db_bytes: u64,
    /// Wall-clock ns minus kernel boot-clock ns at recording start (0 for imported events).
    pub clock_anchor_ns: i64,
}

impl SegmentMeta {
    pub fn overlaps(&self, range: &TimeRange) -> bool {
        match (self.first_ts_ns, self.last_ts_ns) {
            (Some(f), Some(l)) => range.overlaps(f, l),
            _ => false,
        }
    }
}

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
    pub state: SegmentState,
    pub meta: SegmentMeta,
    /// Bytes on disk (for an active segment: database + WAL).
    pub file_bytes: u64,
}

impl SegmentInfo {
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Uncompressed database size over bytes on disk.
    pub fn compression_ratio(&self) -> f64 {
        if self.file_bytes == 0 {
            0.0
        } else {
            self.meta.db_bytes as f64 / self.file_bytes as f64
        }
    }
}

pub(crate) fn sealed_name(seq: u64) -> String {
    format!("{seq:010}{SEALED_SUFFIX}")
}

pub(crate) fn active_name(seq: u64) -> String {
    format!("{seq:010}{ACTIVE_SUFFIX}")
}

/// The sequence number in a segment file name, and whether it is sealed.
pub(crate) fn parse_name(name: &str) -> Option<(u64, bool)> {
    if let Some(stem) = name.strip_suffix(SEALED_SUFFIX) {
        return stem.parse().ok().map(|s| (s, true));
    }
    name.strip_suffix(ACTIVE_SUFFIX)?
        .parse()
        .ok()
        .map(|s| (s, false))
}

/// Writes `db` (a serialized SQLite database) as a sealed segment, atomically.
pub(crate) fn write_sealed(dir: &Path, meta: &SegmentMeta, db: &[u8]) -> Result<PathBuf> {
    let final_path = dir.join(sealed_name(meta.seq));
    let tmp_path = dir.join(format!("{}{TMP_SUFFIX}", sealed_name(meta.seq)));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp_path)
        .map_err(io_err(&tmp_path))?;
    let mut out = BufWriter::new(file);
    let json = serde_json::to_vec(meta).expect("SegmentMeta serializes");
    let payload_len = (META_TAG.len() + json.len()) as u32;
    let write = |out: &mut BufWriter<File>| -> std::io::Result<()> {
        out.write_all(&META_MAGIC.to_le_bytes())?;
        out.write_all(&payload_len.to_le_bytes())?;
        out.write_all(META_TAG)?;
        out.write_all(&json)?;
        let mut enc = zstd::Encoder::new(&mut *out, ZSTD_LEVEL)?;
        enc.include_checksum(true)?;
        enc.set_pledged_src_size(Some(db.len() as u64))?;
        enc.include_contentsize(true)?;
        enc.write_all(db)?;
        enc.finish()?;
        out.flush()?;
        out.get_ref().sync_all()
    };
    write(&mut out).map_err(io_err(&tmp_path))?;
    drop(out);
    fs::rename(&tmp_path, &final_path).map_err(io_err(&final_path))?;
    sync_dir(dir)?;
    Ok(final_path)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Reads the metadata frame of a sealed segment (a few hundred bytes; nothing is decompressed).
pub(crate) fn read_meta(path: &Path) -> Result<(SegmentMeta, u64)> {
    let f = File::open(path).map_err(io_err(path))?;
    parse_meta(f, path)
}

/// Parses the metadata frame at the start of `r`; returns the metadata and the frame's length.
fn parse_meta(mut r: impl Read, path: &Path) -> Result<(SegmentMeta, u64)> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.into(),
        reason,
    };
    let mut head = [0u8; 8];
    r.read_exact(&mut head).map_err(|_| {
        corrupt("not a sealed open-forensics segment (shorter than a metadata frame)".into())
    })?;
    let magic = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if magic != META_MAGIC || !(META_TAG.len() as u32..=META_MAX).contains(&len) {
        return Err(corrupt(
            "not a sealed open-forensics segment (bad metadata frame)".into(),
        ));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)
        .map_err(|_| corrupt("truncated metadata frame".into()))?;
    let json = payload
        .strip_prefix(META_TAG)
        .ok_or_else(|| corrupt("bad metadata tag".into()))?;
    let meta = serde_json::from_slice(json).map_err(|e| corrupt(format!("bad metadata: {e}")))?;
    Ok((meta, 8 + len as u64))
}

/// Decompresses a sealed segment's database into memory, verifying its checksum and size.
/// The file is read once: the metadata frame is parsed from the same bytes.
pub(crate) fn read_sealed_db(path: &Path) -> Result<(SegmentMeta, Vec<u8>)> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let (meta, offset) = parse_meta(&bytes[..], path)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.into(),
        reason,
    };
    let frame = &bytes[offset as usize..];
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .ok_or_else(|| corrupt("database frame has no content size (truncated?)".into()))?;
    if size != meta.db_bytes {
        return Err(corrupt(format!(
            "database frame holds {size} bytes, metadata says {}",
            meta.db_bytes
        )));
    }
    let db = zstd::bulk::decompress(frame, size as usize).map_err(|e| {
        corrupt(format!(
            "cannot decompress: {e} (truncated or damaged file)"
        ))
    })?;
    if db.len() as u64 != size {
        return Err(corrupt(format!(
            "decompressed {} bytes, expected {size}",
            db.len()
        )));
    }
    Ok((meta, db))
}

/// Every segment in `dir`, sealed ones from their metadata frames, in time order (then sequence).
///
/// Returns the segments and, separately, the sealed files that could not be read, so a caller can
/// report them and carry on with the rest.
pub fn list_segments(dir: &Path) -> Result<(Vec<SegmentInfo>, Vec<StoreError>)> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let writer_alive = super::lock::StoreLock::is_held(dir);
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some((seq, sealed)) = parse_name(&name.to_string_lossy()) else {
            continue;
        };
        let path = entry.path();
        if sealed {
            match read_meta(&path) {
                Ok((meta, _)) => {
                    let file_bytes = entry.metadata().map_err(io_err(&path))?.len();
                    out.push(SegmentInfo {
                        path,
                        state: SegmentState::Sealed,
                        meta,
                        file_bytes,
                    });
                }
                Err(e) => bad.push(e),
            }
        } else {
            if dir.join(sealed_name(seq)).exists() {
                continue; // sealed already; a writer died before removing the active files
            }
            match super::reader::active_meta(&path) {
                Ok(meta) => {
                    let wal = dir.join(format!("{}-wal", name.to_string_lossy()));
                    let file_bytes = entry.metadata().map_err(io_err(&path))?.len()
                        + fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                    let state = if writer_alive {
                        SegmentState::Active
                    } else {
                        SegmentState::Unsealed
                    };
                    out.push(SegmentInfo {
                        path,
                        state,
                        meta,
                        file_bytes,
                    });
                }
                Err(e) => bad.push(e),
            }
        }
    }
    out.sort_by_key(|s| (s.meta.first_ts_ns.unwrap_or(i64::MAX), s.meta.seq));
    Ok((out, bad))
}

/// Removes sealed segments whose every event is older than `before` (ns). Needs the writer lock so
/// that it cannot race a recorder. Returns the removed segments.
pub fn prune_before(dir: &Path, before: i64) -> Result<Vec<SegmentInfo>> {
    let _lock = super::lock::StoreLock::acquire(dir)?;
    let (segments, _) = list_segments(dir)?;
    let mut removed = Vec::new();
    for seg in segments {
        let old = seg.meta.last_ts_ns.is_some_and(|l| l < before);
        if seg.state == SegmentState::Sealed && old {
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            removed.push(seg);
        }
    }
    sync_dir(dir)?;
    Ok(removed)
}
