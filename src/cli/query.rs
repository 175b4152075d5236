//! `query`: the events that match a rule and/or filters, or named SQL over history.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use clap::Args as _;
use serde_json::json;

use super::forest::{self, Counts};
use super::{load_rules, progress, report_scan, BadInput, TimeArgs, PROGRESS_STEP};
use crate::columns::Column;
use crate::errno;
use crate::event::Event;
use crate::need::Need;
use crate::output::view::{View, ViewArgs};
use crate::output::{Format, Output, RowWriter, Rows};
use crate::query::tree::{self, Builder, Caps, Pick, Scope};
use crate::query::{self, QueryError, NAMED};
use crate::rules::{access_names, Filter, RuleSet};
use crate::store::Reader;
use crate::text::printable;
use crate::timespec::format_ts;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only events that rule NAME matches (from the --rules files).
    #[arg(long, value_name = "NAME", requires = "rules")]
    pub rule: Option<String>,
    /// Rule files; without --rule, events that any of their rules matches.
    #[arg(long = "rules", value_name = "FILE", num_args = 1..)]
    pub rules: Vec<PathBuf>,
    /// Named SQL (`--sql list` lists them), a .sql file, or one ad-hoc read-only statement
    /// ("SELECT …"), run over the time range's `events`, `processes` and `losses` (their columns:
    /// docs/query.md, "SQL over history").
    #[arg(long, value_name = "NAME|FILE|SELECT", conflicts_with_all = sql_conflicts())]
    pub sql: Option<String>,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub time: TimeArgs,
    /// At most this many events (or rows; replaces the LIMIT that ends the SQL).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Stop SQL that runs longer than this (30s, 15m, 2h).
    #[arg(long, value_name = "DURATION", requires = "sql", default_value = "1h", value_parser = crate::timespec::parse_duration)]
    pub timeout: std::time::Duration,
    /// Let SQL sort and group beyond memory in temporary files in DIR (default: in memory only,
    /// up to 1 GiB; never on a disk unasked).
    #[arg(long, value_name = "DIR", requires = "sql")]
    pub temp_dir: Option<PathBuf>,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Instead of the events, the tree of the processes that did them, each with its number of
    /// matched events (with --ancestor X, rooted at X).
    #[arg(long, conflicts_with_all = ["sql", "limit"])]
    pub tree: bool,
    /// With --tree: at most this many processes are shown (the first in drawing order); the
    /// others are counted on stderr.
    #[arg(long, value_name = "N", default_value_t = Caps::default().max_processes)]
    pub max_processes: usize,
    /// After the answer, say on stderr what reading it cost: segments read and ruled out by
    /// their summaries, blocks left undecoded, events decoded, seconds.
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub view: ViewArgs,
}

/// What `--sql` cannot be used with: `--rule`, `--rules` and each filter flag (one by one, so that
/// clap names the flag given).
fn sql_conflicts() -> Vec<clap::Id> {
    let filters = Filter::augment_args(clap::Command::new("filter"));
    ["rule", "rules"]
        .into_iter()
        .map(clap::Id::from)
        .chain(filters.get_arguments().map(|a| a.get_id().clone()))
        .collect()
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let started = args.stats.then(std::time::Instant::now);
    let view = args.view.view();
    let format = view.format(args.format);
    if let Some(sql) = &args.sql {
        return run_sql(store, sql, &args, format, &view, started);
    }
    let from_filter =
        |f: &Filter| RuleSet::from_filter("query", f).map_err(|e| BadInput(e.to_string()));
    // Input is checked before the store is opened, except user names, which mean what the
    // recording knew them as (read from the store).
    let names = args.filter.names_users();
    let mut filter_set = if args.filter.is_empty() || names {
        None
    } else {
        Some(from_filter(&args.filter)?)
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
    if names {
        let known = query::users::recorded(&reader, &range);
        let resolved = args.filter.resolve_users(&known).map_err(BadInput)?;
        filter_set = Some(from_filter(&resolved)?);
    }
    let (lo, hi) = super::span(&reader, &range);
    let mut out = Output::open(view.page);
    let bar = if out.paging() {
        indicatif::ProgressBar::hidden()
    } else {
        progress(&reader, &range, "query")
    };
    if args.tree {
        let anchor = args.filter.ancestor.as_deref().map(ancestor).transpose()?;
        let mut filter_engine = filter_set.as_ref().map(RuleSet::engine);
        let mut rule_engine = rule_set.as_ref().map(RuleSet::engine);
        let caps = Caps {
            max_processes: args.max_processes,
            max_files: 0,
        };
        let mut builder = Builder::new(range, caps);
        let mut seen = 0u64;
        let stats = tree::read(&mut builder, &reader, &range, None, |ev| {
            seen += 1;
            if seen % PROGRESS_STEP == 0 {
                bar.inc(PROGRESS_STEP);
            }
            filter_engine.as_mut().is_none_or(|e| e.matches(ev))
                && rule_engine.as_mut().is_none_or(|e| e.matches(ev))
        });
        bar.finish_and_clear();
        let forest = builder.build(&Scope::Matched(anchor));
        forest::print(
            &mut out,
            format,
            &forest,
            Counts::Matched,
            view.width.into(),
        )?;
        out.finish()?;
        forest::report_cut(&forest, args.max_processes, format == Format::Jsonl);
        super::say_cost(&stats, format == Format::Jsonl, started);
        return report_scan(&stats, &range, format == Format::Jsonl);
    }
    let mut filter_engine = filter_set.as_ref().map(RuleSet::engine);
    let mut rule_engine = rule_set.as_ref().map(RuleSet::engine);

    let mut rows = RowWriter::new(
        format,
        EVENT_COLUMNS.iter().map(|c| c.name().to_owned()).collect(),
        &mut out,
    )?
    .view(view)
    .span(lo, hi);
    let (mut seen, mut matched) = (0u64, 0u64);
    let mut io_err = None;
    // Segments and blocks that no filter (and no rule) can match in are never read.
    let need = [&filter_set, &rule_set]
        .into_iter()
        .flatten()
        .fold(Need::all(), |n, s| n.and(s.need()));
    let stats = reader.scan_where(
        &range,
        &need,
        |_| {},
        |ev| {
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
            // JSON lines carry every field of the event, as `export` prints it.
            let r = match format {
                Format::Jsonl => rows.write_line(&ev.to_json_line()),
                Format::Csv | Format::Table => rows.push(event_values(ev)),
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
        },
    );
    bar.finish_and_clear();
    if let Some(e) = io_err {
        return Err(e.into());
    }
    if [&filter_engine, &rule_engine]
        .iter()
        .any(|e| e.as_ref().is_some_and(|e| e.trusted_unverified()))
    {
        eprintln!(
            "open-forensics: warning: {}",
            crate::rules::UNVERIFIED_EXE_NOTICE
        );
    }
    rows.finish()?;
    out.finish()?;
    super::say_cost(&stats, format == Format::Jsonl, started);
    report_scan(&stats, &range, format == Format::Jsonl)
}

/// The processes `--ancestor PID|EXE` names (the roots of `--tree`): that pid, or an exe equal
/// to or matching the glob (as the filter reads it).
fn ancestor(a: &str) -> anyhow::Result<Pick> {
    if let Ok(pid) = a.parse::<u32>() {
        return Ok(Box::new(move |p| p.pid == pid));
    }
    let glob = globset::GlobBuilder::new(a)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| BadInput(format!("--ancestor {}: {e}", printable(a))))?
        .compile_matcher();
    Ok(Box::new(move |p| {
        p.exe
            .as_ref()
            .is_some_and(|e| glob.is_match(std::path::Path::new(&*e.lossy())))
    }))
}

/// Columns of events in tables and CSV (JSON lines carry every field, as `export` does).
const EVENT_COLUMNS: &[Column] = &[
    Column::Ts,
    Column::Pid,
    Column::Ppid,
    Column::Uid,
    Column::Comm,
    Column::Exe,
    Column::Syscall,
    Column::Op,
    Column::Access,
    Column::Result,
    Column::Path,
    Column::OldPath,
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
        json!(e.op.as_str()),
        json!(access_names(e)),
        json!(result),
        json!(e.path.lossy()),
        json!(e.old_path.as_ref().map(|p| p.lossy())),
    ]
}

fn run_sql(
    store: &Path,
    arg: &str,
    args: &Args,
    format: Format,
    view: &View,
    started: Option<std::time::Instant>,
) -> anyhow::Result<()> {
    if arg == "list" {
        let mut out = Output::open(view.page);
        let mut rows = Rows::new(["name", "description"]);
        for (name, sql) in NAMED {
            rows.push(vec![json!(name), json!(query::describe(sql))]);
        }
        rows.write_view(format, view, &mut out)?;
        out.finish()?;
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
    let (lo, hi) = super::span(&reader, &range);
    let mut out = Output::open(view.page);
    let bar = if out.paging() {
        indicatif::ProgressBar::hidden()
    } else {
        progress(&reader, &range, "query")
    };
    let tick = bar.clone();
    if let Some(dir) = &args.temp_dir {
        check_temp_dir(dir, store)?;
    }
    let limits = query::Limits {
        timeout: Some(args.timeout),
        temp_dir: args.temp_dir.clone(),
    };
    let session = query::Session::open(
        reader,
        range,
        limits,
        Box::new(move || tick.inc(query::PROGRESS_EVERY)),
    )?;
    let r = session.run(
        &name,
        &sql,
        args.limit,
        |headers| {
            Ok(RowWriter::new(format, headers, &mut out)?
                .view(*view)
                .span(lo, hi))
        },
        |w, row| w.push(row),
    );
    bar.finish_and_clear();
    // A statement that does not prepare, or would write, is the user's SQL to fix.
    let query::Answer { sink, cut_at } = r.map_err(|e| match e {
        QueryError::Sql { .. } | QueryError::NotReadOnly { .. } | QueryError::Syntax { .. } => {
            anyhow::Error::from(BadInput(e.to_string()))
        }
        other => other.into(),
    })?;
    sink.finish()?;
    out.finish()?;
    if let Some(n) = cut_at {
        super::say(
            &mut std::io::stderr().lock(),
            format == Format::Jsonl,
            &query::completeness::Statement {
                json: json!({"notice": "row_limit", "query": name, "limit": n}),
                text: format!("notice: {name} stopped at its LIMIT {n}; more rows match (raise it with --limit N)"),
            },
        );
    }
    let stats = session.stats();
    super::say_cost(&stats, format == Format::Jsonl, started);
    report_scan(&stats, &range, format == Format::Jsonl)
}

/// `--temp-dir` must be a directory; on the store's filesystem it is allowed (the user named
/// it) but said, since a full disk there starves the recorder.
fn check_temp_dir(dir: &Path, store: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir)
        .map_err(|e| BadInput(format!("--temp-dir {}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(BadInput(format!("--temp-dir {}: not a directory", dir.display())).into());
    }
    if std::fs::metadata(store).is_ok_and(|s| s.dev() == meta.dev()) {
        eprintln!(
            "open-forensics: warning: --temp-dir {} is on the store's filesystem: a large sort there can fill the disk the recorder writes to",
            dir.display()
        );
    }
    Ok(())
}
