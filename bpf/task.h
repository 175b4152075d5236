/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * Who is opening: the current task's identity, and the file behind one of its descriptors.
 */
#ifndef __OF_TASK_H
#define __OF_TASK_H

static __always_inline struct task_struct *current_task(void)
{
	return (struct task_struct *)bpf_get_current_task();
}

/*
 * Who is opening, from the current task. Everything is a direct load through the BTF task
 * pointer: pid and tid are what bpf_get_current_pid_tgid returns, comm is two 8-byte loads
 * where bpf_get_current_comm is a call (as unlocked a read as the helper's: a rename racing
 * the open can show either name, the kernel keeps comm[15] NUL). proc_start (with pid, the
 * process key that lineage is looked up by) and the effective ids too. So the open pays loads
 * for who it is, no helper call.
 */
static __always_inline void fill_task(struct of_event_hdr *h, struct task_struct *task)
{
	/* current_cred(), what bpf_get_current_uid_gid reads, without the helper call. */
	const struct cred *cred = task->cred;

	h->kind = OF_REC_OPEN;
	h->pid = task->tgid;
	h->tid = task->pid;
	h->ppid = task->real_parent->tgid;
	h->proc_start = task->group_leader->start_boottime;
	h->uid = cred->uid.val;
	h->gid = cred->gid.val;
	h->euid = cred->euid.val;
	h->egid = cred->egid.val;
	__builtin_memcpy(h->comm, task->comm, sizeof(h->comm));
}

/*
 * task->files->fdt->fd[fd], or NULL. A pointer to an array of pointers has no BTF type the
 * verifier can index, so the slot's address is cast to a type whose member is a `struct file *`
 * (kiocb's ki_filp): one guarded direct load instead of a bpf_probe_read_kernel call, and the
 * file comes back as a (read-only, fault-guarded) BTF pointer.
 */
static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct fdtable *fdt = task->files->fdt;
	__u64 slot;

	if (!fdt || fd < 0 || fd >= fdt->max_fds)
		return NULL;
	slot = (__u64)fdt->fd + fd * sizeof(struct file *) -
	       bpf_core_field_offset(struct kiocb, ki_filp);
	return bpf_core_cast((void *)slot, struct kiocb)->ki_filp;
}

#endif /* __OF_TASK_H */
