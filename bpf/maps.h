/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * The open probes' shared state: the settings user space fixes before load, the ring, the loss
 * counters, the io_uring stash, the per-CPU scratch records and the directory path cache.
 */
#ifndef __OF_MAPS_H
#define __OF_MAPS_H

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

/*
 * An operation to record, as the program that caught it decoded it (bpf/file_ops.h): where its
 * names are, what its path is relative to, and its values.
 */
struct of_op_plan {
	__u64 old;       /* the old name's (a symlink's target's) address; 0: none */
	__u64 path;      /* the path's address; 0: none (an fd call) */
	__s64 fd;        /* an fd call's fd, whose file is walked; -1: none */
	__s32 dirfd;
	__s32 old_dirfd;
	__u8 has_dirfd;
	__u8 user;       /* the names are in user memory (a syscall's); else in the kernel's */
	__u8 cut;        /* the stash cut the names: bit 0 the path, bit 1 the old name */
	__u8 pad[5];
	struct of_op_tail t; /* new_uid, new_gid, length */
};

/*
 * The scratch an operation's record is built in: an of_event's room for the path, then room for
 * the tail and the old name, then where the old name waits while the path is resolved (the walks
 * write only below OF_DATA_MAX); then the operation as decoded, and its names when they come
 * from an io_uring stash.
 */
struct of_op_event {
	struct of_event ev;
	char old[sizeof(struct of_op_tail) + OF_OLD_MAX];
	char stage[OF_OLD_MAX];
	/* The syscall's arguments, read from the saved registers by the program that picked it. */
	__u64 args[5];
	struct of_op_plan plan;
	char names[2 * OF_URING_SHORT]; /* the path at 0, the old name at OF_URING_SHORT */
};

/*
 * An io_uring operation (IORING_OP_RENAMEAT, UNLINKAT, MKDIRAT, SYMLINKAT, LINKAT) between
 * submission and completion: the submitter, the operation and its names as the kernel copied
 * them, each kept up to OF_URING_SHORT bytes (a longer one is marked cut).
 */
struct of_uring_op {
	struct of_event_hdr hdr;
	struct of_op_plan plan;
	char names[2 * OF_URING_SHORT]; /* the path at 0, the old name at OF_URING_SHORT */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, struct of_uring_op);
} of_uring_ops SEC(".maps");

/*
 * Records are built here (too big for the 512-byte stack), then the used part is copied out. An
 * open's record is the of_event at the start; an operation's uses the room after it too.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct of_op_event);
} of_scratch SEC(".maps");

struct of_uring_stage {
	struct of_uring_req req;
	struct of_uring_long path; /* the whole path, when it does not fit req.raw */
	struct of_uring_op op;     /* an operation's stash, built here */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct of_uring_stage);
} of_uring_scratch SEC(".maps");

/* Process records are built here: exe, argv, cgroup, root, cwd and name need up to 18 KiB. */
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
 * (d_move) and drop of that dentry bumps. A hit walks the live chain up to the top of the mount
 * tree (path.h) comparing each level with direct loads (no helper call, no name copied) and
 * sends the slot id instead of the directory's names; user space keeps the path each slot id
 * was defined with. So a rename of any directory on the way, a mount moved, another mount of
 * the same tree or a dentry freed and reused for another name makes the check fail and the
 * directory is walked again; a chroot changes no path, so it shares slots. Per CPU: filled and checked without atomics (the programs run with preemption off),
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
	struct of_op_tail op_tail;
	enum of_op op;
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

#endif /* __OF_MAPS_H */
