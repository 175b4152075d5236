/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ONE declaration of what the open probes send to user space. Rust reads these through the
 * types libbpf-cargo generates from this file's BTF (src/capture/decode.rs); there is no Rust
 * copy to drift. Enum codes are stored on disk: keep them equal to src/event.rs (a unit test in
 * src/capture/decode.rs checks), never renumber, only append.
 */
#ifndef __OF_EVENTS_H
#define __OF_EVENTS_H

/* Longest raw path kept (Linux PATH_MAX, NUL included). */
#define OF_RAW_MAX 4096
/* Bytes kept of the resolved path's components (each NUL-terminated, leaf first). */
#define OF_PATH_MAX 4096
/* NAME_MAX + NUL: the most one component read may write. */
#define OF_NAME_MAX 256
/*
 * Raw path, then the components, then a chrooted task's root's components (the path's and the
 * root's share OF_PATH_MAX). The walk writes a component of up to OF_NAME_MAX bytes at any
 * offset below OF_RAW_MAX + OF_PATH_MAX, so the buffer has that much slack for the verifier.
 */
#define OF_DATA_MAX (OF_RAW_MAX + OF_PATH_MAX + OF_NAME_MAX)
/* An operation's old name: raw bytes and components (bpf/file_ops.h). */
#define OF_OLD_MAX (OF_RAW_MAX + OF_PATH_MAX)
#define OF_COMM_LEN 16

/* Bytes kept of a process's argv (NUL-separated, as in /proc/PID/cmdline). */
#define OF_ARGS_MAX 4096
/* Bytes kept of a process's cgroup path components, and of its root's (chroot). */
#define OF_CGROUP_MAX 1024
#define OF_ROOT_MAX 1024
/* Bytes kept of an exec's working directory components, and of the file name as passed. */
#define OF_CWD_MAX 4096
#define OF_EXEC_NAME_MAX 4096
/*
 * A process record's data: exe components at 0, then argv, cgroup components, root components,
 * cwd components and the exec'd name. Offsets are masked with OF_PROC_MASK for the verifier:
 * everything before the name ends below it (at most 14 KiB), and the name's room follows (more
 * than the last component read needs). A per-CPU map's value must stay under 32 KiB.
 */
#define OF_PROC_MASK 16383
#define OF_PROC_DATA_MAX (OF_PROC_MASK + 1 + OF_EXEC_NAME_MAX)
#define OF_TTY_LEN 32

/* What a ring record is: the first __u32 of every record. */
enum of_rec_kind {
	OF_REC_OPEN = 1,
	/* A process image began (sched_process_exec): exe, argv, credentials, cgroup. */
	OF_REC_EXEC = 2,
	/* A new process (not a thread) was forked: it runs its parent's image until it execs. */
	OF_REC_FORK = 3,
	/* The last thread of a process exited. */
	OF_REC_EXIT = 4,
	/* A file operation (rename, link, unlink, chmod…): an open's record whose header's `op` says
	 * which, followed by an of_op_tail and the old name (bpf/file_ops.h). */
	OF_REC_OP = 5,
};

/* = Syscall in src/event.rs */
enum of_syscall {
	OF_SYSCALL_OPEN = 1,
	OF_SYSCALL_CREAT = 2,
	OF_SYSCALL_OPENAT = 3,
	OF_SYSCALL_OPENAT2 = 4,
	OF_SYSCALL_OPEN_BY_HANDLE_AT = 5,
	OF_SYSCALL_IO_URING = 6,
	/* The same calls through the 32-bit entry (int $0x80), in the same order. */
	OF_SYSCALL_IA32_OPEN = 7,
	OF_SYSCALL_IA32_CREAT = 8,
	OF_SYSCALL_IA32_OPENAT = 9,
	OF_SYSCALL_IA32_OPENAT2 = 10,
	OF_SYSCALL_IA32_OPEN_BY_HANDLE_AT = 11,
	/* File operations (bpf/file_ops.h), then the same through the 32-bit entry in the same
	 * order, then the 32-bit entry's own variants (32-bit ids, 64-bit lengths). */
	OF_SYSCALL_RENAME = 12,
	OF_SYSCALL_RENAMEAT = 13,
	OF_SYSCALL_RENAMEAT2 = 14,
	OF_SYSCALL_LINK = 15,
	OF_SYSCALL_LINKAT = 16,
	OF_SYSCALL_SYMLINK = 17,
	OF_SYSCALL_SYMLINKAT = 18,
	OF_SYSCALL_UNLINK = 19,
	OF_SYSCALL_UNLINKAT = 20,
	OF_SYSCALL_RMDIR = 21,
	OF_SYSCALL_MKDIR = 22,
	OF_SYSCALL_MKDIRAT = 23,
	OF_SYSCALL_CHMOD = 24,
	OF_SYSCALL_FCHMOD = 25,
	OF_SYSCALL_FCHMODAT = 26,
	OF_SYSCALL_FCHMODAT2 = 27,
	OF_SYSCALL_CHOWN = 28,
	OF_SYSCALL_FCHOWN = 29,
	OF_SYSCALL_LCHOWN = 30,
	OF_SYSCALL_FCHOWNAT = 31,
	OF_SYSCALL_TRUNCATE = 32,
	OF_SYSCALL_FTRUNCATE = 33,
	OF_SYSCALL_IA32_RENAME = 34,
	OF_SYSCALL_IA32_RENAMEAT = 35,
	OF_SYSCALL_IA32_RENAMEAT2 = 36,
	OF_SYSCALL_IA32_LINK = 37,
	OF_SYSCALL_IA32_LINKAT = 38,
	OF_SYSCALL_IA32_SYMLINK = 39,
	OF_SYSCALL_IA32_SYMLINKAT = 40,
	OF_SYSCALL_IA32_UNLINK = 41,
	OF_SYSCALL_IA32_UNLINKAT = 42,
	OF_SYSCALL_IA32_RMDIR = 43,
	OF_SYSCALL_IA32_MKDIR = 44,
	OF_SYSCALL_IA32_MKDIRAT = 45,
	OF_SYSCALL_IA32_CHMOD = 46,
	OF_SYSCALL_IA32_FCHMOD = 47,
	OF_SYSCALL_IA32_FCHMODAT = 48,
	OF_SYSCALL_IA32_FCHMODAT2 = 49,
	/* chown16, fchown16, lchown16: 16-bit ids, (u16)-1 leaves one unchanged. */
	OF_SYSCALL_IA32_CHOWN = 50,
	OF_SYSCALL_IA32_FCHOWN = 51,
	OF_SYSCALL_IA32_LCHOWN = 52,
	OF_SYSCALL_IA32_FCHOWNAT = 53,
	OF_SYSCALL_IA32_TRUNCATE = 54,
	OF_SYSCALL_IA32_FTRUNCATE = 55,
	OF_SYSCALL_IA32_CHOWN32 = 56,
	OF_SYSCALL_IA32_FCHOWN32 = 57,
	OF_SYSCALL_IA32_LCHOWN32 = 58,
	/* The length in two registers, low half first. */
	OF_SYSCALL_IA32_TRUNCATE64 = 59,
	OF_SYSCALL_IA32_FTRUNCATE64 = 60,
	/* An exec (sched_process_exec): execveat when it named an fd (fexecve, or a path relative to
	 * a dirfd), else execve; by then the ELF loader has rewritten the saved syscall number to
	 * the new image's execve, so nothing else tells them apart. */
	OF_SYSCALL_EXECVE = 61,
	OF_SYSCALL_EXECVEAT = 62,
};

/* = Op in src/event.rs: what a record did (of_event_hdr.op; 0 in an open's record). */
enum of_op {
	OF_OP_OPEN = 1,
	OF_OP_RENAME = 2,
	OF_OP_LINK = 3,
	OF_OP_SYMLINK = 4,
	OF_OP_UNLINK = 5,
	OF_OP_RMDIR = 6,
	OF_OP_MKDIR = 7,
	OF_OP_CHMOD = 8,
	OF_OP_CHOWN = 9,
	OF_OP_TRUNCATE = 10,
	OF_OP_EXEC = 11,
};

/* = PathSource in src/event.rs: what the components in the record are. */
enum of_path_source {
	/* The opened file's dentry and mount chain. */
	OF_PATH_FILE = 1,
	/* Nothing walked: a failed absolute open, the raw path says it all. */
	OF_PATH_RAW = 2,
	/* The task's cwd: user space joins it with the raw path. */
	OF_PATH_CWD = 3,
	/* The dirfd's directory: user space joins it with the raw path. */
	OF_PATH_DIRFD = 4,
	/* Nothing could be walked (e.g. an io_uring direct descriptor). */
	OF_PATH_UNRESOLVED = 5,
	/* A failed absolute open by a chrooted task: the components are its root's (walked as a
	 * cwd is); user space joins the raw path on. */
	OF_PATH_ROOT = 6,
};

/* of_event_hdr.trunc bits */
enum of_trunc {
	OF_TRUNC_RAW = 1,
	OF_TRUNC_PATH = 2,
	/* of_proc_hdr.trunc: the exe walk, argv or cgroup walk was cut. */
	OF_TRUNC_EXE = 4,
	OF_TRUNC_ARGS = 8,
	OF_TRUNC_CGROUP = 16,
	/* of_event_hdr.trunc (a flag byte, not only cuts): the opened file's dentry is unhashed. */
	OF_PATH_DELETED = 32,
	/* The path is the kernel's name of a pseudo file (pipe:[N], socket:[N], anon_inode:[…]),
	 * one component, not a path from the root. */
	OF_PATH_PSEUDO = 64,
	/* The directory part of the path is the cached one of of_event_hdr.dir_slot: only the
	 * leaf (OF_PATH_FILE) or nothing (OF_PATH_CWD, OF_PATH_DIRFD) is in the record. */
	OF_PATH_CACHED = 128,
};

/*
 * The directory path cache (bpf/opens.bpf.c): per CPU, at most this many slots (user space
 * sizes it at load, a power of two, so that its memory stays bounded on hosts with many CPUs).
 * A record whose dir_slot is not 0 either defines that slot (its components after the leaf are
 * the directory, walked now) or, with OF_PATH_CACHED, uses it. Slot ids are
 * cpu * OF_DIR_SLOTS + slot + 1.
 */
#define OF_DIR_SLOTS 512
/*
 * Levels (components and mount crossings) a compat walk takes (bpf/compat.h): a deeper path is
 * marked truncated. The verifier walks every level's copy of the loop body, and a mount crossing
 * and a name leave different states, so its work doubles per level: 16 levels passed 1M
 * instructions in the exec program on 6.18, 10 load (bpftool prog loadall).
 */
#define OF_COMPAT_WALK_STEPS 10
/* Limits user space sizes maps by or reports: an enum, so that they reach Rust through BTF. */
enum of_limits {
	OF_LIMIT_DIR_SLOTS = OF_DIR_SLOTS,
	OF_LIMIT_COMPAT_WALK_STEPS = OF_COMPAT_WALK_STEPS,
};
/* Directory levels a slot validates; a deeper directory is walked every time. */
#define OF_DIR_DEPTH 16

/* of_proc_hdr.exe_flags bits */
enum of_exe_flags {
	/* The executable's dentry is unlinked: a deleted file or a memfd. */
	OF_EXE_DELETED = 1,
};

/* Keys of the per-CPU loss counter array. */
enum of_loss_reason {
	/* bpf_ringbuf_output failed: the ring was full. */
	OF_LOSS_RINGBUF_FULL = 0,
	/* An io_uring submit → complete stash could not be written. */
	OF_LOSS_STASH_FULL = 1,
	OF_LOSS_NR = 2,
	OF_LOSS_ALERT_DROPPED = 64, /* user space only (never a map key): an alert output's queue was full; alerts, not events */
};

/*
 * One record in the ring: the fixed header, then `raw_len` bytes of the raw path (no NUL), then
 * `path_len` bytes of resolved components, each NUL-terminated, leaf first, then `root_len`
 * bytes of the components of the task's root when it is chrooted. Every walk goes up to the top
 * of the task's mount tree, not to its root (bpf/path.h): paths are the host's (a container's,
 * in its own mount namespace), so a chroot renames nothing. Records are variable-size; the
 * header is what user space decodes as a struct.
 */
struct of_event_hdr {
	__u32 kind;       /* OF_REC_OPEN */
	__u32 pid;
	/* bpf_ktime_get_boot_ns() when the open returned. */
	__u64 ts_ns;
	/* The process's start (thread group leader's start_boottime): with pid, its key. */
	__u64 proc_start;
	/* fd, or minus errno */
	__s64 ret;
	__u64 flags;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 egid;
	__u32 mode;
	__s32 dirfd;
	__u16 raw_len;
	__u16 path_len;
	__u8 syscall;     /* enum of_syscall */
	__u8 path_source; /* enum of_path_source */
	__u8 has_dirfd;
	__u8 trunc;       /* enum of_trunc bits */
	char comm[OF_COMM_LEN];
	/* The directory cache slot this record defines or uses (0: none), and its fill count:
	 * a record using a slot names the fill it saw, so a lost defining record is noticed. */
	__u32 dir_slot;
	__u32 dir_gen;
	/* The opened file's identity, on a successful open whose file was walked: its inode number
	 * and its superblock's s_dev (MKDEV encoding); dev 0: none. */
	__u64 ino;
	__u32 dev;
	/* A chrooted task's root's components (0: not chrooted; an OF_PATH_ROOT record's path is
	 * its root; the compat probes leave it out), and nonzero when that walk was cut. */
	__u16 root_len;
	__u8 root_cut;
	/* enum of_op in an OF_REC_OP record; 0 in an open's (OF_REC_OPEN). */
	__u8 op;
};

/*
 * What an OF_REC_OP record adds, right after its path data (raw, components, root): the
 * operation's values, then `old_raw_len` bytes of the old name as passed and `old_path_len`
 * bytes of its resolved components, walked like the path's (their own source, dirfd, cut marks
 * and directory cache slot; the old name was walked first, so a slot it defines precedes the
 * path's). A symlink's old name is its target, kept raw (OF_PATH_RAW, nothing walked).
 */
struct of_op_tail {
	/* truncate's new length */
	__s64 length;
	/* chown's new owner and group; (u32)-1: left unchanged */
	__u32 new_uid;
	__u32 new_gid;
	__s32 old_dirfd;
	__u32 old_dir_slot;
	__u32 old_dir_gen;
	__u16 old_raw_len;
	__u16 old_path_len;
	__u8 old_path_source; /* enum of_path_source; 0: no old name */
	__u8 old_has_dirfd;
	__u8 old_trunc;       /* enum of_trunc bits */
	__u8 pad[5];
};

/* The per-CPU scratch a record is built in before bpf_ringbuf_output copies out its used part. */
struct of_event {
	struct of_event_hdr hdr;
	char data[OF_DATA_MAX];
};

/*
 * A process lifecycle record: the fixed header, then `exe_len` bytes of exe components (leaf
 * first, each NUL-terminated, like a path walk), `args_len` bytes of argv (NUL-separated),
 * `cgroup_len` bytes of cgroup components (leaf first), `root_len` bytes of the components of
 * the process's root directory when it is chrooted, `cwd_len` bytes of its working directory's
 * components, then `name_len` bytes of the name it was exec'd by. Fork and exit records carry no
 * data.
 */
struct of_proc_hdr {
	__u32 kind;         /* OF_REC_EXEC, OF_REC_FORK or OF_REC_EXIT */
	__u32 pid;          /* the process (thread group) id */
	__u64 ts_ns;        /* bpf_ktime_get_boot_ns() */
	__u64 start;        /* start_boottime: with pid, the process key */
	__u64 parent_start; /* the real parent's start_boottime */
	__u64 cgroup_id;    /* the cgroup walked (see cgroup_len), its kernfs id */
	__u64 exe_ino;      /* OF_REC_EXEC: the executable's inode number and superblock s_dev */
	__u32 exe_dev;      /* (MKDEV encoding); 0: no executable */
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 egid;
	__u32 auid;         /* login uid; (u32)-1 when unset */
	__u32 sessionid;    /* audit session; (u32)-1 when unset */
	__u32 pidns;        /* inode numbers of the pid and mount namespaces */
	__u32 mntns;
	__s32 exit_code;    /* OF_REC_EXIT: the wait status (code << 8 | signal) */
	__u16 exe_len;
	__u16 args_len;
	__u16 cgroup_len;
	__u16 root_len;     /* the process's root (chroot) components, walked to the top of its
			     * mount tree, after the cgroup's; 0: not chrooted */
	__u8 trunc;         /* enum of_trunc bits (EXE, ARGS, CGROUP) */
	__u8 exe_flags;     /* enum of_exe_flags bits */
	char comm[OF_COMM_LEN];
	char tty[OF_TTY_LEN]; /* the controlling tty's kernel name (pts0, tty1), empty when none */
	/* OF_REC_EXEC: the working directory's components (walked to the top of the mount tree,
	 * after the root's), then the name as passed to execve (bprm->filename, no NUL). */
	__u16 cwd_len;
	__u16 name_len;
	__u8 cwd_cut;       /* nonzero: the cwd walk stopped short */
	__u8 syscall;       /* OF_REC_EXEC: enum of_syscall (EXECVE or EXECVEAT) */
	__u8 pad[2];
};

struct of_proc {
	struct of_proc_hdr hdr;
	char data[OF_PROC_DATA_MAX];
};

#endif /* __OF_EVENTS_H */
