//! Constraints of a statement pushed into the `events` cursor: `col = value` and `col IN (…)` on
//! the columns below, checked on each decoded event before it is copied for SQLite, so that a
//! query about one path or one process does not hand SQLite every row of the range.
//!
//! A pushed constraint only ever drops rows SQLite would drop too: SQLite still checks every row
//! it is given (`omit` stays false), and where our comparison could differ from SQLite's — a
//! value of another type, which SQLite may convert by the column's affinity, or a collation other
//! than BINARY — the constraint keeps the row.

use rusqlite::types::Value;

use super::cells::{event_cell, Cell};
use crate::columns::Column;
use crate::event::Event;

/// The columns whose constraints are pushed: what analysts filter on (and cheap to compare).
pub(crate) const PUSHABLE: &[Column] = &[
    Column::Path,
    Column::OldPath,
    Column::RawPath,
    Column::Comm,
    Column::Op,
    Column::Syscall,
    Column::Result,
    Column::Errno,
    Column::Ret,
    Column::Pid,
    Column::Tid,
    Column::Ppid,
    Column::Uid,
    Column::Gid,
    Column::Euid,
    Column::Egid,
    Column::Auid,
    Column::User,
    Column::Exe,
    Column::ParentExe,
    Column::ContainerId,
    Column::Image,
];

/// The pushed constraints of one scan: each column's allowed values (an `=` is a list of one).
#[derive(Debug, Default)]
pub(crate) struct Pushed {
    conds: Vec<(Column, Vec<Value>)>,
}

impl Pushed {
    pub fn push(&mut self, col: Column, values: Vec<Value>) {
        self.conds.push((col, values));
    }

    /// Whether SQLite might keep event `e` (at `seq`): false only when some constraint surely
    /// fails.
    pub fn admits(&self, seq: i64, e: &Event) -> bool {
        self.conds.iter().all(|(col, values)| {
            let cell = event_cell(seq, e, *col);
            values.iter().any(|v| may_equal(&cell, v))
        })
    }
}

/// Whether `cell = v` may hold in SQLite: exact for values of the cell's own type, true (keep the
/// row, SQLite decides) for any other.
fn may_equal(cell: &Cell<'_>, v: &Value) -> bool {
    match (cell, v) {
        // `x = NULL` and `NULL = x` are never true.
        (Cell::Null, _) | (_, Value::Null) => false,
        (Cell::Int(a), Value::Integer(b)) => a == b,
        // An integral real equals the same integer; any other never does.
        (Cell::Int(a), Value::Real(r)) => {
            r.fract() == 0.0 && *r >= -(2f64.powi(63)) && *r < 2f64.powi(63) && *a == *r as i64
        }
        (Cell::Text(a), Value::Text(b)) => a == b,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Str;

    fn ev(path: &str, pid: u32) -> Event {
        Event {
            path: Str::from(path),
            pid,
            ..Event::default()
        }
    }

    #[test]
    fn pushed_constraints_drop_only_rows_that_surely_fail() {
        let mut p = Pushed::default();
        p.push(
            Column::Path,
            vec![Value::Text("/a".into()), Value::Text("/b".into())],
        );
        assert!(p.admits(0, &ev("/a", 1)));
        assert!(p.admits(0, &ev("/b", 1)));
        assert!(!p.admits(0, &ev("/c", 1)));
        p.push(Column::Pid, vec![Value::Real(7.0)]);
        assert!(p.admits(0, &ev("/a", 7)));
        assert!(!p.admits(0, &ev("/a", 8)));
    }

    #[test]
    fn values_of_another_type_keep_the_row_and_null_drops_it() {
        let keep = [
            (Cell::Int(5), Value::Text("5".into())),
            (Cell::Text("5".into()), Value::Integer(5)),
            (Cell::Text("x".into()), Value::Blob(b"x".to_vec())),
        ];
        for (c, v) in keep {
            assert!(may_equal(&c, &v), "{c:?} {v:?}");
        }
        assert!(!may_equal(&Cell::Null, &Value::Text("x".into())));
        assert!(!may_equal(&Cell::Int(1), &Value::Null));
        assert!(!may_equal(&Cell::Int(1), &Value::Real(1.5)));
        assert!(!may_equal(&Cell::Int(i64::MAX), &Value::Real(1e300)));
    }
}
