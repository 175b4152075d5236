//! Tables that fit the terminal: compact cells (short local times, exe basenames), columns left
//! out by rank until the rest fit, `--wide` for all; below a usable width, or off a terminal, one
//! record per block (`key: value` lines, as `journalctl -o verbose`).

use std::io::{self, Write};

use serde_json::Value;

use super::cell_text;
use super::clock::Clock;
use super::view::View;
use crate::text::printable;
use crate::timespec::parse_ts;

/// Below this many columns a table does not read: one record per block instead.
pub const MIN_TABLE_WIDTH: u16 = 60;

/// Columns that hold times (the views' names, and `segments`' first and last).
const TIME_NAMES: &[&str] = &[
    "ts",
    "proc_start",
    "start",
    "exec_ts",
    "exec",
    "parent_start",
    "exit_ts",
    "exit",
    "end",
    "first",
    "last",
];

/// Columns that hold an executable's path: its basename in a table, unless `--wide`.
const EXE_NAMES: &[&str] = &["exe", "parent_exe"];

/// Columns kept longest when not all fit, most useful first. Columns not named here (an SQL
/// answer's own) rank below them in their order, and [`RANK_LAST`] below all.
const RANK: &[&str] = &[
    "path", "ts", "rule", "name", "severity", "op", "pid", "exe", "comm", "result", "old_path",
    "matched", "access", "user", "status", "events", "uid", "ppid",
];

/// Left out first: the syscall says less than the op beside it; the rest are in JSON lines.
const RANK_LAST: &[&str] = &["syscall", "event", "tid", "gid", "raw_path", "flags", "ret"];

/// A table cell narrower than this wraps too much to read (paths: [`MIN_PATH_CELL`]).
const MIN_CELL: usize = 12;
const MIN_PATH_CELL: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Time,
    Exe,
    Text,
}

/// A column's kind by its name; an answer's own columns (SQL's `first_seen`) are times when
/// every value of the first page is one.
fn kind(name: &str, i: usize, first: &[Vec<Value>]) -> Kind {
    let values = || {
        first
            .iter()
            .filter_map(|r| r.get(i))
            .filter(|v| !v.is_null())
    };
    let all_times =
        values().next().is_some() && values().all(|v| v.as_str().and_then(parse_ts).is_some());
    if TIME_NAMES.contains(&name) || all_times {
        Kind::Time
    } else if EXE_NAMES.contains(&name) {
        Kind::Exe
    } else {
        Kind::Text
    }
}

/// Higher stays longer.
fn rank(name: &str, position: usize) -> i64 {
    if let Some(r) = RANK.iter().position(|n| *n == name) {
        return 10_000 - r as i64;
    }
    if let Some(r) = RANK_LAST.iter().position(|n| *n == name) {
        return -10_000 - r as i64;
    }
    -(position as i64)
}

/// How an answer's rows are shown, decided from its first page (later pages keep it).
pub struct Layout {
    /// One record per block instead of a table.
    pub record: bool,
    /// The columns a table shows, in order.
    shown: Vec<usize>,
    kinds: Vec<Kind>,
    clock: Clock,
    wide: bool,
    /// The width of each shown column's text (empty with `--wide`: as wide as they are).
    pub widths: Vec<u16>,
    /// Left out to fit (their names).
    pub dropped: Vec<String>,
}

impl Layout {
    /// The layout of `headers` for a view, from the first page's rows; times are shown for the
    /// span `span` (ns) when the caller knows it, else for the page's own.
    pub fn new(
        headers: &[String],
        first: &[Vec<Value>],
        view: &View,
        span: Option<(i64, i64)>,
    ) -> Layout {
        let kinds: Vec<Kind> = (0..headers.len())
            .map(|i| kind(&headers[i], i, first))
            .collect();
        let span = span
            .or_else(|| page_span(&kinds, first))
            .unwrap_or_else(|| {
                let now = crate::timespec::now_ns();
                (now, now)
            });
        let mut l = Layout {
            record: !view.terminal || view.width < MIN_TABLE_WIDTH,
            shown: (0..headers.len()).collect(),
            kinds,
            clock: Clock::for_span(view.utc, span.0, span.1),
            wide: view.wide,
            widths: Vec::new(),
            dropped: Vec::new(),
        };
        if l.record {
            return l;
        }
        let texts: Vec<String> = l.headers(headers);
        let natural: Vec<usize> = (0..headers.len())
            .map(|i| {
                first
                    .iter()
                    .map(|r| {
                        printable(&l.cell(i, r.get(i).unwrap_or(&Value::Null)))
                            .chars()
                            .count()
                    })
                    .max()
                    .unwrap_or(0)
                    .max(texts[i].chars().count())
            })
            .collect();
        // Times and numbers are never wrapped; text may wrap down to a floor.
        let whole = |i: usize| {
            l.kinds[i] == Kind::Time
                || first
                    .iter()
                    .all(|r| r.get(i).is_none_or(|v| v.is_number() || v.is_null()))
        };
        let mins: Vec<usize> = (0..headers.len())
            .map(|i| {
                let floor = if whole(i) {
                    natural[i]
                } else if headers[i].contains("path") {
                    MIN_PATH_CELL
                } else {
                    MIN_CELL
                };
                natural[i].min(floor.max(texts[i].chars().count()))
            })
            .collect();
        let empty = |i: usize| {
            first
                .iter()
                .all(|r| r.get(i).is_none_or(|v| cell_text(v).is_empty()))
        };
        // Borders and padding: `│ a │ b │` is 3 per column and 1.
        let drawn = |shown: &[usize]| shown.iter().map(|&i| mins[i] + 3).sum::<usize>() + 1;
        if !view.wide {
            while drawn(&l.shown) > usize::from(view.width) && l.shown.len() > 1 {
                let (at, _) = l
                    .shown
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, &i)| (!empty(i), rank(&headers[i], i)))
                    .expect("more than one column");
                let i = l.shown.remove(at);
                l.dropped.push(headers[i].clone());
            }
        }
        l.widths = if view.wide {
            Vec::new()
        } else {
            allot(&l.shown, &mins, &natural, usize::from(view.width), |i| {
                rank(&headers[i], i)
            })
        };
        l
    }

    /// The headers of every column (a time column's names its day when it can).
    fn headers(&self, headers: &[String]) -> Vec<String> {
        headers
            .iter()
            .zip(&self.kinds)
            .map(|(h, k)| match k {
                Kind::Time => self.clock.header(h),
                _ => h.clone(),
            })
            .collect()
    }

    /// The headers a table shows.
    pub fn shown_headers(&self, headers: &[String]) -> Vec<String> {
        let all = self.headers(headers);
        self.shown.iter().map(|&i| all[i].clone()).collect()
    }

    /// The cells a table shows of `row`, escaped.
    pub fn shown_cells(&self, row: &[Value]) -> Vec<String> {
        self.shown
            .iter()
            .map(|&i| printable(&self.cell(i, row.get(i).unwrap_or(&Value::Null))))
            .collect()
    }

    /// Column `i`'s cell as a table shows it (not yet escaped).
    fn cell(&self, i: usize, v: &Value) -> String {
        match (self.kinds[i], v) {
            (Kind::Time, Value::String(s)) => {
                parse_ts(s).map_or_else(|| s.clone(), |ns| self.clock.short(ns))
            }
            (Kind::Exe, Value::String(s)) if !self.wide => basename(s).to_owned(),
            _ => cell_text(v),
        }
    }

    /// One record as a block: a `name: value` line for each column with a value (times in full,
    /// paths whole), then a blank line.
    pub fn write_record(
        &self,
        headers: &[String],
        row: &[Value],
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let pad = headers.iter().map(|h| h.chars().count()).max().unwrap_or(0);
        for (i, h) in headers.iter().enumerate() {
            let v = row.get(i).unwrap_or(&Value::Null);
            let text = match (self.kinds[i], v) {
                (Kind::Time, Value::String(s)) => {
                    parse_ts(s).map_or_else(|| s.clone(), |ns| self.clock.full(ns))
                }
                _ => cell_text(v),
            };
            if !text.is_empty() {
                writeln!(out, "{h:>pad$}: {}", printable(&text))?;
            }
        }
        writeln!(out)
    }
}

/// The text widths of the `shown` columns in `width`: each its minimum, then the space left to
/// the columns that then fit whole, narrowest first, then to the rest by rank.
fn allot(
    shown: &[usize],
    mins: &[usize],
    natural: &[usize],
    width: usize,
    rank: impl Fn(usize) -> i64,
) -> Vec<u16> {
    let mut w: Vec<usize> = shown.iter().map(|&i| mins[i]).collect();
    let drawn = w.iter().map(|x| x + 3).sum::<usize>() + 1;
    let mut left = width.saturating_sub(drawn);
    let mut order: Vec<usize> = (0..shown.len()).collect();
    order.sort_by_key(|&k| natural[shown[k]] - w[k]);
    for &k in &order {
        let want = natural[shown[k]] - w[k];
        if want <= left {
            w[k] += want;
            left -= want;
        }
    }
    order.sort_by_key(|&k| std::cmp::Reverse(rank(shown[k])));
    for &k in &order {
        let more = (natural[shown[k]] - w[k]).min(left);
        w[k] += more;
        left -= more;
    }
    w.into_iter()
        .map(|x| u16::try_from(x).unwrap_or(u16::MAX))
        .collect()
}

/// The last component of a path (`/usr/bin/cat` → `cat`; `/tmp/x (deleted)` → `x (deleted)`).
fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The earliest and latest time in a page's time columns.
fn page_span(kinds: &[Kind], rows: &[Vec<Value>]) -> Option<(i64, i64)> {
    let times = rows.iter().flat_map(|r| {
        r.iter()
            .zip(kinds)
            .filter(|(_, k)| **k == Kind::Time)
            .filter_map(|(v, _)| v.as_str().and_then(parse_ts))
    });
    times.fold(None, |acc, t| match acc {
        None => Some((t, t)),
        Some((lo, hi)) => Some((lo.min(t), hi.max(t))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(width: u16, wide: bool) -> View {
        View {
            terminal: true,
            width,
            utc: true,
            wide,
            colour: false,
            page: false,
        }
    }

    fn headers() -> Vec<String> {
        [
            "ts", "pid", "ppid", "uid", "comm", "exe", "syscall", "op", "access", "result", "path",
            "old_path",
        ]
        .map(String::from)
        .to_vec()
    }

    fn row() -> Vec<Value> {
        vec![
            json!("2025-12-06T14:30:15.123456789Z"),
            json!(4242),
            json!(1),
            json!(0),
            json!("cat"),
            json!("/usr/bin/cat"),
            json!("openat"),
            json!("open"),
            json!("read"),
            json!("fd 3"),
            json!("/etc/shadow"),
            Value::Null,
        ]
    }

    #[test]
    fn columns_are_left_out_by_rank_until_the_rest_fit() {
        let l = Layout::new(&headers(), &[row()], &view(80, false), None);
        assert!(!l.record);
        // The empty column first, then the syscall.
        assert_eq!(l.dropped[..2], ["old_path", "syscall"]);
        assert!(l.shown_headers(&headers()).contains(&"path".to_owned()));
        let drawn: usize = l.widths.iter().map(|w| usize::from(*w) + 3).sum::<usize>() + 1;
        assert!(drawn <= 80, "{drawn}");
        let cells = l.shown_cells(&row());
        assert!(cells.contains(&"14:30:15.123".to_owned()), "{cells:?}");
        assert!(cells.contains(&"cat".to_owned()), "{cells:?}");
        assert!(!cells.contains(&"/usr/bin/cat".to_owned()), "{cells:?}");
    }

    #[test]
    fn wide_keeps_every_column_and_whole_paths() {
        let l = Layout::new(&headers(), &[row()], &view(80, true), None);
        assert!(l.dropped.is_empty());
        assert!(l.shown_cells(&row()).contains(&"/usr/bin/cat".to_owned()));
    }

    #[test]
    fn narrow_terminals_and_pipes_get_one_record_per_block() {
        for v in [
            view(59, false),
            View {
                terminal: false,
                ..view(200, false)
            },
        ] {
            let l = Layout::new(&headers(), &[row()], &v, None);
            assert!(l.record);
            let mut out = Vec::new();
            l.write_record(&headers(), &row(), &mut out).unwrap();
            let s = String::from_utf8(out).unwrap();
            assert!(
                s.contains("      ts: 2025-12-06 14:30:15.123456789 +00:00\n"),
                "{s}"
            );
            assert!(s.contains("     exe: /usr/bin/cat\n"), "{s}");
            assert!(!s.contains("old_path"), "{s}");
            assert!(s.ends_with("\n\n"), "{s}");
        }
    }
}
