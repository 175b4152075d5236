//! `replay`: re-run rules over stored history and print the alerts they would have raised live.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::{load_rules, progress, report_scan, TimeArgs, PROGRESS_STEP};
use crate::output::{Format, Output, RowWriter};
use crate::query::replay;
use crate::rules::{Alerter, ALERT_COLUMNS};
use crate::store::Reader;

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
    /// Print straight to the terminal, without $PAGER (default `less -FRSX`).
    #[arg(long)]
    pub no_pager: bool,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let set = load_rules(&args.rules)?;
    let range = args.time.range()?;
    let reader = Reader::open(store)?;
    let format = args.format.unwrap_or(Format::Jsonl);
    let mut out = Output::open(!args.no_pager);
    let bar = if out.paging() {
        indicatif::ProgressBar::hidden()
    } else {
        progress(&reader, &range, "replay")
    };
    let mut alerter = Alerter::new(&set);
    let mut rows = RowWriter::new(
        format,
        ALERT_COLUMNS.iter().map(|c| c.to_string()).collect(),
        &mut out,
    )?;
    let mut io_err = None;
    let (mut seen, mut alerts) = (0u64, 0u64);
    let stats = replay::alerts(
        &mut alerter,
        &reader,
        &range,
        |_| {
            seen += 1;
            if seen % PROGRESS_STEP == 0 {
                bar.inc(PROGRESS_STEP);
            }
        },
        |a| {
            alerts += 1;
            // JSON lines exactly as `record` prints them live.
            let r = match format {
                Format::Jsonl => rows.write_line(&a.to_json_line()),
                Format::Csv | Format::Table => rows.push(a.values()),
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
    report_scan(&stats, &range, format == Format::Jsonl)
}
