//! `replay`: re-run rules over stored history and print the alerts they would have raised live.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::{load_rules, progress, report_scan, TimeArgs, PROGRESS_STEP};
use crate::error::BadInput;
use crate::output::alert_line::{self, LineStyle};
use crate::output::clock::Clock;
use crate::output::foreign::LineFormat;
use crate::output::view::ViewArgs;
use crate::output::{Format, Output, RowWriter};
use crate::query::replay;
use crate::rules::{Alerter, Rule, RuleSet, Severity, ALERT_COLUMNS};
use crate::store::Reader;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rule files (YAML; see `rules check`); several are merged.
    #[arg(long = "rules", value_name = "FILE", required = true, num_args = 1..)]
    pub rules: Vec<PathBuf>,
    #[command(flatten)]
    pub time: TimeArgs,
    /// Only the alerts of these rules (repeat the flag or separate names with commas); every
    /// rule still runs, so each alert is exactly the one the whole set raises.
    #[arg(long = "rule", value_name = "NAME", value_delimiter = ',')]
    pub rule: Vec<String>,
    /// Only alerts of this severity or worse: info, low, medium, high, critical.
    #[arg(long, value_name = "LEVEL", value_parser = parse_severity)]
    pub severity: Option<Severity>,
    /// Output format [default: jsonl, one alert per line, exactly as `record` prints them live;
    /// a table on a terminal is one line per alert; ocsf, ecs and timesketch as `record
    /// --alerts-format` writes them].
    #[arg(long, value_enum)]
    pub format: Option<ReplayFormat>,
    /// After the answer, say on stderr what reading it cost: segments read and ruled out by
    /// their summaries, blocks left undecoded, events decoded, seconds.
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub view: ViewArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFormat {
    Table,
    Jsonl,
    Csv,
    /// OCSF 1.3.0 Detection Findings (class 2004).
    Ocsf,
    /// Elastic Common Schema 8.17 alerts.
    Ecs,
    /// Timesketch's JSON lines.
    Timesketch,
}

impl ReplayFormat {
    /// The writer's format and, for JSON lines, which lines.
    fn split(self) -> (Format, LineFormat) {
        match self {
            ReplayFormat::Table => (Format::Table, LineFormat::Json),
            ReplayFormat::Jsonl => (Format::Jsonl, LineFormat::Json),
            ReplayFormat::Csv => (Format::Csv, LineFormat::Json),
            ReplayFormat::Ocsf => (Format::Jsonl, LineFormat::Ocsf),
            ReplayFormat::Ecs => (Format::Jsonl, LineFormat::Ecs),
            ReplayFormat::Timesketch => (Format::Jsonl, LineFormat::Timesketch),
        }
    }
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    use Severity::*;
    [Info, Low, Medium, High, Critical]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| format!("unknown severity {s:?} (info, low, medium, high, critical)"))
}

/// Which alerts `--rule` and `--severity` keep; a name no loaded rule has is an error, not an
/// empty answer.
fn selection(set: &RuleSet, args: &Args) -> anyhow::Result<impl Fn(&Rule) -> bool> {
    let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
    if let Some(bad) = args.rule.iter().find(|n| !names.contains(&n.as_str())) {
        return Err(BadInput(format!(
            "--rule {bad}: no rule of that name in the rule files (they have: {})",
            names.join(", ")
        ))
        .into());
    }
    let (rules, severity) = (args.rule.clone(), args.severity);
    Ok(move |r: &Rule| {
        (rules.is_empty() || rules.contains(&r.name)) && severity.is_none_or(|s| r.severity >= s)
    })
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let started = args.stats.then(std::time::Instant::now);
    let set = load_rules(&args.rules)?;
    let keep = selection(&set, &args)?;
    let range = args.time.range()?;
    let reader = Reader::open(store)?;
    let (format, line_format) = args.format.unwrap_or(ReplayFormat::Jsonl).split();
    let view = args.view.view();
    let (lo, hi) = super::span(&reader, &range);
    // A table on a terminal: one line per alert, as `record` prints them there.
    let lines = (format == Format::Table && view.terminal).then_some(LineStyle {
        clock: Clock::for_span(view.utc, lo, hi),
        colour: view.colour,
    });
    let mut out = Output::open(view.page);
    let bar = if out.paging() {
        indicatif::ProgressBar::hidden()
    } else {
        progress(&reader, &range, "replay")
    };
    let mut alerter = Alerter::new(&set);
    // Alert lines are written whole, as JSON lines are: no table around them.
    let mut rows = RowWriter::new(
        if lines.is_some() {
            Format::Jsonl
        } else {
            format
        },
        ALERT_COLUMNS.iter().map(|c| c.to_string()).collect(),
        &mut out,
    )?
    .view(view)
    .span(lo, hi);
    let mut io_err = None;
    let (mut seen, mut alerts) = (0u64, 0u64);
    let stats = replay::alerts(
        &mut alerter,
        &reader,
        &range,
        &set.need(),
        |_| {
            seen += 1;
            if seen % PROGRESS_STEP == 0 {
                bar.inc(PROGRESS_STEP);
            }
        },
        |a| {
            if !keep(a.rule()) {
                return ControlFlow::Continue(());
            }
            alerts += 1;
            // JSON lines exactly as `record` prints them live.
            let r = match (format, &lines) {
                (Format::Jsonl, _) => rows.write_line(&line_format.raised(a)),
                (Format::Table, Some(style)) => rows.write_line(&alert_line::line(a, style)),
                (Format::Csv | Format::Table, _) => rows.push(a.values()),
            };
            match r {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    io_err.get_or_insert(e);
                    ControlFlow::Break(())
                }
            }
        },
    );
    bar.finish_and_clear();
    if let Some(e) = io_err {
        return Err(e.into());
    }
    rows.finish()?;
    out.finish()?;
    if alerter.trusted_unverified() {
        eprintln!(
            "open-forensics: warning: {}",
            crate::rules::UNVERIFIED_EXE_NOTICE
        );
    }
    if std::io::stderr().is_terminal() {
        eprintln!(
            "open-forensics: {alerts} alerts from {} events in {} segments",
            stats.events_in_range, stats.segments
        );
    }
    super::say_cost(&stats, format == Format::Jsonl, started);
    report_scan(&stats, &range, format == Format::Jsonl)
}
