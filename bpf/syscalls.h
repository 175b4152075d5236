/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * The syscall opens' programs: per-syscall exit tracepoints, or one raw sys_exit for all.
 */
#ifndef __OF_SYSCALLS_H
#define __OF_SYSCALLS_H

/* The syscalls:* tracepoints pass no registers: the task's saved ones. */
static __always_inline struct pt_regs *task_regs(struct task_struct *t)
{
	return (struct pt_regs *)bpf_task_pt_regs(t);
}

SEC("tracepoint/syscalls/sys_exit_open")
int tracepoint__syscalls__sys_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return on_exit(OF_SYSCALL_OPEN, ctx->ret, task_regs(t), t);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int tracepoint__syscalls__sys_exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return on_exit(OF_SYSCALL_CREAT, ctx->ret, task_regs(t), t);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tracepoint__syscalls__sys_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return on_exit(OF_SYSCALL_OPENAT, ctx->ret, task_regs(t), t);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int tracepoint__syscalls__sys_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return on_exit(OF_SYSCALL_OPENAT2, ctx->ret, task_regs(t), t);
}

SEC("tracepoint/syscalls/sys_exit_open_by_handle_at")
int tracepoint__syscalls__sys_exit_open_by_handle_at(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return on_exit(OF_SYSCALL_OPEN_BY_HANDLE_AT, ctx->ret, task_regs(t), t);
}

/* arch/x86/include/asm/thread_info.h: a 32-bit syscall is running (int $0x80 / sysenter). */
#define TS_COMPAT 0x0002

/*
 * Every syscall's exit, opens picked out by number (orig_ax): the 64-bit table's and, for a task
 * in a 32-bit syscall (int $0x80, which any 64-bit program can use and which never reaches the
 * syscalls:* tracepoints), the ia32 table's. This is what record loads by default: a BTF raw
 * tracepoint is dispatched straight from the tracepoint with its arguments, where each
 * syscalls:sys_exit_* event goes through the ftrace syscall layer and a perf event record first.
 * An open used to pay both (its syscalls:* program and this one's 32-bit check); one run instead
 * cut capture's cost per open+close by a quarter (benches/ab.sh). Every other syscall pays two
 * loads and a compare.
 * The per-syscall programs above are what `record --no-ia32` loads instead.
 */
SEC("tp_btf/sys_exit")
int BPF_PROG(tp_btf__sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	long nr = regs->orig_ax;
	__u8 sc;

	if (!(t->thread_info.status & TS_COMPAT)) {
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
			return 0;
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
			return 0;
		}
	}
	/* One inlined copy of on_exit, not one per syscall: the verifier walks each. */
	barrier_var(sc);
	return on_exit(sc, ret, regs, t);
}

#endif /* __OF_SYSCALLS_H */
