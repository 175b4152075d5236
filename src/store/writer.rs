//! The one writer of a store: interning, batched transactions, rotation, sealing and recovery.

use std::collections::HashMap;
use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OpenFlags};
use rustc_hash::FxHashMap;

use super::lock::StoreLock;
use super::schema::{apply_migrations, user_version};
use super::segment::{
    self, active_name, parse_name, sealed_name, write_sealed, SegmentMeta, TMP_SUFFIX,
};
use super::{codec, io_err, sql_err, Result, StoreError};
use crate::event::{Event, Str};
use crate::process::{Process, MAX_ANCESTORS};

/// When to close the active segment and start a new one.
#[derive(Clone, Debug)]
pub struct RotateConfig {
    pub max_events: u64,
    /// Uncompressed database size.
    pub max_bytes: u64,
    pub max_age: Duration,
    /// Events per transaction.
    pub batch_events: usize,
}

impl Default for RotateConfig {
    fn default() -> Self {
        RotateConfig {
            max_events: 1_000_000,
            max_bytes: 256 << 20,
            max_age: Duration::from_secs(3600),
            batch_events: 8192,
        }
    }
}

/// Events the kernel or the recorder could not keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    pub start_ns: i64,
    pub end_ns: i64,
    pub count: u64,
    pub reason: String,
}

#[derive(Clone, Debug, Default)]
pub struct WriterSummary {
    pub events: u64,
    pub lost: u64,
    pub segments_sealed: u64,
    /// Bytes of sealed segment files written.
    pub sealed_bytes: u64,
    /// Segments left unsealed by a dead writer and sealed on open.
    pub recovered: Vec<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ProcKey {
    pid: u32,
    tid: u32,
    ppid: u32,
    uid: u32,
    gid: u32,
    comm: u32,
    euid: Option<u32>,
    egid: Option<u32>,
    /// `processes.id`, 0 for none.
    process: u32,
}

/// A process image to insert, its strings already interned.
struct NewProcess {
    id: u32,
    parent: Option<u32>,
    comm: u32,
    exe: Option<u32>,
    argv: Option<u32>,
    cgroup: Option<u32>,
    container_id: Option<u32>,
    tty: Option<u32>,
    p: Arc<Process>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ShapeKey {
    syscall: u8,
    src: u8,
    truncated: bool,
    dirfd: Option<i32>,
    flags: u64,
    mode: u32,
}

/// One event as the `blocks` columns hold it.
struct Row {
    ts_ns: i64,
    proc_id: u32,
    path: u32,
    /// 0: the same string as `path`.
    raw_path: u32,
    shape: u32,
    ret: i64,
}

struct Active {
    path: PathBuf,
    conn: Connection,
    opened: Instant,
    meta: SegmentMeta,
    table: u64,
    // FxHash: interning runs three lookups per event on the recorder's hot path, and SipHash's
    // DoS resistance buys nothing for keys that are only ever compared for equality here.
    strings: FxHashMap<Arc<[u8]>, u32>,
    procs: FxHashMap<ProcKey, u32>,
    new_strings: Vec<(u32, Arc<[u8]>)>,
    new_procs: Vec<(u32, ProcKey)>,
    shapes: FxHashMap<ShapeKey, u32>,
    new_shapes: Vec<(u32, ShapeKey)>,
    /// Process images by identity; the `Arc` is held so that an address is never reused while
    /// it is a key.
    processes: FxHashMap<usize, (u32, Arc<Process>)>,
    new_processes: Vec<NewProcess>,
    /// (processes.id, wait status, time)
    exits: Vec<(u32, i32, i64)>,
    users: FxHashMap<u32, Arc<[u8]>>,
    new_users: Vec<(u32, Arc<[u8]>)>,
    rows: Vec<Row>,
    losses: Vec<Loss>,
}

pub struct Writer {
    dir: PathBuf,
    config: RotateConfig,
    _lock: StoreLock,
    next_seq: u64,
    clock_anchor_ns: i64,
    active: Option<Active>,
    /// The previous segment being compressed and written on its own thread, so that the caller
    /// (the recorder's store thread) never waits for zstd and fsync. At most one at a time.
    sealing: Option<std::thread::JoinHandle<Result<u64>>>,
    summary: WriterSummary,
}

/// A process-wide counter so that every string table (live or loaded) has its own `Event::table`.
pub(crate) fn next_table_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Creates the store directory (0700) if needed and refuses one that others can read.
pub(crate) fn prepare_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?;
    }
    let mode = fs::metadata(dir).map_err(io_err(dir))?.permissions().mode();
    if mode & 0o077 != 0 {
        // Recorded paths are sensitive: tighten rather than leak.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
    }
    Ok(())
}

impl Writer {
    /// Opens `dir` for writing: creates it, takes the lock, removes half-written seals and seals
    /// any segment a dead writer left behind.
    pub fn open(dir: &Path, config: RotateConfig) -> Result<Writer> {
        prepare_dir(dir)?;
        let lock = StoreLock::acquire(dir)?;
        let mut w = Writer {
            dir: dir.to_owned(),
            config,
            _lock: lock,
            next_seq: 1,
            clock_anchor_ns: 0,
            active: None,
            sealing: None,
            summary: WriterSummary::default(),
        };
        w.recover()?;
        Ok(w)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Wall-clock minus boot-clock ns, stored in each new segment so that kernel times can be
    /// re-derived.
    pub fn set_clock_anchor(&mut self, anchor_ns: i64) {
        self.clock_anchor_ns = anchor_ns;
    }

    fn recover(&mut self) -> Result<()> {
        let mut max_seq = 0;
        let mut active = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(TMP_SUFFIX) {
                fs::remove_file(entry.path()).map_err(io_err(entry.path()))?;
            } else if let Some((seq, sealed)) = parse_name(&name) {
                max_seq = max_seq.max(seq);
                if !sealed {
                    active.push((seq, entry.path()));
                }
            }
        }
        active.sort();
        for (seq, path) in active {
            if self.dir.join(sealed_name(seq)).exists() {
                // Sealed before the writer died: the active files are leftovers.
                segment::read_meta(&self.dir.join(sealed_name(seq)))?;
                remove_active_files(&path)?;
                continue;
            }
            let mut conn = Connection::open(&path).map_err(sql_err(&path, "open"))?;
            apply_migrations(&mut conn, &path)?;
            let meta = read_meta_table(&conn, &path)?;
            if meta.events == 0 && meta.lost == 0 && meta.processes == 0 {
                drop(conn);
                remove_active_files(&path)?;
                continue;
            }
            let sealed = seal_connection(conn, &path, &self.dir, meta)?;
            self.summary.sealed_bytes += sealed;
            self.summary.recovered.push(path);
        }
        self.next_seq = max_seq + 1;
        Ok(())
    }

    fn start_segment(&mut self) -> Result<&mut Active> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = self.dir.join(active_name(seq));
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_err(&path, "open"))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io_err(&path))?;
        // Page size must be set before the first table; WAL + NORMAL keeps every committed batch
        // across a crash of this process.
        let pragmas =
            "PRAGMA page_size = 65536; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";
        conn.execute_batch(pragmas)
            .map_err(sql_err(&path, pragmas))?;
        apply_migrations(&mut conn, &path)?;
        let meta = SegmentMeta {
            seq,
            schema_version: user_version(&conn, &path)?,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            host: read_proc("/proc/sys/kernel/hostname"),
            kernel: read_proc("/proc/sys/kernel/osrelease"),
            boot_id: read_proc("/proc/sys/kernel/random/boot_id"),
            clock_anchor_ns: self.clock_anchor_ns,
            ..SegmentMeta::default()
        };
        write_meta_table(&conn, &path, &meta)?;
        Ok(self.active.insert(Active {
            path,
            conn,
            opened: Instant::now(),
            meta,
            table: next_table_id(),
            strings: FxHashMap::default(),
            procs: FxHashMap::default(),
            new_strings: Vec::new(),
            new_procs: Vec::new(),
            shapes: FxHashMap::default(),
            new_shapes: Vec::new(),
            processes: FxHashMap::default(),
            new_processes: Vec::new(),
            exits: Vec::new(),
            users: FxHashMap::default(),
            new_users: Vec::new(),
            rows: Vec::new(),
            losses: Vec::new(),
        }))
    }

    /// Buffers one event, interning its strings; sets the event's `Str::key`s and `table` to the
    /// active segment's string table (the rule engine caches verdicts by them). Commits a batch
    /// when it is full and rotates when a limit is reached.
    pub fn append(&mut self, ev: &mut Event) -> Result<()> {
        if self.active.as_ref().is_some_and(|a| self.should_rotate(a)) {
            self.seal_active()?;
        }
        if self.active.is_none() {
            self.start_segment()?;
        }
        let batch = self.config.batch_events;
        let a = self.active.as_mut().expect("active segment started above");
        let comm = a.intern(&mut ev.comm);
        let path = a.intern(&mut ev.path);
        let raw = a.intern(&mut ev.raw_path);
        ev.table = a.table;
        let process = ev.process.as_ref().map_or(0, |p| a.intern_process(p, 0));
        ev.proc_key = if process == 0 { Str::NO_KEY } else { process };
        if let Some(user) = &ev.user {
            a.intern_user(ev.uid, user);
        }
        let key = ProcKey {
            pid: ev.pid,
            tid: ev.tid,
            ppid: ev.ppid,
            uid: ev.uid,
            gid: ev.gid,
            comm,
            euid: ev.euid,
            egid: ev.egid,
            process,
        };
        let next_proc = a.procs.len() as u32 + 1;
        let proc_id = *a.procs.entry(key).or_insert_with(|| {
            a.new_procs.push((next_proc, key));
            next_proc
        });
        let shape = ShapeKey {
            syscall: ev.syscall.code(),
            src: ev.path_source.code(),
            truncated: ev.path_truncated,
            dirfd: ev.dirfd,
            flags: ev.flags,
            mode: ev.mode,
        };
        let next_shape = a.shapes.len() as u32 + 1;
        let shape = *a.shapes.entry(shape).or_insert_with(|| {
            a.new_shapes.push((next_shape, shape));
            next_shape
        });
        a.rows.push(Row {
            ts_ns: ev.ts_ns,
            proc_id,
            path,
            raw_path: if raw == path { 0 } else { raw },
            shape,
            ret: ev.ret,
        });
        a.meta.events += 1;
        a.meta.first_ts_ns = Some(a.meta.first_ts_ns.map_or(ev.ts_ns, |f| f.min(ev.ts_ns)));
        a.meta.last_ts_ns = Some(a.meta.last_ts_ns.map_or(ev.ts_ns, |l| l.max(ev.ts_ns)));
        self.summary.events += 1;
        if a.rows.len() >= batch {
            self.commit()?;
        }
        Ok(())
    }

    /// Stores a process image (and its ancestors) in the active segment, whether or not any event
    /// refers to it yet: every process that ran while recording is kept.
    pub fn add_process(&mut self, p: &Arc<Process>) -> Result<()> {
        self.active_segment()?.intern_process(p, 0);
        Ok(())
    }

    /// Records that a process ended (`status` is the wait status), with the next commit.
    pub fn record_exit(&mut self, p: &Arc<Process>, status: i32, ts_ns: i64) -> Result<()> {
        let a = self.active_segment()?;
        let id = a.intern_process(p, 0);
        a.exits.push((id, status, ts_ns));
        Ok(())
    }

    fn active_segment(&mut self) -> Result<&mut Active> {
        if self.active.is_none() {
            self.start_segment()?;
        }
        Ok(self.active.as_mut().expect("active segment started above"))
    }

    /// Records a loss; it is written with the next commit.
    pub fn record_loss(&mut self, loss: Loss) -> Result<()> {
        if self.active.is_none() {
            self.start_segment()?;
        }
        let a = self.active.as_mut().expect("active segment started above");
        a.meta.lost += loss.count;
        self.summary.lost += loss.count;
        a.losses.push(loss);
        Ok(())
    }

    /// Writes everything buffered in one transaction.
    pub fn commit(&mut self) -> Result<()> {
        let Some(a) = self.active.as_mut() else {
            return Ok(());
        };
        if a.rows.is_empty()
            && a.losses.is_empty()
            && a.new_strings.is_empty()
            && a.new_shapes.is_empty()
            && a.new_processes.is_empty()
            && a.exits.is_empty()
        {
            return Ok(());
        }
        a.flush()
    }

    /// Commits, and rotates if the active segment is past its age. Call it periodically while idle.
    pub fn tick(&mut self) -> Result<()> {
        self.commit()?;
        if self.active.as_ref().is_some_and(|a| self.should_rotate(a)) {
            self.seal_active()?;
        }
        Ok(())
    }

    fn should_rotate(&self, a: &Active) -> bool {
        let c = &self.config;
        // The database only grows at a commit, which leaves `rows` empty: ask SQLite for its size
        // then, once per batch, not on every append.
        a.meta.events >= c.max_events
            || a.opened.elapsed() >= c.max_age
            || (a.rows.is_empty() && a.db_bytes() >= c.max_bytes)
    }

    /// Commits and seals the active segment, if any.
    pub fn seal_active(&mut self) -> Result<()> {
        if let Some(mut a) = self.active.take() {
            a.flush()?;
            self.finish_sealing()?;
            let dir = self.dir.clone();
            let handle = std::thread::Builder::new()
                .name("of-seal".into())
                .spawn(move || seal_connection(a.conn, &a.path, &dir, a.meta))
                .map_err(io_err(&self.dir))?;
            self.sealing = Some(handle);
        }
        Ok(())
    }

    /// Waits for the segment being sealed in the background, if any.
    fn finish_sealing(&mut self) -> Result<()> {
        if let Some(handle) = self.sealing.take() {
            let bytes = handle.join().map_err(|_| StoreError::Corrupt {
                path: self.dir.clone(),
                reason: "the sealing thread panicked; the segment stays unsealed and is recovered on next open".into(),
            })??;
            self.summary.segments_sealed += 1;
            self.summary.sealed_bytes += bytes;
        }
        Ok(())
    }

    /// Commits, seals and releases the lock.
    pub fn close(mut self) -> Result<WriterSummary> {
        self.seal_active()?;
        self.finish_sealing()?;
        Ok(std::mem::take(&mut self.summary))
    }

    pub fn summary(&self) -> &WriterSummary {
        &self.summary
    }
}

impl Drop for Writer {
    /// A writer dropped without `close` (an error path) still finishes the seal it started; its
    /// active segment stays on disk and the next writer recovers it.
    fn drop(&mut self) {
        let _ = self.finish_sealing();
    }
}

impl Active {
    fn intern(&mut self, s: &mut Str) -> u32 {
        let id = match self.strings.get(&s.bytes) {
            Some(&id) => id,
            None => {
                let id = self.strings.len() as u32 + 1;
                self.strings.insert(s.bytes.clone(), id);
                self.new_strings.push((id, s.bytes.clone()));
                id
            }
        };
        s.key = id;
        id
    }

    /// The row of a process image in this segment, writing it (after its ancestors, so that a
    /// parent always has the lower id) the first time. Chains deeper than the ancestors an event
    /// lists are cut there.
    fn intern_process(&mut self, p: &Arc<Process>, depth: usize) -> u32 {
        if let Some((id, _)) = self.processes.get(&(Arc::as_ptr(p) as usize)) {
            return *id;
        }
        let parent = match &p.parent {
            Some(q) if depth <= MAX_ANCESTORS => Some(self.intern_process(q, depth + 1)),
            _ => None,
        };
        let mut opt = |s: &Option<Str>| {
            s.as_ref().map(|s| {
                let mut s = s.clone();
                self.intern(&mut s)
            })
        };
        let (exe, argv, cgroup, container_id, tty) = (
            opt(&p.exe),
            opt(&p.argv),
            opt(&p.cgroup),
            opt(&p.container_id),
            opt(&p.tty),
        );
        let comm = self.intern(&mut p.comm.clone());
        let id = self.processes.len() as u32 + 1;
        self.processes
            .insert(Arc::as_ptr(p) as usize, (id, p.clone()));
        self.new_processes.push(NewProcess {
            id,
            parent,
            comm,
            exe,
            argv,
            cgroup,
            container_id,
            tty,
            p: p.clone(),
        });
        self.meta.processes += 1;
        id
    }

    fn intern_user(&mut self, uid: u32, name: &Str) {
        if let std::collections::hash_map::Entry::Vacant(v) = self.users.entry(uid) {
            v.insert(name.bytes.clone());
            self.new_users.push((uid, name.bytes.clone()));
        }
    }

    fn db_bytes(&self) -> u64 {
        self.conn
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|b| b as u64)
            .unwrap_or(0)
    }

    fn flush(&mut self) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(sql_err(&path, "BEGIN"))?;
        {
            const S: &str = "INSERT INTO strings (id, value) VALUES (?1, ?2)";
            let mut st = tx.prepare_cached(S).map_err(sql_err(&path, S))?;
            for (id, v) in self.new_strings.drain(..) {
                st.execute(params![id, &v[..]]).map_err(sql_err(&path, S))?;
            }
            const PR: &str = "INSERT INTO processes (id, pid, start_ns, exec_ns, parent, ppid, \
                source, comm, exe, argv, args_truncated, uid, gid, euid, egid, auid, sessionid, \
                cgroup_id, cgroup, container_id, pidns, mntns, tty) VALUES (?1, ?2, ?3, ?4, ?5, \
                ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)";
            let mut st = tx.prepare_cached(PR).map_err(sql_err(&path, PR))?;
            for n in self.new_processes.drain(..) {
                let p = &n.p;
                st.execute(params![
                    n.id,
                    p.pid,
                    p.start_ns,
                    p.exec_ns,
                    n.parent,
                    p.ppid,
                    p.source.code(),
                    n.comm,
                    n.exe,
                    n.argv,
                    p.args_truncated,
                    p.uid,
                    p.gid,
                    p.euid,
                    p.egid,
                    p.auid,
                    p.sessionid,
                    p.cgroup_id as i64,
                    n.cgroup,
                    n.container_id,
                    p.pidns,
                    p.mntns,
                    n.tty
                ])
                .map_err(sql_err(&path, PR))?;
            }
            const X: &str = "UPDATE processes SET exit_code = ?2, exit_ns = ?3 WHERE id = ?1";
            let mut st = tx.prepare_cached(X).map_err(sql_err(&path, X))?;
            for (id, code, ts) in self.exits.drain(..) {
                st.execute(params![id, code, ts])
                    .map_err(sql_err(&path, X))?;
            }
            const U: &str = "INSERT OR IGNORE INTO users (uid, name) VALUES (?1, ?2)";
            let mut st = tx.prepare_cached(U).map_err(sql_err(&path, U))?;
            for (uid, name) in self.new_users.drain(..) {
                st.execute(params![uid, &name[..]])
                    .map_err(sql_err(&path, U))?;
            }
            const P: &str =
                "INSERT INTO procs (id, pid, tid, ppid, uid, gid, comm, euid, egid, process) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
            let mut st = tx.prepare_cached(P).map_err(sql_err(&path, P))?;
            for (id, k) in self.new_procs.drain(..) {
                let process = (k.process != 0).then_some(k.process);
                st.execute(params![
                    id, k.pid, k.tid, k.ppid, k.uid, k.gid, k.comm, k.euid, k.egid, process
                ])
                .map_err(sql_err(&path, P))?;
            }
            const SH: &str =
                "INSERT INTO shapes (id, syscall, src, truncated, dirfd, flags, mode) \
                              VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
            let mut st = tx.prepare_cached(SH).map_err(sql_err(&path, SH))?;
            for (id, k) in self.new_shapes.drain(..) {
                st.execute(params![
                    id,
                    k.syscall,
                    k.src,
                    k.truncated,
                    k.dirfd,
                    k.flags as i64,
                    k.mode
                ])
                .map_err(sql_err(&path, SH))?;
            }
            if !self.rows.is_empty() {
                const B: &str = "INSERT INTO blocks \
                                 (count, base_ts_ns, min_ts_ns, max_ts_ns, ts, proc, path, raw_path, shape, ret) \
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
                let b = encode_block(&self.rows);
                let mut st = tx.prepare_cached(B).map_err(sql_err(&path, B))?;
                st.execute(params![
                    self.rows.len() as i64,
                    b.base_ts_ns,
                    b.min_ts_ns,
                    b.max_ts_ns,
                    b.cols[0],
                    b.cols[1],
                    b.cols[2],
                    b.cols[3],
                    b.cols[4],
                    b.cols[5]
                ])
                .map_err(sql_err(&path, B))?;
                self.rows.clear();
            }
            const L: &str =
                "INSERT INTO losses (start_ns, end_ns, count, reason) VALUES (?1, ?2, ?3, ?4)";
            let mut st = tx.prepare_cached(L).map_err(sql_err(&path, L))?;
            for l in self.losses.drain(..) {
                st.execute(params![l.start_ns, l.end_ns, l.count as i64, l.reason])
                    .map_err(sql_err(&path, L))?;
            }
        }
        write_meta_table(&tx, &path, &self.meta)?;
        tx.commit().map_err(sql_err(&path, "COMMIT"))
    }
}

struct EncodedBlock {
    base_ts_ns: i64,
    min_ts_ns: i64,
    max_ts_ns: i64,
    /// ts, proc, path, raw_path, shape, ret (see migrations/0001_init.sql).
    cols: [Vec<u8>; 6],
}

fn encode_block(rows: &[Row]) -> EncodedBlock {
    let base = rows.first().map_or(0, |r| r.ts_ns);
    let mut cols: [Vec<u8>; 6] = std::array::from_fn(|_| Vec::with_capacity(rows.len() * 2));
    let (mut min, mut max, mut prev) = (i64::MAX, i64::MIN, base);
    for r in rows {
        codec::put_i64(&mut cols[0], r.ts_ns.wrapping_sub(prev));
        prev = r.ts_ns;
        min = min.min(r.ts_ns);
        max = max.max(r.ts_ns);
        codec::put_u64(&mut cols[1], r.proc_id.into());
        codec::put_u64(&mut cols[2], r.path.into());
        codec::put_u64(&mut cols[3], r.raw_path.into());
        codec::put_u64(&mut cols[4], r.shape.into());
        codec::put_i64(&mut cols[5], r.ret);
    }
    EncodedBlock {
        base_ts_ns: base,
        min_ts_ns: min,
        max_ts_ns: max,
        cols,
    }
}

fn read_proc(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn write_meta_table(conn: &Connection, path: &Path, meta: &SegmentMeta) -> Result<()> {
    const M: &str = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)";
    let mut st = conn.prepare_cached(M).map_err(sql_err(path, M))?;
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let pairs: [(&str, String); 12] = [
        ("seq", meta.seq.to_string()),
        ("tool_version", meta.tool_version.clone()),
        ("host", meta.host.clone()),
        ("kernel", meta.kernel.clone()),
        ("boot_id", meta.boot_id.clone()),
        ("clock_anchor_ns", meta.clock_anchor_ns.to_string()),
        ("first_ts_ns", opt(meta.first_ts_ns)),
        ("last_ts_ns", opt(meta.last_ts_ns)),
        ("events", meta.events.to_string()),
        ("lost", meta.lost.to_string()),
        ("processes", meta.processes.to_string()),
        ("schema_version", meta.schema_version.to_string()),
    ];
    for (k, v) in pairs {
        st.execute(params![k, v]).map_err(sql_err(path, M))?;
    }
    Ok(())
}

/// Rebuilds a [`SegmentMeta`] from a segment's `meta` table (`db_bytes` is left 0).
pub(crate) fn read_meta_table(conn: &Connection, path: &Path) -> Result<SegmentMeta> {
    const Q: &str = "SELECT key, value FROM meta";
    let mut st = conn.prepare(Q).map_err(sql_err(path, Q))?;
    let kv: HashMap<String, String> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(sql_err(path, Q))?;
    let get = |k: &str| kv.get(k).cloned().unwrap_or_default();
    let num = |k: &str| get(k).parse::<i64>().ok();
    Ok(SegmentMeta {
        seq: num("seq").unwrap_or(0) as u64,
        schema_version: num("schema_version").unwrap_or(0),
        tool_version: get("tool_version"),
        host: get("host"),
        kernel: get("kernel"),
        boot_id: get("boot_id"),
        first_ts_ns: num("first_ts_ns"),
        last_ts_ns: num("last_ts_ns"),
        events: num("events").unwrap_or(0) as u64,
        lost: num("lost").unwrap_or(0) as u64,
        processes: num("processes").unwrap_or(0) as u64,
        db_bytes: 0,
        clock_anchor_ns: num("clock_anchor_ns").unwrap_or(0),
    })
}

/// Checkpoints and closes `conn` (an active segment at `path`), writes it sealed, then removes
/// the active files. Returns the sealed file's size.
fn seal_connection(
    conn: Connection,
    path: &Path,
    dir: &Path,
    mut meta: SegmentMeta,
) -> Result<u64> {
    // Back to a rollback journal so the file alone is the whole database (a WAL-mode image cannot
    // be deserialized); this also checkpoints the WAL.
    const J: &str = "PRAGMA journal_mode = DELETE";
    conn.query_row(J, [], |_| Ok(()))
        .map_err(sql_err(path, J))?;
    conn.close()
        .map_err(|(_, e)| e)
        .map_err(sql_err(path, "close"))?;
    let db = fs::read(path).map_err(io_err(path))?;
    meta.db_bytes = db.len() as u64;
    let sealed = write_sealed(dir, &meta, &db)?;
    let bytes = fs::metadata(&sealed).map_err(io_err(&sealed))?.len();
    remove_active_files(path)?;
    segment::sync_dir(dir)?;
    Ok(bytes)
}

fn remove_active_files(path: &Path) -> Result<()> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if p.exists() {
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
    }
    fs::remove_file(path).map_err(io_err(path))
}
