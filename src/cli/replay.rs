//! `replay`: re-run rules over stored history and print the alerts they would have raised live.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::{load_rules, progress, report_scan, TimeArgs, PROGRESS_STEP};
use crate::output::{cell_text, write_csv_row, Format, Rows};
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
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let set = load_rules(&args.rules)?;
    let range = args.time.range()?;
    let reader = Reader::open(store)?;
    let format = args.format.unwrap_or(Format::Jsonl);
    let bar = progress(&reader, &range, "replay");
    let mut alerter = Alerter::new(&set);
    let mut out = super::stdout();
    let mut table = Rows::new(ALERT_COLUMNS.iter().copied());
    if format == Format::Csv {
        write_csv_row(&mut out, ALERT_COLUMNS.iter().copied())?;
    }
    let mut io_err = None;
    let (mut seen, mut alerts) = (0u64, 0u64);
    let stats = alerter.replay(
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
