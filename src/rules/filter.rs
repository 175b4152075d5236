//! Command-line filters (`query`'s `--pid`, `--path`, `--ancestor`…): the flags, and the rule
//! conditions they stand for. Every given filter must hold.

use std::collections::{BTreeMap, BTreeSet};

use super::raw::{Items, RawConds};
use crate::event::Op;

/// Recorded user names and the uids each stood for (see `query::users`).
pub type KnownUsers = BTreeMap<String, BTreeSet<u32>>;

/// The filter flags; `RuleSet::from_filter` turns them into one rule.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Filter {
    /// Only these process ids (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub pid: Vec<u32>,
    /// Only these parent process ids.
    #[arg(long, value_delimiter = ',')]
    pub ppid: Vec<u32>,
    /// Only these user ids.
    #[arg(long, value_delimiter = ',')]
    pub uid: Vec<u32>,
    /// Only these process names (exact, or globs such as 'python*').
    #[arg(long, value_delimiter = ',')]
    pub comm: Vec<String>,
    /// Only paths matching: exact path, DIR/ for everything under DIR, or a glob ('*' within a
    /// component, '**' across). A rename or link matches by either name, a symlink by its
    /// target as given too.
    #[arg(long, value_name = "GLOB")]
    pub path: Vec<String>,
    /// Only these operations (comma-separated or repeated): open, rename, link, symlink,
    /// unlink, rmdir, mkdir, chmod, chown, truncate, exec [default: all].
    #[arg(long, value_delimiter = ',', value_name = "OP", value_parser = parse_op)]
    pub op: Vec<Op>,
    /// Only events that failed (an open or an operation that returned an error).
    #[arg(long)]
    pub failed: bool,
    /// Only events by these executables (paths or globs, as --path; e.g. '/usr/bin/python*').
    #[arg(long, value_name = "GLOB")]
    pub exe: Vec<String>,
    /// Only events in these containers (id or glob), or `host` for none.
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub container: Vec<String>,
    /// Only events by a process and all its descendants: a pid, or an executable path or glob.
    #[arg(long, value_name = "PID|EXE")]
    pub ancestor: Option<String>,
    /// Only events by these users: names or globs, as the recording knew them (the uid map
    /// stored with each segment); a name no segment of the range knows is an error.
    #[arg(long, value_delimiter = ',')]
    pub user: Vec<String>,
    /// Only events by processes of these login users (audit uid, kept across su and sudo): uids
    /// or recorded names.
    #[arg(long, value_delimiter = ',', value_name = "UID|NAME")]
    pub auid: Vec<String>,
}

/// `--op`'s values: an operation's name, else an error listing them all.
fn parse_op(s: &str) -> Result<Op, String> {
    Op::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Op::ALL.iter().map(|o| o.as_str()).collect();
        format!(
            "unknown operation {s:?}: expected one of {}",
            all.join(", ")
        )
    })
}

impl Filter {
    /// No filter given.
    pub fn is_empty(&self) -> bool {
        let Filter {
            pid,
            ppid,
            uid,
            comm,
            path,
            op,
            failed,
            exe,
            container,
            ancestor,
            user,
            auid,
        } = self;
        pid.is_empty()
            && ppid.is_empty()
            && uid.is_empty()
            && comm.is_empty()
            && path.is_empty()
            && op.is_empty()
            && !failed
            && exe.is_empty()
            && container.is_empty()
            && ancestor.is_none()
            && user.is_empty()
            && auid.is_empty()
    }

    /// Whether `--user` or `--auid` names a user (and so needs the recorded uid maps).
    pub fn names_users(&self) -> bool {
        !self.user.is_empty() || self.auid.iter().any(|a| a.parse::<u32>().is_err())
    }

    /// These filters with every user name turned into the uids `known` gives it: `--user` into
    /// `--uid` (with both given, the uids in both), `--auid` names into uids. A name or glob
    /// that `known` lacks is an error naming the names it has.
    pub fn resolve_users(&self, known: &KnownUsers) -> Result<Filter, String> {
        let mut out = self.clone();
        if !self.user.is_empty() {
            let uids = uids_of("--user", &self.user, known)?;
            out.uid = if self.uid.is_empty() {
                uids.into_iter().collect()
            } else {
                self.uid
                    .iter()
                    .copied()
                    .filter(|u| uids.contains(u))
                    .collect()
            };
            if out.uid.is_empty() {
                return Err(format!(
                    "--uid {} and --user {} have no uid in common: nothing could match",
                    list(self.uid.iter()),
                    self.user.join(",")
                ));
            }
            out.user.clear();
        }
        let mut auids = BTreeSet::new();
        for a in &self.auid {
            match a.parse::<u32>() {
                Ok(n) => {
                    auids.insert(n);
                }
                Err(_) => auids.extend(uids_of("--auid", std::slice::from_ref(a), known)?),
            }
        }
        out.auid = auids.iter().map(u32::to_string).collect();
        Ok(out)
    }

    /// The conditions, as alternatives of which any may match: with `--path`, the path as the
    /// event's `path` or as its `old_path`; with `--ancestor X`, each of those for the process X
    /// itself (by pid or exe) and for any of its descendants. Without `--op`, every operation.
    pub(super) fn alternatives(&self) -> Vec<RawConds> {
        let failure = if self.failed {
            vec!["failure".to_owned()]
        } else {
            Vec::new()
        };
        let ops: Vec<String> = self.op.iter().map(|o| o.as_str().to_owned()).collect();
        let conds = RawConds {
            pid: Items::from_ints(&self.pid),
            ppid: Items::from_ints(&self.ppid),
            uid: Items::from_ints(&self.uid),
            comm: Items::from_strs(&self.comm),
            op: Items::from_strs(&ops),
            result: Items::from_strs(&failure),
            exe: Items::from_strs(&self.exe),
            container: Items::from_strs(&self.container),
            user: Items::from_strs(&self.user),
            // Numbers once `resolve_users` turned names into uids; a name left is reported.
            auid: match self
                .auid
                .iter()
                .map(|a| a.parse())
                .collect::<Result<Vec<u32>, _>>()
            {
                Ok(ids) => Items::from_ints(&ids),
                Err(_) => Items::from_strs(&self.auid),
            },
            ..RawConds::default()
        };
        // A rename or link from the path, or to it: either name is the file's.
        let named: Vec<RawConds> = if self.path.is_empty() {
            vec![conds]
        } else {
            vec![
                conds.merged(RawConds {
                    path: Items::from_strs(&self.path),
                    ..RawConds::default()
                }),
                conds.merged(RawConds {
                    old_path: Items::from_strs(&self.path),
                    ..RawConds::default()
                }),
            ]
        };
        let Some(a) = &self.ancestor else {
            return named;
        };
        let (own, up) = match a.parse::<u32>() {
            Ok(pid) => (
                RawConds {
                    pid: Items::from_ints(&[pid]),
                    ..RawConds::default()
                },
                RawConds {
                    ancestor_pid: Items::from_ints(&[pid]),
                    ..RawConds::default()
                },
            ),
            Err(_) => (
                RawConds {
                    exe: Items::from_strs(std::slice::from_ref(a)),
                    ..RawConds::default()
                },
                RawConds {
                    ancestor_exe: Items::from_strs(std::slice::from_ref(a)),
                    ..RawConds::default()
                },
            ),
        };
        named
            .iter()
            .flat_map(|c| [c.merged(own.clone()), c.merged(up.clone())])
            .collect()
    }
}

/// The uids of the names (or globs) `pats` in `known`; every one must match.
fn uids_of(flag: &str, pats: &[String], known: &KnownUsers) -> Result<BTreeSet<u32>, String> {
    let mut out = BTreeSet::new();
    for p in pats {
        let glob = globset::Glob::new(p)
            .map_err(|e| format!("{flag} {p:?}: {e}"))?
            .compile_matcher();
        let mut hit = false;
        for (name, uids) in known {
            if name == p || glob.is_match(name) {
                hit = true;
                out.extend(uids);
            }
        }
        if !hit {
            return Err(if known.is_empty() {
                format!("{flag} {p:?}: no user names were recorded in the range")
            } else {
                format!(
                    "{flag} {p:?}: no user of that name was recorded in the range (recorded: {})",
                    list(known.keys())
                )
            });
        }
    }
    Ok(out)
}

/// `a, b, c`, or the first 20 of them and how many more.
fn list<T: std::fmt::Display>(items: impl ExactSizeIterator<Item = T>) -> String {
    let n = items.len();
    let mut text: Vec<String> = items.take(20).map(|i| i.to_string()).collect();
    if n > 20 {
        text.push(format!("… {} more", n - 20));
    }
    text.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> KnownUsers {
        KnownUsers::from([
            ("root".to_owned(), BTreeSet::from([0])),
            ("alice".to_owned(), BTreeSet::from([1000])),
            ("mallory".to_owned(), BTreeSet::from([1001])),
        ])
    }

    /// Issue #25 item 6: `--user mallory` answered nothing for an account created while
    /// recording, and a mistyped name as silently.
    #[test]
    fn user_names_resolve_to_recorded_uids_or_fail_loudly() {
        let f = Filter {
            user: vec!["mallory".into()],
            ..Filter::default()
        };
        let r = f.resolve_users(&known()).unwrap();
        assert_eq!((r.uid, r.user.len()), (vec![1001], 0));
        let f = Filter {
            user: vec!["mallroy".into()],
            ..Filter::default()
        };
        let e = f.resolve_users(&known()).unwrap_err();
        assert!(
            e.contains("--user \"mallroy\"") && e.contains("alice, mallory, root"),
            "{e}"
        );
        let e = f.resolve_users(&KnownUsers::new()).unwrap_err();
        assert!(e.contains("no user names were recorded"), "{e}");
        let f = Filter {
            user: vec!["*l*".into()],
            ..Filter::default()
        };
        assert_eq!(f.resolve_users(&known()).unwrap().uid, vec![1000, 1001]);
        let f = Filter {
            user: vec!["alice".into()],
            uid: vec![0, 1000],
            ..Filter::default()
        };
        assert_eq!(f.resolve_users(&known()).unwrap().uid, vec![1000]);
        let f = Filter {
            user: vec!["alice".into()],
            uid: vec![0],
            ..Filter::default()
        };
        assert!(f
            .resolve_users(&known())
            .unwrap_err()
            .contains("no uid in common"));
    }

    fn matches(f: &Filter, ev: &crate::event::Event) -> bool {
        super::super::RuleSet::from_filter("query", f)
            .unwrap()
            .engine()
            .matches(ev)
    }

    fn op_on(op: Op, path: &str, old: Option<&str>) -> crate::event::Event {
        crate::event::Event {
            op,
            path: path.into(),
            old_path: old.map(Into::into),
            ..crate::event::Event::default()
        }
    }

    /// Issue #27: `sed -i /etc/passwd` renames a temp file over it; `mv /etc/passwd /tmp/x`
    /// takes it away. `--path /etc/passwd` shows both, and its opens.
    #[test]
    fn path_matches_either_name_of_a_rename_or_link() {
        let f = Filter {
            path: vec!["/etc/passwd".into()],
            ..Filter::default()
        };
        for (ev, want) in [
            (op_on(Op::Open, "/etc/passwd", None), true),
            (op_on(Op::Rename, "/etc/passwd", Some("/etc/sedAbC")), true),
            (op_on(Op::Rename, "/tmp/x", Some("/etc/passwd")), true),
            (op_on(Op::Link, "/tmp/hard", Some("/etc/passwd")), true),
            (op_on(Op::Symlink, "/tmp/s", Some("/etc/passwd")), true),
            (op_on(Op::Unlink, "/etc/passwd", None), true),
            (op_on(Op::Rename, "/tmp/y", Some("/tmp/x")), false),
            (op_on(Op::Chmod, "/etc/shadow", None), false),
        ] {
            assert_eq!(
                matches(&f, &ev),
                want,
                "{:?} {:?} {:?}",
                ev.op,
                ev.path,
                ev.old_path
            );
        }
        // Each name alternative holds every other filter: a failed-only filter on either name.
        let failed = Filter {
            failed: true,
            ..f.clone()
        };
        let moved = op_on(Op::Rename, "/tmp/x", Some("/etc/passwd"));
        assert!(!matches(&failed, &moved));
        assert!(matches(&failed, &crate::event::Event { ret: -1, ..moved }));
    }

    /// Without `--op` a filter matches every operation (unlike a rule, which defaults to opens);
    /// with it, only those named.
    #[test]
    fn op_filters_operations_and_defaults_to_all() {
        let chmod = op_on(Op::Chmod, "/usr/bin/x", None);
        let open = op_on(Op::Open, "/usr/bin/x", None);
        let any = Filter {
            pid: vec![0],
            ..Filter::default()
        };
        assert!(matches(&any, &chmod) && matches(&any, &open));
        let only = Filter {
            op: vec![Op::Chmod, Op::Chown],
            ..Filter::default()
        };
        assert!(!only.is_empty());
        assert!(matches(&only, &chmod) && !matches(&only, &open));
        let e = parse_op("delete").unwrap_err();
        assert!(
            e.contains("\"delete\"") && e.contains("open, rename, link") && e.contains("truncate"),
            "{e}"
        );
        assert_eq!(parse_op("rmdir"), Ok(Op::Rmdir));
    }

    #[test]
    fn ancestor_and_path_make_four_alternatives() {
        let f = Filter {
            path: vec!["/etc/".into()],
            ancestor: Some("/usr/sbin/sshd".into()),
            ..Filter::default()
        };
        let alts = f.alternatives();
        assert_eq!(alts.len(), 4);
        assert!(alts.iter().all(|a| a.path.present != a.old_path.present));
        assert!(alts.iter().all(|a| a.exe.present != a.ancestor_exe.present));
    }

    #[test]
    fn auid_takes_numbers_and_recorded_names() {
        let f = Filter {
            auid: vec!["0".into(), "alice".into()],
            ..Filter::default()
        };
        assert!(f.names_users());
        assert_eq!(f.resolve_users(&known()).unwrap().auid, vec!["0", "1000"]);
        let f = Filter {
            auid: vec!["4242".into()],
            ..Filter::default()
        };
        assert!(!f.names_users());
        assert!(Filter {
            auid: vec!["bob".into()],
            ..Filter::default()
        }
        .resolve_users(&known())
        .unwrap_err()
        .contains("--auid \"bob\""));
    }
}
