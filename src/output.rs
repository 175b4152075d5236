//! Printing: JSON lines, comfy-table, CSV. Knows how to print, never what.

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

/// Escapes control characters so that a hostile path cannot move the cursor, clear the screen or
/// break a table row on a terminal.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// RFC 4180: quote a field holding a comma, quote, CR or LF; double inner quotes.
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
        if cell.contains([',', '"', '\n', '\r']) {
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
        rows.push(vec![json!("x,\"y\"\nz"), json!(3)]);
        let mut out = Vec::new();
        rows.write(Format::Csv, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,b\r\n\"x,\"\"y\"\"\nz\",3\r\n"
        );
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
