//! The SQL value of each `events` column for one event: one definition, which the cursor hands
//! SQLite and the pushed-down constraints (`pushdown.rs`) compare against, so the two cannot
//! disagree about what a row holds.

use std::borrow::Cow;

use crate::bytes::Str;
use crate::columns::Column;
use crate::errno;
use crate::event::Event;
use crate::process::Process;
use crate::rules::access_names;
use crate::timespec::format_ts;

/// One value as SQLite sees it (booleans are integers, as SQLite stores them).
#[derive(Debug, PartialEq)]
pub(crate) enum Cell<'a> {
    Null,
    Int(i64),
    Text(Cow<'a, str>),
}

impl<'a> From<Option<i64>> for Cell<'a> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Cell::Null, Cell::Int)
    }
}

fn int(v: impl Into<i64>) -> Cell<'static> {
    Cell::Int(v.into())
}

fn opt_int<T: Into<i64>>(v: Option<T>) -> Cell<'static> {
    v.map(Into::into).into()
}

/// Valid UTF-8 (nearly every path) is borrowed, not copied.
fn text(s: &Str) -> Cell<'_> {
    Cell::Text(s.lossy())
}

fn opt_text(s: Option<&Str>) -> Cell<'_> {
    s.map_or(Cell::Null, text)
}

fn owned(s: Option<String>) -> Cell<'static> {
    s.map_or(Cell::Null, |s| Cell::Text(Cow::Owned(s)))
}

/// The value of `col` for event `e`, whose `seq` is given (see the module documentation of
/// `query`); a column `events` does not have is NULL.
pub(crate) fn event_cell(seq: i64, e: &Event, col: Column) -> Cell<'_> {
    let p = e.process.as_deref();
    match col {
        Column::Seq => int(seq),
        Column::Ts => owned(Some(format_ts(e.ts_ns))),
        Column::TsNs => int(e.ts_ns),
        Column::Pid => int(e.pid),
        Column::Tid => int(e.tid),
        Column::Ppid => int(e.ppid),
        Column::Uid => int(e.uid),
        Column::Gid => int(e.gid),
        Column::Comm => text(&e.comm),
        Column::Syscall => Cell::Text(e.syscall.as_str().into()),
        Column::Op => Cell::Text(e.op.as_str().into()),
        Column::Path => text(&e.path),
        Column::OldPath => opt_text(e.old_path.as_ref()),
        Column::RawPath => text(&e.raw_path),
        Column::PathSource => Cell::Text(e.path_source.as_str().into()),
        Column::PathTruncated => int(e.path_truncated),
        Column::Dirfd => opt_int(e.dirfd),
        // Flags are at most 32 bits wide in the kernel; SQLite integers are signed 64.
        Column::Flags => int(e.flags as i64),
        Column::Mode => int(e.mode),
        Column::Ret => int(e.ret),
        Column::Errno => errno::name_of_ret(e.ret).map_or(Cell::Null, |n| Cell::Text(n.into())),
        Column::Result => owned(Some(result_of(e.ret))),
        Column::Access => owned(Some(access_names(e))),
        Column::NewUid => opt_int(e.new_uid),
        Column::NewGid => opt_int(e.new_gid),
        Column::Length => opt_int(e.length),
        Column::Image => owned(p.map(Process::image_key)),
        Column::ProcStartNs => opt_int(p.map(|p| p.start_ns)),
        Column::Exe => opt_text(p.and_then(|p| p.exe.as_ref())),
        Column::Cmdline => owned(p.map(|p| String::from_utf8_lossy(&p.cmdline()).into_owned())),
        Column::ParentExe => opt_text(p.and_then(|p| p.parent.as_ref()?.exe.as_ref())),
        Column::ContainerId => opt_text(p.and_then(|p| p.container_id.as_ref())),
        Column::User => opt_text(e.user.as_ref()),
        Column::Euid => opt_int(e.euid),
        Column::Egid => opt_int(e.egid),
        Column::Auid => opt_int(p.and_then(|p| p.auid)),
        Column::Root => opt_text(e.root.as_ref()),
        Column::File => owned(e.file.map(|f| f.to_string())),
        Column::AliasOf => opt_text(e.alias_of.as_ref()),
        Column::Mntns => opt_int(p.and_then(|p| p.mntns)),
        Column::ExeId => owned(p.and_then(|p| p.exe_id).map(|f| f.to_string())),
        Column::ExeVerified => opt_int(p.and_then(|p| p.exe_verified)),
        Column::Cwd => opt_text(p.and_then(|p| p.cwd.as_ref())),
        _ => Cell::Null,
    }
}

/// `success`, the errno name, or `errno N`.
pub(crate) fn result_of(ret: i64) -> String {
    match (ret >= 0, errno::name_of_ret(ret)) {
        (true, _) => "success".to_owned(),
        (false, Some(n)) => n.to_owned(),
        (false, None) => format!("errno {}", ret.unsigned_abs()),
    }
}

/// The fields of an event that the columns a statement uses read: the cursor copies only these
/// (a `GROUP BY path` need not copy the process, the user and five more strings per row).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fields {
    comm: bool,
    path: bool,
    old_path: bool,
    raw_path: bool,
    user: bool,
    root: bool,
    alias_of: bool,
    process: bool,
}

impl Fields {
    /// What reading `columns` needs, `used` SQLite's `colUsed` mask over them (bit 63: every
    /// column from the 64th on).
    pub fn of(columns: &[Column], used: u64) -> Fields {
        let mut n = Fields::default();
        for (i, c) in columns.iter().enumerate() {
            if used & (1u64 << i.min(63)) == 0 {
                continue;
            }
            match c {
                Column::Comm => n.comm = true,
                Column::Path => n.path = true,
                Column::OldPath => n.old_path = true,
                Column::RawPath => n.raw_path = true,
                Column::User => n.user = true,
                Column::Root => n.root = true,
                Column::AliasOf => n.alias_of = true,
                Column::Image
                | Column::ProcStartNs
                | Column::Exe
                | Column::Cmdline
                | Column::ParentExe
                | Column::ContainerId
                | Column::Auid
                | Column::Mntns
                | Column::ExeId
                | Column::ExeVerified
                | Column::Cwd => n.process = true,
                _ => {}
            }
        }
        n
    }

    /// A copy of `e` with the fields no used column reads left empty.
    pub fn copy(&self, e: &Event) -> Event {
        fn keep<T: Clone + Default>(want: bool, v: &T) -> T {
            if want {
                v.clone()
            } else {
                T::default()
            }
        }
        Event {
            ts_ns: e.ts_ns,
            pid: e.pid,
            tid: e.tid,
            ppid: e.ppid,
            uid: e.uid,
            gid: e.gid,
            comm: keep(self.comm, &e.comm),
            syscall: e.syscall,
            op: e.op,
            path: keep(self.path, &e.path),
            path_source: e.path_source,
            path_truncated: e.path_truncated,
            raw_path: keep(self.raw_path, &e.raw_path),
            dirfd: e.dirfd,
            flags: e.flags,
            mode: e.mode,
            ret: e.ret,
            old_path: keep(self.old_path, &e.old_path),
            new_uid: e.new_uid,
            new_gid: e.new_gid,
            length: e.length,
            file: e.file,
            root: keep(self.root, &e.root),
            alias_of: keep(self.alias_of, &e.alias_of),
            euid: e.euid,
            egid: e.egid,
            process: keep(self.process, &e.process),
            user: keep(self.user, &e.user),
            table: e.table,
            proc_key: e.proc_key,
        }
    }
}
