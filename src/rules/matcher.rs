//! The matcher: a rule set's compiled conditions and their evaluation. Each rule and each `except`
//! block is a `Clause`; string conditions are decided per distinct string for every clause at
//! once (a bitset, which the engine caches), lineage ones per process image, numeric ones per event.

use super::access::access_of;
use super::age::Age;
use super::lineage::{self, ProcCond, ProcField, ProcScratch, ProcTables, UserSet};
use super::pattern::PatternTable;
use crate::event::Event;
use crate::process::Process;

#[derive(Clone, Copy, Debug)]
pub(super) enum IdField {
    Uid,
    Gid,
    Pid,
    Ppid,
}

#[derive(Clone, Debug, Default)]
pub(super) struct ResultSet {
    pub(super) success: bool,
    pub(super) failure: bool,
    pub(super) errnos: Vec<i64>,
}

/// The conditions on an event's numbers (strings are decided per string, see `Compiled`).
#[derive(Clone, Debug)]
pub(super) enum Pred {
    Id {
        field: IdField,
        set: Vec<u32>,
        neg: bool,
    },
    Syscall {
        mask: u128,
        neg: bool,
    },
    Access {
        mask: u32,
        neg: bool,
    },
    Result {
        set: ResultSet,
        neg: bool,
    },
    User {
        set: UserSet,
        neg: bool,
    },
    /// `euid` (the open's effective uid) or `auid` (the process's login uid); an event that does
    /// not know it matches no value.
    Cred {
        auid: bool,
        set: Vec<u32>,
        neg: bool,
    },
    /// `ancestor_pid`: a pid among the opener's ancestors.
    AncestorPid {
        set: Vec<u32>,
        neg: bool,
    },
    /// `op` (bits `1 << Op::code()`): what the event did; a rule without `op` or `not_op` has
    /// `[open]`.
    Op {
        mask: u32,
        neg: bool,
    },
    /// `mode_set`: any of these bits set in `mode`.
    Mode {
        mask: u32,
        neg: bool,
    },
    /// `proc_age`: the opener's age at the event meets any of these; an event without its
    /// process (no lineage) meets none.
    Age {
        set: Vec<Age>,
        neg: bool,
    },
}

impl Pred {
    fn holds(&self, ev: &Event) -> bool {
        match self {
            Pred::Id { field, set, neg } => {
                let v = match field {
                    IdField::Uid => ev.uid,
                    IdField::Gid => ev.gid,
                    IdField::Pid => ev.pid,
                    IdField::Ppid => ev.ppid,
                };
                set.contains(&v) != *neg
            }
            Pred::Syscall { mask, neg } => ((mask & (1u128 << ev.syscall.code())) != 0) != *neg,
            Pred::Access { mask, neg } => (access_of(ev) & mask != 0) != *neg,
            Pred::Result { set, neg } => {
                let hit = if ev.ret >= 0 {
                    set.success
                } else {
                    set.failure
                        || ev
                            .ret
                            .checked_neg()
                            .is_some_and(|e| set.errnos.contains(&e))
                };
                hit != *neg
            }
            Pred::User { set, neg } => set.matches(ev) != *neg,
            Pred::AncestorPid { set, neg } => {
                let hit = ev
                    .process
                    .as_ref()
                    .is_some_and(|p| p.ancestors().any(|a| set.contains(&a.pid)));
                hit != *neg
            }
            Pred::Op { mask, neg } => ((mask & (1u32 << ev.op.code())) != 0) != *neg,
            Pred::Mode { mask, neg } => ((ev.mode & mask) != 0) != *neg,
            Pred::Age { set, neg } => {
                let hit = ev.process.as_ref().is_some_and(|p| {
                    let age = ev.ts_ns.saturating_sub(p.start_ns);
                    set.iter().any(|a| a.holds(age))
                });
                hit != *neg
            }
            Pred::Cred { auid, set, neg } => {
                let v = if *auid {
                    ev.process.as_ref().and_then(|p| p.auid)
                } else {
                    ev.euid
                };
                v.is_some_and(|v| set.contains(&v)) != *neg
            }
        }
    }
}

/// One rule's or one `except` block's conditions.
#[derive(Clone, Debug, Default)]
pub(super) struct Clause {
    /// `None`: no positive path condition. `Some([])` can hold for no path.
    pub(super) path_any: Option<Vec<u32>>,
    pub(super) path_none: Vec<u32>,
    pub(super) comm_any: Option<Vec<u32>>,
    pub(super) comm_none: Vec<u32>,
    /// `old_path` patterns (ids in `Compiled::old_paths`); an event without one matches none.
    pub(super) old_any: Option<Vec<u32>>,
    pub(super) old_none: Vec<u32>,
    /// `raw_path` patterns (ids in `Compiled::raw_paths`), matched on the path as passed.
    pub(super) raw_any: Option<Vec<u32>>,
    pub(super) raw_none: Vec<u32>,
    /// Lineage conditions, decided once per process image.
    pub(super) procs: Vec<ProcCond>,
    pub(super) preds: Vec<Pred>,
}

fn first_match<'t>(t: &'t PatternTable, ids: &Option<Vec<u32>>, s: &[u8]) -> Option<&'t str> {
    ids.as_ref()?
        .iter()
        .find(|&&id| t.is_match(id, s))
        .map(|&id| t.pats[id as usize].text.as_str())
}

fn strings_ok(any: &Option<Vec<u32>>, none: &[u32], hit: &[bool]) -> bool {
    let any_ok = match any {
        None => true,
        Some(ids) => ids.iter().any(|i| hit[*i as usize]),
    };
    any_ok && !none.iter().any(|i| hit[*i as usize])
}

/// The patterns matching an event's strings that are decided per event, as bits by pattern id:
/// `old` of `old_path` (`None`: the event has none), `raw` of `raw_path` (`None`: the rule set
/// has no `raw_path` patterns).
pub(super) struct EventHits<'a> {
    pub old: Option<&'a [bool]>,
    pub raw: Option<&'a [bool]>,
}

impl EventHits<'_> {
    fn holds(&self, cl: &Clause) -> bool {
        let old = match self.old {
            Some(hit) => strings_ok(&cl.old_any, &cl.old_none, hit),
            // No value matches a missing old name: a positive condition fails, a `not_` holds.
            None => cl.old_any.is_none(),
        };
        old && self
            .raw
            .is_none_or(|hit| strings_ok(&cl.raw_any, &cl.raw_none, hit))
    }
}

/// Scratch buffers for matching one string (`alias`: the second of two).
#[derive(Default)]
pub(super) struct Scratch {
    hit: Vec<bool>,
    alias: Vec<bool>,
    tmp: Vec<usize>,
}

/// The compiled form of a rule set. Clause `i < rules` is rule `i`'s own; the rest are `except`s.
#[derive(Clone, Debug, Default)]
pub(super) struct Compiled {
    pub(super) paths: PatternTable,
    /// `old_path` patterns: matched per event, and only for events that have an old name.
    pub(super) old_paths: PatternTable,
    /// `raw_path` patterns: matched per event, and only when the set has some.
    pub(super) raw_paths: PatternTable,
    pub(super) comms: PatternTable,
    pub(super) clauses: Vec<Clause>,
    pub(super) excepts: Vec<Vec<usize>>,
    /// Bits of the rules that run (enabled, or chosen by `RuleSet::only`).
    active: Vec<u64>,
    /// Clauses without path (comm) conditions: their bit is always set.
    path_free: Vec<u64>,
    comm_free: Vec<u64>,
    path_clauses: Vec<usize>,
    comm_clauses: Vec<usize>,
    pub(super) ptables: ProcTables,
    proc_free: Vec<u64>,
    proc_clauses: Vec<usize>,
}

fn set_bit(words: &mut [u64], i: usize) {
    words[i / 64] |= 1 << (i % 64);
}

pub(super) fn bit(words: &[u64], i: usize) -> bool {
    words[i / 64] & (1 << (i % 64)) != 0
}

impl Compiled {
    /// Words in a clause bitset.
    pub fn words(&self) -> usize {
        self.clauses.len().div_ceil(64)
    }

    /// The active rules' bits (a prefix of a clause bitset).
    pub fn active(&self) -> &[u64] {
        &self.active
    }

    pub fn activate_only(&mut self, rule: usize) {
        self.active.iter_mut().for_each(|w| *w = 0);
        set_bit(&mut self.active, rule);
    }

    /// Bits of the clauses whose path conditions hold for `path`.
    pub fn path_verdict(&self, path: &[u8], out: &mut [u64], s: &mut Scratch) {
        out.copy_from_slice(&self.path_free);
        if self.path_clauses.is_empty() {
            return;
        }
        self.paths.matches(path, &mut s.hit, &mut s.tmp);
        for &c in &self.path_clauses {
            let cl = &self.clauses[c];
            if strings_ok(&cl.path_any, &cl.path_none, &s.hit) {
                set_bit(out, c);
            }
        }
    }

    /// Bits of the clauses whose path conditions hold for an open of `path` that is also
    /// `alias` (`Event::alias_of`): a pattern matches when it matches either name, so `path`
    /// conditions hold when any value matches either, `not_path` ones when none matches either.
    pub fn aliased_path_verdict(
        &self,
        path: &[u8],
        alias: &[u8],
        out: &mut [u64],
        s: &mut Scratch,
    ) {
        out.copy_from_slice(&self.path_free);
        if self.path_clauses.is_empty() {
            return;
        }
        self.paths.matches(alias, &mut s.alias, &mut s.tmp);
        self.paths.matches(path, &mut s.hit, &mut s.tmp);
        for (h, a) in s.hit.iter_mut().zip(&s.alias) {
            *h |= a;
        }
        for &c in &self.path_clauses {
            let cl = &self.clauses[c];
            if strings_ok(&cl.path_any, &cl.path_none, &s.hit) {
                set_bit(out, c);
            }
        }
    }

    /// Bits of the clauses whose comm conditions hold for `comm`.
    pub fn comm_verdict(&self, comm: &[u8], out: &mut [u64], s: &mut Scratch) {
        out.copy_from_slice(&self.comm_free);
        if self.comm_clauses.is_empty() {
            return;
        }
        self.comms.matches(comm, &mut s.hit, &mut s.tmp);
        for &c in &self.comm_clauses {
            let cl = &self.clauses[c];
            if strings_ok(&cl.comm_any, &cl.comm_none, &s.hit) {
                set_bit(out, c);
            }
        }
    }

    /// Bits of the clauses whose lineage conditions hold for process `p` (`None`: no lineage).
    pub fn proc_verdict(&self, p: Option<&Process>, out: &mut [u64], s: &mut ProcScratch) {
        out.copy_from_slice(&self.proc_free);
        for &c in &self.proc_clauses {
            let ok = self.clauses[c]
                .procs
                .iter()
                .all(|cond| lineage::holds(cond, p, &self.ptables, &self.comms, s));
            if ok {
                set_bit(out, c);
            }
        }
    }

    /// The `old_path` patterns matching `old`, as bits by pattern id.
    pub fn old_path_hits<'s>(&self, old: &[u8], s: &'s mut Scratch) -> &'s [bool] {
        self.old_paths.matches(old, &mut s.hit, &mut s.tmp);
        &s.hit
    }

    /// The `raw_path` patterns matching `raw`, as bits by pattern id; `None` when the set has
    /// none (then no clause has a `raw_path` condition).
    pub fn raw_path_hits<'s>(&self, raw: &[u8], s: &'s mut Scratch) -> Option<&'s [bool]> {
        if self.raw_paths.pats.is_empty() {
            return None;
        }
        self.raw_paths.matches(raw, &mut s.hit, &mut s.tmp);
        Some(&s.hit)
    }

    /// Whether clause `c`'s per-event conditions hold: its numbers, `old_path` and `raw_path`.
    pub fn preds_hold(&self, c: usize, ev: &Event, hits: &EventHits) -> bool {
        let cl = &self.clauses[c];
        cl.preds.iter().all(|p| p.holds(ev)) && hits.holds(cl)
    }

    pub fn excepts(&self, rule: usize) -> &[usize] {
        &self.excepts[rule]
    }

    /// The alert's `matched`, as the rule reference ("Alerts", in `mod.rs`) defines it.
    pub fn matched(&self, rule: usize, ev: &Event) -> Option<&str> {
        let cl = &self.clauses[rule];
        first_match(&self.paths, &cl.path_any, ev.path.as_bytes())
            .or_else(|| {
                let alias = ev.alias_of.as_ref()?;
                first_match(&self.paths, &cl.path_any, alias.as_bytes())
            })
            .or_else(|| {
                let old = ev.old_path.as_ref()?;
                first_match(&self.old_paths, &cl.old_any, old.as_bytes())
            })
            .or_else(|| first_match(&self.raw_paths, &cl.raw_any, ev.raw_path.as_bytes()))
            .or_else(|| first_match(&self.comms, &cl.comm_any, ev.comm.as_bytes()))
            .or_else(|| {
                let exe = ev.process.as_ref()?.exe.as_ref()?;
                let ids = cl
                    .procs
                    .iter()
                    .find(|c| c.field == ProcField::Exe && !c.neg)?;
                first_match(&self.ptables.exe, &Some(ids.ids.clone()), exe.as_bytes())
            })
    }

    /// Builds the tables' glob sets and the clause bitsets once every clause is in.
    pub fn finish(&mut self, enabled: &[bool]) {
        self.paths.finish();
        self.old_paths.finish();
        self.raw_paths.finish();
        self.comms.finish();
        self.ptables.finish();
        let words = self.words();
        self.active = vec![0; words];
        for (i, on) in enabled.iter().enumerate() {
            if *on {
                set_bit(&mut self.active, i);
            }
        }
        self.path_free = vec![0; words];
        self.comm_free = vec![0; words];
        self.proc_free = vec![0; words];
        self.path_clauses.clear();
        self.comm_clauses.clear();
        self.proc_clauses.clear();
        for (i, c) in self.clauses.iter().enumerate() {
            if c.procs.is_empty() {
                set_bit(&mut self.proc_free, i);
            } else {
                self.proc_clauses.push(i);
            }
            if c.path_any.is_none() && c.path_none.is_empty() {
                set_bit(&mut self.path_free, i);
            } else {
                self.path_clauses.push(i);
            }
            if c.comm_any.is_none() && c.comm_none.is_empty() {
                set_bit(&mut self.comm_free, i);
            } else {
                self.comm_clauses.push(i);
            }
        }
    }
}
