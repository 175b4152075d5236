//! Which programs cover which way of opening: what the plan loads, switches to its compat twin,
//! or leaves out.

use super::coverage::Cap;

/// One program: its fast variant and, for a program that reads paths, its compat twin
/// (bpf/compat.h).
#[derive(Debug, PartialEq, Eq)]
pub struct Prog {
    pub fast: &'static str,
    pub compat: Option<&'static str>,
}

/// A group of programs that together capture `caps`: loaded, or left out, as one.
#[derive(Debug, PartialEq, Eq)]
pub struct Hook {
    pub caps: &'static [Cap],
    pub progs: &'static [Prog],
}

/// What `record` loads for the syscalls by default: one program on every syscall's exit that
/// picks out the opens and the file operations by number, through the 64-bit and the 32-bit
/// entry alike. Cheaper per open
/// than the per-syscall tracepoints (no ftrace syscall event or perf record is built for it), at
/// the price of a few instructions on every other syscall (bpf/syscalls.h, benches/ab.sh).
pub const RAW_EXIT: Hook = Hook {
    caps: &[Cap::Syscalls, Cap::Ia32, Cap::FileOps],
    progs: &[Prog {
        fast: "tp_btf__sys_exit",
        compat: Some("compat__sys_exit"),
    }],
};

/// The syscalls:* exit tracepoints `--no-ia32` loads instead, with their tracefs names: one per
/// open syscall, which no other syscall pays for and the 32-bit entry never reaches.
pub const SYSCALL_EXITS: Hook = Hook {
    caps: &[Cap::Syscalls],
    progs: &[
        Prog {
            fast: "tracepoint__syscalls__sys_exit_open",
            compat: Some("compat__sys_exit_open"),
        },
        Prog {
            fast: "tracepoint__syscalls__sys_exit_creat",
            compat: Some("compat__sys_exit_creat"),
        },
        Prog {
            fast: "tracepoint__syscalls__sys_exit_openat",
            compat: Some("compat__sys_exit_openat"),
        },
        Prog {
            fast: "tracepoint__syscalls__sys_exit_openat2",
            compat: Some("compat__sys_exit_openat2"),
        },
        Prog {
            fast: "tracepoint__syscalls__sys_exit_open_by_handle_at",
            compat: Some("compat__sys_exit_open_by_handle_at"),
        },
    ],
};

/// The tracefs events [`SYSCALL_EXITS`] attach to.
pub const SYSCALL_EXIT_EVENTS: &[&str] = &[
    "sys_exit_open",
    "sys_exit_creat",
    "sys_exit_openat",
    "sys_exit_openat2",
    "sys_exit_open_by_handle_at",
];

/// Process lifecycle (lineage): exec reads the image's path, fork and exit only the task.
pub const LIFECYCLE: Hook = Hook {
    caps: &[Cap::Lifecycle],
    progs: &[
        Prog {
            fast: "tp_btf__sched_process_exec",
            compat: Some("compat__sched_process_exec"),
        },
        Prog {
            fast: "tp_btf__sched_process_fork",
            compat: None,
        },
        Prog {
            fast: "tp_btf__sched_process_exit",
            compat: None,
        },
    ],
};

/// io_uring's opens: the submission stashes the path, the completion emits the record. The
/// submission's program is the one retargeted on kernels that name the hook differently.
pub const IO_URING: Hook = Hook {
    caps: &[Cap::IoUring],
    progs: &[URING_SUBMIT, URING_COMPLETE],
};

pub const URING_SUBMIT: Prog = Prog {
    fast: "tp_btf__io_uring_submit_req",
    compat: Some("compat__io_uring_submit_req"),
};

const URING_COMPLETE: Prog = Prog {
    fast: "tp_btf__io_uring_complete",
    compat: Some("compat__io_uring_complete"),
};
