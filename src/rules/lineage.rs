//! Conditions on the opener's process lineage: `exe`, `cmdline`, `parent_exe`, `parent_comm`,
//! `parent_cmdline`, `ancestor_exe`, `ancestor_comm`, `container`, `cwd`, `tty` (decided once per
//! process image and cached like path verdicts), and `user`, `euid`, `auid` (per event:
//! credentials can change within a process).
//!
//! An event without lineage (recorded before it existed) has no exe, parent, container or user:
//! a positive condition on them never holds there, a `not_` condition always does.

use globset::Candidate;

use super::pattern::{PatKind, PatternTable};
use crate::event::Event;
use crate::process::Process;

/// A string-valued lineage field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProcField {
    Exe,
    Cmdline,
    ParentExe,
    ParentComm,
    ParentCmdline,
    AncestorExe,
    AncestorComm,
    Container,
    Cwd,
    Tty,
}

impl ProcField {
    pub fn parse(key: &str) -> Option<ProcField> {
        Some(match key {
            "exe" => ProcField::Exe,
            "cmdline" => ProcField::Cmdline,
            "parent_exe" => ProcField::ParentExe,
            "parent_comm" => ProcField::ParentComm,
            "parent_cmdline" => ProcField::ParentCmdline,
            "ancestor_exe" => ProcField::AncestorExe,
            "ancestor_comm" => ProcField::AncestorComm,
            "container" => ProcField::Container,
            "cwd" => ProcField::Cwd,
            "tty" => ProcField::Tty,
            _ => return None,
        })
    }

    /// Which pattern table its values live in.
    pub fn table(self) -> Table {
        match self {
            ProcField::Exe | ProcField::ParentExe | ProcField::AncestorExe => Table::Exe,
            ProcField::ParentComm | ProcField::AncestorComm => Table::Comm,
            ProcField::Cmdline | ProcField::ParentCmdline => Table::Cmdline,
            ProcField::Container => Table::Container,
            ProcField::Cwd => Table::Cwd,
            ProcField::Tty => Table::Tty,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Table {
    Exe,
    Comm,
    Cmdline,
    Container,
    Cwd,
    Tty,
}

/// One lineage condition of a clause: any (or, negated, none) of `ids` matches the field.
#[derive(Clone, Debug)]
pub(super) struct ProcCond {
    pub field: ProcField,
    pub ids: Vec<u32>,
    /// The value that means "none" was given: `container: host` (a process in no container),
    /// `tty: none` (no controlling terminal).
    pub absent: bool,
    pub neg: bool,
    /// An `exe` condition whose match exempts the event (see `trust`): it matches only an image
    /// not known to be a fake (`exe_verified` true, or unknown: then the path is trusted, and
    /// `ProcScratch::trusted_unverified` says so).
    pub exempts: bool,
}

/// The pattern tables lineage conditions use (comm patterns share the event comm table).
#[derive(Clone, Debug, Default)]
pub(super) struct ProcTables {
    pub exe: PatternTable,
    pub cmdline: PatternTable,
    pub container: PatternTable,
    pub cwd: PatternTable,
    pub tty: PatternTable,
}

impl ProcTables {
    pub fn finish(&mut self) {
        self.exe.finish();
        self.cmdline.finish();
        self.container.finish();
        self.cwd.finish();
        self.tty.finish();
    }
}

/// Scratch space for one process verdict.
#[derive(Default)]
pub(super) struct ProcScratch {
    hit: Vec<bool>,
    tmp: Vec<usize>,
    /// An exempting `exe` match trusted an image without a recorded identity (its path alone).
    pub trusted_unverified: bool,
}

/// Whether `cond` holds for process `p` (`None`: an event without lineage).
pub(super) fn holds(
    cond: &ProcCond,
    p: Option<&Process>,
    t: &ProcTables,
    comms: &PatternTable,
    s: &mut ProcScratch,
) -> bool {
    let table = match cond.field.table() {
        Table::Exe => &t.exe,
        Table::Comm => comms,
        Table::Cmdline => &t.cmdline,
        Table::Container => &t.container,
        Table::Cwd => &t.cwd,
        Table::Tty => &t.tty,
    };
    let hit = match p {
        None => false,
        Some(p) => match cond.field {
            ProcField::Exe => {
                let hit = one(table, cond, p.exe.as_ref().map(|e| e.as_bytes()), s);
                if hit && cond.exempts {
                    s.trusted_unverified |= p.exe_verified.is_none();
                    p.exe_verified != Some(false)
                } else {
                    hit
                }
            }
            ProcField::Cmdline => match &p.argv {
                Some(_) => one(table, cond, Some(&p.cmdline()), s),
                None => false,
            },
            ProcField::ParentExe => one(
                table,
                cond,
                p.parent
                    .as_ref()
                    .and_then(|q| q.exe.as_ref())
                    .map(|e| e.as_bytes()),
                s,
            ),
            ProcField::ParentComm => {
                one(table, cond, p.parent.as_ref().map(|q| q.comm.as_bytes()), s)
            }
            ProcField::ParentCmdline => match p.parent.as_ref().filter(|q| q.argv.is_some()) {
                Some(q) => one(table, cond, Some(&q.cmdline()), s),
                None => false,
            },
            ProcField::AncestorExe => p
                .ancestors()
                .any(|a| one(table, cond, a.exe.as_ref().map(|e| e.as_bytes()), s)),
            ProcField::AncestorComm => p
                .ancestors()
                .any(|a| one(table, cond, Some(a.comm.as_bytes()), s)),
            ProcField::Container => match &p.container_id {
                None => cond.absent,
                Some(c) => one(table, cond, Some(c.as_bytes()), s),
            },
            ProcField::Cwd => one(table, cond, p.cwd.as_ref().map(|c| c.as_bytes()), s),
            ProcField::Tty => match &p.tty {
                None => cond.absent,
                Some(t) => one(table, cond, Some(t.as_bytes()), s),
            },
        },
    };
    hit != cond.neg
}

/// Whether any of the condition's patterns matches `value`.
fn one(table: &PatternTable, cond: &ProcCond, value: Option<&[u8]>, s: &mut ProcScratch) -> bool {
    let Some(v) = value else {
        return false;
    };
    if cond.ids.len() == 1 {
        return table.is_match(cond.ids[0], v);
    }
    table.matches(v, &mut s.hit, &mut s.tmp);
    cond.ids.iter().any(|i| s.hit[*i as usize])
}

/// `user:` values: exact names or globs, matched against the event's user name.
#[derive(Clone, Debug)]
pub(super) struct UserSet {
    pub pats: Vec<PatKind>,
}

impl UserSet {
    pub fn matches(&self, ev: &Event) -> bool {
        let Some(u) = &ev.user else {
            return false;
        };
        let u = u.as_bytes();
        self.pats.iter().any(|p| match p {
            PatKind::Exact(b) => **b == *u,
            PatKind::Prefix(b) => u.starts_with(b),
            PatKind::Glob(m) => m.is_match_candidate(&Candidate::from_bytes(u)),
            PatKind::Regex(r) => r.is_match(u),
        })
    }
}
