//! `rules test RULES… --fixtures DIR`: the check a rule author runs before committing. Fixtures
//! are recorded stores (`DIR/segments/<scenario>/`), replayed as `replay` does; golden files are
//! `DIR/expected/<rules file stem>/<scenario>.jsonl`. `rules::testing` judges; this reads the
//! fixtures and prints the verdicts.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use super::{BadInput, Failed};
use crate::output::{Format, Rows};
use crate::query::replay;
use crate::rules::testing::{judge, Alerts, Golden};
use crate::rules::{Alerter, RuleSet};
use crate::store::{Reader, TimeRange};

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Rule files (YAML), merged as `replay --rules` merges them.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Directory holding `segments/<scenario>/` and optionally `expected/<stem>/<scenario>.jsonl`.
    #[arg(long, value_name = "DIR")]
    pub fixtures: PathBuf,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn run(args: TestArgs) -> anyhow::Result<()> {
    let set = super::load_rules(&args.files)?;
    let (alerts, unreadable) = replay_fixtures(&set, &args.fixtures)?;
    let expected = args.fixtures.join("expected");
    let verdicts = judge(&set, &args.files, &alerts, |stem, scenario| {
        let path = expected.join(stem).join(format!("{scenario}.jsonl"));
        let text = std::fs::read_to_string(&path).ok()?;
        Some(Golden {
            name: path.display().to_string(),
            text,
        })
    });
    let mut rows = Rows::new(["rule", "positives", "baseline_alerts", "golden", "verdict"]);
    for v in &verdicts {
        rows.push(vec![
            json!(v.name),
            json!(format!(
                "{} alerts in {} scenario(s)",
                v.positive_alerts, v.positive_scenarios
            )),
            json!(v.baseline_alerts),
            json!(v.golden),
            json!(v.verdict),
        ]);
    }
    let mut out = super::stdout();
    rows.write(Format::resolve(args.format), &mut out)?;
    std::io::Write::flush(&mut out)?;
    drop(out);
    let failures: Vec<&str> = verdicts
        .iter()
        .filter(|v| v.failed)
        .map(|v| v.name.as_str())
        .collect();
    for v in verdicts.iter().filter(|v| v.failed) {
        for (sc, line) in &v.false_positives {
            eprintln!(
                "open-forensics: false positive of {} on {sc}: {line}",
                v.name
            );
        }
        for d in &v.golden_diffs {
            eprintln!("open-forensics: {}: {d}", v.name);
        }
    }
    for e in &unreadable {
        eprintln!("open-forensics: error: {e}");
    }
    if failures.is_empty() && unreadable.is_empty() {
        eprintln!(
            "open-forensics: {} rules tested against {} fixtures: OK",
            verdicts.len(),
            alerts.len()
        );
        Ok(())
    } else {
        Err(Failed(format!(
            "{} rule(s) failed: {}",
            failures.len(),
            failures.join(", ")
        ))
        .into())
    }
}

/// Replays every scenario of `fixtures` with `set`: the alerts of each, and the segments that
/// could not be read.
fn replay_fixtures(
    set: &RuleSet,
    fixtures: &Path,
) -> anyhow::Result<(BTreeMap<String, Alerts>, Vec<String>)> {
    let seg_dir = fixtures.join("segments");
    let mut scenarios: Vec<String> = std::fs::read_dir(&seg_dir)
        .with_context(|| format!("reading {}", seg_dir.display()))
        .map_err(|e| {
            BadInput(format!(
                "{e:#}: expected recorded stores in DIR/segments/<scenario>/"
            ))
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    scenarios.sort();
    if scenarios.is_empty() {
        return Err(BadInput(format!("no fixtures in {}", seg_dir.display())).into());
    }
    let mut alerts = BTreeMap::new();
    let mut unreadable = Vec::new();
    for sc in scenarios {
        let reader = Reader::open(&seg_dir.join(&sc)).map_err(|e| BadInput(e.to_string()))?;
        let mut alerter = Alerter::new(set);
        let mut out = Alerts::new();
        let stats = replay::alerts(
            &mut alerter,
            &reader,
            &TimeRange::default(),
            &set.need(),
            |_| {},
            |a| {
                out.push((a.rule().name.clone(), a.to_json_line()));
                ControlFlow::Continue(())
            },
        );
        unreadable.extend(stats.errors.into_iter().map(|e| e.to_string()));
        alerts.insert(sc, out);
    }
    Ok((alerts, unreadable))
}
