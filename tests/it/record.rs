//! Live capture (issue #3): every route to an open, recorded by the real binary with the real
//! probes, then read back from the store. Root only; other processes run on the machine (and
//! other tests in this process), so every check filters by our own pids and our own temp paths.

#[path = "../../fixtures/raw_opens.rs"]
pub(crate) mod raw_opens;

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use open_forensics::event::{Event, PathSource, Syscall};

use crate::helpers::{self, read_store, TempStore};
use crate::nobody::Nobody;
use crate::recorder::Recorder;

fn cstr(p: impl AsRef<[u8]>) -> CString {
    CString::new(p.as_ref()).expect("no NUL in test paths")
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

fn errno() -> i64 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64
}

/// A raw syscall's result as the kernel returned it: the fd or minus errno.
fn sys(ret: libc::c_long) -> i64 {
    if ret < 0 {
        -errno()
    } else {
        ret
    }
}

fn close(fd: i64) {
    if fd >= 0 {
        // SAFETY: closing an fd this test opened.
        unsafe { libc::close(fd as i32) };
    }
}

/// What one open should look like in the store.
#[derive(Debug, Clone)]
struct Expect {
    what: &'static str,
    pid: u32,
    tid: u32,
    ppid: u32,
    uid: u32,
    syscall: Syscall,
    raw: Vec<u8>,
    path: Vec<u8>,
    source: PathSource,
    dirfd: Option<i32>,
    flags: u64,
    mode: u32,
    ret: i64,
    truncated: bool,
}

struct Ctx {
    pid: u32,
    ppid: u32,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    fn expect(
        &self,
        what: &'static str,
        syscall: Syscall,
        raw: &[u8],
        path: &[u8],
        source: PathSource,
        dirfd: Option<i32>,
        flags: i32,
        mode: u32,
        ret: i64,
    ) -> Expect {
        Expect {
            what,
            pid: self.pid,
            tid: gettid(),
            ppid: self.ppid,
            uid: 0,
            syscall,
            raw: raw.to_vec(),
            path: path.to_vec(),
            source,
            dirfd,
            flags: flags as u64,
            mode,
            ret,
            truncated: false,
        }
    }
}

fn join(dir: &Path, name: &[u8]) -> Vec<u8> {
    let mut v = dir.as_os_str().as_bytes().to_vec();
    v.push(b'/');
    v.extend_from_slice(name);
    v
}

fn openat(dirfd: i32, path: &[u8], flags: i32, mode: u32) -> i64 {
    let c = cstr(path);
    // SAFETY: a NUL-terminated path that outlives the call.
    sys(unsafe { libc::syscall(libc::SYS_openat, dirfd, c.as_ptr(), flags, mode) })
}

/// The forked child's part: opens as a child, relative to its cwd, and denied as nobody.
/// Only raw syscalls between fork and _exit (the parent is multi-threaded).
struct ChildPlan {
    child_file: CString,
    sub_dir: CString,
    rel_ok: CString,
    rel_missing: CString,
    secret: CString,
}

/// Runs the plan in a forked child; returns its pid and the results of its four opens (the
/// child inherits our fds, so its fd numbers are not predictable).
fn run_child(plan: &ChildPlan) -> (u32, [i64; 4]) {
    let mut pipe = [0i32; 2];
    // SAFETY: a two-int array for pipe(2) to fill.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: the child only makes raw syscalls on memory prepared before the fork, then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: as above; every pointer is a CString owned by `plan` or our stack array.
        unsafe {
            let open = |p: &CString| {
                let r = libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD,
                    p.as_ptr(),
                    libc::O_RDONLY,
                    0,
                );
                if r < 0 {
                    -(*libc::__errno_location() as i64)
                } else {
                    r
                }
            };
            let mut res = [0i64; 4];
            res[0] = open(&plan.child_file);
            if libc::syscall(libc::SYS_chdir, plan.sub_dir.as_ptr()) != 0 {
                libc::_exit(11);
            }
            res[1] = open(&plan.rel_ok);
            res[2] = open(&plan.rel_missing);
            if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setgid, 65534) != 0
                || libc::syscall(libc::SYS_setuid, 65534) != 0
            {
                libc::_exit(14);
            }
            res[3] = open(&plan.secret);
            libc::syscall(
                libc::SYS_write,
                pipe[1],
                res.as_ptr(),
                std::mem::size_of_val(&res),
            );
            libc::_exit(0);
        }
    }
    let mut res = [0i64; 4];
    // SAFETY: reading into our own array from the pipe created above, then reaping the child.
    let n = unsafe {
        libc::close(pipe[1]);
        let n = libc::read(
            pipe[0],
            res.as_mut_ptr().cast(),
            std::mem::size_of_val(&res),
        );
        libc::close(pipe[0]);
        n
    };
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child workload failed: status {status:#x}"
    );
    assert_eq!(n as usize, std::mem::size_of_val(&res), "child results");
    (pid as u32, res)
}

fn io_uring_open(ring: &mut io_uring::IoUring, path: &CString, flags: i32) -> i64 {
    let sqe = io_uring::opcode::OpenAt::new(io_uring::types::Fd(libc::AT_FDCWD), path.as_ptr())
        .flags(flags)
        .build()
        .user_data(7);
    // SAFETY: the path outlives the submission, which completes before we return.
    unsafe { ring.submission().push(&sqe).expect("submission queue full") };
    ring.submit_and_wait(1).expect("io_uring submit");
    let cqe = ring.completion().next().expect("a completion");
    i64::from(cqe.result())
}

/// Opens a file through every route while `record` runs, then finds each open in the store with
/// the right process, thread, parent, user, syscall, paths, flags and result. By default the
/// syscalls are seen by one probe on every syscall's exit that picks the opens by number.
#[test]
fn record_captures_every_route_to_an_open() {
    if !helpers::live_capture_available("record_captures_every_route_to_an_open") {
        return;
    }
    every_route_is_recorded(&[]);
}

/// The same with `--no-ia32`, which loads one syscalls:* tracepoint per open syscall instead:
/// each of them must be attached and decode as the default probe's records do.
#[test]
fn record_without_the_32_bit_entry_captures_every_other_route() {
    if !helpers::live_capture_available(
        "record_without_the_32_bit_entry_captures_every_other_route",
    ) {
        return;
    }
    every_route_is_recorded(&["--no-ia32"]);
}

fn every_route_is_recorded(record_args: &[&str]) {
    let store = TempStore::new();
    let work = tempfile::tempdir().expect("tempdir");
    let t = std::fs::canonicalize(work.path()).expect("canonical tempdir");
    let tb = |name: &str| join(&t, name.as_bytes());
    for f in [
        "abs.txt",
        "open.txt",
        "openat2.txt",
        "dirfd.txt",
        "child.txt",
        "rel.txt",
        "thread.txt",
        "uring.txt",
    ] {
        std::fs::write(t.join(f), "x").expect("write a test file");
    }
    std::fs::create_dir(t.join("sub")).expect("mkdir sub");
    std::fs::write(t.join("secret.txt"), "s").expect("write secret");
    std::fs::set_permissions(t.join("secret.txt"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod secret");
    let weird: &[u8] = b"we ird\nname\x01\x7f.txt";
    std::fs::write(t.join(std::ffi::OsStr::from_bytes(weird)), "w").expect("write the weird name");
    let long_rel = format!(
        "{}/{}/{}.txt",
        "d".repeat(100),
        "e".repeat(100),
        "f".repeat(100)
    );
    std::fs::create_dir_all(t.join(&long_rel).parent().expect("parent")).expect("mkdir long");
    std::fs::write(t.join(&long_rel), "l").expect("write long");
    // Deeper than the kernel keeps (4096 bytes): 20 levels of 240-byte names, reached by dirfd.
    let mut deep_fd = openat(
        libc::AT_FDCWD,
        t.as_os_str().as_bytes(),
        libc::O_DIRECTORY,
        0,
    );
    assert!(deep_fd >= 0);
    let level = "g".repeat(240);
    for _ in 0..20 {
        let c = cstr(&level);
        // SAFETY: mkdirat on an fd we hold with a NUL-terminated name.
        assert_eq!(
            unsafe { libc::mkdirat(deep_fd as i32, c.as_ptr(), 0o700) },
            0
        );
        let next = openat(deep_fd as i32, level.as_bytes(), libc::O_DIRECTORY, 0);
        assert!(next >= 0);
        close(deep_fd);
        deep_fd = next;
    }
    let leaf = openat(
        deep_fd as i32,
        b"leaf.txt",
        libc::O_CREAT | libc::O_WRONLY,
        0o600,
    );
    assert!(leaf >= 0);
    close(leaf);

    let rec = Recorder::start(&store, record_args);
    let before = open_forensics::timespec::now_ns();
    // SAFETY: getpid/getppid have no preconditions.
    let ctx = Ctx {
        pid: unsafe { libc::getpid() } as u32,
        ppid: unsafe { libc::getppid() } as u32,
    };
    let mut want: Vec<Expect> = Vec::new();
    let cloexec = libc::O_RDONLY | libc::O_CLOEXEC;

    // Absolute, with openat.
    let ret = openat(libc::AT_FDCWD, &tb("abs.txt"), cloexec, 0);
    assert!(ret >= 0);
    want.push(ctx.expect(
        "absolute openat",
        Syscall::Openat,
        &tb("abs.txt"),
        &tb("abs.txt"),
        PathSource::File,
        Some(-100),
        cloexec,
        0,
        ret,
    ));
    close(ret);

    // open(2) itself.
    let c = cstr(tb("open.txt"));
    // SAFETY: NUL-terminated path outliving the call.
    let ret = sys(unsafe { libc::syscall(libc::SYS_open, c.as_ptr(), libc::O_RDONLY, 0) });
    assert!(ret >= 0);
    want.push(ctx.expect(
        "open(2)",
        Syscall::Open,
        &tb("open.txt"),
        &tb("open.txt"),
        PathSource::File,
        None,
        libc::O_RDONLY,
        0,
        ret,
    ));
    close(ret);

    // creat(2): recorded with the flags it implies.
    let c = cstr(tb("creat.txt"));
    // SAFETY: as above.
    let ret = sys(unsafe { libc::syscall(libc::SYS_creat, c.as_ptr(), 0o640) });
    assert!(ret >= 0);
    want.push(ctx.expect(
        "creat(2)",
        Syscall::Creat,
        &tb("creat.txt"),
        &tb("creat.txt"),
        PathSource::File,
        None,
        libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
        0o640,
        ret,
    ));
    close(ret);

    // openat2(2): flags and mode from struct open_how.
    // struct open_how (UAPI): flags, mode, resolve.
    let how: [u64; 3] = [cloexec as u64, 0, 0];
    let c = cstr(tb("openat2.txt"));
    // SAFETY: a valid open_how and path for the duration of the call.
    let ret = sys(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c.as_ptr(),
            how.as_ptr(),
            std::mem::size_of_val(&how),
        )
    });
    assert!(ret >= 0, "openat2: {ret}");
    want.push(ctx.expect(
        "openat2",
        Syscall::Openat2,
        &tb("openat2.txt"),
        &tb("openat2.txt"),
        PathSource::File,
        Some(-100),
        cloexec,
        0,
        ret,
    ));
    close(ret);

    // Relative to a dirfd, succeeding and failing.
    let dfd = openat(
        libc::AT_FDCWD,
        t.as_os_str().as_bytes(),
        libc::O_DIRECTORY | libc::O_RDONLY,
        0,
    );
    assert!(dfd >= 0);
    want.push(ctx.expect(
        "the dirfd itself",
        Syscall::Openat,
        t.as_os_str().as_bytes(),
        t.as_os_str().as_bytes(),
        PathSource::File,
        Some(-100),
        libc::O_DIRECTORY | libc::O_RDONLY,
        0,
        dfd,
    ));
    let ret = openat(dfd as i32, b"dirfd.txt", libc::O_RDONLY, 0);
    assert!(ret >= 0);
    want.push(ctx.expect(
        "relative to a dirfd",
        Syscall::Openat,
        b"dirfd.txt",
        &tb("dirfd.txt"),
        PathSource::File,
        Some(dfd as i32),
        libc::O_RDONLY,
        0,
        ret,
    ));
    close(ret);
    let ret = openat(dfd as i32, b"missing-dirfd.txt", libc::O_RDONLY, 0);
    assert_eq!(ret, -(libc::ENOENT as i64));
    want.push(ctx.expect(
        "failing relative to a dirfd",
        Syscall::Openat,
        b"missing-dirfd.txt",
        &tb("missing-dirfd.txt"),
        PathSource::Dirfd,
        Some(dfd as i32),
        libc::O_RDONLY,
        0,
        ret,
    ));

    // Failing absolute (ENOENT).
    let ret = openat(libc::AT_FDCWD, &tb("does-not-exist"), libc::O_RDONLY, 0);
    assert_eq!(ret, -(libc::ENOENT as i64));
    want.push(ctx.expect(
        "ENOENT",
        Syscall::Openat,
        &tb("does-not-exist"),
        &tb("does-not-exist"),
        PathSource::Raw,
        Some(-100),
        libc::O_RDONLY,
        0,
        ret,
    ));

    // A write with O_CREAT|O_TRUNC.
    let fl = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
    let ret = openat(libc::AT_FDCWD, &tb("new.txt"), fl, 0o640);
    assert!(ret >= 0);
    want.push(ctx.expect(
        "O_CREAT|O_TRUNC",
        Syscall::Openat,
        &tb("new.txt"),
        &tb("new.txt"),
        PathSource::File,
        Some(-100),
        fl,
        0o640,
        ret,
    ));
    close(ret);

    // Spaces, a newline and control bytes.
    let ret = openat(libc::AT_FDCWD, &join(&t, weird), libc::O_RDONLY, 0);
    assert!(ret >= 0);
    want.push(ctx.expect(
        "odd bytes",
        Syscall::Openat,
        &join(&t, weird),
        &join(&t, weird),
        PathSource::File,
        Some(-100),
        libc::O_RDONLY,
        0,
        ret,
    ));
    close(ret);

    // Longer than 256 bytes.
    let ret = openat(libc::AT_FDCWD, &tb(&long_rel), libc::O_RDONLY, 0);
    assert!(ret >= 0);
    want.push(ctx.expect(
        "> 256 bytes",
        Syscall::Openat,
        &tb(&long_rel),
        &tb(&long_rel),
        PathSource::File,
        Some(-100),
        libc::O_RDONLY,
        0,
        ret,
    ));
    close(ret);

    // Longer than the kernel keeps: the walk is cut, the leaf end kept and the cut marked.
    let ret = openat(deep_fd as i32, b"leaf.txt", libc::O_RDONLY, 0);
    assert!(ret >= 0);
    let mut deep = ctx.expect(
        "> 4096 bytes resolved",
        Syscall::Openat,
        b"leaf.txt",
        format!("{level}/leaf.txt").as_bytes(),
        PathSource::File,
        Some(deep_fd as i32),
        libc::O_RDONLY,
        0,
        ret,
    );
    deep.truncated = true;
    want.push(deep);
    close(ret);
    // A raw path longer than PATH_MAX: refused, kept cut to 4095 bytes.
    let huge = tb(&"h/".repeat(2100));
    let ret = openat(libc::AT_FDCWD, &huge, libc::O_RDONLY, 0);
    assert_eq!(ret, -(libc::ENAMETOOLONG as i64));
    let mut e = ctx.expect(
        "> 4096 bytes raw",
        Syscall::Openat,
        &huge[..4095],
        &huge[..4095],
        PathSource::Raw,
        Some(-100),
        libc::O_RDONLY,
        0,
        ret,
    );
    e.truncated = true;
    want.push(e);

    // open_by_handle_at: no path, resolved from the opened file.
    {
        let c = cstr(tb("abs.txt"));
        let ret = sys(raw_opens::open_by_handle(&c, dfd as i32, libc::O_RDONLY));
        assert!(ret >= 0, "open_by_handle_at: {ret}");
        want.push(ctx.expect(
            "open_by_handle_at",
            Syscall::OpenByHandleAt,
            b"",
            &tb("abs.txt"),
            PathSource::File,
            Some(dfd as i32),
            libc::O_RDONLY,
            0,
            ret,
        ));
        close(ret);
    }
    close(dfd);
    close(deep_fd);

    // From a thread: tid != pid.
    let thread_path = tb("thread.txt");
    let ctx_ref = &ctx;
    let (tid, e) = std::thread::scope(|s| {
        s.spawn(|| {
            let ret = openat(libc::AT_FDCWD, &thread_path, libc::O_RDONLY, 0);
            assert!(ret >= 0);
            close(ret);
            (
                gettid(),
                ctx_ref.expect(
                    "from a thread",
                    Syscall::Openat,
                    &thread_path,
                    &thread_path,
                    PathSource::File,
                    Some(-100),
                    libc::O_RDONLY,
                    0,
                    ret,
                ),
            )
        })
        .join()
        .expect("thread")
    });
    assert_ne!(tid, ctx.pid);
    want.push(e);

    // io_uring, succeeding and failing.
    let mut ring = io_uring::IoUring::new(4).expect("io_uring_setup");
    let c = cstr(tb("uring.txt"));
    let ret = io_uring_open(&mut ring, &c, cloexec);
    assert!(ret >= 0, "io_uring openat: {ret}");
    // The kernel's build_open_how adds O_LARGEFILE (0o100000 in the kernel's ABI, 0 in libc's) on
    // 64-bit: the record holds the flags the open actually ran with.
    let uring_flags = cloexec | 0o100000;
    want.push(ctx.expect(
        "io_uring",
        Syscall::IoUring,
        &tb("uring.txt"),
        &tb("uring.txt"),
        PathSource::File,
        Some(-100),
        uring_flags,
        0,
        ret,
    ));
    close(ret);
    let c = cstr(tb("uring-missing.txt"));
    let ret = io_uring_open(&mut ring, &c, cloexec);
    assert_eq!(ret, -(libc::ENOENT as i64));
    want.push(ctx.expect(
        "io_uring ENOENT",
        Syscall::IoUring,
        &tb("uring-missing.txt"),
        &tb("uring-missing.txt"),
        PathSource::Raw,
        Some(-100),
        uring_flags,
        0,
        ret,
    ));
    drop(ring);

    // A child: plain, relative to its cwd (ok and ENOENT), and EACCES as nobody.
    let plan = ChildPlan {
        child_file: cstr(tb("child.txt")),
        sub_dir: cstr(tb("sub")),
        rel_ok: cstr("../rel.txt"),
        rel_missing: cstr("nope/missing.txt"),
        secret: cstr(tb("secret.txt")),
    };
    let (child, res) = run_child(&plan);
    assert!(res[0] >= 0 && res[1] >= 0, "child opens: {res:?}");
    assert_eq!(&res[2..], &[-(libc::ENOENT as i64), -(libc::EACCES as i64)]);
    let in_child = |mut e: Expect| {
        e.pid = child;
        e.tid = child;
        e.ppid = ctx.pid;
        e
    };
    want.push(in_child(ctx.expect(
        "child",
        Syscall::Openat,
        &tb("child.txt"),
        &tb("child.txt"),
        PathSource::File,
        Some(-100),
        libc::O_RDONLY,
        0,
        res[0],
    )));
    want.push(in_child(ctx.expect(
        "relative to cwd",
        Syscall::Openat,
        b"../rel.txt",
        &tb("rel.txt"),
        PathSource::File,
        Some(-100),
        libc::O_RDONLY,
        0,
        res[1],
    )));
    want.push(in_child(ctx.expect(
        "ENOENT relative to cwd",
        Syscall::Openat,
        b"nope/missing.txt",
        &tb("sub/nope/missing.txt"),
        PathSource::Cwd,
        Some(-100),
        libc::O_RDONLY,
        0,
        res[2],
    )));
    let mut denied = in_child(ctx.expect(
        "EACCES as nobody",
        Syscall::Openat,
        &tb("secret.txt"),
        &tb("secret.txt"),
        PathSource::Raw,
        Some(-100),
        libc::O_RDONLY,
        0,
        res[3],
    ));
    denied.uid = 65534;
    want.push(denied);

    let after = open_forensics::timespec::now_ns();
    let recorder_pid = rec.pid();
    let stderr = rec.stop();

    let events = read_store(&store.dir);
    let ours: Vec<&Event> = events
        .iter()
        .filter(|e| e.pid == ctx.pid || e.pid == child)
        .collect();
    let mut problems = Vec::new();
    let mut used = HashSet::new();
    for w in &want {
        let found = ours.iter().enumerate().find(|(i, e)| {
            !used.contains(i)
                && e.raw_path.as_bytes() == &w.raw[..]
                && e.pid == w.pid
                && e.syscall == w.syscall
                && e.ret == w.ret
        });
        let Some((i, e)) = found else {
            problems.push(format!("{}: not recorded (want {w:?})", w.what));
            continue;
        };
        used.insert(i);
        let got = (
            e.tid,
            e.ppid,
            e.uid,
            e.path.lossy().into_owned(),
            e.path_source,
            e.dirfd,
            e.flags,
            e.mode,
            e.path_truncated,
        );
        let path_ok = if w.truncated && w.source == PathSource::File {
            // The cut is marked at the top (`/…/`), never a relative-looking string.
            e.path.as_bytes().starts_with("/\u{2026}/".as_bytes())
                && e.path.as_bytes().ends_with(&w.path)
        } else {
            e.path.as_bytes() == &w.path[..]
        };
        let expected = (
            w.tid,
            w.ppid,
            w.uid,
            e.path.lossy().into_owned(),
            w.source,
            w.dirfd,
            w.flags,
            w.mode,
            w.truncated,
        );
        if got != expected || !path_ok {
            problems.push(format!(
                "{}: got tid/ppid/uid/path/source/dirfd/flags/mode/truncated {:?}, want {:?} with path {:?}",
                w.what,
                got,
                expected,
                String::from_utf8_lossy(&w.path)
            ));
        }
        if e.ts_ns < before - 50_000_000 || e.ts_ns > after + 50_000_000 {
            problems.push(format!(
                "{}: ts {} outside [{before}, {after}]",
                w.what, e.ts_ns
            ));
        }
        if e.comm.as_bytes().is_empty() {
            problems.push(format!("{}: empty comm", w.what));
        }
    }
    // Our own opens, done one after another by one thread, come back in that order.
    let main_tid = want[0].tid;
    let ts: Vec<i64> = ours
        .iter()
        .filter(|e| e.tid == main_tid)
        .map(|e| e.ts_ns)
        .collect();
    if ts.windows(2).any(|w| w[0] > w[1]) {
        problems.push("events of one thread are not in time order".into());
    }
    if events.iter().any(|e| e.pid == recorder_pid) {
        problems.push("the recorder recorded its own opens".into());
    }
    assert!(
        problems.is_empty(),
        "{}\nrecorder stderr:\n{stderr}",
        problems.join("\n")
    );
}

/// The recorder filters its own process in the kernel, while a second `record` on the same store
/// is refused by the store lock.
#[test]
fn record_skips_itself_and_holds_the_store_lock() {
    if !helpers::live_capture_available("record_skips_itself_and_holds_the_store_lock") {
        return;
    }
    let store = TempStore::new();
    let rec = Recorder::start(&store, &["--max-events", "5"]);
    let marker = store.path("marker.txt");
    std::fs::write(&marker, "m").expect("write marker");
    for _ in 0..20 {
        std::fs::read(&marker).expect("read marker");
    }
    let second = store.run(&["record", "--duration", "1s"]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "second recorder succeeded: {err}");
    assert!(err.contains("locked"), "no lock error: {err}");
    // Let rotation (every 5 events) open and seal a few segments.
    std::thread::sleep(Duration::from_millis(1500));
    let recorder_pid = rec.pid();
    rec.stop();
    let events = read_store(&store.dir);
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() } as u32;
    let marker_b = marker.as_os_str().as_bytes();
    let n = events
        .iter()
        .filter(|e| e.pid == me && e.path.as_bytes() == marker_b)
        .count();
    assert!(n >= 20, "only {n} marker opens recorded");
    let own: Vec<_> = events.iter().filter(|e| e.pid == recorder_pid).collect();
    assert!(own.is_empty(), "the recorder's own opens: {own:?}");
}

/// Without privilege: exit 2, one clear line naming what is missing, and no store created.
#[test]
fn record_without_privilege_exits_2_and_leaves_the_store_alone() {
    if !helpers::live_capture_available(
        "record_without_privilege_exits_2_and_leaves_the_store_alone",
    ) {
        return;
    }
    // nobody can reach the binary only; the store path stays ours.
    let nobody = Nobody::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let store: PathBuf = dir.path().join("store");
    let out = nobody
        .cmd()
        .arg("--store")
        .arg(&store)
        .args(["record", "--duration", "1s"])
        .stdin(Stdio::null())
        .output()
        .expect("run as nobody");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON") && err.contains("root"),
        "{err}"
    );
    assert!(!store.exists(), "the store was created");
}

/// Rules run live on every event and print exactly the alert lines a replay of the same store
/// prints (one engine, one event order).
#[test]
fn record_alerts_live_as_replay_does() {
    if !helpers::live_capture_available("record_alerts_live_as_replay_does") {
        return;
    }
    let store = TempStore::new();
    let rules = store.path("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: marker_read\n    description: the test's marker was read\n    severity: low\n    path: [\"/**/live-alert-marker.txt\"]\n    access: read\n    result: success\n",
    )
    .expect("write rules");
    let alerts = store.path("alerts.jsonl");
    let marker = store.path("live-alert-marker.txt");
    std::fs::write(&marker, "m").expect("write marker");
    let rec = Recorder::alerting(&store, &rules, &alerts);
    for _ in 0..3 {
        std::fs::read(&marker).expect("read marker");
    }
    rec.stop();
    let live = std::fs::read_to_string(&alerts).expect("alerts file");
    let live: Vec<&str> = live.lines().collect();
    assert_eq!(live.len(), 3, "live alerts: {live:#?}");
    assert!(live.iter().all(|l| l.contains("marker_read")), "{live:#?}");
    let replay = store.ok(&["replay", "--rules", rules.to_str().expect("utf-8 path")]);
    let replay: Vec<&str> = replay.lines().collect();
    assert_eq!(live, replay);
}

/// An open of an unlinked file (through /proc/self/fd) and of an O_TMPFILE is named as the
/// kernel names it, with " (deleted)" — never as a live file of the same name.
#[test]
fn deleted_files_are_marked_deleted() {
    if !helpers::live_capture_available("deleted_files_are_marked_deleted") {
        return;
    }
    let store = TempStore::new();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = std::fs::canonicalize(work.path()).expect("canonical temp dir");
    let gone = dir.join("gone.txt");
    std::fs::write(&gone, b"x").expect("write");
    let rec = Recorder::start(&store, &[]);
    let held = std::fs::File::open(&gone).expect("open");
    std::fs::remove_file(&gone).expect("unlink");
    let via = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&held));
    let again = std::fs::File::open(&via).expect("reopen the unlinked file");
    let c = cstr(dir.as_os_str().as_bytes());
    // SAFETY: a NUL-terminated directory path; the fd is closed below.
    let tmpfile = unsafe { libc::open(c.as_ptr(), libc::O_TMPFILE | libc::O_RDWR, 0o600) };
    assert!(
        tmpfile >= 0,
        "O_TMPFILE: {}",
        std::io::Error::last_os_error()
    );
    close(tmpfile as i64);
    drop((held, again));
    rec.stop();
    let me = std::process::id();
    let events: Vec<Event> = read_store(&store.dir)
        .into_iter()
        .filter(|e| e.pid == me && e.path.as_bytes().starts_with(dir.as_os_str().as_bytes()))
        .collect();
    let paths: Vec<String> = events.iter().map(|e| e.path.lossy().into_owned()).collect();
    let want = format!("{} (deleted)", gone.display());
    assert!(paths.contains(&want), "{paths:#?}");
    assert!(
        paths.contains(&gone.display().to_string()),
        "the first open, before the unlink, is a live file: {paths:#?}"
    );
    let tmp = events
        .iter()
        .find(|e| e.flags & libc::O_TMPFILE as u64 == libc::O_TMPFILE as u64)
        .expect("the O_TMPFILE open");
    let p = tmp.path.lossy();
    assert!(
        p.starts_with(&format!("{}/#", dir.display())) && p.ends_with(" (deleted)"),
        "{p}"
    );
}

/// Opens that yield a pipe or a memfd (through /proc/self/fd) carry the kernel's names for them
/// (`pipe:[INODE]`, `/memfd:NAME (deleted)`), not `/`.
#[test]
fn pseudo_files_are_named_as_the_kernel_names_them() {
    if !helpers::live_capture_available("pseudo_files_are_named_as_the_kernel_names_them") {
        return;
    }
    let store = TempStore::new();
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) into a two-int array; memfd_create with a NUL-terminated name.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let name = cstr(format!("of-pseudo-{}", std::process::id()));
    let memfd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    assert!(memfd >= 0);
    // SAFETY: fstat into a zeroed stat of an fd we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::fstat(fds[0], &mut st) }, 0);
    let rec = Recorder::start(&store, &[]);
    let reopen = |fd: i32| {
        let p = cstr(format!("/proc/self/fd/{fd}"));
        // SAFETY: a NUL-terminated path; the fd is closed right after.
        let r = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY) };
        assert!(
            r >= 0,
            "reopen fd {fd}: {}",
            std::io::Error::last_os_error()
        );
        close(r as i64);
    };
    reopen(fds[0]);
    reopen(memfd);
    rec.stop();
    for fd in [fds[0], fds[1], memfd] {
        close(fd as i64);
    }
    let me = std::process::id();
    let paths: Vec<String> = read_store(&store.dir)
        .into_iter()
        .filter(|e| e.pid == me && e.raw_path.as_bytes().starts_with(b"/proc/self/fd/"))
        .map(|e| e.path.lossy().into_owned())
        .collect();
    assert!(
        paths.contains(&format!("pipe:[{}]", st.st_ino)),
        "{paths:#?}"
    );
    assert!(
        paths.contains(&format!("/memfd:of-pseudo-{me} (deleted)")),
        "{paths:#?}"
    );
}

/// A path deeper than the bytes the kernel walk keeps (4096) keeps its leaf end and marks the
/// cut with a leading `/…`: it never turns into a relative-looking string.
#[test]
fn over_long_paths_mark_the_cut() {
    if !helpers::live_capture_available("over_long_paths_mark_the_cut") {
        return;
    }
    let store = TempStore::new();
    let work = tempfile::tempdir().expect("tempdir");
    let name = "d".repeat(240);
    // Built with *at calls from a directory fd: the test binary's cwd is shared by its threads.
    let mut fd = openat(
        libc::AT_FDCWD,
        work.path().as_os_str().as_bytes(),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
    );
    assert!(fd >= 0);
    let mut fds = vec![fd];
    for _ in 0..20 {
        let c = cstr(&name);
        // SAFETY: mkdirat relative to a directory fd we hold, NUL-terminated name.
        assert_eq!(unsafe { libc::mkdirat(fd as i32, c.as_ptr(), 0o700) }, 0);
        fd = openat(
            fd as i32,
            name.as_bytes(),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        );
        assert!(fd >= 0);
        fds.push(fd);
    }
    let rec = Recorder::start(&store, &[]);
    let leaf = openat(
        fd as i32,
        b"leaf.txt",
        libc::O_CREAT | libc::O_WRONLY,
        0o600,
    );
    assert!(leaf >= 0);
    close(leaf);
    rec.stop();
    for f in fds {
        close(f);
    }
    let me = std::process::id();
    let ev = read_store(&store.dir)
        .into_iter()
        .find(|e| e.pid == me && e.raw_path.as_bytes() == b"leaf.txt")
        .expect("the deep open");
    let p = ev.path.lossy();
    assert!(ev.path_truncated, "{p}");
    assert!(p.starts_with("/\u{2026}/"), "{p}");
    assert!(p.ends_with(&format!("{name}/leaf.txt")), "{p}");
}

/// `open` and `openat` through the 32-bit entry (`int $0x80`), which any 64-bit program can use
/// and which never reaches the syscalls:* tracepoints, are recorded, named `ia32_*`.
#[test]
fn opens_through_the_32_bit_entry_are_recorded() {
    if !helpers::live_capture_available("opens_through_the_32_bit_entry_are_recorded") {
        return;
    }
    use raw_opens::int80;
    let store = TempStore::new();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = std::fs::canonicalize(work.path()).expect("canonical");
    let file = dir.join("ia32.txt");
    std::fs::write(&file, b"x").expect("write");
    let low = raw_opens::LowPath::new(file.as_os_str().as_bytes());
    let ptr = low.ptr();
    let rec = Recorder::start(&store, &[]);
    let fd1 = int80(5, ptr, libc::O_RDONLY as u32, 0, 0); // ia32 open
    let fd2 = int80(295, libc::AT_FDCWD as u32, ptr, libc::O_RDONLY as u32, 0); // ia32 openat
    rec.stop();
    assert!(fd1 >= 0 && fd2 >= 0, "int 0x80 opens: {fd1} {fd2}");
    close(fd1 as i64);
    close(fd2 as i64);
    drop(low);
    let me = std::process::id();
    let got: Vec<(Syscall, i64)> = read_store(&store.dir)
        .into_iter()
        .filter(|e| e.pid == me && e.path.as_bytes() == file.as_os_str().as_bytes())
        .map(|e| (e.syscall, e.ret))
        .collect();
    assert!(
        got.contains(&(Syscall::Ia32Open, i64::from(fd1))),
        "{got:?}"
    );
    assert!(
        got.contains(&(Syscall::Ia32Openat, i64::from(fd2))),
        "{got:?}"
    );
}

/// Irq-work interrupts taken so far on `cpu` (/proc/interrupts, `IWI:`): what each wakeup of
/// the ring's consumer costs the opener.
fn irq_work_interrupts(cpu: usize) -> u64 {
    let text = std::fs::read_to_string("/proc/interrupts").expect("read /proc/interrupts");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("IWI:"))
        .expect("an IWI line in /proc/interrupts");
    line.split_whitespace()
        .nth(1 + cpu)
        .and_then(|n| n.parse().ok())
        .expect("an IWI count for this CPU")
}

/// Pins the calling thread to the CPU it runs on; returns that CPU.
fn pin_to_this_cpu() -> usize {
    // SAFETY: sched_getcpu has no preconditions; the set is a plain bitmask passed by pointer
    // for the call's duration.
    unsafe {
        let cpu = libc::sched_getcpu();
        assert!(
            cpu >= 0,
            "sched_getcpu: {}",
            std::io::Error::last_os_error()
        );
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
        cpu as usize
    }
}

/// While the consumer is off its CPU (here: stopped), the ring absorbs the opens, and the
/// probes wake the consumer only when the waiting data crosses a multiple of the drain
/// threshold, not on every record past it: each wakeup is an irq_work self-interrupt
/// (microseconds in a VM) that a consumer off its CPU cannot act on. Waking on every record
/// past the threshold made an open 1.35x costlier on a busy host and 3x with a 1 MiB ring.
#[test]
fn a_stalled_consumer_costs_the_openers_no_wakeup_per_record() {
    if !helpers::live_capture_available("a_stalled_consumer_costs_the_openers_no_wakeup_per_record")
    {
        return;
    }
    const OPENS: usize = 12_000;
    let store = TempStore::new();
    // 4 MiB: threshold 512 KiB; ~150-byte records, so the opens below are ~1.8 MiB.
    let rec = Recorder::start(&store, &["--ring-mb", "4"]);
    let marker = store.path("marker-of-the-stalled-consumer.txt");
    std::fs::write(&marker, "m").expect("write marker");
    let path = CString::new(marker.as_os_str().as_bytes()).unwrap();
    let pinned = std::thread::spawn(move || {
        let cpu = pin_to_this_cpu();
        let before = irq_work_interrupts(cpu);
        for _ in 0..OPENS {
            // SAFETY: a valid C string; the fd is closed at once.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            assert!(fd >= 0, "open: {}", std::io::Error::last_os_error());
            // SAFETY: our own fd.
            unsafe { libc::close(fd) };
        }
        irq_work_interrupts(cpu) - before
    });
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(rec.pid() as i32, libc::SIGSTOP) };
    let wakeups = pinned.join().expect("opener thread");
    // SAFETY: as above.
    unsafe { libc::kill(rec.pid() as i32, libc::SIGCONT) };
    rec.stop();
    let me = std::process::id();
    let stored = read_store(&store.dir)
        .iter()
        .filter(|e| e.pid == me && e.path.as_bytes() == marker.as_os_str().as_bytes())
        .filter(|e| e.flags & libc::O_ACCMODE as u64 == libc::O_RDONLY as u64)
        .count();
    assert_eq!(stored, OPENS, "opens lost while the consumer was stopped");
    // Four crossings of our own, a few more for other processes' opens on this CPU; the old
    // rule took one per record past 512 KiB (~8,000).
    assert!(
        wakeups < 500,
        "{wakeups} irq_work interrupts on the opener's CPU during {OPENS} opens"
    );
}

/// `record` lowers its nice value by --priority-boost (4 by default, as auditd's
/// priority_boost): every thread of it, since threads inherit the value of the one starting
/// them. 0 leaves it alone.
#[test]
fn record_raises_its_priority_as_asked() {
    if !helpers::live_capture_available("record_raises_its_priority_as_asked") {
        return;
    }
    fn nices(pid: u32) -> Vec<i64> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("read the task list");
        tasks
            .map(|t| {
                let stat = std::fs::read_to_string(t.expect("task").path().join("stat"))
                    .expect("read a task's stat");
                // After the parenthesised comm: state is field 3, nice field 19.
                let rest = &stat[stat.rfind(')').expect("comm") + 2..];
                rest.split(' ').nth(16).unwrap().parse().unwrap()
            })
            .collect()
    }
    // SAFETY: getpriority takes no pointer; our nice is not -1 under cargo test's parent.
    let ours = i64::from(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) });
    for (args, want) in [
        (&[][..], (ours - 4).max(-20)),
        (&["--priority-boost", "0"][..], ours),
    ] {
        let store = TempStore::new();
        let rec = Recorder::start(&store, args);
        let got = nices(rec.pid());
        rec.stop();
        assert!(got.len() >= 2, "the recorder's threads: {got:?}");
        assert!(
            got.iter().all(|&n| n == want),
            "{args:?}: nice values {got:?}, want {want}"
        );
    }
    let out = TempStore::new().run(&["record", "--priority-boost", "21"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--priority-boost 21"));
}

/// An io_uring open keeps its whole raw path however long: the submission probe stashes paths
/// up to 255 bytes with the request and a longer one beside it (lengths around that boundary,
/// and up to the kernel's 4095; failing and succeeding opens).
#[test]
fn io_uring_opens_of_long_paths_keep_their_whole_raw_path() {
    if !helpers::live_capture_available("io_uring_opens_of_long_paths_keep_their_whole_raw_path") {
        return;
    }
    let store = TempStore::new();
    let base = store.path("u");
    // A deep directory to succeed in: components of 200 bytes, ~1,000 bytes in all.
    let mut deep = base.clone();
    for i in 0..5 {
        deep.push(format!("{i}{}", "d".repeat(199)));
    }
    std::fs::create_dir_all(&deep).expect("make the deep directory");
    let found = deep.join("found.txt");
    std::fs::write(&found, "x").expect("write the deep file");
    let mut paths: Vec<Vec<u8>> = [200usize, 254, 255, 256, 257, 300, 1000, 2100, 4095]
        .iter()
        .map(|&len| {
            // Missing files under `base`, `len` bytes in all, in components of at most 200.
            let mut p = base.as_os_str().as_bytes().to_vec();
            while p.len() < len {
                p.push(b'/');
                let n = (len - p.len()).min(200);
                p.extend(std::iter::repeat_n(b'm', n));
            }
            assert_eq!(p.len(), len);
            p
        })
        .collect();
    paths.push(found.as_os_str().as_bytes().to_vec());

    let rec = Recorder::start(&store, &[]);
    let mut ring = io_uring::IoUring::new(4).expect("io_uring_setup");
    let mut results = Vec::new();
    for p in &paths {
        let ret = io_uring_open(&mut ring, &cstr(p), libc::O_RDONLY | libc::O_CLOEXEC);
        if ret >= 0 {
            close(ret);
        }
        results.push(ret);
    }
    drop(ring);
    std::thread::sleep(Duration::from_millis(300));
    rec.stop();
    assert!(
        *results.last().unwrap() >= 0,
        "the deep open failed: {results:?}"
    );

    let me = std::process::id();
    let events = read_store(&store.dir);
    for (p, ret) in paths.iter().zip(&results) {
        let got: Vec<_> = events
            .iter()
            .filter(|e| e.pid == me && e.syscall == Syscall::IoUring && e.raw_path.as_bytes() == p)
            .collect();
        assert_eq!(
            got.len(),
            1,
            "{} bytes: {} records with the whole raw path",
            p.len(),
            got.len()
        );
        assert_eq!(got[0].ret, *ret, "{} bytes", p.len());
        assert!(!got[0].path_truncated, "{} bytes: marked cut", p.len());
    }
    let deep_open = events
        .iter()
        .find(|e| e.pid == me && e.raw_path.as_bytes() == found.as_os_str().as_bytes())
        .unwrap();
    assert_eq!(deep_open.path.as_bytes(), found.as_os_str().as_bytes());
}

/// Live == replay across a restart: a replay over two recordings throttles each as its
/// recorder did (the second recorder started with no throttle state, and the first emitted its
/// summary when it stopped), instead of carrying the first one's window into the second.
#[test]
fn replay_over_two_recordings_throttles_each_as_it_was_live() {
    if !helpers::live_capture_available("replay_over_two_recordings_throttles_each_as_it_was_live")
    {
        return;
    }
    let store = TempStore::new();
    let rules = store.path("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: marker_read\n    description: d\n    severity: low\n    path: [\"/**/restart-marker.txt\"]\n    access: read\n    throttle: {key: [pid], window: 1h, max: 2}\n",
    )
    .expect("write rules");
    let marker = store.path("restart-marker.txt");
    std::fs::write(&marker, "m").expect("write marker");
    let rules_arg = rules.to_str().expect("utf-8 path");
    let mut live = Vec::new();
    for run in 0..2 {
        let alerts = store.path(&format!("alerts-{run}.jsonl"));
        let rec = Recorder::alerting(&store, &rules, &alerts);
        for _ in 0..5 {
            std::fs::read(&marker).expect("read marker");
        }
        rec.stop();
        let text = std::fs::read_to_string(&alerts).expect("alerts file");
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        // Two alerts, then the summary of the three suppressed, emitted at the stop.
        assert_eq!(lines.len(), 3, "run {run}: {lines:#?}");
        assert!(lines[2].contains("\"alert_summary\"") && lines[2].contains("\"suppressed\":3"));
        live.extend(lines);
    }
    let replay = store.ok(&["replay", "--rules", rules_arg]);
    let replay: Vec<&str> = replay.lines().collect();
    assert_eq!(replay, live.iter().map(String::as_str).collect::<Vec<_>>());
}
