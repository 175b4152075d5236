/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * One open record: the leaf's name, the resolved path, the copy into the ring; and the syscall
 * opens' arguments read at exit.
 */
#ifndef __OF_OPEN_RECORD_H
#define __OF_OPEN_RECORD_H

/*
 * Copies a dentry's short name stored inline in the dentry (6.14+ d_shortname; most names) as
 * four word loads into an open record, instead of bpf_probe_read_kernel_str's byte-by-byte
 * guarded copy (with fd_file's direct load, ~6 ns less per probe run, BPF stats). The name and
 * its length are read between two reads of d_seq, which a rename bumps: a name being renamed (a
 * shorter one could show a NUL before the old length) is left to the helper. Returns the bytes
 * written, NUL included; 0 when this path does not apply (compat: never).
 */
static __always_inline __u32 emit_inline_name(struct of_event *e, __u32 base, struct dentry *d,
					      const bool fast)
{
	__u32 pos, len, seq;
	__u64 *dst;

	if (!fast || !bpf_core_field_exists(d->d_shortname))
		return 0;
	seq = d->d_seq.seqcount.sequence;
	barrier();
	len = d->d_name.len;
	if ((seq & 1) || len > 31 || (__u64)d->d_name.name != (__u64)d->d_shortname.string)
		return 0;
	pos = base & (OF_RAW_MAX - 1);
	dst = (__u64 *)&e->data[pos];
	dst[0] = d->d_shortname.words[0];
	dst[1] = d->d_shortname.words[1];
	dst[2] = d->d_shortname.words[2];
	dst[3] = d->d_shortname.words[3];
	barrier();
	if (d->d_seq.seqcount.sequence != seq)
		return 0;
	/* Opaque to clang, so that the mask (a no-op) gives the verifier the bound on the
	 * register used. */
	barrier_var(len);
	len &= 31;
	((char *)dst)[len] = 0;
	return len + 1;
}

/*
 * An ordinary file's name, the first component (leaf first); false for what has no name of its
 * own in a path (a mount's root, a pseudo file).
 */
static __always_inline bool emit_leaf(struct of_event *e, struct dentry *d,
				      struct vfsmount *vfsmnt, __u32 base, __u32 *off,
				      const bool fast)
{
	struct vfsmount *vm = KCAST(fast, vfsmnt, struct vfsmount);
	__u32 n;

	if (d == KREAD(fast, d, d_parent) || d == KREAD(fast, vm, mnt_root))
		return false;
	/* base < OF_RAW_MAX, and a leaf is the first component: it always fits. */
	n = emit_inline_name(e, base, d, fast);
	if (!n) {
		struct of_walk w = {
			.base = base,
			.limit = OF_PATH_MAX,
		};

		if (!walk_emit(&w, KREAD(fast, d, d_name.name), KREAD(fast, d, d_name.len)))
			return false;
		n = w.off;
	}
	*off = n;
	return true;
}

/*
 * Resolves the path of a record whose raw path (`raw_len` bytes, at most OF_RAW_MAX - 1) and
 * header (dirfd, trunc) are set: the path source, directory cache slot and identity go in the header;
 * returns the component bytes written after the raw path. `ret` >= 0 is an fd whose file is
 * walked; `ret` < 0 resolves the path as a failed open's. `walk_fds` is false when the current
 * task's fd table is not the opener's or the result is no fd (io_uring direct descriptors).
 */
static __always_inline __u32 resolve_path(struct of_event *e, __u32 raw_len, long ret,
					  bool walk_fds, struct task_struct *task, const bool fast)
{
	struct of_event_hdr *h = &e->hdr;
	__u32 path_len = 0;
	struct file *f;
	struct dentry *dir = NULL;
	struct vfsmount *dir_mnt = NULL;

	h->path_source = OF_PATH_UNRESOLVED;
	h->dir_slot = 0;
	h->dir_gen = 0;
	h->ino = 0;
	h->dev = 0;
	/*
	 * Where the directory walk starts, if there is one: each case only picks it, so that
	 * walk_dir (and its bpf_loop callbacks, which the verifier walks per call site) is inlined
	 * once, not once per case (each case its own copy cost ~100 ms of verification per program).
	 */
	if (ret >= 0) {
		f = walk_fds ? fd_file(task, ret, fast) : NULL;
		if (f) {
			struct dentry *d = KREAD(fast, f, f_path.dentry);
			struct inode *inode = KREAD(fast, f, f_inode);

			h->path_source = OF_PATH_FILE;
			/* Identity: another name for the same file (a hard link, a bind mount) is
			 * still that file. */
			h->ino = KREAD(fast, inode, i_ino);
			h->dev = KREAD(fast, KREAD(fast, inode, i_sb), s_dev);
			dir_mnt = KREAD(fast, f, f_path.mnt);
			if (!fast)
				dir = d; /* compat walks the file itself, in walk_dir's one loop */
			else if (emit_leaf(e, d, dir_mnt, raw_len, &path_len, fast))
				dir = KREAD(fast, d, d_parent);
			else
				path_len = walk_path(d, dir_mnt, raw_len, OF_PATH_MAX, &h->trunc,
						     OF_TRUNC_PATH, fast);
			/* Unhashed: unlinked (or an O_TMPFILE), as d_path says with " (deleted)". */
			if (!KREAD(fast, d, d_hash.pprev))
				h->trunc |= OF_PATH_DELETED;
		}
	} else if (raw_len > 0 && e->data[0] == '/') {
		h->path_source = OF_PATH_RAW;
		/* Relative to a chrooted task's root: walked as a failed relative open's cwd is. */
		if (walk_fds && task_chrooted(task, fast)) {
			struct fs_struct *fs = KREAD(fast, task, fs);

			h->path_source = OF_PATH_ROOT;
			dir = KREAD(fast, fs, root.dentry);
			dir_mnt = KREAD(fast, fs, root.mnt);
		}
	} else if (raw_len > 0) {
		if (h->has_dirfd && h->dirfd != AT_FDCWD) {
			f = walk_fds ? fd_file(task, h->dirfd, fast) : NULL;
			if (f) {
				h->path_source = OF_PATH_DIRFD;
				dir = KREAD(fast, f, f_path.dentry);
				dir_mnt = KREAD(fast, f, f_path.mnt);
			}
		} else if (walk_fds) {
			struct fs_struct *fs = KREAD(fast, task, fs);

			h->path_source = OF_PATH_CWD;
			dir = KREAD(fast, fs, pwd.dentry);
			dir_mnt = KREAD(fast, fs, pwd.mnt);
		}
	}
	if (dir)
		path_len = walk_dir(dir, dir_mnt, raw_len, path_len, h, fast);
	if (path_len > OF_PATH_MAX)
		path_len = OF_PATH_MAX;
	return path_len;
}

/*
 * A chrooted task's root, per record (a process can chroot after exec), in what the path left
 * of OF_PATH_MAX (an OF_PATH_ROOT record's path is its root already); returns its component
 * bytes. Walked every time: chroots are rare, and the cache's one slot per record is the path's.
 * Compat leaves it out: a second walk loop is more than its verifier budget.
 */
static __always_inline __u32 resolve_root(struct of_event *e, __u32 raw_len, __u32 path_len,
					  bool walk_fds, struct task_struct *task, const bool fast)
{
	struct of_event_hdr *h = &e->hdr;
	__u32 root_len = 0;

	h->root_cut = 0;
	if (fast && walk_fds && h->path_source != OF_PATH_ROOT && task_chrooted(task, fast)) {
		struct fs_struct *fs = KREAD(fast, task, fs);
		__u32 room = OF_PATH_MAX - path_len;

		root_len = walk_path(KREAD(fast, fs, root.dentry), KREAD(fast, fs, root.mnt),
				     raw_len + path_len, room < OF_ROOT_MAX ? room : OF_ROOT_MAX,
				     &h->root_cut, 1, fast);
		if (root_len > OF_ROOT_MAX)
			root_len = OF_ROOT_MAX;
	}
	return root_len;
}

/* User space never learns a slot whose defining record is lost: empty it. */
static __always_inline void forget_slot(__u32 dir_slot, __u8 trunc)
{
	if (dir_slot && !(trunc & OF_PATH_CACHED)) {
		__u32 idx = (dir_slot - 1) % OF_DIR_SLOTS;
		struct of_dir_slot *s = bpf_map_lookup_elem(&of_dirs, &idx);

		if (s)
			s->steps = 0;
	}
}

/*
 * Copies the first `size` bytes (at most `max`) of the record into the ring; nonzero (and
 * counted) when the ring was full.
 */
static __always_inline long ring_output(void *rec, __u64 size, const __u64 max)
{
	__u64 flags, avail;
	long err;

	/* Opaque to clang, so that the bound the verifier needs is checked on this register. */
	barrier_var(size);
	if (size > max)
		size = max;
	/*
	 * Only the record that takes the waiting data across a multiple of the threshold wakes the
	 * consumer, not every record above it: a wakeup is an irq_work self-interrupt, microseconds
	 * in a VM, and while the consumer is off its CPU or pausing between drains it cannot act on
	 * one anyway. Waking above the threshold made an open ~1.35x costlier on a busy host and 3x
	 * with a 1 MiB ring (benches/ab.sh). Two CPUs crossing together can miss one multiple; the
	 * next one, or the consumer's timed poll, catches it.
	 */
	avail = bpf_ringbuf_query(&of_events, BPF_RB_AVAIL_DATA);
	flags = (avail >> wakeup_shift) != ((avail + size) >> wakeup_shift) ? BPF_RB_FORCE_WAKEUP
									      : BPF_RB_NO_WAKEUP;
	err = bpf_ringbuf_output(&of_events, rec, size, flags);
	if (err)
		count_loss(OF_LOSS_RINGBUF_FULL);
	return err;
}

/*
 * Fills in the resolved path for an open's record whose header (raw_len, dirfd, trunc) and raw
 * path are set, then copies the used part into the ring.
 */
static __always_inline void resolve_and_output(struct of_event *e, long ret, bool walk_fds,
					       struct task_struct *task, const bool fast)
{
	struct of_event_hdr *h = &e->hdr;
	__u32 raw_len = h->raw_len, path_len, root_len;

	if (raw_len > OF_RAW_MAX - 1)
		raw_len = OF_RAW_MAX - 1;
	h->ret = ret;
	h->op = 0;
	path_len = resolve_path(e, raw_len, ret, walk_fds, task, fast);
	root_len = resolve_root(e, raw_len, path_len, walk_fds, task, fast);
	h->raw_len = raw_len;
	h->path_len = path_len;
	h->root_len = root_len;
	h->ts_ns = bpf_ktime_get_boot_ns();
	/*
	 * bpf_ringbuf_output from the per-CPU scratch rather than bpf_ringbuf_reserve: a reservation
	 * has to be the worst case (8.5 KB) while a typical record is ~150 bytes, so reserving would
	 * fit 50x fewer records in the same ring. The price is one copy of the used bytes.
	 */
	if (ring_output(e, sizeof(struct of_event_hdr) + raw_len + path_len + root_len,
			sizeof(struct of_event)))
		forget_slot(h->dir_slot, h->trunc);
}

/*
 * Reads the path a process passed into the record's raw path; marks it cut when it filled the
 * buffer and the call refused it as too long.
 */
static __always_inline void read_raw(struct of_event *e, __u64 path, long ret)
{
	long n = bpf_probe_read_user_str(e->data, OF_RAW_MAX, (void *)path);

	if (n > 0) {
		e->hdr.raw_len = n - 1;
		if (n == OF_RAW_MAX && ret == -ENAMETOOLONG)
			e->hdr.trunc |= OF_TRUNC_RAW;
	}
}

/*
 * Emits the record for a syscall open that just returned `ret`. The arguments are read from the
 * user registers saved at syscall entry (task_pt_regs), which the open syscalls leave untouched:
 * no enter probe, no map from enter to exit, half the probe invocations per open. The path and
 * open_how are read here too, after the kernel has faulted them in.
 */
static __always_inline int on_exit(__u8 syscall, long ret, struct pt_regs *regs,
				   struct task_struct *task, const bool fast)
{
	struct of_event *e;
	__u64 path = 0, how = 0, a[4];
	__u32 zero = 0;
	__u8 base = syscall;

	if (KREAD(fast, task, tgid) == targ_self_tgid)
		return 0;
	e = bpf_map_lookup_elem(&of_scratch, &zero);
	if (!e)
		return 0;
	/* `regs` is a BTF pointer (the raw tracepoint's argument or bpf_task_pt_regs): the saved
	 * registers are direct loads. */
	if (syscall >= OF_SYSCALL_IA32_OPEN) {
		/* The 32-bit entry passes arguments in bx, cx, dx, si (each 32 bits wide). */
		base = syscall - OF_SYSCALL_IA32_OPEN + OF_SYSCALL_OPEN;
		a[0] = (__u32)regs->bx;
		a[1] = (__u32)regs->cx;
		a[2] = (__u32)regs->dx;
		a[3] = (__u32)regs->si;
	} else {
		/* The x86-64 syscall ABI: di, si, dx, r10 (the kernel moved rcx to r10). */
		a[0] = regs->di;
		a[1] = regs->si;
		a[2] = regs->dx;
		a[3] = regs->r10;
	}
	fill_task(&e->hdr, task, fast);
	e->hdr.syscall = syscall;
	e->hdr.trunc = 0;
	e->hdr.raw_len = 0;
	e->hdr.mode = 0;
	e->hdr.has_dirfd = 1;
	switch (base) {
	case OF_SYSCALL_OPEN: /* open(path, flags, mode) */
		path = a[0];
		e->hdr.flags = (__u32)a[1];
		e->hdr.mode = a[2];
		e->hdr.has_dirfd = 0;
		break;
	case OF_SYSCALL_CREAT: /* creat(path, mode) = open(path, O_CREAT|O_WRONLY|O_TRUNC, mode) */
		path = a[0];
		e->hdr.flags = O_CREAT | O_WRONLY | O_TRUNC;
		e->hdr.mode = a[1];
		e->hdr.has_dirfd = 0;
		break;
	case OF_SYSCALL_OPENAT: /* openat(dfd, path, flags, mode) */
		e->hdr.dirfd = a[0];
		path = a[1];
		e->hdr.flags = (__u32)a[2];
		e->hdr.mode = a[3];
		break;
	case OF_SYSCALL_OPENAT2: /* openat2(dfd, path, how, size): flags, mode from how */
		e->hdr.dirfd = a[0];
		path = a[1];
		how = a[2];
		e->hdr.flags = 0;
		break;
	default: /* open_by_handle_at(mount_fd, handle, flags): no path */
		e->hdr.dirfd = a[0];
		e->hdr.flags = (__u32)a[2];
		break;
	}
	/* open/openat flags are an int; the upper register half is not part of the argument. */
	e->hdr.mode &= 07777;
	if (how) {
		/* struct open_how is UAPI: flags, mode, resolve, each __u64. */
		__u64 h[2];

		if (!bpf_probe_read_user(h, sizeof(h), (void *)how)) {
			e->hdr.flags = h[0];
			e->hdr.mode = h[1];
		}
	}
	if (path)
		read_raw(e, path, ret);
	resolve_and_output(e, ret, true, task, fast);
	return 0;
}

#endif /* __OF_OPEN_RECORD_H */
