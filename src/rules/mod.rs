//! The rule engine (one engine for live alerts, replay and `query --rule`).
//!
//! CONTRACT (stable API other modules use; internals are being written):
//! - `RuleSet::load(&[PathBuf]) -> Result<RuleSet, RulesError>`: loads and validates YAML rule files.
//! - `RuleSet::engine(&self) -> Engine`: an evaluator with its own per-string verdict caches.
//! - `Engine::eval(&mut self, ev: &Event, f: impl FnMut(&Alert))`: calls `f` for every rule that
//!   matches `ev`, in rule order.
//! - `Alert::to_json_line(&self) -> String`: the alert line, identical live and on replay.

use std::path::PathBuf;

use crate::event::Event;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RulesError(pub String);

#[derive(Debug, Default)]
pub struct RuleSet {}

impl RuleSet {
    pub fn load(_paths: &[PathBuf]) -> Result<RuleSet, RulesError> {
        Ok(RuleSet {})
    }

    pub fn engine(&self) -> Engine<'_> {
        Engine { _rules: self }
    }
}

pub struct Engine<'a> {
    _rules: &'a RuleSet,
}

pub struct Alert<'a> {
    pub event: &'a Event,
}

impl Engine<'_> {
    pub fn eval(&mut self, _ev: &Event, _f: impl FnMut(&Alert)) {}
}

impl Alert<'_> {
    pub fn to_json_line(&self) -> String {
        String::new()
    }
}
