//! The rule author's check behind `rules test`: every enabled rule must alert on at least one
//! positive scenario, stay quiet on every `baseline*` scenario, and match the golden alerts that
//! exist. The caller replays the fixtures (recorded stores, with the same `Alerter` as `replay`)
//! and reads the golden files (`expected/<rules file stem>/<scenario>.jsonl`); this judges.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::set::RuleSet;

/// The alerts of one scenario: (rule name, alert line), in replay order.
pub type Alerts = Vec<(String, String)>;

/// A golden file: where it is (for messages) and its text.
pub struct Golden {
    pub name: String,
    pub text: String,
}

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

/// Judges every rule of `set` (loaded from `files`, whose stems name the golden directories) by
/// the alerts of each scenario; `golden(stem, scenario)` is that golden file, if there is one.
pub fn judge(
    set: &RuleSet,
    files: &[PathBuf],
    alerts: &BTreeMap<String, Alerts>,
    mut golden: impl FnMut(&str, &str) -> Option<Golden>,
) -> Vec<RuleVerdict> {
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
        for (sc, list) in alerts {
            let Some(Golden {
                name: path,
                text: want,
            }) = golden(&stem, sc)
            else {
                continue;
            };
            let got: Vec<&(String, String)> = list
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
                        .push(golden_diff(&path, &w, &g));
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
            for (sc, list) in alerts {
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
    verdicts
}

fn rule_of(line: &str) -> Option<&str> {
    let start = line.find("\"rule\":\"")? + 8;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

fn golden_diff(golden: &str, want: &[&str], got: &[&str]) -> String {
    let first = want
        .iter()
        .zip(got)
        .position(|(w, g)| w != g)
        .unwrap_or(want.len().min(got.len()));
    format!(
        "{}: {} golden alert(s), {} now; first difference at alert {}:\n  golden: {}\n  now:    {}",
        golden,
        want.len(),
        got.len(),
        first + 1,
        want.get(first).unwrap_or(&"(none)"),
        got.get(first).unwrap_or(&"(none)")
    )
}
