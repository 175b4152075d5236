/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The open syscalls' numbers as the raw sys_exit tracepoint sees them (orig_ax): the x86-64
 * table's (arch/x86/entry/syscalls/syscall_64.tbl) and the ia32 table's (syscall_32.tbl, for a
 * task in a 32-bit syscall). One list for the recorder's probe and the bench's floor, which must
 * pick the same syscalls to cost the same.
 */
#ifndef __OF_SYSCALL_NR_H
#define __OF_SYSCALL_NR_H

#define NR64_OPEN 2
#define NR64_CREAT 85
#define NR64_OPENAT 257
#define NR64_OPEN_BY_HANDLE_AT 304
#define NR64_OPENAT2 437

#define NR32_OPEN 5
#define NR32_CREAT 8
#define NR32_OPENAT 295
#define NR32_OPEN_BY_HANDLE_AT 342
#define NR32_OPENAT2 437

#endif /* __OF_SYSCALL_NR_H */
