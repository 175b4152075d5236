//! `rules test RULES… --fixtures DIR`: the check a rule author runs before committing (the
//! runner is `rules::testing`; this prints its report).

use std::path::PathBuf;

use serde_json::json;

use super::{BadInput, Failed};
use crate::output::{Format, Rows};
use crate::rules::testing::{test_fixtures, TestError};

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
    let report = test_fixtures(&set, &args.files, &args.fixtures).map_err(|e| match e {
        TestError::NoFixtures(m) => BadInput(m),
    })?;
    let mut rows = Rows::new(["rule", "positives", "baseline_alerts", "golden", "verdict"]);
    for v in &report.rules {
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
    let failures: Vec<&str> = report
        .rules
        .iter()
        .filter(|v| v.failed)
        .map(|v| v.name.as_str())
        .collect();
    for v in report.rules.iter().filter(|v| v.failed) {
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
    for e in &report.unreadable {
        eprintln!("open-forensics: error: {e}");
    }
    if failures.is_empty() && report.unreadable.is_empty() {
        eprintln!(
            "open-forensics: {} rules tested against {} fixtures: OK",
            report.rules.len(),
            report.scenarios
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
