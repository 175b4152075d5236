//! The one `Event` type every part of open-forensics passes around: built from the kernel's record in
//! `capture`, from SQLite rows in `store::Reader`, and from JSON lines in `import`. The rule engine sees
//! only this type, which is why live alerts and replayed alerts cannot differ.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::json::Obj;
use crate::process::{ProcSource, Process};

use crate::bytes::Str;
use crate::columns::Column;
use crate::file_id::FileId;
use crate::timespec::{format_ts, parse_ts};
use crate::wire::wire_enum;

wire_enum! {
    /// How the event reached the kernel: the syscall (or io_uring). Codes are stored on disk and shared with `bpf/events.h`:
    /// never renumber, only append.
    Syscall {
        Open = 1 => "open",
        Creat = 2 => "creat",
        Openat = 3 => "openat",
        Openat2 = 4 => "openat2",
        OpenByHandleAt = 5 => "open_by_handle_at",
        IoUring = 6 => "io_uring",
        // Through the 32-bit entry (int $0x80) that any 64-bit program can use.
        Ia32Open = 7 => "ia32_open",
        Ia32Creat = 8 => "ia32_creat",
        Ia32Openat = 9 => "ia32_openat",
        Ia32Openat2 = 10 => "ia32_openat2",
        Ia32OpenByHandleAt = 11 => "ia32_open_by_handle_at",
        // File operations (op is not open), then the same through the 32-bit entry in the same
        // order, then the 32-bit entry's own variants.
        Rename = 12 => "rename",
        Renameat = 13 => "renameat",
        Renameat2 = 14 => "renameat2",
        Link = 15 => "link",
        Linkat = 16 => "linkat",
        Symlink = 17 => "symlink",
        Symlinkat = 18 => "symlinkat",
        Unlink = 19 => "unlink",
        Unlinkat = 20 => "unlinkat",
        Rmdir = 21 => "rmdir",
        Mkdir = 22 => "mkdir",
        Mkdirat = 23 => "mkdirat",
        Chmod = 24 => "chmod",
        Fchmod = 25 => "fchmod",
        Fchmodat = 26 => "fchmodat",
        Fchmodat2 = 27 => "fchmodat2",
        Chown = 28 => "chown",
        Fchown = 29 => "fchown",
        Lchown = 30 => "lchown",
        Fchownat = 31 => "fchownat",
        Truncate = 32 => "truncate",
        Ftruncate = 33 => "ftruncate",
        Ia32Rename = 34 => "ia32_rename",
        Ia32Renameat = 35 => "ia32_renameat",
        Ia32Renameat2 = 36 => "ia32_renameat2",
        Ia32Link = 37 => "ia32_link",
        Ia32Linkat = 38 => "ia32_linkat",
        Ia32Symlink = 39 => "ia32_symlink",
        Ia32Symlinkat = 40 => "ia32_symlinkat",
        Ia32Unlink = 41 => "ia32_unlink",
        Ia32Unlinkat = 42 => "ia32_unlinkat",
        Ia32Rmdir = 43 => "ia32_rmdir",
        Ia32Mkdir = 44 => "ia32_mkdir",
        Ia32Mkdirat = 45 => "ia32_mkdirat",
        Ia32Chmod = 46 => "ia32_chmod",
        Ia32Fchmod = 47 => "ia32_fchmod",
        Ia32Fchmodat = 48 => "ia32_fchmodat",
        Ia32Fchmodat2 = 49 => "ia32_fchmodat2",
        // chown16, fchown16, lchown16: 16-bit ids.
        Ia32Chown = 50 => "ia32_chown",
        Ia32Fchown = 51 => "ia32_fchown",
        Ia32Lchown = 52 => "ia32_lchown",
        Ia32Fchownat = 53 => "ia32_fchownat",
        Ia32Truncate = 54 => "ia32_truncate",
        Ia32Ftruncate = 55 => "ia32_ftruncate",
        Ia32Chown32 = 56 => "ia32_chown32",
        Ia32Fchown32 = 57 => "ia32_fchown32",
        Ia32Lchown32 = 58 => "ia32_lchown32",
        Ia32Truncate64 = 59 => "ia32_truncate64",
        Ia32Ftruncate64 = 60 => "ia32_ftruncate64",
        // An exec: execveat when it named an fd (fexecve, a dirfd-relative name), else execve
        // (bpf/events.h says why an execveat by path reads as execve).
        Execve = 61 => "execve",
        Execveat = 62 => "execveat",
    }
}

wire_enum! {
    /// Where the resolved `path` came from. Codes are stored on disk and shared with `bpf/events.h`.
    PathSource {
        /// Walked from the opened file's dentry and mount chain (successful opens).
        File = 1 => "file",
        /// The raw path was absolute and the open failed: `path` is the raw path.
        Raw = 2 => "raw",
        /// A failed relative open: the process's cwd joined with the raw path.
        Cwd = 3 => "cwd",
        /// A failed open relative to a directory fd: that directory joined with the raw path.
        Dirfd = 4 => "dirfd",
        /// Nothing better was available (e.g. an io_uring direct descriptor): `path` is the raw path.
        Unresolved = 5 => "unresolved",
        /// A failed absolute open by a chrooted process: its root (`root`) joined with the raw path.
        Root = 6 => "root",
    }
}

wire_enum! {
    /// What the event did to the file system. Codes are stored on disk and shared with
    /// `bpf/events.h` (`enum of_op`): never renumber, only append. Segments written before file
    /// operations were recorded (schema < 5) hold only opens.
    Op {
        Open = 1 => "open",
        /// `path` is the new name, `old_path` the name it had (rename, renameat, renameat2).
        Rename = 2 => "rename",
        /// A hard link: `path` is the new name, `old_path` the existing file's.
        Link = 3 => "link",
        /// `path` is the link created, `old_path` its target exactly as given (not resolved).
        Symlink = 4 => "symlink",
        Unlink = 5 => "unlink",
        Rmdir = 6 => "rmdir",
        /// `mode` is the mode as passed.
        Mkdir = 7 => "mkdir",
        /// `mode` is the new mode.
        Chmod = 8 => "chmod",
        /// `new_uid` / `new_gid` are the new owner and group (`None`: left unchanged, -1).
        Chown = 9 => "chown",
        /// `length` is the new length.
        Truncate = 10 => "truncate",
        /// A successful execve/execveat: `path` is the executable the new image runs, the
        /// event's process is that new image (its argv, cwd, parent).
        Exec = 11 => "exec",
    }
}

/// One file-system event as recorded: an open, or one of the operations of [`Op`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Nanoseconds since the Unix epoch (kernel clock, converted through the segment's anchor).
    pub ts_ns: i64,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: Str,
    pub syscall: Syscall,
    /// What the event did; `Open` for every event of a segment written before schema 5.
    pub op: Op,
    /// Absolute, resolved path: the file opened, or the object the operation acts on (for a
    /// rename, link or symlink, the new name).
    pub path: Str,
    pub path_source: PathSource,
    /// Set when the kernel had to cut `path` or `raw_path` (longer than it keeps).
    pub path_truncated: bool,
    /// Exactly as the process passed it.
    pub raw_path: Str,
    /// The directory fd for `*at` calls (`-100` is `AT_FDCWD`), `None` where the call has none.
    /// For a rename or link, the new name's.
    pub dirfd: Option<i32>,
    /// The open flags, or the operation's (`RENAME_*`, `AT_REMOVEDIR`, `AT_SYMLINK_FOLLOW`…).
    pub flags: u64,
    /// The open's or mkdir's mode as passed, or chmod's new mode.
    pub mode: u32,
    /// The fd, or 0, or minus errno.
    pub ret: i64,
    /// Rename and link: the old name, resolved like `path`; symlink: the target exactly as given.
    pub old_path: Option<Str>,
    /// Chown: the new owner and group; `None` when the call left it unchanged (-1).
    pub new_uid: Option<u32>,
    pub new_gid: Option<u32>,
    /// Truncate: the new length in bytes.
    pub length: Option<i64>,
    /// The opened file's identity (successful opens whose file the probe walked); `None` for
    /// failed opens and segments written before identities were recorded.
    pub file: Option<FileId>,
    /// The opening process's root directory as a host path when it is chrooted (`path` is the
    /// host's path either way); `None` at the mount namespace's own root.
    pub root: Option<Str>,
    /// The watched path (a sensitive file, or one the live rules name exactly) whose file this
    /// open's file is, when the open named it otherwise (a hard link, a bind mount, a chroot's
    /// view): rules about that path match it too. Set by the recorder from file identities.
    pub alias_of: Option<Str>,
    /// Effective ids at the open; `None` in segments written before lineage (schema 1).
    pub euid: Option<u32>,
    pub egid: Option<u32>,
    /// The process image that opened (see `process`); `None` where no lineage was recorded.
    pub process: Option<Arc<Process>>,
    /// The name of `uid` on the recording host (stored with the segment).
    pub user: Option<Str>,
    /// Identifies the string table that `Str::key`s refer to (see `Str`).
    pub table: u64,
    /// The process image's index in the producer's table (like `Str::key`, valid while `table`
    /// stays the same): the rule engine caches process verdicts by it.
    pub proc_key: u32,
}

impl Default for Event {
    fn default() -> Self {
        Event {
            ts_ns: 0,
            pid: 0,
            tid: 0,
            ppid: 0,
            uid: 0,
            gid: 0,
            comm: Str::default(),
            syscall: Syscall::Openat,
            op: Op::Open,
            path: Str::default(),
            path_source: PathSource::Raw,
            path_truncated: false,
            raw_path: Str::default(),
            dirfd: None,
            flags: 0,
            mode: 0,
            ret: 0,
            old_path: None,
            new_uid: None,
            new_gid: None,
            length: None,
            file: None,
            root: None,
            alias_of: None,
            euid: None,
            egid: None,
            process: None,
            user: None,
            table: 0,
            proc_key: Str::NO_KEY,
        }
    }
}

/// The JSON form of an event, as `import` reads it: the documented key names (see
/// [`Event::to_json_line`] for how they are written).
///
/// Byte strings that are not UTF-8 keep their exact bytes in an extra `<key>_b64` field (standard
/// base64); the plain key then holds the lossy text for humans. Import prefers `<key>_b64`.
/// Lineage keys are optional, and so are `path_source` and one of `ts` / `ts_ns`: lines written
/// before lineage, or by other tools, stay valid input.
#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct EventJson {
    #[serde(default)]
    pub ts: Option<String>,
    #[serde(default)]
    pub ts_ns: Option<i64>,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    #[serde(default)]
    pub comm_b64: Option<String>,
    pub syscall: String,
    pub path: String,
    #[serde(default)]
    pub path_b64: Option<String>,
    #[serde(default)]
    pub path_source: Option<String>,
    #[serde(default)]
    pub path_truncated: bool,
    pub raw_path: String,
    #[serde(default)]
    pub raw_path_b64: Option<String>,
    pub dirfd: Option<i32>,
    pub flags: u64,
    pub mode: u32,
    pub ret: i64,
    #[serde(default)]
    pub exe: Option<String>,
    #[serde(default)]
    pub exe_b64: Option<String>,
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    #[serde(default)]
    pub argv_b64: Option<Vec<String>>,
    #[serde(default)]
    pub proc_start: Option<String>,
    #[serde(default)]
    pub euid: Option<u32>,
    #[serde(default)]
    pub egid: Option<u32>,
    #[serde(default)]
    pub auid: Option<u32>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub user_b64: Option<String>,
    #[serde(default)]
    pub cgroup: Option<String>,
    #[serde(default)]
    pub cgroup_b64: Option<String>,
    #[serde(default)]
    pub container_id: Option<String>,
    #[serde(default)]
    pub container_id_b64: Option<String>,
    /// Derived from `ancestors` on import (accepted, not needed).
    #[serde(default)]
    pub parent_exe: Option<String>,
    #[serde(default)]
    pub parent_exe_b64: Option<String>,
    #[serde(default)]
    pub ancestors: Option<Vec<AncestorJson>>,
    #[serde(default)]
    pub root: Option<String>,
    #[serde(default)]
    pub root_b64: Option<String>,
    /// `major:minor:inode` (see [`FileId`]'s `Display`).
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub alias_of: Option<String>,
    #[serde(default)]
    pub alias_of_b64: Option<String>,
    #[serde(default)]
    pub exec_ts: Option<String>,
    #[serde(default)]
    pub proc_root: Option<String>,
    #[serde(default)]
    pub proc_root_b64: Option<String>,
    #[serde(default)]
    pub mntns: Option<u32>,
    #[serde(default)]
    pub exe_id: Option<String>,
    #[serde(default)]
    pub exe_verified: Option<bool>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub cwd_b64: Option<String>,
    /// Absent: an open (the lines of opens have no op keys).
    #[serde(default)]
    pub op: Option<String>,
    #[serde(default)]
    pub old_path: Option<String>,
    #[serde(default)]
    pub old_path_b64: Option<String>,
    #[serde(default)]
    pub new_uid: Option<u32>,
    #[serde(default)]
    pub new_gid: Option<u32>,
    #[serde(default)]
    pub length: Option<i64>,
}

/// One entry of `ancestors`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AncestorJson {
    pub pid: u32,
    pub comm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_b64: Option<String>,
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe_b64: Option<String>,
    pub proc_start: String,
    /// When this image began with an exec (lines written before it existed lack it).
    #[serde(default)]
    pub exec_ts: Option<String>,
}

/// Text plus, when the bytes are not UTF-8, their exact base64 form.
pub fn bytes_to_json(s: &Str) -> (String, Option<String>) {
    match std::str::from_utf8(s.as_bytes()) {
        Ok(t) => (t.to_owned(), None),
        Err(_) => (
            s.lossy().into_owned(),
            Some(base64::engine::general_purpose::STANDARD.encode(s.as_bytes())),
        ),
    }
}

fn bytes_from_json(text: &str, b64: Option<&str>, field: &str) -> Result<Str, String> {
    match b64 {
        None => Ok(Str::from(text)),
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(Str::new)
            .map_err(|e| format!("field `{field}_b64`: not valid base64 ({e})")),
    }
}

/// An optional byte string from its text and `_b64` keys.
fn opt_bytes(
    text: &Option<String>,
    b64: &Option<String>,
    field: &str,
) -> Result<Option<Str>, String> {
    match text {
        None => Ok(None),
        Some(t) => bytes_from_json(t, b64.as_deref(), field).map(Some),
    }
}

/// Path-like fields (decoded bytes) no longer than the recorder keeps: a longer one is a crafted
/// line (the text of non-UTF-8 bytes is up to 3× longer, so the bytes are what is bounded).
fn check_lengths(fields: &[(&str, &Option<Str>)]) -> Result<(), String> {
    for (field, v) in fields {
        if let Some(v) = v.as_ref().filter(|v| v.as_bytes().len() > LONGEST) {
            return Err(format!(
                "field `{field}` is {} bytes long; at most {PATH_MAX} are recorded",
                v.as_bytes().len()
            ));
        }
    }
    Ok(())
}

/// An optional RFC 3339 time.
fn opt_ts(text: &Option<String>, field: &str) -> Result<Option<i64>, String> {
    text.as_deref()
        .map(|t| parse_ts(t).ok_or_else(|| format!("field `{field}`: not an RFC3339 time: {t:?}")))
        .transpose()
}

/// An optional file identity, `major:minor:inode`.
fn opt_file_id(text: &Option<String>, field: &str) -> Result<Option<FileId>, String> {
    text.as_deref()
        .map(|t| t.parse().map_err(|e| format!("field `{field}`: {e}")))
        .transpose()
}

/// Writes a byte string as `key` (and `key_b64` when it is not UTF-8); `None` as null.
pub(crate) fn put_bytes(o: &mut Obj, key: &str, s: Option<&Str>) {
    match s {
        None => o.null(key),
        Some(s) => {
            let (text, b64) = bytes_to_json(s);
            o.str(key, &text);
            if let Some(b) = b64 {
                o.str(&format!("{key}_b64"), &b);
            }
        }
    }
}

pub(crate) fn put_argv(o: &mut Obj, p: &Process) {
    if p.argv.is_none() {
        return o.null("argv");
    }
    let args = p.args();
    let texts: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    o.strs("argv", &texts);
    if args.iter().any(|a| std::str::from_utf8(a).is_err()) {
        let b64: Vec<String> = args
            .iter()
            .map(|a| base64::engine::general_purpose::STANDARD.encode(a))
            .collect();
        o.strs("argv_b64", &b64);
    }
}

pub(crate) fn put_ancestors(o: &mut Obj, p: &Process) {
    o.raw_key("ancestors");
    o.push_raw("[");
    for (i, a) in p.ancestors().enumerate() {
        if i > 0 {
            o.push_raw(",");
        }
        let mut x = Obj::new();
        x.num("pid", a.pid);
        put_bytes(&mut x, "comm", Some(&a.comm));
        put_bytes(&mut x, "exe", a.exe.as_ref());
        x.str("proc_start", &format_ts(a.start_ns));
        put_time(&mut x, Column::ExecTs.name(), a.exec_ns);
        o.push_raw(&x.finish());
    }
    o.push_raw("]");
}

fn put_time(o: &mut Obj, key: &str, ns: Option<i64>) {
    match ns {
        Some(ns) => o.str(key, &format_ts(ns)),
        None => o.null(key),
    }
}

/// The identity keys (schema 4), after every other key of an event and of an alert's lineage:
/// the open's `root`, `file` and `alias_of`, then the image's `exec_ts`, `proc_root`, `mntns`,
/// `exe_id` and `exe_verified`, then its `cwd` only when known (schema 7), so that lines of
/// images without one stay exactly as they were. An event without lineage has only the first
/// three, and only those set, so that the lines of segments written before lineage stay exactly
/// as they were.
pub(crate) fn put_identity(o: &mut Obj, ev: &Event) {
    let p = ev.process.as_deref();
    if p.is_some() || ev.root.is_some() {
        put_bytes(o, Column::Root.name(), ev.root.as_ref());
    }
    if p.is_some() || ev.file.is_some() {
        match ev.file {
            Some(f) => o.str(Column::File.name(), &f.to_string()),
            None => o.null(Column::File.name()),
        }
    }
    if p.is_some() || ev.alias_of.is_some() {
        put_bytes(o, Column::AliasOf.name(), ev.alias_of.as_ref());
    }
    let Some(p) = p else { return };
    put_time(o, Column::ExecTs.name(), p.exec_ns);
    put_bytes(o, Column::ProcRoot.name(), p.root.as_ref());
    o.opt_num(Column::Mntns.name(), p.mntns);
    match p.exe_id {
        Some(f) => o.str(Column::ExeId.name(), &f.to_string()),
        None => o.null(Column::ExeId.name()),
    }
    match p.exe_verified {
        Some(v) => o.bool(Column::ExeVerified.name(), v),
        None => o.null(Column::ExeVerified.name()),
    }
    if let Some(cwd) = &p.cwd {
        put_bytes(o, Column::Cwd.name(), Some(cwd));
    }
}

/// The op keys, after every other key of an event (and of an alert's event): `op`, `old_path`,
/// `new_uid`, `new_gid`, `length`, null where the op has no such value. An open has none of
/// them, so that its line stays exactly what it was before other ops were recorded.
pub(crate) fn put_op(o: &mut Obj, ev: &Event) {
    if ev.op == Op::Open {
        return;
    }
    o.str(Column::Op.name(), ev.op.as_str());
    put_bytes(o, Column::OldPath.name(), ev.old_path.as_ref());
    o.opt_num(Column::NewUid.name(), ev.new_uid);
    o.opt_num(Column::NewGid.name(), ev.new_gid);
    o.opt_num(Column::Length.name(), ev.length);
}

/// The lineage keys of an event, in their documented order.
fn put_event_lineage(o: &mut Obj, p: &Process, ev: &Event) {
    put_bytes(o, Column::Exe.name(), p.exe.as_ref());
    put_argv(o, p);
    o.str(Column::ProcStart.name(), &format_ts(p.start_ns));
    o.opt_num(Column::Euid.name(), ev.euid);
    o.opt_num(Column::Egid.name(), ev.egid);
    o.opt_num(Column::Auid.name(), p.auid);
    put_bytes(o, Column::User.name(), ev.user.as_ref());
    put_bytes(o, Column::Cgroup.name(), p.cgroup.as_ref());
    put_bytes(o, Column::ContainerId.name(), p.container_id.as_ref());
    put_bytes(
        o,
        Column::ParentExe.name(),
        p.parent.as_ref().and_then(|q| q.exe.as_ref()),
    );
    put_ancestors(o, p);
}

impl Event {
    /// One JSON object, no trailing newline: the event's keys in their documented order, then,
    /// when the event has lineage, the lineage keys (omitted entirely for events recorded
    /// before lineage, so their lines stay as they were), then the identity keys
    /// ([`put_identity`]), then, for an op other than an open, the op keys ([`put_op`]).
    pub fn to_json_line(&self) -> String {
        let mut o = Obj::new();
        o.str(Column::Ts.name(), &format_ts(self.ts_ns));
        o.num(Column::TsNs.name(), self.ts_ns);
        o.num(Column::Pid.name(), self.pid);
        o.num(Column::Tid.name(), self.tid);
        o.num(Column::Ppid.name(), self.ppid);
        o.num(Column::Uid.name(), self.uid);
        o.num(Column::Gid.name(), self.gid);
        put_bytes(&mut o, Column::Comm.name(), Some(&self.comm));
        o.str(Column::Syscall.name(), self.syscall.as_str());
        put_bytes(&mut o, Column::Path.name(), Some(&self.path));
        o.str(Column::PathSource.name(), self.path_source.as_str());
        o.bool(Column::PathTruncated.name(), self.path_truncated);
        put_bytes(&mut o, Column::RawPath.name(), Some(&self.raw_path));
        o.opt_num(Column::Dirfd.name(), self.dirfd);
        o.num(Column::Flags.name(), self.flags);
        o.num(Column::Mode.name(), self.mode);
        o.num(Column::Ret.name(), self.ret);
        if let Some(p) = &self.process {
            put_event_lineage(&mut o, p, self);
        }
        put_identity(&mut o, self);
        put_op(&mut o, self);
        o.finish()
    }
}

/// The longest comm the kernel keeps (TASK_COMM_LEN 16, with the NUL).
pub const COMM_MAX: usize = 15;
/// The longest path or argv the recorder keeps (PATH_MAX, and the argv bytes kept per process).
pub const PATH_MAX: usize = 4096;
/// The ops with an `old_path`.
const OLD_PATH_OPS: &[Op] = &[Op::Rename, Op::Link, Op::Symlink];

/// The longest path-like field the recorder keeps, with room for " (deleted)".
const LONGEST: usize = PATH_MAX + 16;
/// The most ancestors a line may list.
const ANCESTORS_MAX: usize = crate::process::MAX_ANCESTORS;

/// Builds the processes of imported lines, one `Arc` per distinct image, so that the store keeps
/// one process row per image and not one per event.
#[derive(Default)]
pub struct ImportedProcs {
    seen: std::collections::HashMap<Vec<u8>, Arc<Process>>,
}

impl ImportedProcs {
    fn intern(&mut self, key: Vec<u8>, make: impl FnOnce() -> Process) -> Arc<Process> {
        self.seen
            .entry(key)
            .or_insert_with(|| Arc::new(make()))
            .clone()
    }

    /// The process of a line, or `None` when it has no lineage keys.
    fn lineage(&mut self, j: &EventJson, comm: &Str) -> Result<Option<Arc<Process>>, String> {
        let Some(start) = &j.proc_start else {
            let any = j.exe.is_some()
                || j.proc_root.is_some()
                || j.exec_ts.is_some()
                || j.mntns.is_some()
                || j.exe_id.is_some()
                || j.exe_verified.is_some()
                || j.cwd.is_some()
                || j.argv.is_some()
                || j.ancestors.is_some()
                || j.cgroup.is_some()
                || j.container_id.is_some();
            return if any {
                Err("lineage keys without `proc_start` (the process's start time)".into())
            } else {
                Ok(None)
            };
        };
        let start_ns = parse_ts(start)
            .ok_or_else(|| format!("field `proc_start`: not an RFC3339 time: {start:?}"))?;
        let n = j.ancestors.as_ref().map_or(0, Vec::len);
        if n > ANCESTORS_MAX {
            return Err(format!(
                "field `ancestors` lists {n} processes; at most {ANCESTORS_MAX} are recorded"
            ));
        }
        // exe, cgroup, proc_root and argv are bounded below, by their decoded bytes (the text of
        // non-UTF-8 bytes is up to 3× longer: U+FFFD).
        // Ancestors from the top (the last) down, each the parent of the next.
        let mut parent: Option<Arc<Process>> = None;
        let mut chain_key = Vec::new();
        for (i, a) in j
            .ancestors
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .rev()
        {
            let a_start = parse_ts(&a.proc_start)
                .ok_or_else(|| format!("field `ancestors[{i}].proc_start`: not an RFC3339 time"))?;
            let a_exec = opt_ts(&a.exec_ts, &format!("ancestors[{i}].exec_ts"))?;
            chain_key.extend_from_slice(
                serde_json::to_string(a)
                    .expect("AncestorJson serializes")
                    .as_bytes(),
            );
            let up = parent.take();
            let comm = bytes_from_json(&a.comm, a.comm_b64.as_deref(), "ancestors.comm")?;
            let exe = match &a.exe {
                None => None,
                Some(t) => Some(bytes_from_json(t, a.exe_b64.as_deref(), "ancestors.exe")?),
            };
            parent = Some(self.intern(chain_key.clone(), || Process {
                exe,
                exec_ns: a_exec,
                parent: up,
                ..Process::from_event(a.pid, a_start, 0, comm, 0, 0)
            }));
        }
        let argv = match (&j.argv_b64, &j.argv) {
            (Some(b), _) => Some(
                b.iter()
                    .map(|x| {
                        base64::engine::general_purpose::STANDARD
                            .decode(x)
                            .map_err(|e| format!("field `argv_b64`: not valid base64 ({e})"))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            (None, Some(a)) => Some(a.iter().map(|x| x.as_bytes().to_vec()).collect()),
            (None, None) => None,
        };
        let argv_len: usize = argv.iter().flatten().map(|a| a.len() + 1).sum();
        if argv_len > PATH_MAX + 1 {
            return Err(format!(
                "field `argv` holds {argv_len} bytes; at most {PATH_MAX} are recorded"
            ));
        }
        let argv = argv.map(|args| {
            let mut b = args.join(&0u8);
            if !b.is_empty() {
                b.push(0);
            }
            Str::new(b)
        });
        let exe = match (&j.exe, &j.exe_b64) {
            (None, _) => None,
            (Some(t), b) => Some(bytes_from_json(t, b.as_deref(), "exe")?),
        };
        let cgroup = opt_bytes(&j.cgroup, &j.cgroup_b64, "cgroup")?;
        let root = opt_bytes(&j.proc_root, &j.proc_root_b64, "proc_root")?;
        let cwd = opt_bytes(&j.cwd, &j.cwd_b64, "cwd")?;
        check_lengths(&[
            ("exe", &exe),
            ("cgroup", &cgroup),
            ("proc_root", &root),
            ("cwd", &cwd),
        ])?;
        let exe_id = opt_file_id(&j.exe_id, "exe_id")?;
        if j.exe_verified.is_some() && exe_id.is_none() {
            return Err(
                "field `exe_verified` without `exe_id`: only a known identity is verified".into(),
            );
        }
        let p = Process {
            exe,
            exec_ns: opt_ts(&j.exec_ts, "exec_ts")?,
            mntns: j.mntns,
            exe_id,
            exe_verified: j.exe_verified,
            argv,
            auid: j.auid,
            cgroup,
            root,
            cwd,
            container_id: opt_bytes(&j.container_id, &j.container_id_b64, "container_id")?,
            parent,
            source: ProcSource::Import,
            euid: j.euid.unwrap_or(j.uid),
            egid: j.egid.unwrap_or(j.gid),
            ..Process::from_event(j.pid, start_ns, j.ppid, comm.clone(), j.uid, j.gid)
        };
        let mut key = chain_key;
        key.extend_from_slice(format!("{p:?}").as_bytes());
        Ok(Some(self.intern(key, || p)))
    }

    /// Checks what serde cannot (enum names, `ts` against `ts_ns`) and builds the event.
    pub fn event(&mut self, j: EventJson) -> Result<Event, String> {
        let ts_ns = match (&j.ts, j.ts_ns) {
            (None, None) => return Err("missing field `ts` (or `ts_ns`)".into()),
            (None, Some(n)) => n,
            (Some(ts), n) => {
                let t = parse_ts(ts)
                    .ok_or_else(|| format!("field `ts`: not an RFC3339 time: {ts:?}"))?;
                if let Some(n) = n.filter(|n| *n != t) {
                    return Err(format!(
                        "fields `ts` and `ts_ns` disagree ({ts} is {t} ns, ts_ns is {n})"
                    ));
                }
                t
            }
        };
        let syscall = Syscall::parse(&j.syscall).ok_or_else(|| {
            format!(
                "field `syscall`: unknown value {:?} (expected one of {})",
                j.syscall,
                names(Syscall::ALL)
            )
        })?;
        let path_source = match &j.path_source {
            // Lines from tools that do not know how the path was found.
            None => PathSource::Unresolved,
            Some(ps) => PathSource::parse(ps).ok_or_else(|| {
                format!(
                    "field `path_source`: unknown value {ps:?} (expected one of {})",
                    names(PathSource::ALL)
                )
            })?,
        };
        let comm = bytes_from_json(&j.comm, j.comm_b64.as_deref(), "comm")?;
        let path = bytes_from_json(&j.path, j.path_b64.as_deref(), "path")?;
        let raw_path = bytes_from_json(&j.raw_path, j.raw_path_b64.as_deref(), "raw_path")?;
        // Nothing the kernel can produce is longer: a longer field is a crafted line.
        for (field, value, max) in [
            ("comm", comm.as_bytes(), COMM_MAX),
            ("path", path.as_bytes(), PATH_MAX),
            ("raw_path", raw_path.as_bytes(), PATH_MAX),
        ] {
            if value.len() > max {
                return Err(format!(
                    "field `{field}` is {} bytes long; the kernel records at most {max}",
                    value.len()
                ));
            }
        }
        let op = match &j.op {
            None => Op::Open,
            Some(op) => Op::parse(op).ok_or_else(|| {
                format!(
                    "field `op`: unknown value {op:?} (expected one of {})",
                    names(Op::ALL)
                )
            })?,
        };
        let old_path = opt_bytes(&j.old_path, &j.old_path_b64, "old_path")?;
        if let Some(o) = old_path.as_ref().filter(|o| o.as_bytes().len() > PATH_MAX) {
            return Err(format!(
                "field `old_path` is {} bytes long; the kernel records at most {PATH_MAX}",
                o.as_bytes().len()
            ));
        }
        for (field, set, of) in [
            ("old_path", old_path.is_some(), OLD_PATH_OPS),
            ("new_uid", j.new_uid.is_some(), &[Op::Chown][..]),
            ("new_gid", j.new_gid.is_some(), &[Op::Chown][..]),
            ("length", j.length.is_some(), &[Op::Truncate][..]),
        ] {
            if set && !of.contains(&op) {
                return Err(format!(
                    "field `{field}` on a{} {op}: only {} has it",
                    if op.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) {
                        "n"
                    } else {
                        ""
                    },
                    names(of).replace(", ", "/")
                ));
            }
        }
        let process = self.lineage(&j, &comm)?;
        let root = opt_bytes(&j.root, &j.root_b64, "root")?;
        let alias_of = opt_bytes(&j.alias_of, &j.alias_of_b64, "alias_of")?;
        check_lengths(&[("root", &root), ("alias_of", &alias_of)])?;
        Ok(Event {
            ts_ns,
            pid: j.pid,
            tid: j.tid,
            ppid: j.ppid,
            uid: j.uid,
            gid: j.gid,
            comm,
            syscall,
            op,
            path,
            path_source,
            path_truncated: j.path_truncated,
            raw_path,
            dirfd: j.dirfd,
            flags: j.flags,
            mode: j.mode,
            ret: j.ret,
            old_path,
            new_uid: j.new_uid,
            new_gid: j.new_gid,
            length: j.length,
            file: opt_file_id(&j.file, "file")?,
            root,
            alias_of,
            euid: j.euid,
            egid: j.egid,
            user: opt_bytes(&j.user, &j.user_b64, "user")?,
            process,
            table: 0,
            proc_key: Str::NO_KEY,
        })
    }
}

impl TryFrom<EventJson> for Event {
    type Error = String;

    /// One line on its own (see [`ImportedProcs`] to share processes between lines).
    fn try_from(j: EventJson) -> Result<Self, String> {
        ImportedProcs::default().event(j)
    }
}

fn names<T: fmt::Display>(all: &[T]) -> String {
    all.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Event {
    pub fn succeeded(&self) -> bool {
        self.ret >= 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_non_utf8_bytes() {
        let e = Event {
            ts_ns: 1_700_000_000_123_456_789,
            path: Str::new(&b"/tmp/\xff\xfe name\n"[..]),
            raw_path: Str::from("rel"),
            comm: Str::from("cat"),
            ..Event::default()
        };
        let line = e.to_json_line();
        assert!(line.contains("\"path_b64\""), "{line}");
        assert!(!line.contains("raw_path_b64"), "{line}");
        let back: EventJson = serde_json::from_str(&line).unwrap();
        assert_eq!(Event::try_from(back).unwrap(), e);
    }

    #[test]
    fn lineage_of_any_bytes_survives_export_and_import() {
        let bad = |s: &[u8]| Str::new(s);
        let parent = Arc::new(Process {
            exe: Some(bad(b"/opt/\xffsh")),
            ..Process::from_event(40, 7, 1, bad(b"s\xfeh"), 0, 0)
        });
        let p = Process {
            exe: Some(bad(b"/usr/bin/\xfex")),
            argv: Some(bad(b"x\0\xff\0")),
            cgroup: Some(bad(b"/c\xff")),
            container_id: Some(bad(b"\xfeid")),
            parent: Some(parent),
            ..Process::from_event(42, 9, 40, Str::from("x"), 1000, 1000)
        };
        let p = Process {
            exec_ns: Some(11),
            root: Some(bad(b"/j\xff")),
            mntns: Some(u32::MAX),
            exe_id: Some(FileId::new(4095, 1 << 20, u64::MAX)),
            exe_verified: Some(false),
            ..p
        };
        let e = Event {
            ts_ns: 1_700_000_000_000_000_000,
            process: Some(Arc::new(p)),
            user: Some(bad(b"u\xff")),
            euid: Some(0),
            egid: Some(0),
            root: Some(bad(b"/j\xff")),
            file: Some(FileId::new(8, 1, 3)),
            alias_of: Some(bad(b"/etc/\xfe")),
            ..Event::default()
        };
        let line = e.to_json_line();
        let back = Event::try_from(serde_json::from_str::<EventJson>(&line).unwrap()).unwrap();
        assert_eq!(back.to_json_line(), line);
        assert_eq!(back.user.unwrap().as_bytes(), b"u\xff");
        assert_eq!(back.alias_of.unwrap().as_bytes(), b"/etc/\xfe");
        assert_eq!(back.file, e.file);
        let (bp, ep) = (back.process.unwrap(), e.process.unwrap());
        assert_eq!(
            (bp.exe_id, bp.exe_verified, bp.mntns),
            (ep.exe_id, ep.exe_verified, ep.mntns)
        );
        assert_eq!(bp.root.as_ref().unwrap().as_bytes(), b"/j\xff");
    }

    #[test]
    fn ts_is_fixed_width_nanoseconds() {
        assert_eq!(format_ts(1_000_000_000), "1970-01-01T00:00:01.000000000Z");
        assert_eq!(
            parse_ts("1970-01-01T00:00:01.000000000Z"),
            Some(1_000_000_000)
        );
    }

    #[test]
    fn enum_codes_round_trip() {
        for s in Syscall::ALL {
            assert_eq!(Syscall::from_code(s.code()), Some(*s));
            assert_eq!(Syscall::parse(s.as_str()), Some(*s));
        }
        for s in PathSource::ALL {
            assert_eq!(PathSource::from_code(s.code()), Some(*s));
        }
        for s in Op::ALL {
            assert_eq!(Op::from_code(s.code()), Some(*s));
            assert_eq!(Op::parse(s.as_str()), Some(*s));
        }
    }
}
