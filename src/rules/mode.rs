//! `mode_set:` named permission bits, tested against an event's `mode` (chmod's new mode,
//! mkdir's mode, an open's creation mode as passed).

/// Names and bits; a name holds when any of its bits is set.
pub(super) const MODE_BITS: &[(&str, u32)] = &[
    ("setuid", 0o4000),
    ("setgid", 0o2000),
    ("sticky", 0o1000),
    ("executable", 0o111),
    ("world_writable", 0o002),
];
