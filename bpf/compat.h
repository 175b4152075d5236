/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * One object for every kernel from 5.10 on. Each program that reads a path comes in two variants
 * compiled from the same code; user space loads one of each pair (src/capture/):
 *  - fast (6.2+): kernel objects read by direct loads through BTF pointers (bpf_core_cast, which
 *    is the bpf_rdonly_cast kfunc of 6.2, and bpf_get_current_task_btf), path walks in bpf_loop
 *    callbacks (5.17);
 *  - compat (5.10+): the same reads by bpf_probe_read_kernel (BPF_CORE_READ), walks in plain
 *    bounded loops of OF_COMPAT_WALK_STEPS levels (bpf/events.h).
 * A program that merely references a bpf_loop callback is refused before 5.17 ("number of funcs
 * in func_info doesn't match number of subprogs"), so the choice cannot be a branch the verifier
 * prunes: `fast` is a compile-time constant in every inlined function, and clang leaves each
 * variant only its own arm. Compat programs are named compat__* and not loaded unless user space
 * asks (SEC("?...")).
 */
#ifndef __OF_COMPAT_H
#define __OF_COMPAT_H

/*
 * A kernel object's field: a direct load through a BTF pointer, or a probe read. The object is
 * evaluated first: clang cannot nest one CO-RE read inside another's arguments.
 */
#define KREAD(fast, p, ...)                                                       \
	({                                                                        \
		__auto_type ___kp = (p);                                          \
		(fast) ? ___kp->__VA_ARGS__ : BPF_CORE_READ(___kp, __VA_ARGS__);   \
	})
/* A kernel address as a BTF pointer (fast), or as the plain address compat reads by helper. */
#define KCAST(fast, p, type) ((fast) ? bpf_core_cast(p, type) : (type *)(p))

/* The current task: a BTF pointer (5.11+) or a plain address. */
static __always_inline struct task_struct *task_of(const bool fast)
{
	if (fast)
		return bpf_get_current_task_btf();
	return (struct task_struct *)bpf_get_current_task();
}

#endif /* __OF_COMPAT_H */
