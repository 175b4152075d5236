//! The `blocks` table: one row per committed batch, each event column a BLOB of LEB128 varints
//! (see `migrations/0001_init.sql`). The encoder and the decoder live here side by side, with a
//! round-trip test; the writer and the reader only see [`Row`]s.

use super::codec::{self, Column};

/// One event as the `blocks` columns hold it: ids into the segment's interned tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub ts_ns: i64,
    pub proc_id: u32,
    pub path: u32,
    /// 0: the same string as `path`.
    pub raw_path: u32,
    pub shape: u32,
    pub ret: i64,
    /// `files.id`, 0 for none (schema 4; older blocks read as 0).
    pub file: u32,
    /// The string id of the watched path the file is, 0 for none (schema 4).
    pub alias_of: u32,
    /// The string id of a rename's or link's old name or a symlink's target, 0 for none
    /// (schema 5; older blocks read as 0, as do all the op arguments).
    pub old_path: u32,
    pub new_uid: Option<u32>,
    pub new_gid: Option<u32>,
    pub length: Option<i64>,
}

impl Row {
    /// Whether the row has a value in optional column `col` (see [`EncodedBlock::opt`]).
    fn has(&self, col: usize) -> bool {
        match col {
            0 => self.file != 0,
            1 => self.alias_of != 0,
            2 => self.old_path != 0,
            3 => self.new_uid.is_some(),
            4 => self.new_gid.is_some(),
            _ => self.length.is_some(),
        }
    }

    /// Appends the row's value of optional column `col`.
    fn put(&self, col: usize, out: &mut Vec<u8>) {
        match col {
            0 => codec::put_u64(out, self.file.into()),
            1 => codec::put_u64(out, self.alias_of.into()),
            2 => codec::put_u64(out, self.old_path.into()),
            3 => codec::put_opt_u32(out, self.new_uid),
            4 => codec::put_opt_u32(out, self.new_gid),
            _ => codec::put_opt_i64(out, self.length),
        }
    }
}

/// A batch of rows, encoded.
pub(crate) struct EncodedBlock {
    pub count: i64,
    pub base_ts_ns: i64,
    pub min_ts_ns: i64,
    pub max_ts_ns: i64,
    /// ts, proc, path, raw_path, shape, ret.
    pub cols: [Vec<u8>; 6],
    /// file, alias_of (schema 4), old_path, new_uid, new_gid, length (schema 5): `None` when no
    /// row has a value (stored as NULL, as blocks written before the schema that added the column
    /// read).
    pub opt: [Option<Vec<u8>>; 6],
}

pub(crate) fn encode(rows: &[Row]) -> EncodedBlock {
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
    let opt = std::array::from_fn(|c| {
        rows.iter().any(|r| r.has(c)).then(|| {
            let mut col = Vec::with_capacity(rows.len() * 2);
            for r in rows {
                r.put(c, &mut col);
            }
            col
        })
    });
    EncodedBlock {
        count: rows.len() as i64,
        base_ts_ns: base,
        min_ts_ns: min,
        max_ts_ns: max,
        cols,
        opt,
    }
}

/// Decodes one stored block row by row.
pub(crate) struct Decoder<'a> {
    left: i64,
    ts: i64,
    cols: [Column<'a>; 6],
    /// As [`EncodedBlock::opt`]; `None`: no row has a value.
    opt: [Option<Column<'a>>; 6],
}

impl<'a> Decoder<'a> {
    pub fn new(
        count: i64,
        base_ts_ns: i64,
        cols: [&'a [u8]; 6],
        opt: [Option<&'a [u8]>; 6],
    ) -> Decoder<'a> {
        Decoder {
            left: count.max(0),
            ts: base_ts_ns,
            cols: cols.map(Column::new),
            opt: opt.map(|c| c.map(Column::new)),
        }
    }

    /// The next row; `Err` names what is wrong with the block.
    pub fn next_row(&mut self) -> Option<Result<Row, &'static str>> {
        if self.left == 0 {
            let done = self.cols.iter().all(|c| c.is_done())
                && self.opt.iter().flatten().all(|c| c.is_done());
            return (!done).then_some(Err("columns hold more values than its count"));
        }
        self.left -= 1;
        let [ts, proc_id, path, raw, shape, ret] = &mut self.cols;
        let [file, alias_of, old_path, new_uid, new_gid, length] = &mut self.opt;
        let id = |c: &mut Option<Column<'a>>| match c {
            None => Some(0),
            Some(c) => u32::try_from(c.u64()?).ok(),
        };
        let uid = |c: &mut Option<Column<'a>>| match c {
            None => Some(None),
            Some(c) => c.opt_u32(),
        };
        let row = (|| {
            self.ts = self.ts.wrapping_add(ts.i64()?);
            Some(Row {
                ts_ns: self.ts,
                proc_id: u32::try_from(proc_id.u64()?).ok()?,
                path: u32::try_from(path.u64()?).ok()?,
                raw_path: u32::try_from(raw.u64()?).ok()?,
                shape: u32::try_from(shape.u64()?).ok()?,
                ret: ret.i64()?,
                file: id(file)?,
                alias_of: id(alias_of)?,
                old_path: id(old_path)?,
                new_uid: uid(new_uid)?,
                new_gid: uid(new_gid)?,
                length: match length {
                    None => None,
                    Some(c) => c.opt_i64()?,
                },
            })
        })();
        Some(row.ok_or("a column ends early or holds an out-of-range id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip() {
        let rows: Vec<Row> = (0..1000)
            .map(|i| Row {
                ts_ns: 1_700_000_000_000_000_000 + i * 1_500 - (i % 7) * 3_000,
                proc_id: (i % 13) as u32 + 1,
                path: (i * 31 % 997) as u32 + 1,
                raw_path: if i % 3 == 0 { 0 } else { 5 },
                shape: (i % 4) as u32 + 1,
                ret: if i % 5 == 0 { -2 } else { 3 },
                file: if i % 5 == 0 { 0 } else { (i % 17) as u32 + 1 },
                alias_of: if i % 100 == 3 { 9 } else { 0 },
                old_path: if i % 10 == 1 { 7 } else { 0 },
                new_uid: (i % 10 == 2).then_some(u32::MAX - i as u32),
                new_gid: (i % 20 == 2).then_some(0),
                length: (i % 10 == 3).then_some(if i % 20 == 3 { i64::MIN } else { i }),
            })
            .collect();
        let b = encode(&rows);
        assert_eq!(b.count, 1000);
        assert_eq!(b.min_ts_ns, rows.iter().map(|r| r.ts_ns).min().unwrap());
        assert_eq!(b.max_ts_ns, rows.iter().map(|r| r.ts_ns).max().unwrap());
        let cols = [0, 1, 2, 3, 4, 5].map(|i| &b.cols[i][..]);
        let opt = std::array::from_fn(|i| b.opt[i].as_deref());
        let mut d = Decoder::new(b.count, b.base_ts_ns, cols, opt);
        let mut back = Vec::new();
        while let Some(r) = d.next_row() {
            back.push(r.unwrap());
        }
        assert_eq!(back, rows);
    }

    #[test]
    fn blocks_without_identities_store_null_and_read_zero() {
        let rows = [Row {
            ts_ns: 5,
            proc_id: 1,
            path: 1,
            raw_path: 0,
            shape: 1,
            ret: -2,
            file: 0,
            alias_of: 0,
            old_path: 0,
            new_uid: None,
            new_gid: None,
            length: None,
        }];
        let b = encode(&rows);
        assert_eq!(b.opt, [None, None, None, None, None, None]);
        let cols = [0, 1, 2, 3, 4, 5].map(|i| &b.cols[i][..]);
        let mut d = Decoder::new(b.count, b.base_ts_ns, cols, Default::default());
        assert_eq!(d.next_row().unwrap().unwrap(), rows[0]);
        assert!(d.next_row().is_none());
        // A column with a value too many is as wrong as one of the six, whichever it is.
        for c in 0..6 {
            let mut opt: [Option<&[u8]>; 6] = Default::default();
            opt[c] = Some(&[1, 1][..]);
            let mut d = Decoder::new(1, b.base_ts_ns, cols, opt);
            assert!(d.next_row().unwrap().is_ok(), "column {c}");
            assert!(d.next_row().unwrap().is_err(), "column {c}");
        }
    }

    #[test]
    fn short_and_long_blocks_are_errors() {
        let b = encode(&[Row {
            ts_ns: 5,
            proc_id: 1,
            path: 1,
            raw_path: 0,
            shape: 1,
            ret: 3,
            file: 1,
            alias_of: 0,
            old_path: 0,
            new_uid: None,
            new_gid: None,
            length: Some(4),
        }]);
        let cols = [0, 1, 2, 3, 4, 5].map(|i| &b.cols[i][..]);
        let opt = std::array::from_fn(|i| b.opt[i].as_deref());
        let mut d = Decoder::new(2, b.base_ts_ns, cols, opt);
        assert!(d.next_row().unwrap().is_ok());
        assert!(d.next_row().unwrap().is_err());
        let mut d = Decoder::new(0, b.base_ts_ns, cols, opt);
        assert!(d.next_row().unwrap().is_err());
    }
}
