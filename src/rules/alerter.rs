//! The alert stream of a rule set: the engine's matches with their host, throttled (see
//! `throttle.rs`), and the `alert_summary` lines of what was suppressed. `record` and `replay`
//! both print it, so their alerts are identical.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::alert::{Alert, COLUMNS};
use super::engine::Engine;
use super::rule::Rule;
use super::set::RuleSet;
use super::summary::Summary;
use super::throttle::{KeyVals, Throttle, MAX_KEYS};
use crate::event::Event;
use crate::timespec::format_ts;

/// One key value's window.
struct Slot {
    start_ns: i64,
    end_ns: i64,
    count: u64,
    suppressed: u64,
    first_suppressed_ns: i64,
    last_suppressed_ns: i64,
    /// Position in the LRU (the alert counter when last touched).
    used: u64,
    /// Its entry in `Alerter::due` while it has suppressed alerts.
    due: Option<Due>,
}

#[derive(Default)]
struct RuleState {
    slots: HashMap<KeyVals, Slot>,
    /// `Slot::used` → key, oldest first.
    lru: BTreeMap<u64, KeyVals>,
}

/// What the alert stream carries: alerts, and summaries of what throttling suppressed.
#[derive(Clone, Debug)]
pub enum Raised<'a> {
    Alert(Alert<'a>),
    Summary(Summary<'a>),
}

impl Raised<'_> {
    pub fn rule(&self) -> &Rule {
        match self {
            Raised::Alert(a) => a.rule,
            Raised::Summary(s) => s.rule,
        }
    }

    pub fn to_json_line(&self) -> String {
        match self {
            Raised::Alert(a) => a.to_json_line(),
            Raised::Summary(s) => s.to_json_line(),
        }
    }

    /// The values of `ALERT_COLUMNS`; a summary fills `ts`, `event`, `rule`, `severity`, puts
    /// its key and count in `matched` and leaves the event's columns null.
    pub fn values(&self) -> Vec<serde_json::Value> {
        match self {
            Raised::Alert(a) => a.values(),
            Raised::Summary(s) => {
                let mut v = vec![serde_json::Value::Null; COLUMNS.len()];
                v[0] = format_ts(s.ts_ns).into();
                v[1] = "alert_summary".into();
                v[2] = s.rule.name.clone().into();
                v[7] = format!("{} suppressed ({})", s.suppressed, s.key_text()).into();
                v[8] = s.rule.severity.as_str().into();
                v
            }
        }
    }
}

/// A pending summary: when it falls due, and for which rule and key value.
type Due = (i64, u64, usize);

/// The alert stream of a rule set over a stream of events: the engine's matches, throttled, with
/// summaries. One per stream of events (a recording, a replay); used live and by `replay`.
pub struct Alerter<'a> {
    engine: Engine<'a>,
    host: Arc<str>,
    state: Vec<RuleState>,
    /// Windows with suppressed alerts, by when they end; the value is the key value.
    due: BTreeMap<Due, KeyVals>,
    next_due_ns: i64,
    seq: u64,
    last_ts_ns: i64,
}

impl<'a> Alerter<'a> {
    pub fn new(set: &'a RuleSet) -> Alerter<'a> {
        Alerter::with_engine(set.engine(), set.rules().len())
    }

    /// An alerter that owns its rule set with others (the recorder's, swapped on reload).
    pub fn shared(set: Arc<RuleSet>) -> Alerter<'static> {
        let rules = set.rules().len();
        Alerter::with_engine(Engine::shared(set), rules)
    }

    fn with_engine(engine: Engine<'a>, rules: usize) -> Alerter<'a> {
        Alerter {
            engine,
            host: Arc::from(""),
            state: (0..rules).map(|_| RuleState::default()).collect(),
            due: BTreeMap::new(),
            next_due_ns: i64::MAX,
            seq: 0,
            last_ts_ns: i64::MIN,
        }
    }

    /// The recording host that alerts name (`hostname`): live the host's, on replay the
    /// segment's.
    pub fn set_host(&mut self, host: &str) {
        if *self.host != *host {
            self.host = Arc::from(host);
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// See [`Engine::trusted_unverified`].
    pub fn trusted_unverified(&self) -> bool {
        self.engine.trusted_unverified()
    }

    /// Calls `f` with the summaries that fall due at `ev`'s time, then with `ev`'s alerts that
    /// throttling lets through, in rule order.
    pub fn eval(&mut self, ev: &Event, mut f: impl FnMut(&Raised)) {
        self.last_ts_ns = ev.ts_ns;
        if ev.ts_ns >= self.next_due_ns {
            self.flush_due(ev.ts_ns, &mut f);
        }
        let Alerter {
            engine,
            host,
            state,
            due,
            next_due_ns,
            seq,
            ..
        } = self;
        let host: &str = host;
        engine.eval(ev, |a| {
            let a = Alert { host, ..*a };
            let Some(t) = &a.rule.throttle else {
                f(&Raised::Alert(a));
                return;
            };
            let idx = a.rule_index;
            let st = &mut state[idx];
            *seq += 1;
            let key: KeyVals = t.key.iter().map(|k| k.value(ev)).collect();
            if let Some(slot) = st.slots.get_mut(&key) {
                st.lru.remove(&slot.used);
                slot.used = *seq;
                st.lru.insert(*seq, key.clone());
                if ev.ts_ns >= slot.end_ns {
                    // A new window (the old one's summary, if any, was emitted when it fell due).
                    *slot = Slot {
                        start_ns: ev.ts_ns,
                        end_ns: ev.ts_ns.saturating_add(t.window_ns),
                        count: 0,
                        suppressed: 0,
                        first_suppressed_ns: 0,
                        last_suppressed_ns: 0,
                        used: slot.used,
                        due: None,
                    };
                }
                if slot.count < t.max {
                    slot.count += 1;
                    f(&Raised::Alert(a));
                } else {
                    if slot.suppressed == 0 {
                        slot.first_suppressed_ns = ev.ts_ns;
                        let d = (slot.end_ns, *seq, idx);
                        slot.due = Some(d);
                        due.insert(d, key.clone());
                        *next_due_ns = (*next_due_ns).min(slot.end_ns);
                    }
                    slot.suppressed += 1;
                    slot.last_suppressed_ns = ev.ts_ns;
                }
                return;
            }
            if st.slots.len() >= MAX_KEYS {
                if let Some((_, old)) = st.lru.pop_first() {
                    if let Some(slot) = st.slots.remove(&old) {
                        if let Some(d) = slot.due {
                            // Its pending entry goes with it; the summary is emitted now.
                            due.remove(&d);
                            *next_due_ns = due.keys().next().map_or(i64::MAX, |d| d.0);
                            f(&Raised::Summary(summary(
                                a.rule, t, &old, &slot, ev.ts_ns, host,
                            )));
                        }
                    }
                }
            }
            st.lru.insert(*seq, key.clone());
            st.slots.insert(
                key,
                Slot {
                    start_ns: ev.ts_ns,
                    end_ns: ev.ts_ns.saturating_add(t.window_ns),
                    count: 1,
                    suppressed: 0,
                    first_suppressed_ns: 0,
                    last_suppressed_ns: 0,
                    used: *seq,
                    due: None,
                },
            );
            f(&Raised::Alert(a));
        });
    }

    /// Time passed to `ts_ns` over events that match no rule, unread (a pruned replay's skipped
    /// segments and blocks; `ts_ns` their latest): what those events' [`Alerter::eval`] would
    /// have emitted, the summaries due by then. The next event read sets the stream's last
    /// time, which only [`Alerter::finish`] uses (so a reading never skips the last events of a
    /// stream: `Reader::scan_advancing`).
    pub fn advance(&mut self, ts_ns: i64, mut f: impl FnMut(&Raised)) {
        if ts_ns >= self.next_due_ns {
            self.flush_due(ts_ns, &mut f);
        }
    }

    /// End of the stream: the summaries of windows still open, in the order they would have
    /// fallen due.
    pub fn finish(&mut self, mut f: impl FnMut(&Raised)) {
        self.flush_due(i64::MAX, &mut f);
    }

    /// The end of one run (a recording) and the start of the next in the same stream: what the
    /// first run's recorder emitted when it stopped ([`Alerter::finish`]), then throttle state
    /// as empty as the next recorder's was.
    pub fn next_run(&mut self, f: impl FnMut(&Raised)) {
        self.finish(f);
        for st in &mut self.state {
            *st = RuleState::default();
        }
    }

    fn flush_due(&mut self, upto_ns: i64, f: &mut impl FnMut(&Raised)) {
        let set = self.engine.rules();
        while let Some(entry) = self.due.first_entry() {
            let (end_ns, _, idx) = *entry.key();
            if end_ns > upto_ns {
                break;
            }
            let key = entry.remove();
            let rule = &set.rules()[idx];
            let (Some(t), Some(slot)) = (&rule.throttle, self.state[idx].slots.get_mut(&key))
            else {
                continue;
            };
            // Due by time: at the window's end; forced by the end of the stream: the last event's.
            let ts = if upto_ns == i64::MAX {
                self.last_ts_ns
            } else {
                end_ns
            };
            let s = summary(rule, t, &key, slot, ts, &self.host);
            slot.suppressed = 0;
            slot.due = None;
            f(&Raised::Summary(s));
        }
        self.next_due_ns = self.due.keys().next().map_or(i64::MAX, |d| d.0);
    }
}

fn summary<'r>(
    rule: &'r Rule,
    t: &Throttle,
    key: &KeyVals,
    slot: &Slot,
    ts_ns: i64,
    host: &'r str,
) -> Summary<'r> {
    Summary {
        rule,
        ts_ns,
        key: t.key.iter().copied().zip(key.iter().cloned()).collect(),
        suppressed: slot.suppressed,
        window_start_ns: slot.start_ns,
        window_end_ns: slot.end_ns,
        first_suppressed_ns: slot.first_suppressed_ns,
        last_suppressed_ns: slot.last_suppressed_ns,
        host,
    }
}
