// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
/*
 * The floor of capture's cost: probes on the same hooks as bpf/opens.bpf.c that only count.
 * Nothing is read, built or sent, so what an open pays with these attached is the price of
 * having a BPF program on the tracepoint at all (the tracepoint's own work plus one program
 * run). The capture benchmark (benches/capture.rs) measures it in the same run as the recorder;
 * the recorder never loads this object.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "syscall_nr.h"

char LICENSE[] SEC("license") = "GPL";

/* Per-CPU, so counting needs no atomics; the reader sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} floor_count SEC(".maps");

static __always_inline int count(void)
{
	__u32 zero = 0;
	__u64 *c = bpf_map_lookup_elem(&floor_count, &zero);

	if (c)
		*c += 1;
	return 0;
}

/* As the recorder's default syscall probe: every syscall's exit, the opens picked by number. */
SEC("tp_btf/sys_exit")
int BPF_PROG(floor_sys_exit, struct pt_regs *regs, long ret)
{
	switch (regs->orig_ax) {
	case NR64_OPEN:
	case NR64_CREAT:
	case NR64_OPENAT:
	case NR64_OPEN_BY_HANDLE_AT:
	case NR64_OPENAT2:
		return count();
	}
	return 0;
}

SEC("tp_btf/io_uring_complete")
int floor_io_uring_complete(void *ctx)
{
	return count();
}
