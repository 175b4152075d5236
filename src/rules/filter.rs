//! Command-line filters (`query`'s `--pid`, `--path`, `--ancestor`…): the flags, and the rule
//! conditions they stand for. Every given filter must hold.

use super::raw::{Items, RawConds};

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
    /// component, '**' across).
    #[arg(long, value_name = "GLOB")]
    pub path: Vec<String>,
    /// Only opens that failed.
    #[arg(long)]
    pub failed: bool,
    /// Only opens by these executables (paths or globs, as --path; e.g. '/usr/bin/python*').
    #[arg(long, value_name = "GLOB")]
    pub exe: Vec<String>,
    /// Only opens in these containers (id or glob), or `host` for none.
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub container: Vec<String>,
    /// Only opens by a process and all its descendants: a pid, or an executable path or glob.
    #[arg(long, value_name = "PID|EXE")]
    pub ancestor: Option<String>,
    /// Only opens by these users (names, as recorded on the host).
    #[arg(long, value_delimiter = ',')]
    pub user: Vec<String>,
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
            failed,
            exe,
            container,
            ancestor,
            user,
        } = self;
        pid.is_empty()
            && ppid.is_empty()
            && uid.is_empty()
            && comm.is_empty()
            && path.is_empty()
            && !failed
            && exe.is_empty()
            && container.is_empty()
            && ancestor.is_none()
            && user.is_empty()
    }

    /// The conditions, as alternatives of which any may match: one, or with `--ancestor X` two
    /// (the process X itself, by pid or exe, or any of its descendants).
    pub(super) fn alternatives(&self) -> Vec<RawConds> {
        let failure = if self.failed {
            vec!["failure".to_owned()]
        } else {
            Vec::new()
        };
        let conds = RawConds {
            pid: Items::from_ints(&self.pid),
            ppid: Items::from_ints(&self.ppid),
            uid: Items::from_ints(&self.uid),
            comm: Items::from_strs(&self.comm),
            path: Items::from_strs(&self.path),
            result: Items::from_strs(&failure),
            exe: Items::from_strs(&self.exe),
            container: Items::from_strs(&self.container),
            user: Items::from_strs(&self.user),
            ..RawConds::default()
        };
        let Some(a) = &self.ancestor else {
            return vec![conds];
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
        vec![conds.merged(own), conds.merged(up)]
    }
}
