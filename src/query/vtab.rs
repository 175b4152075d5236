//! `events` and `processes` as SQLite virtual tables over the store (see the module documentation
//! of `query`): their cursors decode segment by segment, block by block, through the segment
//! reader, so that SQLite aggregates a stream instead of a copy of the range.
//!
//! `events` accepts constraints on `ts_ns` (`=`, `<`, `<=`, `>`, `>=`): they narrow the window the
//! cursor reads, on top of `--since`/`--until`, down to whole segments (by their metadata) and whole
//! blocks (by their time range). The constraints are not "omitted": SQLite checks every row again,
//! so a pushed-down bound only ever narrows what is read, never what is answered.
//!
//! `processes` is read once per query, on first use, and deduplicated by `image` across segments
//! (an image recorded in several segments is one row, its exit taken from whichever saw it); only
//! processes alive in the query's range are rows; it is
//! held in memory, one row per process image in the range, and answers `image = ?` by hash.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::{c_int, CStr, CString};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use rusqlite::types::Value;
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConnection, VTabCursor,
};
use rusqlite::{ffi, Connection};

use crate::bytes::Str;
use crate::columns::{Column, Type};
use crate::errno;
use crate::event::Event;
use crate::process::Process;
use crate::rules::access_names;
use crate::store::{Reader, ScanStats, SegmentData, StoreError, TimeRange};
use crate::timespec::format_ts;

/// What every cursor of one query shares: the store, the range, and what the reading saw.
pub(crate) struct Shared {
    pub reader: Reader,
    pub range: TimeRange,
    /// Segments read, events decoded, and the segments that could not be read (once each).
    pub stats: Mutex<ScanStats>,
    pub progress: Box<dyn Fn() + Send + Sync>,
    processes: Mutex<Option<Arc<ProcessRows>>>,
}

impl Shared {
    pub fn new(reader: Reader, range: TimeRange, progress: Box<dyn Fn() + Send + Sync>) -> Self {
        Shared {
            reader,
            range,
            stats: Mutex::new(ScanStats::default()),
            progress,
            processes: Mutex::new(None),
        }
    }

    fn error(&self, e: StoreError) {
        let mut st = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let text = e.to_string();
        if !st.errors.iter().any(|x| x.to_string() == text) {
            st.errors.push(e);
        }
    }

    /// The segments of `window`, loaded one at a time; unreadable ones are recorded and skipped.
    fn load(&self, index: usize) -> Option<SegmentData> {
        let info = &self.reader.segments()[index];
        match self.reader.load(info) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(e);
                None
            }
        }
    }

    fn segments_in(&self, window: &TimeRange) -> Vec<usize> {
        self.reader
            .segments()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.meta.overlaps(window))
            .map(|(i, _)| i)
            .collect()
    }
}

/// Registers `events` and `processes` on `conn`.
pub(crate) fn register(conn: &Connection, shared: Arc<Shared>) -> rusqlite::Result<()> {
    const EVENTS: Module<Tab<EventsTable>> = Module::eponymous_only_module();
    const PROCESSES: Module<Tab<ProcessesTable>> = Module::eponymous_only_module();
    conn.create_module(c"events", &EVENTS, Some(shared.clone()))?;
    conn.create_module(c"processes", &PROCESSES, Some(shared))
}

/// What tells one virtual table from the other; the rest is one definition ([`Tab`]).
trait Table: Sized + 'static {
    const NAME: &'static str;
    /// The columns, in order (documented in the module documentation of `query`).
    const COLUMNS: &'static [Column];
    type Cursor: VTabCursor;
    fn best_index(shared: &Shared, info: &mut IndexInfo) -> rusqlite::Result<bool>;
    fn open(shared: &Arc<Shared>) -> Self::Cursor;

    /// The column SQLite means by index `i` (a negative one is the rowid).
    fn column(i: c_int) -> Option<Column> {
        usize::try_from(i)
            .ok()
            .and_then(|n| Self::COLUMNS.get(n))
            .copied()
    }
}

/// The SQL type a column is declared with.
fn sql_type(ty: Type) -> &'static str {
    match ty {
        Type::Int | Type::Int32 | Type::Bool => "INTEGER",
        Type::Text | Type::Bytes | Type::Time | Type::Args | Type::Ancestors => "TEXT",
    }
}

/// The `CREATE TABLE` statement SQLite learns a table's columns from.
fn declaration(columns: &[Column]) -> rusqlite::Result<CString> {
    let cols: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", c.name(), sql_type(c.ty())))
        .collect();
    CString::new(format!("CREATE TABLE x({})", cols.join(", ")))
        .map_err(|e| rusqlite::Error::ModuleError(e.to_string()))
}

#[repr(C)]
struct Tab<T> {
    base: ffi::sqlite3_vtab,
    shared: Arc<Shared>,
    _table: PhantomData<T>,
}

// SAFETY: `base` is the first field (repr(C)), as SQLite's vtab "subclassing" requires.
unsafe impl<T: Table> VTab<'_> for Tab<T> {
    type Aux = Arc<Shared>;
    type Cursor = T::Cursor;

    fn connect(
        _: &mut VTabConnection,
        aux: Option<&Arc<Shared>>,
        _: &[u8],
        _: &[u8],
        _: &[u8],
        _: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        let shared = aux
            .cloned()
            .ok_or_else(|| rusqlite::Error::ModuleError(format!("{}: no store", T::NAME)))?;
        Ok((
            Cow::Owned(declaration(T::COLUMNS)?),
            Tab {
                base: ffi::sqlite3_vtab::default(),
                shared,
                _table: PhantomData,
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        T::best_index(&self.shared, info)
    }

    fn open(&mut self) -> rusqlite::Result<T::Cursor> {
        Ok(T::open(&self.shared))
    }
}

struct EventsTable;

impl Table for EventsTable {
    const NAME: &'static str = "events";
    const COLUMNS: &'static [Column] = &[
        Column::Seq,
        Column::Ts,
        Column::TsNs,
        Column::Pid,
        Column::Tid,
        Column::Ppid,
        Column::Uid,
        Column::Gid,
        Column::Comm,
        Column::Syscall,
        Column::Op,
        Column::Path,
        Column::OldPath,
        Column::RawPath,
        Column::PathSource,
        Column::PathTruncated,
        Column::Dirfd,
        Column::Flags,
        Column::Mode,
        Column::Ret,
        Column::Errno,
        Column::Result,
        Column::Access,
        Column::NewUid,
        Column::NewGid,
        Column::Length,
        Column::Image,
        Column::ProcStartNs,
        Column::Exe,
        Column::Cmdline,
        Column::ParentExe,
        Column::ContainerId,
        Column::User,
        Column::Euid,
        Column::Egid,
        Column::Auid,
        Column::Root,
        Column::File,
        Column::AliasOf,
        Column::Mntns,
        Column::ExeId,
        Column::ExeVerified,
    ];
    type Cursor = EventsCursor;

    fn best_index(shared: &Shared, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        // idx_str: one letter per argument, the operator of a ts_ns bound.
        let mut ops = String::new();
        let mut used = Vec::new();
        for (i, c) in info.constraints().enumerate() {
            if Self::column(c.column()) != Some(Column::TsNs) || !c.is_usable() {
                continue;
            }
            let op = match c.operator() {
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ => 'e',
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_GT => 'g',
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_GE => 'G',
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LT => 'l',
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LE => 'L',
                _ => continue,
            };
            ops.push(op);
            used.push(i);
        }
        for (n, i) in used.iter().enumerate() {
            let mut u = info.constraint_usage(*i);
            u.set_argv_index(n as c_int + 1);
            // SQLite checks each row again: a bound narrows the reading, never the answer.
            u.set_omit(false);
        }
        let rows = shared
            .reader
            .segments()
            .iter()
            .map(|s| s.meta.events)
            .sum::<u64>();
        let rows = rows.max(1) as f64;
        // A bounded window reads a fraction of the store; the planner should prefer it.
        let cost = if used.is_empty() { rows } else { rows / 100.0 };
        info.set_estimated_cost(cost);
        info.set_estimated_rows(cost as i64);
        info.set_idx_str(&ops);
        Ok(true)
    }

    fn open(shared: &Arc<Shared>) -> EventsCursor {
        EventsCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            shared: shared.clone(),
            window: TimeRange::default(),
            segments: Vec::new(),
            next_segment: 0,
            segment: None,
            blocks: Vec::new(),
            next_block: 0,
            buf: Vec::new(),
            pos: 0,
            seen: 0,
        }
    }
}

/// The window `filter` reads: the query's range narrowed by the ts_ns bounds SQLite passed.
/// Only integer and real bounds narrow it (a text bound compares as text: no pruning).
fn narrow(range: TimeRange, ops: &str, args: &Filters<'_>) -> rusqlite::Result<TimeRange> {
    let mut w = range;
    let lower = |w: &mut TimeRange, v: i64| w.since = Some(w.since.map_or(v, |s| s.max(v)));
    let upper = |w: &mut TimeRange, v: i64| w.until = Some(w.until.map_or(v, |u| u.min(v)));
    for (i, op) in ops.chars().enumerate() {
        let (lo, hi) = match args.get::<Value>(i)? {
            Value::Integer(v) => (v, v),
            // A real bound, widened to the integers around it (only ever reads more).
            Value::Real(r) if r.is_finite() => (r.floor() as i64, r.ceil() as i64),
            _ => continue,
        };
        match op {
            'e' => {
                lower(&mut w, lo);
                upper(&mut w, hi);
            }
            'g' => lower(&mut w, lo.saturating_add((lo == hi) as i64)),
            'G' => lower(&mut w, lo),
            'l' => upper(&mut w, hi.saturating_sub((lo == hi) as i64)),
            'L' => upper(&mut w, hi),
            _ => {}
        }
    }
    Ok(w)
}

/// One block's worth of decoded events (what a cursor holds: never more than a block).
#[repr(C)]
struct EventsCursor {
    base: ffi::sqlite3_vtab_cursor,
    shared: Arc<Shared>,
    window: TimeRange,
    /// Indices into the reader's segments still to read, and the one being read.
    segments: Vec<usize>,
    next_segment: usize,
    segment: Option<(u64, SegmentData)>,
    /// The segment's blocks in the window: (id, index of its first event in the segment).
    blocks: Vec<(i64, u64)>,
    next_block: usize,
    /// (seq, event) of the current block, in the window.
    buf: Vec<(i64, Event)>,
    pos: usize,
    seen: u64,
}

impl EventsCursor {
    /// Moves to the next event, reading further blocks and segments as needed.
    fn advance(&mut self) {
        self.pos += 1;
        while self.pos >= self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if !self.fill_block() {
                return;
            }
        }
    }

    /// Decodes the next block of the window into `buf`; false at the end.
    fn fill_block(&mut self) -> bool {
        loop {
            if let Some((seq, seg)) = &self.segment {
                if let Some(&(id, first)) = self.blocks.get(self.next_block) {
                    self.next_block += 1;
                    let (window, buf) = (&self.window, &mut self.buf);
                    let mut n = first;
                    let mut scanned = 0u64;
                    let r = seg.for_each_event_in_block(id, |ev| {
                        n += 1;
                        scanned += 1;
                        if window.contains(ev.ts_ns) {
                            buf.push(((*seq << 32 | n) as i64, ev.clone()));
                        }
                        std::ops::ControlFlow::Continue(())
                    });
                    {
                        let mut st = self.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
                        st.events_scanned += scanned;
                        st.events_in_range += buf.len() as u64;
                    }
                    match r {
                        Ok(_) => {
                            if !self.buf.is_empty() {
                                return true;
                            }
                        }
                        Err(e) => {
                            // As a scan does: the rest of a corrupt segment is skipped, named.
                            self.shared.error(e);
                            self.buf.clear();
                            self.segment = None;
                        }
                    }
                    continue;
                }
                self.segment = None;
            }
            let Some(&index) = self.segments.get(self.next_segment) else {
                return false;
            };
            self.next_segment += 1;
            let Some(seg) = self.shared.load(index) else {
                continue;
            };
            match block_spans(&seg, &self.window) {
                Ok(blocks) => {
                    self.shared
                        .stats
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .segments += 1;
                    self.blocks = blocks;
                    self.next_block = 0;
                    // Segment sequence numbers are far below 2^31: seq stays positive.
                    self.segment = Some((seg.meta.seq & 0x7fff_ffff, seg));
                }
                Err(e) => self.shared.error(e),
            }
        }
    }
}

/// The blocks of `seg` in `window` with the index of each one's first event in the segment (so
/// that `seq` is the same whatever the window).
fn block_spans(seg: &SegmentData, window: &TimeRange) -> crate::store::Result<Vec<(i64, u64)>> {
    let wanted = seg.blocks_in(window)?;
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let all = seg.block_counts()?;
    let mut first = 0u64;
    let mut spans = Vec::with_capacity(wanted.len());
    let mut w = wanted.iter().peekable();
    for (id, count) in all {
        if w.peek() == Some(&&id) {
            spans.push((id, first));
            w.next();
        }
        first += count.max(0) as u64;
    }
    Ok(spans)
}

// SAFETY: `base` is the first field (repr(C)).
unsafe impl VTabCursor for EventsCursor {
    fn filter(
        &mut self,
        _idx_num: c_int,
        idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        self.window = narrow(self.shared.range, idx_str.unwrap_or(""), args)?;
        self.segments = self.shared.segments_in(&self.window);
        self.next_segment = 0;
        self.segment = None;
        self.blocks.clear();
        self.next_block = 0;
        self.buf.clear();
        self.pos = 0;
        if self
            .window
            .since
            .zip(self.window.until)
            .is_some_and(|(s, u)| s > u)
        {
            self.segments.clear();
        }
        if self.fill_block() {
            self.tick();
        }
        Ok(())
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.advance();
        if self.pos < self.buf.len() {
            self.tick();
        }
        Ok(())
    }

    fn eof(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let (seq, e) = &self.buf[self.pos];
        let p = e.process.as_deref();
        match EventsTable::column(i) {
            Some(Column::Seq) => ctx.set_result(seq),
            Some(Column::Ts) => ctx.set_result(format_ts(e.ts_ns)),
            Some(Column::TsNs) => ctx.set_result(e.ts_ns),
            Some(Column::Pid) => ctx.set_result(e.pid),
            Some(Column::Tid) => ctx.set_result(e.tid),
            Some(Column::Ppid) => ctx.set_result(e.ppid),
            Some(Column::Uid) => ctx.set_result(e.uid),
            Some(Column::Gid) => ctx.set_result(e.gid),
            // Valid UTF-8 (nearly every path) is passed without a copy of our own.
            Some(Column::Comm) => ctx.set_result(e.comm.lossy()),
            Some(Column::Syscall) => ctx.set_result(e.syscall.as_str()),
            Some(Column::Op) => ctx.set_result(e.op.as_str()),
            Some(Column::Path) => ctx.set_result(e.path.lossy()),
            Some(Column::OldPath) => ctx.set_result(e.old_path.as_ref().map(Str::lossy)),
            Some(Column::RawPath) => ctx.set_result(e.raw_path.lossy()),
            Some(Column::PathSource) => ctx.set_result(e.path_source.as_str()),
            Some(Column::PathTruncated) => ctx.set_result(e.path_truncated),
            Some(Column::Dirfd) => ctx.set_result(e.dirfd),
            // Flags are at most 32 bits wide in the kernel; SQLite integers are signed 64.
            Some(Column::Flags) => ctx.set_result(e.flags as i64),
            Some(Column::Mode) => ctx.set_result(e.mode),
            Some(Column::Ret) => ctx.set_result(e.ret),
            Some(Column::Errno) => ctx.set_result(errno::name_of_ret(e.ret)),
            Some(Column::Result) => ctx.set_result(result_of(e.ret)),
            Some(Column::Access) => ctx.set_result(access_names(e)),
            Some(Column::NewUid) => ctx.set_result(e.new_uid),
            Some(Column::NewGid) => ctx.set_result(e.new_gid),
            Some(Column::Length) => ctx.set_result(e.length),
            Some(Column::Image) => ctx.set_result(p.map(Process::image_key)),
            Some(Column::ProcStartNs) => ctx.set_result(p.map(|p| p.start_ns)),
            Some(Column::Exe) => ctx.set_result(p.and_then(|p| p.exe.as_ref()).map(Str::lossy)),
            Some(Column::Cmdline) => {
                ctx.set_result(p.map(|p| String::from_utf8_lossy(&p.cmdline()).into_owned()))
            }
            Some(Column::ParentExe) => ctx.set_result(
                p.and_then(|p| p.parent.as_ref()?.exe.as_ref())
                    .map(Str::lossy),
            ),
            Some(Column::ContainerId) => {
                ctx.set_result(p.and_then(|p| p.container_id.as_ref()).map(Str::lossy))
            }
            Some(Column::User) => ctx.set_result(e.user.as_ref().map(Str::lossy)),
            Some(Column::Euid) => ctx.set_result(e.euid),
            Some(Column::Egid) => ctx.set_result(e.egid),
            Some(Column::Auid) => ctx.set_result(p.and_then(|p| p.auid)),
            Some(Column::Root) => ctx.set_result(e.root.as_ref().map(Str::lossy)),
            Some(Column::File) => ctx.set_result(e.file.map(|f| f.to_string())),
            Some(Column::AliasOf) => ctx.set_result(e.alias_of.as_ref().map(Str::lossy)),
            Some(Column::Mntns) => ctx.set_result(p.and_then(|p| p.mntns)),
            Some(Column::ExeId) => ctx.set_result(p.and_then(|p| p.exe_id).map(|f| f.to_string())),
            Some(Column::ExeVerified) => ctx.set_result(p.and_then(|p| p.exe_verified)),
            _ => ctx.set_result(None::<i64>),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.buf.get(self.pos).map_or(0, |(s, _)| *s))
    }
}

impl EventsCursor {
    fn tick(&mut self) {
        self.seen += 1;
        if self.seen % super::PROGRESS_EVERY == 0 {
            (self.shared.progress)();
        }
    }
}

/// `success`, the errno name, or `errno N`.
fn result_of(ret: i64) -> String {
    match (ret >= 0, errno::name_of_ret(ret)) {
        (true, _) => "success".to_owned(),
        (false, Some(n)) => n.to_owned(),
        (false, None) => format!("errno {}", ret.unsigned_abs()),
    }
}

struct ProcessesTable;

/// exit_code, exit_signal, exit: filled from whichever segment saw the exit.
const EXIT_COLUMNS: [Column; 3] = [Column::ExitCode, Column::ExitSignal, Column::Exit];

/// The process images of the range, in first-seen order, with an index by image.
struct ProcessRows {
    rows: Vec<Vec<Value>>,
    by_image: HashMap<String, usize>,
}

fn load_processes(shared: &Shared) -> ProcessRows {
    let mut out = ProcessRows {
        rows: Vec::new(),
        by_image: HashMap::new(),
    };
    // Each row's start and exit (if seen): whether it was alive in the range.
    let mut lives: Vec<(String, i64, Option<i64>)> = Vec::new();
    for index in shared.segments_in(&shared.range) {
        let Some(seg) = shared.load(index) else {
            continue;
        };
        let loaded = seg.processes().and_then(|ps| Ok((ps, seg.users()?)));
        let (procs, users) = match loaded {
            Ok(x) => x,
            Err(e) => {
                shared.error(e);
                continue;
            }
        };
        for sp in procs {
            let row = process_row(&sp, &users);
            let image = sp.process.image_key();
            let exit = sp.exit.map(|(_, ts)| ts);
            match out.by_image.get(&image) {
                Some(&i) => {
                    lives[i].2 = lives[i].2.or(exit);
                    let old = &mut out.rows[i];
                    for (n, c) in ProcessesTable::COLUMNS.iter().enumerate() {
                        if EXIT_COLUMNS.contains(c) && old[n] == Value::Null {
                            old[n] = row[n].clone();
                        }
                    }
                }
                None => {
                    lives.push((image.clone(), sp.process.start_ns, exit));
                    out.by_image.insert(image, out.rows.len());
                    out.rows.push(row);
                }
            }
        }
    }
    alive_in(out, lives, &shared.range)
}

/// The rows of processes alive in `range`: started by its end and not exited before its start
/// (a segment of the range also holds processes that ended earlier in it, or long before, as
/// ancestors). A process with no exit seen may still run.
fn alive_in(
    all: ProcessRows,
    lives: Vec<(String, i64, Option<i64>)>,
    range: &TimeRange,
) -> ProcessRows {
    let mut out = ProcessRows {
        rows: Vec::new(),
        by_image: HashMap::new(),
    };
    for (row, (image, start, exit)) in all.rows.into_iter().zip(lives) {
        if range.overlaps(start, exit.unwrap_or(i64::MAX)) {
            out.by_image.insert(image, out.rows.len());
            out.rows.push(row);
        }
    }
    out
}

/// One row of `processes` (see the module documentation of `query`).
fn process_row(sp: &crate::store::StoredProcess, users: &HashMap<u32, Str>) -> Vec<Value> {
    let p = &sp.process;
    let text = |s: String| Value::Text(s);
    let opt_text = |s: Option<String>| s.map_or(Value::Null, Value::Text);
    let lossy = |s: &Option<Str>| s.as_ref().map(|s| s.lossy().into_owned());
    let int = |v: i64| Value::Integer(v);
    let opt_int = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    let args: Vec<String> = p
        .args()
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let parent = p.parent.as_deref();
    let value = |c: &Column| match c {
        Column::Image => text(p.image_key()),
        Column::Pid => int(p.pid.into()),
        Column::Start => text(format_ts(p.start_ns)),
        Column::StartNs => int(p.start_ns),
        Column::Exec => opt_text(p.exec_ns.map(format_ts)),
        Column::Ppid => int(p.ppid.into()),
        Column::ParentImage => opt_text(parent.map(Process::image_key)),
        Column::ParentExe => opt_text(parent.and_then(|q| lossy(&q.exe))),
        Column::ParentComm => opt_text(parent.map(|q| q.comm.lossy().into_owned())),
        Column::Comm => text(p.comm.lossy().into_owned()),
        Column::Exe => opt_text(lossy(&p.exe)),
        Column::Cmdline => opt_text(p.argv.as_ref().map(|_| args.join(" "))),
        Column::Argv => opt_text(
            p.argv
                .as_ref()
                .map(|_| serde_json::Value::from(args.clone()).to_string()),
        ),
        Column::Uid => int(p.uid.into()),
        Column::Gid => int(p.gid.into()),
        Column::Euid => int(p.euid.into()),
        Column::Egid => int(p.egid.into()),
        Column::Auid => opt_int(p.auid.map(i64::from)),
        Column::Sessionid => opt_int(p.sessionid.map(i64::from)),
        Column::User => opt_text(users.get(&p.uid).map(|u| u.lossy().into_owned())),
        Column::Cgroup => opt_text(lossy(&p.cgroup)),
        Column::ContainerId => opt_text(lossy(&p.container_id)),
        Column::Tty => opt_text(lossy(&p.tty)),
        Column::Pidns => opt_int(p.pidns.map(i64::from)),
        Column::Mntns => opt_int(p.mntns.map(i64::from)),
        Column::Source => text(p.source.as_str().to_owned()),
        Column::ExitCode => opt_int(sp.exit.map(|(status, _)| i64::from((status >> 8) & 0xff))),
        Column::ExitSignal => opt_int(sp.exit.map(|(status, _)| i64::from(status & 0x7f))),
        Column::Exit => opt_text(sp.exit.map(|(_, ts)| format_ts(ts))),
        Column::Root => opt_text(lossy(&p.root)),
        Column::ExeId => opt_text(p.exe_id.map(|f| f.to_string())),
        Column::ExeVerified => opt_int(p.exe_verified.map(i64::from)),
        _ => Value::Null,
    };
    ProcessesTable::COLUMNS.iter().map(value).collect()
}

impl Table for ProcessesTable {
    const NAME: &'static str = "processes";
    const COLUMNS: &'static [Column] = &[
        Column::Image,
        Column::Pid,
        Column::Start,
        Column::StartNs,
        Column::Exec,
        Column::Ppid,
        Column::ParentImage,
        Column::ParentExe,
        Column::ParentComm,
        Column::Comm,
        Column::Exe,
        Column::Cmdline,
        Column::Argv,
        Column::Uid,
        Column::Gid,
        Column::Euid,
        Column::Egid,
        Column::Auid,
        Column::Sessionid,
        Column::User,
        Column::Cgroup,
        Column::ContainerId,
        Column::Tty,
        Column::Pidns,
        Column::Mntns,
        Column::Source,
        Column::ExitCode,
        Column::ExitSignal,
        Column::Exit,
        Column::Root,
        Column::ExeId,
        Column::ExeVerified,
    ];
    type Cursor = ProcessesCursor;

    fn best_index(_: &Shared, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        let eq = info.constraints().enumerate().find(|(_, c)| {
            Self::column(c.column()) == Some(Column::Image)
                && c.is_usable()
                && c.operator() == IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ
        });
        match eq.map(|(i, _)| i) {
            Some(i) => {
                let mut u = info.constraint_usage(i);
                u.set_argv_index(1);
                u.set_omit(true);
                info.set_idx_num(1);
                info.set_estimated_cost(1.0);
                info.set_estimated_rows(1);
            }
            None => {
                info.set_idx_num(0);
                info.set_estimated_cost(100_000.0);
                info.set_estimated_rows(100_000);
            }
        }
        Ok(true)
    }

    fn open(shared: &Arc<Shared>) -> ProcessesCursor {
        let rows = {
            let mut cache = shared.processes.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get_or_insert_with(|| Arc::new(load_processes(shared)))
                .clone()
        };
        ProcessesCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            rows,
            only: None,
            pos: 0,
        }
    }
}

#[repr(C)]
struct ProcessesCursor {
    base: ffi::sqlite3_vtab_cursor,
    rows: Arc<ProcessRows>,
    /// `image = ?`: the one matching row, if any (then `pos` 0 is it, 1 the end).
    only: Option<Option<usize>>,
    pos: usize,
}

impl ProcessesCursor {
    fn current(&self) -> Option<&Vec<Value>> {
        match self.only {
            Some(only) => only.filter(|_| self.pos == 0).map(|i| &self.rows.rows[i]),
            None => self.rows.rows.get(self.pos),
        }
    }
}

// SAFETY: `base` is the first field (repr(C)).
unsafe impl VTabCursor for ProcessesCursor {
    fn filter(
        &mut self,
        idx_num: c_int,
        _idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        self.pos = 0;
        self.only = if idx_num == 1 {
            Some(match args.get::<Value>(0)? {
                Value::Text(s) => self.rows.by_image.get(&s).copied(),
                _ => None,
            })
        } else {
            None
        };
        Ok(())
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.pos += 1;
        Ok(())
    }

    fn eof(&self) -> bool {
        self.current().is_none()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        match self.current().and_then(|r| r.get(i as usize)) {
            Some(v) => ctx.set_result(v),
            None => ctx.set_result(None::<i64>),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(match self.only {
            Some(Some(i)) => i as i64 + 1,
            _ => self.pos as i64 + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each table names a column once, and has the column its planning looks for.
    #[test]
    fn tables_are_well_formed() {
        for (columns, key) in [
            (EventsTable::COLUMNS, Column::TsNs),
            (ProcessesTable::COLUMNS, Column::Image),
        ] {
            let mut seen = std::collections::HashSet::new();
            assert!(columns.iter().all(|c| seen.insert(c)), "{columns:?}");
            assert!(columns.contains(&key));
        }
        assert!(EXIT_COLUMNS
            .iter()
            .all(|c| ProcessesTable::COLUMNS.contains(c)));
    }

    #[test]
    fn declaration_types_follow_the_column_table() {
        let sql =
            declaration(&[Column::Seq, Column::Ts, Column::PathTruncated, Column::Comm]).unwrap();
        assert_eq!(
            sql.to_str().unwrap(),
            "CREATE TABLE x(seq INTEGER, ts TEXT, path_truncated INTEGER, comm TEXT)"
        );
    }
}
