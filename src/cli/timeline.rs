//! `timeline`: how many events, failures and alerts each stretch of time holds, one line per
//! bucket with a bar, losses and outages marked, so a burst stands out at once.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local, Utc};
use serde_json::json;

use super::{load_rules, progress, report_scan, BadInput, TimeArgs, PROGRESS_STEP};
use crate::output::histogram::{draw, Bar};
use crate::output::{Format, Output, Rows};
use crate::query::timeline::{self, Bucket, Bucketing, Timeline};
use crate::store::Reader;
use crate::timespec::format_ts;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub time: TimeArgs,
    /// Count the alerts these rule files raise (as `replay` prints them).
    #[arg(long = "rules", value_name = "FILE", num_args = 1..)]
    pub rules: Vec<PathBuf>,
    /// The bucket size (1s, 30s, 5m, 1h, 1d; at least 1ms) [default: the smallest of 1s, 2s, 5s,
    /// 10s, 15s, 30s, 1m … 1d, 1w that gives at most 60 buckets].
    #[arg(long, value_name = "DURATION", value_parser = crate::timespec::parse_duration)]
    pub bucket: Option<std::time::Duration>,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Print straight to the terminal, without $PAGER (default `less -FRSX`).
    #[arg(long)]
    pub no_pager: bool,
}

/// Buckets an automatic size aims at: a screenful.
const AUTO_BUCKETS: usize = 60;

/// The keys of a bucket's JSON line and the columns of its CSV row (docs/query.md).
const KEYS: &[&str] = &[
    "start", "end", "events", "failures", "alerts", "lost", "outage",
];

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let format = Format::resolve(args.format);
    let bucketing = match args.bucket {
        None => Bucketing::Auto(AUTO_BUCKETS),
        Some(d) => Bucketing::Fixed(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
    };
    let rules = match args.rules.as_slice() {
        [] => None,
        files => Some(load_rules(files)?),
    };
    let range = args.time.range()?;
    let reader = Reader::open(store)?;
    let mut out = Output::open(!args.no_pager);
    let bar = if out.paging() {
        indicatif::ProgressBar::hidden()
    } else {
        progress(&reader, &range, "timeline")
    };
    let mut seen = 0u64;
    let read = timeline::read(&reader, &range, rules.as_ref(), bucketing, |_| {
        seen += 1;
        if seen % PROGRESS_STEP == 0 {
            bar.inc(PROGRESS_STEP);
        }
    });
    bar.finish_and_clear();
    let Some((t, stats)) = read.map_err(|e| BadInput(format!("--bucket: {e}")))? else {
        return Err(BadInput(format!(
            "nothing is recorded {} in {}",
            describe(&range),
            reader.dir().display()
        ))
        .into());
    };
    match format {
        Format::Table => {
            let dated = spans_days(&t);
            let mut parts = vec![
                format!("{} events", t.events),
                format!("{} failed", t.failures),
            ];
            if rules.is_some() {
                parts.push(format!("{} alerts", t.alerts));
            }
            if t.lost > 0 {
                parts.push(format!("{} lost", t.lost));
            }
            writeln!(
                out,
                "{}; one line per {}",
                parts.join(", "),
                timeline::humantime(t.bucket_ns)
            )?;
            let bars: Vec<Bar> = t
                .buckets
                .iter()
                .map(|b| bar_of(b, dated, rules.is_some()))
                .collect();
            let mut header = vec!["TIME", "EVENTS", "FAILED"];
            if rules.is_some() {
                header.push("ALERTS");
            }
            draw(&mut out, &header, &bars, super::forest::width())?;
        }
        Format::Jsonl | Format::Csv => {
            let mut rows = Rows::new(KEYS.iter().copied());
            for b in &t.buckets {
                rows.push(vec![
                    json!(format_ts(b.start_ns)),
                    json!(format_ts(b.start_ns + t.bucket_ns)),
                    json!(b.events),
                    json!(b.failures),
                    json!(b.alerts),
                    json!(b.lost),
                    json!(b.outage),
                ]);
            }
            rows.write(format, &mut out)?;
        }
    }
    out.finish()?;
    report_scan(&stats, &range, format == Format::Jsonl)
}

fn describe(range: &crate::store::TimeRange) -> String {
    match (range.since, range.until) {
        (None, None) => "at all".to_owned(),
        (s, u) => format!(
            "between {} and {}",
            s.map_or("the start".to_owned(), format_ts),
            u.map_or("now".to_owned(), format_ts)
        ),
    }
}

/// Whether the buckets span more than one local day (times then show their date).
fn spans_days(t: &Timeline) -> bool {
    let day = |ns: i64| local(ns).date_naive();
    match (t.buckets.first(), t.buckets.last()) {
        (Some(a), Some(b)) => {
            day(a.start_ns) != day(b.start_ns) || t.bucket_ns >= 86_400_000_000_000
        }
        _ => false,
    }
}

fn local(ns: i64) -> DateTime<Local> {
    DateTime::<Utc>::from_timestamp_nanos(ns).with_timezone(&Local)
}

fn bar_of(b: &Bucket, dated: bool, alerts: bool) -> Bar {
    let t = local(b.start_ns);
    let label = match dated {
        true => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        false => t.format("%H:%M:%S").to_string(),
    };
    let mut cells = vec![b.events.to_string(), b.failures.to_string()];
    if alerts {
        cells.push(b.alerts.to_string());
    }
    let mut marks = Vec::new();
    if b.alerts > 0 {
        marks.push(format!(
            "◀ {} alert{}",
            b.alerts,
            if b.alerts == 1 { "" } else { "s" }
        ));
    }
    if b.lost > 0 {
        marks.push(format!("lost {}", b.lost));
    }
    if b.outage {
        marks.push("outage: recorder not running".to_owned());
    }
    Bar {
        label,
        cells,
        value: b.events,
        mark: marks.join(", "),
    }
}
