//! Reading history: segments are loaded into memory (never written), decoded into `Event`s.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, MAIN_DB};

use super::lock::StoreLock;
use super::schema::check_readable;
use super::segment::{list_segments, read_sealed_db, SegmentInfo, SegmentMeta, SegmentState};
use super::writer::{next_table_id, read_meta_table, Loss};
use super::{io_err, sql_err, Result, StoreError, TimeRange};
use crate::event::{Event, PathSource, Str, Syscall};

/// All segments of a store, for reading.
pub struct Reader {
    dir: PathBuf,
    segments: Vec<SegmentInfo>,
    /// Sealed files whose metadata could not be read.
    unreadable: Vec<StoreError>,
}

/// What a scan saw; `errors` are segments that could not be read (the scan went on without them).
#[derive(Debug, Default)]
pub struct ScanStats {
    pub segments: u64,
    pub events_scanned: u64,
    pub events_in_range: u64,
    /// Loss records overlapping the range.
    pub losses: Vec<Loss>,
    pub errors: Vec<StoreError>,
}

impl ScanStats {
    pub fn lost(&self) -> u64 {
        self.losses.iter().map(|l| l.count).sum()
    }
}

impl Reader {
    /// Lists the store; fails only if the directory itself cannot be read.
    pub fn open(dir: &Path) -> Result<Reader> {
        if !dir.is_dir() {
            return Err(StoreError::Io {
                path: dir.into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such store directory",
                ),
            });
        }
        let (segments, unreadable) = list_segments(dir)?;
        Ok(Reader {
            dir: dir.to_owned(),
            segments,
            unreadable,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn segments(&self) -> &[SegmentInfo] {
        &self.segments
    }

    /// Segments that overlap `range`, in time order.
    pub fn segments_in(&self, range: &TimeRange) -> impl Iterator<Item = &SegmentInfo> {
        let range = *range;
        self.segments
            .iter()
            .filter(move |s| s.meta.overlaps(&range) || s.meta.events == 0)
    }

    /// Calls `f` with every event in `range`, segment by segment in time order. A segment that cannot
    /// be read is recorded in the returned stats and skipped.
    pub fn scan<F>(&self, range: &TimeRange, mut f: F) -> ScanStats
    where
        F: FnMut(&Event) -> ControlFlow<()>,
    {
        let mut stats = ScanStats {
            errors: self.unreadable_errors(),
            ..ScanStats::default()
        };
        for info in self.segments_in(range) {
            let seg = match SegmentData::load(info) {
                Ok(s) => s,
                Err(e) => {
                    stats.errors.push(e);
                    continue;
                }
            };
            stats.segments += 1;
            match seg.losses() {
                Ok(l) => stats.losses.extend(
                    l.into_iter()
                        .filter(|l| range.overlaps(l.start_ns, l.end_ns)),
                ),
                Err(e) => stats.errors.push(e),
            }
            let flow = seg.for_each_event(|ev| {
                stats.events_scanned += 1;
                if range.contains(ev.ts_ns) {
                    stats.events_in_range += 1;
                    f(ev)
                } else {
                    ControlFlow::Continue(())
                }
            });
            match flow {
                Ok(ControlFlow::Break(())) => break,
                Ok(ControlFlow::Continue(())) => {}
                Err(e) => stats.errors.push(e),
            }
        }
        stats
    }

    fn unreadable_errors(&self) -> Vec<StoreError> {
        // StoreError is not Clone (it wraps io and SQLite errors); re-describe each.
        self.unreadable
            .iter()
            .map(|e| match e {
                StoreError::Corrupt { path, reason } => StoreError::Corrupt {
                    path: path.clone(),
                    reason: reason.clone(),
                },
                other => StoreError::Corrupt {
                    path: self.dir.clone(),
                    reason: other.to_string(),
                },
            })
            .collect()
    }
}

/// One segment loaded into memory.
pub struct SegmentData {
    pub path: PathBuf,
    pub meta: SegmentMeta,
    conn: Connection,
}

impl SegmentData {
    /// Loads a segment: a sealed one is decompressed into memory; an active one is copied into
    /// memory through a read-only connection. Nothing in the store is written.
    pub fn load(info: &SegmentInfo) -> Result<SegmentData> {
        let path = &info.path;
        let conn = match info.state {
            SegmentState::Sealed => {
                let (meta, db) = read_sealed_db(path)?;
                let mut conn =
                    Connection::open_in_memory().map_err(sql_err(path, "open :memory:"))?;
                conn.deserialize_read_exact(MAIN_DB, &db[..], db.len(), true)
                    .map_err(sql_err(path, "deserialize"))?;
                check_readable(&conn, path)?;
                return Ok(SegmentData {
                    path: path.clone(),
                    meta,
                    conn,
                });
            }
            SegmentState::Active | SegmentState::Unsealed => snapshot_active(path)?,
        };
        check_readable(&conn, path)?;
        let meta = read_meta_table(&conn, path)?;
        Ok(SegmentData {
            path: path.clone(),
            meta,
            conn,
        })
    }

    /// The in-memory database, for SQL queries (schema in `migrations/`, view `events_v`).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn losses(&self) -> Result<Vec<Loss>> {
        const Q: &str = "SELECT start_ns, end_ns, count, reason FROM losses ORDER BY id";
        let mut st = self.conn.prepare(Q).map_err(sql_err(&self.path, Q))?;
        st.query_map([], |r| {
            Ok(Loss {
                start_ns: r.get(0)?,
                end_ns: r.get(1)?,
                count: r.get::<_, i64>(2)? as u64,
                reason: r.get(3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(sql_err(&self.path, Q))
    }

    /// Decodes every event in arrival order. Strings are shared (`Arc`) and keyed by their id in
    /// this segment, so the rule engine can cache a verdict per string.
    pub fn for_each_event<F>(&self, mut f: F) -> Result<ControlFlow<()>>
    where
        F: FnMut(&Event) -> ControlFlow<()>,
    {
        let path = &self.path;
        let corrupt = |reason: String| StoreError::Corrupt {
            path: path.clone(),
            reason,
        };
        let table = next_table_id();

        let mut strings: Vec<Str> = vec![Str::default()];
        const S: &str = "SELECT id, value FROM strings ORDER BY id";
        let mut st = self.conn.prepare(S).map_err(sql_err(path, S))?;
        let mut rows = st.query([]).map_err(sql_err(path, S))?;
        while let Some(r) = rows.next().map_err(sql_err(path, S))? {
            let id: u32 = r.get(0).map_err(sql_err(path, S))?;
            let bytes: Arc<[u8]> = r
                .get_ref(1)
                .map_err(sql_err(path, S))?
                .as_bytes_or_null()
                .ok()
                .flatten()
                .unwrap_or(&[])
                .into();
            if id as usize != strings.len() {
                return Err(corrupt(format!(
                    "string ids are not dense (found {id}, expected {})",
                    strings.len()
                )));
            }
            strings.push(Str::keyed(bytes, id));
        }

        struct Proc {
            pid: u32,
            tid: u32,
            ppid: u32,
            uid: u32,
            gid: u32,
            comm: Str,
        }
        let mut procs: Vec<Option<Proc>> = vec![None];
        const P: &str = "SELECT id, pid, tid, ppid, uid, gid, comm FROM procs ORDER BY id";
        let mut st = self.conn.prepare(P).map_err(sql_err(path, P))?;
        let mut rows = st.query([]).map_err(sql_err(path, P))?;
        while let Some(r) = rows.next().map_err(sql_err(path, P))? {
            let get = |i| r.get::<_, u32>(i).map_err(sql_err(path, P));
            let (id, comm) = (get(0)? as usize, get(6)? as usize);
            if id != procs.len() {
                return Err(corrupt(format!("proc ids are not dense (found {id})")));
            }
            let comm = strings
                .get(comm)
                .cloned()
                .ok_or_else(|| corrupt(format!("proc {id}: no string {comm}")))?;
            procs.push(Some(Proc {
                pid: get(1)?,
                tid: get(2)?,
                ppid: get(3)?,
                uid: get(4)?,
                gid: get(5)?,
                comm,
            }));
        }

        let base: i64 = {
            const B: &str = "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'base_ts_ns'";
            self.conn
                .query_row(B, [], |r| r.get(0))
                .map_err(sql_err(path, B))?
        };
        const E: &str = "SELECT id, dt, proc, syscall, path, raw_path, src, truncated, dirfd, flags, mode, ret \
                         FROM events ORDER BY id";
        let mut st = self.conn.prepare(E).map_err(sql_err(path, E))?;
        let mut rows = st.query([]).map_err(sql_err(path, E))?;
        let mut ts = base;
        let mut ev = Event {
            table,
            ..Event::default()
        };
        while let Some(r) = rows.next().map_err(sql_err(path, E))? {
            let id: i64 = r.get(0).map_err(sql_err(path, E))?;
            let bad = |what: &str| corrupt(format!("event {id}: {what}"));
            let int = |i| r.get::<_, i64>(i).map_err(sql_err(path, E));
            ts = ts.wrapping_add(int(1)?);
            let proc = procs
                .get(int(2)? as usize)
                .and_then(|p| p.as_ref())
                .ok_or_else(|| bad("unknown proc"))?;
            let string = |i| -> Result<Option<Str>> {
                let sid: Option<i64> = r.get(i).map_err(sql_err(path, E))?;
                sid.map(|s| strings.get(s as usize).cloned().ok_or_else(|| bad("unknown string"))).transpose()
            };
            ev.ts_ns = ts;
            ev.pid = proc.pid;
            ev.tid = proc.tid;
            ev.ppid = proc.ppid;
            ev.uid = proc.uid;
            ev.gid = proc.gid;
            ev.comm = proc.comm.clone();
            ev.syscall = Syscall::from_code(int(3)? as u8).ok_or_else(|| bad("unknown syscall code"))?;
            ev.path = string(4)?.ok_or_else(|| bad("no path"))?;
            // NULL raw_path: the process passed exactly the resolved path.
            ev.raw_path = string(5)?.unwrap_or_else(|| ev.path.clone());
            ev.path_source =
                PathSource::from_code(int(6)? as u8).ok_or_else(|| bad("unknown path source"))?;
            ev.path_truncated = int(7)? != 0;
            ev.dirfd = r.get::<_, Option<i32>>(8).map_err(sql_err(path, E))?;
            ev.flags = int(9)? as u64;
            ev.mode = int(10)? as u32;
            ev.ret = int(11)?;
            if f(&ev).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// Returns a private in-memory copy of an active segment.
fn snapshot_active(path: &Path) -> Result<Connection> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut mem = Connection::open_in_memory().map_err(sql_err(path, "open :memory:"))?;
    if StoreLock::is_held(dir) {
        // A live writer: SQLite's own locking gives a consistent snapshot.
        let src = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_err(path, "open read-only"))?;
        let backup =
            rusqlite::backup::Backup::new(&src, &mut mem).map_err(sql_err(path, "backup"))?;
        backup
            .run_to_completion(1024, std::time::Duration::from_millis(5), None)
            .map_err(sql_err(path, "backup"))?;
        drop(backup);
        return Ok(mem);
    }
    // Left by a dead writer: replay its WAL in a private copy, never in the store.
    let tmp = tempfile::tempdir().map_err(io_err(path))?;
    let copy = tmp.path().join("segment.db");
    std::fs::copy(path, &copy).map_err(io_err(path))?;
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    if wal.exists() {
        std::fs::copy(&wal, tmp.path().join("segment.db-wal")).map_err(io_err(&wal))?;
    }
    let src = Connection::open(&copy).map_err(sql_err(path, "open copy"))?;
    let backup = rusqlite::backup::Backup::new(&src, &mut mem).map_err(sql_err(path, "backup"))?;
    backup
        .run_to_completion(1024, std::time::Duration::from_millis(5), None)
        .map_err(sql_err(path, "backup"))?;
    drop(backup);
    Ok(mem)
}

/// The metadata of an active segment, for listing.
pub(crate) fn active_meta(path: &Path) -> Result<SegmentMeta> {
    let conn = snapshot_active(path)?;
    check_readable(&conn, path)?;
    let mut meta = read_meta_table(&conn, path)?;
    meta.db_bytes = conn
        .query_row(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(sql_err(path, "page_count"))? as u64;
    Ok(meta)
}
