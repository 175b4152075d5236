//! The report's alerts: each as a row small enough for the page, the first `limit` of them, and
//! how many there were in all (by rule, so the page can say what it left out).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::rules::Raised;
use crate::timespec::format_ts;

#[derive(Debug, Serialize)]
pub struct AlertRow {
    pub ts: String,
    /// For placing it on the timeline.
    pub ts_ns: i64,
    pub rule: String,
    pub severity: &'static str,
    pub description: String,
    /// The process that raised it: `pid` and its start, as the tree knows processes (null
    /// start: recorded before lineage). Null for a throttling summary.
    pub pid: Option<u32>,
    pub start_ns: Option<i64>,
    pub exe: Option<String>,
    pub comm: Option<String>,
    pub op: Option<&'static str>,
    pub path: Option<String>,
    /// For an `alert_summary`: how many alerts of the rule throttling suppressed, and for which
    /// key.
    pub suppressed: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Alerts {
    pub rows: Vec<AlertRow>,
    /// Alerts (not summaries) per rule, all of them, kept or not.
    pub by_rule: BTreeMap<String, u64>,
    pub total: u64,
    /// Rows left out beyond the limit.
    pub cut: u64,
}

impl Alerts {
    /// Takes one raised alert or summary; keeps it if fewer than `limit` are kept.
    pub fn push(&mut self, r: &Raised, limit: usize) {
        if let Raised::Alert(_) = r {
            self.total += 1;
            *self.by_rule.entry(r.rule().name.clone()).or_default() += 1;
        }
        if self.rows.len() >= limit {
            self.cut += 1;
            return;
        }
        self.rows.push(row(r));
    }
}

fn row(r: &Raised) -> AlertRow {
    let rule = r.rule();
    let base = |ts_ns: i64| AlertRow {
        ts: format_ts(ts_ns),
        ts_ns,
        rule: rule.name.clone(),
        severity: rule.severity.as_str(),
        description: rule.description.clone(),
        pid: None,
        start_ns: None,
        exe: None,
        comm: None,
        op: None,
        path: None,
        suppressed: None,
    };
    match r {
        Raised::Alert(a) => {
            let e = a.event;
            let p = e.process.as_deref();
            AlertRow {
                pid: Some(e.pid),
                start_ns: p.map(|p| p.start_ns),
                exe: p
                    .and_then(|p| p.exe.as_ref())
                    .map(|x| x.lossy().into_owned()),
                comm: Some(e.comm.lossy().into_owned()),
                op: Some(e.op.as_str()),
                path: Some(e.path.lossy().into_owned()),
                ..base(e.ts_ns)
            }
        }
        Raised::Summary(s) => AlertRow {
            suppressed: Some(format!("{} suppressed ({})", s.suppressed, s.key_text())),
            ..base(s.ts_ns)
        },
    }
}
