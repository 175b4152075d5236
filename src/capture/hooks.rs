//! Which programs cover which way of opening, and the tracepoints each needs: what `run` loads,
//! switches off, and names in its `attached` line.

/// A group of probes that covers one way of opening, and the tracepoints it needs.
pub struct Hook {
    pub what: &'static str,
    pub progs: &'static [&'static str],
    pub tracepoints: &'static [(&'static str, &'static str)],
}

/// What `record` loads for the syscalls by default: one program on every syscall's exit that
/// picks out the opens by number, through the 64-bit and the 32-bit entry alike. Cheaper per open
/// than the per-syscall tracepoints (no ftrace syscall event or perf record is built for it), at
/// the price of a few instructions on every other syscall (bpf/opens.bpf.c, benches/ab.sh).
pub const RAW_EXIT: Hook = Hook {
    what: "open, creat, openat, openat2, open_by_handle_at (64- and 32-bit entry)",
    progs: &["tp_btf__sys_exit"],
    tracepoints: &[("raw_syscalls", "sys_exit")],
};

/// With `--no-ia32` (or a kernel without the raw tracepoint): one syscalls:* exit tracepoint
/// per open syscall, which no other syscall pays for and the 32-bit entry never reaches.
pub const SYSCALL_HOOKS: &[Hook] = &[
    Hook {
        what: "open",
        progs: &["tracepoint__syscalls__sys_exit_open"],
        tracepoints: &[("syscalls", "sys_exit_open")],
    },
    Hook {
        what: "creat",
        progs: &["tracepoint__syscalls__sys_exit_creat"],
        tracepoints: &[("syscalls", "sys_exit_creat")],
    },
    Hook {
        what: "openat",
        progs: &["tracepoint__syscalls__sys_exit_openat"],
        tracepoints: &[("syscalls", "sys_exit_openat")],
    },
    Hook {
        what: "openat2",
        progs: &["tracepoint__syscalls__sys_exit_openat2"],
        tracepoints: &[("syscalls", "sys_exit_openat2")],
    },
    Hook {
        what: "open_by_handle_at",
        progs: &["tracepoint__syscalls__sys_exit_open_by_handle_at"],
        tracepoints: &[("syscalls", "sys_exit_open_by_handle_at")],
    },
];

pub const OTHER_HOOKS: &[Hook] = &[
    // Process lifecycle (lineage): tp_btf, like io_uring.
    Hook {
        what: "process lifecycle",
        progs: &[
            "tp_btf__sched_process_exec",
            "tp_btf__sched_process_fork",
            "tp_btf__sched_process_exit",
        ],
        tracepoints: &[
            ("sched", "sched_process_exec"),
            ("sched", "sched_process_fork"),
            ("sched", "sched_process_exit"),
        ],
    },
    // tp_btf programs need no tracefs, but the tracefs entry is the cheapest sign that the
    // kernel has these tracepoints (io_uring_submit_req takes only the request since 5.18).
    Hook {
        what: "io_uring",
        progs: &["tp_btf__io_uring_submit_req", "tp_btf__io_uring_complete"],
        tracepoints: &[
            ("io_uring", "io_uring_submit_req"),
            ("io_uring", "io_uring_complete"),
        ],
    },
];
