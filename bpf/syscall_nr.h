/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The captured syscalls' numbers as the raw sys_exit tracepoint sees them (orig_ax): the x86-64
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

/* The file operations (bpf/file_ops.h). fchmodat2 (6.6) has one number in both tables. */
#define NR64_RENAME 82
#define NR64_RENAMEAT 264
#define NR64_RENAMEAT2 316
#define NR64_LINK 86
#define NR64_LINKAT 265
#define NR64_SYMLINK 88
#define NR64_SYMLINKAT 266
#define NR64_UNLINK 87
#define NR64_UNLINKAT 263
#define NR64_RMDIR 84
#define NR64_MKDIR 83
#define NR64_MKDIRAT 258
#define NR64_CHMOD 90
#define NR64_FCHMOD 91
#define NR64_FCHMODAT 268
#define NR64_FCHMODAT2 452
#define NR64_CHOWN 92
#define NR64_FCHOWN 93
#define NR64_LCHOWN 94
#define NR64_FCHOWNAT 260
#define NR64_TRUNCATE 76
#define NR64_FTRUNCATE 77

#define NR32_RENAME 38
#define NR32_RENAMEAT 302
#define NR32_RENAMEAT2 353
#define NR32_LINK 9
#define NR32_LINKAT 303
#define NR32_SYMLINK 83
#define NR32_SYMLINKAT 304
#define NR32_UNLINK 10
#define NR32_UNLINKAT 301
#define NR32_RMDIR 40
#define NR32_MKDIR 39
#define NR32_MKDIRAT 296
#define NR32_CHMOD 15
#define NR32_FCHMOD 94
#define NR32_FCHMODAT 306
#define NR32_FCHMODAT2 452
#define NR32_CHOWN16 182
#define NR32_FCHOWN16 95
#define NR32_LCHOWN16 16
#define NR32_FCHOWNAT 298
#define NR32_TRUNCATE 92
#define NR32_FTRUNCATE 93
#define NR32_CHOWN32 212
#define NR32_FCHOWN32 207
#define NR32_LCHOWN32 198
#define NR32_TRUNCATE64 193
#define NR32_FTRUNCATE64 194

#endif /* __OF_SYSCALL_NR_H */
