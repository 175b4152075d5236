/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * The path walk: a dentry and mount chain walked up to the top of the mount tree, one component
 * per step, each name copied into a record. Not to the task's root: a chrooted task's paths are
 * the host's (a chroot into /etc must not make /etc/shadow read as /shadow), and its root is
 * recorded beside them. A task in another mount namespace (a container) gets its namespace's
 * paths: the top of its tree is its namespace's root.
 */
#ifndef __OF_PATH_H
#define __OF_PATH_H

struct of_walk {
	struct dentry *dentry;   /* fast: a BTF pointer (bpf_core_cast), read by direct loads */
	struct vfsmount *vfsmnt; /* a plain address: crossings are rare and read by helper */
	struct dentry *mnt_root; /* vfsmnt's root, read once per mount instead of per step */
	__u32 base;  /* where components start in the record's data (after what precedes them) */
	__u32 off;   /* component bytes written */
	__u32 limit; /* the most component bytes to write */
	__u32 done;  /* reached the root */
	__u8 proc;   /* 0: of_scratch (an open record); 1: of_proc_scratch (a process record) */
	__u8 pseudo; /* ended on a pipe, socket or anonymous inode: named as the kernel names it */
	__u8 mode;   /* enum of_walk_mode */
	__u8 nocache; /* WALK_FILL: the walk cannot be cached (a rename in flight, too deep) */
	__u8 miss;   /* WALK_CHECK: the live chain is not the slot's */
	__u32 slot;  /* WALK_FILL, WALK_CHECK: this CPU's of_dirs slot */
	__u32 steps; /* links recorded or checked */
};

enum of_walk_mode {
	WALK_EMIT = 0,  /* copy each name */
	WALK_FILL = 1,  /* copy each name and record its link in the slot */
	WALK_CHECK = 2, /* copy nothing, compare each link with the slot's */
};

/* include/uapi/linux/magic.h */
#define PIPEFS_MAGIC 0x50495045
#define SOCKFS_MAGIC 0x534F434B
#define ANON_INODE_FS_MAGIC 0x09041934

static const char fmt_pipe[] = "pipe:[%lu]";
static const char fmt_socket[] = "socket:[%lu]";
static const char fmt_anon[] = "anon_inode:%s";

/*
 * Copies one component name into the walk's buffer; false when there is no room. Each branch
 * looks up its own buffer and masks its own offset, so the verifier sees every pointer with the
 * bound that belongs to it. base + off stays below the mask (base <= OF_RAW_MAX - 1 for opens,
 * <= 10 KiB for processes; off <= limit), so the mask never changes pos: it is there so the
 * verifier sees the bound on the very register used as the offset.
 */
static __always_inline bool walk_emit(struct of_walk *w, const unsigned char *name, __u32 len)
{
	__u32 off = w->off, zero = 0, pos;
	long n;

	if (off > w->limit || len + 1 > w->limit - off)
		return false;
	if (w->proc) {
		struct of_proc *p = bpf_map_lookup_elem(&of_proc_scratch, &zero);

		if (!p)
			return false;
		pos = (w->base + off) & OF_PROC_MASK;
		n = bpf_probe_read_kernel_str(&p->data[pos], OF_NAME_MAX, name);
	} else {
		struct of_event *e = bpf_map_lookup_elem(&of_scratch, &zero);

		if (!e)
			return false;
		pos = (w->base + off) & (OF_RAW_MAX + OF_PATH_MAX - 1);
		n = bpf_probe_read_kernel_str(&e->data[pos], OF_NAME_MAX, name);
	}
	if (n <= 0)
		return false;
	w->off = off + n;
	return true;
}

/*
 * Names a pseudo file as the kernel's d_dname does: pipes and sockets by inode number, anonymous
 * inodes by their name; anything else (a memfd on the internal shmem mount) by its name as a
 * path component (user space then gives /memfd:NAME, and " (deleted)" from the dentry).
 */
static __always_inline void walk_pseudo(struct of_walk *w, struct dentry *d)
{
	unsigned long magic = BPF_CORE_READ(d, d_sb, s_magic);
	__u32 off = w->off, zero = 0, pos;
	struct of_event *e;
	__u64 args[1];
	long n;

	/* bpf_snprintf came in 5.13: before, such a file is named by its dentry name. */
	if (w->proc || !bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_snprintf) ||
	    (magic != PIPEFS_MAGIC && magic != SOCKFS_MAGIC && magic != ANON_INODE_FS_MAGIC)) {
		walk_emit(w, BPF_CORE_READ(d, d_name.name), BPF_CORE_READ(d, d_name.len));
		return;
	}
	if (off > w->limit || OF_NAME_MAX > w->limit - off)
		return;
	e = bpf_map_lookup_elem(&of_scratch, &zero);
	if (!e)
		return;
	pos = (w->base + off) & (OF_RAW_MAX + OF_PATH_MAX - 1);
	if (magic == PIPEFS_MAGIC) {
		args[0] = BPF_CORE_READ(d, d_inode, i_ino);
		n = bpf_snprintf(&e->data[pos], OF_NAME_MAX, fmt_pipe, args, sizeof(args));
	} else if (magic == SOCKFS_MAGIC) {
		args[0] = BPF_CORE_READ(d, d_inode, i_ino);
		n = bpf_snprintf(&e->data[pos], OF_NAME_MAX, fmt_socket, args, sizeof(args));
	} else {
		args[0] = (__u64)BPF_CORE_READ(d, d_name.name);
		n = bpf_snprintf(&e->data[pos], OF_NAME_MAX, fmt_anon, args, sizeof(args));
	}
	if (n <= 0)
		return;
	w->off = off + n;
	w->pseudo = 1;
}

/*
 * A dentry's name hash and length as the kernel's qstr.hash_len packs them (hash in the low half
 * on x86). Two 4-byte loads: 6.2's verifier refuses the 8-byte load of the union member
 * ("access beyond the end of member hash").
 */
static __always_inline __u64 name_hash_len(struct dentry *d, const bool fast)
{
	return (__u64)KREAD(fast, d, d_name.len) << 32 | KREAD(fast, d, d_name.hash);
}

/*
 * WALK_FILL: records the link of `d`; its seq is read before its name is (x86 keeps loads in
 * order), so a rename after this read leaves the slot with an older seq than the dentry's and
 * the next check misses: a racing rename can make a slot look stale, never keep a stale one.
 * WALK_CHECK: false (and w->miss) when `d` is not the slot's link at this level.
 */
static __always_inline bool walk_link(struct of_walk *w, struct dentry *d, struct vfsmount *vm,
				      const bool fast)
{
	__u32 i = w->steps, key = w->slot;
	struct of_dir_slot *s = bpf_map_lookup_elem(&of_dirs, &key);
	__u32 seq = KREAD(fast, d, d_seq.seqcount.sequence);
	__u64 hash_len = name_hash_len(d, fast);
	struct of_dir_link *l;

	if (!s || i >= OF_DIR_DEPTH) {
		if (w->mode == WALK_CHECK) {
			w->miss = 1;
			return false;
		}
		w->nocache = 1;
		return true;
	}
	l = &s->chain[i];
	if (w->mode == WALK_CHECK) {
		if (i >= s->steps || l->dentry != (__u64)d || l->mnt != (__u64)vm ||
		    l->hash_len != hash_len || l->seq != seq) {
			w->miss = 1;
			return false;
		}
	} else {
		/* Odd: a rename of this dentry is in progress. */
		if (seq & 1)
			w->nocache = 1;
		l->dentry = (__u64)d;
		l->mnt = (__u64)vm;
		l->hash_len = hash_len;
		l->seq = seq;
		barrier();
	}
	w->steps = i + 1;
	return true;
}

/*
 * Whether the mount `vm` is at the top of its mount tree: the tree's top (its own parent), or
 * attached right on the top's root (the host's / over rootfs; a container's pivot_root over
 * its namespace's). Its root dentry is where every walk ends, so a task at the host's / walks
 * no further than it did when walks ended at the task's root. Mounts stacked higher on the top
 * are crossed: they name no component.
 */
static __always_inline bool on_top(struct vfsmount *vm, const bool fast)
{
	struct mount *m = KCAST(fast, (void *)vm - bpf_core_field_offset(struct mount, mnt),
				struct mount);
	struct mount *p = KREAD(fast, m, mnt_parent);

	if (!p || p == m)
		return true;
	p = KCAST(fast, p, struct mount);
	return KREAD(fast, p, mnt_parent) == p &&
	       KREAD(fast, m, mnt_mountpoint) == KREAD(fast, p, mnt.mnt_root);
}

/* Whether the task is chrooted: its root is not the root dentry of a mount at the top. */
static __always_inline bool task_chrooted(struct task_struct *task, const bool fast)
{
	struct fs_struct *fs = KREAD(fast, task, fs);
	struct vfsmount *rm = KREAD(fast, fs, root.mnt);

	return KREAD(fast, fs, root.dentry) !=
		       KREAD(fast, KCAST(fast, rm, struct vfsmount), mnt_root) ||
	       !on_top(rm, fast);
}

/*
 * One step up: either emit the current dentry's name and go to its parent, or cross from a
 * mount's root to its mountpoint in the parent mount; nonzero when the walk ends. Fields of the
 * context are copied to locals before any BPF_CORE_READ: a CO-RE access through our own struct
 * has no kernel type to relocate against.
 */
static __always_inline long walk_step_in(struct of_walk *w, const bool fast)
{
	struct dentry *d = w->dentry;
	struct vfsmount *vm = w->vfsmnt;
	struct dentry *mnt_root = w->mnt_root;
	struct dentry *parent;

	if (!d || !vm)
		return 1;
	parent = KREAD(fast, d, d_parent);
	if (d == mnt_root || d == parent) {
		struct mount *m = (void *)vm - bpf_core_field_offset(struct mount, mnt);
		struct mount *mp;

		if (d != mnt_root) {
			if (w->mode == WALK_CHECK) {
				w->miss = 1;
				return 1;
			}
			/*
			 * A dentry that is its own parent without being a mount's root: a pseudo
			 * file (memfd, pipe, socket, anonymous inode) or a disconnected tree, named
			 * as the kernel's d_path names it (/memfd:NAME, pipe:[N], socket:[N]).
			 */
			walk_pseudo(w, d);
			w->done = 1;
			return 1;
		}
		/* The top of the tree (the namespace's root), or a detached tree: nothing above. */
		if (on_top(vm, fast)) {
			w->done = 1;
			return 1;
		}
		mp = BPF_CORE_READ(m, mnt_parent);
		vm = (void *)mp + bpf_core_field_offset(struct mount, mnt);
		w->dentry = KCAST(fast, BPF_CORE_READ(m, mnt_mountpoint), struct dentry);
		w->vfsmnt = vm;
		w->mnt_root = BPF_CORE_READ(vm, mnt_root);
		return 0;
	}
	if (w->mode != WALK_EMIT) {
		if (!walk_link(w, d, vm, fast))
			return 1;
		if (w->mode == WALK_CHECK) {
			w->dentry = parent;
			return 0;
		}
	}
	if (!walk_emit(w, KREAD(fast, d, d_name.name), KREAD(fast, d, d_name.len)))
		return 1; /* no room: left not done, so marked truncated */
	w->dentry = parent;
	return 0;
}

/* The fast walk's bpf_loop callback. */
static long walk_step(__u64 index, void *arg)
{
	return walk_step_in(arg, true);
}

/* Up to `steps` steps of the walk (compat: up to OF_COMPAT_WALK_STEPS). */
static __always_inline void walk_run(struct of_walk *w, __u32 steps, const bool fast)
{
	__u32 i;

	if (fast) {
		bpf_loop(steps, walk_step, w, 0);
		return;
	}
#pragma clang loop unroll(disable)
	for (i = 0; i < OF_COMPAT_WALK_STEPS && i < steps; i++)
		if (walk_step_in(w, false))
			break;
}

/* Where a walk starts: `dentry` (fast: as a BTF pointer), its mount and that mount's root. */
static __always_inline void walk_start(struct of_walk *w, struct dentry *dentry,
				       struct vfsmount *vfsmnt, const bool fast)
{
	w->dentry = KCAST(fast, dentry, struct dentry);
	w->vfsmnt = vfsmnt;
	w->mnt_root = KREAD(fast, KCAST(fast, vfsmnt, struct vfsmount), mnt_root);
}

/*
 * Walks `dentry` up into the record's data at `base`, at most `limit` bytes; returns the bytes
 * written, and marks `*trunc` with `cut` when the walk stopped short (and with OF_PATH_PSEUDO
 * when it named a pseudo file).
 */
static __always_inline __u32 walk_path(struct dentry *dentry, struct vfsmount *vfsmnt,
				       __u32 base, __u32 limit, __u8 *trunc, __u8 cut,
				       const bool fast)
{
	struct of_walk w = {
		.base = base,
		.limit = limit,
	};

	walk_start(&w, dentry, vfsmnt, fast);
	walk_run(&w, OF_WALK_MAX_STEPS, fast);
	if (!w.done)
		*trunc |= cut;
	if (w.pseudo)
		*trunc |= OF_PATH_PSEUDO;
	return w.off;
}

#endif /* __OF_PATH_H */
