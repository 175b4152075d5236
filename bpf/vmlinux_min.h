/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel types the open probes touch, written by hand instead of a 130k-line vmlinux.h.
 *
 * Every struct is compiled with preserve_access_index, so libbpf relocates each field access
 * against the running kernel's BTF (/sys/kernel/btf/vmlinux) at load time: only the names
 * matter here, not the order, offsets or padding, and fields we never read are left out.
 * Add a field by name when a probe needs one; never copy offsets from a kernel build.
 */
#ifndef __OF_VMLINUX_MIN_H
#define __OF_VMLINUX_MIN_H
/* Stands in for vmlinux.h: bpf_tracing.h then uses the kernel's pt_regs field names. */
#define __VMLINUX_H__

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

/* UAPI values (include/uapi/linux/bpf.h); stable ABI. */
enum {
	BPF_ANY = 0,
};
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};
enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};
enum {
	BPF_RB_AVAIL_DATA = 0,
};

/* Helper ids, to ask the running kernel's BTF whether it has one (bpf_core_enum_value_exists). */
enum bpf_func_id {
	BPF_FUNC_snprintf = 165,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

/* The classic sys_exit tracepoints' context (CO-RE finds `ret` after the common header; `id`
 * is the syscall number for raw_syscalls/sys_exit). */
struct trace_event_raw_sys_exit {
	long id;
	long ret;
};

/* x86_64 user registers saved at syscall entry; the args are still there at exit. */
struct pt_regs {
	unsigned long orig_ax;
	unsigned long bx;
	unsigned long cx;
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long r10;
	unsigned long r8;
};

struct qstr {
	union {
		struct {
			__u32 hash;
			__u32 len;
		};
	};
	const unsigned char *name;
};

struct hlist_bl_node {
	struct hlist_bl_node **pprev;
};

struct super_block {
	unsigned long s_magic;
	/* dev_t: the kernel's MKDEV encoding (major << 20 | minor). */
	unsigned int s_dev;
};

struct inode {
	unsigned long i_ino;
	struct super_block *i_sb;
};

/* include/linux/seqlock_types.h: d_seq is bumped by every rename (d_move) and drop. */
struct seqcount {
	unsigned int sequence;
};

struct seqcount_spinlock {
	struct seqcount seqcount;
};

union shortname_store {
	unsigned char string[40];
	unsigned long words[5];
};

struct dentry {
	struct seqcount_spinlock d_seq;
	struct dentry *d_parent;
	struct qstr d_name;
	struct super_block *d_sb;
	struct inode *d_inode;
	/* pprev == NULL: unhashed, i.e. deleted (or a pseudo file such as a memfd). */
	struct hlist_bl_node d_hash;
	/* 6.14+: the inline name (d_name.name points here when it is short), readable as words;
	 * before, a plain d_iname array (the probes then read names by helper). */
	union shortname_store d_shortname;
};

struct vfsmount {
	struct dentry *mnt_root;
};

/* fs/mount.h: the vfsmount is embedded; container_of needs the offset of `mnt`. */
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct file {
	struct path f_path;
	struct inode *f_inode;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

/* Any kernel type with a `struct file *` member: its BTF lets the probe load a pointer from an
 * fd table slot (an array of pointers has no struct type to cast to) as a guarded direct load. */
struct kiocb {
	struct file *ki_filp;
};

struct files_struct {
	struct fdtable *fdt;
};

struct fs_struct {
	struct path root;
	struct path pwd;
};

typedef struct {
	__u32 val;
} kuid_t;

typedef struct {
	__u32 val;
} kgid_t;

typedef struct {
	int counter;
} atomic_t;

struct cred {
	kuid_t uid;
	kgid_t gid;
	kuid_t euid;
	kgid_t egid;
};

struct tty_struct {
	char name[64];
};

struct signal_struct {
	/* Threads still alive: 0 once the last one is in do_exit. */
	atomic_t live;
	struct tty_struct *tty;
};

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
	struct file *exe_file;
};

struct ns_common {
	unsigned int inum;
};

struct pid_namespace {
	struct ns_common ns;
};

struct upid {
	int nr;
	struct pid_namespace *ns;
};

struct pid {
	unsigned int level;
	struct upid numbers[1];
};

struct mnt_namespace {
	struct ns_common ns;
};

struct nsproxy {
	struct mnt_namespace *mnt_ns;
};

/* Since 6.15 the parent pointer is __parent (RCU-managed); before, parent. */
struct kernfs_node {
	struct kernfs_node *__parent;
	const char *name;
	__u64 id;
};

struct kernfs_node___pre615 {
	struct kernfs_node *parent;
};

struct cgroup {
	int level;
	struct kernfs_node *kn;
};

struct cgroup_subsys_state {
	struct cgroup *cgroup;
};

enum cgroup_subsys_id {
	memory_cgrp_id = 4,
};

struct css_set {
	struct cgroup_subsys_state *subsys[12];
	struct cgroup *dfl_cgrp;
};

struct thread_info {
	__u32 status;
};

struct task_struct {
	struct thread_info thread_info;
	int pid;
	int tgid;
	int exit_code;
	char comm[16];
	__u64 start_boottime;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	struct files_struct *files;
	struct fs_struct *fs;
	const struct cred *cred;
	struct signal_struct *signal;
	struct mm_struct *mm;
	struct pid *thread_pid;
	struct nsproxy *nsproxy;
	struct css_set *cgroups;
	kuid_t loginuid;
	unsigned int sessionid;
};

struct linux_binprm {
	/* The name as passed to execve, or /dev/fd/N[/name] for an fd-relative execveat (then
	 * fdpath is that same string; fdpath: 5.8+). */
	const char *filename;
	const char *fdpath;
};

/* include/uapi/linux/openat2.h */
struct open_how {
	__u64 flags;
	__u64 mode;
	__u64 resolve;
};

/* include/linux/fs.h: the kernel's copy of a user path (getname). */
struct filename {
	const char *name;
};

/* 7.0+: the kernel's copy of the path, whose audit part is completed when the open runs. */
struct delayed_filename {
	struct filename *__incomplete_filename;
};

/* io_uring/openclose.c: overlays io_kiocb.cmd for IORING_OP_OPENAT / OPENAT2. */
struct io_open {
	struct file *file;
	int dfd;
	__u32 file_slot;
	struct filename *filename;
	struct open_how how;
};

/* 7.0+: filename is embedded (io_uring.h, uring_open_name). */
struct io_open___delayed {
	struct delayed_filename filename;
};

/* io_uring/fs.c: overlay io_kiocb.cmd for IORING_OP_RENAMEAT, UNLINKAT, MKDIRAT, and
 * SYMLINKAT and LINKAT (both io_link). 7.0+ embeds each filename as io_open's. */
struct io_rename {
	int old_dfd;
	int new_dfd;
	struct filename *oldpath;
	struct filename *newpath;
	int flags;
};

struct io_rename___delayed {
	struct delayed_filename oldpath;
	struct delayed_filename newpath;
};

struct io_unlink {
	int dfd;
	int flags;
	struct filename *filename;
};

struct io_unlink___delayed {
	struct delayed_filename filename;
};

struct io_mkdir {
	int dfd;
	unsigned short mode;
	struct filename *filename;
};

struct io_mkdir___delayed {
	struct delayed_filename filename;
};

struct io_link {
	int old_dfd;
	int new_dfd;
	struct filename *oldpath;
	struct filename *newpath;
	int flags;
};

struct io_link___delayed {
	struct delayed_filename oldpath;
	struct delayed_filename newpath;
};

struct io_cmd_data {
	struct file *file;
	__u8 data[56];
};

struct io_kiocb {
	__u8 opcode;
	struct io_cmd_data cmd;
};

struct io_uring_cqe {
	__u64 user_data;
	__s32 res;
	__u32 flags;
};

struct io_ring_ctx;

#pragma clang attribute pop

#endif /* __OF_VMLINUX_MIN_H */
