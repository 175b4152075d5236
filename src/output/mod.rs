//! Printing: JSON lines, tables that fit the terminal (`table`), CSV, Parquet files
//! (`parquet`), alert lines for a terminal (`alert_line`), other tools' formats (`foreign`: `ocsf`,
//! `ecs`, `timesketch`). Knows how to print, never what.

pub mod alert_line;
pub mod clock;
pub mod colour;
pub mod ecs;
pub mod foreign;
pub mod forest;
pub mod histogram;
mod mapping;
pub mod ocsf;
pub mod parquet;
pub mod table;
pub mod timesketch;
pub mod view;

use std::io::{self, IsTerminal, Write};

use comfy_table::{
    presets::UTF8_FULL_CONDENSED, ColumnConstraint, ContentArrangement, Table, Width,
};

use table::Layout;
use view::View;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Jsonl,
    Csv,
}

impl Format {
    /// The explicit choice, else a table on a terminal and JSON lines otherwise
    /// ([`View::format`] for a command with the display flags).
    pub fn resolve(choice: Option<Format>) -> Format {
        View::detect().format(choice)
    }
}

/// Rows of cells, each cell both as JSON (for jsonl) and as display text (for table and CSV). For
/// small answers that are built whole (`--sql list`, `proc`); answers read from history go through
/// [`RowWriter`], which holds at most one page.
pub struct Rows {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl Rows {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Rows {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<serde_json::Value>) {
        self.rows.push(row);
    }

    pub fn write(&self, format: Format, out: &mut dyn Write) -> io::Result<()> {
        self.write_view(format, &View::detect(), out)
    }

    /// [`Rows::write`] for a view the command's flags chose.
    pub fn write_view(&self, format: Format, view: &View, out: &mut dyn Write) -> io::Result<()> {
        // One page holds every row: a table built whole keeps one set of column widths.
        let mut w = RowWriter::new(format, self.headers.clone(), out)?
            .view(*view)
            .page_rows(self.rows.len().max(1));
        for row in &self.rows {
            w.push(row.clone())?;
        }
        w.finish()
    }
}

/// Rows of a table page: enough to fill a few screens, few enough that a page of wide rows stays
/// a few hundred kilobytes.
pub const PAGE_ROWS: usize = 1000;

/// Writes rows as they come: JSON lines and CSV row by row, a table page by page (at most
/// [`PAGE_ROWS`] rows held), every page with the header, the columns and the column widths of
/// the first, so that the pages read as one table in a pager. Memory is one page, whatever the
/// answer's size. A table's layout (what fits, how times read) is decided on its first page; off
/// a terminal, or on one narrower than [`table::MIN_TABLE_WIDTH`], it is one record per block.
pub struct RowWriter<'a> {
    format: Format,
    headers: Vec<String>,
    out: &'a mut dyn Write,
    page: Vec<Vec<serde_json::Value>>,
    page_rows: usize,
    /// The widths the first page was drawn with (characters, padding included).
    widths: Option<Vec<u16>>,
    rows: u64,
    view: View,
    /// The answer's time span (ns), when the caller knows it: times read for it.
    span: Option<(i64, i64)>,
    layout: Option<Layout>,
}

impl<'a> RowWriter<'a> {
    /// Starts the output (the CSV header line is written here, a table's with each page).
    pub fn new(format: Format, headers: Vec<String>, out: &'a mut dyn Write) -> io::Result<Self> {
        if format == Format::Csv {
            write_csv_row(out, headers.iter().map(String::as_str))?;
        }
        Ok(RowWriter {
            format,
            headers,
            out,
            page: Vec::new(),
            page_rows: PAGE_ROWS,
            widths: None,
            rows: 0,
            view: View::detect(),
            span: None,
            layout: None,
        })
    }

    /// Lays a table out for this view (default: [`View::detect`]).
    pub fn view(mut self, view: View) -> Self {
        self.view = view;
        self
    }

    /// The answer's times lie from `lo` to `hi` (ns): a table's times are as short as that
    /// allows (default: the first page's span).
    pub fn span(mut self, lo: i64, hi: i64) -> Self {
        self.span = Some((lo, hi));
        self
    }

    /// Rows per table page (at least 1).
    pub fn page_rows(mut self, n: usize) -> Self {
        self.page_rows = n.max(1);
        self
    }

    /// Rows written or held so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Rows held in memory, not yet written (at most one page).
    pub fn held(&self) -> usize {
        self.page.len()
    }

    pub fn push(&mut self, row: Vec<serde_json::Value>) -> io::Result<()> {
        self.rows += 1;
        match self.format {
            Format::Jsonl => {
                let obj: serde_json::Map<String, serde_json::Value> =
                    self.headers.iter().cloned().zip(row).collect();
                writeln!(self.out, "{}", serde_json::Value::Object(obj))
            }
            Format::Csv => {
                let cells: Vec<String> = row.iter().map(cell_text).collect();
                write_csv_row(self.out, cells.iter().map(String::as_str))
            }
            Format::Table => {
                self.page.push(row);
                if self.page.len() >= self.page_rows {
                    self.flush_page()?;
                }
                Ok(())
            }
        }
    }

    /// One line as is (a row its producer already formatted, e.g. an event's full JSON line).
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        self.rows += 1;
        writeln!(self.out, "{line}")
    }

    /// Writes what is held; a table with no rows at all still prints its header.
    pub fn finish(mut self) -> io::Result<()> {
        if self.format == Format::Table && (!self.page.is_empty() || self.rows == 0) {
            self.flush_page()?;
        }
        self.out.flush()
    }

    fn flush_page(&mut self) -> io::Result<()> {
        let layout = self.layout.get_or_insert_with(|| {
            let l = Layout::new(&self.headers, &self.page, &self.view, self.span);
            if !l.dropped.is_empty() {
                eprintln!(
                    "open-forensics: note: left out to fit {} columns: {} (--wide shows every column)",
                    self.view.width,
                    l.dropped.join(", ")
                );
            }
            l
        });
        if layout.record {
            for row in self.page.drain(..) {
                layout.write_record(&self.headers, &row, self.out)?;
            }
            return Ok(());
        }
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(layout.shown_headers(&self.headers));
        for row in self.page.drain(..) {
            t.add_row(layout.shown_cells(&row));
        }
        match &self.widths {
            Some(widths) => {
                t.set_constraints(
                    widths
                        .iter()
                        .map(|w| ColumnConstraint::Absolute(Width::Fixed(*w))),
                );
            }
            // `--wide`: cells whole, as wide as they are (a pager scrolls sideways).
            None if self.view.wide => {
                t.set_content_arrangement(ContentArrangement::Disabled);
            }
            None => {
                t.set_content_arrangement(ContentArrangement::Dynamic)
                    .set_width(self.view.width)
                    .set_constraints(
                        layout
                            .widths
                            .iter()
                            .map(|w| ColumnConstraint::Absolute(Width::Fixed(w + 2))),
                    );
            }
        }
        let text = t.to_string();
        if self.widths.is_none() {
            self.widths = Some(drawn_widths(&text));
        }
        writeln!(self.out, "{text}")
    }
}

/// The widths of the columns of a drawn table, read off its top border (`┌──┬───┐`): comfy-table
/// decides them while drawing and does not expose them.
fn drawn_widths(table: &str) -> Vec<u16> {
    let top = table.lines().next().unwrap_or_default();
    let inner = top.trim_start_matches('┌').trim_end_matches('┐').to_owned();
    inner
        .split('┬')
        .map(|s| u16::try_from(s.chars().count()).unwrap_or(u16::MAX))
        .collect()
}

/// Where a command's answer goes: stdout, or a pager reading it when stdout is a terminal.
///
/// The pager is `$PAGER` (run by `sh -c`, as git does; empty or `cat` means none), else
/// `less -FRSX` (quit if one screen, keep colours, chop long lines, leave the screen as it was).
/// `LESS` defaults to `FRSX` for a bare `less`. A pager that cannot be started is not an error:
/// the answer goes to stdout, with a warning when `$PAGER` named it.
pub struct Output {
    inner: Option<io::BufWriter<Box<dyn Write>>>,
    pager: Option<std::process::Child>,
}

impl Output {
    /// Stdout, through a pager when `page` and stdout is a terminal.
    pub fn open(page: bool) -> Output {
        let stdout = || Output {
            inner: Some(io::BufWriter::with_capacity(
                1 << 16,
                Box::new(io::stdout().lock()),
            )),
            pager: None,
        };
        if !page || !io::stdout().is_terminal() {
            return stdout();
        }
        let from_env = std::env::var("PAGER").ok();
        let (mut c, cmd) = match from_env.as_deref().map(str::trim) {
            Some("") | Some("cat") => return stdout(),
            Some(p) => {
                let mut c = std::process::Command::new("sh");
                c.arg("-c").arg(p);
                (c, p.to_owned())
            }
            // Run directly, not through sh: where `less` is not installed the spawn fails and
            // the answer goes to stdout, instead of into a shell saying "not found".
            None => {
                let mut c = std::process::Command::new("less");
                c.arg("-FRSX");
                (c, "less -FRSX".to_owned())
            }
        };
        c.stdin(std::process::Stdio::piped());
        if std::env::var_os("LESS").is_none() {
            c.env("LESS", "FRSX");
        }
        match c.spawn() {
            Ok(mut child) => match child.stdin.take() {
                Some(stdin) => Output {
                    inner: Some(io::BufWriter::with_capacity(1 << 16, Box::new(stdin))),
                    pager: Some(child),
                },
                None => stdout(),
            },
            Err(e) => {
                if from_env.is_some() {
                    eprintln!("open-forensics: warning: pager {cmd:?} did not start: {e}");
                }
                stdout()
            }
        }
    }

    /// Whether a pager holds the terminal (progress bars then stay hidden).
    pub fn paging(&self) -> bool {
        self.pager.is_some()
    }

    /// Flushes, then waits for the pager to exit (the user read to the end or quit).
    pub fn finish(mut self) -> io::Result<()> {
        let r = match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        };
        self.close();
        r
    }

    fn close(&mut self) {
        drop(self.inner.take());
        if let Some(mut child) = self.pager.take() {
            let _ = child.wait();
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.as_mut() {
            Some(w) => w.write(buf),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Output {
    /// Even on an error the pager is waited for: a shell prompt under a running `less` garbles
    /// the terminal.
    fn drop(&mut self) {
        self.close();
    }
}

/// The display text of a JSON cell: strings unquoted, null empty.
pub fn cell_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One CSV row (RFC 4180: a field holding a comma or a quote is quoted, inner quotes doubled).
///
/// Control characters are escaped as `printable` does, always (not only when stdout is a
/// terminal): CSV is read on terminals (`cat`, `less -r`) as often as in spreadsheets, and the
/// output should not depend on where it goes. CR and LF are escaped too, so a row is one line and
/// the file stays parseable by line-oriented tools; a cell's exact bytes are in `--format jsonl`.
pub fn write_csv_row<'a>(
    out: &mut dyn Write,
    cells: impl Iterator<Item = &'a str>,
) -> io::Result<()> {
    let mut first = true;
    for cell in cells {
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        let cell = crate::text::escape_controls(cell);
        if cell.contains([',', '"']) {
            write!(out, "\"{}\"", cell.replace('"', "\"\""))?;
        } else {
            out.write_all(cell.as_bytes())?;
        }
    }
    out.write_all(b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A terminal 100 columns wide (tests' stdout is not one).
    fn terminal() -> View {
        View {
            terminal: true,
            width: 100,
            utc: true,
            wide: false,
            colour: false,
            page: false,
        }
    }

    #[test]
    fn csv_quotes_hostile_cells() {
        let mut rows = Rows::new(["a", "b"]);
        rows.push(vec![json!("x,\"y\"z"), json!(3)]);
        let mut out = Vec::new();
        rows.write(Format::Csv, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,b\r\n\"x,\"\"y\"\"z\",3\r\n"
        );
    }

    /// Issue #9: `--format csv` wrote ESC and BEL raw to the terminal.
    #[test]
    fn csv_escapes_control_characters() {
        let mut rows = Rows::new(["p", "n"]);
        rows.push(vec![json!("/tmp/a\u{1b}[2J\u{7}b\r\nc,\u{9b}d"), json!(1)]);
        let mut out = Vec::new();
        rows.write(Format::Csv, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "p,n\r\n\"/tmp/a\\u{1b}[2J\\u{7}b\\r\\nc,\\u{9b}d\",1\r\n"
        );
        // Parseable: one line per row, and the same cells back (unquoted).
        assert_eq!(s.split("\r\n").count(), 3);
        assert!(!s.chars().any(|c| c.is_control() && c != '\r' && c != '\n'));
    }

    /// A `Write` that counts what reached it.
    struct Counting(std::rc::Rc<std::cell::Cell<usize>>);
    impl Write for Counting {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.set(self.0.get() + buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Issue #11: a table held every row until the end. It holds at most one page, and each page
    /// is written as soon as it is full.
    #[test]
    fn table_holds_at_most_one_page() {
        let written = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut sink = Counting(written.clone());
        let mut w = RowWriter::new(Format::Table, vec!["n".into(), "path".into()], &mut sink)
            .unwrap()
            .view(terminal())
            .page_rows(10);
        for i in 0..35 {
            w.push(vec![json!(i), json!(format!("/p/{i}"))]).unwrap();
            assert!(w.held() <= 10, "{} rows held", w.held());
            if i == 9 {
                assert!(written.get() > 0, "a full page is written at once");
            }
        }
        assert_eq!(w.held(), 5);
        w.finish().unwrap();
        assert!(written.get() > 0);
    }

    /// Pages read as one table: every page has the first page's column widths, even when a later
    /// row is wider (it wraps within the width).
    #[test]
    fn table_pages_keep_the_first_pages_widths() {
        let mut out = Vec::new();
        let mut w = RowWriter::new(Format::Table, vec!["n".into(), "path".into()], &mut out)
            .unwrap()
            .view(terminal())
            .page_rows(3);
        for i in 0..7 {
            let path = if i == 5 {
                "/a/much/longer/path/than/the/first/page/had".to_owned()
            } else {
                format!("/p/{i}")
            };
            w.push(vec![json!(i), json!(path)]).unwrap();
        }
        w.finish().unwrap();
        let s = String::from_utf8(out).unwrap();
        let widths: std::collections::BTreeSet<usize> =
            s.lines().map(|l| l.chars().count()).collect();
        assert_eq!(widths.len(), 1, "{s}");
        assert_eq!(s.matches("┌").count(), 3, "{s}");
        assert!(s.contains("/p/6"), "{s}");
    }

    #[test]
    fn jsonl_and_csv_hold_nothing() {
        for format in [Format::Jsonl, Format::Csv] {
            let mut out = Vec::new();
            let mut w = RowWriter::new(format, vec!["a".into()], &mut out).unwrap();
            for i in 0..5 {
                w.push(vec![json!(i)]).unwrap();
                assert_eq!(w.held(), 0);
            }
            w.finish().unwrap();
        }
    }

    #[test]
    fn table_escapes_control_bytes() {
        let mut rows = Rows::new(["p"]);
        rows.push(vec![json!("/tmp/a\u{1b}[2Jb\nc")]);
        for view in [
            terminal(),
            View {
                terminal: false,
                ..terminal()
            },
        ] {
            let mut out = Vec::new();
            rows.write_view(Format::Table, &view, &mut out).unwrap();
            let s = String::from_utf8(out).unwrap();
            assert!(s.contains("\\u{1b}[2Jb\\nc"), "{s}");
        }
    }
}
