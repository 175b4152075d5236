//! One segment — the one home of the segment format: its names, its metadata (written to and
//! read from the database's `meta` table in one place, and into the sealed file's metadata frame),
//! the event blocks (encoder beside decoder), losses, processes, the sealed file, the snapshot of
//! an active segment and the hash chain. The writer, the reader and the listing depend on this
//! module, not on each other.

mod active;
pub(crate) mod blocks;
mod codec;
pub(crate) mod frame;
mod mapped;
pub(crate) mod summarize;
mod tables;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub(crate) use active::{active_meta, snapshot_active, ActiveMeta};
pub use tables::PlannedBlock;
pub(crate) use tables::{read_meta_table, write_meta_table};

use super::dir::{Kind, StoreDir};
use super::schema::check_readable;
use super::{sql_err, Need, Result, StoreError, TimeRange};
use crate::bytes::Str;
use crate::event::{Event, Op};
use crate::process::Process;

/// Why a segment whose schema always chains, but which carries no chain, is refused.
pub(crate) const STRIPPED: &str = "tampered: its schema seals every segment into the hash chain, but its chain fields (db_sha256, prev, link, sig) were removed";

pub(crate) const SEALED_SUFFIX: &str = ".seg.zst";
pub(crate) const ACTIVE_SUFFIX: &str = ".active.db";
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// SQLite's companions of an active database.
pub(crate) const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

pub(crate) fn sealed_name(seq: u64) -> String {
    format!("{seq:010}{SEALED_SUFFIX}")
}

pub(crate) fn active_name(seq: u64) -> String {
    format!("{seq:010}{ACTIVE_SUFFIX}")
}

/// The sequence number in a segment file name, and whether it is sealed.
pub(crate) fn parse_name(name: &str) -> Option<(u64, bool)> {
    let digits = |s: &str| s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(stem) = name.strip_suffix(SEALED_SUFFIX).filter(|s| digits(s)) {
        return stem.parse().ok().map(|s| (s, true));
    }
    let stem = name.strip_suffix(ACTIVE_SUFFIX).filter(|s| digits(s))?;
    stem.parse().ok().map(|s| (s, false))
}

/// SQLite opens by name and follows links: an active database and its companions must be
/// regular files (or absent) before it is handed one.
pub(crate) fn dir_kind_ok(dir: &StoreDir, name: &str) -> Result<()> {
    let names =
        std::iter::once(name.to_owned()).chain(COMPANIONS.iter().map(|c| format!("{name}{c}")));
    for n in names {
        match dir.kind(&n) {
            Ok(None) | Ok(Some((Kind::File, _))) => {}
            Ok(Some(_)) => {
                return Err(StoreError::Corrupt {
                    path: dir.join(&n),
                    reason: "not a regular file (a link, directory or FIFO is never opened)".into(),
                })
            }
            Err(e) => return Err(super::io_err(dir.join(&n))(e)),
        }
    }
    Ok(())
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Every segment of this schema version or later was sealed with the hash chain (the chain came
/// with schema 2's lifetime, so schema 2 segments may lack it; none of schema 3 does).
pub(crate) const CHAIN_VERSION: i64 = 3;

/// Whether the database says (by `user_version`, or by the column schema 3 added) that a schema
/// which always chains wrote it.
fn written_by_chaining_schema(conn: &Connection, version: i64) -> bool {
    version >= CHAIN_VERSION
        || conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('processes') WHERE name = 'root'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .is_ok_and(|n| n > 0)
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a segment says about itself; stored in its `meta` table and, once sealed, in the metadata
/// frame too (with the hash chain, which cannot live inside the bytes it hashes).
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
    /// Events lost: the sum of the counts of the segment's loss records of events.
    pub lost: u64,
    /// Alert lines live outputs dropped (`alert_dropped…` loss records); absent when 0, so a
    /// segment without drops has the metadata (and chain link) it had before this key existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub alert_drops: u64,
    /// Events stored after a later one: delayed past the recorder's reorder window between their
    /// timestamp and the ring (see `record --reorder-window`); absent when 0, as `alert_drops`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late: u64,
    /// What the recorder could not capture on its kernel while it wrote this segment (a hook the
    /// kernel lacks, a program its verifier rejected); absent when capture was whole, as `late`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncaptured: Vec<Uncaptured>,
    /// Process images stored (schema 2 on; 0 before).
    #[serde(default)]
    pub processes: u64,
    /// Size of the SQLite database inside (uncompressed).
    pub db_bytes: u64,
    /// Wall-clock ns minus kernel boot-clock ns at recording start (0 for imported events).
    pub clock_anchor_ns: i64,
    /// Which recording wrote the segment: random, the same for all its segments. Replay starts
    /// the rules' throttle state afresh where it changes, as each recorder did. Absent for
    /// imports and in segments written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    /// Set at seal when the database no longer held what its writer committed (another process
    /// edited the active segment: see `writer::digest`): what differed. In the link, so the
    /// statement is chained and signed; absent for an intact segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tampered: Option<String>,
    /// Sealed segments since tamper evidence: the SHA-256 of the database bytes…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_sha256: Option<String>,
    /// …the previous sealed segment's `link` (empty for the first of a store)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    /// …and this segment's link: SHA-256 over `prev` and everything above (see [`link_of`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// What the segment's events may hold ([`crate::store::Summary`], base64), written at seal
    /// (schema 6 on) so that readings skip the segment unopened when it cannot match. In the
    /// link, so a summary edited after sealing is tampering like any metadata; `verify` also
    /// rebuilds it from the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// HMAC-SHA-256 of `link` with the recorder's `--sign-key`, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

impl SegmentMeta {
    /// Whether the segment may hold events in `range`. A segment whose metadata does not say
    /// (no time range) may: it is read, and its metadata checked, rather than skipped on trust.
    /// Whether the metadata says a schema that always chains wrote it, yet carries no chain:
    /// the chain fields were stripped.
    pub fn stripped(&self) -> bool {
        self.schema_version >= CHAIN_VERSION && self.link.is_none()
    }

    pub fn overlaps(&self, range: &TimeRange) -> bool {
        match (self.first_ts_ns, self.last_ts_ns) {
            (Some(f), Some(l)) => range.overlaps(f, l),
            _ => true,
        }
    }

    /// The segment's summary, when it has one that reads (one that does not is not used: the
    /// segment is read).
    pub fn summary(&self) -> Option<crate::store::Summary> {
        crate::store::Summary::from_base64(self.summary.as_deref()?)
    }

    /// What the `meta` table of the database also holds: everything but the size, the chain and
    /// the summary (all computed at seal).
    fn table_part(&self) -> SegmentMeta {
        SegmentMeta {
            db_bytes: 0,
            tampered: None,
            summary: None,
            db_sha256: None,
            prev: None,
            link: None,
            sig: None,
            ..self.clone()
        }
    }
}

/// The chain link of a sealed segment: SHA-256 of a tag, then the metadata (with `prev` and
/// `db_sha256`, without `link` and `sig`) as JSON. Any change to the database (its hash), to
/// the metadata, or to the order (`prev`) changes every link after it.
pub fn link_of(meta: &SegmentMeta) -> String {
    let body = SegmentMeta {
        link: None,
        sig: None,
        ..meta.clone()
    };
    let mut h = Sha256::new();
    h.update(b"open-forensics link v1\0");
    h.update(serde_json::to_vec(&body).expect("SegmentMeta serializes"));
    hex(&h.finalize())
}

/// HMAC-SHA-256 of a link with a signing key, hex.
pub fn sign_link(key: &[u8], link: &str) -> String {
    use hmac::{Mac, SimpleHmac};
    let mut mac = SimpleHmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(link.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// A capability the recorder did not have on its kernel: a coverage gap, reported by every
/// query over the segments that carry it, as losses are.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Uncaptured {
    /// What was not captured ("io_uring opens").
    pub what: String,
    /// Why ("kernel 5.10.0-32-cloud-amd64 has no io_uring_submit_req tracepoint").
    pub why: String,
}

/// Events the kernel or the recorder could not keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    pub start_ns: i64,
    pub end_ns: i64,
    pub count: u64,
    pub reason: String,
}

/// The reason of loss records that count alert lines an output dropped (`alert_dropped:OUTPUT`),
/// not events: the store holds every event of their time range.
pub const ALERT_DROPPED: &str = "alert_dropped";

impl Loss {
    /// Whether this record counts lost events (every reason but `alert_dropped…`).
    pub fn is_event_loss(&self) -> bool {
        !self.reason.starts_with(ALERT_DROPPED)
    }
}

/// A stored process image with what happened to it (for `proc` and SQL).
#[derive(Clone, Debug)]
pub struct StoredProcess {
    /// Its row in the segment.
    pub id: u32,
    pub process: Arc<Process>,
    /// Wait status and time of the exit, if the segment saw it.
    pub exit: Option<(i32, i64)>,
}

/// A process-wide counter so that every string table (live or loaded) has its own `Event::table`.
pub(crate) fn next_table_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// One segment loaded for reading (never written).
pub struct SegmentData {
    pub path: PathBuf,
    pub meta: SegmentMeta,
    /// The schema version the segment was written with.
    pub version: i64,
    conn: Connection,
    /// The mapping a sealed database was decompressed into (dropped after `conn`, which reads
    /// it in place); none for an active segment's snapshot.
    _db: Option<mapped::Mapped>,
    /// The tables every reading of events needs, loaded once per segment however many readings
    /// (processes, then events) a caller makes.
    tables: std::cell::OnceCell<Tables>,
    /// The proc and shape rows, loaded on the first decoding of events.
    decode: std::cell::OnceCell<tables::DecodeTables>,
}

/// The interned tables events refer to.
struct Tables {
    strings: Vec<Str>,
    processes: Vec<StoredProcess>,
    users: HashMap<u32, Str>,
}

impl SegmentData {
    /// Loads the sealed segment `name` of `dir`, checking its size and hash against its
    /// metadata, and its metadata against the database.
    pub(crate) fn load_sealed(dir: &StoreDir, name: &str) -> Result<SegmentData> {
        let path = dir.join(name);
        let sealed = frame::read_sealed(dir, name)?;
        let mut map = sealed.db;
        // SQLite refuses to deserialize a WAL-mode image: a segment written before the seal
        // stopped switching journal modes is already in rollback mode. Copy on write: the header
        // change stays in this process's memory.
        force_rollback_mode(map.bytes_mut());
        let conn = Connection::open_in_memory().map_err(sql_err(&path, "open :memory:"))?;
        let len = sealed.meta.db_bytes as i64;
        // SAFETY: the mapping (at least `len` bytes) outlives the connection (`_db` is dropped
        // after `conn`); READONLY without FREEONCLOSE: SQLite neither writes, resizes nor frees
        // it.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_deserialize(
                conn.handle(),
                c"main".as_ptr(),
                map.as_mut_ptr(),
                len,
                len,
                rusqlite::ffi::SQLITE_DESERIALIZE_READONLY,
            )
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            return Err(sql_err(&path, "deserialize")(
                rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rc), None),
            ));
        }
        // Pages read in place rather than copied into the page cache: 2 MB less per reader and
        // no copy per page (memdb serves `xFetch` when memory-mapped I/O is on).
        conn.execute_batch(&format!("PRAGMA mmap_size = {len}"))
            .map_err(sql_err(&path, "PRAGMA mmap_size"))?;
        let version = check_readable(&conn, &path)?;
        if sealed.meta.link.is_none() && written_by_chaining_schema(&conn, version) {
            return Err(StoreError::Corrupt {
                path,
                reason: STRIPPED.into(),
            });
        }
        let seg = SegmentData {
            path,
            meta: sealed.meta,
            version,
            conn,
            _db: Some(map),
            tables: std::cell::OnceCell::new(),
            decode: std::cell::OnceCell::new(),
        };
        seg.check_meta()?;
        Ok(seg)
    }

    /// Loads an active segment through a private in-memory copy.
    pub(crate) fn load_active(
        dir: &StoreDir,
        name: &str,
        writer_alive: bool,
    ) -> Result<SegmentData> {
        let path = dir.join(name);
        let conn = snapshot_active(dir, name, writer_alive)?;
        let version = check_readable(&conn, &path)?;
        let meta = read_meta_table(&conn, &path)?;
        let seg = SegmentData {
            path,
            meta,
            version,
            conn,
            _db: None,
            tables: std::cell::OnceCell::new(),
            decode: std::cell::OnceCell::new(),
        };
        seg.check_meta()?;
        Ok(seg)
    }

    /// The metadata must agree with the database: a frame edited to hide events (a count or a
    /// time range) is an error naming the file, never a silent gap.
    fn check_meta(&self) -> Result<()> {
        let corrupt = |reason: String| StoreError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let table = read_meta_table(&self.conn, &self.path)?;
        let frame = self.meta.table_part();
        // `processes` entered the table with schema 2; older tables lack it.
        let table = SegmentMeta {
            processes: if self.version >= super::schema::LINEAGE_VERSION {
                table.processes
            } else {
                frame.processes
            },
            ..table
        };
        if table != frame {
            return Err(corrupt(format!(
                "metadata disagrees with the database: {}",
                meta_diff(&frame, &table)
            )));
        }
        const Q: &str =
            "SELECT coalesce(sum(count), 0), min(min_ts_ns), max(max_ts_ns) FROM blocks";
        let (count, min, max): (i64, Option<i64>, Option<i64>) = self
            .conn
            .query_row(Q, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql_err(&self.path, Q))?;
        if count as u64 != self.meta.events
            || min != self.meta.first_ts_ns
            || max != self.meta.last_ts_ns
        {
            return Err(corrupt(format!(
                "metadata says {} events from {:?} to {:?}, the blocks hold {count} from {min:?} to {max:?}",
                self.meta.events, self.meta.first_ts_ns, self.meta.last_ts_ns
            )));
        }
        Ok(())
    }

    /// The segment's own database, in memory (schema in `migrations/`). Events are stored by
    /// column in `blocks`; SQL over events goes through `query`, which flattens them.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn losses(&self) -> Result<Vec<Loss>> {
        tables::losses(&self.conn, &self.path)
    }

    fn tables(&self) -> Result<&Tables> {
        if let Some(t) = self.tables.get() {
            return Ok(t);
        }
        let (conn, path) = (&self.conn, &self.path);
        let strings = tables::strings(conn, path)?;
        let t = Tables {
            processes: tables::processes(conn, path, self.version, &strings)?,
            users: tables::users(conn, path, self.version)?,
            strings,
        };
        Ok(self.tables.get_or_init(|| t))
    }

    /// uid → user name on the recording host (empty before schema 2).
    pub fn users(&self) -> Result<HashMap<u32, Str>> {
        Ok(self.tables()?.users.clone())
    }

    /// Every process image stored in the segment, in id order (empty before schema 2).
    pub fn processes(&self) -> Result<Vec<StoredProcess>> {
        Ok(self.tables()?.processes.clone())
    }

    /// Decodes every event in arrival order. Strings are shared (`Arc`) and keyed by their id in
    /// this segment, so the rule engine can cache a verdict per string.
    pub fn for_each_event<F>(&self, f: F) -> Result<ControlFlow<()>>
    where
        F: FnMut(&Event) -> ControlFlow<()>,
    {
        self.for_each_event_in(&TimeRange::default(), f)
    }

    /// Like `for_each_event`, skipping whole blocks outside `range` (events inside a block that
    /// overlaps are all passed on: the caller filters).
    pub fn for_each_event_in<F>(&self, range: &TimeRange, mut f: F) -> Result<ControlFlow<()>>
    where
        F: FnMut(&Event) -> ControlFlow<()>,
    {
        for id in self.blocks_in(range)? {
            if self.for_each_event_in_block(id, &mut f)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The blocks whose time range overlaps `range`, in arrival order (their ids). Only these
    /// are decoded by a reading of `range`: a window of seconds in an hour-long segment touches
    /// the few blocks (8192 events each by default) that hold it.
    pub fn blocks_in(&self, range: &TimeRange) -> Result<Vec<i64>> {
        tables::blocks_in(&self.conn, &self.path, range)
    }

    /// The blocks overlapping `range` whose summary does not rule out `need` (blocks written
    /// before schema 6 have none: they are kept), in arrival order; and how many were ruled out.
    /// Only these need decoding for a reading that wants `need`.
    pub fn blocks_where(&self, range: &TimeRange, need: &Need) -> Result<(Vec<i64>, u64)> {
        let plan = self.block_plan(range, need)?;
        let ids: Vec<i64> = plan.iter().filter(|b| b.may_match).map(|b| b.id).collect();
        let skipped = (plan.len() - ids.len()) as u64;
        Ok((ids, skipped))
    }

    /// Every block overlapping `range`, in arrival order, with its latest event time and
    /// whether its summary leaves `need` possible.
    pub fn block_plan(&self, range: &TimeRange, need: &Need) -> Result<Vec<PlannedBlock>> {
        tables::blocks_where(&self.conn, &self.path, self.version, range, need)
    }

    /// How the summaries (the segment's, each block's) differ from the ones its events give: a
    /// summary that rules out what the segment holds would hide events from readings, so any
    /// difference is tampering (for `verify`). Empty when they agree or are absent.
    pub fn summary_problems(&self) -> Vec<String> {
        let rebuilt = match summarize::rebuild(&self.conn, &self.path, self.version, true) {
            Ok(r) => r,
            Err(e) => return vec![format!("summaries cannot be checked: {e}")],
        };
        let lie = "does not match its events (edited: readings would skip what it hides)";
        let mut out: Vec<String> = rebuilt
            .blocks
            .iter()
            .filter(|(_, stored, s)| stored.as_ref().is_some_and(|b| *b != s.encode()))
            .map(|(id, _, _)| format!("block {id}'s summary {lie}"))
            .collect();
        if let Some(s) = &self.meta.summary {
            if *s != rebuilt.segment.to_base64() {
                out.push(format!("the segment's summary {lie}"));
            }
        }
        out
    }

    /// Every block's (id, event count), in arrival order.
    pub fn block_counts(&self) -> Result<Vec<(i64, i64)>> {
        tables::block_counts(&self.conn, &self.path)
    }

    /// Decodes every event of one block (from [`SegmentData::blocks_in`]), in arrival order.
    pub fn for_each_event_in_block<F>(&self, id: i64, f: F) -> Result<ControlFlow<()>>
    where
        F: FnMut(&Event) -> ControlFlow<()>,
    {
        let (t, dec) = self.decode_tables()?;
        tables::decode_block(&self.conn, &self.path, &t.strings, dec, id, f)
    }

    /// Like [`SegmentData::for_each_event_in`], a block at a time, each event as [`EventIds`]:
    /// its strings by id ([`SegmentData::strings`] resolves them), no [`Event`] built, no string
    /// touched — for aggregates that count many events into few groups.
    pub fn for_each_ids_in<F>(&self, range: &TimeRange, mut f: F) -> Result<()>
    where
        F: FnMut(&[EventIds]),
    {
        let (t, dec) = self.decode_tables()?;
        let mut block = Vec::new();
        for id in self.blocks_in(range)? {
            tables::decode_block_ids(&self.conn, &self.path, &t.strings, dec, id, &mut block)?;
            f(&block);
        }
        Ok(())
    }

    /// The segment's string table, indexed by the ids of [`EventIds`] (0 is unused).
    pub fn strings(&self) -> Result<&[Str]> {
        Ok(&self.tables()?.strings)
    }

    /// The tables decoding events needs, loaded on first use.
    fn decode_tables(&self) -> Result<(&Tables, &tables::DecodeTables)> {
        let t = self.tables()?;
        if let Some(d) = self.decode.get() {
            return Ok((t, d));
        }
        let lookups = tables::Lookups {
            strings: &t.strings,
            processes: &t.processes,
            users: &t.users,
        };
        let d = tables::decode_tables(&self.conn, &self.path, self.version, &lookups)?;
        Ok((t, self.decode.get_or_init(|| d)))
    }
}

/// One event as an aggregate over it needs it: time, op, result, and its path and its process's
/// comm as ids into its segment's string table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventIds {
    pub ts_ns: i64,
    pub op: Op,
    pub path: u32,
    pub comm: u32,
    pub ret: i64,
}

/// Marks a serialized database as rollback-journal mode (header bytes 18 and 19), as
/// `sqlite3_deserialize` requires.
pub(crate) fn force_rollback_mode(db: &mut [u8]) {
    if db.len() > 19 {
        db[18] = 1;
        db[19] = 1;
    }
}

/// The keys on which two metadata records differ, for messages.
fn meta_diff(a: &SegmentMeta, b: &SegmentMeta) -> String {
    let (a, b) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return String::new();
    };
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, v)| {
            format!(
                "{k} is {v} in the frame, {} in the database",
                b.get(k).cloned().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_strict() {
        assert_eq!(parse_name("0000000007.seg.zst"), Some((7, true)));
        assert_eq!(parse_name("0000000007.active.db"), Some((7, false)));
        assert_eq!(parse_name("7.seg.zst"), None);
        assert_eq!(parse_name("0000000007.seg.zst.tmp"), None);
        assert_eq!(parse_name("+000000007.seg.zst"), None);
    }

    #[test]
    fn links_cover_metadata_and_order() {
        let m = SegmentMeta {
            seq: 3,
            events: 10,
            db_sha256: Some("ab".into()),
            prev: Some(String::new()),
            ..SegmentMeta::default()
        };
        let l = link_of(&m);
        assert_eq!(
            l,
            link_of(&SegmentMeta {
                link: Some(l.clone()),
                ..m.clone()
            })
        );
        assert_ne!(
            l,
            link_of(&SegmentMeta {
                events: 11,
                ..m.clone()
            })
        );
        assert_ne!(
            l,
            link_of(&SegmentMeta {
                prev: Some("x".into()),
                ..m.clone()
            })
        );
        assert_ne!(sign_link(b"k1", &l), sign_link(b"k2", &l));
    }
}
