//! `rules test RULES… --fixtures DIR`: the check a rule author runs before committing.
//!
//! Fixtures: `DIR/segments/<scenario>/` are recorded stores; scenarios whose name starts with
//! `baseline` are benign activity, the others positive samples. `DIR/expected/<rules file
//! stem>/<scenario>.jsonl` are golden alerts of one rule file over one scenario (what `replay
//! --rules FILE` prints). Every enabled rule must alert on at least one positive scenario, must not
//! alert on a baseline, and its alerts must equal the golden files that exist.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use super::{BadInput, Failed};
use crate::output::{Format, Rows};
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

/// The alerts of one scenario: (rule name, alert line), in replay order.
type Alerts = Vec<(String, String)>;

pub fn run(args: TestArgs) -> anyhow::Result<()> {
    let set = super::replay::load_rules(&args.files)?;
    let seg_dir = args.fixtures.join("segments");
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

    let mut alerts: BTreeMap<&str, Alerts> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for sc in &scenarios {
        let reader = Reader::open(&seg_dir.join(sc))?;
        let mut engine = set.engine();
        let mut out = Alerts::new();
        let stats = reader.scan(&TimeRange::default(), |ev| {
            engine.eval(ev, |a| out.push((a.rule.name.clone(), a.to_json_line())));
            ControlFlow::Continue(())
        });
        unreadable.extend(stats.errors.into_iter().map(|e| e.to_string()));
        alerts.insert(sc, out);
    }

    // Golden files, per rule file and scenario, compared with the alerts of that file's rules.
    let mut golden_bad: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut golden_ok: BTreeMap<String, usize> = BTreeMap::new();
    for file in &args.files {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!("{}:", file.display());
        let own: Vec<&str> = set
            .rules()
            .iter()
            .filter(|r| r.origin.starts_with(&prefix))
            .map(|r| r.name.as_str())
            .collect();
        for sc in &scenarios {
            let golden = args
                .fixtures
                .join("expected")
                .join(&stem)
                .join(format!("{sc}.jsonl"));
            let Ok(want) = std::fs::read_to_string(&golden) else {
                continue;
            };
            let got: Vec<&(String, String)> = alerts[sc.as_str()]
                .iter()
                .filter(|(r, _)| own.contains(&r.as_str()))
                .collect();
            let want: Vec<&str> = want.lines().collect();
            for rule in &own {
                let g: Vec<&str> = got
                    .iter()
                    .filter(|(r, _)| r == rule)
                    .map(|(_, l)| l.as_str())
                    .collect();
                let w: Vec<&str> = want
                    .iter()
                    .copied()
                    .filter(|l| rule_of(l) == Some(rule))
                    .collect();
                if g == w {
                    *golden_ok.entry(rule.to_string()).or_default() += 1;
                } else {
                    golden_bad
                        .entry(rule.to_string())
                        .or_default()
                        .push(golden_diff(&golden, &w, &g));
                }
            }
        }
    }

    let mut rows = Rows::new(["rule", "positives", "baseline_alerts", "golden", "verdict"]);
    let mut failures = Vec::new();
    for rule in set.rules() {
        let name = rule.name.as_str();
        let count = |baseline: bool| -> (usize, usize) {
            let mut scen = 0;
            let mut total = 0;
            for (sc, list) in &alerts {
                if sc.starts_with("baseline") == baseline {
                    let n = list.iter().filter(|(r, _)| r == name).count();
                    scen += usize::from(n > 0);
                    total += n;
                }
            }
            (scen, total)
        };
        let (pos_scenarios, pos_alerts) = count(false);
        let (_, fp) = count(true);
        let golden = match (golden_ok.get(name), golden_bad.get(name)) {
            (_, Some(d)) => format!("{} differ", d.len()),
            (Some(n), None) => format!("{n} ok"),
            (None, None) => "none".to_owned(),
        };
        let verdict = if !rule.enabled {
            "disabled".to_owned()
        } else {
            let mut v = Vec::new();
            if pos_alerts == 0 {
                v.push("rule is untested (no alert on any positive fixture)".to_owned());
            }
            if fp > 0 {
                v.push(format!("{fp} false positive(s) on the baseline"));
            }
            if golden_bad.contains_key(name) {
                v.push("alerts differ from golden".to_owned());
            }
            if !v.is_empty() {
                failures.push(name.to_owned());
            }
            if v.is_empty() {
                "ok".to_owned()
            } else {
                v.join("; ")
            }
        };
        rows.push(vec![
            json!(name),
            json!(format!(
                "{pos_alerts} alerts in {pos_scenarios} scenario(s)"
            )),
            json!(fp),
            json!(golden),
            json!(verdict),
        ]);
    }
    let mut out = super::stdout();
    rows.write(Format::resolve(args.format), &mut out)?;
    std::io::Write::flush(&mut out)?;
    drop(out);

    for rule in &failures {
        for (sc, list) in alerts.iter().filter(|(sc, _)| sc.starts_with("baseline")) {
            for (_, line) in list.iter().filter(|(r, _)| r == rule) {
                eprintln!("open-forensics: false positive of {rule} on {sc}: {line}");
            }
        }
        for d in golden_bad.get(rule).into_iter().flatten() {
            eprintln!("open-forensics: {rule}: {d}");
        }
    }
    for e in &unreadable {
        eprintln!("open-forensics: error: {e}");
    }
    if failures.is_empty() && unreadable.is_empty() {
        eprintln!(
            "open-forensics: {} rules tested against {} fixtures: OK",
            set.rules().len(),
            scenarios.len()
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

fn rule_of(line: &str) -> Option<&str> {
    let start = line.find("\"rule\":\"")? + 8;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

fn golden_diff(golden: &Path, want: &[&str], got: &[&str]) -> String {
    let first = want
        .iter()
        .zip(got)
        .position(|(w, g)| w != g)
        .unwrap_or(want.len().min(got.len()));
    format!(
        "{}: {} golden alert(s), {} now; first difference at alert {}:\n  golden: {}\n  now:    {}",
        golden.display(),
        want.len(),
        got.len(),
        first + 1,
        want.get(first).unwrap_or(&"(none)"),
        got.get(first).unwrap_or(&"(none)")
    )
}
