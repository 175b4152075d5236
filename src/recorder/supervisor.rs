//! The hook a service uses to look after a recording once per tick: retention, health files and
//! rule reloads, between two events.

use std::collections::BTreeMap;

use crate::alerts::OutputState;
use crate::capture::Gauges;
use crate::rules::RuleSet;
use crate::store::Writer;

/// Counts the store thread keeps for health reports.
#[derive(Debug, Default)]
pub struct Counters {
    pub alerts_by_rule: BTreeMap<String, u64>,
    /// Losses recorded here, by reason (the kernel's, and malformed records).
    pub lost_by_reason: BTreeMap<&'static str, u64>,
}

/// What a supervisor sees each tick, between two events.
pub struct Tick<'a> {
    pub writer: &'a mut Writer,
    pub counters: &'a Counters,
    pub gauges: &'a Gauges,
    /// The alert outputs' states (name, ok/retrying/down, sent, dropped, queued).
    pub outputs: Vec<OutputState>,
    pub now_ns: i64,
}

/// Runs on the store thread once per tick, between events: what it returns as new rules is in
/// force from the next event on (no event is evaluated twice or skipped).
pub trait Supervisor: Send {
    /// `Some(rules)` swaps the live rule set (`Some(None)`: no rules any more).
    fn tick(&mut self, tick: Tick<'_>) -> anyhow::Result<Option<Option<RuleSet>>>;

    /// The retention in force now (a reload may have changed it since the start), for the
    /// pass after the last seal.
    fn retention(&self) -> Option<crate::store::Retention> {
        None
    }
}
