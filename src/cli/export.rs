use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{report_scan, BadInput, TimeArgs};
use crate::output::foreign::LineFormat;
use crate::store::Reader;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// JSON lines on stdout (what `import` reads).
    #[default]
    Jsonl,
    /// Parquet files under --out, Hive-partitioned by host and date (for Spark, Trino, DuckDB).
    Parquet,
    /// OCSF 1.3.0 File System Activity (class 1001), JSON lines.
    Ocsf,
    /// Elastic Common Schema 8.17 documents, JSON lines.
    Ecs,
    /// Timesketch's JSON lines (message, datetime, timestamp_desc).
    Timesketch,
}

impl ExportFormat {
    /// The line format of a JSON-lines export (`None`: Parquet).
    fn lines(self) -> Option<LineFormat> {
        match self {
            ExportFormat::Jsonl => Some(LineFormat::Json),
            ExportFormat::Parquet => None,
            ExportFormat::Ocsf => Some(LineFormat::Ocsf),
            ExportFormat::Ecs => Some(LineFormat::Ecs),
            ExportFormat::Timesketch => Some(LineFormat::Timesketch),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub time: TimeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ExportFormat,
    /// The directory Parquet files go under (`--format parquet`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace Parquet files that already exist (else they are kept and counted).
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let Some(format) = args.format.lines() else {
        let Some(out) = &args.out else {
            return Err(BadInput("--format parquet needs --out DIR".into()).into());
        };
        return parquet(store, &args, out);
    };
    if args.out.is_some() || args.overwrite {
        return Err(BadInput("--out and --overwrite go with --format parquet".into()).into());
    }
    let range = args.time.range()?;
    let reader = Reader::open(store)?;
    let mut out = super::stdout();
    let mut io_err = None;
    // Each segment's recording host, for the formats that name it.
    let host = std::cell::RefCell::new(String::new());
    let stats = reader.scan_with(
        &range,
        |seg| *host.borrow_mut() = seg.meta.host.clone(),
        |ev| match writeln!(out, "{}", format.event(ev, &host.borrow())) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                io_err = Some(e);
                ControlFlow::Break(())
            }
        },
    );
    if let Some(e) = io_err {
        return Err(e.into());
    }
    out.flush()?;
    report_scan(&stats, &range, true)
}

/// Whole sealed segments overlapping the range, one set of files each.
fn parquet(store: &Path, args: &Args, out: &Path) -> anyhow::Result<()> {
    let range = args.time.range()?;
    let reader = Reader::open(store)?;
    let segments: Vec<_> = reader.segments_in(&range).cloned().collect();
    // Reached through trusted directories, made if missing; nothing under it is followed.
    let root = crate::safe_path::SafeDir::open(out, true).context("--out")?;
    let summary =
        crate::output::parquet::export_segments(&reader, &segments, &root, args.overwrite)?;
    for w in &summary.warnings {
        eprintln!("open-forensics: warning: {w}");
    }
    for e in &summary.errors {
        eprintln!("open-forensics: error: {e}");
    }
    eprintln!(
        "open-forensics: exported {} events of {} segments to {}: {} files written ({} bytes), {} already there",
        summary.events,
        summary.segments,
        out.display(),
        summary.files_written,
        summary.bytes_written,
        summary.files_present
    );
    if summary.errors.is_empty() {
        Ok(())
    } else {
        Err(super::Failed(format!(
            "{} segment(s) could not be exported",
            summary.errors.len()
        ))
        .into())
    }
}
