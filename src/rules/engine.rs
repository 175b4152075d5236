//! Evaluation. Path and comm conditions are decided once per distinct string and the verdict (a
//! bitset over every rule and `except` block) is cached by `Str::key`; lineage conditions once per
//! process image, cached by `Event::proc_key`. Per event there remain a few lookups, a few word
//! ANDs and, only for rules still standing, their numeric conditions.

use super::alert::Alert;
use super::lineage::ProcScratch;
use super::matcher::{bit, EventHits, Scratch};
use super::set::RuleSet;
use crate::bytes::Str;
use crate::event::Event;

/// Keys above this are not cached (a table that large would be a bug elsewhere; stay correct and
/// bounded in memory).
const MAX_CACHED_KEY: u32 = 1 << 26;

/// Cached verdicts of one producer's table, indexed by key (a string's or a process image's).
struct Slots {
    table: u64,
    words: usize,
    data: Vec<u64>,
    known: Vec<bool>,
}

impl Slots {
    /// The verdict for `key` of `table`, computed on first use.
    fn get(&mut self, table: u64, key: u32, compute: impl FnOnce(&mut [u64])) -> &[u64] {
        if table != self.table {
            // Keys of another table mean other strings (or processes).
            self.known.iter_mut().for_each(|k| *k = false);
            self.table = table;
        }
        let k = key as usize;
        if k >= self.known.len() {
            let len = (k + 1)
                .max(self.known.len() * 2)
                .min(MAX_CACHED_KEY as usize);
            self.known.resize(len, false);
            self.data.resize(len * self.words, 0);
        }
        let slot = &mut self.data[k * self.words..(k + 1) * self.words];
        if !self.known[k] {
            compute(slot);
            self.known[k] = true;
        }
        slot
    }
}

struct VerdictCache {
    slots: Slots,
    /// For what has no key.
    direct: Vec<u64>,
    scratch: Scratch,
}

impl VerdictCache {
    fn new(words: usize) -> VerdictCache {
        VerdictCache {
            slots: Slots {
                table: 0,
                words,
                data: Vec::new(),
                known: Vec::new(),
            },
            direct: vec![0; words],
            scratch: Scratch::default(),
        }
    }

    /// A string's verdict.
    fn get(
        &mut self,
        table: u64,
        s: &Str,
        compute: impl FnOnce(&[u8], &mut [u64], &mut Scratch),
    ) -> &[u64] {
        let scratch = &mut self.scratch;
        let compute = |out: &mut [u64]| compute(s.as_bytes(), out, scratch);
        if s.key == Str::NO_KEY || s.key >= MAX_CACHED_KEY {
            compute(&mut self.direct);
            return &self.direct;
        }
        self.slots.get(table, s.key, compute)
    }

    /// A verdict by another key (a process image's); computed each time for `Str::NO_KEY`.
    fn get_keyed(&mut self, table: u64, key: u32, compute: impl FnOnce(&mut [u64])) -> &[u64] {
        if key == Str::NO_KEY || key >= MAX_CACHED_KEY {
            compute(&mut self.direct);
            return &self.direct;
        }
        self.slots.get(table, key, compute)
    }
}

/// The rule set an engine evaluates: borrowed (replay, query), or shared so that an engine can
/// outlive its creator's borrow (the recorder swaps engines when SIGHUP reloads the rules).
enum Set<'a> {
    Borrowed(&'a RuleSet),
    Shared(std::sync::Arc<RuleSet>),
}

impl std::ops::Deref for Set<'_> {
    type Target = RuleSet;

    fn deref(&self) -> &RuleSet {
        match self {
            Set::Borrowed(s) => s,
            Set::Shared(s) => s,
        }
    }
}

/// Evaluates events against a rule set. Cheap to create; keep one per stream of events.
pub struct Engine<'a> {
    set: Set<'a>,
    paths: VerdictCache,
    comms: VerdictCache,
    procs: VerdictCache,
    proc_scratch: ProcScratch,
    /// For `old_path` (rare: only renames, links and symlinks have one; never cached).
    old_scratch: Scratch,
    /// For `raw_path` (only rule sets that have such conditions; never cached).
    raw_scratch: Scratch,
}

impl RuleSet {
    pub fn engine(&self) -> Engine<'_> {
        Engine::new(self)
    }
}

impl Engine<'static> {
    /// An engine that owns a share of its rule set.
    pub fn shared(set: std::sync::Arc<RuleSet>) -> Engine<'static> {
        Engine::with(Set::Shared(set))
    }
}

impl<'a> Engine<'a> {
    fn new(set: &'a RuleSet) -> Engine<'a> {
        Engine::with(Set::Borrowed(set))
    }

    fn with(set: Set<'a>) -> Engine<'a> {
        let words = set.compiled.words();
        Engine {
            set,
            paths: VerdictCache::new(words),
            comms: VerdictCache::new(words),
            procs: VerdictCache::new(words),
            proc_scratch: ProcScratch::default(),
            old_scratch: Scratch::default(),
            raw_scratch: Scratch::default(),
        }
    }

    pub fn rules(&self) -> &RuleSet {
        &self.set
    }

    /// Whether an exemption by executable (`not_exe`, `except: exe`) held for an image without a
    /// recorded identity (segments written before identities, or an exec the recorder could not
    /// judge): there it trusted the path alone. Replay and query say so once.
    pub fn trusted_unverified(&self) -> bool {
        self.proc_scratch.trusted_unverified
    }

    /// Calls `f` for every active rule that matches `ev`, in rule order.
    pub fn eval(&mut self, ev: &Event, mut f: impl FnMut(&Alert)) {
        let set: &RuleSet = &self.set;
        let c = &set.compiled;
        let active = c.active();
        if active.iter().all(|w| *w == 0) {
            return;
        }
        let p = match &ev.alias_of {
            None => self
                .paths
                .get(ev.table, &ev.path, |s, out, sc| c.path_verdict(s, out, sc)),
            // Rare (another name of a watched file): decided for the pair, never cached.
            Some(alias) => {
                let v = &mut self.paths;
                let out = &mut v.direct;
                c.aliased_path_verdict(ev.path.as_bytes(), alias.as_bytes(), out, &mut v.scratch);
                &v.direct[..]
            }
        };
        // Most events on most rule sets stop here.
        if active.iter().zip(p).all(|(a, p)| a & p == 0) {
            return;
        }
        let m = self
            .comms
            .get(ev.table, &ev.comm, |s, out, sc| c.comm_verdict(s, out, sc));
        if active
            .iter()
            .zip(p)
            .zip(m)
            .all(|((a, p), m)| a & p & m == 0)
        {
            return;
        }
        let ps = &mut self.proc_scratch;
        let l = self.procs.get_keyed(ev.table, ev.proc_key, |out| {
            c.proc_verdict(ev.process.as_deref(), out, ps)
        });
        let old = EventHits {
            old: ev
                .old_path
                .as_ref()
                .map(|o| c.old_path_hits(o.as_bytes(), &mut self.old_scratch)),
            raw: c.raw_path_hits(ev.raw_path.as_bytes(), &mut self.raw_scratch),
        };
        for (w, a) in active.iter().enumerate() {
            let mut cand = a & p[w] & m[w] & l[w];
            while cand != 0 {
                let rule = w * 64 + cand.trailing_zeros() as usize;
                cand &= cand - 1;
                if !c.preds_hold(rule, ev, &old) {
                    continue;
                }
                let excepted = c
                    .excepts(rule)
                    .iter()
                    .any(|&x| bit(p, x) && bit(m, x) && bit(l, x) && c.preds_hold(x, ev, &old));
                if excepted {
                    continue;
                }
                f(&Alert {
                    rule: &set.rules[rule],
                    event: ev,
                    matched: c.matched(rule, ev),
                    host: "",
                    rule_index: rule,
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
