//! The store: a directory of segments holding recorded opens and other file operations. This comment specifies the format
//! in short; `docs/store.md` is the long form.
//!
//! # On-disk format
//!
//! ```text
//! STORE/                      0700, owned by the recorder
//!   store.lock                flock(2)ed by the one writer; holds its pid (for the error message)
//!   0000000007.active.db      the segment being written: SQLite in WAL mode (+ -wal, -shm)
//!   0000000003.seg.zst        sealed segments, immutable
//!   0000000008.seg.zst.tmp    a seal in progress; removed by recovery
//!   *.quarantined-TS-N        what a writer moved aside (never deleted)
//! ```
//!
//! A segment is one SQLite database with the schema in `migrations/` (stamped with
//! `PRAGMA application_id = 0x4F465253` "OFRS" and `PRAGMA user_version` = migrations applied).
//!
//! A sealed segment (`NNNNNNNNNN.seg.zst`) is two zstd frames:
//!
//! 1. a *skippable* frame (magic `0x184D2A5E`) whose payload is `OFSEG1\n` followed by the segment's
//!    metadata as JSON ([`SegmentMeta`]): listing and pruning read these few hundred bytes and never
//!    decompress the database;
//! 2. the database itself, zstd level 3, with its content size and a checksum in the frame, so that a
//!    corrupt or truncated file is detected instead of read.
//!
//! The metadata frame also carries the hash chain (`db_sha256`, `prev`, `link`, optional `sig`:
//! see `segment::link_of` and `verify`; schema 3 on, every sealed segment carries it), and
//! `tampered` when the writer found its active database edited by another process
//! (`writer::digest`), and `summary`: what the segment's events may hold (`summary`; each block
//! has its own in `blocks.summary`), so that readings skip segments and blocks that cannot match.
//! `STORE/prune.json` records what was pruned, signed when a key is in use
//! (`retention`).
//!
//! # What is atomic, and why
//!
//! - **A batch.** Events are appended in batched transactions; WAL with `synchronous=NORMAL`
//!   makes every committed batch survive the death of the process (not of the machine), without
//!   an fsync per batch on the recorder's path.
//! - **A seal.** The writer serializes its database through its own connection
//!   (`sqlite3_serialize`: no journal-mode switch, so no reader can make a seal fail), writes
//!   `*.tmp` (created exclusively), fsyncs it, renames it without replacing anything, and fsyncs
//!   the directory; only then are the active database and its WAL removed. A sealed file is
//!   hashed into the chain, so it must appear whole or not at all. Seals run in sequence order on
//!   a background thread; one that fails is retried and its database stays in place. A writer
//!   killed at any point leaves either the active database (recovered and sealed, under the
//!   number in its *file* name, by the next writer) or the sealed file (any leftover active files
//!   of the same number are then removed).
//!
//! The directory is hostile territory (see `dir`): every file is opened through the directory's
//! descriptor without following links, new files exclusively; a writer refuses a store that is a
//! link, owned by someone else or writable by others; entries that are not what their name says
//! are quarantined by writers and skipped by readers.
//!
//! Readers never write to the store: sealed segments are decompressed into memory (or, over
//! 64 MiB, into an unnamed temporary file that no signal can leave behind: `segment::mapped`)
//! and checked against their metadata; an active segment is
//! copied into memory through SQLite's backup API from a read-only connection (or, when a dead
//! writer left a WAL behind that a read-only connection cannot replay, from a private copy in a
//! temporary directory that is always removed). A reader that races a rotation reads the sealed
//! file instead.

mod bloom;
pub mod dir;
mod listing;
mod lock;
mod reader;
mod retention;
mod schema;
mod segment;
mod summary;
pub mod verify;
mod writer;

use std::path::PathBuf;

pub use crate::need::{Key, Need, Term};
pub use listing::{list, list_segments, SegmentInfo, SegmentState};
pub use reader::{CoverageGap, Reader, ScanStats};
pub use retention::{prune_before, pruned, retain, PrunedRange, Retention};
pub use schema::{apply_migrations, APPLICATION_ID, MIGRATIONS};
pub use segment::frame::DB_MAX;
pub use segment::{
    link_of, sign_link, EventIds, Loss, SegmentData, SegmentMeta, StoredProcess, Uncaptured,
    ALERT_DROPPED,
};
pub use summary::Summary;
pub use writer::{
    is_disk_full, RotateConfig, Writer, WriterSummary, DISK_FULL, MAX_SEALS_WAITING, OUTAGE,
};

/// Errors a caller may branch on; each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {dir} is locked by another writer{}", .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { dir: PathBuf, pid: Option<u32> },
    #[error("segment {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "segment {path}: written by schema version {found}, this build reads up to {supported}"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: SQL failed: {sql}: {source}")]
    Sql {
        path: PathBuf,
        sql: String,
        #[source]
        source: rusqlite::Error,
    },
    /// A store directory (or file in it) that others could tamper with, or a link: input to fix.
    #[error("unsafe store {path}: {reason}")]
    Unsafe { path: PathBuf, reason: String },
    /// No store where one was named to read: input to fix (a mistyped or unset store).
    #[error("{path}: no such store directory (name the store with --store DIR or OPEN_FORENSICS_STORE; `record` creates one)")]
    Missing { path: PathBuf },
    /// An entry that is not a segment file where one belongs; skipped.
    #[error("{path}: {reason}")]
    Skipped { path: PathBuf, reason: String },
    /// A segment that reads, but whose tamper evidence says it was altered: read, and warned of.
    #[error("{path}: {reason}")]
    Tampered { path: PathBuf, reason: String },
}

impl StoreError {
    /// Whether the user must fix the store itself (exit 2).
    pub fn is_unsafe(&self) -> bool {
        matches!(self, StoreError::Unsafe { .. })
    }

    /// Whether the user must fix what was asked for (exit 2): an unsafe or a missing store.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, StoreError::Unsafe { .. } | StoreError::Missing { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}

pub(crate) fn sql_err(
    path: impl Into<PathBuf>,
    sql: &str,
) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let path = path.into();
    let sql = sql.trim().to_owned();
    move |source| StoreError::Sql { path, sql, source }
}

/// A time window, in ns since the epoch; both ends inclusive, `None` is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl TimeRange {
    pub fn contains(&self, ts: i64) -> bool {
        self.since.is_none_or(|s| ts >= s) && self.until.is_none_or(|u| ts <= u)
    }

    /// Whether `[first, last]` can hold anything in the range.
    pub fn overlaps(&self, first: i64, last: i64) -> bool {
        self.since.is_none_or(|s| last >= s) && self.until.is_none_or(|u| first <= u)
    }
}

/// The default store directory when neither `--store` nor `OPEN_FORENSICS_STORE` is given.
pub const DEFAULT_DIR: &str = "/var/lib/open-forensics";
