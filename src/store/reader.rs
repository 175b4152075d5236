//! Reading history: segments are loaded into memory (never written), decoded into `Event`s.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, MAIN_DB};

use super::codec::Column;
use super::lock::StoreLock;
use super::schema::{check_readable, LINEAGE_VERSION};
use super::segment::{list_segments, read_sealed_db, SegmentInfo, SegmentMeta, SegmentState};
use super::writer::{next_table_id, read_meta_table, Loss};
use super::{io_err, sql_err, Result, StoreError, TimeRange};
use crate::event::{Event, PathSource, Str, Syscall};
use crate::process::{ProcSource, Process};

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
    pub fn scan<F>(&self, range: &TimeRange, f: F) -> ScanStats
    where
        F: FnMut(&Event) -> ControlFlow<()>,
    {
        self.scan_with(range, |_| {}, f)
    }

    /// Like `scan`, and hands each loaded segment to `on_segment` before its events (e.g. to read
    /// its process table: one load per segment serves both).
    pub fn scan_with<S, F>(&self, range: &TimeRange, mut on_segment: S, mut f: F) -> ScanStats
    where
        S: FnMut(&SegmentData),
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
            on_segment(&seg);
            match seg.losses() {
                Ok(l) => stats.losses.extend(
                    l.into_iter()
                        .filter(|l| range.overlaps(l.start_ns, l.end_ns)),
                ),
                Err(e) => stats.errors.push(e),
            }
            let flow = seg.for_each_event_in(range, |ev| {
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
    /// The schema version the segment was written with.
    pub version: i64,
    conn: Connection,
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
                let version = check_readable(&conn, path)?;
                return Ok(SegmentData {
                    path: path.clone(),
                    meta,
                    version,
                    conn,
                });
            }
            SegmentState::Active | SegmentState::Unsealed => snapshot_active(path)?,
        };
        let version = check_readable(&conn, path)?;
        let meta = read_meta_table(&conn, path)?;
        Ok(SegmentData {
            path: path.clone(),
            meta,
            version,
            conn,
        })
    }

    /// The segment's own database, in memory (schema in `migrations/`). Events are stored by
    /// column in `blocks`; SQL over events goes through `query`, which flattens them.
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

    /// The segment's string table, indexed by id (0 is unused).
    fn strings(&self) -> Result<Vec<Str>> {
        let path = &self.path;
        let mut strings: Vec<Str> = vec![Str::default()];
        const S: &str = "SELECT id, value FROM strings ORDER BY id";
        let mut st = self.conn.prepare(S).map_err(sql_err(path, S))?;
        let mut rows = st.query([]).map_err(sql_err(path, S))?;
        while let Some(r) = rows.next().map_err(sql_err(path, S))? {
            let id: u32 = r.get(0).map_err(sql_err(path, S))?;
            let bytes: Vec<u8> = r.get(1).map_err(sql_err(path, S))?;
            if id as usize != strings.len() {
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    reason: format!(
                        "string ids are not dense (found {id}, expected {})",
                        strings.len()
                    ),
                });
            }
            strings.push(Str::keyed(bytes.into(), id));
        }
        Ok(strings)
    }

    /// uid → user name on the recording host (empty before schema 2).
    pub fn users(&self) -> Result<HashMap<u32, Str>> {
        if self.version < LINEAGE_VERSION {
            return Ok(HashMap::new());
        }
        const U: &str = "SELECT uid, name FROM users";
        let mut st = self.conn.prepare(U).map_err(sql_err(&self.path, U))?;
        st.query_map([], |r| {
            Ok((r.get::<_, u32>(0)?, Str::new(r.get::<_, Vec<u8>>(1)?)))
        })
        .and_then(|rows| rows.collect())
        .map_err(sql_err(&self.path, U))
    }

    /// Every process image stored in the segment, in id order (empty before schema 2).
    pub fn processes(&self) -> Result<Vec<StoredProcess>> {
        self.processes_with(&self.strings()?)
    }

    fn processes_with(&self, strings: &[Str]) -> Result<Vec<StoredProcess>> {
        if self.version < LINEAGE_VERSION {
            return Ok(Vec::new());
        }
        let path = &self.path;
        let corrupt = |reason: String| StoreError::Corrupt {
            path: path.clone(),
            reason,
        };
        const Q: &str = "SELECT id, pid, start_ns, exec_ns, parent, ppid, source, comm, exe, argv, \
            args_truncated, uid, gid, euid, egid, auid, sessionid, cgroup_id, cgroup, container_id, \
            pidns, mntns, tty, exit_code, exit_ns FROM processes ORDER BY id";
        let mut st = self.conn.prepare(Q).map_err(sql_err(path, Q))?;
        let mut rows = st.query([]).map_err(sql_err(path, Q))?;
        let mut out: Vec<StoredProcess> = Vec::new();
        while let Some(r) = rows.next().map_err(sql_err(path, Q))? {
            let e = sql_err(path, Q);
            let vals = (|| -> rusqlite::Result<_> {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, Option<u32>>(4)?,
                    r.get::<_, u8>(6)?,
                    [7, 8, 9, 18, 19, 22].map(|i| r.get::<_, Option<u32>>(i)),
                ))
            })()
            .map_err(e)?;
            let (id, parent, source, sids) = vals;
            if id as usize != out.len() + 1 {
                return Err(corrupt(format!("process ids are not dense (found {id})")));
            }
            let mut s = Vec::with_capacity(6);
            for v in sids {
                let v = v.map_err(sql_err(path, Q))?;
                s.push(match v {
                    None => None,
                    Some(i) => Some(
                        strings
                            .get(i as usize)
                            .filter(|_| i != 0)
                            .cloned()
                            .ok_or_else(|| corrupt(format!("process {id}: no string {i}")))?,
                    ),
                });
            }
            // A parent is always written first; anything else is not trusted as lineage.
            let parent = parent
                .filter(|p| *p < id)
                .and_then(|p| out.get(p as usize - 1))
                .map(|p| p.process.clone());
            let g = |i| r.get::<_, i64>(i).map_err(sql_err(path, Q));
            let go = |i| r.get::<_, Option<i64>>(i).map_err(sql_err(path, Q));
            let process = Process {
                pid: g(1)? as u32,
                start_ns: g(2)?,
                exec_ns: go(3)?,
                ppid: g(5)? as u32,
                parent,
                source: ProcSource::from_code(source)
                    .ok_or_else(|| corrupt(format!("process {id}: unknown source {source}")))?,
                comm: s[0].clone().unwrap_or_default(),
                exe: s[1].clone(),
                argv: s[2].clone(),
                args_truncated: g(10)? != 0,
                uid: g(11)? as u32,
                gid: g(12)? as u32,
                euid: g(13)? as u32,
                egid: g(14)? as u32,
                auid: go(15)?.map(|v| v as u32),
                sessionid: go(16)?.map(|v| v as u32),
                cgroup_id: g(17)? as u64,
                cgroup: s[3].clone(),
                container_id: s[4].clone(),
                pidns: go(20)?.map(|v| v as u32),
                mntns: go(21)?.map(|v| v as u32),
                tty: s[5].clone(),
            };
            let exit = match (go(23)?, go(24)?) {
                (Some(c), Some(t)) => Some((c as i32, t)),
                _ => None,
            };
            out.push(StoredProcess {
                id,
                process: Arc::new(process),
                exit,
            });
        }
        Ok(out)
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
        let path = &self.path;
        let corrupt = |reason: String| StoreError::Corrupt {
            path: path.clone(),
            reason,
        };
        let table = next_table_id();

        let strings = self.strings()?;
        let string = |id: u64, what: &str| {
            strings
                .get(id as usize)
                .filter(|_| id != 0)
                .cloned()
                .ok_or_else(|| corrupt(format!("{what}: no string {id}")))
        };
        let processes = self.processes_with(&strings)?;
        let users = self.users()?;

        struct Proc {
            pid: u32,
            tid: u32,
            ppid: u32,
            uid: u32,
            gid: u32,
            comm: Str,
            euid: Option<u32>,
            egid: Option<u32>,
            process: Option<(u32, Arc<Process>)>,
            user: Option<Str>,
        }
        let mut procs: Vec<Proc> = Vec::new();
        let lineage = self.version >= LINEAGE_VERSION;
        let p_sql: &str = if lineage {
            "SELECT id, pid, tid, ppid, uid, gid, comm, euid, egid, process FROM procs ORDER BY id"
        } else {
            "SELECT id, pid, tid, ppid, uid, gid, comm, NULL, NULL, NULL FROM procs ORDER BY id"
        };
        let mut st = self.conn.prepare(p_sql).map_err(sql_err(path, p_sql))?;
        let mut rows = st.query([]).map_err(sql_err(path, p_sql))?;
        while let Some(r) = rows.next().map_err(sql_err(path, p_sql))? {
            let get = |i| r.get::<_, u32>(i).map_err(sql_err(path, p_sql));
            let opt = |i| r.get::<_, Option<u32>>(i).map_err(sql_err(path, p_sql));
            let id = get(0)? as usize;
            if id != procs.len() + 1 {
                return Err(corrupt(format!("proc ids are not dense (found {id})")));
            }
            let comm = string(get(6)?.into(), "proc comm")?;
            let process = match opt(9)? {
                None => None,
                Some(pid) => Some((
                    pid,
                    pid.checked_sub(1)
                        .and_then(|i| processes.get(i as usize))
                        .map(|p| p.process.clone())
                        .ok_or_else(|| corrupt(format!("proc {id}: no process {pid}")))?,
                )),
            };
            let uid = get(4)?;
            procs.push(Proc {
                pid: get(1)?,
                tid: get(2)?,
                ppid: get(3)?,
                uid,
                gid: get(5)?,
                comm,
                euid: opt(7)?,
                egid: opt(8)?,
                user: if lineage {
                    users.get(&uid).cloned()
                } else {
                    None
                },
                process,
            });
        }

        struct Shape {
            syscall: Syscall,
            src: PathSource,
            truncated: bool,
            dirfd: Option<i32>,
            flags: u64,
            mode: u32,
        }
        let mut shapes: Vec<Shape> = Vec::new();
        const H: &str =
            "SELECT id, syscall, src, truncated, dirfd, flags, mode FROM shapes ORDER BY id";
        let mut st = self.conn.prepare(H).map_err(sql_err(path, H))?;
        let mut rows = st.query([]).map_err(sql_err(path, H))?;
        while let Some(r) = rows.next().map_err(sql_err(path, H))? {
            let int = |i| r.get::<_, i64>(i).map_err(sql_err(path, H));
            let id = int(0)? as usize;
            if id != shapes.len() + 1 {
                return Err(corrupt(format!("shape ids are not dense (found {id})")));
            }
            shapes.push(Shape {
                syscall: Syscall::from_code(int(1)? as u8)
                    .ok_or_else(|| corrupt(format!("shape {id}: unknown syscall")))?,
                src: PathSource::from_code(int(2)? as u8)
                    .ok_or_else(|| corrupt(format!("shape {id}: unknown path source")))?,
                truncated: int(3)? != 0,
                dirfd: r.get::<_, Option<i32>>(4).map_err(sql_err(path, H))?,
                flags: int(5)? as u64,
                mode: int(6)? as u32,
            });
        }

        const B: &str =
            "SELECT id, count, base_ts_ns, ts, proc, path, raw_path, shape, ret FROM blocks \
                         WHERE max_ts_ns >= ?1 AND min_ts_ns <= ?2 ORDER BY id";
        let mut st = self.conn.prepare(B).map_err(sql_err(path, B))?;
        let mut rows = st
            .query([
                range.since.unwrap_or(i64::MIN),
                range.until.unwrap_or(i64::MAX),
            ])
            .map_err(sql_err(path, B))?;
        let mut ev = Event {
            table,
            ..Event::default()
        };
        while let Some(r) = rows.next().map_err(sql_err(path, B))? {
            let block: i64 = r.get(0).map_err(sql_err(path, B))?;
            let count: i64 = r.get(1).map_err(sql_err(path, B))?;
            let mut ts: i64 = r.get(2).map_err(sql_err(path, B))?;
            let col = |i| {
                r.get_ref(i)
                    .and_then(|v| v.as_blob().map_err(Into::into))
                    .map_err(sql_err(path, B))
            };
            let (mut c_ts, mut c_proc, mut c_path, mut c_raw, mut c_shape, mut c_ret) = (
                Column::new(col(3)?),
                Column::new(col(4)?),
                Column::new(col(5)?),
                Column::new(col(6)?),
                Column::new(col(7)?),
                Column::new(col(8)?),
            );
            let bad = |what: &str| corrupt(format!("block {block}: {what}"));
            for _ in 0..count {
                let short = || bad("a column ends early");
                ts = ts.wrapping_add(c_ts.i64().ok_or_else(short)?);
                let p = c_proc.u64().ok_or_else(short)? as usize;
                let proc = p
                    .checked_sub(1)
                    .and_then(|i| procs.get(i))
                    .ok_or_else(|| bad("unknown proc"))?;
                let pid = c_path.u64().ok_or_else(short)?;
                let raw = c_raw.u64().ok_or_else(short)?;
                let h = c_shape.u64().ok_or_else(short)? as usize;
                let shape = h
                    .checked_sub(1)
                    .and_then(|i| shapes.get(i))
                    .ok_or_else(|| bad("unknown shape"))?;
                ev.ts_ns = ts;
                ev.pid = proc.pid;
                ev.tid = proc.tid;
                ev.ppid = proc.ppid;
                ev.uid = proc.uid;
                ev.gid = proc.gid;
                ev.comm = proc.comm.clone();
                ev.euid = proc.euid;
                ev.egid = proc.egid;
                ev.user = proc.user.clone();
                (ev.proc_key, ev.process) = match &proc.process {
                    Some((key, p)) => (*key, Some(p.clone())),
                    None => (Str::NO_KEY, None),
                };
                ev.path = string(pid, "path")?;
                // 0: the process passed exactly the resolved path.
                ev.raw_path = if raw == 0 {
                    ev.path.clone()
                } else {
                    string(raw, "raw_path")?
                };
                ev.syscall = shape.syscall;
                ev.path_source = shape.src;
                ev.path_truncated = shape.truncated;
                ev.dirfd = shape.dirfd;
                ev.flags = shape.flags;
                ev.mode = shape.mode;
                ev.ret = c_ret.i64().ok_or_else(short)?;
                if f(&ev).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            if ![&c_ts, &c_proc, &c_path, &c_raw, &c_shape, &c_ret]
                .iter()
                .all(|c| c.is_done())
            {
                return Err(bad("columns hold more values than its count"));
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
