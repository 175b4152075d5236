//! The active segment's write buffer: strings, process images, thread keys and event shapes are
//! interned (each gets its id once per segment) and rows are held until the next commit, which
//! writes them all in one transaction.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use rustc_hash::FxHashMap;

use crate::bytes::Str;
use crate::event::Event;
use crate::file_id::FileId;
use crate::process::{Process, MAX_ANCESTORS};
use crate::store::segment::summarize::{Collector, ProcKeys, Resolve};
use crate::store::segment::{blocks, next_table_id, write_meta_table, Loss, SegmentMeta};
use crate::store::summary::BLOCK_BLOOM;
use crate::store::{sql_err, Result};

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
    /// The thread's root directory (string id), 0 for the namespace's root.
    root: u32,
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
    root: Option<u32>,
    cwd: Option<u32>,
    p: Arc<Process>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ShapeKey {
    op: u8,
    syscall: u8,
    src: u8,
    truncated: bool,
    dirfd: Option<i32>,
    flags: u64,
    mode: u32,
}

pub(super) struct Active {
    pub(super) name: String,
    path: PathBuf,
    pub(super) conn: Connection,
    pub(super) opened: Instant,
    /// What is committed (the meta table as the database holds it).
    pub(super) meta: SegmentMeta,
    table: u64,
    // FxHash: interning runs three lookups per event on the recorder's hot path, and SipHash's
    // DoS resistance buys nothing for keys that are only ever compared for equality here.
    strings: FxHashMap<Arc<[u8]>, u32>,
    /// The same ids by the address of an `Arc` that `strings` or `aliases` holds (so an address
    /// is never reused while it is a key): the capture decoder hands out one `Arc` per distinct
    /// string, so most lookups hash an address instead of the bytes.
    by_addr: FxHashMap<usize, u32>,
    /// Other `Arc`s of interned strings, held for their `by_addr` entry.
    aliases: Vec<Arc<[u8]>>,
    procs: FxHashMap<ProcKey, u32>,
    shapes: FxHashMap<ShapeKey, u32>,
    /// The last event's (key, id) of each: opens come in runs of one thread and one shape.
    last_proc: Option<(ProcKey, u32)>,
    last_shape: Option<(ShapeKey, u32)>,
    /// Process images by identity; the `Arc` is held so that an address is never reused while
    /// it is a key.
    processes: FxHashMap<usize, (u32, Arc<Process>)>,
    /// The last image appended (address, id): valid while `processes` holds it.
    last_process: (usize, u32),
    users: FxHashMap<u32, Arc<[u8]>>,
    /// Opened files' identities (`files.id`).
    files: FxHashMap<FileId, u32>,
    /// The last event's file and its id: opens come in runs of one file, which skip the map.
    last_file: (Option<FileId>, u32),
    /// The interned values by id - 1, for the blocks' summaries: strings, proc rows, process
    /// images' (exe, container id) string ids, shapes' ops.
    string_of: Vec<Arc<[u8]>>,
    proc_of: Vec<ProcKey>,
    process_of: Vec<(Option<u32>, Option<u32>)>,
    op_of: Vec<u8>,
    // Interned but not yet committed: kept until a commit succeeds, so that a failed commit
    // (disk full) never leaves rows pointing at ids the database lacks.
    new_strings: Vec<(u32, Arc<[u8]>)>,
    new_procs: Vec<(u32, ProcKey)>,
    new_shapes: Vec<(u32, ShapeKey)>,
    new_processes: Vec<NewProcess>,
    new_users: Vec<(u32, Arc<[u8]>)>,
    new_files: Vec<(u32, FileId)>,
    /// (processes.id, wait status, time)
    exits: Vec<(u32, i32, i64)>,
    pub(super) rows: Vec<blocks::Row>,
    /// Of `rows`, how many were stored after a later event (see [`super::Writer::mark_late`]).
    pub(super) late: u64,
    pub(super) losses: Vec<Loss>,
    /// Transactions committed: none means the file holds nothing to seal.
    pub(super) commits: u64,
    /// The ids of every row committed, from which the seal builds the segment's summary when
    /// the witness vouches that the database holds just those rows (decoding them all again
    /// was 46% of a seal: docs/benchmarks.md).
    pub(super) committed: Collector,
    /// Time spent building the blocks' summaries (see [`super::WriterSummary`]).
    pub(super) summary_time: Duration,
}

impl Active {
    pub(super) fn new(name: String, path: PathBuf, conn: Connection, meta: SegmentMeta) -> Active {
        Active {
            name,
            path,
            conn,
            opened: Instant::now(),
            meta,
            table: next_table_id(),
            strings: FxHashMap::default(),
            by_addr: FxHashMap::default(),
            aliases: Vec::new(),
            procs: FxHashMap::default(),
            shapes: FxHashMap::default(),
            last_proc: None,
            last_shape: None,
            processes: FxHashMap::default(),
            last_process: (0, 0),
            users: FxHashMap::default(),
            files: FxHashMap::default(),
            last_file: (None, 0),
            string_of: Vec::new(),
            proc_of: Vec::new(),
            process_of: Vec::new(),
            op_of: Vec::new(),
            new_strings: Vec::new(),
            new_procs: Vec::new(),
            new_shapes: Vec::new(),
            new_processes: Vec::new(),
            new_users: Vec::new(),
            new_files: Vec::new(),
            exits: Vec::new(),
            rows: Vec::new(),
            late: 0,
            losses: Vec::new(),
            commits: 0,
            committed: Collector::default(),
            summary_time: Duration::ZERO,
        }
    }

    /// Buffers one event, interning its strings; sets the event's `Str::key`s and `table` to this
    /// segment's string table (the rule engine caches verdicts by them).
    pub(super) fn push_event(&mut self, ev: &mut Event) {
        let comm = self.intern(&mut ev.comm);
        let path = self.intern(&mut ev.path);
        let raw = self.intern(&mut ev.raw_path);
        let root = ev.root.as_mut().map_or(0, |r| self.intern(r));
        let alias_of = ev.alias_of.as_mut().map_or(0, |a| self.intern(a));
        let old_path = ev.old_path.as_mut().map_or(0, |o| self.intern(o));
        let file = match ev.file {
            None => 0,
            Some(f) if self.last_file.0 == Some(f) => self.last_file.1,
            Some(f) => {
                let next = self.files.len() as u32 + 1;
                let id = *self.files.entry(f).or_insert_with(|| {
                    self.new_files.push((next, f));
                    next
                });
                self.last_file = (Some(f), id);
                id
            }
        };
        ev.table = self.table;
        let process = match &ev.process {
            None => 0,
            // Runs of events of one process skip the map.
            Some(p) if Arc::as_ptr(p) as usize == self.last_process.0 => self.last_process.1,
            Some(p) => {
                let id = self.intern_process(p, 0);
                self.last_process = (Arc::as_ptr(p) as usize, id);
                id
            }
        };
        ev.proc_key = if process == 0 { Str::NO_KEY } else { process };
        if let Some(user) = &ev.user {
            self.intern_user(ev.uid, user);
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
            root,
        };
        let proc_id = match self.last_proc {
            Some((k, id)) if k == key => id,
            _ => {
                let next_proc = self.procs.len() as u32 + 1;
                let id = *self.procs.entry(key).or_insert_with(|| {
                    self.new_procs.push((next_proc, key));
                    self.proc_of.push(key);
                    next_proc
                });
                self.last_proc = Some((key, id));
                id
            }
        };
        let shape = ShapeKey {
            op: ev.op.code(),
            syscall: ev.syscall.code(),
            src: ev.path_source.code(),
            truncated: ev.path_truncated,
            dirfd: ev.dirfd,
            flags: ev.flags,
            mode: ev.mode,
        };
        let shape = match self.last_shape {
            Some((k, id)) if k == shape => id,
            _ => {
                let next_shape = self.shapes.len() as u32 + 1;
                let id = *self.shapes.entry(shape).or_insert_with(|| {
                    self.new_shapes.push((next_shape, shape));
                    self.op_of.push(shape.op);
                    next_shape
                });
                self.last_shape = Some((shape, id));
                id
            }
        };
        self.rows.push(blocks::Row {
            ts_ns: ev.ts_ns,
            proc_id,
            path,
            raw_path: if raw == path { 0 } else { raw },
            shape,
            ret: ev.ret,
            file,
            alias_of,
            old_path,
            new_uid: ev.new_uid,
            new_gid: ev.new_gid,
            length: ev.length,
        });
    }

    /// The summary of the buffered rows (`None` only if an id is missing from the interning
    /// tables, which cannot happen: the block is then read, never skipped), and their ids.
    fn block_summary(&self) -> (Option<Vec<u8>>, Collector) {
        let mut c = Collector::default();
        self.rows.iter().for_each(|r| c.add(r));
        (c.finish(self, BLOCK_BLOOM).ok().map(|s| s.encode()), c)
    }

    pub(super) fn is_clean(&self) -> bool {
        self.rows.is_empty()
            && self.losses.is_empty()
            && self.new_strings.is_empty()
            && self.new_shapes.is_empty()
            && self.new_procs.is_empty()
            && self.new_processes.is_empty()
            && self.new_users.is_empty()
            && self.new_files.is_empty()
            && self.exits.is_empty()
    }

    fn intern(&mut self, s: &mut Str) -> u32 {
        let addr = s.bytes.as_ptr() as usize;
        if let Some(&id) = self.by_addr.get(&addr) {
            s.key = id;
            return id;
        }
        let id = match self.strings.get(&s.bytes) {
            Some(&id) => {
                // Another copy of a known string (e.g. after the decoder's pool started over):
                // keep it, so that its next lookups take the short way too; bounded by the
                // strings themselves.
                if self.aliases.len() < self.strings.len() {
                    self.aliases.push(s.bytes.clone());
                    self.by_addr.insert(addr, id);
                }
                id
            }
            None => {
                let id = self.strings.len() as u32 + 1;
                self.strings.insert(s.bytes.clone(), id);
                self.by_addr.insert(addr, id);
                self.new_strings.push((id, s.bytes.clone()));
                self.string_of.push(s.bytes.clone());
                id
            }
        };
        s.key = id;
        id
    }

    /// The row of a process image in this segment, writing it (after its ancestors, so that a
    /// parent always has the lower id) the first time. Chains deeper than the ancestors an event
    /// lists are cut there.
    /// Buffers the end of a process (`status` is the wait status).
    pub(super) fn push_exit(&mut self, p: &Arc<Process>, status: i32, ts_ns: i64) {
        let id = self.intern_process(p, 0);
        self.exits.push((id, status, ts_ns));
    }

    /// Process images and exits buffered but not yet written.
    pub(super) fn unwritten_processes_and_exits(&self) -> u64 {
        (self.new_processes.len() + self.exits.len()) as u64
    }

    pub(super) fn intern_process(&mut self, p: &Arc<Process>, depth: usize) -> u32 {
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
        let (exe, argv, cgroup, container_id, tty, root, cwd) = (
            opt(&p.exe),
            opt(&p.argv),
            opt(&p.cgroup),
            opt(&p.container_id),
            opt(&p.tty),
            opt(&p.root),
            opt(&p.cwd),
        );
        let comm = self.intern(&mut p.comm.clone());
        let id = self.processes.len() as u32 + 1;
        self.processes
            .insert(Arc::as_ptr(p) as usize, (id, p.clone()));
        self.process_of.push((exe, container_id));
        self.new_processes.push(NewProcess {
            id,
            parent,
            comm,
            exe,
            argv,
            cgroup,
            container_id,
            tty,
            root,
            cwd,
            p: p.clone(),
        });
        id
    }

    pub(super) fn intern_user(&mut self, uid: u32, name: &Str) {
        if let std::collections::hash_map::Entry::Vacant(v) = self.users.entry(uid) {
            v.insert(name.bytes.clone());
            self.new_users.push((uid, name.bytes.clone()));
        }
    }

    pub(super) fn db_bytes(&self) -> u64 {
        self.conn
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|b| b as u64)
            .unwrap_or(0)
    }

    /// Writes everything buffered in one transaction; returns the events stored. On failure
    /// nothing of it is forgotten (the caller decides what to drop).
    pub(super) fn flush(&mut self) -> Result<u64> {
        let path = self.path.clone();
        let mut meta = self.meta.clone();
        meta.events += self.rows.len() as u64;
        meta.late += self.late;
        for r in &self.rows {
            meta.first_ts_ns = Some(meta.first_ts_ns.map_or(r.ts_ns, |f| f.min(r.ts_ns)));
            meta.last_ts_ns = Some(meta.last_ts_ns.map_or(r.ts_ns, |l| l.max(r.ts_ns)));
        }
        // Events lost; alert lines an output dropped are loss records too, but no event is missing.
        for l in &self.losses {
            if l.is_event_loss() {
                meta.lost += l.count;
            } else {
                meta.alert_drops += l.count;
            }
        }
        meta.processes = self.processes.len() as u64;
        let t = Instant::now();
        let (summary, ids) = self.block_summary();
        self.summary_time += t.elapsed();
        let tx = self.conn.transaction().map_err(sql_err(&path, "BEGIN"))?;
        {
            const S: &str = "INSERT INTO strings (id, value) VALUES (?1, ?2)";
            let mut st = tx.prepare_cached(S).map_err(sql_err(&path, S))?;
            for (id, v) in &self.new_strings {
                st.execute(params![id, &v[..]]).map_err(sql_err(&path, S))?;
            }
            const PR: &str = "INSERT INTO processes (id, pid, start_ns, exec_ns, parent, ppid, \
                source, comm, exe, argv, args_truncated, uid, gid, euid, egid, auid, sessionid, \
                cgroup_id, cgroup, container_id, pidns, mntns, tty, root, exe_dev, exe_ino, \
                exe_verified, cwd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
                ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)";
            let mut st = tx.prepare_cached(PR).map_err(sql_err(&path, PR))?;
            for n in &self.new_processes {
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
                    n.tty,
                    n.root,
                    // The 64 bits as they are (SQLite integers are signed).
                    p.exe_id.map(|f| f.dev as i64),
                    p.exe_id.map(|f| f.ino as i64),
                    p.exe_verified,
                    n.cwd
                ])
                .map_err(sql_err(&path, PR))?;
            }
            const X: &str = "UPDATE processes SET exit_code = ?2, exit_ns = ?3 WHERE id = ?1";
            let mut st = tx.prepare_cached(X).map_err(sql_err(&path, X))?;
            for (id, code, ts) in &self.exits {
                st.execute(params![id, code, ts])
                    .map_err(sql_err(&path, X))?;
            }
            const U: &str = "INSERT OR IGNORE INTO users (uid, name) VALUES (?1, ?2)";
            let mut st = tx.prepare_cached(U).map_err(sql_err(&path, U))?;
            for (uid, name) in &self.new_users {
                st.execute(params![uid, &name[..]])
                    .map_err(sql_err(&path, U))?;
            }
            const F: &str = "INSERT INTO files (id, dev, ino) VALUES (?1, ?2, ?3)";
            let mut st = tx.prepare_cached(F).map_err(sql_err(&path, F))?;
            for (id, f) in &self.new_files {
                st.execute(params![id, f.dev as i64, f.ino as i64])
                    .map_err(sql_err(&path, F))?;
            }
            const P: &str = "INSERT INTO procs (id, pid, tid, ppid, uid, gid, comm, euid, egid, \
                             process, root) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
            let mut st = tx.prepare_cached(P).map_err(sql_err(&path, P))?;
            for (id, k) in &self.new_procs {
                let process = (k.process != 0).then_some(k.process);
                let root = (k.root != 0).then_some(k.root);
                st.execute(params![
                    id, k.pid, k.tid, k.ppid, k.uid, k.gid, k.comm, k.euid, k.egid, process, root
                ])
                .map_err(sql_err(&path, P))?;
            }
            const SH: &str =
                "INSERT INTO shapes (id, syscall, src, truncated, dirfd, flags, mode, op) \
                              VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
            let mut st = tx.prepare_cached(SH).map_err(sql_err(&path, SH))?;
            for (id, k) in &self.new_shapes {
                st.execute(params![
                    id,
                    k.syscall,
                    k.src,
                    k.truncated,
                    k.dirfd,
                    k.flags as i64,
                    k.mode,
                    k.op
                ])
                .map_err(sql_err(&path, SH))?;
            }
            if !self.rows.is_empty() {
                const B: &str = "INSERT INTO blocks \
                                 (count, base_ts_ns, min_ts_ns, max_ts_ns, ts, proc, path, raw_path, shape, ret, \
                                 file, alias_of, old_path, new_uid, new_gid, length, summary) \
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
                let b = blocks::encode(&self.rows);
                let mut st = tx.prepare_cached(B).map_err(sql_err(&path, B))?;
                st.execute(params![
                    b.count,
                    b.base_ts_ns,
                    b.min_ts_ns,
                    b.max_ts_ns,
                    b.cols[0],
                    b.cols[1],
                    b.cols[2],
                    b.cols[3],
                    b.cols[4],
                    b.cols[5],
                    b.opt[0],
                    b.opt[1],
                    b.opt[2],
                    b.opt[3],
                    b.opt[4],
                    b.opt[5],
                    summary
                ])
                .map_err(sql_err(&path, B))?;
            }
            const L: &str =
                "INSERT INTO losses (start_ns, end_ns, count, reason) VALUES (?1, ?2, ?3, ?4)";
            let mut st = tx.prepare_cached(L).map_err(sql_err(&path, L))?;
            for l in &self.losses {
                st.execute(params![l.start_ns, l.end_ns, l.count as i64, l.reason])
                    .map_err(sql_err(&path, L))?;
            }
        }
        write_meta_table(&tx, &path, &meta, Some(&self.meta))?;
        tx.commit().map_err(sql_err(&path, "COMMIT"))?;
        self.committed.merge(&ids);
        self.commits += 1;
        let stored = self.rows.len() as u64;
        self.meta = meta;
        self.new_strings.clear();
        self.new_processes.clear();
        self.exits.clear();
        self.new_users.clear();
        self.new_files.clear();
        self.new_procs.clear();
        self.new_shapes.clear();
        self.rows.clear();
        self.late = 0;
        self.losses.clear();
        Ok(stored)
    }
}

impl Resolve for Active {
    fn string(&self, id: u32) -> Option<&[u8]> {
        let s = self.string_of.get((id as usize).checked_sub(1)?)?;
        Some(s)
    }

    fn proc(&self, id: u32) -> Option<ProcKeys<'_>> {
        let k = self.proc_of.get((id as usize).checked_sub(1)?)?;
        let (exe, container) = match k.process {
            0 => (None, None),
            p => *self.process_of.get(p as usize - 1)?,
        };
        let s = |id: Option<u32>| {
            id.map(|i| self.string(i))
                .map_or(Some(None), |s| s.map(Some))
        };
        Some(ProcKeys {
            pid: k.pid,
            uid: k.uid,
            exe: s(exe)?,
            container: s(container)?,
        })
    }

    fn op(&self, shape: u32) -> Option<u8> {
        self.op_of.get((shape as usize).checked_sub(1)?).copied()
    }
}
