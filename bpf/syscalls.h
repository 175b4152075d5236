/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * The syscall opens' programs: per-syscall exit tracepoints, or one raw sys_exit for all.
 */
#ifndef __OF_SYSCALLS_H
#define __OF_SYSCALLS_H

/*
 * The syscalls:* tracepoints pass no registers: the task's saved ones (bpf_task_pt_regs, 5.15;
 * it takes a BTF task pointer, so compat too asks for one). Each exit tracepoint has a fast and a
 * compat program (compat.h).
 */
#define SYSCALL_EXIT(name, sc)                                                                  \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                              \
	int tracepoint__syscalls__sys_exit_##name(struct trace_event_raw_sys_exit *ctx)         \
	{                                                                                       \
		struct task_struct *t = task_of(true);                                          \
                                                                                                \
		return on_exit(sc, ctx->ret, (struct pt_regs *)bpf_task_pt_regs(t), t, true);   \
	}                                                                                       \
	SEC("?tracepoint/syscalls/sys_exit_" #name)                                             \
	int compat__sys_exit_##name(struct trace_event_raw_sys_exit *ctx)                       \
	{                                                                                       \
		struct pt_regs *regs = (void *)bpf_task_pt_regs(bpf_get_current_task_btf());  \
                                                                                                \
		return on_exit(sc, ctx->ret, regs, task_of(false), false);                      \
	}

SYSCALL_EXIT(open, OF_SYSCALL_OPEN)
SYSCALL_EXIT(creat, OF_SYSCALL_CREAT)
SYSCALL_EXIT(openat, OF_SYSCALL_OPENAT)
SYSCALL_EXIT(openat2, OF_SYSCALL_OPENAT2)
SYSCALL_EXIT(open_by_handle_at, OF_SYSCALL_OPEN_BY_HANDLE_AT)

/* arch/x86/include/asm/thread_info.h: a 32-bit syscall is running (int $0x80 / sysenter). */
#define TS_COMPAT 0x0002

/*
 * Every syscall's exit, opens picked out by number (orig_ax): the 64-bit table's and, for a task
 * in a 32-bit syscall (int $0x80, which any 64-bit program can use and which never reaches the
 * syscalls:* tracepoints), the ia32 table's. This is what record loads by default: a BTF raw
 * tracepoint is dispatched straight from the tracepoint with its arguments, where each
 * syscalls:sys_exit_* event goes through the ftrace syscall layer and a perf event record first.
 * An open used to pay both (its syscalls:* program and this one's 32-bit check); one run instead
 * cut capture's cost per open+close by a quarter (benches/ab.sh). The file operations
 * (bpf/file_ops.h) are picked out after the opens, so an open pays nothing for them; every other
 * syscall pays two loads and the compares of both switches.
 * The per-syscall programs above are what `record --no-ia32` loads instead.
 */
static __always_inline int sys_exit(struct pt_regs *regs, long ret, const bool fast)
{
	struct task_struct *t = task_of(fast);
	long nr = regs->orig_ax;
	__u8 sc;

	if (!(KREAD(fast, t, thread_info.status) & TS_COMPAT)) {
		switch (nr) {
		case NR64_OPEN:
			sc = OF_SYSCALL_OPEN;
			break;
		case NR64_CREAT:
			sc = OF_SYSCALL_CREAT;
			break;
		case NR64_OPENAT:
			sc = OF_SYSCALL_OPENAT;
			break;
		case NR64_OPENAT2:
			sc = OF_SYSCALL_OPENAT2;
			break;
		case NR64_OPEN_BY_HANDLE_AT:
			sc = OF_SYSCALL_OPEN_BY_HANDLE_AT;
			break;
		default:
			return ops_exit(op_nr64(nr), regs, ret, fast);
		}
	} else {
		switch (nr) {
		case NR32_OPEN:
			sc = OF_SYSCALL_IA32_OPEN;
			break;
		case NR32_CREAT:
			sc = OF_SYSCALL_IA32_CREAT;
			break;
		case NR32_OPENAT:
			sc = OF_SYSCALL_IA32_OPENAT;
			break;
		case NR32_OPENAT2:
			sc = OF_SYSCALL_IA32_OPENAT2;
			break;
		case NR32_OPEN_BY_HANDLE_AT:
			sc = OF_SYSCALL_IA32_OPEN_BY_HANDLE_AT;
			break;
		default:
			return ops_exit(op_nr32(nr), regs, ret, fast);
		}
	}
	/* One inlined copy of on_exit, not one per syscall: the verifier walks each. */
	barrier_var(sc);
	return on_exit(sc, ret, regs, t, fast);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(tp_btf__sys_exit, struct pt_regs *regs, long ret)
{
	return sys_exit(regs, ret, true);
}

SEC("?tp_btf/sys_exit")
int BPF_PROG(compat__sys_exit, struct pt_regs *regs, long ret)
{
	return sys_exit(regs, ret, false);
}

#endif /* __OF_SYSCALLS_H */
