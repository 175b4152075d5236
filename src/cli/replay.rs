//! `replay`: re-run rules over stored history and print the alerts they would have raised live.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{report_scan, BadInput, TimeArgs};
use crate::output::{cell_text, write_csv_row, Format, Rows};
use crate::rules::{RuleSet, RulesError, ALERT_COLUMNS};
use crate::store::{Reader, TimeRange};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rule files (YAML; see `rules check`); several are merged.
    #[arg(long = "rules", value_name = "FILE", required = true, num_args = 1..)]
    pub rules: Vec<PathBuf>,
    #[command(flatten)]
    pub time: TimeArgs,
    /// Output format [default: jsonl, one alert per line, exactly as `record` prints them live].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

/// Loads rule files; any problem in them is the user's to fix (exit 2).
pub(super) fn load_rules(files: &[PathBuf]) -> anyhow::Result<RuleSet> {
    RuleSet::load(files).map_err(|e| match e {
        RulesError::Invalid(_) | RulesError::Io { .. } => BadInput(e.to_string()).into(),
    })
}

/// A progress bar over the events of `range`, on stderr when it is a terminal; hidden otherwise.
pub(super) fn progress(reader: &Reader, range: &TimeRange, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let total: u64 = reader.segments_in(range).map(|s| s.meta.events).sum();
    let style = ProgressStyle::with_template(&format!(
        "{what} {{bar:30}} {{human_pos}}/{{human_len}} events (eta {{eta}})"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(style)
}

/// Events between progress-bar updates (an update per event would cost more than the rules).
pub(super) const PROGRESS_STEP: u64 = 1 << 14;

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let set = load_rules(&args.rules)?;
    let range = args.time.range()?;
    let reader = Reader::open(store)?;
    let format = args.format.unwrap_or(Format::Jsonl);
    let bar = progress(&reader, &range, "replay");
    let mut engine = set.engine();
    let mut out = super::stdout();
    let mut table = Rows::new(ALERT_COLUMNS.iter().copied());
    if format == Format::Csv {
        write_csv_row(&mut out, ALERT_COLUMNS.iter().copied())?;
    }
    let mut io_err = None;
    let (mut seen, mut alerts) = (0u64, 0u64);
    let stats = reader.scan(&range, |ev| {
        seen += 1;
        if seen % PROGRESS_STEP == 0 {
            bar.inc(PROGRESS_STEP);
        }
        engine.eval(ev, |a| {
            alerts += 1;
            let r = match format {
                Format::Jsonl => writeln!(out, "{}", a.to_json_line()),
                Format::Csv => {
                    let cells: Vec<String> = a.values().iter().map(cell_text).collect();
                    write_csv_row(&mut out, cells.iter().map(String::as_str))
                }
                Format::Table => {
                    table.push(a.values());
                    Ok(())
                }
            };
            if let Err(e) = r {
                io_err.get_or_insert(e);
            }
        });
        if io_err.is_some() {
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
    if std::io::stderr().is_terminal() {
        eprintln!(
            "open-forensics: {alerts} alerts from {} events in {} segments",
            stats.events_in_range, stats.segments
        );
    }
    report_scan(&stats, &range, format == Format::Jsonl)
}
