//! `path_counts`: the events of the range counted per (op, path, comm), for `top_paths` and the
//! like. Each segment is counted by its own string ids (an integer hash per event, no string
//! touched), then its groups are merged by text into the answer: SQLite groups a few thousand
//! rows instead of sorting every event of the range by path.
//!
//! Columns: `op`, `path`, `comm` (as in `events`), `events` (how many), `failed` (how many with
//! `ret < 0`), `first_ts_ns`, `last_ts_ns`, and `first_ts`, `last_ts` (as `events.ts` shows them).
//! `count(*)` over a path's rows is `count(DISTINCT comm)` over its events.

use std::ffi::{c_int, CString};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use indexmap::IndexSet;
use rusqlite::vtab::{Context, Filters, IndexInfo, Module, VTabCursor};
use rusqlite::{ffi, Connection};
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::vtab::{declaration_with, Shared, Tab, Table};
use crate::bytes::Str;
use crate::columns::Column;
use crate::event::Op;
use crate::store::EventIds;
use crate::timespec::format_ts;

pub(super) struct PathCounts;

/// Registers `path_counts` on `conn`.
pub(super) fn register(conn: &Connection, shared: Arc<Shared>) -> rusqlite::Result<()> {
    const PATH_COUNTS: Module<Tab<PathCounts>> = Module::eponymous_only_module();
    conn.create_module(c"path_counts", &PATH_COUNTS, Some(shared))
}

/// The counts of one group.
#[derive(Clone, Copy)]
struct Counts {
    events: i64,
    failed: i64,
    first: i64,
    last: i64,
}

impl Counts {
    fn new() -> Counts {
        Counts {
            events: 0,
            failed: 0,
            first: i64::MAX,
            last: i64::MIN,
        }
    }

    fn add(&mut self, ts_ns: i64, ret: i64) {
        self.events += 1;
        self.failed += i64::from(ret < 0);
        self.first = self.first.min(ts_ns);
        self.last = self.last.max(ts_ns);
    }

    fn merge(&mut self, o: &Counts) {
        self.events += o.events;
        self.failed += o.failed;
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
    }
}

/// The distinct texts of the answer's paths and comms, each once (non-UTF-8 bytes as U+FFFD, as
/// `events` shows them, so that the groups are the ones `GROUP BY path` over `events` makes). An
/// id is the text's index.
#[derive(Default)]
struct Texts(IndexSet<Box<str>, FxBuildHasher>);

impl Texts {
    fn id(&mut self, s: &Str) -> u32 {
        let t = s.lossy();
        match self.0.get_index_of(t.as_ref()) {
            Some(i) => i as u32,
            None => self.0.insert_full(t.into()).0 as u32,
        }
    }
}

/// One row: op, path and comm (ids into [`Texts`]) and the counts.
type Row = (Op, u32, u32, Counts);

/// How many segments are counted at a time. Each worker holds one decompressed segment (about
/// 10 MB per million events) and its groups: two keep peak RSS within #29's 64 MB, and use the
/// two cores DuckDB (what users compare us with) uses on this class of machine: `top_paths` on
/// 10M events took 0.84-0.98 s on one, 0.51-0.57 s on two (docs/benchmarks.md).
const WORKERS: usize = 2;

/// The groups of the segments counted so far, by text.
#[derive(Default)]
struct Tally {
    texts: Texts,
    groups: FxHashMap<(Op, u32, u32), Counts>,
}

/// Counts the range: [`WORKERS`] segments at a time, each by its string ids (the store's
/// [`EventIds`] decoding: no event built, no string cloned), its groups then merged by text into
/// one tally. The answer holds each distinct text once, integers per group, and comes sorted by
/// op, path and comm whatever order the workers finished in.
fn count(shared: &Shared) -> (Vec<Row>, Vec<Box<str>>) {
    let segments = shared.segments_in(&shared.range);
    let next = AtomicUsize::new(0);
    let seen = AtomicU64::new(0);
    let tally = Mutex::new(Tally::default());
    let work = || {
        // Segments hold alike many groups: each table starts at the size of the worker's last.
        let mut groups = 0;
        while let Some(&index) = segments.get(next.fetch_add(1, Ordering::Relaxed)) {
            groups = count_segment(shared, index, &seen, &tally, groups);
        }
    };
    let workers = WORKERS
        .min(std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(segments.len());
    if workers <= 1 {
        work();
    } else {
        // A worker's panic is re-raised here when the scope ends.
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(work);
            }
        });
    }
    let all = tally.into_inner().unwrap_or_else(|p| p.into_inner());
    let texts: Vec<Box<str>> = all.texts.0.into_iter().collect();
    let mut rows: Vec<Row> = all
        .groups
        .into_iter()
        .map(|((op, path, comm), c)| (op, path, comm, c))
        .collect();
    // As `ORDER BY op, path, comm` sorts them: op by its name.
    let key = |r: &Row| (r.0.as_str(), &texts[r.1 as usize], &texts[r.2 as usize]);
    rows.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
    (rows, texts)
}

/// Counts segment `index` by its string ids (in a table sized for `groups`), then merges its
/// groups into `tally` by text; returns how many groups it had.
fn count_segment(
    shared: &Shared,
    index: usize,
    seen: &AtomicU64,
    tally: &Mutex<Tally>,
    groups: usize,
) -> usize {
    let Some(seg) = shared.load(index) else {
        return groups;
    };
    let range = shared.range;
    // By string id within the segment: the strings of one segment's table are distinct.
    let mut local: FxHashMap<(Op, u32, u32), Counts> =
        FxHashMap::with_capacity_and_hasher(groups, Default::default());
    let (mut scanned, mut in_range) = (0u64, 0u64);
    let read = seg.for_each_ids_in(&range, |block: &[EventIds]| {
        let mut n = 0u64;
        for ev in block.iter().filter(|ev| range.contains(ev.ts_ns)) {
            local
                .entry((ev.op, ev.path, ev.comm))
                .or_insert_with(Counts::new)
                .add(ev.ts_ns, ev.ret);
            n += 1;
        }
        // One progress call per PROGRESS_EVERY events, as the events cursor makes.
        let before = seen.fetch_add(n, Ordering::Relaxed);
        for _ in before / super::PROGRESS_EVERY..(before + n) / super::PROGRESS_EVERY {
            (shared.progress)();
        }
        (scanned, in_range) = (scanned + block.len() as u64, in_range + n);
    });
    {
        let mut st = shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        st.segments += 1;
        st.events_scanned += scanned;
        st.events_in_range += in_range;
    }
    let counted = local.len();
    // As the events cursor does: what was read of a corrupt segment counts, the rest is
    // skipped and named. The decoder checked every id it passed on.
    let merged = seg.strings().map(|strings| {
        let mut guard = tally.lock().unwrap_or_else(|p| p.into_inner());
        let Tally { texts, groups } = &mut *guard;
        // Each of the segment's strings is looked up by text once, however many groups.
        let mut text_of = vec![u32::MAX; strings.len()];
        let mut text = |id: u32| {
            let t = &mut text_of[id as usize];
            if *t == u32::MAX {
                *t = texts.id(&strings[id as usize]);
            }
            *t
        };
        for ((op, path, comm), c) in local {
            groups
                .entry((op, text(path), text(comm)))
                .or_insert_with(Counts::new)
                .merge(&c);
        }
    });
    if let Err(e) = read.and(merged) {
        shared.error(e);
    }
    counted
}

impl Table for PathCounts {
    const NAME: &'static str = "path_counts";
    /// The group's key; the counts follow (see the module documentation).
    const COLUMNS: &'static [Column] = &[Column::Op, Column::Path, Column::Comm];
    type Cursor = PathCountsCursor;

    fn declare() -> rusqlite::Result<CString> {
        declaration_with(
            Self::COLUMNS,
            &[
                ("events", "INTEGER"),
                ("failed", "INTEGER"),
                ("first_ts_ns", "INTEGER"),
                ("last_ts_ns", "INTEGER"),
                ("first_ts", "TEXT"),
                ("last_ts", "TEXT"),
            ],
        )
    }

    fn best_index(_: &Shared, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        // One pass over the range whatever the statement: a plan should read it once.
        info.set_estimated_cost(1e6);
        info.set_estimated_rows(10_000);
        Ok(true)
    }

    fn open(shared: &Arc<Shared>) -> PathCountsCursor {
        PathCountsCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            shared: shared.clone(),
            rows: Vec::new(),
            texts: Vec::new(),
            pos: 0,
        }
    }
}

#[repr(C)]
pub(super) struct PathCountsCursor {
    base: ffi::sqlite3_vtab_cursor,
    shared: Arc<Shared>,
    rows: Vec<Row>,
    texts: Vec<Box<str>>,
    pos: usize,
}

// SAFETY: `base` is the first field (repr(C)).
unsafe impl VTabCursor for PathCountsCursor {
    fn filter(&mut self, _: c_int, _: Option<&str>, _: &Filters<'_>) -> rusqlite::Result<()> {
        (self.rows, self.texts) = count(&self.shared);
        self.pos = 0;
        Ok(())
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.pos += 1;
        Ok(())
    }

    fn eof(&self) -> bool {
        self.pos >= self.rows.len()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let (op, path, comm, c) = &self.rows[self.pos];
        match i {
            0 => ctx.set_result(op.as_str()),
            1 => ctx.set_result(&*self.texts[*path as usize]),
            2 => ctx.set_result(&*self.texts[*comm as usize]),
            3 => ctx.set_result(c.events),
            4 => ctx.set_result(c.failed),
            5 => ctx.set_result(c.first),
            6 => ctx.set_result(c.last),
            7 => ctx.set_result(format_ts(c.first)),
            8 => ctx.set_result(format_ts(c.last)),
            _ => ctx.set_result(None::<i64>),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.pos as i64 + 1)
    }
}
