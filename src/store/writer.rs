//! The one writer of a store: interning, batched transactions, rotation, sealing (in order, on a
//! background thread, extending the hash chain) and recovery.
//!
//! What it never does: follow a link in the store, replace a file, or stop recording because the
//! disk is full. Events that cannot be stored while the disk is full are counted and become a
//! `disk_full` loss record once space returns; a seal that fails leaves its (complete, committed)
//! active database in place and is retried.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OpenFlags, MAIN_DB};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use super::dir::{Kind, StoreDir};
use super::lock::StoreLock;
use super::schema::{apply_migrations, user_version};
use super::segment::{
    active_name, blocks, dir_kind_ok, frame, hex, link_of, next_table_id, parse_name,
    read_meta_table, sealed_name, sign_link, write_meta_table, Loss, SegmentMeta, COMPANIONS,
    TMP_SUFFIX,
};
use super::{io_err, sql_err, Result, StoreError};
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

#[derive(Clone, Debug, Default)]
pub struct WriterSummary {
    pub events: u64,
    pub lost: u64,
    pub segments_sealed: u64,
    /// Bytes of sealed segment files written.
    pub sealed_bytes: u64,
    /// Segments left unsealed by a dead writer and sealed on open.
    pub recovered: Vec<PathBuf>,
    /// What the writer set aside or could not do, for the user to see (one sentence each).
    pub warnings: Vec<String>,
    /// The link of the newest sealed segment: the store's hash-chain head.
    pub head: String,
    /// Segments whose seal failed and that stay active databases (the next writer seals them).
    pub unsealed: u64,
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
    root: Option<u32>,
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

struct Active {
    name: String,
    path: PathBuf,
    conn: Connection,
    opened: Instant,
    /// What is committed (the meta table as the database holds it).
    meta: SegmentMeta,
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
    // Interned but not yet committed: kept until a commit succeeds, so that a failed commit
    // (disk full) never leaves rows pointing at ids the database lacks.
    new_strings: Vec<(u32, Arc<[u8]>)>,
    new_procs: Vec<(u32, ProcKey)>,
    new_shapes: Vec<(u32, ShapeKey)>,
    new_processes: Vec<NewProcess>,
    new_users: Vec<(u32, Arc<[u8]>)>,
    /// (processes.id, wait status, time)
    exits: Vec<(u32, i32, i64)>,
    rows: Vec<blocks::Row>,
    /// Of `rows`, how many were stored after a later event (see [`Writer::mark_late`]).
    late: u64,
    losses: Vec<Loss>,
}

/// Segments that may wait for their seal at once, beyond the one in flight.
pub const MAX_SEALS_WAITING: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    No,
    One,
    All,
}

/// A segment to seal: its open connection, so a failed seal can be retried without reopening.
struct SealJob {
    conn: Connection,
    name: String,
    meta: SegmentMeta,
}

/// (the job back, for a retry, if the seal failed; or the sealed bytes, the new link, and what it
/// had to move aside).
type SealResult = (Option<SealJob>, Result<(u64, String, Option<String>)>);

pub struct Writer {
    dir: Arc<StoreDir>,
    config: RotateConfig,
    _lock: StoreLock,
    next_seq: u64,
    clock_anchor_ns: i64,
    /// A recording's id, in every segment it creates ([`SegmentMeta::recording`]); `None` for
    /// imports, which had no live run to be faithful to.
    recording: Option<String>,
    active: Option<Active>,
    /// Segments waiting to be sealed, oldest first: seals happen in order, one at a time, on a
    /// background thread, so that the caller (the recorder's store thread) never waits for zstd
    /// and fsync, and the hash chain follows the sequence.
    pending: VecDeque<SealJob>,
    sealing: Option<JoinHandle<SealResult>>,
    /// The sequence number of the segment `sealing` works on.
    sealing_seq: Option<u64>,
    /// After a failed seal, the next try.
    retry_at: Option<Instant>,
    sign_key: Option<Arc<Vec<u8>>>,
    /// Events and records dropped while the disk was full, not yet written as a loss record.
    dropped: Option<Loss>,
    /// Loss records that could not be placed in a segment yet (the disk was full).
    parked: Vec<Loss>,
    summary: WriterSummary,
}

/// 128 random bits, hex: a run's id. Without the kernel's randomness (never on Linux ≥ 3.17),
/// the time and pid, which still differ between any two runs on one host.
fn recording_id() -> String {
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        let t = crate::timespec::now_ns() as u128;
        b = (t << 32 | u128::from(std::process::id())).to_le_bytes();
    }
    super::segment::hex(&b)
}

fn read_proc(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Whether an error is the disk (or quota) being full: recording goes on through those.
pub fn is_disk_full(e: &StoreError) -> bool {
    match e {
        StoreError::Io { source, .. } => matches!(
            source.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT)
        ),
        StoreError::Sql { source, .. } => matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull)
        ),
        _ => false,
    }
}

impl Writer {
    /// Opens `dir` for writing: creates it (owner-only), refuses one others could tamper with,
    /// takes the lock, removes half-written seals, seals any segment a dead writer left behind
    /// and moves aside what does not belong (named in the summary's warnings).
    pub fn open(dir: &Path, config: RotateConfig) -> Result<Writer> {
        let sdir = StoreDir::open_for_writing(dir)?;
        let lock = StoreLock::acquire(&sdir)?;
        let mut w = Writer {
            dir: Arc::new(sdir),
            config,
            _lock: lock,
            next_seq: 1,
            clock_anchor_ns: 0,
            recording: None,
            active: None,
            pending: VecDeque::new(),
            sealing: None,
            sealing_seq: None,
            retry_at: None,
            sign_key: None,
            dropped: None,
            parked: Vec::new(),
            summary: WriterSummary::default(),
        };
        w.recover()?;
        Ok(w)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The segment a seal is in flight for: its sealed file may exist while its active files are
    /// not yet removed, so retention leaves it (and everything newer) alone, never removing a
    /// segment that a crash could leave behind as an active database, sealed again by the next
    /// writer.
    pub fn sealing_seq(&self) -> Option<u64> {
        self.sealing_seq
    }

    /// The store directory, for retention (which runs under this writer's lock).
    pub(super) fn store_dir(&self) -> &StoreDir {
        &self.dir
    }

    /// Signs each new chain link with HMAC-SHA-256 under `key`.
    pub fn set_sign_key(&mut self, key: Vec<u8>) {
        self.sign_key = Some(Arc::new(key));
    }

    /// Marks the segments from now on as one live recording's, under a fresh random id: replay
    /// throttles each recording apart, as each recorder did.
    pub fn start_recording(&mut self) {
        self.recording = Some(recording_id());
    }

    /// Wall-clock minus boot-clock ns, stored in each new segment so that kernel times can be
    /// re-derived.
    pub fn set_clock_anchor(&mut self, anchor_ns: i64) {
        self.clock_anchor_ns = anchor_ns;
    }

    /// Warnings gathered since the last call (quarantined files, failed seals…).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.summary.warnings)
    }

    fn warn(&mut self, msg: String) {
        self.summary.warnings.push(msg);
    }

    /// Moves `name` aside and says so.
    fn quarantine(&mut self, name: &str, why: &str) -> Result<()> {
        let to = self
            .dir
            .quarantine(name)
            .map_err(io_err(self.dir.join(name)))?;
        self.warn(format!(
            "{}: {why}; moved aside as {to}",
            self.dir.join(name).display()
        ));
        Ok(())
    }

    fn recover(&mut self) -> Result<()> {
        let mut max_seq = 0;
        let mut active = Vec::new();
        let mut head: Option<(u64, String)> = None;
        let mut names = self.dir.names()?;
        names.sort();
        for name in names {
            if name.ends_with(TMP_SUFFIX) && parse_name(name.trim_end_matches(TMP_SUFFIX)).is_some()
            {
                // A seal that died half-way: ours to remove (a link is removed, not followed).
                self.dir
                    .remove(&name)
                    .map_err(io_err(self.dir.join(&name)))?;
                continue;
            }
            let Some((seq, sealed)) = parse_name(&name) else {
                continue;
            };
            max_seq = max_seq.max(seq);
            let kind = self.dir.kind(&name).map_err(io_err(self.dir.join(&name)))?;
            if !matches!(kind, Some((Kind::File, _))) {
                self.quarantine(&name, "not a regular file where a segment belongs")?;
                continue;
            }
            if sealed {
                // The chain continues from the newest sealed segment that has a link.
                if let Ok(meta) = frame::read_meta(&self.dir, &name) {
                    if let Some(link) = meta.link {
                        if head.as_ref().is_none_or(|(s, _)| seq > *s) {
                            head = Some((seq, link));
                        }
                    }
                }
            } else {
                active.push((seq, name));
            }
        }
        self.next_seq = max_seq + 1;
        self.summary.head = head.map(|(_, l)| l).unwrap_or_default();
        for (seq, name) in active {
            let sealed = sealed_name(seq);
            if matches!(self.dir.kind(&sealed), Ok(Some((Kind::File, _)))) {
                if frame::read_meta(&self.dir, &sealed).is_ok() {
                    // Sealed before the writer died: the active files are leftovers.
                    self.remove_active_files(&name)?;
                    continue;
                }
                // Something unreadable sits at the sealed name of a recorded segment: the
                // segment is the data; the other file moves aside.
                self.quarantine(
                    &sealed,
                    "unreadable, at the sealed name of an unsealed segment",
                )?;
            }
            if let Err(e) = self.recover_one(seq, &name) {
                if e.is_unsafe() {
                    return Err(e);
                }
                self.quarantine(&name, &format!("cannot be recovered ({e})"))?;
                for c in COMPANIONS {
                    let n = format!("{name}{c}");
                    if let Ok(Some(_)) = self.dir.kind(&n) {
                        self.quarantine(&n, "companion of an unrecoverable segment")?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Seals an active segment a dead writer left behind, under the number in its file name.
    fn recover_one(&mut self, seq: u64, name: &str) -> Result<()> {
        let path = self.dir.join(name);
        dir_kind_ok(&self.dir, name)?;
        let wal = format!("{name}-wal");
        let empty = |n: &str| matches!(self.dir.kind(n), Ok(Some((Kind::File, 0))) | Ok(None));
        if empty(name) && empty(&wal) {
            // Created, then the writer died before its first commit: nothing was recorded.
            return self.remove_active_files(name);
        }
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_err(&path, "open"))?;
        // A file that is not one of ours must not be migrated into one: check first.
        super::schema::check_readable(&conn, &path)?;
        apply_migrations(&mut conn, &path)?;
        let meta = read_meta_table(&conn, &path)?;
        if meta.seq != seq {
            return Err(StoreError::Corrupt {
                path,
                reason: format!(
                    "it says it is segment {}, its name says {seq} (copied in from elsewhere?)",
                    meta.seq
                ),
            });
        }
        if meta.events == 0 && meta.lost == 0 && meta.alert_drops == 0 && meta.processes == 0 {
            drop(conn);
            return self.remove_active_files(name);
        }
        let job = SealJob {
            conn,
            name: name.to_owned(),
            meta,
        };
        let (left, res) = seal(
            job,
            &self.dir,
            &self.summary.head,
            self.sign_key.as_deref().map(|k| &k[..]),
        );
        drop(left);
        let (bytes, link, moved) = res?;
        if let Some(m) = moved {
            self.warn(m);
        }
        self.summary.head = link;
        self.summary.sealed_bytes += bytes;
        self.summary.recovered.push(path);
        Ok(())
    }

    fn remove_active_files(&self, name: &str) -> Result<()> {
        remove_active_files(&self.dir, name)
    }

    fn start_segment(&mut self) -> Result<()> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let name = active_name(seq);
        let path = self.dir.join(&name);
        // Whatever has this name or a companion's was planted: move it aside, then create the
        // database file ourselves, exclusively, owner-only.
        for n in
            std::iter::once(name.clone()).chain(COMPANIONS.iter().map(|c| format!("{name}{c}")))
        {
            if let Ok(Some(_)) = self.dir.kind(&n) {
                self.quarantine(&n, "was in the way of a new segment")?;
            }
        }
        drop(self.dir.create_new(&name).map_err(io_err(&path))?);
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_err(&path, "open"))?;
        // Page size must be set before the first table; WAL + NORMAL keeps every committed batch
        // across a crash of this process. WAL writes every page a commit touches whole: with
        // 64 KiB pages the recorder wrote 43 bytes per event at full speed and ~70 KB/s when
        // idle, with 4 KiB pages 17 bytes and 4-8 KB/s (`benches/recorder_cpu.sh`, SECONDS 5
        // and 0), for the same sealed size (the zstd'd image) and scan speed (`cargo bench
        // --bench store`).
        let pragmas =
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";
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
            recording: self.recording.clone(),
            ..SegmentMeta::default()
        };
        write_meta_table(&conn, &path, &meta)?;
        let mut a = Active {
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
            new_strings: Vec::new(),
            new_procs: Vec::new(),
            new_shapes: Vec::new(),
            new_processes: Vec::new(),
            new_users: Vec::new(),
            exits: Vec::new(),
            rows: Vec::new(),
            late: 0,
            losses: Vec::new(),
        };
        // What the full disk cost is recorded in the first segment that can hold it.
        a.losses.append(&mut self.parked);
        a.losses.extend(self.dropped.take());
        self.active = Some(a);
        Ok(())
    }

    /// The active segment, started if needed; `None` when the disk is too full to start one
    /// (the caller counts what it drops).
    fn active_segment(&mut self) -> Result<Option<&mut Active>> {
        if self.active.is_none() {
            match self.start_segment() {
                Ok(()) => {}
                Err(e) if is_disk_full(&e) => {
                    self.next_seq -= 1;
                    let name = active_name(self.next_seq);
                    let _ = remove_active_files(&self.dir, &name);
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(self.active.as_mut())
    }

    /// Counts what the full disk made us drop, in a loss record written once space returns.
    fn drop_for_disk_full(&mut self, count: u64, from_ns: i64, to_ns: i64) {
        if count == 0 {
            return;
        }
        self.summary.lost += count;
        let l = self.dropped.get_or_insert(Loss {
            start_ns: from_ns,
            end_ns: to_ns,
            count: 0,
            reason: "disk_full".into(),
        });
        l.count += count;
        l.start_ns = l.start_ns.min(from_ns);
        l.end_ns = l.end_ns.max(to_ns);
    }

    /// Buffers one event, interning its strings; sets the event's `Str::key`s and `table` to the
    /// active segment's string table (the rule engine caches verdicts by them). Commits a batch
    /// when it is full and rotates when a limit is reached. An event that cannot be stored
    /// because the disk is full is counted as lost (`disk_full`), not an error.
    pub fn append(&mut self, ev: &mut Event) -> Result<()> {
        if self.active.as_ref().is_some_and(|a| self.should_rotate(a)) {
            self.seal_active()?;
        }
        let batch = self.config.batch_events;
        let Some(a) = self.active_segment()? else {
            self.drop_for_disk_full(1, ev.ts_ns, ev.ts_ns);
            return Ok(());
        };
        let comm = a.intern(&mut ev.comm);
        let path = a.intern(&mut ev.path);
        let raw = a.intern(&mut ev.raw_path);
        ev.table = a.table;
        let process = match &ev.process {
            None => 0,
            // Runs of events of one process skip the map.
            Some(p) if Arc::as_ptr(p) as usize == a.last_process.0 => a.last_process.1,
            Some(p) => {
                let id = a.intern_process(p, 0);
                a.last_process = (Arc::as_ptr(p) as usize, id);
                id
            }
        };
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
        let proc_id = match a.last_proc {
            Some((k, id)) if k == key => id,
            _ => {
                let next_proc = a.procs.len() as u32 + 1;
                let id = *a.procs.entry(key).or_insert_with(|| {
                    a.new_procs.push((next_proc, key));
                    next_proc
                });
                a.last_proc = Some((key, id));
                id
            }
        };
        let shape = ShapeKey {
            syscall: ev.syscall.code(),
            src: ev.path_source.code(),
            truncated: ev.path_truncated,
            dirfd: ev.dirfd,
            flags: ev.flags,
            mode: ev.mode,
        };
        let shape = match a.last_shape {
            Some((k, id)) if k == shape => id,
            _ => {
                let next_shape = a.shapes.len() as u32 + 1;
                let id = *a.shapes.entry(shape).or_insert_with(|| {
                    a.new_shapes.push((next_shape, shape));
                    next_shape
                });
                a.last_shape = Some((shape, id));
                id
            }
        };
        a.rows.push(blocks::Row {
            ts_ns: ev.ts_ns,
            proc_id,
            path,
            raw_path: if raw == path { 0 } else { raw },
            shape,
            ret: ev.ret,
        });
        if a.rows.len() >= batch {
            self.commit()?;
        }
        Ok(())
    }

    /// Stores a process image (and its ancestors) in the active segment, whether or not any event
    /// refers to it yet: every process that ran while recording is kept.
    pub fn add_process(&mut self, p: &Arc<Process>) -> Result<()> {
        match self.active_segment()? {
            Some(a) => {
                a.intern_process(p, 0);
            }
            None => self.drop_for_disk_full(1, p.start_ns, p.start_ns),
        }
        Ok(())
    }

    /// Counts the event just appended as stored out of time order (it came after a later one),
    /// in the metadata of the segment it went to.
    pub fn mark_late(&mut self) {
        if let Some(a) = self.active.as_mut().filter(|a| !a.rows.is_empty()) {
            a.late += 1;
        }
    }

    /// Records that a process ended (`status` is the wait status), with the next commit.
    pub fn record_exit(&mut self, p: &Arc<Process>, status: i32, ts_ns: i64) -> Result<()> {
        match self.active_segment()? {
            Some(a) => {
                let id = a.intern_process(p, 0);
                a.exits.push((id, status, ts_ns));
            }
            None => self.drop_for_disk_full(1, ts_ns, ts_ns),
        }
        Ok(())
    }

    /// The host named in the active segment's metadata (live alerts name it, as replay does).
    pub fn host(&self) -> Option<&str> {
        self.active.as_ref().map(|a| a.meta.host.as_str())
    }

    /// Records a loss; it is written with the next commit.
    pub fn record_loss(&mut self, loss: Loss) -> Result<()> {
        if loss.is_event_loss() {
            self.summary.lost += loss.count;
        }
        match self.active_segment()? {
            Some(a) => a.losses.push(loss),
            // Written once a segment can be.
            None => self.parked.push(loss),
        }
        Ok(())
    }

    /// Writes everything buffered in one transaction. When the disk is full the buffered events
    /// are dropped and counted (`disk_full`); what they referenced stays buffered for the next try.
    pub fn commit(&mut self) -> Result<()> {
        let Some(a) = self.active.as_mut() else {
            return Ok(());
        };
        // A disk_full loss goes out with the first commit that succeeds.
        if let Some(l) = self.dropped.take() {
            a.losses.push(l);
        }
        if a.is_clean() {
            return Ok(());
        }
        match a.flush() {
            Ok(stored) => {
                self.summary.events += stored;
                Ok(())
            }
            Err(e) if is_disk_full(&e) => {
                let rows = std::mem::take(&mut a.rows);
                a.late = 0;
                let (from, to) = rows.iter().fold((i64::MAX, i64::MIN), |(f, t), r| {
                    (f.min(r.ts_ns), t.max(r.ts_ns))
                });
                // Loss records already queued go out with a later commit; only events are dropped.
                self.drop_for_disk_full(rows.len() as u64, from, to);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Commits, rotates if the active segment is past its age, and moves sealing along. Call it
    /// periodically while idle.
    pub fn tick(&mut self) -> Result<()> {
        self.commit()?;
        if self.active.as_ref().is_some_and(|a| self.should_rotate(a)) {
            self.seal_active()?;
        }
        self.pump(Wait::No);
        Ok(())
    }

    fn should_rotate(&self, a: &Active) -> bool {
        let c = &self.config;
        // The database only grows at a commit, which leaves `rows` empty: ask SQLite for its size
        // then, once per batch, not on every append.
        // The clock once per 256 appends (and at every commit), not on every one.
        a.meta.events + a.rows.len() as u64 >= c.max_events
            || (a.rows.len() % 256 == 0 && a.opened.elapsed() >= c.max_age)
            || (a.rows.is_empty() && a.db_bytes() >= c.max_bytes)
    }

    /// Commits the active segment and queues it for sealing.
    pub fn seal_active(&mut self) -> Result<()> {
        self.commit()?;
        if let Some(mut a) = self.active.take() {
            if !a.is_clean() {
                // The disk is still full: loss records wait for the next segment; processes and
                // exits not yet written are counted as lost.
                self.parked.append(&mut a.losses);
                let n = (a.new_processes.len() + a.exits.len()) as u64;
                let now = crate::timespec::now_ns();
                self.drop_for_disk_full(n, now, now);
            }
            self.pending.push_back(SealJob {
                conn: a.conn,
                name: a.name,
                meta: a.meta,
            });
        }
        self.pump(Wait::No);
        // Each waiting segment holds an open database: when rotation outpaces sealing, wait for
        // seals (the store thread lags, and records wait in the kernel ring) rather than let
        // them pile up. A failing seal (disk full) is retried later, not waited for.
        while self.pending.len() > MAX_SEALS_WAITING && self.retry_at.is_none() {
            let before = self.pending.len();
            self.pump(Wait::One);
            if self.pending.len() >= before {
                break; // no seal could start (warned): nothing to wait for
            }
        }
        Ok(())
    }

    /// Segments committed and waiting for their seal (the one in flight not counted).
    pub fn seals_waiting(&self) -> usize {
        self.pending.len()
    }

    /// Collects a finished seal and starts the next one; `Wait::One` first waits for the seal in
    /// flight; `Wait::All` runs them all to the end (or to the first that fails).
    fn pump(&mut self, wait: Wait) {
        loop {
            if let Some(h) = &self.sealing {
                if wait == Wait::No && !h.is_finished() {
                    return;
                }
                let h = self.sealing.take().expect("checked above");
                self.sealing_seq = None;
                let (left, res) = h.join().unwrap_or_else(|_| {
                    (
                        None,
                        Err(StoreError::Corrupt {
                            path: self.dir.path().into(),
                            reason: "the sealing thread panicked".into(),
                        }),
                    )
                });
                match res {
                    Ok((bytes, link, moved)) => {
                        if let Some(m) = moved {
                            self.warn(m);
                        }
                        self.summary.segments_sealed += 1;
                        self.summary.sealed_bytes += bytes;
                        self.summary.head = link;
                        self.retry_at = None;
                    }
                    Err(e) => {
                        let name = left.as_ref().map(|j| j.name.clone()).unwrap_or_default();
                        self.warn(format!(
                            "sealing {} failed, it stays an active database and is retried: {e}",
                            self.dir.join(&name).display()
                        ));
                        if let Some(job) = left {
                            self.pending.push_front(job);
                        }
                        self.retry_at = Some(Instant::now() + Duration::from_secs(5));
                        return;
                    }
                }
            }
            if self.retry_at.is_some_and(|t| Instant::now() < t) && wait != Wait::All {
                return;
            }
            let Some(job) = self.pending.pop_front() else {
                return;
            };
            let seq = job.meta.seq;
            let dir = self.dir.clone();
            let prev = self.summary.head.clone();
            let key = self.sign_key.clone();
            let spawned = std::thread::Builder::new()
                .name("of-seal".into())
                .spawn(move || seal(job, &dir, &prev, key.as_deref().map(|k| &k[..])));
            match spawned {
                Ok(h) => {
                    self.sealing = Some(h);
                    self.sealing_seq = Some(seq);
                }
                Err(e) => {
                    self.warn(format!("cannot start the sealing thread: {e}"));
                    return;
                }
            }
            if wait != Wait::All {
                return;
            }
        }
    }

    /// Commits, seals everything and releases the lock. A segment whose seal fails stays an
    /// active database (counted in `unsealed`; the next writer seals it).
    pub fn close(mut self) -> Result<WriterSummary> {
        self.seal_active()?;
        self.retry_at = None;
        self.pump(Wait::All);
        self.summary.unsealed = self.pending.len() as u64;
        if let Some(l) = self.dropped.take() {
            self.warn(format!(
                "{} events and records could not be stored: the disk stayed full",
                l.count
            ));
        }
        Ok(std::mem::take(&mut self.summary))
    }

    pub fn summary(&self) -> &WriterSummary {
        &self.summary
    }
}

impl Drop for Writer {
    /// A writer dropped without `close` (an error path) still finishes the seal it started; its
    /// other segments stay on disk and the next writer recovers them.
    fn drop(&mut self) {
        if let Some(h) = self.sealing.take() {
            let _ = h.join();
        }
    }
}

fn remove_active_files(dir: &StoreDir, name: &str) -> Result<()> {
    for c in COMPANIONS {
        let n = format!("{name}{c}");
        dir.remove(&n).map_err(io_err(dir.join(&n)))?;
    }
    dir.remove(name).map_err(io_err(dir.join(name)))
}

/// Seals one segment: reads its database through the writer's own connection (a backup into
/// memory: no journal-mode switch, so no reader can make it fail), hashes it, extends the chain,
/// writes the sealed file without replacing anything, then removes the active files. On failure
/// the job comes back for a retry.
fn seal(mut job: SealJob, dir: &StoreDir, prev: &str, key: Option<&[u8]>) -> SealResult {
    let path = dir.join(&job.name);
    let mut run = || -> Result<(u64, String, Option<String>)> {
        // Read through the pager in one read transaction: the committed pages, WAL included
        // (a copy of the file through an in-memory backup cost a quarter of sealing).
        let data = job
            .conn
            .serialize(MAIN_DB)
            .map_err(sql_err(&path, "serialize"))?;
        // An image of a WAL database says so in its header; a sealed one is read in rollback
        // mode (and sqlite3_deserialize requires it), so the header is written as such.
        let split = data.len().min(100);
        let mut header = data[..split].to_vec();
        super::segment::force_rollback_mode(&mut header);
        let parts = [&header[..], &data[split..]];
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        let mut meta = job.meta.clone();
        meta.db_bytes = data.len() as u64;
        meta.db_sha256 = Some(hex(&h.finalize()));
        meta.prev = Some(prev.to_owned());
        let link = link_of(&meta);
        meta.sig = key.map(|k| sign_link(k, &link));
        meta.link = Some(link.clone());
        let name = sealed_name(meta.seq);
        let mut moved = None;
        let sealed = match frame::write_sealed(dir, &name, &meta, &parts) {
            Err(StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                // Only this writer seals this number: whatever holds the name was planted (or
                // is a copy). It moves aside, never over the segment, and the seal goes on.
                let to = dir.quarantine(&name).map_err(io_err(dir.join(&name)))?;
                moved = Some(format!(
                    "{}: a file was in the way of sealing this segment; moved aside as {to}",
                    dir.join(&name).display()
                ));
                frame::write_sealed(dir, &name, &meta, &parts)?
            }
            other => other?,
        };
        let bytes = dir.kind(&name).ok().flatten().map_or(0, |k| k.1);
        drop(sealed);
        Ok((bytes, link, moved))
    };
    match run() {
        Ok(r) => {
            let SealJob { conn, name, .. } = job;
            // The sealed file is durable: the active files are now redundant. A failure to
            // remove them is harmless (the next writer removes leftovers of sealed segments).
            let _ = conn.close();
            let _ = remove_active_files(dir, &name);
            let _ = dir.sync();
            (None, Ok(r))
        }
        Err(e) => (Some(job), Err(e)),
    }
}

impl Active {
    fn is_clean(&self) -> bool {
        self.rows.is_empty()
            && self.losses.is_empty()
            && self.new_strings.is_empty()
            && self.new_shapes.is_empty()
            && self.new_procs.is_empty()
            && self.new_processes.is_empty()
            && self.new_users.is_empty()
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
        let (exe, argv, cgroup, container_id, tty, root) = (
            opt(&p.exe),
            opt(&p.argv),
            opt(&p.cgroup),
            opt(&p.container_id),
            opt(&p.tty),
            opt(&p.root),
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
            root,
            p: p.clone(),
        });
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

    /// Writes everything buffered in one transaction; returns the events stored. On failure
    /// nothing of it is forgotten (the caller decides what to drop).
    fn flush(&mut self) -> Result<u64> {
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
        let tx = self.conn.transaction().map_err(sql_err(&path, "BEGIN"))?;
        {
            const S: &str = "INSERT INTO strings (id, value) VALUES (?1, ?2)";
            let mut st = tx.prepare_cached(S).map_err(sql_err(&path, S))?;
            for (id, v) in &self.new_strings {
                st.execute(params![id, &v[..]]).map_err(sql_err(&path, S))?;
            }
            const PR: &str = "INSERT INTO processes (id, pid, start_ns, exec_ns, parent, ppid, \
                source, comm, exe, argv, args_truncated, uid, gid, euid, egid, auid, sessionid, \
                cgroup_id, cgroup, container_id, pidns, mntns, tty, root) VALUES (?1, ?2, ?3, ?4, \
                ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, \
                ?23, ?24)";
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
                    n.root
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
            const P: &str =
                "INSERT INTO procs (id, pid, tid, ppid, uid, gid, comm, euid, egid, process) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
            let mut st = tx.prepare_cached(P).map_err(sql_err(&path, P))?;
            for (id, k) in &self.new_procs {
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
            for (id, k) in &self.new_shapes {
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
                    b.cols[5]
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
        write_meta_table(&tx, &path, &meta)?;
        tx.commit().map_err(sql_err(&path, "COMMIT"))?;
        let stored = self.rows.len() as u64;
        self.meta = meta;
        self.new_strings.clear();
        self.new_processes.clear();
        self.exits.clear();
        self.new_users.clear();
        self.new_procs.clear();
        self.new_shapes.clear();
        self.rows.clear();
        self.late = 0;
        self.losses.clear();
        Ok(stored)
    }
}
