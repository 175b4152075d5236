// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
/*
 * Every route a process opens a file by, one record per open, sent to user space through a ring
 * buffer. See bpf/events.h for the record; src/capture/ for the user side.
 *
 * Syscalls (open, creat, openat, openat2, open_by_handle_at): the exit tracepoint reads the
 * arguments from the registers saved at entry, the path (the kernel has faulted it in by then),
 * and emits the record with the result. io_uring (IORING_OP_OPENAT/OPENAT2) never passes through a
 * syscall tracepoint: tp_btf/io_uring_submit_req stashes the submitter and the kernel's copy of the
 * path by request, tp_btf/io_uring_complete emits it with the result.
 *
 * The resolved absolute path is walked in the kernel: for a successful open the opened file's
 * dentry and mount chain (task->files->fdt->fd[ret]), for a failed relative open the cwd or the
 * dirfd's directory (user space joins the raw path on). One component per bpf_loop iteration
 * keeps the verifier's work independent of the path's depth. The walk is a lockless read, like
 * every tracing tool's: a rename racing the open can show either name.
 *
 * Cost: every open runs this, so the hot path reads kernel memory through BTF-typed pointers
 * (bpf_get_current_task_btf, bpf_core_cast): such loads are single instructions the JIT guards
 * with an exception table, where each BPF_CORE_READ is a bpf_probe_read_kernel helper call.
 * Helper calls are left only for what needs one: the fd array slot (an array of pointers has no
 * BTF pointer type), the name bytes, the user path, the ring. Measured with BPF stats in
 * benches/capture.rs.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "events.h"
#include "syscall_nr.h"

char LICENSE[] SEC("license") = "GPL";

#define AT_FDCWD -100
#define ENAMETOOLONG 36
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000
#define IORING_OP_OPENAT 18
#define IORING_OP_OPENAT2 28
#define IORING_OP_RENAMEAT 35
#define IORING_OP_UNLINKAT 36
#define IORING_OP_MKDIRAT 37
#define IORING_OP_LINKAT 39
/* Every component takes at least 2 bytes ("x\0"), plus room for mount crossings. */
#define OF_WALK_MAX_STEPS (OF_PATH_MAX / 2 + 64)

#include "compat.h"
#include "maps.h"
#include "task.h"
#include "path.h"
#include "dir_cache.h"
#include "open_record.h"
#include "file_ops.h"
#include "syscalls.h"
#include "io_uring.h"
#include "process.h"
