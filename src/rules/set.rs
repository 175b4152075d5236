//! A validated, compiled set of rules. It is built by the loader (`load.rs`), evaluated by the
//! engine (`engine.rs`) and translated to SQL (`sql.rs`), each of which adds its methods there.

use super::diag::Diagnostic;
use super::matcher::Compiled;
use super::pattern::PatKind;
use super::rule::Rule;
use crate::text::printable;

/// A validated, compiled set of rules.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub(super) rules: Vec<Rule>,
    pub(super) compiled: Compiled,
    /// What loaded but deserves a look (see `trust`), for `rules check`.
    pub(super) warnings: Vec<Diagnostic>,
}

impl RuleSet {
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every exact absolute path the rules name (in path conditions, `not_` ones too): the
    /// recorder watches their identities (`Event::alias_of`).
    pub fn exact_paths(&self) -> Vec<String> {
        self.compiled
            .paths
            .pats
            .iter()
            .filter(|p| matches!(p.kind, PatKind::Exact(_)) && p.text.starts_with('/'))
            .map(|p| p.text.clone())
            .collect()
    }

    /// Warnings about the rule files (file, line and rule named), in file order.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The same set with only rule `name` active. The error says why not: there is no such rule,
    /// or it is disabled (`enabled: false` turns a rule off for `query --rule` as it does for
    /// `replay` and `record`, so that they agree).
    pub fn only(&self, name: &str) -> Result<RuleSet, String> {
        let Some(i) = self.rules.iter().position(|r| r.name == name) else {
            let known: Vec<&str> = self.rules.iter().map(|r| r.name.as_str()).collect();
            return Err(format!(
                "no such rule in the given files (rules: {})",
                known.join(", ")
            ));
        };
        let rule = &self.rules[i];
        if !rule.enabled {
            return Err(format!(
                "rule `{name}` (defined at {}) is disabled (`enabled: false`): replay and record skip it, and so does query; enable it to query by it",
                printable(&rule.origin)
            ));
        }
        let mut set = self.clone();
        set.compiled.activate_only(i);
        Ok(set)
    }
}
