//! Live capture of the file operations (issue #27): what the shell's tools do to files (rename,
//! link, symlink, unlink, rmdir, mkdir, chmod, chown, truncate) is recorded by the real binary
//! with the real probes, each with its op, both names where it has two, its executable and its
//! result, then read back from the store. Root only; every check filters by the pids of the
//! processes these tests run and by their own temp directories.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use open_forensics::event::{Event, Op, PathSource, Syscall};

use crate::capture_paths::{cstr, in_child, Step};
use crate::helpers::{self, read_store, TempStore};
use crate::recorder::Recorder;

/// A test's store and its own canonical temp directory (None: no live capture here).
struct Scene {
    store: TempStore,
    dir: PathBuf,
    _work: tempfile::TempDir,
}

fn scene(test: &str) -> Option<Scene> {
    if !helpers::live_capture_available(test) {
        return None;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let dir = std::fs::canonicalize(work.path()).expect("canonical temp dir");
    Some(Scene {
        store: TempStore::new(),
        dir,
        _work: work,
    })
}

/// The non-open events of the processes `pids`, in store order.
fn ops_of(store: &Path, pids: &[u32]) -> Vec<Event> {
    read_store(store)
        .into_iter()
        .filter(|e| pids.contains(&e.pid) && e.op != Op::Open)
        .collect()
}

/// Stops the recorder; asserts the kernel loaded every program it planned (a rejected fast
/// program falls back to its compat twin with only a warning, which would hide a regression of
/// the operations' code on this kernel).
fn stopped(rec: Recorder) {
    let log = rec.stop();
    assert!(!log.contains("verifier rejected"), "{log}");
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

fn old(e: &Event) -> Option<String> {
    e.old_path.as_ref().map(|p| p.lossy().into_owned())
}

fn exe(e: &Event) -> String {
    e.process
        .as_ref()
        .and_then(|p| p.exe.as_ref())
        .map(|x| x.lossy().into_owned())
        .unwrap_or_default()
}

/// The one event of `op` on `path` (asserts there is exactly one).
fn one<'a>(evs: &'a [Event], op: Op, path: &Path) -> &'a Event {
    let found: Vec<&Event> = evs
        .iter()
        .filter(|e| e.op == op && e.path.as_bytes() == path.as_os_str().as_bytes())
        .collect();
    assert_eq!(found.len(), 1, "{op} {}: {evs:#?}", path.display());
    found[0]
}

/// The shell's tools, each as an administrator (or an intruder) would run it: every operation
/// is recorded with its op, its paths (the new name as `path`, the old one as `old_path`), the
/// tool's executable and its result; `: > f` stays what it is, an open with O_TRUNC.
#[test]
fn the_shells_file_tools_are_recorded_with_op_paths_exe_and_result() {
    let Some(sc) = scene("the_shells_file_tools_are_recorded_with_op_paths_exe_and_result") else {
        return;
    };
    let d = &sc.dir;
    std::fs::write(d.join("conf"), "a=1\n").expect("write");
    std::fs::write(d.join("a"), "x").expect("write");
    std::fs::write(d.join("f"), "data").expect("write");
    let script = "set -e
        sed -i s/1/2/ conf
        mv a b
        cp b /tmp/of-lifecycle-$$ && mv /tmp/of-lifecycle-$$ staged
        ln b hard
        ln -s b soft
        rm hard
        mkdir -p x/y
        rmdir x/y
        chmod u+s f
        chown 1:2 f
        chown :3 f
        truncate -s 0 f
        : > f";
    let rec = Recorder::start(&sc.store, &[]);
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(d)
        .spawn()
        .expect("sh");
    let sh = child.id();
    assert!(child.wait().expect("wait").success());
    stopped(rec);

    let all: Vec<Event> = read_store(&sc.store.dir)
        .into_iter()
        .filter(|e| e.pid == sh || e.ppid == sh)
        .collect();
    let evs: Vec<Event> = all.iter().filter(|e| e.op != Op::Open).cloned().collect();

    // sed -i writes a temp file in the same directory and renames it over the target.
    let sed = one(&evs, Op::Rename, &d.join("conf"));
    assert_eq!(exe(sed), "/usr/bin/sed");
    let tmp = old(sed).expect("sed's temp file");
    assert!(tmp.starts_with(&s(&d.join("sed"))), "{tmp}");
    assert_eq!(sed.ret, 0);

    let mv = one(&evs, Op::Rename, &d.join("b"));
    assert_eq!(old(mv), Some(s(&d.join("a"))));
    assert_eq!((exe(mv).as_str(), mv.ret), ("/usr/bin/mv", 0));
    assert_eq!(mv.path_source, PathSource::Cwd);
    assert_eq!(mv.raw_path.as_bytes(), b"b");

    let staged = one(&evs, Op::Rename, &d.join("staged"));
    let from = old(staged).expect("old name");
    assert!(from.starts_with("/tmp/of-lifecycle-"), "{from}");

    let ln = one(&evs, Op::Link, &d.join("hard"));
    assert_eq!(
        (old(ln), exe(ln)),
        (Some(s(&d.join("b"))), "/usr/bin/ln".into())
    );
    let soft = one(&evs, Op::Symlink, &d.join("soft"));
    // The target exactly as given, not resolved.
    assert_eq!(old(soft).as_deref(), Some("b"));
    let rm = one(&evs, Op::Unlink, &d.join("hard"));
    assert_eq!(
        (exe(rm).as_str(), rm.ret, old(rm)),
        ("/usr/bin/rm", 0, None)
    );

    let mk = one(&evs, Op::Mkdir, &d.join("x/y"));
    assert_eq!((mk.mode, mk.ret), (0o777, 0));
    one(&evs, Op::Mkdir, &d.join("x"));
    let rd = one(&evs, Op::Rmdir, &d.join("x/y"));
    assert_eq!(exe(rd), "/usr/bin/rmdir");

    let chmods: Vec<&Event> = evs
        .iter()
        .filter(|e| e.op == Op::Chmod && e.path.as_bytes() == d.join("f").as_os_str().as_bytes())
        .collect();
    assert!(
        chmods.iter().any(|e| e.mode & 0o4000 != 0 && e.ret == 0),
        "{chmods:#?}"
    );
    let chowns: Vec<(Option<u32>, Option<u32>)> = evs
        .iter()
        .filter(|e| e.op == Op::Chown && exe(e) == "/usr/bin/chown")
        .map(|e| (e.new_uid, e.new_gid))
        .collect();
    assert_eq!(chowns, [(Some(1), Some(2)), (None, Some(3))]);
    // sed -i gives its temp file the target's owner, through the fd.
    assert!(evs.iter().any(|e| e.op == Op::Chown
        && exe(e) == "/usr/bin/sed"
        && e.path_source == PathSource::File));

    let tr = one(&evs, Op::Truncate, &d.join("f"));
    assert_eq!((tr.length, tr.ret), (Some(0), 0));
    // truncate(1) opens the file and truncates the descriptor: the fd's file, walked.
    if tr.syscall == Syscall::Ftruncate {
        assert_eq!(tr.path_source, PathSource::File);
        assert!(tr.file.is_some());
    }

    // `: > f` is the shell's own open with O_TRUNC, not an operation.
    assert!(
        all.iter().any(|e| e.pid == sh
            && e.op == Op::Open
            && e.flags & libc::O_TRUNC as u64 != 0
            && e.path.as_bytes() == d.join("f").as_os_str().as_bytes()),
        "no O_TRUNC open of f by the shell"
    );
}

/// Calls that fail are recorded with their errno: a rename onto a non-empty directory
/// (ENOTEMPTY), an unlink of a missing file (ENOENT), an rmdir of a file (ENOTDIR).
#[test]
fn failed_operations_are_recorded_with_their_errno() {
    let Some(sc) = scene("failed_operations_are_recorded_with_their_errno") else {
        return;
    };
    let d = &sc.dir;
    std::fs::create_dir(d.join("src")).expect("mkdir");
    std::fs::create_dir_all(d.join("full/inside")).expect("mkdir");
    std::fs::write(d.join("file"), "").expect("write");
    let rec = Recorder::start(&sc.store, &[]);
    // SAFETY: plain syscalls on NUL-terminated paths owned here.
    let rets = unsafe {
        [
            libc::rename(cstr(d.join("src")).as_ptr(), cstr(d.join("full")).as_ptr()),
            libc::unlink(cstr(d.join("missing")).as_ptr()),
            libc::rmdir(cstr(d.join("file")).as_ptr()),
        ]
    };
    stopped(rec);
    assert_eq!(rets, [-1, -1, -1]);
    let evs = ops_of(&sc.store.dir, &[std::process::id()]);
    let mv = one(&evs, Op::Rename, &d.join("full"));
    assert_eq!(
        (mv.ret, old(mv), mv.syscall),
        (
            -i64::from(libc::ENOTEMPTY),
            Some(s(&d.join("src"))),
            Syscall::Rename
        )
    );
    let rm = one(&evs, Op::Unlink, &d.join("missing"));
    assert_eq!(
        (rm.ret, rm.path_source),
        (-i64::from(libc::ENOENT), PathSource::Raw)
    );
    let rd = one(&evs, Op::Rmdir, &d.join("file"));
    assert_eq!(rd.ret, -i64::from(libc::ENOTDIR));
}

/// Relative names resolve against what the call resolved them against: a renameat's dirfds
/// (each name its own), and a rename's cwd (in a child: the cwd is the whole process's).
#[test]
fn relative_renames_resolve_against_their_dirfds_and_the_cwd() {
    let Some(sc) = scene("relative_renames_resolve_against_their_dirfds_and_the_cwd") else {
        return;
    };
    let d = &sc.dir;
    for sub in ["from", "to", "cwd"] {
        std::fs::create_dir(d.join(sub)).expect("mkdir");
    }
    std::fs::write(d.join("from/a"), "").expect("write");
    std::fs::write(d.join("cwd/c"), "").expect("write");
    let dirfd = |p: &str| {
        // SAFETY: open of a NUL-terminated path; closed below.
        unsafe { libc::open(cstr(d.join(p)).as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) }
    };
    let (from, to) = (dirfd("from"), dirfd("to"));
    assert!(from >= 0 && to >= 0);
    let rec = Recorder::start(&sc.store, &[]);
    // SAFETY: renameat on two open directory fds and NUL-terminated names.
    let r = unsafe { libc::renameat(from, c"a".as_ptr(), to, c"b".as_ptr()) };
    let child = in_child(&[
        Step::Chdir(cstr(d.join("cwd"))),
        Step::Rename(c"c".into(), c"../to/d".into()),
    ]);
    stopped(rec);
    // SAFETY: closing the fds opened above.
    unsafe {
        libc::close(from);
        libc::close(to);
    }
    assert_eq!(r, 0);
    let evs = ops_of(&sc.store.dir, &[std::process::id(), child]);
    let at = one(&evs, Op::Rename, &d.join("to/b"));
    assert_eq!(old(at), Some(s(&d.join("from/a"))));
    assert_eq!((at.path_source, at.dirfd), (PathSource::Dirfd, Some(to)));
    assert_eq!(at.syscall, Syscall::Renameat);
    let cwd = one(&evs, Op::Rename, &d.join("to/d"));
    assert_eq!(old(cwd), Some(s(&d.join("cwd/c"))));
    assert_eq!((cwd.path_source, cwd.pid), (PathSource::Cwd, child));
}

/// A chrooted process's unlink of `/victim` is stored under the file's host path, with the
/// process's root: a chroot renames nothing.
#[test]
fn a_chrooted_unlink_is_stored_under_its_host_path() {
    let Some(sc) = scene("a_chrooted_unlink_is_stored_under_its_host_path") else {
        return;
    };
    let d = &sc.dir;
    std::fs::write(d.join("victim"), "").expect("write");
    let rec = Recorder::start(&sc.store, &[]);
    let child = in_child(&[
        Step::Chroot(cstr(d)),
        Step::Chdir(c"/".into()),
        Step::Unlink(c"/victim".into()),
    ]);
    stopped(rec);
    let evs = ops_of(&sc.store.dir, &[child]);
    let rm = one(&evs, Op::Unlink, &d.join("victim"));
    assert_eq!((rm.ret, rm.raw_path.as_bytes()), (0, &b"/victim"[..]));
    assert_eq!(rm.path_source, PathSource::Root);
    assert!(!d.join("victim").exists());
}

/// Through the 32-bit entry (`int $0x80`), which any 64-bit program can use: chmod and unlink
/// are recorded, named `ia32_*`.
#[test]
fn operations_through_the_32_bit_entry_are_recorded() {
    let Some(sc) = scene("operations_through_the_32_bit_entry_are_recorded") else {
        return;
    };
    use crate::record::raw_opens::int80;
    let file = sc.dir.join("ia32.txt");
    std::fs::write(&file, "").expect("write");
    let low = crate::record::raw_opens::LowPath::new(file.as_os_str().as_bytes());
    let ptr = low.ptr();
    let rec = Recorder::start(&sc.store, &[]);
    let chmod = int80(15, ptr, 0o4700, 0, 0); // ia32 chmod
    let unlink = int80(10, ptr, 0, 0, 0); // ia32 unlink
    stopped(rec);
    drop(low);
    assert_eq!((chmod, unlink), (0, 0));
    let evs = ops_of(&sc.store.dir, &[std::process::id()]);
    let c = one(&evs, Op::Chmod, &file);
    assert_eq!((c.syscall, c.mode), (Syscall::Ia32Chmod, 0o4700));
    assert_eq!(one(&evs, Op::Unlink, &file).syscall, Syscall::Ia32Unlink);
}

/// Submits one io_uring request and returns its result.
fn uring(ring: &mut io_uring::IoUring, sqe: io_uring::squeue::Entry) -> i32 {
    // SAFETY: the entry's pointers (NUL-terminated names) outlive the wait below.
    unsafe { ring.submission().push(&sqe).expect("submission queue full") };
    ring.submit_and_wait(1).expect("io_uring submit");
    ring.completion().next().expect("a completion").result()
}

/// io_uring's own renameat, unlinkat, mkdirat, symlinkat and linkat never pass through a
/// syscall: each is recorded from its submission and completion, named `io_uring`, by the
/// submitter, with its names and result.
#[test]
fn io_uring_file_operations_are_recorded() {
    let Some(sc) = scene("io_uring_file_operations_are_recorded") else {
        return;
    };
    use io_uring::{opcode, types::Fd};
    let d = &sc.dir;
    std::fs::write(d.join("a"), "").expect("write");
    let name = |n: &str| cstr(d.join(n));
    let (a, b, c, l, dir, gone) = (
        name("a"),
        name("b"),
        name("c"),
        name("l"),
        name("dir"),
        name("gone"),
    );
    let cwd = Fd(libc::AT_FDCWD);
    let mut ring = io_uring::IoUring::new(4).expect("io_uring_setup");
    let rec = Recorder::start(&sc.store, &[]);
    let rets = [
        uring(
            &mut ring,
            opcode::RenameAt::new(cwd, a.as_ptr(), cwd, b.as_ptr()).build(),
        ),
        uring(
            &mut ring,
            opcode::LinkAt::new(cwd, b.as_ptr(), cwd, c.as_ptr()).build(),
        ),
        uring(
            &mut ring,
            opcode::SymlinkAt::new(cwd, c"b".as_ptr(), l.as_ptr()).build(),
        ),
        uring(
            &mut ring,
            opcode::MkDirAt::new(cwd, dir.as_ptr()).mode(0o750).build(),
        ),
        uring(
            &mut ring,
            opcode::UnlinkAt::new(cwd, dir.as_ptr())
                .flags(libc::AT_REMOVEDIR)
                .build(),
        ),
        uring(&mut ring, opcode::UnlinkAt::new(cwd, gone.as_ptr()).build()),
    ];
    stopped(rec);
    assert_eq!(rets, [0, 0, 0, 0, 0, -libc::ENOENT]);
    let evs: Vec<Event> = ops_of(&sc.store.dir, &[std::process::id()])
        .into_iter()
        .filter(|e| e.syscall == Syscall::IoUring)
        .collect();
    let mv = one(&evs, Op::Rename, &d.join("b"));
    assert_eq!(old(mv), Some(s(&d.join("a"))));
    assert_eq!(
        old(one(&evs, Op::Link, &d.join("c"))),
        Some(s(&d.join("b")))
    );
    assert_eq!(
        old(one(&evs, Op::Symlink, &d.join("l"))).as_deref(),
        Some("b")
    );
    assert_eq!(one(&evs, Op::Mkdir, &d.join("dir")).mode, 0o750);
    one(&evs, Op::Rmdir, &d.join("dir"));
    assert_eq!(
        one(&evs, Op::Unlink, &d.join("gone")).ret,
        -i64::from(libc::ENOENT)
    );
}
