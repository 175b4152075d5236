//! The rule engine: one engine for live alerts, `replay` and `query --rule`.
//!
//! CONTRACT (stable API other modules use: re-exported here, or in the public `sql`, `sigma`, `testing`;
//! every other file is private):
//! - `RuleSet::load(&[PathBuf]) -> Result<RuleSet, RulesError>`: loads and validates YAML rule
//!   files; `RuleSet::from_yaml` does the same for text, `RuleSet::from_filter(name, &Filter)`
//!   makes one rule of command-line filters (`Filter` is their `clap::Args`).
//! - `RuleSet::engine(&self) -> Engine`: an evaluator with its own per-string verdict caches.
//! - `Engine::eval(&mut self, ev: &Event, f: impl FnMut(&Alert))`: calls `f` for every rule that
//!   matches `ev`, in rule order.
//! - `Alert::to_json_line(&self) -> String`: the alert line, identical live and on replay;
//!   `Alert::values` are its table and CSV columns.
//! - `Alerter::new(&RuleSet)`, `set_host`, `eval(ev, f: FnMut(&Raised))`, `next_run(f)`,
//!   `finish(f)`: the alert stream (alerts with their host, throttled, and `alert_summary` lines)
//!   that `record` and `replay` both print. The caller feeds it events: `query::replay` runs it
//!   over a store's segments.
//! - `RuleSet::to_sql(&self, sql::Dialect) -> Result<String, Vec<sql::Refusal>>`: the enabled rules
//!   as one SQL query over the Parquet export, returning exactly `replay`'s alerts (see `sql`).
//! - `testing::judge`: the verdicts of `rules test`, from the alerts its caller replayed.
//! - `sigma::convert(source, text) -> Result<sigma::Converted, String>` and `sigma::document`:
//!   `rules import-sigma`'s conversion of one Sigma rule, and the rule file of several.
//!
//! The engine reads rule files and nothing else: no store, no printing. It uses the ground floor
//! (`event`, `process`, `json`, `timespec`, `errno`, `yaml_pos`, `text`), and still the Parquet
//! schema's version (in `sql`).
//!
//! For the string caches to work, evaluate an event after `store::Writer::append` has set its
//! `Str::key`s and `Event::table` (replayed events already carry them); unkeyed events are evaluated
//! directly, with the same result.
//!
//! The rule-file reference below is `docs/rules.md` (one source: the manual and rustdoc).
#![doc = include_str!("../../docs/rules.md")]

mod access;
mod age;
mod alert;
mod alerter;
mod builder;
mod clause;
mod diag;
mod engine;
mod expand;
mod filter;
mod layer;
mod lineage;
mod load;
mod matcher;
mod mode;
mod pattern;
mod prune;
mod raw;
mod rule;
mod set;
pub mod sigma;
pub mod sql;
mod summary;
mod template;
pub mod testing;
mod throttle;
mod trust;

pub use access::{access_names, writes};
pub use alert::{Alert, COLUMNS as ALERT_COLUMNS};
pub use alerter::{Alerter, Raised};
pub use diag::{Diagnostic, RulesError};
pub use engine::Engine;
pub use filter::{Filter, KnownUsers};
pub use rule::{Rule, Severity};
pub use set::RuleSet;
pub use summary::Summary;
pub use template::Template;
pub use throttle::{KeyField, Throttle};
pub use trust::UNVERIFIED_EXE_NOTICE;

#[cfg(test)]
mod key_tests;
#[cfg(test)]
mod op_tests;
#[cfg(test)]
mod pattern_tests;
#[cfg(test)]
mod tests;
