//! Evaluation. Path and comm conditions are decided once per distinct string and the verdict (a
//! bitset over every rule and `except` block) is cached by `Str::key`; per event there remain a
//! lookup, a few word ANDs and, only for rules still standing, their numeric conditions.

use super::compile::{bit, Scratch};
use super::{Alert, RuleSet};
use crate::event::{Event, Str};

/// Keys above this are not cached (a table that large would be a bug elsewhere; stay correct and
/// bounded in memory).
const MAX_CACHED_KEY: u32 = 1 << 26;

/// Verdicts for the strings of one string table, indexed by key.
struct VerdictCache {
    table: u64,
    words: usize,
    data: Vec<u64>,
    known: Vec<bool>,
    /// For strings without a key.
    direct: Vec<u64>,
    scratch: Scratch,
}

impl VerdictCache {
    fn new(words: usize) -> VerdictCache {
        VerdictCache {
            table: 0,
            words,
            data: Vec::new(),
            known: Vec::new(),
            direct: vec![0; words],
            scratch: Scratch::default(),
        }
    }

    fn get(
        &mut self,
        table: u64,
        s: &Str,
        compute: impl FnOnce(&[u8], &mut [u64], &mut Scratch),
    ) -> &[u64] {
        if s.key == Str::NO_KEY || s.key >= MAX_CACHED_KEY {
            compute(s.as_bytes(), &mut self.direct, &mut self.scratch);
            return &self.direct;
        }
        if table != self.table {
            // Keys of another table mean other strings.
            self.known.iter_mut().for_each(|k| *k = false);
            self.table = table;
        }
        let k = s.key as usize;
        if k >= self.known.len() {
            let len = (k + 1)
                .max(self.known.len() * 2)
                .min(MAX_CACHED_KEY as usize);
            self.known.resize(len, false);
            self.data.resize(len * self.words, 0);
        }
        let slot = &mut self.data[k * self.words..(k + 1) * self.words];
        if !self.known[k] {
            compute(s.as_bytes(), slot, &mut self.scratch);
            self.known[k] = true;
        }
        slot
    }
}

/// Evaluates events against a rule set. Cheap to create; keep one per stream of events.
pub struct Engine<'a> {
    set: &'a RuleSet,
    paths: VerdictCache,
    comms: VerdictCache,
}

impl<'a> Engine<'a> {
    pub(super) fn new(set: &'a RuleSet) -> Engine<'a> {
        let words = set.compiled.words();
        Engine {
            set,
            paths: VerdictCache::new(words),
            comms: VerdictCache::new(words),
        }
    }

    pub fn rules(&self) -> &'a RuleSet {
        self.set
    }

    /// Calls `f` for every active rule that matches `ev`, in rule order.
    pub fn eval(&mut self, ev: &Event, mut f: impl FnMut(&Alert)) {
        let set = self.set;
        let c = &set.compiled;
        let active = c.active();
        if active.iter().all(|w| *w == 0) {
            return;
        }
        let p = self
            .paths
            .get(ev.table, &ev.path, |s, out, sc| c.path_verdict(s, out, sc));
        // Most events on most rule sets stop here.
        if active.iter().zip(p).all(|(a, p)| a & p == 0) {
            return;
        }
        let m = self
            .comms
            .get(ev.table, &ev.comm, |s, out, sc| c.comm_verdict(s, out, sc));
        for (w, a) in active.iter().enumerate() {
            let mut cand = a & p[w] & m[w];
            while cand != 0 {
                let rule = w * 64 + cand.trailing_zeros() as usize;
                cand &= cand - 1;
                if !c.preds_hold(rule, ev) {
                    continue;
                }
                let excepted = c
                    .excepts(rule)
                    .iter()
                    .any(|&x| bit(p, x) && bit(m, x) && c.preds_hold(x, ev));
                if excepted {
                    continue;
                }
                f(&Alert {
                    rule: &set.rules[rule],
                    event: ev,
                    matched: c.matched(rule, ev),
                });
            }
        }
    }

    /// Whether any active rule matches `ev`.
    pub fn matches(&mut self, ev: &Event) -> bool {
        let mut hit = false;
        self.eval(ev, |_| hit = true);
        hit
    }
}
