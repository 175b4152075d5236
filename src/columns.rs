//! The columns of the store's flat views, each named, typed and described once: `events` and
//! `processes` in SQL over history (`query`), and the `events`, `processes` and `losses` tables
//! of the Parquet export. A view is an ordered list of these columns (which of them may be null
//! is the view's to say: lineage is absent from some events, never from a process image); each
//! consumer maps a column's [`Type`] to its own (SQL declared type, Arrow data type).

/// The Parquet schema's version: bump it (and document the change in `docs/fleet.md`) whenever
/// a column is added, removed, renamed or retyped. 3: `events` gained `op`, `old_path` (+
/// `_b64`), `new_uid`, `new_gid` and `length` (#27). 4: `events` and `processes` gained `cwd`
/// (+ `_b64`), `events` also `tty`, `parent_cmdline` (+ `_b64`) and `proc_age_ns` (#30).
pub const PARQUET_SCHEMA_VERSION: u32 = 4;

/// What a column holds; consumers derive their own types from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// A 64-bit integer.
    Int,
    /// A 32-bit integer (a file descriptor, a wait status).
    Int32,
    Bool,
    /// Text this program writes (names, keys): always UTF-8.
    Text,
    /// Bytes from the traced system, not always UTF-8: shown as text with U+FFFD where a view
    /// has only text, else beside a `<name>_b64` twin that holds the exact bytes.
    Bytes,
    /// ns since the epoch, shown as a time (RFC 3339 text, or a UTC timestamp).
    Time,
    /// A list of byte strings (argv).
    Args,
    /// The ancestors, parent first: pid, comm, exe and start of each.
    Ancestors,
}

/// A column of a flat view. The documentation of each is its meaning, wherever it appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    /// The segment an event or process image is stored in (its export id): with `host`, part
    /// of its identity.
    Segment,
    /// The event's position: in SQL the segment's sequence number × 2³² + its place in the
    /// segment (the same whatever the window), in Parquet its place in the segment.
    Seq,
    /// The kernel's time of the event.
    Ts,
    /// The same, ns since the epoch.
    TsNs,
    /// The process (thread group) id.
    Pid,
    /// The thread id.
    Tid,
    /// The real parent's pid.
    Ppid,
    /// The real uid.
    Uid,
    /// The real gid.
    Gid,
    /// The thread's name (at most 15 bytes).
    Comm,
    /// The event's syscall (`openat`, `renameat2`, `io_uring`…).
    Syscall,
    /// What the event did: `open`, `rename`, `link`, `symlink`, `unlink`, `rmdir`, `mkdir`,
    /// `chmod`, `chown` or `truncate` (`open` for every event before schema 5).
    Op,
    /// Rename and link: the old name; symlink: the link's target as given. Null otherwise.
    OldPath,
    /// Chown: the new owner (null when left unchanged, and for other operations).
    NewUid,
    /// Chown: the new group (null when left unchanged, and for other operations).
    NewGid,
    /// Truncate: the new length in bytes (null for other operations).
    Length,
    /// The absolute path, resolved in the kernel.
    Path,
    /// Exactly the path the process passed.
    RawPath,
    /// How `path` was obtained (`file`, `raw`, `cwd`, `dirfd`, `unresolved`).
    PathSource,
    /// Whether the kernel had to cut `path` or `raw_path`.
    PathTruncated,
    /// The directory fd of `*at` calls (a rename's or link's new name's), null for
    /// `open`/`creat` and calls without one.
    Dirfd,
    /// The open flags as passed, or the operation's (`RENAME_*`, `AT_REMOVEDIR`…).
    Flags,
    /// The mode as passed (an open's or mkdir's), or chmod's new mode.
    Mode,
    /// The new fd (an open), 0 (an operation), or minus errno.
    Ret,
    /// The errno's name, null on success.
    Errno,
    /// `success` or the errno's name.
    Result,
    /// The `access:` names of rule files, comma-separated: an open's from its flags, an
    /// operation's by its op.
    Access,
    /// The process image's key (pid, start and exec time): joins `processes.image`.
    Image,
    /// When the process started (with `pid`, the key that names one process).
    ProcStart,
    /// The same as `proc_start`, under its name in SQL's `processes`.
    Start,
    /// The same, ns since the epoch, under its name in SQL's `processes`.
    StartNs,
    /// The same, ns since the epoch.
    ProcStartNs,
    /// When the process image began with an exec; null otherwise.
    ExecTs,
    /// The same as `exec_ts`, under its name in SQL's `processes`.
    Exec,
    /// The executable, resolved in the kernel at exec.
    Exe,
    /// The arguments as the process received them at exec.
    Argv,
    /// The arguments joined with spaces.
    Cmdline,
    /// Whether the recorded arguments were cut.
    ArgsTruncated,
    /// The effective uid (at the open, for an event).
    Euid,
    /// The effective gid (at the open, for an event).
    Egid,
    /// The login uid (kept through `su` and `sudo`); null when unset.
    Auid,
    /// The audit session id; null when unset.
    Sessionid,
    /// The name of `uid` on the recording host.
    User,
    /// The cgroup's id (its inode number).
    CgroupId,
    /// The process's cgroup path.
    Cgroup,
    /// The container (or `pod:UID`) parsed from `cgroup`; null on the host.
    ContainerId,
    /// The process's pid namespace.
    Pidns,
    /// The process's mount namespace.
    Mntns,
    /// The controlling terminal.
    Tty,
    /// How long the process had been running at the event (`ts` − `proc_start`), in ns; null
    /// without lineage.
    ProcAgeNs,
    /// The root directory of a chrooted thread, as a host path: for an event, the opener's at
    /// the open; for a process image, when it was recorded (its exec, fork or the `/proc`
    /// snapshot). Null at the mount namespace's own root (and in segments before schema 4 for an
    /// event, before schema 3 for an image).
    Root,
    /// An event's process image's `root` (see `root`), beside the event's own.
    ProcRoot,
    /// The working directory the process image began in (at its exec, or `/proc/PID/cwd` for
    /// one running when recording began), as a host path; null when not known (an image from a
    /// fork, segments before schema 7).
    Cwd,
    /// The opened file's identity, `major:minor:inode` in decimal; null for a failed open (and before schema 4).
    File,
    /// The watched path whose file this open's file is, when the open named it otherwise (a
    /// hard link, a bind mount, a chroot's view); null otherwise.
    AliasOf,
    /// The executable's identity (`major:minor:inode`), from its exec; null when not known.
    ExeId,
    /// Whether the executable is the host's own file at `exe` (same identity, in the host's
    /// mount namespace, not chrooted); null when its identity is not known.
    ExeVerified,
    /// The parent's image key.
    ParentImage,
    /// When the parent process started.
    ParentStart,
    /// The parent's executable when it started this process.
    ParentExe,
    /// The parent's name.
    ParentComm,
    /// The parent's arguments joined with spaces.
    ParentCmdline,
    /// The ancestors, parent first, as they were when each was forked.
    Ancestors,
    /// How the process image was learnt (`exec`, `fork`, `procfs`, `event`, `import`).
    Source,
    /// The exit code; null while running or unknown.
    ExitCode,
    /// The signal that ended the process, 0 for none; null while running or unknown.
    ExitSignal,
    /// The wait status of the exit; null while running or unknown.
    ExitStatus,
    /// When the process exited; null while running or unknown.
    ExitTs,
    /// The same as `exit_ts`, under its name in SQL's `processes`.
    Exit,
    /// The start of a loss record's window.
    LossStart,
    /// The end of a loss record's window.
    LossEnd,
    /// How many events or records were lost.
    LossCount,
    /// Why they were lost.
    LossReason,
}

impl Column {
    /// The column's name in every view that has it.
    pub fn name(self) -> &'static str {
        use Column::*;
        match self {
            Segment => "segment",
            Seq => "seq",
            Ts => "ts",
            TsNs => "ts_ns",
            Pid => "pid",
            Tid => "tid",
            Ppid => "ppid",
            Uid => "uid",
            Gid => "gid",
            Comm => "comm",
            Syscall => "syscall",
            Op => "op",
            OldPath => "old_path",
            NewUid => "new_uid",
            NewGid => "new_gid",
            Length => "length",
            Path => "path",
            RawPath => "raw_path",
            PathSource => "path_source",
            PathTruncated => "path_truncated",
            Dirfd => "dirfd",
            Flags => "flags",
            Mode => "mode",
            Ret => "ret",
            Errno => "errno",
            Result => "result",
            Access => "access",
            Image => "image",
            ProcStart => "proc_start",
            ProcStartNs => "proc_start_ns",
            Start => "start",
            StartNs => "start_ns",
            ExecTs => "exec_ts",
            Exec => "exec",
            Exe => "exe",
            Argv => "argv",
            Cmdline => "cmdline",
            ArgsTruncated => "args_truncated",
            Euid => "euid",
            Egid => "egid",
            Auid => "auid",
            Sessionid => "sessionid",
            User => "user",
            CgroupId => "cgroup_id",
            Cgroup => "cgroup",
            ContainerId => "container_id",
            Pidns => "pidns",
            Mntns => "mntns",
            Tty => "tty",
            ProcAgeNs => "proc_age_ns",
            Root => "root",
            ProcRoot => "proc_root",
            Cwd => "cwd",
            File => "file",
            AliasOf => "alias_of",
            ExeId => "exe_id",
            ExeVerified => "exe_verified",
            ParentImage => "parent_image",
            ParentStart => "parent_start",
            ParentExe => "parent_exe",
            ParentComm => "parent_comm",
            ParentCmdline => "parent_cmdline",
            Ancestors => "ancestors",
            Source => "source",
            ExitCode => "exit_code",
            ExitSignal => "exit_signal",
            ExitStatus => "exit_status",
            ExitTs => "exit_ts",
            Exit => "exit",
            LossStart => "start",
            LossEnd => "end",
            LossCount => "count",
            LossReason => "reason",
        }
    }

    pub fn ty(self) -> Type {
        use Column::*;
        match self {
            Seq | TsNs | Pid | Tid | Ppid | Uid | Gid | Flags | Mode | Ret | ProcStartNs
            | StartNs | Euid | Egid | Auid | Sessionid | CgroupId | Pidns | Mntns | ExitCode
            | ExitSignal | LossCount | NewUid | NewGid | Length | ProcAgeNs => Type::Int,
            Dirfd | ExitStatus => Type::Int32,
            PathTruncated | ArgsTruncated | ExeVerified => Type::Bool,
            Segment | Syscall | PathSource | Errno | Result | Access | Image | ParentImage
            | Source | LossReason | File | ExeId | Op => Type::Text,
            Comm | Path | RawPath | Exe | Cmdline | User | Cgroup | ContainerId | Tty | Root
            | ProcRoot | Cwd | AliasOf | OldPath | ParentExe | ParentComm | ParentCmdline => {
                Type::Bytes
            }
            Ts | ProcStart | Start | ExecTs | Exec | ParentStart | ExitTs | Exit | LossStart
            | LossEnd => Type::Time,
            Argv => Type::Args,
            Ancestors => Type::Ancestors,
        }
    }
}
