/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * io_uring opens: the submission stashes the path, the completion emits the record.
 */
#ifndef __OF_IO_URING_H
#define __OF_IO_URING_H

/*
 * io_uring_complete's arguments: (ctx, req, cqe) since 6.14, (ctx, req, user_data, res, cflags,
 * extra1, extra2) from 5.19 to 6.13. Set by user space from the kernel's
 * btf_trace_io_uring_complete before load (clang 14 has no bpf_core_type_matches to tell the two
 * prototypes apart); the verifier prunes the other arm.
 */
const volatile bool uring_complete_cqe = true;

/* The result of the completed request: the completion entry's, or the tracepoint's own argument. */
static __always_inline __s32 uring_res(__u64 *ctx)
{
	if (uring_complete_cqe)
		return ((struct io_uring_cqe *)ctx[2])->res;
	return (__s32)ctx[3];
}

/*
 * The kernel's copy of the open's path. 7.0 (fs: delayed_filename, the audit part of getname
 * deferred to issue time) made io_open.filename a struct delayed_filename holding it.
 */
static __always_inline const char *uring_open_name(struct io_open *o, const bool fast)
{
	if (bpf_core_field_exists(struct io_open___delayed, filename)) {
		struct io_open___delayed *od = (void *)o;

		return KREAD(fast, KREAD(fast, od, filename.__incomplete_filename), name);
	}
	return KREAD(fast, KREAD(fast, o, filename), name);
}

/* The kernel's copy of an operation's name: field `f` of the io_uring/fs.c request type `T`. */
#define URING_OP_NAME(fast, p, T, f)                                                           \
	(bpf_core_field_exists(struct T##___delayed, f)                                        \
		 ? KREAD(fast, KREAD(fast, (struct T##___delayed *)(p), f.__incomplete_filename), \
			 name)                                                                  \
		 : KREAD(fast, KREAD(fast, (struct T *)(p), f), name))

/* Copies a name into stash slot `i`; marks the plan's cut bit `i` when it may be longer. */
static __always_inline void uring_op_name(struct of_uring_op *u, int i, const char *name)
{
	long n = bpf_probe_read_kernel_str(&u->names[(i & 1) * OF_URING_SHORT], OF_URING_SHORT, name);

	if (n == OF_URING_SHORT)
		u->plan.cut |= 1 << i;
}

/*
 * An io_uring file operation at submission: who, which, and its names, copied now (the request
 * frees them before it completes); the completion emits the record (bpf/file_ops.h).
 */
static __always_inline void uring_submit_op(struct io_kiocb *req, __u8 opcode, __u64 key,
					    const bool fast)
{
	struct of_uring_stage *st;
	struct of_uring_op *u;
	void *cmd;
	__u32 zero = 0;
	int flags = 0;

	st = bpf_map_lookup_elem(&of_uring_scratch, &zero);
	if (!st)
		return;
	u = &st->op;
	cmd = &req->cmd;
	fill_task(&u->hdr, task_of(fast), fast);
	u->hdr.syscall = OF_SYSCALL_IO_URING;
	u->hdr.mode = 0;
	u->plan = (struct of_op_plan){
		.fd = -1,
		.dirfd = AT_FDCWD,
		.old_dirfd = AT_FDCWD,
		.has_dirfd = 1,
		.t = { .new_uid = (__u32)-1, .new_gid = (__u32)-1 },
	};
	u->names[0] = 0;
	u->names[OF_URING_SHORT] = 0;
	switch (opcode) {
	case IORING_OP_RENAMEAT: {
		struct io_rename *r = KCAST(fast, cmd, struct io_rename);

		u->hdr.op = OF_OP_RENAME;
		u->plan.old_dirfd = KREAD(fast, r, old_dfd);
		u->plan.dirfd = KREAD(fast, r, new_dfd);
		flags = KREAD(fast, r, flags);
		uring_op_name(u, 1, URING_OP_NAME(fast, r, io_rename, oldpath));
		uring_op_name(u, 0, URING_OP_NAME(fast, r, io_rename, newpath));
		break;
	}
	case IORING_OP_UNLINKAT: {
		struct io_unlink *r = KCAST(fast, cmd, struct io_unlink);

		flags = KREAD(fast, r, flags);
		u->hdr.op = flags & AT_REMOVEDIR ? OF_OP_RMDIR : OF_OP_UNLINK;
		u->plan.dirfd = KREAD(fast, r, dfd);
		uring_op_name(u, 0, URING_OP_NAME(fast, r, io_unlink, filename));
		break;
	}
	case IORING_OP_MKDIRAT: {
		struct io_mkdir *r = KCAST(fast, cmd, struct io_mkdir);

		u->hdr.op = OF_OP_MKDIR;
		u->hdr.mode = KREAD(fast, r, mode) & 07777;
		u->plan.dirfd = KREAD(fast, r, dfd);
		uring_op_name(u, 0, URING_OP_NAME(fast, r, io_mkdir, filename));
		break;
	}
	default: { /* SYMLINKAT (old: the target) and LINKAT */
		struct io_link *r = KCAST(fast, cmd, struct io_link);

		u->hdr.op = opcode == IORING_OP_LINKAT ? OF_OP_LINK : OF_OP_SYMLINK;
		if (opcode == IORING_OP_LINKAT) {
			u->plan.old_dirfd = KREAD(fast, r, old_dfd);
			flags = KREAD(fast, r, flags);
		}
		u->plan.dirfd = KREAD(fast, r, new_dfd);
		uring_op_name(u, 1, URING_OP_NAME(fast, r, io_link, oldpath));
		uring_op_name(u, 0, URING_OP_NAME(fast, r, io_link, newpath));
		break;
	}
	}
	u->hdr.flags = (__u32)flags;
	if (bpf_map_update_elem(&of_uring_ops, &key, u, BPF_ANY))
		count_loss(OF_LOSS_STASH_FULL);
}

/*
 * The path was copied into the kernel (getname) when the request was prepared, before this
 * tracepoint; it is freed before completion, so it is copied here. 5.19 – 6.x call the same
 * hook io_uring_submit_sqe (req, force_nonblock): user space retargets the program there.
 */
static __always_inline int uring_submit(struct io_kiocb *req, const bool fast)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 key = (__u64)req;
	__u32 zero = 0;
	struct of_uring_stage *st;
	struct of_uring_req *u;
	struct io_open *o;
	const char *name;
	__u8 op;
	long n;

	if ((id >> 32) == targ_self_tgid)
		return 0;
	/* req is a BTF pointer, and so is the open's part of it once cast: direct loads, no helper
	 * call per field (~20 ns per run less, BPF stats). */
	op = req->opcode;
	if (op >= IORING_OP_RENAMEAT && op <= IORING_OP_LINKAT) {
		uring_submit_op(req, op, key, fast);
		return 0;
	}
	if (op != IORING_OP_OPENAT && op != IORING_OP_OPENAT2)
		return 0;
	st = bpf_map_lookup_elem(&of_uring_scratch, &zero);
	if (!st)
		return 0;
	u = &st->req;
	o = KCAST(fast, &req->cmd, struct io_open);
	fill_task(&u->hdr, task_of(fast), fast);
	u->hdr.syscall = OF_SYSCALL_IO_URING;
	u->hdr.flags = KREAD(fast, o, how.flags);
	u->hdr.mode = KREAD(fast, o, how.mode);
	u->hdr.dirfd = KREAD(fast, o, dfd);
	u->hdr.has_dirfd = 1;
	u->hdr.trunc = 0;
	u->file_slot = KREAD(fast, o, file_slot);
	name = uring_open_name(o, fast);
	n = bpf_probe_read_kernel_str(u->raw, OF_URING_SHORT, name);
	if (n == OF_URING_SHORT) {
		/* Filled: maybe longer. The whole path goes beside the stash. */
		long whole = bpf_probe_read_kernel_str(st->path.raw, OF_RAW_MAX, name);

		if (whole > OF_URING_SHORT) {
			if (bpf_map_update_elem(&of_uring_longs, &key, &st->path, BPF_ANY))
				u->hdr.trunc |= OF_TRUNC_RAW; /* only the prefix travels */
			else
				n = whole;
		}
	}
	u->hdr.raw_len = n > 0 ? n - 1 : 0;
	if (bpf_map_update_elem(&of_uring_reqs, &key, u, BPF_ANY)) {
		count_loss(OF_LOSS_STASH_FULL);
		if (n > OF_URING_SHORT)
			bpf_map_delete_elem(&of_uring_longs, &key);
	}
	return 0;
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(tp_btf__io_uring_submit_req, struct io_kiocb *req)
{
	return uring_submit(req, true);
}

SEC("?tp_btf/io_uring_submit_req")
int BPF_PROG(compat__io_uring_submit_req, struct io_kiocb *req)
{
	return uring_submit(req, false);
}

/*
 * An io_uring file operation's completion: its stash into the scratch, the record emitted out of
 * line as a syscall's is. False when `key` has no stash (not an operation, or one that failed
 * while being prepared, which is not recorded).
 */
static __always_inline bool uring_complete_op(__u64 *ctx, __u64 key, __u64 id, const bool fast)
{
	struct of_uring_op *u = bpf_map_lookup_elem(&of_uring_ops, &key);
	struct of_op_event *oe;
	__u32 zero = 0;
	bool same_files;

	if (!u)
		return false;
	oe = bpf_map_lookup_elem(&of_scratch, &zero);
	if (!oe) {
		bpf_map_delete_elem(&of_uring_ops, &key);
		return true;
	}
	oe->ev.hdr = u->hdr;
	oe->plan = u->plan;
	__builtin_memcpy(oe->names, u->names, sizeof(oe->names));
	bpf_map_delete_elem(&of_uring_ops, &key);
	/* The names, in the scratch now, are read from there. */
	oe->plan.path = (__u64)&oe->names[0];
	oe->plan.old = u->hdr.op == OF_OP_RENAME || u->hdr.op == OF_OP_LINK ||
				       u->hdr.op == OF_OP_SYMLINK
			       ? (__u64)&oe->names[OF_URING_SHORT]
			       : 0;
	same_files = (id >> 32) == oe->ev.hdr.pid;
	if (fast)
		of_op_emit_fast(uring_res(ctx), same_files);
	else
		of_op_emit_compat(uring_res(ctx), same_files);
	return true;
}

static __always_inline int uring_complete(__u64 *ctx, const bool fast)
{
	void *req = (void *)ctx[1];
	struct task_struct *task = task_of(fast);
	__u64 id = bpf_get_current_pid_tgid();
	__u64 key = (__u64)req;
	__u32 zero = 0, raw_len;
	__s32 res;
	struct of_uring_req *u;
	struct of_event *e;
	bool same_files;
	__u8 op;

	u = bpf_map_lookup_elem(&of_uring_reqs, &key);
	if (!u && uring_complete_op(ctx, key, id, fast))
		return 0;
	if (!u) {
		/*
		 * An open that failed while being prepared (never submitted), or whose submission
		 * was evicted: still an open attempt, recorded with what is known now.
		 */
		if ((id >> 32) == targ_self_tgid)
			return 0;
		op = KREAD(fast, KCAST(fast, req, struct io_kiocb), opcode);
		if (op != IORING_OP_OPENAT && op != IORING_OP_OPENAT2)
			return 0;
		e = bpf_map_lookup_elem(&of_scratch, &zero);
		if (!e)
			return 0;
		fill_task(&e->hdr, task, fast);
		e->hdr.syscall = OF_SYSCALL_IO_URING;
		e->hdr.flags = 0;
		e->hdr.mode = 0;
		e->hdr.dirfd = 0;
		e->hdr.has_dirfd = 0;
		e->hdr.trunc = 0;
		e->hdr.raw_len = 0;
		resolve_and_output(e, uring_res(ctx), false, task, fast);
		return 0;
	}
	e = bpf_map_lookup_elem(&of_scratch, &zero);
	if (!e) {
		bpf_map_delete_elem(&of_uring_reqs, &key);
		return 0;
	}
	e->hdr = u->hdr;
	raw_len = u->hdr.raw_len;
	if (raw_len < OF_URING_SHORT) {
		bpf_probe_read_kernel(e->data, raw_len, u->raw);
	} else {
		/* Longer than the stash: the whole path is beside it, unless evicted meanwhile. */
		struct of_uring_long *l = bpf_map_lookup_elem(&of_uring_longs, &key);

		if (raw_len > OF_RAW_MAX - 1)
			raw_len = OF_RAW_MAX - 1;
		if (l) {
			bpf_probe_read_kernel(e->data, raw_len, l->raw);
			bpf_map_delete_elem(&of_uring_longs, &key);
		} else {
			raw_len = OF_URING_SHORT - 1;
			bpf_probe_read_kernel(e->data, raw_len, u->raw);
			e->hdr.trunc |= OF_TRUNC_RAW;
		}
	}
	e->hdr.raw_len = raw_len;
	/*
	 * Completions run in the submitter, one of its io-wq workers or its task work: all share its
	 * fd table. Anything else (a ring shared with another process) is not walked.
	 */
	res = uring_res(ctx);
	same_files = (id >> 32) == u->hdr.pid && !(u->file_slot && res >= 0);
	bpf_map_delete_elem(&of_uring_reqs, &key);
	resolve_and_output(e, res, same_files, task, fast);
	return 0;
}

SEC("tp_btf/io_uring_complete")
int tp_btf__io_uring_complete(__u64 *ctx)
{
	return uring_complete(ctx, true);
}

SEC("?tp_btf/io_uring_complete")
int compat__io_uring_complete(__u64 *ctx)
{
	return uring_complete(ctx, false);
}

#endif /* __OF_IO_URING_H */
