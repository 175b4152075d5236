/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * Who is opening: the current task's identity, and the file behind one of its descriptors.
 */
#ifndef __OF_TASK_H
#define __OF_TASK_H

/*
 * Who is opening, from the current task. Everything is a direct load through the BTF task
 * pointer: pid and tid are what bpf_get_current_pid_tgid returns, comm is two 8-byte loads
 * where bpf_get_current_comm is a call (as unlocked a read as the helper's: a rename racing
 * the open can show either name, the kernel keeps comm[15] NUL). proc_start (with pid, the
 * process key that lineage is looked up by) and the effective ids too. So the open pays loads
 * for who it is, no helper call.
 */
static __always_inline void fill_task(struct of_event_hdr *h, struct task_struct *task,
				      const bool fast)
{
	/* current_cred(), what bpf_get_current_uid_gid reads, without the helper call. */
	const struct cred *cred = KREAD(fast, task, cred);

	h->kind = OF_REC_OPEN;
	h->pid = KREAD(fast, task, tgid);
	h->tid = KREAD(fast, task, pid);
	h->ppid = KREAD(fast, KREAD(fast, task, real_parent), tgid);
	h->proc_start = KREAD(fast, KREAD(fast, task, group_leader), start_boottime);
	h->uid = KREAD(fast, cred, uid.val);
	h->gid = KREAD(fast, cred, gid.val);
	h->euid = KREAD(fast, cred, euid.val);
	h->egid = KREAD(fast, cred, egid.val);
	if (fast)
		__builtin_memcpy(h->comm, task->comm, sizeof(h->comm));
	else
		bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/*
 * task->files->fdt->fd[fd], or NULL. A pointer to an array of pointers has no BTF type the
 * verifier can index, so the slot's address is cast to a type whose member is a `struct file *`
 * (kiocb's ki_filp): one guarded direct load instead of a bpf_probe_read_kernel call, and the
 * file comes back as a (read-only, fault-guarded) BTF pointer. Compat reads the slot by helper.
 */
static __always_inline struct file *fd_file(struct task_struct *task, long fd, const bool fast)
{
	struct fdtable *fdt = KREAD(fast, KREAD(fast, task, files), fdt);
	struct file **fds;
	struct file *f = NULL;
	__u64 slot;

	if (!fdt || fd < 0 || fd >= KREAD(fast, fdt, max_fds))
		return NULL;
	fds = KREAD(fast, fdt, fd);
	if (!fast) {
		bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
		return f;
	}
	slot = (__u64)fds + fd * sizeof(struct file *) - bpf_core_field_offset(struct kiocb, ki_filp);
	return bpf_core_cast((void *)slot, struct kiocb)->ki_filp;
}

#endif /* __OF_TASK_H */
