/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * Process lifecycle: one record per exec, per new process (not per thread) and per process exit,
 * so lineage costs per process, never per open. User space keeps the process table (keyed by
 * pid and start_boottime, which an open record carries) and stores it with the events.
 */
#ifndef __OF_PROCESS_H
#define __OF_PROCESS_H

/* The cgroup whose path names the process's container: the unified (v2) one, or on a hybrid
 * v1 host where that is the root, the memory controller's (where runtimes place containers). */
static __always_inline struct cgroup *task_cgroup(struct task_struct *task)
{
	struct cgroup *cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);

	if (cg && BPF_CORE_READ(cg, level) > 0)
		return cg;
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) {
		int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		struct cgroup_subsys_state *css;

		if (id >= 0 && id < 12) {
			css = BPF_CORE_READ(task, cgroups, subsys[id]);
			if (css && BPF_CORE_READ(css, cgroup))
				return BPF_CORE_READ(css, cgroup);
		}
	}
	return cg;
}

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(struct kernfs_node, __parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___pre615 *)kn, parent);
}

struct of_cg_walk {
	struct kernfs_node *kn;
	struct of_walk w;
};

/*
 * One cgroup level: emit its name and go up, nonzero when the walk ends; the root (no parent) has
 * no name of its own.
 */
static __always_inline long cg_step_in(struct of_cg_walk *c)
{
	struct kernfs_node *kn = c->kn;
	struct kernfs_node *parent;
	const char *name;

	if (!kn)
		return 1;
	parent = kn_parent(kn);
	if (!parent) {
		c->w.done = 1;
		return 1;
	}
	name = BPF_CORE_READ(kn, name);
	if (!walk_emit(&c->w, (const unsigned char *)name, OF_NAME_MAX - 1))
		return 1;
	c->kn = parent;
	return 0;
}

/* The fast walk's bpf_loop callback. */
static long cg_step(__u64 index, void *arg)
{
	return cg_step_in(arg);
}

/* Cgroup levels walked: a deeper cgroup is marked truncated. */
#define OF_CG_STEPS 64

static __always_inline void cg_run(struct of_cg_walk *c, const bool fast)
{
	__u32 i;

	if (fast) {
		bpf_loop(OF_CG_STEPS, cg_step, c, 0);
		return;
	}
#pragma clang loop unroll(disable)
	for (i = 0; i < OF_CG_STEPS; i++)
		if (cg_step_in(c))
			break;
}

/* What every process record says about the task: ids, credentials, namespaces, cgroup id. */
static __always_inline void fill_proc(struct of_proc_hdr *h, struct task_struct *task, __u32 kind)
{
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	struct pid *tp = BPF_CORE_READ(task, thread_pid);
	struct cgroup *cg = task_cgroup(task);
	unsigned int level;

	h->kind = kind;
	h->ts_ns = bpf_ktime_get_boot_ns();
	h->pid = BPF_CORE_READ(task, tgid);
	h->start = BPF_CORE_READ(leader, start_boottime);
	h->ppid = BPF_CORE_READ(parent, tgid);
	h->parent_start = BPF_CORE_READ(parent, group_leader, start_boottime);
	h->uid = BPF_CORE_READ(task, cred, uid.val);
	h->gid = BPF_CORE_READ(task, cred, gid.val);
	h->euid = BPF_CORE_READ(task, cred, euid.val);
	h->egid = BPF_CORE_READ(task, cred, egid.val);
	if (bpf_core_field_exists(task->loginuid)) {
		h->auid = BPF_CORE_READ(task, loginuid.val);
		h->sessionid = BPF_CORE_READ(task, sessionid);
	} else {
		h->auid = (__u32)-1;
		h->sessionid = (__u32)-1;
	}
	level = BPF_CORE_READ(tp, level);
	h->pidns = BPF_CORE_READ(tp, numbers[level & 31].ns, ns.inum);
	h->mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	h->cgroup_id = cg ? BPF_CORE_READ(cg, kn, id) : 0;
	h->exe_ino = 0;
	h->exe_dev = 0;
	h->exit_code = 0;
	h->exe_len = 0;
	h->args_len = 0;
	h->cgroup_len = 0;
	h->root_len = 0;
	h->cwd_len = 0;
	h->name_len = 0;
	h->cwd_cut = 0;
	h->syscall = 0;
	h->trunc = 0;
	h->exe_flags = 0;
	h->tty[0] = 0;
	BPF_CORE_READ_STR_INTO(&h->comm, task, comm);
}

static __always_inline void output_proc(struct of_proc *p)
{
	__u64 size = sizeof(struct of_proc_hdr) + (__u64)p->hdr.exe_len + p->hdr.args_len +
		     p->hdr.cgroup_len + p->hdr.root_len + p->hdr.cwd_len + p->hdr.name_len;

	if (size > sizeof(struct of_proc))
		size = sizeof(struct of_proc);
	/* Rare records: no forced wakeup; the consumer finds them on its timed poll. */
	if (bpf_ringbuf_output(&of_events, p, size, BPF_RB_NO_WAKEUP))
		count_loss(OF_LOSS_RINGBUF_FULL);
}

/*
 * The bytes of data the record holds so far, read back from its header (volatile: a load the
 * compiler cannot forward from the stores). A fresh scalar for the verifier: an offset summed
 * from the walks' own lengths would make it track each walk's length precisely and keep apart
 * the states the walks' loops would otherwise share (measured on 6.18: compat__sched_process_exec
 * verified 885,984 instructions with the summed offset, 450,596 with this one).
 */
static __always_inline __u32 proc_data_used(struct of_proc *rec)
{
	volatile struct of_proc_hdr *h = &rec->hdr;

	return (__u32)h->exe_len + h->args_len + h->cgroup_len + h->root_len + h->cwd_len;
}

/*
 * The exec'ing task's working directory, walked into the process scratch after what the record
 * holds already (`base`), up to the top of its mount tree as every path is; returns the bytes
 * written. Out of line (a global function, verified once on its own) like the file operations'
 * second walks, so that a fourth walk does not multiply the exec program's own states.
 */
static __always_inline int exec_cwd(__u32 base, const bool fast)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct of_proc *rec;
	__u32 zero = 0;
	struct of_walk w = {
		.limit = OF_CWD_MAX,
		.proc = 1,
	};

	rec = bpf_map_lookup_elem(&of_proc_scratch, &zero);
	if (!rec)
		return 0;
	w.base = base & OF_PROC_MASK;
	walk_start(&w, BPF_CORE_READ(task, fs, pwd.dentry), BPF_CORE_READ(task, fs, pwd.mnt), fast);
	walk_run(&w, OF_WALK_MAX_STEPS, fast);
	if (!w.done)
		rec->hdr.cwd_cut = 1;
	return w.off > OF_CWD_MAX ? OF_CWD_MAX : w.off;
}

__noinline int of_exec_cwd_fast(__u32 base)
{
	return exec_cwd(base, true);
}

__noinline int of_exec_cwd_compat(__u32 base)
{
	return exec_cwd(base, false);
}

/*
 * After the point of no return of execve: current runs the new image, whose argv the kernel just
 * copied to the new stack (resident, so readable here) and whose mm->exe_file is the binary
 * (the interpreter, for a script: argv then shows the script).
 */
static __always_inline int process_exec(struct linux_binprm *bprm, const bool fast)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct of_proc *rec;
	struct file *exe;
	struct tty_struct *tty;
	struct cgroup *cg;
	__u32 zero = 0, exe_len = 0, len = 0, at;
	unsigned long start, end;
	long n;

	rec = bpf_map_lookup_elem(&of_proc_scratch, &zero);
	if (!rec)
		return 0;
	fill_proc(&rec->hdr, task, OF_REC_EXEC);

	exe = BPF_CORE_READ(task, mm, exe_file);
	if (exe) {
		struct dentry *d = BPF_CORE_READ(exe, f_path.dentry);
		/* The host's path (path.h): a chroot's own /usr/bin/passwd is not the host's. */
		struct of_walk w = {
			.limit = OF_PATH_MAX,
			.proc = 1,
		};

		/* Its identity: what an allow-list can trust where a path can be made up. */
		rec->hdr.exe_ino = BPF_CORE_READ(exe, f_inode, i_ino);
		rec->hdr.exe_dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev);
		walk_start(&w, d, BPF_CORE_READ(exe, f_path.mnt), fast);
		walk_run(&w, OF_WALK_MAX_STEPS, fast);
		if (!w.done)
			rec->hdr.trunc |= OF_TRUNC_EXE;
		exe_len = w.off > OF_PATH_MAX ? OF_PATH_MAX : w.off;
		if (!BPF_CORE_READ(d, d_hash.pprev))
			rec->hdr.exe_flags |= OF_EXE_DELETED;
	}
	rec->hdr.exe_len = exe_len;

	start = BPF_CORE_READ(task, mm, arg_start);
	end = BPF_CORE_READ(task, mm, arg_end);
	if (end > start) {
		len = end - start;
		if (len > OF_ARGS_MAX) {
			len = OF_ARGS_MAX;
			rec->hdr.trunc |= OF_TRUNC_ARGS;
		}
		/* Opaque to clang, so that the mask the verifier needs is not folded away. */
		barrier_var(len);
		len &= 2 * OF_ARGS_MAX - 1;
		if (bpf_probe_read_user(&rec->data[exe_len & (2 * OF_PATH_MAX - 1)], len,
					(void *)start))
			len = 0;
	}
	rec->hdr.args_len = len;

	cg = task_cgroup(task);
	if (cg) {
		struct of_cg_walk c = {
			.kn = BPF_CORE_READ(cg, kn),
			.w = {
				.base = exe_len + len,
				.limit = OF_CGROUP_MAX,
				.proc = 1,
			},
		};

		cg_run(&c, fast);
		if (!c.w.done)
			rec->hdr.trunc |= OF_TRUNC_CGROUP;
		rec->hdr.cgroup_len = c.w.off > OF_CGROUP_MAX ? OF_CGROUP_MAX : c.w.off;
	}

	/*
	 * A chrooted process: its root, walked up to the top of its mount tree as its paths are
	 * (opens carry it too, as a process can chroot after exec).
	 */
	if (task_chrooted(task, false)) {
		struct of_walk w = {
			.base = exe_len + len + rec->hdr.cgroup_len,
			.limit = OF_ROOT_MAX,
			.proc = 1,
		};

		walk_start(&w, BPF_CORE_READ(task, fs, root.dentry), BPF_CORE_READ(task, fs, root.mnt),
			   fast);
		walk_run(&w, OF_WALK_MAX_STEPS, fast);
		rec->hdr.root_len = w.off > OF_ROOT_MAX ? OF_ROOT_MAX : w.off;
	}

	n = fast ? of_exec_cwd_fast(proc_data_used(rec)) : of_exec_cwd_compat(proc_data_used(rec));
	rec->hdr.cwd_len = n > 0 && n <= OF_CWD_MAX ? n : 0;
	at = proc_data_used(rec);

	/* The name as passed: a script's (its exe is the interpreter), a relative one as given. */
	n = bpf_probe_read_kernel_str(&rec->data[at & OF_PROC_MASK], OF_EXEC_NAME_MAX,
				      BPF_CORE_READ(bprm, filename));
	rec->hdr.name_len = n > 0 ? n - 1 : 0;
	rec->hdr.syscall = OF_SYSCALL_EXECVE;
	if (bpf_core_field_exists(bprm->fdpath) && BPF_CORE_READ(bprm, fdpath))
		rec->hdr.syscall = OF_SYSCALL_EXECVEAT;

	tty = BPF_CORE_READ(task, signal, tty);
	if (tty)
		BPF_CORE_READ_STR_INTO(&rec->hdr.tty, tty, name);
	output_proc(rec);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tp_btf__sched_process_exec, struct task_struct *p, int old_pid,
	     struct linux_binprm *bprm)
{
	return process_exec(bprm, true);
}

SEC("?tp_btf/sched_process_exec")
int BPF_PROG(compat__sched_process_exec, struct task_struct *p, int old_pid,
	     struct linux_binprm *bprm)
{
	return process_exec(bprm, false);
}

/* A new process (threads are not processes: their opens carry the process's key already). */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(tp_btf__sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	struct of_proc *rec;
	__u32 zero = 0;

	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	rec = bpf_map_lookup_elem(&of_proc_scratch, &zero);
	if (!rec)
		return 0;
	fill_proc(&rec->hdr, child, OF_REC_FORK);
	output_proc(rec);
	return 0;
}

/* The process ends when its last thread exits (signal->live reached 0 before this tracepoint). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(tp_btf__sched_process_exit, struct task_struct *p)
{
	struct of_proc *rec;
	__u32 zero = 0;

	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	rec = bpf_map_lookup_elem(&of_proc_scratch, &zero);
	if (!rec)
		return 0;
	fill_proc(&rec->hdr, p, OF_REC_EXIT);
	rec->hdr.exit_code = BPF_CORE_READ(p, exit_code);
	output_proc(rec);
	return 0;
}

#endif /* __OF_PROCESS_H */
