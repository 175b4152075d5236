// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
/*
 * Every route a process opens a file by, one record per open, sent to user space through a ring
 * buffer. See bpf/events.h for the record; src/capture/ for the user side.
 *
 * Syscalls (open, creat, openat, openat2, open_by_handle_at): the exit tracepoint reads the
 * arguments from the registers saved at entry, the path (the kernel has faulted it in by then),
 * and emits the record with the result. io_uring (IORING_OP_OPENAT/OPENAT2) never passes through a
 * syscall tracepoint: tp_btf/io_uring_submit_req stashes the submitter and the kernel's copy of the
 * path by request, tp_btf/io_uring_complete emits it with the result.
 *
 * The resolved absolute path is walked in the kernel: for a successful open the opened file's
 * dentry and mount chain (task->files->fdt->fd[ret]), for a failed relative open the cwd or the
 * dirfd's directory (user space joins the raw path on). One component per bpf_loop iteration
 * keeps the verifier's work independent of the path's depth. The walk is a lockless read, like
 * every tracing tool's: a rename racing the open can show either name.
 *
 * Cost: every open runs this, so the hot path reads kernel memory through BTF-typed pointers
 * (bpf_get_current_task_btf, bpf_core_cast): such loads are single instructions the JIT guards
 * with an exception table, where each BPF_CORE_READ is a bpf_probe_read_kernel helper call.
 * Helper calls are left only for what needs one: the fd array slot (an array of pointers has no
 * BTF pointer type), the name bytes, the user path, the ring. Measured with BPF stats in
 * benches/capture.rs.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "events.h"
#include "syscall_nr.h"

char LICENSE[] SEC("license") = "GPL";

#define AT_FDCWD -100
#define ENAMETOOLONG 36
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000
#define IORING_OP_OPENAT 18
#define IORING_OP_OPENAT2 28
/* Every component takes at least 2 bytes ("x\0"), plus room for mount crossings. */
#define OF_WALK_MAX_STEPS (OF_PATH_MAX / 2 + 64)

/* Set by user space before load. */
const volatile __u32 targ_self_tgid = 0;
/* Slots of of_dirs in use per CPU minus one (a power of two minus one, <= OF_DIR_SLOTS - 1). */
const volatile __u32 dir_slots_mask = OF_DIR_SLOTS - 1;
/*
 * Wake the consumer when the data waiting crosses a multiple of 1 << wakeup_shift bytes;
 * otherwise it finds the data on its timed poll.
 */
const volatile __u32 wakeup_shift = 18;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	/* Resized by user space (--ring-mb) before load. */
	__uint(max_entries, 16 * 1024 * 1024);
} of_events SEC(".maps");

/* Per-CPU: the counters need no atomics, user space sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OF_LOSS_NR);
	__type(key, __u32);
	__type(value, __u64);
} of_losses SEC(".maps");

/*
 * An io_uring open between submission and completion. A map update copies the whole value, so
 * the stash holds paths up to OF_URING_SHORT bytes (most); a longer one goes to of_uring_longs
 * as well, under the same key. With the full 4 KiB in every stash the submission probe cost
 * ~220 ns per run, most of it that copy (BPF stats, `cargo bench --bench capture`, io_uring row).
 */
#define OF_URING_SHORT 256

struct of_uring_req {
	struct of_event_hdr hdr; /* the submitter, flags, mode, dirfd, raw_len (the whole path's) */
	__u32 file_slot;         /* != 0: a direct descriptor, no fd to walk */
	char raw[OF_URING_SHORT];
};

struct of_uring_long {
	char raw[OF_RAW_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct of_uring_req);
} of_uring_reqs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u64);
	__type(value, struct of_uring_long);
} of_uring_longs SEC(".maps");

/* Records are built here (too big for the 512-byte stack), then the used part is copied out. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct of_event);
} of_scratch SEC(".maps");

struct of_uring_stage {
	struct of_uring_req req;
	struct of_uring_long path; /* the whole path, when it does not fit req.raw */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct of_uring_stage);
} of_uring_scratch SEC(".maps");

/* Process records are built here: exe, argv and cgroup need up to 9 KiB. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct of_proc);
} of_proc_scratch SEC(".maps");

/*
 * The directory path cache: most opens are in directories opened in a moment before, so the
 * directory part of a path is walked once and then only checked. A slot keeps, for each level
 * walked, the dentry, its mount, its name's hash and length and its d_seq, which every rename
 * (d_move) and drop of that dentry bumps. A hit walks the live chain up to the task's root
 * comparing each level with direct loads (no helper call, no name copied) and sends the slot
 * id instead of the directory's names; user space keeps the path each slot id was defined
 * with. So a rename of any directory on the way, a mount moved, another root (chroot) or a
 * dentry freed and reused for another name makes the check fail and the directory is walked
 * again. Per CPU: filled and checked without atomics (the programs run with preemption off),
 * and a slot's defining record precedes, in the ring, every record on that CPU that uses it.
 */
struct of_dir_link {
	__u64 dentry;
	__u64 mnt;
	__u64 hash_len;
	__u32 seq;
	__u32 pad;
};

struct of_dir_slot {
	__u32 gen;   /* fills of this slot on this CPU (a record using it names the fill) */
	__u32 steps; /* links in chain, 0: empty or being filled */
	struct of_dir_link chain[OF_DIR_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	/* Resized by user space (a power of two up to this) before load. */
	__uint(max_entries, OF_DIR_SLOTS);
	__type(key, __u32);
	__type(value, struct of_dir_slot);
} of_dirs SEC(".maps");

/* Makes clang emit BTF for the shared types so libbpf-cargo generates their Rust twins. */
struct of_abi {
	struct of_event_hdr hdr;
	struct of_proc_hdr proc;
	enum of_rec_kind kind;
	enum of_exe_flags exe_flags;
	enum of_syscall syscall;
	enum of_path_source path_source;
	enum of_trunc trunc;
	enum of_loss_reason loss;
	enum of_limits limits;
} of_abi_unused = {};

static __always_inline void count_loss(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&of_losses, &reason);

	if (c)
		*c += 1;
}

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

struct of_walk {
	struct dentry *dentry;   /* a BTF pointer (bpf_core_cast): read by direct loads */
	struct vfsmount *vfsmnt; /* a plain address: crossings are rare and read by helper */
	struct dentry *mnt_root; /* vfsmnt's root, read once per mount instead of per step */
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
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
 * <= 2 * 4096 for processes; off <= limit), so the mask never changes pos: it is there so the
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

	if (w->proc || (magic != PIPEFS_MAGIC && magic != SOCKFS_MAGIC &&
			magic != ANON_INODE_FS_MAGIC)) {
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
 * WALK_FILL: records the link of `d`; its seq is read before its name is (x86 keeps loads in
 * order), so a rename after this read leaves the slot with an older seq than the dentry's and
 * the next check misses: a racing rename can make a slot look stale, never keep a stale one.
 * WALK_CHECK: false (and w->miss) when `d` is not the slot's link at this level.
 */
static __always_inline bool walk_link(struct of_walk *w, struct dentry *d, struct vfsmount *vm)
{
	__u32 i = w->steps, key = w->slot;
	struct of_dir_slot *s = bpf_map_lookup_elem(&of_dirs, &key);
	__u32 seq = d->d_seq.seqcount.sequence;
	__u64 hash_len = d->d_name.hash_len;
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
 * One step up: either emit the current dentry's name and go to its parent, or cross from a
 * mount's root to its mountpoint in the parent mount. Fields of the context are copied to locals
 * before any BPF_CORE_READ: a CO-RE access through our own struct has no kernel type to relocate
 * against.
 */
static long walk_step(__u64 index, void *arg)
{
	struct of_walk *w = arg;
	struct dentry *d = w->dentry;
	struct vfsmount *vm = w->vfsmnt;
	struct dentry *mnt_root = w->mnt_root;
	struct dentry *parent;

	if (!d || !vm)
		return 1;
	if (d == w->root_dentry && vm == w->root_mnt) {
		w->done = 1;
		return 1;
	}
	parent = d->d_parent;
	if (d == mnt_root || d == parent) {
		struct mount *m = (void *)vm - bpf_core_field_offset(struct mount, mnt);
		struct mount *mp = BPF_CORE_READ(m, mnt_parent);

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
		/* The namespace's root, or a detached tree: nothing above. */
		if (!mp || mp == m) {
			w->done = 1;
			return 1;
		}
		vm = (void *)mp + bpf_core_field_offset(struct mount, mnt);
		w->dentry = bpf_core_cast(BPF_CORE_READ(m, mnt_mountpoint), struct dentry);
		w->vfsmnt = vm;
		w->mnt_root = BPF_CORE_READ(vm, mnt_root);
		return 0;
	}
	if (w->mode != WALK_EMIT) {
		if (!walk_link(w, d, vm))
			return 1;
		if (w->mode == WALK_CHECK) {
			w->dentry = parent;
			return 0;
		}
	}
	if (!walk_emit(w, d->d_name.name, d->d_name.len))
		return 1; /* no room: left not done, so marked truncated */
	w->dentry = parent;
	return 0;
}

/* Where a walk starts: `dentry` as a BTF pointer, its mount and that mount's root. */
static __always_inline void walk_start(struct of_walk *w, struct dentry *dentry,
				       struct vfsmount *vfsmnt)
{
	w->dentry = bpf_core_cast(dentry, struct dentry);
	w->vfsmnt = vfsmnt;
	w->mnt_root = bpf_core_cast(vfsmnt, struct vfsmount)->mnt_root;
}

/* Walks `p` up to the task's root into e->data after the raw path; returns the bytes written. */
static __always_inline __u32 walk_path(struct task_struct *task, struct dentry *dentry,
				       struct vfsmount *vfsmnt, __u32 base, __u8 *trunc)
{
	struct of_walk w = {
		.root_dentry = task->fs->root.dentry,
		.root_mnt = task->fs->root.mnt,
		.base = base,
		.limit = OF_PATH_MAX,
	};

	walk_start(&w, dentry, vfsmnt);
	bpf_loop(OF_WALK_MAX_STEPS, walk_step, &w, 0);
	if (!w.done)
		*trunc |= OF_TRUNC_PATH;
	if (w.pseudo)
		*trunc |= OF_PATH_PSEUDO;
	return w.off;
}

static __always_inline __u32 dir_slot_of(struct dentry *d)
{
	/*
	 * The name's hash is salted with the parent dentry's address, so it spreads directories
	 * of one name too; the address itself is a pointer the verifier lets us compare and
	 * store, not shift.
	 */
	struct dentry *b = bpf_core_cast(d, struct dentry);

	return (b->d_name.hash ^ (b->d_name.hash >> 9)) & dir_slots_mask & (OF_DIR_SLOTS - 1);
}

/*
 * Whether the live chain from `dir` up to the task's root is the slot's, level by level: 1 yes,
 * 0 no, -1 a mount crossing on the way (the caller checks through walk_step, which crosses). A
 * plain bounded loop with the slot in a register: through bpf_loop each level looks the slot up
 * again (a map value pointer kept in the callback's context defeats the verifier's pruning), and
 * crossing mounts inside this loop made the verifier give up too. ~40 ns less per open (BPF stats).
 */
static __always_inline int check_dir(struct of_dir_slot *s, struct dentry *dir,
				      struct vfsmount *vfsmnt, struct dentry *root_dentry,
				      struct vfsmount *root_mnt)
{
	struct dentry *d = bpf_core_cast(dir, struct dentry);
	struct vfsmount *vm = vfsmnt;
	struct dentry *mnt_root = bpf_core_cast(vfsmnt, struct vfsmount)->mnt_root;
	__u32 steps = s->steps, i = 0, n;

#pragma clang loop unroll(disable)
	for (n = 0; n <= OF_DIR_DEPTH; n++) {
		struct dentry *parent;
		struct of_dir_link *l;

		if (d == root_dentry && vm == root_mnt)
			return i == steps;
		parent = d->d_parent;
		if (d == mnt_root || d == parent)
			return -1;
		if (i >= steps || i >= OF_DIR_DEPTH)
			return 0;
		l = &s->chain[i];
		if (l->dentry != (__u64)d || l->mnt != (__u64)vm ||
		    l->hash_len != d->d_name.hash_len || l->seq != d->d_seq.seqcount.sequence)
			return 0;
		i++;
		d = parent;
	}
	return 0;
}

/*
 * Walks the directory `dir` up to the task's root through the cache, its components going to
 * e->data at base + off (after a leaf already there); returns the component bytes in all.
 * A hit writes nothing and marks the header OF_PATH_CACHED; a miss walks, records the slot
 * and names it in the header so user space learns the slot's path from this record.
 */
static __always_inline __u32 walk_dir(struct task_struct *task, struct dentry *dir,
				      struct vfsmount *vfsmnt, __u32 base, __u32 off,
				      struct of_event_hdr *h)
{
	__u32 idx = dir_slot_of(dir), id = bpf_get_smp_processor_id() * OF_DIR_SLOTS + idx + 1;
	struct of_dir_slot *s = bpf_map_lookup_elem(&of_dirs, &idx);
	struct dentry *root_dentry = task->fs->root.dentry;
	struct vfsmount *root_mnt = task->fs->root.mnt;
	/* Filled in only off the hit path: a hit costs no stores but the header's. */
	struct of_walk w;
#define DIR_WALK(m)                                                                   \
	(struct of_walk){ .root_dentry = root_dentry, .root_mnt = root_mnt, .base = base, \
			  .off = off, .limit = OF_PATH_MAX, .slot = idx, .mode = (m) }

	if (!s)
		return off;
	if (s->steps) {
		int fast = check_dir(s, dir, vfsmnt, root_dentry, root_mnt);

		if (fast < 0) {
			w = DIR_WALK(WALK_CHECK);
			walk_start(&w, dir, vfsmnt);
			bpf_loop(2 * OF_DIR_DEPTH, walk_step, &w, 0);
			fast = w.done && !w.miss && w.steps == s->steps;
		}
		if (fast > 0) {
			h->trunc |= OF_PATH_CACHED;
			h->dir_slot = id;
			h->dir_gen = s->gen;
			return off;
		}
	}
	/* Empty while it is filled: nothing on this CPU can use a half-written slot. */
	s->steps = 0;
	w = DIR_WALK(WALK_FILL);
	walk_start(&w, dir, vfsmnt);
	bpf_loop(OF_WALK_MAX_STEPS, walk_step, &w, 0);
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

/*
 * Copies a dentry's short name stored inline in the dentry (6.14+ d_shortname; most names) as
 * four word loads into an open record, instead of bpf_probe_read_kernel_str's byte-by-byte
 * guarded copy (with fd_file's direct load, ~6 ns less per probe run, BPF stats). The name and
 * its length are read between two reads of d_seq, which a rename bumps: a name being renamed (a
 * shorter one could show a NUL before the old length) is left to the helper. Returns the bytes
 * written, NUL included; 0 when this path does not apply.
 */
static __always_inline __u32 emit_inline_name(struct of_event *e, __u32 base, struct dentry *d)
{
	__u32 pos, len, seq;
	__u64 *dst;

	if (!bpf_core_field_exists(d->d_shortname))
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
 * own in a path (a mount's root, the task's root, a pseudo file).
 */
static __always_inline bool emit_leaf(struct of_event *e, struct task_struct *task,
				      struct dentry *d, struct vfsmount *vfsmnt, __u32 base,
				      __u32 *off)
{
	struct vfsmount *vm = bpf_core_cast(vfsmnt, struct vfsmount);
	__u32 n;

	if (d == d->d_parent || d == vm->mnt_root ||
	    (d == task->fs->root.dentry && vfsmnt == task->fs->root.mnt))
		return false;
	/* base < OF_RAW_MAX, and a leaf is the first component: it always fits. */
	n = emit_inline_name(e, base, d);
	if (!n) {
		struct of_walk w = {
			.base = base,
			.limit = OF_PATH_MAX,
		};

		if (!walk_emit(&w, d->d_name.name, d->d_name.len))
			return false;
		n = w.off;
	}
	*off = n;
	return true;
}

/*
 * Fills in the resolved path for a record whose header (raw_len, dirfd, trunc) and raw path are
 * set, then copies the used part into the ring. `walk_fds` is false when the current task's fd
 * table is not the opener's or the result is no fd (io_uring direct descriptors).
 */
static __always_inline void resolve_and_output(struct of_event *e, long ret, bool walk_fds,
					       struct task_struct *task)
{
	struct of_event_hdr *h = &e->hdr;
	__u32 raw_len = h->raw_len;
	__u32 path_len = 0;
	__u64 size, flags, avail;
	struct file *f;
	struct dentry *dir = NULL;
	struct vfsmount *dir_mnt = NULL;

	if (raw_len > OF_RAW_MAX - 1)
		raw_len = OF_RAW_MAX - 1;
	h->ret = ret;
	h->path_source = OF_PATH_UNRESOLVED;
	h->dir_slot = 0;
	h->dir_gen = 0;
	/*
	 * Where the directory walk starts, if there is one: each case only picks it, so that
	 * walk_dir (and its bpf_loop callbacks, which the verifier walks per call site) is inlined
	 * once, not once per case (each case its own copy cost ~100 ms of verification per program).
	 */
	if (ret >= 0) {
		f = walk_fds ? fd_file(task, ret) : NULL;
		if (f) {
			struct dentry *d = f->f_path.dentry;

			h->path_source = OF_PATH_FILE;
			dir_mnt = f->f_path.mnt;
			if (emit_leaf(e, task, d, dir_mnt, raw_len, &path_len))
				dir = d->d_parent;
			else
				path_len = walk_path(task, d, dir_mnt, raw_len, &h->trunc);
			/* Unhashed: unlinked (or an O_TMPFILE), as d_path says with " (deleted)". */
			if (!d->d_hash.pprev)
				h->trunc |= OF_PATH_DELETED;
		}
	} else if (raw_len > 0 && e->data[0] == '/') {
		h->path_source = OF_PATH_RAW;
	} else if (raw_len > 0) {
		if (h->has_dirfd && h->dirfd != AT_FDCWD) {
			f = walk_fds ? fd_file(task, h->dirfd) : NULL;
			if (f) {
				h->path_source = OF_PATH_DIRFD;
				dir = f->f_path.dentry;
				dir_mnt = f->f_path.mnt;
			}
		} else if (walk_fds) {
			h->path_source = OF_PATH_CWD;
			dir = task->fs->pwd.dentry;
			dir_mnt = task->fs->pwd.mnt;
		}
	}
	if (dir)
		path_len = walk_dir(task, dir, dir_mnt, raw_len, path_len, h);
	if (path_len > OF_PATH_MAX)
		path_len = OF_PATH_MAX;
	h->raw_len = raw_len;
	h->path_len = path_len;
	h->ts_ns = bpf_ktime_get_boot_ns();

	/*
	 * bpf_ringbuf_output from the per-CPU scratch rather than bpf_ringbuf_reserve: a reservation
	 * has to be the worst case (8.5 KB) while a typical record is ~150 bytes, so reserving would
	 * fit 50x fewer records in the same ring. The price is one copy of the used bytes.
	 */
	size = sizeof(struct of_event_hdr) + raw_len + path_len;
	/* Opaque to clang, so that the bound the verifier needs is checked on this register. */
	barrier_var(size);
	if (size > sizeof(struct of_event))
		size = sizeof(struct of_event);
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
	if (bpf_ringbuf_output(&of_events, e, size, flags)) {
		count_loss(OF_LOSS_RINGBUF_FULL);
		/* User space never learns a slot whose defining record is lost: empty it. */
		if (h->dir_slot && !(h->trunc & OF_PATH_CACHED)) {
			__u32 idx = (h->dir_slot - 1) % OF_DIR_SLOTS;
			struct of_dir_slot *s = bpf_map_lookup_elem(&of_dirs, &idx);

			if (s)
				s->steps = 0;
		}
	}
}

/*
 * Emits the record for a syscall open that just returned `ret`. The arguments are read from the
 * user registers saved at syscall entry (task_pt_regs), which the open syscalls leave untouched:
 * no enter probe, no map from enter to exit, half the probe invocations per open. The path and
 * open_how are read here too, after the kernel has faulted them in.
 */
static __always_inline int on_exit(__u8 syscall, long ret, struct pt_regs *regs,
				   struct task_struct *task)
{
	struct of_event *e;
	__u64 path = 0, how = 0, a[4];
	__u32 zero = 0;
	__u8 base = syscall;
	long n;

	if (task->tgid == targ_self_tgid)
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
	fill_task(&e->hdr, task);
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
	if (path) {
		n = bpf_probe_read_user_str(e->data, OF_RAW_MAX, (void *)path);
		if (n > 0) {
			e->hdr.raw_len = n - 1;
			/* A path that filled the buffer and was refused as too long was cut. */
			if (n == OF_RAW_MAX && ret == -ENAMETOOLONG)
				e->hdr.trunc |= OF_TRUNC_RAW;
		}
	}
	resolve_and_output(e, ret, true, task);
	return 0;
}

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

/*
 * The path was copied into the kernel (getname) when the request was prepared, before this
 * tracepoint; it is freed before completion, so it is copied here.
 */
SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(tp_btf__io_uring_submit_req, struct io_kiocb *req)
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
	if (op != IORING_OP_OPENAT && op != IORING_OP_OPENAT2)
		return 0;
	st = bpf_map_lookup_elem(&of_uring_scratch, &zero);
	if (!st)
		return 0;
	u = &st->req;
	o = bpf_core_cast(&req->cmd, struct io_open);
	fill_task(&u->hdr, bpf_get_current_task_btf());
	u->hdr.syscall = OF_SYSCALL_IO_URING;
	u->hdr.flags = o->how.flags;
	u->hdr.mode = o->how.mode;
	u->hdr.dirfd = o->dfd;
	u->hdr.has_dirfd = 1;
	u->hdr.trunc = 0;
	u->file_slot = o->file_slot;
	name = o->filename->name;
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

SEC("tp_btf/io_uring_complete")
int BPF_PROG(tp_btf__io_uring_complete, struct io_ring_ctx *ring, void *req,
	     struct io_uring_cqe *cqe)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	__u64 key = (__u64)req;
	__u32 zero = 0, raw_len;
	__s32 res;
	struct of_uring_req *u;
	struct of_event *e;
	bool same_files;
	__u8 op;

	u = bpf_map_lookup_elem(&of_uring_reqs, &key);
	if (!u) {
		/*
		 * An open that failed while being prepared (never submitted), or whose submission
		 * was evicted: still an open attempt, recorded with what is known now.
		 */
		if ((id >> 32) == targ_self_tgid)
			return 0;
		op = bpf_core_cast(req, struct io_kiocb)->opcode;
		if (op != IORING_OP_OPENAT && op != IORING_OP_OPENAT2)
			return 0;
		e = bpf_map_lookup_elem(&of_scratch, &zero);
		if (!e)
			return 0;
		fill_task(&e->hdr, task);
		e->hdr.syscall = OF_SYSCALL_IO_URING;
		e->hdr.flags = 0;
		e->hdr.mode = 0;
		e->hdr.dirfd = 0;
		e->hdr.has_dirfd = 0;
		e->hdr.trunc = 0;
		e->hdr.raw_len = 0;
		resolve_and_output(e, cqe->res, false, task);
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
	res = cqe->res;
	same_files = (id >> 32) == u->hdr.pid && !(u->file_slot && res >= 0);
	bpf_map_delete_elem(&of_uring_reqs, &key);
	resolve_and_output(e, res, same_files, task);
	return 0;
}

/*
 * Process lifecycle: one record per exec, per new process (not per thread) and per process exit,
 * so lineage costs per process, never per open. User space keeps the process table (keyed by
 * pid and start_boottime, which an open record carries) and stores it with the events.
 */

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

/* One cgroup level: emit its name and go up; the root (no parent) has no name of its own. */
static long cg_step(__u64 index, void *arg)
{
	struct of_cg_walk *c = arg;
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
	h->exit_code = 0;
	h->exe_len = 0;
	h->args_len = 0;
	h->cgroup_len = 0;
	h->root_len = 0;
	h->trunc = 0;
	h->exe_flags = 0;
	h->tty[0] = 0;
	BPF_CORE_READ_STR_INTO(&h->comm, task, comm);
}

static __always_inline void output_proc(struct of_proc *p)
{
	__u64 size = sizeof(struct of_proc_hdr) + (__u64)p->hdr.exe_len + p->hdr.args_len +
		     p->hdr.cgroup_len + p->hdr.root_len;

	if (size > sizeof(struct of_proc))
		size = sizeof(struct of_proc);
	/* Rare records: no forced wakeup; the consumer finds them on its timed poll. */
	if (bpf_ringbuf_output(&of_events, p, size, BPF_RB_NO_WAKEUP))
		count_loss(OF_LOSS_RINGBUF_FULL);
}

/*
 * After the point of no return of execve: current runs the new image, whose argv the kernel just
 * copied to the new stack (resident, so readable here) and whose mm->exe_file is the binary
 * (the interpreter, for a script: argv then shows the script).
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(tp_btf__sched_process_exec, struct task_struct *p, int old_pid,
	     struct linux_binprm *bprm)
{
	struct task_struct *task = current_task();
	struct of_proc *rec;
	struct file *exe;
	struct tty_struct *tty;
	struct cgroup *cg;
	__u32 zero = 0, exe_len = 0, len = 0;
	unsigned long start, end;

	rec = bpf_map_lookup_elem(&of_proc_scratch, &zero);
	if (!rec)
		return 0;
	fill_proc(&rec->hdr, task, OF_REC_EXEC);

	exe = BPF_CORE_READ(task, mm, exe_file);
	if (exe) {
		struct dentry *d = BPF_CORE_READ(exe, f_path.dentry);
		struct of_walk w = {
			.root_dentry = BPF_CORE_READ(task, fs, root.dentry),
			.root_mnt = BPF_CORE_READ(task, fs, root.mnt),
			.limit = OF_PATH_MAX,
			.proc = 1,
		};

		walk_start(&w, d, BPF_CORE_READ(exe, f_path.mnt));
		bpf_loop(OF_WALK_MAX_STEPS, walk_step, &w, 0);
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

		bpf_loop(64, cg_step, &c, 0);
		if (!c.w.done)
			rec->hdr.trunc |= OF_TRUNC_CGROUP;
		rec->hdr.cgroup_len = c.w.off > OF_CGROUP_MAX ? OF_CGROUP_MAX : c.w.off;
	}

	/*
	 * A chrooted process: its paths are relative to its root, so the root itself is recorded,
	 * walked up to the mount namespace's root (once per exec, never per open).
	 */
	{
		struct dentry *rd = BPF_CORE_READ(task, fs, root.dentry);
		struct vfsmount *rm = BPF_CORE_READ(task, fs, root.mnt);
		struct mount *nsroot = BPF_CORE_READ(task, nsproxy, mnt_ns, root);
		struct vfsmount *nsm =
			(void *)nsroot + bpf_core_field_offset(struct mount, mnt);

		if (nsroot && (rm != nsm || rd != BPF_CORE_READ(nsm, mnt_root))) {
			struct of_walk w = {
				.base = exe_len + len + rec->hdr.cgroup_len,
				.limit = OF_ROOT_MAX,
				.proc = 1,
			};

			walk_start(&w, rd, rm);
			bpf_loop(OF_WALK_MAX_STEPS, walk_step, &w, 0);
			rec->hdr.root_len = w.off > OF_ROOT_MAX ? OF_ROOT_MAX : w.off;
		}
	}

	tty = BPF_CORE_READ(task, signal, tty);
	if (tty)
		BPF_CORE_READ_STR_INTO(&rec->hdr.tty, tty, name);
	output_proc(rec);
	return 0;
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
