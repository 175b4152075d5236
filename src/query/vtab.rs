//! `events` and `processes` as SQLite virtual tables over the store (see the module documentation
//! of `query`): their cursors decode segment by segment, block by block, through the segment
//! reader, so that SQLite aggregates a stream instead of a copy of the range.
//!
//! `events` accepts constraints on `ts_ns` (`=`, `<`, `<=`, `>`, `>=`): they narrow the window the
//! cursor reads, on top of `--since`/`--until`, down to whole segments (by their metadata) and whole
//! blocks (by their time range). It also takes `=` and `IN` on the columns of `pushdown.rs` (path,
//! comm, op, pid, uid, exe…): segments and blocks whose summaries rule them out are not read, and
//! each decoded event is checked before it is copied for SQLite. It copies only the fields the
//! statement's columns read (`colUsed`). No constraint is "omitted": SQLite checks every row
//! again, so a pushed-down constraint only ever narrows what is read, never what is answered.
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

use rusqlite::fallible_streaming_iterator::FallibleStreamingIterator;
use rusqlite::types::Value;
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConnection, VTabCursor,
};
use rusqlite::{ffi, Connection};

use super::cells::{event_cell, Cell, Fields};
use super::pushdown::{Pushed, PUSHABLE};
use crate::bytes::Str;
use crate::columns::{Column, Type};
use crate::event::Event;
use crate::need::Need;
use crate::process::Process;
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

    pub(super) fn error(&self, e: StoreError) {
        let mut st = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let text = e.to_string();
        if !st.errors.iter().any(|x| x.to_string() == text) {
            st.errors.push(e);
        }
    }

    /// The segments of `window`, loaded one at a time; unreadable ones are recorded and skipped.
    pub(super) fn load(&self, index: usize) -> Option<SegmentData> {
        let info = &self.reader.segments()[index];
        match self.reader.load(info) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(e);
                None
            }
        }
    }

    /// The segments of `window` whose summaries do not rule out `need` (those they do are
    /// counted as skipped).
    fn segments_where(&self, window: &TimeRange, need: &Need) -> Vec<usize> {
        let mut skipped = 0;
        let out = self
            .segments_in(window)
            .into_iter()
            .filter(|&i| {
                let keep = self.reader.segments()[i].may_match(need);
                skipped += u64::from(!keep);
                keep
            })
            .collect();
        self.stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .segments_skipped += skipped;
        out
    }

    pub(super) fn segments_in(&self, window: &TimeRange) -> Vec<usize> {
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
pub(super) trait Table: Sized + 'static {
    const NAME: &'static str;
    /// The columns, in order (documented in the module documentation of `query`).
    const COLUMNS: &'static [Column];
    type Cursor: VTabCursor;

    /// The `CREATE TABLE` statement SQLite learns the columns from.
    fn declare() -> rusqlite::Result<CString> {
        declaration(Self::COLUMNS)
    }

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

/// The `CREATE TABLE` statement SQLite learns a table's columns from: `columns`, then `more`
/// (name and SQL type).
pub(super) fn declaration_with(
    columns: &[Column],
    more: &[(&str, &str)],
) -> rusqlite::Result<CString> {
    let cols: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", c.name(), sql_type(c.ty())))
        .chain(more.iter().map(|(n, t)| format!("{n} {t}")))
        .collect();
    CString::new(format!("CREATE TABLE x({})", cols.join(", ")))
        .map_err(|e| rusqlite::Error::ModuleError(e.to_string()))
}

/// The `CREATE TABLE` statement of `columns`.
fn declaration(columns: &[Column]) -> rusqlite::Result<CString> {
    declaration_with(columns, &[])
}

#[repr(C)]
pub(super) struct Tab<T> {
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
            Cow::Owned(T::declare()?),
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
        Column::Cwd,
    ];
    type Cursor = EventsCursor;

    fn best_index(shared: &Shared, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        // idx_str: one token per argument (see `Plan`), then the columns used.
        let mut tokens = Vec::new();
        let mut used = Vec::new();
        let mut selective = 0;
        let constraints: Vec<_> = info
            .constraints()
            .map(|c| (Self::column(c.column()), c.operator(), c.is_usable()))
            .collect();
        for (i, (col, op, usable)) in constraints.into_iter().enumerate() {
            let Some(col) = col.filter(|_| usable) else {
                continue;
            };
            if col == Column::TsNs {
                let op = match op {
                    IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ => "e",
                    IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_GT => "g",
                    IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_GE => "G",
                    IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LT => "l",
                    IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LE => "L",
                    _ => continue,
                };
                tokens.push(op.to_owned());
                used.push(i);
                selective += 1;
                continue;
            }
            if op != IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ
                || !PUSHABLE.contains(&col)
                || info.collation(i)? != "BINARY"
            {
                continue;
            }
            let n = Self::COLUMNS.iter().position(|c| *c == col).unwrap_or(0);
            // An IN list is taken whole (one scan, not one per value); an `=` only when its
            // value is known now: a join's `e.col = other.col` would make the planner run one
            // scan of the range per row of the other table.
            if info.is_in_constraint(i)? {
                if !info.set_in_constraint(i, true)? {
                    continue;
                }
                tokens.push(format!("i{n}"));
            } else if info.rhs_value(i)?.is_some() {
                tokens.push(format!("={n}"));
            } else {
                continue;
            }
            used.push(i);
            selective += 1;
        }
        for (n, i) in used.iter().enumerate() {
            let mut u = info.constraint_usage(*i);
            u.set_argv_index(n as c_int + 1);
            // SQLite checks each row again: a pushed constraint narrows the reading and the rows
            // handed over, never the answer.
            u.set_omit(false);
        }
        tokens.push(format!("c{:x}", info.col_used()));
        let rows = shared
            .reader
            .segments()
            .iter()
            .map(|s| s.meta.events)
            .sum::<u64>();
        let rows = rows.max(1) as f64;
        // Each bound or pushed constraint reads (or hands over) a fraction of the store; the
        // planner should prefer the plan that pushes most.
        let cost = rows / 100f64.powi(selective);
        info.set_estimated_cost(cost.max(1.0));
        info.set_estimated_rows(cost.max(1.0) as i64);
        info.set_idx_str(&tokens.join(" "));
        Ok(true)
    }

    fn open(shared: &Arc<Shared>) -> EventsCursor {
        EventsCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            shared: shared.clone(),
            window: TimeRange::default(),
            pushed: Pushed::default(),
            need: Need::all(),
            fields: Fields::default(),
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

/// What `filter` reads, from the plan `best_index` wrote (`idx_str`: one token per argument —
/// `e`, `g`, `G`, `l`, `L` a ts_ns bound, `=N` and `iN` an `=` and an `IN` on column N — then `cX`,
/// the columns used in hex) and the arguments SQLite passed.
struct Plan {
    /// The query's range narrowed by the ts_ns bounds.
    window: TimeRange,
    pushed: Pushed,
    /// SQLite's `colUsed` mask: bit i for column i, bit 63 for every column from 63 on.
    used: u64,
}

/// Only integer and real ts_ns bounds narrow the window (a text bound compares as text: no pruning).
fn plan(range: TimeRange, idx_str: &str, args: &Filters<'_>) -> rusqlite::Result<Plan> {
    let mut w = range;
    let mut pushed = Pushed::default();
    let mut used = u64::MAX;
    let lower = |w: &mut TimeRange, v: i64| w.since = Some(w.since.map_or(v, |s| s.max(v)));
    let upper = |w: &mut TimeRange, v: i64| w.until = Some(w.until.map_or(v, |u| u.min(v)));
    let column = |n: &str| {
        n.parse::<usize>()
            .ok()
            .and_then(|n| EventsTable::COLUMNS.get(n).copied())
            .ok_or_else(|| rusqlite::Error::ModuleError(format!("events: bad plan {idx_str:?}")))
    };
    let mut arg = 0;
    for token in idx_str.split_whitespace() {
        if let Some(mask) = token.strip_prefix('c') {
            used = u64::from_str_radix(mask, 16).unwrap_or(u64::MAX);
            continue;
        }
        let i = arg;
        arg += 1;
        // A value Value cannot hold (text that is not UTF-8) pushes nothing: SQLite decides.
        if let Some(n) = token.strip_prefix('=') {
            if let Ok(v) = args.get::<Value>(i) {
                pushed.push(column(n)?, vec![v]);
            }
            continue;
        }
        if let Some(n) = token.strip_prefix('i') {
            let mut values = Some(Vec::new());
            let mut list = args.in_values(i)?;
            while let Some(v) = list.next()? {
                let v = Value::try_from(v.get_raw()).ok();
                values = values.zip(v).map(|(mut vs, v)| {
                    vs.push(v);
                    vs
                });
            }
            if let Some(values) = values {
                pushed.push(column(n)?, values);
            }
            continue;
        }
        let (lo, hi) = match args.get::<Value>(i)? {
            Value::Integer(v) => (v, v),
            // A real bound, widened to the integers around it (only ever reads more).
            Value::Real(r) if r.is_finite() => (r.floor() as i64, r.ceil() as i64),
            _ => continue,
        };
        match token {
            "e" => {
                lower(&mut w, lo);
                upper(&mut w, hi);
            }
            "g" => lower(&mut w, lo.saturating_add((lo == hi) as i64)),
            "G" => lower(&mut w, lo),
            "l" => upper(&mut w, hi.saturating_sub((lo == hi) as i64)),
            "L" => upper(&mut w, hi),
            _ => {}
        }
    }
    Ok(Plan {
        window: w,
        pushed,
        used,
    })
}

/// One block's worth of decoded events (what a cursor holds: never more than a block).
#[repr(C)]
struct EventsCursor {
    base: ffi::sqlite3_vtab_cursor,
    shared: Arc<Shared>,
    window: TimeRange,
    pushed: Pushed,
    /// The pushed constraints as summaries judge them.
    need: Need,
    /// The fields of each event the statement's columns read.
    fields: Fields,
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
                    let (window, pushed, fields) = (&self.window, &self.pushed, self.fields);
                    let buf = &mut self.buf;
                    let mut n = first;
                    let mut scanned = 0u64;
                    let mut in_range = 0u64;
                    let r = seg.for_each_event_in_block(id, |ev| {
                        n += 1;
                        scanned += 1;
                        if window.contains(ev.ts_ns) {
                            in_range += 1;
                            let at = (*seq << 32 | n) as i64;
                            if pushed.admits(at, ev) {
                                buf.push((at, fields.copy(ev)));
                            }
                        }
                        std::ops::ControlFlow::Continue(())
                    });
                    {
                        let mut st = self.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
                        st.events_scanned += scanned;
                        st.events_in_range += in_range;
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
            match block_spans(&seg, &self.window, &self.need) {
                Ok((blocks, skipped)) => {
                    {
                        let mut st = self.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
                        st.segments += 1;
                        st.blocks_skipped += skipped;
                    }
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

/// The blocks of `seg` in `window` whose summaries do not rule out `need`, with the index of
/// each one's first event in the segment (so that `seq` is the same whatever the window), and how
/// many blocks the summaries ruled out.
fn block_spans(
    seg: &SegmentData,
    window: &TimeRange,
    need: &Need,
) -> crate::store::Result<(Vec<(i64, u64)>, u64)> {
    let (wanted, skipped) = seg.blocks_where(window, need)?;
    if wanted.is_empty() {
        return Ok((Vec::new(), skipped));
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
    Ok((spans, skipped))
}

// SAFETY: `base` is the first field (repr(C)).
unsafe impl VTabCursor for EventsCursor {
    fn filter(
        &mut self,
        _idx_num: c_int,
        idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        let plan = plan(self.shared.range, idx_str.unwrap_or(""), args)?;
        self.window = plan.window;

        self.fields = Fields::of(EventsTable::COLUMNS, plan.used);
        self.need = plan.pushed.need();
        self.pushed = plan.pushed;
        self.segments = self.shared.segments_where(&self.window, &self.need);
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
        match EventsTable::column(i).map_or(Cell::Null, |c| event_cell(*seq, e, c)) {
            Cell::Null => ctx.set_result(None::<i64>),
            Cell::Int(v) => ctx.set_result(v),
            Cell::Text(t) => ctx.set_result(&t),
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
        Column::Cwd => opt_text(lossy(&p.cwd)),
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
        Column::Cwd,
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

    /// A row copied for a statement that uses one column holds that column's value: the
    /// projection (`Fields`) keeps every field each column reads.
    #[test]
    fn a_projected_copy_answers_each_column_it_was_copied_for() {
        use crate::file_id::FileId;
        let s = |t: &str| Str::from(t);
        let mut parent = Process::from_event(1, 5, 0, s("init"), 0, 0);
        parent.exe = Some(s("/sbin/init"));
        let mut p = Process::from_event(42, 7, 1, s("cat"), 1000, 1000);
        p.exe = Some(s("/bin/cat"));
        p.argv = Some(s("cat\0/etc/x"));
        p.parent = Some(Arc::new(parent));
        p.container_id = Some(s("abc"));
        p.auid = Some(1000);
        p.mntns = Some(4026531840);
        p.exe_id = Some(FileId { dev: 1, ino: 2 });
        p.exe_verified = Some(true);
        p.cwd = Some(s("/home/alice"));
        let e = Event {
            ts_ns: 1_700_000_000_000_000_000,
            pid: 42,
            comm: s("cat"),
            path: s("/etc/x"),
            raw_path: s("x"),
            old_path: Some(s("/etc/y")),
            user: Some(s("alice")),
            root: Some(s("/jail")),
            alias_of: Some(s("/etc/shadow")),
            file: Some(FileId { dev: 3, ino: 4 }),
            euid: Some(0),
            egid: Some(0),
            dirfd: Some(-100),
            ret: -2,
            new_uid: Some(5),
            new_gid: Some(6),
            length: Some(7),
            process: Some(Arc::new(p)),
            ..Event::default()
        };
        for (i, c) in EventsTable::COLUMNS.iter().enumerate() {
            let copy = Fields::of(EventsTable::COLUMNS, 1 << i).copy(&e);
            assert_eq!(event_cell(9, &copy, *c), event_cell(9, &e, *c), "{c:?}");
            assert_ne!(event_cell(9, &e, *c), Cell::Null, "{c:?}: the test sets it");
        }
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
