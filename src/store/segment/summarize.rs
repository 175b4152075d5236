//! Building summaries (`store::summary`) from stored rows: the writer summarizes each block it
//! commits from its interning tables, the seal and `verify` summarize a database from its own
//! tables. One collector and one key derivation serve both, so a summary rebuilt from the database
//! is byte-identical to the one written (that is what `verify` checks).

use std::path::Path;

use rusqlite::Connection;
use rustc_hash::FxHashSet;

use super::blocks::{Decoder, Row};
use crate::need::dirs_of;
use crate::store::schema::{FILE_OPS_VERSION, IDENTITY_VERSION, LINEAGE_VERSION, SUMMARY_VERSION};
use crate::store::summary::{tagged_hash, Summary, RESULT_FAILED, RESULT_OK};
use crate::store::{sql_err, Result, StoreError};

/// What a proc row contributes: the event's pid and uid, its image's exe and container id.
pub(crate) struct ProcKeys<'a> {
    pub pid: u32,
    pub uid: u32,
    pub exe: Option<&'a [u8]>,
    pub container: Option<&'a [u8]>,
}

/// Ids of a segment's tables → values.
pub(crate) trait Resolve {
    fn string(&self, id: u32) -> Option<&[u8]>;
    fn proc(&self, id: u32) -> Option<ProcKeys<'_>>;
    /// The `Op` code of a shape.
    fn op(&self, shape: u32) -> Option<u8>;
}

/// The distinct ids of a run of rows (cheap per row: the keys are derived once per id).
#[derive(Default)]
pub(crate) struct Collector {
    strings: FxHashSet<u32>,
    procs: FxHashSet<u32>,
    shapes: FxHashSet<u32>,
    results: u8,
}

impl Collector {
    /// Adds the ids `o` collected (a union: adding the same rows twice changes nothing).
    pub fn merge(&mut self, o: &Collector) {
        self.strings.extend(&o.strings);
        self.procs.extend(&o.procs);
        self.shapes.extend(&o.shapes);
        self.results |= o.results;
    }

    pub fn add(&mut self, r: &Row) {
        self.strings.insert(r.path);
        for s in [r.alias_of, r.old_path] {
            if s != 0 {
                self.strings.insert(s);
            }
        }
        self.procs.insert(r.proc_id);
        self.shapes.insert(r.shape);
        self.results |= if r.ret >= 0 { RESULT_OK } else { RESULT_FAILED };
    }

    /// The summary of the rows added, sized by `size` (see `summary::SEGMENT_BLOOM`); `Err`
    /// names an id the tables lack.
    pub fn finish(&self, t: &impl Resolve, size: (usize, u8, usize)) -> Result<Summary, String> {
        let mut hashes = Vec::with_capacity(self.strings.len() * 3 + self.procs.len() * 3);
        for &id in &self.strings {
            let s = t.string(id).ok_or_else(|| format!("no string {id}"))?;
            hashes.push(tagged_hash(b'p', s));
            hashes.extend(dirs_of(s).map(|d| tagged_hash(b'd', d)));
        }
        for &id in &self.procs {
            let p = t.proc(id).ok_or_else(|| format!("no proc {id}"))?;
            hashes.push(tagged_hash(b'i', &p.pid.to_le_bytes()));
            hashes.push(tagged_hash(b'u', &p.uid.to_le_bytes()));
            if let Some(e) = p.exe {
                hashes.push(tagged_hash(b'e', e));
                hashes.extend(dirs_of(e).map(|d| tagged_hash(b'x', d)));
            }
            if let Some(c) = p.container {
                hashes.push(tagged_hash(b'c', c));
            }
        }
        let mut ops = 0u32;
        for &id in &self.shapes {
            let op = t.op(id).ok_or_else(|| format!("no shape {id}"))?;
            ops |= 1u32.checked_shl(op.into()).unwrap_or(0);
        }
        // The filter's size follows the distinct keys, so that any order of the same rows
        // builds the same bytes.
        hashes.sort_unstable();
        hashes.dedup();
        Ok(Summary::build(ops, self.results, &hashes, size))
    }
}

/// A segment database's tables, as summaries need them.
pub(crate) struct DbTables {
    strings: Vec<Vec<u8>>,
    /// By proc id - 1: pid, uid, processes.id.
    procs: Vec<(u32, u32, Option<u32>)>,
    /// By processes.id - 1: exe and container_id string ids.
    processes: Vec<(Option<u32>, Option<u32>)>,
    /// By shape id - 1.
    ops: Vec<u8>,
}

impl Resolve for DbTables {
    fn string(&self, id: u32) -> Option<&[u8]> {
        let s = self.strings.get((id as usize).checked_sub(1)?)?;
        Some(s)
    }

    fn proc(&self, id: u32) -> Option<ProcKeys<'_>> {
        let &(pid, uid, process) = self.procs.get((id as usize).checked_sub(1)?)?;
        let (exe, container) = match process {
            None => (None, None),
            Some(p) => *self.processes.get((p as usize).checked_sub(1)?)?,
        };
        let s = |id: Option<u32>| {
            id.map(|i| self.string(i))
                .map_or(Some(None), |s| s.map(Some))
        };
        Some(ProcKeys {
            pid,
            uid,
            exe: s(exe)?,
            container: s(container)?,
        })
    }

    fn op(&self, shape: u32) -> Option<u8> {
        self.ops.get((shape as usize).checked_sub(1)?).copied()
    }
}

fn rows_of<T>(
    conn: &Connection,
    path: &Path,
    sql: &str,
    f: impl Fn(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut st = conn.prepare(sql).map_err(sql_err(path, sql))?;
    let rows = st
        .query_map([], f)
        .and_then(|r| r.collect())
        .map_err(sql_err(path, sql));
    rows
}

impl DbTables {
    /// Loads the tables (ids must be dense, as the decoder requires).
    pub fn load(conn: &Connection, path: &Path, version: i64) -> Result<DbTables> {
        let dense = |what: &str, ids: &[i64]| match ids
            .iter()
            .enumerate()
            .find(|(i, &id)| id != *i as i64 + 1)
        {
            None => Ok(()),
            Some((_, id)) => Err(StoreError::Corrupt {
                path: path.into(),
                reason: format!("{what} ids are not dense (found {id})"),
            }),
        };
        let strings = rows_of(
            conn,
            path,
            "SELECT id, value FROM strings ORDER BY id",
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )?;
        dense("string", &strings.iter().map(|s| s.0).collect::<Vec<_>>())?;
        let p_sql = if version >= LINEAGE_VERSION {
            "SELECT id, pid, uid, process FROM procs ORDER BY id"
        } else {
            "SELECT id, pid, uid, NULL FROM procs ORDER BY id"
        };
        let procs = rows_of(conn, path, p_sql, |r| {
            Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
        })?;
        dense("proc", &procs.iter().map(|p| p.0).collect::<Vec<_>>())?;
        let processes = if version >= LINEAGE_VERSION {
            rows_of(
                conn,
                path,
                "SELECT id, exe, container_id FROM processes ORDER BY id",
                |r| Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?))),
            )?
        } else {
            Vec::new()
        };
        dense(
            "process",
            &processes.iter().map(|p| p.0).collect::<Vec<_>>(),
        )?;
        let h_sql = if version >= FILE_OPS_VERSION {
            "SELECT id, op FROM shapes ORDER BY id"
        } else {
            "SELECT id, 1 FROM shapes ORDER BY id"
        };
        let ops = rows_of(conn, path, h_sql, |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, u8>(1)?))
        })?;
        dense("shape", &ops.iter().map(|s| s.0).collect::<Vec<_>>())?;
        Ok(DbTables {
            strings: strings.into_iter().map(|s| s.1).collect(),
            procs: procs.into_iter().map(|p| p.1).collect(),
            processes: processes.into_iter().map(|p| p.1).collect(),
            ops: ops.into_iter().map(|s| s.1).collect(),
        })
    }
}

/// The segment summary of the rows `c` collected, their ids resolved through the database's own
/// tables: what [`rebuild`] gives when `c` holds the ids of every row of its blocks, without
/// decoding them (the seal of a segment its witness vouches for: `writer::sealer`).
pub(crate) fn segment_summary(
    conn: &Connection,
    path: &Path,
    version: i64,
    c: &Collector,
) -> Result<Summary> {
    let t = DbTables::load(conn, path, version)?;
    c.finish(&t, crate::store::summary::SEGMENT_BLOOM)
        .map_err(|reason| StoreError::Corrupt {
            path: path.into(),
            reason,
        })
}

/// Each block's stored summary (`None` before schema 6) and the one rebuilt from its rows (when
/// asked for); then the whole segment's, rebuilt. Reads every row once.
pub(crate) struct Rebuilt {
    pub blocks: Vec<(i64, Option<Vec<u8>>, Summary)>,
    pub segment: Summary,
}

/// Rebuilds the summaries of a segment database from its rows.
pub(crate) fn rebuild(
    conn: &Connection,
    path: &Path,
    version: i64,
    with_blocks: bool,
) -> Result<Rebuilt> {
    use crate::store::summary::{BLOCK_BLOOM, SEGMENT_BLOOM};
    let t = DbTables::load(conn, path, version)?;
    let sql = if version >= SUMMARY_VERSION {
        "SELECT id, count, base_ts_ns, ts, proc, path, raw_path, shape, ret, file, alias_of, \
         old_path, new_uid, new_gid, length, summary FROM blocks ORDER BY id"
    } else if version >= FILE_OPS_VERSION {
        "SELECT id, count, base_ts_ns, ts, proc, path, raw_path, shape, ret, file, alias_of, \
         old_path, new_uid, new_gid, length, NULL FROM blocks ORDER BY id"
    } else if version >= IDENTITY_VERSION {
        "SELECT id, count, base_ts_ns, ts, proc, path, raw_path, shape, ret, file, alias_of, \
         NULL, NULL, NULL, NULL, NULL FROM blocks ORDER BY id"
    } else {
        "SELECT id, count, base_ts_ns, ts, proc, path, raw_path, shape, ret, NULL, NULL, \
         NULL, NULL, NULL, NULL, NULL FROM blocks ORDER BY id"
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.into(),
        reason,
    };
    let mut st = conn.prepare(sql).map_err(sql_err(path, sql))?;
    let mut rows = st.query([]).map_err(sql_err(path, sql))?;
    let mut all = Collector::default();
    let mut blocks = Vec::new();
    while let Some(r) = rows.next().map_err(sql_err(path, sql))? {
        let id: i64 = r.get(0).map_err(sql_err(path, sql))?;
        let count: i64 = r.get(1).map_err(sql_err(path, sql))?;
        let base: i64 = r.get(2).map_err(sql_err(path, sql))?;
        let blob = |i| {
            r.get_ref(i)
                .and_then(|v| v.as_blob_or_null().map_err(Into::into))
                .map_err(sql_err(path, sql))
        };
        let need = |i| blob(i)?.ok_or_else(|| corrupt(format!("block {id}: NULL column")));
        let cols = [need(3)?, need(4)?, need(5)?, need(6)?, need(7)?, need(8)?];
        let opt = [
            blob(9)?,
            blob(10)?,
            blob(11)?,
            blob(12)?,
            blob(13)?,
            blob(14)?,
        ];
        let stored = blob(15)?.map(<[u8]>::to_vec);
        let mut block = Collector::default();
        let mut dec = Decoder::new(count, base, cols, opt);
        while let Some(row) = dec.next_row() {
            let row = row.map_err(|w| corrupt(format!("block {id}: {w}")))?;
            if with_blocks {
                block.add(&row);
            }
            all.add(&row);
        }
        if with_blocks {
            let s = block
                .finish(&t, BLOCK_BLOOM)
                .map_err(|w| corrupt(format!("block {id}: {w}")))?;
            blocks.push((id, stored, s));
        }
    }
    let segment = all.finish(&t, SEGMENT_BLOOM).map_err(corrupt)?;
    Ok(Rebuilt { blocks, segment })
}
