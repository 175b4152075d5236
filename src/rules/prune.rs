//! The pruning predicate of a rule set: what an event must have for ANY active rule to match it,
//! in the terms store summaries answer (`store::Need`), so that readings skip segments and
//! blocks no rule can match in. Conservative: a condition summaries cannot decide adds no term,
//! and `except` blocks are ignored (they only take matches away).
//!
//! What prunes: exact paths (`path`, `old_path`; a path matches by its `alias_of` too, which the
//! summaries hold in the same namespace), literal prefixes (`dir/` values and the text of a glob
//! before its first `*?[{\`, by their directory part: `/etc/sh*` by `/etc/`), the same for
//! `exe`, exact `container` ids, `pid`, `uid`, `op` and `success`/`failure`. What does not:
//! globs that start with a wildcard (`**/shadow`), `comm`, `cmdline`, parents and ancestors,
//! `user`, `euid`, `auid`, `gid`, `ppid`, `syscall`, access and mode conditions, `cwd`, `tty`,
//! `proc_age`, `raw_path` (summaries hold none of them), `not_` forms (but `not_op`, which is an
//! op mask like `op`), and `container: host`.

use super::lineage::ProcField;
use super::matcher::{bit, Clause, IdField, Pred};
use super::pattern::{ignores_case, PatKind, PatternTable};
use super::set::RuleSet;
use crate::need::{Key, Need, Term};

impl RuleSet {
    /// The events some active rule may match, for pruning readings (see the module docs).
    pub fn need(&self) -> Need {
        let c = &self.compiled;
        let alternatives = (0..self.rules.len())
            .filter(|&i| bit(c.active(), i))
            .map(|i| self.terms(&c.clauses[i]))
            .collect();
        Need::any_of(alternatives)
    }

    fn terms(&self, cl: &Clause) -> Vec<Term> {
        let c = &self.compiled;
        let mut terms = Vec::new();
        let paths = |t: &PatternTable, ids: &Option<Vec<u32>>| {
            let ids = ids.as_ref()?;
            ids.iter()
                .map(|&id| key_of(&t.pats[id as usize].kind, &t.pats[id as usize].text, false))
                .collect::<Option<Vec<Key>>>()
        };
        terms.extend(paths(&c.paths, &cl.path_any).map(Term::AnyKey));
        terms.extend(paths(&c.old_paths, &cl.old_any).map(Term::AnyKey));
        for cond in cl.procs.iter().filter(|p| !p.neg && !p.absent) {
            let (table, exe) = match cond.field {
                ProcField::Exe => (&c.ptables.exe, true),
                ProcField::Container => (&c.ptables.container, false),
                _ => continue,
            };
            let keys = cond
                .ids
                .iter()
                .map(|&id| {
                    let p = &table.pats[id as usize];
                    match (&p.kind, exe) {
                        (kind, true) => key_of(kind, &p.text, true),
                        (PatKind::Exact(b), false) => Some(Key::Container(b.clone())),
                        _ => None,
                    }
                })
                .collect::<Option<Vec<Key>>>();
            terms.extend(keys.map(Term::AnyKey));
        }
        for p in &cl.preds {
            match p {
                Pred::Id {
                    field: IdField::Pid,
                    set,
                    neg: false,
                } => terms.push(Term::AnyKey(set.iter().map(|&n| Key::Pid(n)).collect())),
                Pred::Id {
                    field: IdField::Uid,
                    set,
                    neg: false,
                } => terms.push(Term::AnyKey(set.iter().map(|&n| Key::Uid(n)).collect())),
                Pred::Op { mask, neg } => terms.push(Term::Ops(if *neg { !mask } else { *mask })),
                Pred::Result { set, neg } => {
                    let failed = set.failure || !set.errnos.is_empty();
                    terms.push(if *neg {
                        // Outside a set of errnos, other failures remain.
                        Term::Result {
                            ok: !set.success,
                            failed: !set.failure,
                        }
                    } else {
                        Term::Result {
                            ok: set.success,
                            failed,
                        }
                    });
                }
                _ => {}
            }
        }
        terms
    }
}

/// The key a pattern needs its string to have; `None`: it cannot prune.
fn key_of(kind: &PatKind, text: &str, exe: bool) -> Option<Key> {
    let prefix = |p: &[u8]| {
        if exe {
            Key::exe_prefix(p)
        } else {
            Key::path_prefix(p)
        }
    };
    match kind {
        // Summaries hold the bytes as recorded: another case of them, or a regex, cannot be
        // looked up (case-insensitive values are globs, `i:` written first).
        PatKind::Regex(_) => None,
        PatKind::Glob(_) if ignores_case(text) => None,
        PatKind::Exact(b) if exe => Some(Key::Exe(b.clone())),
        PatKind::Exact(b) => Some(Key::Path(b.clone())),
        PatKind::Prefix(b) => prefix(b),
        PatKind::Glob(_) => {
            let end = text.find(['*', '?', '[', '{', '\\']).unwrap_or(text.len());
            prefix(&text.as_bytes()[..end])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The need of rules given as `name: conditions` lines (YAML flow mappings).
    fn need(rules: &[&str]) -> Need {
        let yaml: String = rules
            .iter()
            .enumerate()
            .map(|(i, r)| format!("- {{name: r{i}, description: d, severity: low, {r}}}\n"))
            .collect();
        RuleSet::from_yaml("t.yaml", &format!("rules:\n{yaml}"))
            .unwrap()
            .need()
    }

    #[test]
    fn case_insensitive_and_regex_values_prune_nothing() {
        for cond in [
            r#"path: "i:/ETC/shadow""#,
            r#"path: "i:/ETC/*""#,
            r#"exe: "i:/USR/bin/cat""#,
            r#"path: "re:^/etc/shadow$""#,
        ] {
            // Only the default op (open) is left to prune by: no key.
            assert_eq!(need(&[cond]), need(&["comm: cat"]), "{cond}");
        }
    }

    #[test]
    fn rules_prune_by_what_every_match_needs() {
        let n = need(&["path: /etc/shadow, op: [open, unlink], result: [failure]"]);
        let Some([alt]) = n.alternatives() else {
            panic!("{n:?}")
        };
        assert!(alt.contains(&Term::AnyKey(vec![Key::Path(b"/etc/shadow"[..].into())])));
        assert!(alt.contains(&Term::Result {
            ok: false,
            failed: true
        }));
        assert!(alt
            .iter()
            .any(|t| matches!(t, Term::Ops(m) if *m == (1 << 1) | (1 << 5))));
    }

    #[test]
    fn globs_prune_by_their_literal_directory_and_wildcards_not_at_all() {
        let n = need(&["path: '/etc/ssh/ssh*_config', op: [open]"]);
        let alt = &n.alternatives().unwrap()[0];
        assert!(alt.contains(&Term::AnyKey(vec![Key::PathDir(b"/etc/ssh/"[..].into())])));
        let n = need(&["path: ['**/shadow', /etc/passwd]"]);
        assert!(!n.alternatives().unwrap()[0]
            .iter()
            .any(|t| matches!(t, Term::AnyKey(_))));
    }

    #[test]
    fn conditions_summaries_cannot_decide_add_no_term() {
        // Every rule has an op (`[open]` unless it says): b prunes by that alone.
        let n = need(&["path: /etc/shadow", "comm: sshd"]);
        let alts = n.alternatives().unwrap();
        assert_eq!(alts.len(), 2);
        assert_eq!(alts[1], [Term::Ops(1 << 1)]);
        let n = need(&[
            "path: /etc/shadow",
            "comm: sshd, op: [open], pid: [7], not_uid: [0]",
        ]);
        assert_eq!(
            n.alternatives().unwrap()[1],
            [Term::AnyKey(vec![Key::Pid(7)]), Term::Ops(1 << 1)]
        );
    }
}
