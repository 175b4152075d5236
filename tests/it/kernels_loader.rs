//! The loader that adapts to the kernel (issue 23): on this kernel the plan loads the fast probes
//! and captures everything; the compat probes (what 5.10 - 6.1 load), forced here, record every
//! route and say what they do not capture; a program the kernel rejects is reported (program,
//! kernel, verifier's reason) and its capability, left out, is named at start and by `--version`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use open_forensics::event::{Event, Syscall};

use crate::helpers::{self, bin, read_store, TempStore};
use crate::recorder::Recorder;

fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_owned()
}

fn version(env: &[(&str, &str)]) -> String {
    let out = Command::new(bin())
        .arg("--version")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn record(store: &TempStore, env: &[(&str, &str)]) -> Recorder {
    let mut cmd = store.cmd(&["record"]);
    cmd.envs(env.iter().copied());
    Recorder::spawn(cmd, false)
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn sys(ret: libc::c_long) -> i64 {
    assert!(ret >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: closing the descriptor the call just returned.
    unsafe { libc::close(ret as i32) };
    ret
}

/// Opens `dir/name` through every syscall route and io_uring; returns (syscall, path) pairs.
fn open_every_route(dir: &Path) -> Vec<(Syscall, Vec<u8>)> {
    let mut want = Vec::new();
    let mut path = |name: &str, sc: Syscall| {
        let p = dir.join(name);
        std::fs::write(&p, "x").unwrap();
        want.push((sc, p.as_os_str().as_bytes().to_vec()));
        cpath(&p)
    };
    let p = path("open.txt", Syscall::Open);
    // SAFETY: a NUL-terminated path that outlives each call.
    sys(unsafe { libc::syscall(libc::SYS_open, p.as_ptr(), libc::O_RDONLY, 0) });
    let p = path("openat.txt", Syscall::Openat);
    sys(unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            p.as_ptr(),
            libc::O_RDONLY,
            0,
        )
    });
    let p = path("creat.txt", Syscall::Creat);
    sys(unsafe { libc::syscall(libc::SYS_creat, p.as_ptr(), 0o600) });
    let p = path("openat2.txt", Syscall::Openat2);
    // struct open_how (UAPI): flags, mode, resolve.
    let how: [u64; 3] = [libc::O_RDONLY as u64, 0, 0];
    sys(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            p.as_ptr(),
            how.as_ptr(),
            std::mem::size_of_val(&how),
        )
    });
    let p = path("uring.txt", Syscall::IoUring);
    let mut ring = io_uring::IoUring::new(4).expect("io_uring");
    let sqe = io_uring::opcode::OpenAt::new(io_uring::types::Fd(libc::AT_FDCWD), p.as_ptr())
        .flags(libc::O_RDONLY)
        .build();
    // SAFETY: the path outlives the submission, which completes before we return.
    unsafe { ring.submission().push(&sqe).expect("submission queue") };
    ring.submit_and_wait(1).expect("io_uring submit");
    let res = ring.completion().next().expect("a completion").result();
    sys(res.into());
    want
}

/// Stops the recorder: its stderr and the store's events.
fn stored(store: &TempStore, rec: Recorder) -> (String, Vec<Event>) {
    let stderr = rec.stop();
    (stderr, read_store(&store.dir))
}

fn find<'a>(events: &'a [Event], sc: Syscall, path: &[u8]) -> Option<&'a Event> {
    let me = std::process::id();
    events
        .iter()
        .find(|e| e.pid == me && e.syscall == sc && e.path.as_bytes() == path)
}

#[test]
fn on_this_kernel_the_plan_loads_the_fast_probes_and_captures_everything() {
    if !helpers::live_capture_available(
        "on_this_kernel_the_plan_loads_the_fast_probes_and_captures_everything",
    ) {
        return;
    }
    let v = version(&[]);
    assert!(
        v.contains("io_uring opens and file operations: captured"),
        "{v}"
    );
    assert!(
        v.contains("whole paths deeper than 10 levels: captured"),
        "{v}"
    );
    assert!(!v.contains("not captured"), "{v}");
    let store = TempStore::new();
    let rec = record(&store, &[]);
    let (stderr, _) = stored(&store, rec);
    assert!(!stderr.contains("not captured"), "{stderr}");
    assert!(!stderr.contains("rejected"), "{stderr}");
}

#[test]
fn forced_compat_probes_record_every_route_and_say_deep_paths_are_cut() {
    if !helpers::live_capture_available(
        "forced_compat_probes_record_every_route_and_say_deep_paths_are_cut",
    ) {
        return;
    }
    let compat = [("OPEN_FORENSICS_FORCE_COMPAT", "1")];
    let v = version(&compat);
    assert!(
        v.contains(
            "whole paths deeper than 10 levels: not captured (OPEN_FORENSICS_FORCE_COMPAT is set"
        ),
        "{v}"
    );
    let work = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(work.path()).unwrap();
    // 12 levels below the temp directory: past the compat walk.
    let deep = (0..12).fold(dir.clone(), |d, i| d.join(format!("l{i}")));
    std::fs::create_dir_all(&deep).unwrap();
    let deep_file = deep.join("deep.txt");
    std::fs::write(&deep_file, "d").unwrap();

    let store = TempStore::new();
    let rec = record(&store, &compat);
    let want = open_every_route(&dir);
    let p = cpath(&deep_file);
    // SAFETY: as in open_every_route.
    sys(unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            p.as_ptr(),
            libc::O_RDONLY,
            0,
        )
    });
    let child = Command::new("/bin/cat")
        .arg(dir.join("open.txt"))
        .output()
        .unwrap();
    assert!(child.status.success());
    let (stderr, events) = stored(&store, rec);

    let notice = start_notice(&stderr);
    assert!(
        notice.contains("whole paths deeper than 10 levels not captured"),
        "{notice}"
    );
    assert!(!notice.contains("io_uring"), "{notice}");
    for (sc, path) in &want {
        let e = find(&events, *sc, path)
            .unwrap_or_else(|| panic!("{sc:?} of {} not stored", String::from_utf8_lossy(path)));
        assert!(!e.path_truncated);
        assert_eq!(e.ppid, std::os::unix::process::parent_id());
    }
    let cut = events
        .iter()
        .find(|e| e.pid == std::process::id() && e.raw_path.as_bytes() == p.as_bytes())
        .expect("the deep open");
    assert!(cut.path_truncated, "{:?}", cut.path.lossy());
    let cat = events
        .iter()
        .find(|e| {
            e.process
                .as_ref()
                .and_then(|p| p.exe.as_ref())
                .is_some_and(|x| x.as_bytes().ends_with(b"/cat"))
                && e.path.as_bytes() == dir.join("open.txt").as_os_str().as_bytes()
        })
        .expect("the child's open, with its exe");
    assert_eq!(cat.ppid, std::process::id());
}

#[test]
fn a_program_the_verifier_rejects_is_named_and_its_capability_reported_not_captured() {
    if !helpers::live_capture_available(
        "a_program_the_verifier_rejects_is_named_and_its_capability_reported_not_captured",
    ) {
        return;
    }
    let reject = [(
        "OPEN_FORENSICS_REJECT",
        "tp_btf__io_uring_complete,compat__io_uring_complete",
    )];
    let r = release();
    let v = version(&reject);
    assert!(
        v.contains(&format!(
            "io_uring opens and file operations: not captured (kernel {r}'s verifier rejected compat__io_uring_complete: "
        )),
        "{v}"
    );
    assert!(
        v.contains("opens through the 32-bit entry: captured"),
        "{v}"
    );
    let work = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(work.path()).unwrap();
    let store = TempStore::new();
    let rec = record(&store, &reject);
    let want = open_every_route(&dir);
    let (stderr, events) = stored(&store, rec);
    for prog in ["tp_btf__io_uring_complete", "compat__io_uring_complete"] {
        assert!(
            stderr.contains(&format!(
                "kernel {r}'s verifier rejected program {prog} (EACCES: the verifier refused it)"
            )),
            "{stderr}"
        );
    }
    // The verifier's own words, not a bare errno.
    assert!(stderr.contains("invalid bpf_context access"), "{stderr}");
    assert!(!stderr.contains("Permission denied"), "{stderr}");
    let notice = start_notice(&stderr);
    assert!(
        notice.contains("io_uring opens and file operations not captured (kernel"),
        "{notice}"
    );
    for (sc, path) in &want {
        let found = find(&events, *sc, path).is_some();
        assert_eq!(found, *sc != Syscall::IoUring, "{sc:?}");
    }
}

/// `record`'s one line naming what it does not capture.
fn start_notice(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("open-forensics: notice:"))
        .unwrap_or_else(|| panic!("no start notice: {stderr}"))
}
