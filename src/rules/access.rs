//! `access:` kinds: what an open asks for, derived from its flags and syscall; what another
//! operation does to the object at `path`, by its op (see `OP_ACCESS`).

use crate::event::{Event, Op, Syscall};

/// Access kinds, as bits; the order is the documentation's.
pub(super) const ACCESS: &[(&str, u32)] = &[
    ("read", 1 << 0),
    ("write", 1 << 1),
    ("create", 1 << 2),
    ("truncate", 1 << 3),
    ("append", 1 << 4),
    ("exclusive", 1 << 5),
    ("directory", 1 << 6),
    ("tmpfile", 1 << 7),
    ("path", 1 << 8),
    ("nofollow", 1 << 9),
    ("cloexec", 1 << 10),
];

fn access_bit(name: &str) -> u32 {
    ACCESS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, b)| *b)
}

/// The access names each operation other than an open grants to its `path`: a rename, link or
/// symlink into a name creates and writes that name (as `O_CREAT|O_WRONLY` would), a truncate
/// writes and truncates it, a mkdir creates a directory. Unlink, rmdir, chmod, chown and exec
/// grant none (match them by `op`: an exec's `path` is the program it ran, not a file it
/// accessed). Their `flags` are the operation's, never `O_*`.
pub(super) const OP_ACCESS: &[(Op, &[&str])] = &[
    (Op::Rename, &["write", "create"]),
    (Op::Link, &["write", "create"]),
    (Op::Symlink, &["write", "create"]),
    (Op::Truncate, &["write", "truncate"]),
    (Op::Mkdir, &["create", "directory"]),
];

/// What an event asks for: an open's from its flags (the host's `O_*` values, which is what the
/// kernel recorded) and its syscall (`creat` implies `O_CREAT|O_WRONLY|O_TRUNC`); another
/// operation's from `OP_ACCESS`.
pub(super) fn access_of(ev: &Event) -> u32 {
    if ev.op != Op::Open {
        return OP_ACCESS
            .iter()
            .find(|(op, _)| *op == ev.op)
            .map_or(0, |(_, names)| {
                names.iter().fold(0, |a, n| a | access_bit(n))
            });
    }
    let mut flags = ev.flags;
    if matches!(ev.syscall, Syscall::Creat | Syscall::Ia32Creat) {
        flags |= (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64;
    }
    let has = |f: libc::c_int| flags & f as u64 == f as u64;
    let mut a = 0;
    let o_path = has(libc::O_PATH);
    let acc = flags & libc::O_ACCMODE as u64;
    if !o_path {
        // O_ACCMODE 3 is Linux's "no read, no write" (ioctl only).
        if acc == libc::O_RDONLY as u64 || acc == libc::O_RDWR as u64 {
            a |= access_bit("read");
        }
        if acc == libc::O_WRONLY as u64 || acc == libc::O_RDWR as u64 {
            a |= access_bit("write");
        }
    }
    // O_TMPFILE includes O_DIRECTORY's bit: a tmpfile open is not a directory open.
    let tmpfile = has(libc::O_TMPFILE);
    for (f, name) in [
        (libc::O_CREAT, "create"),
        (libc::O_TRUNC, "truncate"),
        (libc::O_APPEND, "append"),
        (libc::O_EXCL, "exclusive"),
        (libc::O_PATH, "path"),
        (libc::O_NOFOLLOW, "nofollow"),
        (libc::O_CLOEXEC, "cloexec"),
    ] {
        if has(f) {
            a |= access_bit(name);
        }
    }
    if tmpfile {
        a |= access_bit("tmpfile");
    } else if has(libc::O_DIRECTORY) {
        a |= access_bit("directory");
    }
    a
}

/// Whether an event writes its `path`: an open for writing, or an operation that writes the name
/// (`OP_ACCESS`).
pub fn writes(ev: &Event) -> bool {
    access_of(ev) & access_bit("write") != 0
}

/// The `access:` names that an event asks for, comma-separated (for tables and SQL).
pub fn access_names(ev: &Event) -> String {
    let bits = access_of(ev);
    ACCESS
        .iter()
        .filter(|(_, b)| bits & b != 0)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operation's `flags` are `RENAME_*` or `AT_*` bits, never read as open flags (`rmdir`'s
    /// `AT_REMOVEDIR` is `O_TRUNC`'s value, `RENAME_NOREPLACE` `O_WRONLY`'s): its access is its
    /// op's, the same in the `access` column as in rules.
    #[test]
    fn an_operations_access_is_its_ops_never_its_flags() {
        let op = |op, flags| Event {
            op,
            flags,
            ..Event::default()
        };
        assert_eq!(access_names(&op(Op::Rmdir, libc::AT_REMOVEDIR as u64)), "");
        assert_eq!(access_names(&op(Op::Unlink, libc::O_RDWR as u64)), "");
        assert_eq!(access_names(&op(Op::Chmod, 0)), "");
        assert_eq!(access_names(&op(Op::Chown, 0)), "");
        for o in [Op::Rename, Op::Link, Op::Symlink] {
            assert_eq!(access_names(&op(o, 0)), "write,create", "{o:?}");
            assert_eq!(access_names(&op(o, 1)), "write,create", "{o:?}");
        }
        assert_eq!(access_names(&op(Op::Truncate, 0)), "write,truncate");
        assert_eq!(access_names(&op(Op::Mkdir, 0)), "create,directory");
        let open = op(Op::Open, libc::AT_REMOVEDIR as u64);
        assert_eq!(access_names(&open), "read,truncate");
    }
}
