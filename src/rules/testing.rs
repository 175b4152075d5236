//! The rule author's check behind `rules test`: every enabled rule must alert on at least one
//! positive fixture, stay quiet on every `baseline*` fixture, and match the golden alerts that
//! exist. Fixtures are recorded stores (`DIR/segments/<scenario>/`), replayed with the same engine
//! as `replay`; golden files are `DIR/expected/<rules file stem>/<scenario>.jsonl`.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::RuleSet;
use crate::store::{Reader, TimeRange};

/// The alerts of one scenario: (rule name, alert line), in replay order.
type Alerts = Vec<(String, String)>;

/// One rule's result.
#[derive(Clone, Debug)]
pub struct RuleVerdict {
    pub name: String,
    pub positive_alerts: usize,
    pub positive_scenarios: usize,
    pub baseline_alerts: usize,
    /// `N ok`, `N differ` or `none`.
    pub golden: String,
    /// `ok`, `disabled`, or what failed.
    pub verdict: String,
    pub failed: bool,
    /// (scenario, alert line) on baseline scenarios.
    pub false_positives: Vec<(String, String)>,
    pub golden_diffs: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct TestReport {
    pub rules: Vec<RuleVerdict>,
    pub scenarios: usize,
    /// Segments that could not be read.
    pub unreadable: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("{0}")]
    NoFixtures(String),
}

/// Replays every fixture of `fixtures` with `set` (loaded from `files`, whose stems name the
/// golden directories) and judges every rule.
pub fn test_fixtures(
    set: &RuleSet,
    files: &[PathBuf],
    fixtures: &Path,
) -> Result<TestReport, TestError> {
    let seg_dir = fixtures.join("segments");
    let mut scenarios: Vec<String> = std::fs::read_dir(&seg_dir)
        .with_context(|| format!("reading {}", seg_dir.display()))
        .map_err(|e| {
            TestError::NoFixtures(format!(
                "{e:#}: expected recorded stores in DIR/segments/<scenario>/"
            ))
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    scenarios.sort();
    if scenarios.is_empty() {
        return Err(TestError::NoFixtures(format!(
            "no fixtures in {}",
            seg_dir.display()
        )));
    }

    let mut alerts: BTreeMap<&str, Alerts> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for sc in &scenarios {
        let reader =
            Reader::open(&seg_dir.join(sc)).map_err(|e| TestError::NoFixtures(e.to_string()))?;
        let mut alerter = super::Alerter::new(set);
        let mut out = Alerts::new();
        let stats = alerter.replay(
            &reader,
            &TimeRange::default(),
            |_| {},
            |a| {
                out.push((a.rule().name.clone(), a.to_json_line()));
                ControlFlow::Continue(())
            },
        );
        unreadable.extend(stats.errors.into_iter().map(|e| e.to_string()));
        alerts.insert(sc, out);
    }

    // Golden files, per rule file and scenario, compared with the alerts of that file's rules.
    let mut golden_bad: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut golden_ok: BTreeMap<String, usize> = BTreeMap::new();
    for file in files {
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
            let golden = fixtures
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

    let mut verdicts = Vec::new();
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
            if v.is_empty() {
                "ok".to_owned()
            } else {
                v.join("; ")
            }
        };
        let false_positives = alerts
            .iter()
            .filter(|(sc, _)| sc.starts_with("baseline"))
            .flat_map(|(sc, list)| {
                list.iter()
                    .filter(|(r, _)| r == name)
                    .map(|(_, l)| (sc.to_string(), l.clone()))
            })
            .collect();
        verdicts.push(RuleVerdict {
            name: name.to_owned(),
            positive_alerts: pos_alerts,
            positive_scenarios: pos_scenarios,
            baseline_alerts: fp,
            golden,
            failed: rule.enabled && verdict != "ok",
            verdict,
            false_positives,
            golden_diffs: golden_bad.get(name).cloned().unwrap_or_default(),
        });
    }
    Ok(TestReport {
        rules: verdicts,
        scenarios: scenarios.len(),
        unreadable,
    })
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
