/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * The file operations: rename, link, symlink, unlink, rmdir, mkdir, chmod, chown, truncate, each
 * recorded at the syscall's exit with its result, like an open (bpf/syscalls.h picks them out by
 * number in the default arm of its open switch, so an open's path is unchanged).
 *
 * Paths are resolved as a failed open's are (the name may be gone, or new): absolute → raw (a
 * chrooted task's root walked), relative → the dirfd's or cwd's directory walked, user space
 * joins the raw path. fchmod, fchown and ftruncate walk their fd's file as a successful open
 * does, identity included. A rename's or link's old name is resolved the same way against its
 * own dirfd; a symlink's target is kept as given.
 *
 * Out of line: the operations run in global functions (verified once, on their own, however
 * many programs and call sites reach them), so the open program's verification and code stay
 * what they were, and the resolution, which runs twice for a rename, is verified once.
 */
#ifndef __OF_FILE_OPS_H
#define __OF_FILE_OPS_H

#define AT_REMOVEDIR 0x200

/*
 * Resolves the record being built in the scratch (raw path and header set) as resolve_path does,
 * for the current task; returns the component bytes.
 */
static __always_inline int op_resolve(long ret, bool walk_fds, const bool fast)
{
	__u32 zero = 0, raw_len;
	struct of_event *e = bpf_map_lookup_elem(&of_scratch, &zero);

	if (!e)
		return 0;
	raw_len = e->hdr.raw_len;
	if (raw_len > OF_RAW_MAX - 1)
		raw_len = OF_RAW_MAX - 1;
	e->hdr.raw_len = raw_len;
	return resolve_path(e, raw_len, ret, walk_fds, task_of(fast), fast);
}

__noinline int of_op_resolve_fast(long ret, __u32 walk_fds)
{
	return op_resolve(ret, walk_fds, true);
}

__noinline int of_op_resolve_compat(long ret, __u32 walk_fds)
{
	return op_resolve(ret, walk_fds, false);
}

/* A name into the record's raw path: a syscall's from user memory, a stash's from the kernel's. */
static __always_inline void read_name(struct of_event *e, __u64 addr, long ret, bool user)
{
	long n;

	if (user) {
		read_raw(e, addr, ret);
		return;
	}
	n = bpf_probe_read_kernel_str(e->data, OF_URING_SHORT, (void *)addr);
	if (n > 0)
		e->hdr.raw_len = n - 1;
}

/*
 * Emits the operation decoded in the scratch (its plan; the header's identity, syscall, op,
 * flags and mode set) that returned `ret`. `walk_fds` is false when the current task's fd table
 * is not the caller's.
 */
static __always_inline int op_emit(long ret, bool walk_fds, const bool fast)
{
	struct task_struct *task = task_of(fast);
	struct of_op_event *oe;
	struct of_op_plan *p;
	struct of_op_tail *t;
	struct of_event *e;
	__u32 zero = 0, old_len = 0, raw_len, path_len, root_len, end;

	/* Everything lives in the scratch: the whole call chain shares one 512-byte stack. */
	oe = bpf_map_lookup_elem(&of_scratch, &zero);
	if (!oe)
		return 0;
	e = &oe->ev;
	p = &oe->plan;
	t = &p->t;
	e->hdr.kind = OF_REC_OP;
	/* The old name first, so that a cache slot its walk defines precedes the path's use. */
	if (p->old) {
		e->hdr.trunc = p->cut & 2 ? OF_TRUNC_RAW : 0;
		e->hdr.raw_len = 0;
		e->hdr.dirfd = p->old_dirfd;
		e->hdr.has_dirfd = p->has_dirfd;
		read_name(e, p->old, ret, p->user);
		if (e->hdr.op == OF_OP_SYMLINK) {
			/* The target as given: a symlink's text is not resolved when it is made. */
			e->hdr.path_source = OF_PATH_RAW;
			e->hdr.dir_slot = 0;
			e->hdr.dir_gen = 0;
			old_len = 0;
		} else if (fast) {
			old_len = of_op_resolve_fast(-1, walk_fds);
		} else {
			old_len = of_op_resolve_compat(-1, walk_fds);
		}
		t->old_raw_len = e->hdr.raw_len;
		t->old_path_len = old_len;
		t->old_path_source = e->hdr.path_source;
		t->old_has_dirfd = p->has_dirfd;
		t->old_dirfd = p->old_dirfd;
		t->old_trunc = e->hdr.trunc;
		t->old_dir_slot = e->hdr.dir_slot;
		t->old_dir_gen = e->hdr.dir_gen;
		old_len = t->old_raw_len + old_len;
		/* Opaque to clang, so that the mask (a no-op) bounds the register the verifier sees. */
		barrier_var(old_len);
		old_len &= OF_OLD_MAX - 1;
		bpf_probe_read_kernel(oe->stage, old_len, e->data);
	}

	e->hdr.trunc = p->cut & 1 ? OF_TRUNC_RAW : 0;
	e->hdr.raw_len = 0;
	e->hdr.dirfd = p->dirfd;
	e->hdr.has_dirfd = p->has_dirfd;
	if (p->path)
		read_name(e, p->path, ret, p->user);
	/* fd calls: the fd's file, walked as a successful open's whatever the result. */
	path_len = fast ? of_op_resolve_fast(p->fd, walk_fds) : of_op_resolve_compat(p->fd, walk_fds);
	if (path_len > OF_PATH_MAX)
		path_len = OF_PATH_MAX;
	raw_len = e->hdr.raw_len;
	if (raw_len > OF_RAW_MAX - 1)
		raw_len = OF_RAW_MAX - 1;
	root_len = resolve_root(e, raw_len, path_len, walk_fds, task, fast);
	e->hdr.ret = ret;
	e->hdr.path_len = path_len;
	e->hdr.root_len = root_len;
	e->hdr.ts_ns = bpf_ktime_get_boot_ns();

	/* The tail and the old name after the path's data (at most OF_RAW_MAX - 1 + OF_PATH_MAX). */
	end = raw_len + path_len + root_len;
	barrier_var(end);
	end &= OF_RAW_MAX + OF_PATH_MAX - 1;
	bpf_probe_read_kernel(&e->data[end], sizeof(*t), t);
	end += sizeof(*t);
	bpf_probe_read_kernel(&e->data[end], old_len, oe->stage);
	if (ring_output(e, sizeof(struct of_event_hdr) + end + old_len,
			sizeof(struct of_event_hdr) + OF_DATA_MAX + sizeof(oe->old))) {
		forget_slot(t->old_dir_slot, t->old_trunc);
		forget_slot(e->hdr.dir_slot, e->hdr.trunc);
	}
	return 0;
}

__noinline int of_op_emit_fast(long ret, __u32 walk_fds)
{
	return op_emit(ret, walk_fds, true);
}

__noinline int of_op_emit_compat(long ret, __u32 walk_fds)
{
	return op_emit(ret, walk_fds, false);
}

/* A 16-bit id of the ia32 chown16 calls as the kernel widens it: (u16)-1 stays "unchanged". */
static __always_inline __u32 id16(__u64 v)
{
	return (__u16)v == 0xffff ? (__u32)-1 : (__u16)v;
}

/*
 * Decodes operation syscall `sc` (enum of_syscall) from its arguments in the scratch's args,
 * then emits its record with its result `ret`.
 */
static __always_inline int op_exit(long ret, __u32 sc, const bool fast)
{
	struct task_struct *task = task_of(fast);
	struct of_op_event *oe;
	struct of_event *e;
	__u64 *a, old = 0, path = 0;
	__u32 new_uid = (__u32)-1, new_gid = (__u32)-1;
	__s64 length = 0;
	__u32 zero = 0, base = sc;
	__s32 dirfd = AT_FDCWD, old_dirfd = AT_FDCWD;
	__u8 op = 0, has_dirfd = 0;
	long fd = -1;

	if (KREAD(fast, task, tgid) == targ_self_tgid)
		return 0;
	oe = bpf_map_lookup_elem(&of_scratch, &zero);
	if (!oe)
		return 0;
	e = &oe->ev;
	a = oe->args;
	if (sc >= OF_SYSCALL_IA32_RENAME && sc <= OF_SYSCALL_IA32_FTRUNCATE)
		base = sc - OF_SYSCALL_IA32_RENAME + OF_SYSCALL_RENAME;
	e->hdr.flags = 0;
	e->hdr.mode = 0;
	switch (base) {
	case OF_SYSCALL_RENAME: /* rename(old, new) */
		op = OF_OP_RENAME;
		old = a[0];
		path = a[1];
		break;
	case OF_SYSCALL_RENAMEAT: /* renameat(olddfd, old, newdfd, new[, flags]) */
	case OF_SYSCALL_RENAMEAT2:
	case OF_SYSCALL_LINKAT: /* linkat(olddfd, old, newdfd, new, flags) */
		op = base == OF_SYSCALL_LINKAT ? OF_OP_LINK : OF_OP_RENAME;
		old_dirfd = a[0];
		old = a[1];
		dirfd = a[2];
		path = a[3];
		has_dirfd = 1;
		if (base != OF_SYSCALL_RENAMEAT)
			e->hdr.flags = (__u32)a[4];
		break;
	case OF_SYSCALL_LINK: /* link(old, new) */
		op = OF_OP_LINK;
		old = a[0];
		path = a[1];
		break;
	case OF_SYSCALL_SYMLINK: /* symlink(target, new) */
		op = OF_OP_SYMLINK;
		old = a[0];
		path = a[1];
		break;
	case OF_SYSCALL_SYMLINKAT: /* symlinkat(target, newdfd, new) */
		op = OF_OP_SYMLINK;
		old = a[0];
		dirfd = a[1];
		path = a[2];
		has_dirfd = 1;
		break;
	case OF_SYSCALL_UNLINK: /* unlink(path) */
	case OF_SYSCALL_RMDIR:
		op = base == OF_SYSCALL_RMDIR ? OF_OP_RMDIR : OF_OP_UNLINK;
		path = a[0];
		break;
	case OF_SYSCALL_UNLINKAT: /* unlinkat(dfd, path, flags): AT_REMOVEDIR is an rmdir */
		e->hdr.flags = (__u32)a[2];
		op = a[2] & AT_REMOVEDIR ? OF_OP_RMDIR : OF_OP_UNLINK;
		dirfd = a[0];
		path = a[1];
		has_dirfd = 1;
		break;
	case OF_SYSCALL_MKDIR: /* mkdir(path, mode), chmod(path, mode) */
	case OF_SYSCALL_CHMOD:
		op = base == OF_SYSCALL_MKDIR ? OF_OP_MKDIR : OF_OP_CHMOD;
		path = a[0];
		e->hdr.mode = a[1];
		break;
	case OF_SYSCALL_MKDIRAT: /* mkdirat(dfd, path, mode), fchmodat(dfd, path, mode[, flags]) */
	case OF_SYSCALL_FCHMODAT:
	case OF_SYSCALL_FCHMODAT2:
		op = base == OF_SYSCALL_MKDIRAT ? OF_OP_MKDIR : OF_OP_CHMOD;
		dirfd = a[0];
		path = a[1];
		e->hdr.mode = a[2];
		has_dirfd = 1;
		if (base == OF_SYSCALL_FCHMODAT2)
			e->hdr.flags = (__u32)a[3];
		break;
	case OF_SYSCALL_FCHMOD: /* fchmod(fd, mode) */
		op = OF_OP_CHMOD;
		fd = (__s32)a[0];
		e->hdr.mode = a[1];
		break;
	case OF_SYSCALL_CHOWN: /* chown(path, uid, gid), lchown, fchown(fd, uid, gid) */
	case OF_SYSCALL_LCHOWN:
	case OF_SYSCALL_FCHOWN:
	case OF_SYSCALL_IA32_CHOWN32:
	case OF_SYSCALL_IA32_LCHOWN32:
	case OF_SYSCALL_IA32_FCHOWN32:
		op = OF_OP_CHOWN;
		if (base == OF_SYSCALL_FCHOWN || base == OF_SYSCALL_IA32_FCHOWN32)
			fd = (__s32)a[0];
		else
			path = a[0];
		new_uid = a[1];
		new_gid = a[2];
		/* The ia32 table's chown, lchown and fchown take 16-bit ids. */
		if (sc == OF_SYSCALL_IA32_CHOWN || sc == OF_SYSCALL_IA32_LCHOWN ||
		    sc == OF_SYSCALL_IA32_FCHOWN) {
			new_uid = id16(a[1]);
			new_gid = id16(a[2]);
		}
		break;
	case OF_SYSCALL_FCHOWNAT: /* fchownat(dfd, path, uid, gid, flags) */
		op = OF_OP_CHOWN;
		dirfd = a[0];
		path = a[1];
		new_uid = a[2];
		new_gid = a[3];
		e->hdr.flags = (__u32)a[4];
		has_dirfd = 1;
		break;
	case OF_SYSCALL_TRUNCATE: /* truncate(path, length), ftruncate(fd, length) */
	case OF_SYSCALL_FTRUNCATE:
		op = OF_OP_TRUNCATE;
		if (base == OF_SYSCALL_TRUNCATE)
			path = a[0];
		else
			fd = (__s32)a[0];
		/* The ia32 table's length is 32 bits: compat_off_t (signed) for truncate. */
		length = sc == OF_SYSCALL_IA32_TRUNCATE ? (__s64)(__s32)a[1] : (__s64)a[1];
		break;
	case OF_SYSCALL_IA32_TRUNCATE64: /* (path or fd, low, high) */
	case OF_SYSCALL_IA32_FTRUNCATE64:
		op = OF_OP_TRUNCATE;
		if (base == OF_SYSCALL_IA32_TRUNCATE64)
			path = a[0];
		else
			fd = (__s32)a[0];
		length = (__s64)(a[1] | a[2] << 32);
		break;
	default:
		return 0;
	}
	/* Every mode here is a umode_t: the upper register bits are not part of it. */
	e->hdr.mode &= 07777;
	fill_task(&e->hdr, task, fast);
	e->hdr.syscall = sc;
	e->hdr.op = op;
	/* Field by field: a compound literal would be built on the stack the chain shares. */
	__builtin_memset(&oe->plan, 0, sizeof(oe->plan));
	oe->plan.old = old;
	oe->plan.path = path;
	oe->plan.fd = fd;
	oe->plan.dirfd = dirfd;
	oe->plan.old_dirfd = old_dirfd;
	oe->plan.has_dirfd = has_dirfd;
	oe->plan.user = 1;
	oe->plan.t.new_uid = new_uid;
	oe->plan.t.new_gid = new_gid;
	oe->plan.t.length = length;
	if (fast)
		return of_op_emit_fast(ret, 1);
	return of_op_emit_compat(ret, 1);
}

__noinline int of_op_exit_fast(long ret, __u32 sc)
{
	return op_exit(ret, sc, true);
}

__noinline int of_op_exit_compat(long ret, __u32 sc)
{
	return op_exit(ret, sc, false);
}

/* An operation's enum of_syscall code by its number in the x86-64 table; 0: not one. */
static __always_inline __u32 op_nr64(long nr)
{
	switch (nr) {
	case NR64_RENAME: return OF_SYSCALL_RENAME;
	case NR64_RENAMEAT: return OF_SYSCALL_RENAMEAT;
	case NR64_RENAMEAT2: return OF_SYSCALL_RENAMEAT2;
	case NR64_LINK: return OF_SYSCALL_LINK;
	case NR64_LINKAT: return OF_SYSCALL_LINKAT;
	case NR64_SYMLINK: return OF_SYSCALL_SYMLINK;
	case NR64_SYMLINKAT: return OF_SYSCALL_SYMLINKAT;
	case NR64_UNLINK: return OF_SYSCALL_UNLINK;
	case NR64_UNLINKAT: return OF_SYSCALL_UNLINKAT;
	case NR64_RMDIR: return OF_SYSCALL_RMDIR;
	case NR64_MKDIR: return OF_SYSCALL_MKDIR;
	case NR64_MKDIRAT: return OF_SYSCALL_MKDIRAT;
	case NR64_CHMOD: return OF_SYSCALL_CHMOD;
	case NR64_FCHMOD: return OF_SYSCALL_FCHMOD;
	case NR64_FCHMODAT: return OF_SYSCALL_FCHMODAT;
	case NR64_FCHMODAT2: return OF_SYSCALL_FCHMODAT2;
	case NR64_CHOWN: return OF_SYSCALL_CHOWN;
	case NR64_FCHOWN: return OF_SYSCALL_FCHOWN;
	case NR64_LCHOWN: return OF_SYSCALL_LCHOWN;
	case NR64_FCHOWNAT: return OF_SYSCALL_FCHOWNAT;
	case NR64_TRUNCATE: return OF_SYSCALL_TRUNCATE;
	case NR64_FTRUNCATE: return OF_SYSCALL_FTRUNCATE;
	default: return 0;
	}
}

/* The same for the ia32 table (a task in a 32-bit syscall). */
static __always_inline __u32 op_nr32(long nr)
{
	switch (nr) {
	case NR32_RENAME: return OF_SYSCALL_IA32_RENAME;
	case NR32_RENAMEAT: return OF_SYSCALL_IA32_RENAMEAT;
	case NR32_RENAMEAT2: return OF_SYSCALL_IA32_RENAMEAT2;
	case NR32_LINK: return OF_SYSCALL_IA32_LINK;
	case NR32_LINKAT: return OF_SYSCALL_IA32_LINKAT;
	case NR32_SYMLINK: return OF_SYSCALL_IA32_SYMLINK;
	case NR32_SYMLINKAT: return OF_SYSCALL_IA32_SYMLINKAT;
	case NR32_UNLINK: return OF_SYSCALL_IA32_UNLINK;
	case NR32_UNLINKAT: return OF_SYSCALL_IA32_UNLINKAT;
	case NR32_RMDIR: return OF_SYSCALL_IA32_RMDIR;
	case NR32_MKDIR: return OF_SYSCALL_IA32_MKDIR;
	case NR32_MKDIRAT: return OF_SYSCALL_IA32_MKDIRAT;
	case NR32_CHMOD: return OF_SYSCALL_IA32_CHMOD;
	case NR32_FCHMOD: return OF_SYSCALL_IA32_FCHMOD;
	case NR32_FCHMODAT: return OF_SYSCALL_IA32_FCHMODAT;
	case NR32_FCHMODAT2: return OF_SYSCALL_IA32_FCHMODAT2;
	case NR32_CHOWN16: return OF_SYSCALL_IA32_CHOWN;
	case NR32_FCHOWN16: return OF_SYSCALL_IA32_FCHOWN;
	case NR32_LCHOWN16: return OF_SYSCALL_IA32_LCHOWN;
	case NR32_FCHOWNAT: return OF_SYSCALL_IA32_FCHOWNAT;
	case NR32_TRUNCATE: return OF_SYSCALL_IA32_TRUNCATE;
	case NR32_FTRUNCATE: return OF_SYSCALL_IA32_FTRUNCATE;
	case NR32_CHOWN32: return OF_SYSCALL_IA32_CHOWN32;
	case NR32_FCHOWN32: return OF_SYSCALL_IA32_FCHOWN32;
	case NR32_LCHOWN32: return OF_SYSCALL_IA32_LCHOWN32;
	case NR32_TRUNCATE64: return OF_SYSCALL_IA32_TRUNCATE64;
	case NR32_FTRUNCATE64: return OF_SYSCALL_IA32_FTRUNCATE64;
	default: return 0;
	}
}

/*
 * The operation syscall `sc` (0: none) that returned `ret`: its arguments from the user
 * registers saved at entry (`regs`, a BTF pointer) into the scratch, the rest out of line (a
 * global function takes only scalars).
 */
static __always_inline int ops_exit(__u32 sc, struct pt_regs *regs, long ret, const bool fast)
{
	struct of_op_event *oe;
	__u32 zero = 0;

	if (!sc)
		return 0;
	oe = bpf_map_lookup_elem(&of_scratch, &zero);
	if (!oe)
		return 0;
	if (sc >= OF_SYSCALL_IA32_RENAME) {
		/* The 32-bit entry: bx, cx, dx, si, di, each 32 bits wide. */
		oe->args[0] = (__u32)regs->bx;
		oe->args[1] = (__u32)regs->cx;
		oe->args[2] = (__u32)regs->dx;
		oe->args[3] = (__u32)regs->si;
		oe->args[4] = (__u32)regs->di;
	} else {
		oe->args[0] = regs->di;
		oe->args[1] = regs->si;
		oe->args[2] = regs->dx;
		oe->args[3] = regs->r10;
		oe->args[4] = regs->r8;
	}
	if (fast)
		return of_op_exit_fast(ret, sc);
	return of_op_exit_compat(ret, sc);
}

#endif /* __OF_FILE_OPS_H */
