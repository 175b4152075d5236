//! The one writer of a store: interning and batched transactions (`buffer`), rotation, sealing
//! (in order, on a background thread, extending the hash chain: `sealer`) and recovery
//! (`recovery`).
//!
//! What it never does: follow a link in the store, replace a file, or stop recording because the
//! disk is full. While the disk is full events are counted, not stored, and the gap is named in
//! loss records of a segment of its own (`gaps`), written with room a recording keeps back from
//! its start (`reserve`); a seal that fails leaves its (complete, committed) active database in
//! place and is retried.

mod buffer;
mod digest;
mod gaps;
mod recovery;
mod reserve;
mod sealer;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::dir::StoreDir;
use super::lock::StoreLock;
use super::schema::{apply_migrations, user_version};
use super::segment::{active_name, write_meta_table, Loss, SegmentMeta, Uncaptured, COMPANIONS};
use super::{io_err, sql_err, Result, StoreError};
use crate::event::Event;
use crate::process::Process;
use buffer::Active;
use digest::Witness;
pub use gaps::{DISK_FULL, OUTAGE};
use reserve::Reserve;
pub use sealer::MAX_SEALS_WAITING;
use sealer::{SealJob, SealResult, Wait};

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
    /// Events and records lost whose loss record could not be written either: the disk stayed
    /// full even after the reserve was given back.
    pub unstored: u64,
    /// Wall time of the seals, and of building the segments' summaries within them; and of
    /// building the blocks' summaries at commit. What summaries cost the writer, measured where
    /// it is spent (`benches/skipping.rs` reports it).
    pub seal_time: Duration,
    pub seal_summary_time: Duration,
    pub block_summary_time: Duration,
}

pub struct Writer {
    dir: Arc<StoreDir>,
    config: RotateConfig,
    _lock: StoreLock,
    next_seq: u64,
    clock_anchor_ns: i64,
    /// See [`Writer::set_uncaptured`].
    uncaptured: Vec<Uncaptured>,
    /// A recording's id, in every segment it creates ([`SegmentMeta::recording`]); `None` for
    /// imports, which had no live run to be faithful to.
    recording: Option<String>,
    active: Option<Active>,
    /// What was committed to the active segment, checked at its seal (`digest`).
    witness: Option<Arc<Witness>>,
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
    /// Loss records waiting for a gap segment (the disk is full, or an outage to name).
    parked: Vec<Loss>,
    /// The space a recording keeps back for naming a full disk and sealing (`None` for imports).
    reserve: Option<Reserve>,
    /// The disk is full: events are counted, not stored (see `gaps`).
    full: bool,
    /// Whether this episode of a full disk is named in a gap segment yet.
    gap_named: bool,
    /// The newest event a live recording committed before this writer opened the store: where
    /// an outage starts (see [`Writer::record_outage`]).
    last_recorded_ns: Option<i64>,
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
            uncaptured: Vec::new(),
            recording: None,
            active: None,
            witness: None,
            pending: VecDeque::new(),
            sealing: None,
            sealing_seq: None,
            retry_at: None,
            sign_key: None,
            dropped: None,
            parked: Vec::new(),
            reserve: None,
            full: false,
            gap_named: false,
            last_recorded_ns: None,
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

    /// The key links (and prune records) are signed with.
    pub(super) fn sign_key(&self) -> Option<&[u8]> {
        self.sign_key.as_deref().map(|k| &k[..])
    }

    /// Signs each new chain link with HMAC-SHA-256 under `key`.
    pub fn set_sign_key(&mut self, key: Vec<u8>) {
        self.sign_key = Some(Arc::new(key));
    }

    /// Marks the segments from now on as one live recording's, under a fresh random id: replay
    /// throttles each recording apart, as each recorder did. Takes the reserve (see `reserve`).
    pub fn start_recording(&mut self) {
        self.recording = Some(recording_id());
        self.take_reserve();
    }

    /// Wall-clock minus boot-clock ns, stored in each new segment so that kernel times can be
    /// re-derived.
    pub fn set_clock_anchor(&mut self, anchor_ns: i64) {
        self.clock_anchor_ns = anchor_ns;
    }

    /// What capture could not see on this kernel: stored in every segment from the next one on
    /// (call it before the first event), so every query over this recording reports the gap.
    pub fn set_uncaptured(&mut self, gaps: Vec<Uncaptured>) {
        self.uncaptured = gaps;
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
        // across a crash of this process. WAL writes every page a commit touches whole, so small
        // pages write less per commit, for the same sealed size and scan speed (measured with
        // `benches/recorder_cpu.sh` and `cargo bench --bench store`: docs/benchmarks.md).
        let pragmas =
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";
        conn.execute_batch(pragmas)
            .map_err(sql_err(&path, pragmas))?;
        apply_migrations(&mut conn, &path)?;
        self.witness = Some(Witness::watch(&mut conn, &path)?);
        let meta = SegmentMeta {
            seq,
            schema_version: user_version(&conn, &path)?,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            host: read_proc("/proc/sys/kernel/hostname"),
            kernel: read_proc("/proc/sys/kernel/osrelease"),
            boot_id: read_proc("/proc/sys/kernel/random/boot_id"),
            clock_anchor_ns: self.clock_anchor_ns,
            recording: self.recording.clone(),
            uncaptured: self.uncaptured.clone(),
            ..SegmentMeta::default()
        };
        write_meta_table(&conn, &path, &meta, None)?;
        let mut a = Active::new(name, path, conn, meta);
        // Only a gap segment starts while losses wait (see `gaps`).
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
                    self.unstart_segment();
                    self.enter_full();
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
            reason: DISK_FULL.into(),
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
        if self.full {
            self.drop_for_disk_full(1, ev.ts_ns, ev.ts_ns);
            return Ok(());
        }
        if self.active.as_ref().is_some_and(|a| self.should_rotate(a)) {
            self.seal_active()?;
        }
        let batch = self.config.batch_events;
        let Some(a) = self.active_segment()? else {
            self.drop_for_disk_full(1, ev.ts_ns, ev.ts_ns);
            return Ok(());
        };
        a.push_event(ev);
        if a.rows.len() >= batch {
            self.commit()?;
        }
        Ok(())
    }

    /// Stores a process image (and its ancestors) in the active segment, whether or not any event
    /// refers to it yet: every process that ran while recording is kept.
    pub fn add_process(&mut self, p: &Arc<Process>) -> Result<()> {
        if self.full {
            // When it was dropped: its start may be long before.
            let now = crate::timespec::now_ns();
            self.drop_for_disk_full(1, now, now);
            return Ok(());
        }
        match self.active_segment()? {
            Some(a) => {
                a.intern_process(p, 0);
            }
            None => {
                let now = crate::timespec::now_ns();
                self.drop_for_disk_full(1, now, now)
            }
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
        if self.full {
            self.drop_for_disk_full(1, ts_ns, ts_ns);
            return Ok(());
        }
        match self.active_segment()? {
            Some(a) => {
                a.push_exit(p, status, ts_ns);
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
        if self.full {
            self.parked.push(loss);
            return Ok(());
        }
        match self.active_segment()? {
            Some(a) => a.losses.push(loss),
            // Written once a segment can be.
            None => self.parked.push(loss),
        }
        Ok(())
    }

    /// Writes everything buffered in one transaction. When the disk is full the buffered events
    /// are dropped and counted (`disk_full`), and the writer stops trying until space returns
    /// (see `gaps`); what they referenced stays buffered.
    pub fn commit(&mut self) -> Result<()> {
        let Some(a) = self.active.as_mut().filter(|_| !self.full) else {
            return Ok(());
        };
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
                self.enter_full();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Commits, rotates if the active segment is past its age, and moves sealing along. Call it
    /// periodically while idle.
    pub fn tick(&mut self) -> Result<()> {
        if self.full {
            self.tick_full()?;
        } else {
            self.commit()?;
            if self.active.as_ref().is_some_and(|a| self.should_rotate(a)) {
                self.seal_active()?;
            }
        }
        self.pump(Wait::No);
        Ok(())
    }

    fn should_rotate(&self, a: &Active) -> bool {
        let c = &self.config;
        // A recording's segments stay small enough to seal into its reserve.
        let max_bytes = || {
            self.reserve
                .as_ref()
                .map_or(c.max_bytes, |r| c.max_bytes.min(r.seal_limit()))
        };
        // The database only grows at a commit, which leaves `rows` empty: ask SQLite for its size
        // then, once per batch, not on every append.
        // The clock once per 256 appends (and at every commit), not on every one.
        a.meta.events + a.rows.len() as u64 >= c.max_events
            || (a.rows.len() % 256 == 0 && a.opened.elapsed() >= c.max_age)
            || (a.rows.is_empty() && a.db_bytes() >= max_bytes())
    }

    /// Commits the active segment and queues it for sealing.
    pub fn seal_active(&mut self) -> Result<()> {
        self.commit()?;
        if let Some(mut a) = self.active.take() {
            if !a.is_clean() {
                // The disk is full: loss records wait for a gap segment; processes and exits not
                // yet written are counted as lost.
                self.parked.append(&mut a.losses);
                let n = a.unwritten_processes_and_exits();
                let now = crate::timespec::now_ns();
                self.drop_for_disk_full(n, now, now);
            }
            if a.commits == 0 {
                // Nothing was ever committed to it: nothing to seal.
                self.active = Some(a);
                self.unstart_segment();
                return Ok(());
            }
            self.summary.block_summary_time += a.summary_time;
            self.pending.push_back(SealJob {
                conn: a.conn,
                name: a.name,
                meta: a.meta,
                committed: Some(a.committed),
                witness: self.witness.take(),
            });
        }
        self.pump(Wait::No);
        // Each waiting segment holds an open database: when rotation outpaces sealing, wait for
        // seals (the store thread lags, and records wait in the kernel ring) rather than let
        // them pile up. A failing seal (disk full) is retried later, not waited for.
        while self.pending.len() > MAX_SEALS_WAITING && self.retry_at.is_none() && !self.full {
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

    /// Commits, seals everything and releases the lock. After a full disk the reserve is given
    /// back first, so that the gap is named and the seals fit. A segment whose seal fails stays
    /// an active database (counted in `unsealed`; the next writer seals it).
    pub fn close(mut self) -> Result<WriterSummary> {
        self.finish_gaps()?;
        self.seal_active()?;
        self.retry_at = None;
        self.pump(Wait::All);
        self.release_reserve();
        self.summary.unsealed = self.pending.len() as u64;
        self.summary.unstored = self.parked.iter().map(|l| l.count).sum::<u64>()
            + self.dropped.as_ref().map_or(0, |l| l.count);
        if self.summary.unstored > 0 {
            self.warn(format!(
                "{} events and records were lost and their loss records could not be stored either: the disk stayed full",
                self.summary.unstored
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
