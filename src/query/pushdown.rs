//! Constraints of a statement pushed into the `events` cursor: `col = value` and `col IN (…)` on
//! the columns below, checked on each decoded event before it is copied for SQLite, so that a
//! query about one path or one process does not hand SQLite every row of the range.
//!
//! A pushed constraint only ever drops rows SQLite would drop too: SQLite still checks every row
//! it is given (`omit` stays false), and where our comparison could differ from SQLite's — a
//! value of another type, which SQLite may convert by the column's affinity, or a collation other
//! than BINARY — the constraint keeps the row.
//!
//! The same constraints, where store summaries record the column, become the [`Need`] that
//! skips segments unread and blocks undecoded (`store::Summary`).

use rusqlite::types::Value;

use super::cells::{event_cell, Cell};
use crate::columns::Column;
use crate::event::{Event, Op};
use crate::need::{Key, Need, Term};

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

    /// What an event must have to satisfy every constraint, in the terms summaries answer:
    /// one alternative of a term per constraint they can judge (the others judge nothing).
    pub fn need(&self) -> Need {
        let terms: Vec<Term> = self
            .conds
            .iter()
            .filter_map(|(col, values)| term(*col, values))
            .collect();
        if terms.is_empty() {
            Need::all()
        } else {
            Need::any_of(vec![terms])
        }
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

/// The summary term `col IN values` implies, if summaries can judge it: every value must be of
/// the column's own type (another may match by affinity), and text must be plain UTF-8 (a
/// U+FFFD may stand for any bytes that are not). NULL matches nothing and adds no key.
fn term(col: Column, values: &[Value]) -> Option<Term> {
    let texts = || -> Option<Vec<&str>> {
        values
            .iter()
            .filter(|v| **v != Value::Null)
            .map(|v| match v {
                Value::Text(t) if !t.contains('\u{fffd}') => Some(t.as_str()),
                _ => None,
            })
            .collect()
    };
    let ids = || -> Option<Vec<u32>> {
        let mut out = Vec::new();
        for v in values {
            let n = match v {
                Value::Null => continue,
                Value::Integer(n) => *n,
                Value::Real(r) if r.fract() == 0.0 && r.abs() < 2f64.powi(62) => *r as i64,
                Value::Real(_) => continue,
                _ => return None,
            };
            // Outside u32 no pid or uid equals it.
            out.extend(u32::try_from(n).ok());
        }
        Some(out)
    };
    let keys = |key: fn(Box<[u8]>) -> Key| {
        texts().map(|ts| Term::AnyKey(ts.iter().map(|t| key(t.as_bytes().into())).collect()))
    };
    let result = |ok: bool, failed: bool| Term::Result { ok, failed };
    match col {
        // Summaries record path, old path and alias as one namespace.
        Column::Path | Column::OldPath => keys(Key::Path),
        Column::Exe => keys(Key::Exe),
        Column::ContainerId => keys(Key::Container),
        Column::Pid => ids().map(|ns| Term::AnyKey(ns.into_iter().map(Key::Pid).collect())),
        Column::Uid => ids().map(|ns| Term::AnyKey(ns.into_iter().map(Key::Uid).collect())),
        Column::Op => texts().map(|ts| {
            Term::Ops(ts.iter().filter_map(|t| Op::parse(t)).fold(0, |m, op| {
                m | 1u32.checked_shl(op.code().into()).unwrap_or(0)
            }))
        }),
        // `success` is every event with ret >= 0; any other result, and every errno, a failure.
        Column::Result => {
            texts().map(|ts| result(ts.contains(&"success"), ts.iter().any(|t| *t != "success")))
        }
        Column::Errno => texts().map(|ts| result(false, !ts.is_empty())),
        _ => None,
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
    fn summaries_judge_only_constraints_of_the_columns_own_type() {
        let text = |s: &str| Value::Text(s.into());
        let path = |p: &[u8]| Key::Path(p.into());
        let mut p = Pushed::default();
        p.push(Column::Path, vec![text("/a"), Value::Null, text("/b")]);
        p.push(Column::Pid, vec![Value::Integer(7), Value::Integer(-1)]);
        p.push(Column::Op, vec![text("open")]);
        p.push(Column::Result, vec![text("ENOENT")]);
        // Not judged: another type, U+FFFD, a column summaries lack.
        p.push(Column::Uid, vec![text("0")]);
        p.push(Column::Exe, vec![text("/bin/\u{fffd}")]);
        p.push(Column::Comm, vec![text("cat")]);
        assert_eq!(
            p.need(),
            Need::any_of(vec![vec![
                Term::AnyKey(vec![path(b"/a"), path(b"/b")]),
                Term::AnyKey(vec![Key::Pid(7)]),
                Term::Ops(1 << Op::Open.code()),
                Term::Result {
                    ok: false,
                    failed: true
                },
            ]])
        );
        let mut q = Pushed::default();
        q.push(Column::Comm, vec![text("cat")]);
        assert!(q.need().is_all());
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
