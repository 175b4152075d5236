//! One condition set (a rule's, an `except` block's, or the command-line filters') → a `Clause`:
//! each key's values are expanded, checked, and their patterns added to the matcher's tables.

use super::access::ACCESS;
use super::age::Age;
use super::diag::{Ctx, Origin};
use super::expand::{Expander, Val};
use super::lineage::{ProcCond, ProcField, Table, UserSet};
use super::matcher::{Clause, Compiled, IdField, Pred, ResultSet};
use super::mode::MODE_BITS;
use super::pattern::{
    check_length, cmdline_pattern, comm_pattern, container_pattern, path_pattern, prefix_pattern,
    raw_path_pattern, tty_pattern, user_pattern,
};
use super::raw::{Item, Items};
use super::trust;
use crate::errno;
use crate::event::{Op, Syscall};

/// Names for "expected one of" messages.
pub(super) fn names(all: impl IntoIterator<Item = &'static str>) -> String {
    all.into_iter().collect::<Vec<_>>().join(", ")
}

/// Whose conditions a clause holds: a rule's own, an `except` block's, or command-line filters'.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Rule,
    Except,
    Filter,
}

impl Kind {
    /// For messages.
    fn what(self) -> &'static str {
        match self {
            Kind::Rule => "rule",
            Kind::Except => "except block",
            Kind::Filter => "filter",
        }
    }
}

/// What compiling conditions reads (the lists) and writes (the pattern tables).
pub(super) struct Compiler<'a> {
    pub lists: Expander<'a>,
    pub out: Compiled,
}

impl Compiler<'_> {
    /// Compiles one condition set of `kind`.
    pub fn clause(
        &mut self,
        ctx: &mut Ctx,
        conds: &[(&'static str, &Items)],
        at: &Origin,
        kind: Kind,
    ) -> Clause {
        let mut c = Clause::default();
        let mut any_condition = false;
        let mut op_given = false;
        for (key, items) in conds {
            if !items.present {
                continue;
            }
            any_condition = true;
            op_given |= matches!(*key, "op" | "not_op");
            let key_at = items.key_at(at, key);
            let neg = key.starts_with("not_");
            let field = key.trim_start_matches("not_");
            if !neg && items.items.is_empty() {
                ctx.error(
                    &key_at,
                    format!("`{key}: []` can never hold: give values or remove the key"),
                );
                continue;
            }
            let vals = self.lists.expand(ctx, items, &key_at);
            self.condition(ctx, &mut c, field, neg, &vals, &key_at);
        }
        if !any_condition {
            ctx.error(
                at,
                format!(
                    "this {} has no conditions (it would match every open); add at least one",
                    kind.what()
                ),
            );
        }
        // A rule is about opens unless it says otherwise, so that rules written before other
        // operations were recorded keep their meaning; an `except` block or filters hold for
        // whatever the rule (or query) matches.
        if kind == Kind::Rule && !op_given {
            c.preds.push(opens_only());
        }
        for p in &mut c.procs {
            p.exempts =
                p.field == ProcField::Exe && trust::exe_exempts(kind == Kind::Except, p.neg);
        }
        // Cheap, selective predicates first.
        c.preds.sort_by_key(|p| match p {
            Pred::Id { .. } | Pred::Cred { .. } => 0,
            Pred::Op { .. } | Pred::Mode { .. } | Pred::Age { .. } => 0,
            Pred::Syscall { .. } | Pred::Result { .. } => 1,
            Pred::Access { .. } | Pred::User { .. } | Pred::AncestorPid { .. } => 2,
        });
        c
    }

    /// Adds the condition `field` (`not_` already taken off into `neg`) with its values to `c`.
    fn condition(
        &mut self,
        ctx: &mut Ctx,
        c: &mut Clause,
        field: &str,
        neg: bool,
        vals: &[Val],
        key_at: &Origin,
    ) {
        match field {
            "path" | "path_prefix" => {
                let ids = self.path_ids(ctx, vals, field == "path_prefix", "a path");
                if neg {
                    c.path_none.extend(ids);
                } else {
                    c.path_any.get_or_insert_with(Vec::new).extend(ids);
                }
            }
            "old_path" => {
                let ids = self.old_path_ids(ctx, vals);
                if neg {
                    c.old_none.extend(ids);
                } else {
                    c.old_any.get_or_insert_with(Vec::new).extend(ids);
                }
            }
            "raw_path" => {
                let ids = self.raw_path_ids(ctx, vals);
                if neg {
                    c.raw_none.extend(ids);
                } else {
                    c.raw_any.get_or_insert_with(Vec::new).extend(ids);
                }
            }
            "proc_age" => c.preds.push(Pred::Age {
                set: ages(ctx, vals),
                neg,
            }),
            "op" => c.preds.push(Pred::Op {
                mask: op_mask(ctx, vals),
                neg,
            }),
            "mode_set" => c.preds.push(Pred::Mode {
                mask: mode_mask(ctx, vals),
                neg,
            }),
            "comm" => {
                let ids = self.comm_ids(ctx, vals);
                if neg {
                    c.comm_none.extend(ids);
                } else {
                    c.comm_any.get_or_insert_with(Vec::new).extend(ids);
                }
            }
            "uid" | "gid" | "pid" | "ppid" => {
                let f = match field {
                    "uid" => IdField::Uid,
                    "gid" => IdField::Gid,
                    "pid" => IdField::Pid,
                    _ => IdField::Ppid,
                };
                let set = ints(ctx, vals, field);
                c.preds.push(Pred::Id { field: f, set, neg });
            }
            "syscall" => c.preds.push(Pred::Syscall {
                mask: syscall_mask(ctx, vals),
                neg,
            }),
            "access" => c.preds.push(Pred::Access {
                mask: access_mask(ctx, vals),
                neg,
            }),
            "result" => c.preds.push(Pred::Result {
                set: result_set(ctx, vals),
                neg,
            }),
            "user" => c.preds.push(Pred::User {
                set: user_set(ctx, vals),
                neg,
            }),
            "ancestor_pid" => {
                let set = ints(ctx, vals, field);
                c.preds.push(Pred::AncestorPid { set, neg });
            }
            "euid" | "auid" => {
                let set = ints(ctx, vals, field);
                c.preds.push(Pred::Cred {
                    auid: field == "auid",
                    set,
                    neg,
                });
            }
            f => match ProcField::parse(f) {
                Some(pf) => {
                    let cond = self.proc_cond(ctx, pf, neg, vals);
                    c.procs.push(cond);
                }
                None => ctx.error(key_at, format!("unknown condition `{f}`")),
            },
        }
    }

    /// Path values (`prefix`: plain prefixes, as `path_prefix`), added to the path table; `what`
    /// names a value in messages.
    pub fn path_ids(&mut self, ctx: &mut Ctx, vals: &[Val], prefix: bool, what: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for v in vals {
            let Some(s) = v.text(ctx, what) else {
                continue;
            };
            let kind = if prefix {
                prefix_pattern(s)
            } else {
                path_pattern(s)
            };
            match kind {
                Ok(k) => ids.push(self.out.paths.add(s, k)),
                Err(e) => ctx.error(&v.at, e),
            }
        }
        ids
    }

    /// `old_path` values (as `path`'s), added to their own table.
    fn old_path_ids(&mut self, ctx: &mut Ctx, vals: &[Val]) -> Vec<u32> {
        let mut ids = Vec::new();
        for v in vals {
            let Some(s) = v.text(ctx, "a path") else {
                continue;
            };
            match path_pattern(s) {
                Ok(k) => ids.push(self.out.old_paths.add(s, k)),
                Err(e) => ctx.error(&v.at, e),
            }
        }
        ids
    }

    /// `raw_path` values (as `path`'s, relative ones allowed), added to their own table.
    fn raw_path_ids(&mut self, ctx: &mut Ctx, vals: &[Val]) -> Vec<u32> {
        let mut ids = Vec::new();
        for v in vals {
            let Some(s) = v.text(ctx, "a path") else {
                continue;
            };
            match raw_path_pattern(s) {
                Ok(k) => ids.push(self.out.raw_paths.add(s, k)),
                Err(e) => ctx.error(&v.at, e),
            }
        }
        ids
    }

    /// Process names, added to the comm table.
    pub fn comm_ids(&mut self, ctx: &mut Ctx, vals: &[Val]) -> Vec<u32> {
        let mut ids = Vec::new();
        for v in vals {
            let Some(name) = v.text(ctx, "a process name") else {
                continue;
            };
            match comm_pattern(name) {
                Ok(k) => ids.push(self.out.comms.add(name, k)),
                Err(e) => ctx.error(&v.at, e),
            }
        }
        ids
    }

    /// A lineage condition: its values go into the table of its field.
    fn proc_cond(&mut self, ctx: &mut Ctx, pf: ProcField, neg: bool, vals: &[Val]) -> ProcCond {
        let mut cond = ProcCond {
            field: pf,
            ids: Vec::new(),
            absent: false,
            neg,
            exempts: false,
        };
        let what = match pf.table() {
            Table::Exe => "a path",
            Table::Comm => "a process name",
            Table::Cmdline => "a command line",
            Table::Container => "a container id",
            Table::Cwd => "a path",
            Table::Tty => "a terminal name",
        };
        for v in vals {
            let Some(text) = v.text(ctx, what) else {
                continue;
            };
            if let Err(e) = check_length(text) {
                ctx.error(&v.at, e);
                continue;
            }
            let t = &mut self.out.ptables;
            let added = match pf.table() {
                Table::Exe => path_pattern(text).map(|k| t.exe.add(text, k)),
                Table::Comm => comm_pattern(text).map(|k| self.out.comms.add(text, k)),
                Table::Cmdline => cmdline_pattern(text).map(|k| t.cmdline.add(text, k)),
                Table::Container if text == "host" => {
                    cond.absent = true;
                    continue;
                }
                Table::Container => container_pattern(text).map(|k| t.container.add(text, k)),
                Table::Cwd => path_pattern(text).map(|k| t.cwd.add(text, k)),
                Table::Tty if text == "none" => {
                    cond.absent = true;
                    continue;
                }
                Table::Tty => tty_pattern(text).map(|k| t.tty.add(text, k)),
            };
            match added {
                Ok(id) => cond.ids.push(id),
                Err(e) => ctx.error(&v.at, e),
            }
        }
        cond
    }
}

/// Integer values (ids), sorted and deduplicated; `what` names them in messages.
fn ints(ctx: &mut Ctx, vals: &[Val], what: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for v in vals {
        match &v.item {
            Item::Int(i) => match u32::try_from(*i) {
                Ok(n) => out.push(n),
                Err(_) => ctx.error(
                    &v.at,
                    format!("{what} {i} is out of range (0..=4294967295)"),
                ),
            },
            Item::Str(s) => ctx.error(
                &v.at,
                format!("expected a {what} (an integer), found {s:?}"),
            ),
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// `proc_age` values.
fn ages(ctx: &mut Ctx, vals: &[Val]) -> Vec<Age> {
    let mut out = Vec::new();
    for v in vals {
        let Some(text) = v.text(ctx, "a process age such as \">5s\"") else {
            continue;
        };
        match Age::parse(text) {
            Ok(a) => out.push(a),
            Err(e) => ctx.error(&v.at, e),
        }
    }
    out
}

fn syscall_mask(ctx: &mut Ctx, vals: &[Val]) -> u128 {
    let mut mask = 0u128;
    for v in vals {
        let Some(name) = v.text(ctx, "a syscall name") else {
            continue;
        };
        match Syscall::parse(name) {
            Some(s) => mask |= 1 << s.code(),
            None => ctx.error(
                &v.at,
                format!(
                    "unknown syscall {name:?}, expected one of {}",
                    names(Syscall::ALL.iter().map(|s| s.as_str()))
                ),
            ),
        }
    }
    mask
}

/// The condition of a rule that names no `op`: opens only.
pub(super) fn opens_only() -> Pred {
    Pred::Op {
        mask: 1 << Op::Open.code(),
        neg: false,
    }
}

fn op_mask(ctx: &mut Ctx, vals: &[Val]) -> u32 {
    let ops: Vec<(&str, u32)> = Op::ALL
        .iter()
        .map(|o| (o.as_str(), 1 << o.code()))
        .collect();
    name_mask(ctx, vals, "an operation name", "op", &ops)
}

fn mode_mask(ctx: &mut Ctx, vals: &[Val]) -> u32 {
    name_mask(ctx, vals, "a mode bit name", "mode bit", MODE_BITS)
}

fn access_mask(ctx: &mut Ctx, vals: &[Val]) -> u32 {
    name_mask(ctx, vals, "an access name", "access", ACCESS)
}

/// The bits of the names in `vals`, from `table`; an unknown name is an error listing them all.
fn name_mask(
    ctx: &mut Ctx,
    vals: &[Val],
    expected: &str,
    kind: &str,
    table: &[(&'static str, u32)],
) -> u32 {
    let mut mask = 0;
    for v in vals {
        let Some(name) = v.text(ctx, expected) else {
            continue;
        };
        match table.iter().find(|(n, _)| *n == name) {
            Some((_, b)) => mask |= b,
            None => ctx.error(
                &v.at,
                format!(
                    "unknown {kind} {name:?}, expected one of {}",
                    names(table.iter().map(|(n, _)| *n))
                ),
            ),
        }
    }
    mask
}

/// `success`, `failure` and errno names.
fn result_set(ctx: &mut Ctx, vals: &[Val]) -> ResultSet {
    let mut set = ResultSet::default();
    for v in vals {
        let Some(name) = v.text(ctx, "a result") else {
            continue;
        };
        match name {
            "success" => set.success = true,
            "failure" => set.failure = true,
            n => match errno::by_name(n) {
                Some(e) => set.errnos.push(i64::from(e)),
                None => ctx.error(
                    &v.at,
                    format!(
                        "unknown result {name:?}, expected `success`, `failure` or an errno name such as EACCES or ENOENT{}",
                        errno::by_name(&n.to_ascii_uppercase())
                            .map(|_| format!(" (did you mean {}?)", n.to_ascii_uppercase()))
                            .unwrap_or_default()
                    ),
                ),
            },
        }
    }
    set
}

fn user_set(ctx: &mut Ctx, vals: &[Val]) -> UserSet {
    let mut pats = Vec::new();
    for v in vals {
        let Some(name) = v.text(ctx, "a user name") else {
            continue;
        };
        match user_pattern(name) {
            Ok(k) => pats.push(k),
            Err(e) => ctx.error(&v.at, e),
        }
    }
    UserSet { pats }
}
