//! A loaded rule: what `rules check` lists and alerts name.

use std::fmt;

use super::template::Template;
use super::throttle::Throttle;

/// How bad a rule's match is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One loaded rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub description: String,
    pub severity: Severity,
    pub enabled: bool,
    /// Where it was defined: `file:line:col`.
    pub origin: String,
    /// The conditions, as written (for `rules check`).
    pub summary: String,
    /// The operations it matches (`op`, `not_op`, or `[open]` when it names neither).
    pub ops: Vec<&'static str>,
    /// How many `except` blocks it has.
    pub excepts: usize,
    /// `tags:`, as written (lists expanded), in alerts.
    pub tags: Vec<String>,
    /// `throttle:`, if any (applied by the `Alerter`, live and on replay; not by `query --rule`).
    pub throttle: Option<Throttle>,
    /// `output:`, if any: the alert's line on a terminal (see `template.rs`).
    pub output: Option<Template>,
    /// For a rule a later entry changed (`override:`, `enabled:`; see `layer.rs`): each key it
    /// has with where its value was written (`file:line:col`, several when appended to). Empty
    /// for a rule as defined.
    pub layers: Vec<(&'static str, Vec<String>)>,
}
