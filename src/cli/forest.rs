//! Printing a process forest (`proc --tree`, `query --tree`): drawn like `ps --forest` on a
//! terminal, one object per process as JSON lines, one row per process as CSV; what the caps cut
//! is said on stderr.

use std::io::Write;

use serde_json::{json, Value};

use super::say;
use crate::output::forest::{draw, Row};
use crate::output::{Format, Rows};
use crate::query::completeness::Statement;
use crate::query::tree::{Forest, Node};
use crate::text::printable;
use crate::timespec::format_ts;

/// The keys of a process's JSON line and the columns of its CSV row (docs/query.md).
const KEYS: &[&str] = &[
    "depth",
    "pid",
    "ppid",
    "start",
    "exit",
    "exit_code",
    "comm",
    "exe",
    "argv",
    "user",
    "uid",
    "container_id",
    "context",
    "opens",
    "failed",
    "writes",
    "operations",
    "matched",
    "alerts",
    "rules",
];

fn values(n: &Node) -> Vec<Value> {
    vec![
        json!(n.depth),
        json!(n.pid),
        json!(n.ppid),
        json!(format_ts(n.start_ns)),
        json!(n.exit_ns.map(format_ts)),
        json!(n.exit),
        json!(n.comm),
        json!(n.exe),
        json!(n.argv),
        json!(n.user),
        json!(n.uid),
        json!(n.container),
        json!(n.context),
        json!(n.opens),
        json!(n.failed),
        json!(n.writes),
        json!(n.operations),
        json!(n.matched),
        json!(n.alerts),
        json!(n.rules),
    ]
}

/// Which counts a drawn tree shows besides the process.
#[derive(Clone, Copy)]
pub enum Counts {
    /// Opens and failures, and alerts when a rule set ran.
    Activity { alerts: bool },
    /// The events a query matched, then opens.
    Matched,
}

/// The columns of a drawn tree.
fn header(counts: Counts) -> Vec<&'static str> {
    let mut h = vec!["PID", "USER"];
    match counts {
        Counts::Activity { alerts } => {
            h.extend(["OPENS", "FAILED", "OPS"]);
            if alerts {
                h.push("ALERTS");
            }
        }
        Counts::Matched => h.extend(["MATCHED", "OPENS"]),
    }
    h
}

fn row(n: &Node, counts: Counts) -> Row {
    let num = |v: u64| {
        if n.context {
            String::new()
        } else {
            v.to_string()
        }
    };
    let user = n.user.clone().unwrap_or_else(|| n.uid.to_string());
    let mut cells = vec![n.pid.to_string(), printable(&user)];
    match counts {
        Counts::Activity { alerts } => {
            cells.extend([num(n.opens), num(n.failed), num(n.operations)]);
            if alerts {
                cells.push(num(n.alerts));
            }
        }
        Counts::Matched => cells.extend([num(n.matched), num(n.opens)]),
    }
    // The exe's full path (its name when unknown), then argv after argv[0].
    let mut label = printable(n.exe.as_deref().unwrap_or(&n.comm));
    for a in n.argv.iter().skip(1) {
        label.push(' ');
        label.push_str(&printable(a));
    }
    if let Some(rules) = Some(&n.rules).filter(|r| !r.is_empty()) {
        label.push_str(&format!("  [{}]", rules.join(", ")));
    }
    Row {
        depth: n.depth,
        cells,
        label,
    }
}

/// Prints `forest` in `format` (`width` columns for a drawn tree).
pub fn print(
    out: &mut dyn Write,
    format: Format,
    forest: &Forest,
    counts: Counts,
    width: usize,
) -> std::io::Result<()> {
    match format {
        Format::Table => {
            let rows: Vec<Row> = forest.nodes.iter().map(|n| row(n, counts)).collect();
            draw(out, &header(counts), &rows, width)
        }
        Format::Jsonl | Format::Csv => {
            let mut rows = Rows::new(KEYS.iter().copied());
            for n in &forest.nodes {
                rows.push(values(n));
            }
            rows.write(format, out)
        }
    }
}

/// Says on stderr what the cap left out, if anything.
pub fn report_cut(forest: &Forest, cap: usize, json: bool) {
    if forest.cut.processes == 0 {
        return;
    }
    let shown = forest.nodes.len();
    let cut = forest.cut.processes;
    say(
        &mut std::io::stderr().lock(),
        json,
        &Statement {
            json: json!({"notice": "tree_cut", "shown": shown, "cut": cut, "max_processes": cap}),
            text: format!(
                "notice: the tree shows its first {shown} processes; {cut} more were left out (raise --max-processes {cap}, or narrow the range)"
            ),
        },
    );
}

/// The terminal's width: `COLUMNS`, else the terminal's own, else 100.
pub fn width() -> usize {
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
    {
        return c;
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ only fills the winsize struct it is given.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        100
    }
}
