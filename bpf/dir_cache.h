/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * The directory path cache's lookup: a directory already walked on this CPU is checked, not
 * walked again (see of_dirs in maps.h).
 */
#ifndef __OF_DIR_CACHE_H
#define __OF_DIR_CACHE_H

static __always_inline __u32 dir_slot_of(struct dentry *d, const bool fast)
{
	/*
	 * The name's hash is salted with the parent dentry's address, so it spreads directories
	 * of one name too; the address itself is a pointer the verifier lets us compare and
	 * store, not shift.
	 */
	struct dentry *b = KCAST(fast, d, struct dentry);
	__u32 hash = KREAD(fast, b, d_name.hash);

	return (hash ^ (hash >> 9)) & dir_slots_mask & (OF_DIR_SLOTS - 1);
}

/*
 * Whether the live chain from `dir` up to the top of the mount tree is the slot's, level by
 * level: 1 yes, 0 no, -1 a mount crossing on the way (the caller checks through walk_step, which
 * crosses). A
 * plain bounded loop with the slot in a register: through bpf_loop each level looks the slot up
 * again (a map value pointer kept in the callback's context defeats the verifier's pruning), and
 * crossing mounts inside this loop made the verifier give up too. ~40 ns less per open (BPF stats).
 */
static __always_inline int check_dir(struct of_dir_slot *s, struct dentry *dir,
				      struct vfsmount *vfsmnt, const bool fast)
{
	struct dentry *d = KCAST(fast, dir, struct dentry);
	struct vfsmount *vm = vfsmnt;
	struct dentry *mnt_root = KREAD(fast, KCAST(fast, vfsmnt, struct vfsmount), mnt_root);
	__u32 steps = s->steps, i = 0, n;

#pragma clang loop unroll(disable)
	for (n = 0; n <= OF_DIR_DEPTH; n++) {
		struct dentry *parent;
		struct of_dir_link *l;

		parent = KREAD(fast, d, d_parent);
		if (d == mnt_root && on_top(vm, fast))
			return i == steps;
		if (d == mnt_root || d == parent)
			return -1;
		if (i >= steps || i >= OF_DIR_DEPTH)
			return 0;
		l = &s->chain[i];
		if (l->dentry != (__u64)d || l->mnt != (__u64)vm ||
		    l->hash_len != name_hash_len(d, fast) ||
		    l->seq != KREAD(fast, d, d_seq.seqcount.sequence))
			return 0;
		i++;
		d = parent;
	}
	return 0;
}

/*
 * Walks the directory `dir` up through the cache, its components going to e->data at base + off
 * (after a leaf already there); returns the component bytes in all. A hit writes nothing and
 * marks the header OF_PATH_CACHED; a miss walks, records the slot and names it in the header so
 * user space learns the slot's path from this record. Walks end at the top of the mount tree,
 * whoever walks, so a slot is the same path for a chrooted task and others.
 */
static __always_inline __u32 walk_dir(struct dentry *dir, struct vfsmount *vfsmnt, __u32 base,
				      __u32 off, struct of_event_hdr *h, const bool fast)
{
	__u32 idx = dir_slot_of(dir, fast), id = bpf_get_smp_processor_id() * OF_DIR_SLOTS + idx + 1;
	struct of_dir_slot *s = bpf_map_lookup_elem(&of_dirs, &idx);
	/* Filled in only off the hit path: a hit costs no stores but the header's. */
	struct of_walk w;
#define DIR_WALK(m)                                                                   \
	(struct of_walk){ .base = base, .off = off, .limit = OF_PATH_MAX, .slot = idx, .mode = (m) }

	/*
	 * Compat has no cache: each walk is a copy of the loop body for the verifier to walk, and
	 * one walk per program is what keeps it under its limit.
	 */
	if (!fast) {
		w = DIR_WALK(WALK_EMIT);
		walk_start(&w, dir, vfsmnt, fast);
		walk_run(&w, OF_WALK_MAX_STEPS, fast);
		if (!w.done)
			h->trunc |= OF_TRUNC_PATH;
		if (w.pseudo)
			h->trunc |= OF_PATH_PSEUDO;
		return w.off;
	}
	if (!s)
		return off;
	if (s->steps) {
		int hit = check_dir(s, dir, vfsmnt, fast);

		if (hit < 0) {
			w = DIR_WALK(WALK_CHECK);
			walk_start(&w, dir, vfsmnt, fast);
			walk_run(&w, 2 * OF_DIR_DEPTH, fast);
			hit = w.done && !w.miss && w.steps == s->steps;
		}
		if (hit > 0) {
			h->trunc |= OF_PATH_CACHED;
			h->dir_slot = id;
			h->dir_gen = s->gen;
			return off;
		}
	}
	/* Empty while it is filled: nothing on this CPU can use a half-written slot. */
	s->steps = 0;
	w = DIR_WALK(WALK_FILL);
	walk_start(&w, dir, vfsmnt, fast);
	walk_run(&w, OF_WALK_MAX_STEPS, fast);
	if (!w.done)
		h->trunc |= OF_TRUNC_PATH;
	if (w.pseudo)
		h->trunc |= OF_PATH_PSEUDO;
	if (w.done && !w.nocache && !w.pseudo && w.steps > 0) {
		s->gen = s->gen + 1 ? s->gen + 1 : 1;
		s->steps = w.steps;
		h->dir_slot = id;
		h->dir_gen = s->gen;
	}
	return w.off;
#undef DIR_WALK
}

#endif /* __OF_DIR_CACHE_H */
