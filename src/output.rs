//! Printing: JSON lines, comfy-table, CSV. Knows how to print, never what.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Jsonl,
    Csv,
}

impl Format {
    /// The explicit choice, else a table on a terminal and JSON lines otherwise.
    pub fn resolve(choice: Option<Format>) -> Format {
        choice.unwrap_or(if io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Jsonl
        })
    }
}

/// Rows of cells, each cell both as JSON (for jsonl) and as display text (for table and CSV).
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
        match format {
            Format::Jsonl => {
                for row in &self.rows {
                    let obj: serde_json::Map<String, serde_json::Value> = self
                        .headers
                        .iter()
                        .cloned()
                        .zip(row.iter().cloned())
                        .collect();
                    writeln!(out, "{}", serde_json::Value::Object(obj))?;
                }
            }
            Format::Csv => {
                write_csv_row(out, self.headers.iter().map(String::as_str))?;
                for row in &self.rows {
                    let cells: Vec<String> = row.iter().map(cell_text).collect();
                    write_csv_row(out, cells.iter().map(String::as_str))?;
                }
            }
            Format::Table => {
                let mut t = Table::new();
                t.load_preset(UTF8_FULL_CONDENSED)
                    .set_content_arrangement(ContentArrangement::Dynamic);
                t.set_header(&self.headers);
                for row in &self.rows {
                    t.add_row(row.iter().map(|c| printable(&cell_text(c))));
                }
                writeln!(out, "{t}")?;
            }
        }
        Ok(())
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

/// Escapes control characters (C0, DEL, C1: `\u{1b}`, `\n`…) so that a hostile path cannot move the
/// cursor, clear the screen or break a table row on a terminal. Text without any is returned as is.
pub fn printable(s: &str) -> String {
    escape_controls(s).into_owned()
}

fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
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
        let cell = escape_controls(cell);
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

    #[test]
    fn table_escapes_control_bytes() {
        let mut rows = Rows::new(["p"]);
        rows.push(vec![json!("/tmp/a\u{1b}[2Jb\nc")]);
        let mut out = Vec::new();
        rows.write(Format::Table, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("\\u{1b}[2Jb\\nc"), "{s}");
    }
}
