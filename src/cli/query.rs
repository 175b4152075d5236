//! `query`: the events that match a rule and/or filters, or named SQL over history.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{load_rules, progress, report_scan, BadInput, TimeArgs, PROGRESS_STEP};
use crate::event::{format_ts, Event};
use crate::output::{cell_text, printable, write_csv_row, Format, Rows};
use crate::query::{self, QueryError, NAMED};
use crate::rules::{errno, Filter, RuleSet};
use crate::store::Reader;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only events that rule NAME matches (from the --rules files).
    #[arg(long, value_name = "NAME", requires = "rules")]
    pub rule: Option<String>,
    /// Rule files; without --rule, events that any of their rules matches.
    #[arg(long = "rules", value_name = "FILE", num_args = 1..)]
    pub rules: Vec<PathBuf>,
    /// Named SQL (`--sql list` lists them) or a .sql file, run over the events in the time range
    /// as table `events` (see the README for its columns).
    #[arg(long, value_name = "NAME|FILE", conflicts_with_all = ["rule", "rules", "pid", "ppid", "uid", "comm", "path", "failed", "exe", "container", "ancestor", "user"])]
    pub sql: Option<String>,
    /// Only these process ids (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub pid: Vec<u32>,
    /// Only these parent process ids.
    #[arg(long, value_delimiter = ',')]
    pub ppid: Vec<u32>,
    /// Only these user ids.
    #[arg(long, value_delimiter = ',')]
    pub uid: Vec<u32>,
    /// Only these process names (exact, or globs such as 'python*').
    #[arg(long, value_delimiter = ',')]
    pub comm: Vec<String>,
    /// Only paths matching: exact path, DIR/ for everything under DIR, or a glob ('*' within a
    /// component, '**' across).
    #[arg(long, value_name = "GLOB")]
    pub path: Vec<String>,
    /// Only opens that failed.
    #[arg(long)]
    pub failed: bool,
    /// Only opens by these executables (paths or globs, as --path; e.g. '/usr/bin/python*').
    #[arg(long, value_name = "GLOB")]
    pub exe: Vec<String>,
    /// Only opens in these containers (id or glob), or `host` for none.
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub container: Vec<String>,
    /// Only opens by a process and all its descendants: a pid, or an executable path or glob.
    #[arg(long, value_name = "PID|EXE")]
    pub ancestor: Option<String>,
    /// Only opens by these users (names, as recorded on the host).
    #[arg(long, value_delimiter = ',')]
    pub user: Vec<String>,
    #[command(flatten)]
    pub time: TimeArgs,
    /// At most this many events (or rows).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let format = Format::resolve(args.format);
    if let Some(sql) = &args.sql {
        return run_sql(store, sql, &args, format);
    }
    let filter = Filter {
        pid: args.pid.clone(),
        ppid: args.ppid.clone(),
        uid: args.uid.clone(),
        comm: args.comm.clone(),
        path: args.path.clone(),
        result: if args.failed {
            vec!["failure".to_owned()]
        } else {
            Vec::new()
        },
        exe: args.exe.clone(),
        container: args.container.clone(),
        user: args.user.clone(),
        ancestor: args.ancestor.clone(),
        ..Filter::default()
    };
    let filter_set = if filter.is_empty() {
        None
    } else {
        Some(RuleSet::from_filter("query", &filter).map_err(|e| BadInput(e.to_string()))?)
    };
    let rule_set = if args.rules.is_empty() {
        None
    } else {
        let set = load_rules(&args.rules)?;
        Some(match &args.rule {
            Some(name) => set
                .only(name)
                .map_err(|why| BadInput(format!("--rule {}: {why}", printable(name))))?,
            None => set,
        })
    };
    let range = args.time.range()?;
    let reader = Reader::open(store)?;
    let bar = progress(&reader, &range, "query");
    let mut filter_engine = filter_set.as_ref().map(RuleSet::engine);
    let mut rule_engine = rule_set.as_ref().map(RuleSet::engine);

    let mut out = super::stdout();
    let mut table = Rows::new(EVENT_COLUMNS.iter().copied());
    if format == Format::Csv {
        write_csv_row(&mut out, EVENT_COLUMNS.iter().copied())?;
    }
    let (mut seen, mut matched) = (0u64, 0u64);
    let mut io_err = None;
    let stats = reader.scan(&range, |ev| {
        seen += 1;
        if seen % PROGRESS_STEP == 0 {
            bar.inc(PROGRESS_STEP);
        }
        // Filters first: they are usually the more selective.
        if filter_engine.as_mut().is_some_and(|e| !e.matches(ev))
            || rule_engine.as_mut().is_some_and(|e| !e.matches(ev))
        {
            return ControlFlow::Continue(());
        }
        matched += 1;
        let r = match format {
            Format::Jsonl => writeln!(out, "{}", ev.to_json_line()),
            Format::Csv => {
                let cells: Vec<String> = event_values(ev).iter().map(cell_text).collect();
                write_csv_row(&mut out, cells.iter().map(String::as_str))
            }
            Format::Table => {
                table.push(event_values(ev));
                Ok(())
            }
        };
        if let Err(e) = r {
            io_err = Some(e);
            return ControlFlow::Break(());
        }
        if args.limit.is_some_and(|l| matched >= l) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    bar.finish_and_clear();
    if let Some(e) = io_err {
        return Err(e.into());
    }
    if format == Format::Table {
        table.write(Format::Table, &mut out)?;
    }
    out.flush()?;
    report_scan(&stats, &range, format == Format::Jsonl)
}

/// Columns of events in tables and CSV (JSON lines carry every field, as `export` does).
const EVENT_COLUMNS: &[&str] = &[
    "ts", "pid", "ppid", "uid", "comm", "exe", "syscall", "access", "result", "path",
];

fn event_values(e: &Event) -> Vec<serde_json::Value> {
    let result = errno::describe_ret(e.ret);
    vec![
        json!(format_ts(e.ts_ns)),
        json!(e.pid),
        json!(e.ppid),
        json!(e.uid),
        json!(e.comm.lossy()),
        json!(e
            .process
            .as_ref()
            .and_then(|p| p.exe.as_ref())
            .map(|x| x.lossy())),
        json!(e.syscall.as_str()),
        json!(crate::rules::access_names(e)),
        json!(result),
        json!(e.path.lossy()),
    ]
}

fn run_sql(store: &Path, arg: &str, args: &Args, format: Format) -> anyhow::Result<()> {
    let mut out = super::stdout();
    if arg == "list" {
        let mut rows = Rows::new(["name", "description"]);
        for (name, sql) in NAMED {
            rows.push(vec![json!(name), json!(query::describe(sql))]);
        }
        rows.write(format, &mut out)?;
        out.flush()?;
        return Ok(());
    }
    let (name, sql) = query::resolve(arg).map_err(|e| match e {
        QueryError::Unknown { .. } | QueryError::Io { .. } => {
            anyhow::Error::from(BadInput(format!("--sql: {e}")))
        }
        other => other.into(),
    })?;
    let range = args.time.range()?;
    let reader = Reader::open(store)?;
    let bar = progress(&reader, &range, "load");
    let mut seen = 0u64;
    let (conn, stats) = query::materialize(&reader, &range, || {
        seen += 1;
        if seen % PROGRESS_STEP == 0 {
            bar.inc(PROGRESS_STEP);
        }
    })?;
    bar.finish_and_clear();
    // A statement that does not prepare is the user's SQL to fix.
    let rows = query::run(&conn, &name, &sql, args.limit).map_err(|e| match e {
        QueryError::Sql { .. } => anyhow::Error::from(BadInput(e.to_string())),
        other => other.into(),
    })?;
    rows.write(format, &mut out)?;
    out.flush()?;
    report_scan(&stats, &range, format == Format::Jsonl)
}
