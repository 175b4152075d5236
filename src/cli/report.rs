//! `report --out FILE`: one self-contained HTML case report for a time range, a process or the
//! window around an alert (see docs/report.md).

use std::path::{Path, PathBuf};

use super::{load_rules, BadInput, TimeArgs};
use crate::report::{Focus, Limits, Options};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The HTML file to write (owner-only; a link at its name is refused, never followed).
    #[arg(long, value_name = "FILE", required = true)]
    pub out: PathBuf,
    #[command(flatten)]
    pub time: TimeArgs,
    /// A process and its descendants, with its ancestors above it.
    #[arg(long, value_name = "PID", conflicts_with = "alert")]
    pub pid: Option<u32>,
    /// The window around an alert of this rule (needs --at and --rules): the alert nearest to
    /// --at, within --window of it.
    #[arg(long, value_name = "RULE", requires = "rules")]
    pub alert: Option<String>,
    /// With --pid, which process of that pid (the one running then); with --alert, when the alert
    /// was raised. The same forms as --since.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// With --alert: how far before and after --at the report reaches (unless --since/--until
    /// say otherwise).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub window: String,
    /// Rule files: their alerts are pinned on the timeline and the tree. Without them the report
    /// has no alerts section.
    #[arg(long = "rules", value_name = "FILE", num_args = 1..)]
    pub rules: Vec<PathBuf>,
    /// At most this many processes in the tree; beyond, the page says how many were left out.
    #[arg(long, value_name = "N", default_value_t = Limits::default().processes)]
    pub max_processes: usize,
    /// At most this many files listed per process (the counts stay whole).
    #[arg(long, value_name = "N", default_value_t = Limits::default().files)]
    pub max_files: usize,
    /// At most this many timeline buckets (the bucket widens to fit).
    #[arg(long, value_name = "N", default_value_t = Limits::default().buckets)]
    pub max_buckets: usize,
    /// At most this many alerts listed (the timeline still counts them all).
    #[arg(long, value_name = "N", default_value_t = Limits::default().alerts)]
    pub max_alerts: usize,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let options = options(&args)?;
    let rules = if args.rules.is_empty() {
        None
    } else {
        Some(load_rules(&args.rules)?)
    };
    let built = crate::report::build(store, &options, rules.as_ref())?;
    crate::safe_path::replace(&args.out, built.page.as_bytes(), 0o600)?;
    eprintln!(
        "open-forensics: wrote {} ({} bytes): {} processes, {} alerts, store {}",
        args.out.display(),
        built.page.len(),
        built.processes,
        built.alerts,
        if built.verified {
            "verified"
        } else {
            "FAILED verification"
        }
    );
    super::report_scan(&built.stats, &options.range, false)
}

/// The validated options: `--at` needs `--pid` or `--alert`, `--alert` needs `--at`.
fn options(args: &Args) -> anyhow::Result<Options> {
    let now = crate::timespec::now_ns();
    let at = args
        .at
        .as_deref()
        .map(|s| crate::timespec::parse_time(s, now))
        .transpose()
        .map_err(|e| BadInput(format!("--at: {e}")))?;
    let mut range = args.time.range()?;
    let focus = match (&args.alert, args.pid, at) {
        (Some(_), _, None) => {
            return Err(BadInput(
                "--alert RULE needs --at TIME: when the alert was raised (the report covers --window around it)".into(),
            )
            .into())
        }
        (Some(rule), _, Some(at)) => {
            let w = crate::timespec::parse_duration(&args.window)
                .map_err(|e| BadInput(format!("--window: {e}")))?;
            let w = i64::try_from(w.as_nanos()).unwrap_or(i64::MAX);
            range.since = range.since.or(Some(at.saturating_sub(w)));
            range.until = range.until.or(Some(at.saturating_add(w)));
            Focus::Alert {
                rule: rule.clone(),
                at,
            }
        }
        (None, Some(pid), at) => Focus::Pid { pid, at },
        (None, None, Some(_)) => {
            return Err(BadInput("--at goes with --pid or --alert".into()).into())
        }
        (None, None, None) => Focus::Range,
    };
    let limits = Limits {
        processes: args.max_processes,
        files: args.max_files,
        buckets: args.max_buckets,
        alerts: args.max_alerts,
    };
    if [limits.processes, limits.buckets].contains(&0) {
        return Err(BadInput("--max-processes and --max-buckets must be at least 1".into()).into());
    }
    Ok(Options {
        range,
        focus,
        limits,
        command: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    })
}
