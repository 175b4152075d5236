//! The case report: one self-contained HTML file for a time range, a process or the window
//! around an alert — a timeline, the process tree with each process's files, the alerts pinned
//! on both, and the store's `verify` verdict, so the report is evidence (docs/report.md).
//!
//! Built from the same models the terminal draws (`query::tree`, `query::timeline`) and the same
//! alert stream `replay` prints; rendered by `page` with everything inline, nothing fetched.

mod alerts;
mod evidence;
mod gather;
mod page;

use std::path::Path;

use serde_json::json;

use crate::error::BadInput;
use crate::query::pid::{self, NoChoice};
use crate::query::{timeline, tree};
use crate::rules::RuleSet;
use crate::store::{Reader, ScanStats, TimeRange};
use crate::timespec::format_ts;

use alerts::Alerts;
use evidence::Evidence;
use gather::gather;
use page::render;

/// What the report is about.
#[derive(Clone, Debug, PartialEq)]
pub enum Focus {
    /// Everything in the range.
    Range,
    /// One process (the one running at `at` when the pid was reused) and its descendants.
    Pid { pid: u32, at: Option<i64> },
    /// The alert of `rule` nearest to `at`.
    Alert { rule: String, at: i64 },
}

/// How much the page lists at most; beyond, it summarises and says so.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub processes: usize,
    pub files: usize,
    pub buckets: usize,
    pub alerts: usize,
}

impl Default for Limits {
    /// A page a browser opens at once: at most about 4 MB (25,000 files listed, ~120 bytes of
    /// JSON each, and the processes).
    fn default() -> Self {
        Limits {
            processes: 1_000,
            files: 25,
            buckets: 600,
            alerts: 1_000,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub range: TimeRange,
    pub focus: Focus,
    pub limits: Limits,
    /// The command line that made the report (shown in it).
    pub command: Vec<String>,
}

/// A built report: the page and what the caller says about it.
pub struct Built {
    pub page: String,
    pub processes: usize,
    pub alerts: u64,
    pub verified: bool,
    /// What the scan could not read or found missing (losses, outages).
    pub stats: ScanStats,
}

/// Reads the store and renders the page.
pub fn build(store: &Path, options: &Options, rules: Option<&RuleSet>) -> anyhow::Result<Built> {
    let generated = crate::timespec::now_ns();
    // Checked first: the verdict is of the store as it was read for the report.
    let evidence = Evidence::of(store, options.command.clone(), generated)?;
    let reader = Reader::open(store)?;
    let range = &options.range;
    let limits = options.limits;
    let near = match &options.focus {
        Focus::Alert { rule, at } => {
            known_rule(rules, rule)?;
            Some((rule.as_str(), *at))
        }
        _ => None,
    };
    let timeline = timeline::span(&reader, range)
        .map(|(from, to)| timeline::Builder::new(from, to, bucketing(from, to, limits.buckets)))
        .transpose()
        .map_err(|e| BadInput(e.to_string()))?;
    let caps = tree::Caps {
        max_processes: limits.processes,
        max_files: limits.files,
    };
    let g = gather(&reader, range, rules, caps, timeline, limits.alerts, near);
    let (scope, focus) = match &options.focus {
        Focus::Range => (tree::Scope::All, None),
        Focus::Pid { pid, at } => {
            let key = choose(&g.tree, *pid, *at)?;
            (
                tree::Scope::Process(key),
                Some(json!({"pid": key.0, "start_ns": key.1})),
            )
        }
        Focus::Alert { rule, at } => {
            let Some(n) = g.nearest else {
                return Err(BadInput(format!(
                    "no alert of {rule} in {} (around --at {}): widen --window",
                    window(range),
                    format_ts(*at)
                ))
                .into());
            };
            let focus = json!({"rule": rule, "ts_ns": n.ts_ns, "pid": n.key.map(|k| k.0), "start_ns": n.key.map(|k| k.1)});
            // The story of the alert: its process, its ancestors and what it started.
            let scope = n.key.map_or(tree::Scope::All, tree::Scope::Process);
            (scope, Some(focus))
        }
    };
    let unattributed = g.tree.unattributed;
    let forest = g.tree.build(&scope);
    let timeline = g.timeline.map(|t| t.finish(&g.stats));
    let stats = g.stats;
    let alerts = g.alerts;
    let mut notices: Vec<String> = crate::query::completeness::statements(&stats, range)
        .into_iter()
        .map(|s| s.text)
        .collect();
    notices.extend(stats.errors.iter().map(|e| format!("error: {e}")));
    notices.extend(bounds_notices(&forest.cut, &alerts, unattributed, &limits));
    let data = json!({
        "scope": describe(options, rules.is_some()),
        "notices": notices,
        "rules": rules.is_some(),
        "focus": focus,
        "alerts": alerts,
        "tree": forest,
        "timeline": timeline,
        "evidence": evidence,
    });
    Ok(Built {
        page: render(&data),
        processes: forest.nodes.len(),
        alerts: alerts.total,
        verified: evidence.verified,
        stats,
    })
}

/// Sub-second bucket sizes, for an incident shorter than `--max-buckets` seconds: a page can be
/// zoomed, so it gets finer buckets than the terminal's `timeline` (whose smallest is 1 s).
const FINE_STEPS_NS: &[i64] = &[
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
];

/// The finest bucket that gives at most `max` buckets over `[from, to]`.
fn bucketing(from: i64, to: i64, max: usize) -> timeline::Bucketing {
    let count = |size: i64| (to.div_euclid(size) - from.div_euclid(size) + 1) as u64;
    FINE_STEPS_NS
        .iter()
        .find(|&&s| count(s) <= max as u64)
        .map_or(timeline::Bucketing::Auto(max), |&s| {
            timeline::Bucketing::Fixed(s)
        })
}

/// What the page leaves out to stay within `limits`, in words.
fn bounds_notices(
    cut: &tree::Cut,
    alerts: &Alerts,
    unattributed: u64,
    limits: &Limits,
) -> Vec<String> {
    let mut out = Vec::new();
    if cut.processes > 0 {
        out.push(format!(
            "{} more processes not shown (--max-processes {}): narrow the range, or report on one --pid",
            cut.processes, limits.processes
        ));
    }
    if cut.file_events > 0 {
        out.push(format!(
            "{} events on files beyond the first {} of their process not listed (--max-files); each process's counts include them",
            cut.file_events, limits.files
        ));
    }
    if alerts.cut > 0 {
        out.push(format!(
            "{} alerts listed of {} (--max-alerts {}); the timeline and the tree count them all",
            alerts.rows.len(),
            alerts.rows.len() as u64 + alerts.cut,
            limits.alerts
        ));
    }
    if unattributed > 0 {
        out.push(format!(
            "{unattributed} events recorded before lineage name no process: on the timeline, not in the tree"
        ));
    }
    out
}

/// The process of `pid` alive in the range ([`pid::choose`]'s rule), or why none was chosen.
fn choose(tree: &tree::Builder, pid: u32, at: Option<i64>) -> Result<tree::Key, BadInput> {
    let candidates: Vec<(tree::Key, Option<i64>)> = tree
        .processes_with_pid(pid)
        .into_iter()
        .map(|k| (k, tree.last_image(k).and_then(|(_, e)| e).map(|(_, ts)| ts)))
        .collect();
    pid::choose(&candidates, at).map_err(|why| match why {
        NoChoice::Several(keys) => {
            let starts: Vec<String> = keys.iter().map(|k| format_ts(k.1)).collect();
            BadInput(format!(
                "pid {pid} was {} processes in the range (pids are reused), started {}: say which with --at TIME",
                keys.len(),
                starts.join(", ")
            ))
        }
        NoChoice::None(at) => BadInput(format!(
            "no process {pid} in the range{}",
            at.map(|t| format!(" running at {}", format_ts(t)))
                .unwrap_or_default()
        )),
    })
}

/// `--alert RULE` must name a rule of the rule files.
fn known_rule(rules: Option<&RuleSet>, rule: &str) -> Result<(), BadInput> {
    let names: Vec<&str> = rules
        .map(|s| s.rules().iter().map(|r| r.name.as_str()).collect())
        .unwrap_or_default();
    if names.contains(&rule) {
        return Ok(());
    }
    Err(BadInput(format!(
        "--alert {rule}: no rule of that name in the rule files (they have: {})",
        names.join(", ")
    )))
}

fn window(r: &TimeRange) -> String {
    match (r.since, r.until) {
        (None, None) => "all of the store".to_owned(),
        (s, u) => format!(
            "{} to {}",
            s.map_or("the start".to_owned(), format_ts),
            u.map_or("the end".to_owned(), format_ts)
        ),
    }
}

/// The report's subject in words, for its header.
fn describe(options: &Options, rules: bool) -> String {
    let window = window(&options.range);
    let subject = match &options.focus {
        Focus::Range => String::new(),
        Focus::Pid { pid, at: None } => format!("process {pid}, "),
        Focus::Pid { pid, at: Some(t) } => format!("process {pid} running at {}, ", format_ts(*t)),
        Focus::Alert { rule, at } => format!("the alert {rule} at {}, ", format_ts(*at)),
    };
    format!(
        "{subject}{window}{}",
        if rules {
            ""
        } else {
            " (no --rules: no alerts)"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_incidents_get_sub_second_buckets_within_the_cap() {
        use timeline::Bucketing::{Auto, Fixed};
        const S: i64 = 1_000_000_000;
        // The lifecycle fixture: under a second of events.
        assert_eq!(bucketing(0, S - 1, 600), Fixed(2_000_000));
        assert_eq!(bucketing(0, 163 * S, 600), Fixed(500_000_000));
        assert_eq!(bucketing(0, 3600 * S, 600), Auto(600));
        assert_eq!(bucketing(5, 5, 1), Fixed(1_000_000));
    }

    #[test]
    fn bounds_notices_say_what_the_page_left_out() {
        let limits = Limits::default();
        let none = bounds_notices(&tree::Cut::default(), &Alerts::default(), 0, &limits);
        assert!(none.is_empty(), "nothing cut, nothing said: {none:?}");
        let cut = tree::Cut {
            processes: 7,
            file_events: 3,
        };
        let alerts = Alerts {
            cut: 5,
            rows: Vec::new(),
            ..Alerts::default()
        };
        let said = bounds_notices(&cut, &alerts, 2, &limits);
        assert_eq!(said.len(), 4, "{said:?}");
        assert!(said[0].starts_with("7 more processes not shown (--max-processes 1000)"));
        assert!(said[1].starts_with("3 events on files beyond the first 25"));
        assert!(said[2].starts_with("0 alerts listed of 5 (--max-alerts 1000)"));
        assert!(said[3].starts_with("2 events recorded before lineage"));
    }

    #[test]
    fn a_reused_pid_needs_at_and_at_picks_the_one_started_by_then() {
        use crate::bytes::Str;
        use crate::process::Process;
        let mut b = tree::Builder::new(TimeRange::default(), tree::Caps::default());
        for (start, exit) in [(100, Some((0, 200))), (300, None)] {
            let p = Process::from_event(7, start, 1, Str::from("sleep"), 0, 0);
            b.image(&std::sync::Arc::new(p), exit);
        }
        let e = choose(&b, 7, None).unwrap_err().to_string();
        assert!(
            e.contains("pid 7 was 2 processes") && e.contains("--at"),
            "{e}"
        );
        assert_eq!(choose(&b, 7, Some(200)).unwrap(), (7, 100));
        assert_eq!(choose(&b, 7, Some(400)).unwrap(), (7, 300));
        // Between the two, neither ran.
        assert!(choose(&b, 7, Some(250)).is_err());
        let e = choose(&b, 7, Some(50)).unwrap_err().to_string();
        assert!(e.starts_with("no process 7 in the range running at"), "{e}");
        assert!(choose(&b, 8, None).is_err());
    }
}
