//! Live process lineage: which program opened a file (its exe, argv, name), started by what, in
//! which namespaces and container, as `record` stores it. Each test records its own workload on
//! its own store; capture is system-wide, so every check filters by our own temp paths and pids.

use std::ffi::CString;
use std::fs::File;
use std::io::Write as _;
use std::os::fd::FromRawFd as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use open_forensics::event::Event;
use open_forensics::process::{ProcSource, Process};

use crate::helpers::{self, read_store, TempStore};
use crate::recorder::Recorder;

/// A canonical temp directory for one test's files.
struct Work {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Work {
    fn new() -> Work {
        let tmp = tempfile::Builder::new()
            .prefix("of-lineage-")
            .tempdir()
            .expect("tempdir");
        let dir = std::fs::canonicalize(tmp.path()).expect("canonical tempdir");
        Work { _tmp: tmp, dir }
    }

    /// A file with `content`, named uniquely enough (the directory is unique).
    fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, content).expect("write a test file");
        p
    }
}

/// The real python binary (not a pyenv shim or a symlink): what the kernel names as its exe.
fn python() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable))",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("python3 is needed by the lineage tests");
    assert!(out.status.success(), "python3: {out:?}");
    let p = PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim());
    assert!(p.is_absolute() && p.is_file(), "python binary {p:?}");
    p
}

/// A binary on PATH (or a path), resolved as the kernel names it (`/bin/sh` → `/usr/bin/dash`).
fn resolve(name: &str) -> PathBuf {
    if name.contains('/') {
        return std::fs::canonicalize(name).expect("canonical binary");
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .map(|p| std::fs::canonicalize(p).expect("canonical binary"))
        .unwrap_or_else(|| panic!("{name} not on PATH"))
}

/// A path as a python string literal (our temp paths have no quotes or backslashes).
fn py_str(p: &Path) -> String {
    let s = p.to_str().expect("utf-8 temp path");
    assert!(!s.contains(['\'', '\\']), "{s}");
    format!("'{s}'")
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn exe(p: &Process) -> Option<String> {
    p.exe.as_ref().map(|e| e.lossy().into_owned())
}

fn args(p: &Process) -> Vec<String> {
    p.args().into_iter().map(lossy).collect()
}

/// One line per image, for failure messages.
fn describe(p: &Process) -> String {
    format!(
        "pid {} ppid {} {:?} comm {:?} exe {:?} argv {:?}",
        p.pid,
        p.ppid,
        p.source,
        p.comm.lossy(),
        exe(p),
        args(p)
    )
}

fn chain(p: &Process) -> String {
    std::iter::once(describe(p))
        .chain(p.ancestors().map(|a| format!("  <- {}", describe(a))))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The successful opens of exactly `path` (ours: the temp directory is unique).
fn opens_of<'a>(events: &'a [Event], path: &Path) -> Vec<&'a Event> {
    let want = path.as_os_str().as_bytes();
    events
        .iter()
        .filter(|e| e.path.as_bytes() == want && e.ret >= 0)
        .collect()
}

/// The one process that opened `path`, with its image; panics unless exactly one did.
fn opener<'a>(events: &'a [Event], path: &Path) -> (&'a Event, Arc<Process>) {
    let opens = opens_of(events, path);
    assert!(!opens.is_empty(), "no successful open of {path:?} stored");
    let pids: std::collections::BTreeSet<u32> = opens.iter().map(|e| e.pid).collect();
    assert_eq!(pids.len(), 1, "{path:?} opened by several pids: {pids:?}");
    let ev = opens[0];
    let p = ev
        .process
        .clone()
        .unwrap_or_else(|| panic!("the open of {path:?} has no process: {ev:?}"));
    assert_eq!(p.pid, ev.pid, "image of another pid: {}", chain(&p));
    (ev, p)
}

/// The ancestors of `p` up to and including the test process itself (the chain must reach it).
fn up_to_us(p: &Process) -> Vec<Arc<Process>> {
    let us = std::process::id();
    let mut out = Vec::new();
    for a in p.ancestors() {
        out.push(a.clone());
        if a.pid == us {
            return out;
        }
    }
    panic!(
        "the ancestors do not reach the test process (pid {us}):\n{}",
        chain(p)
    );
}

/// The test process as its `/proc` snapshot image (it started before every recorder).
fn assert_is_us(a: &Process) {
    let us = std::process::id();
    let me = std::fs::canonicalize(std::env::current_exe().expect("current_exe"))
        .expect("canonical test binary");
    assert_eq!(a.pid, us, "{}", describe(a));
    assert_eq!(a.source, ProcSource::Procfs, "{}", describe(a));
    assert_eq!(
        exe(a).as_deref(),
        Some(me.to_str().expect("utf-8 test binary")),
        "{}",
        describe(a)
    );
}

/// Spawns, retrying while the binary is busy: a fork in another test thread may briefly hold a
/// writable fd of a file we just wrote (until that child execs), and exec then fails (ETXTBSY).
fn spawn(cmd: &mut Command, what: &str) -> Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r.unwrap_or_else(|e| panic!("spawn {what}: {e}")),
        }
    }
}

fn wait_ok(child: &mut Child, what: &str) {
    let status = child.wait().expect("wait");
    assert!(status.success(), "{what}: {status}");
}

/// A namespace's inode, from `/proc/self/ns/NAME` (`pid:[4026531836]`).
fn own_ns(name: &str) -> u32 {
    let link = std::fs::read_link(format!("/proc/self/ns/{name}")).expect("read ns link");
    let s = link.to_str().expect("utf-8 ns link");
    s[s.find('[').expect("[") + 1..s.find(']').expect("]")]
        .parse()
        .expect("ns inode")
}

/// An fd that survives exec (for `/proc/self/fd/N` in the child), read-only.
fn open_inheritable(path: &Path) -> i32 {
    let c = CString::new(path.as_os_str().as_bytes()).expect("no NUL");
    // SAFETY: a NUL-terminated path for the duration of the call.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
    assert!(
        fd >= 0,
        "open {path:?}: {}",
        std::io::Error::last_os_error()
    );
    fd
}

fn close(fd: i32) {
    // SAFETY: closing an fd this test opened and no longer uses.
    unsafe { libc::close(fd) };
}

/// A process that renames itself (`prctl(PR_SET_NAME)`) is still named by the binary it runs:
/// the open carries the new name, its image the real exe.
#[test]
fn renamed_process_is_still_named_by_its_exe() {
    if !helpers::live_capture_available("renamed_process_is_still_named_by_its_exe") {
        return;
    }
    let py = python();
    let store = TempStore::new();
    let work = Work::new();
    let file = work.file("renamed.txt", "r");
    let script = format!(
        "import ctypes; ctypes.CDLL(None).prctl(15, b'passwd', 0, 0, 0); open({}).read()",
        py_str(&file)
    );
    // The evasion: a comm allow-list lets a process named `passwd` through; a rule on `exe`
    // does not, since the kernel's exe cannot be renamed.
    let rules = work.file(
        "rules.yaml",
        &format!(
            "rules:\n  - name: by_comm\n    description: d\n    severity: high\n    path: {f}\n    not_comm: [passwd]\n  - name: by_exe\n    description: d\n    severity: high\n    path: {f}\n    not_exe: [/usr/bin/passwd]\n",
            f = file.display()
        ),
    );
    let alerts = work.dir.join("alerts.jsonl");
    let rec = Recorder::alerting(&store, &rules, &alerts);
    let mut child = Command::new(&py)
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn python");
    let pid = child.id();
    wait_ok(&mut child, "renaming python");
    rec.stop();
    let live = std::fs::read_to_string(&alerts).expect("alerts file");
    let fired: Vec<serde_json::Value> = live
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert json"))
        .filter(|a: &serde_json::Value| a["pid"] == pid)
        .collect();
    assert_eq!(fired.len(), 1, "{live}");
    assert_eq!(fired[0]["rule"], "by_exe");
    assert_eq!(fired[0]["comm"], "passwd");
    assert_eq!(fired[0]["exe"].as_str(), py.to_str());
    // Replay raises the same alert, byte for byte.
    let replayed = store.ok(&["replay", "--rules", rules.to_str().expect("utf-8")]);
    assert_eq!(replayed, live, "live and replay differ");

    let events = read_store(&store.dir);
    let (ev, p) = opener(&events, &file);
    assert_eq!(ev.pid, pid);
    assert_eq!(ev.comm.as_bytes(), b"passwd", "the open's thread name");
    assert_eq!(p.source, ProcSource::Exec, "{}", chain(&p));
    assert_eq!(
        exe(&p).as_deref(),
        py.to_str(),
        "the exe is the real python: {}",
        chain(&p)
    );
    let base = py.file_name().expect("basename").as_bytes();
    assert_eq!(
        p.comm.as_bytes(),
        &base[..base.len().min(15)],
        "the image's name is the one at exec: {}",
        chain(&p)
    );
    assert_eq!(
        args(&p),
        [py.to_str().expect("utf-8"), "-c", script.as_str()],
        "{}",
        chain(&p)
    );
    assert_is_us(p.ancestors().next().expect("a parent"));
}

/// Ancestors are listed parent first up to the test process, through a pipeline and through a
/// double fork whose middle process exited (the orphan is reparented, but lineage is what forked
/// it).
#[test]
fn pipeline_and_double_fork_list_ancestors_in_order() {
    if !helpers::live_capture_available("pipeline_and_double_fork_list_ancestors_in_order") {
        return;
    }
    let store = TempStore::new();
    let work = Work::new();
    let piped = work.file("piped.txt", "one\n");
    let orphan = work.file("orphan.txt", "two\n");
    let out = work.dir.join("orphan.out");
    let sh = resolve("sh");
    let cat = resolve("cat");
    // The orphan waits (10 s at most) until its parent, the subshell (named sh), is gone, then
    // execs cat.
    let script = r#"cat "$1" | cat > /dev/null
( sh -c 'i=0
while [ $i -lt 200 ] && [ "$(cat /proc/$(cut -d" " -f4 /proc/$$/stat)/comm)" = sh ]; do
  i=$((i + 1)); sleep 0.05
done
exec cat "$0" > "$1"' "$2" "$3" & )
"#;
    let rec = Recorder::start(&store, &[]);
    let mut child = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(&piped)
        .arg(&orphan)
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let sh_pid = child.id();
    wait_ok(&mut child, "the workload shell");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&out).unwrap_or_default() != "two\n" {
        assert!(Instant::now() < deadline, "the orphaned cat never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    rec.stop();

    let events = read_store(&store.dir);
    let sh_exe = sh.to_str().expect("utf-8");
    let cat_exe = cat.to_str().expect("utf-8");

    // The pipeline: cat ← sh ← us.
    let (_, p) = opener(&events, &piped);
    assert_eq!(exe(&p).as_deref(), Some(cat_exe), "{}", chain(&p));
    assert_eq!(
        args(&p),
        ["cat", piped.to_str().expect("utf-8")],
        "{}",
        chain(&p)
    );
    let up = up_to_us(&p);
    assert_eq!(
        up.iter().map(|a| a.pid).collect::<Vec<_>>(),
        [sh_pid, std::process::id()],
        "{}",
        chain(&p)
    );
    assert_eq!(up[0].source, ProcSource::Exec, "{}", chain(&p));
    assert_eq!(exe(&up[0]).as_deref(), Some(sh_exe), "{}", chain(&p));
    assert_eq!(args(&up[0])[..2], ["sh", "-c"], "{}", chain(&p));
    assert_eq!(p.ppid, sh_pid, "{}", chain(&p));
    assert_is_us(&up[1]);

    // The double fork: cat (was the inner sh) ← the exited subshell ← sh ← us.
    let (_, q) = opener(&events, &orphan);
    assert_eq!(exe(&q).as_deref(), Some(cat_exe), "{}", chain(&q));
    let up = up_to_us(&q);
    let pids: Vec<u32> = up.iter().map(|a| a.pid).collect();
    assert_eq!(pids.len(), 3, "{}", chain(&q));
    let sub = &up[0];
    assert!(
        sub.pid != sh_pid && sub.pid != q.pid,
        "the subshell is its own process: {}",
        chain(&q)
    );
    assert_eq!(
        sub.source,
        ProcSource::Fork,
        "the subshell never exec'd: {}",
        chain(&q)
    );
    assert_eq!(sub.ppid, sh_pid, "{}", chain(&q));
    assert_eq!(
        exe(sub).as_deref(),
        Some(sh_exe),
        "a fork runs its parent's image: {}",
        chain(&q)
    );
    assert_eq!(
        args(sub),
        args(&up[1]),
        "a fork has its parent's argv: {}",
        chain(&q)
    );
    assert_ne!(
        q.ppid,
        sub.pid,
        "the orphan was reparented before its exec: {}",
        chain(&q)
    );
    assert_eq!(up[1].pid, sh_pid, "{}", chain(&q));
    assert_eq!(exe(&up[1]).as_deref(), Some(sh_exe), "{}", chain(&q));
    assert!(
        Arc::ptr_eq(&up[1], &up_to_us(&p)[0]) || *up[1] == *up_to_us(&p)[0],
        "one image of the shell for both"
    );
    assert_is_us(&up[2]);
}

/// A process already running when `record` starts is known from the `/proc` snapshot: its
/// opens carry its exe and argv, and its parent.
#[test]
fn process_started_before_record_has_lineage_from_snapshot() {
    if !helpers::live_capture_available("process_started_before_record_has_lineage_from_snapshot") {
        return;
    }
    let py = python();
    let store = TempStore::new();
    let work = Work::new();
    let file = work.file("before.txt", "b");
    let script = format!(
        "import sys; sys.stdin.readline(); open({}).read()",
        py_str(&file)
    );
    // Spawned (exec done: spawn returns after it) before the recorder is even started.
    let mut child = Command::new(&py)
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn python");
    let pid = child.id();
    let rec = Recorder::start(&store, &[]);
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(b"go\n").expect("release python");
    }
    wait_ok(&mut child, "waiting python");
    rec.stop();

    let events = read_store(&store.dir);
    let (ev, p) = opener(&events, &file);
    assert_eq!(ev.pid, pid);
    assert_eq!(
        p.source,
        ProcSource::Procfs,
        "from the snapshot: {}",
        chain(&p)
    );
    assert_eq!(exe(&p).as_deref(), py.to_str(), "{}", chain(&p));
    assert_eq!(
        args(&p),
        [py.to_str().expect("utf-8"), "-c", script.as_str()],
        "{}",
        chain(&p)
    );
    assert_eq!(p.ppid, std::process::id(), "{}", chain(&p));
    assert_eq!(p.pidns, Some(own_ns("pid")), "{}", chain(&p));
    assert_eq!(p.mntns, Some(own_ns("mnt")), "{}", chain(&p));
    assert_is_us(p.ancestors().next().expect("a parent"));
}

/// A binary run from a memfd is named as the kernel names it: `/memfd:NAME (deleted)`.
#[test]
fn memfd_exec_is_named_as_the_kernel_names_it() {
    if !helpers::live_capture_available("memfd_exec_is_named_as_the_kernel_names_it") {
        return;
    }
    let store = TempStore::new();
    let work = Work::new();
    let file = work.file("memfd.txt", "m");
    let cat = std::fs::read(resolve("cat")).expect("read cat");
    let name = CString::new("of-test").expect("no NUL");
    // Close-on-exec: a writable copy inherited by another test's child would block our exec.
    // SAFETY: a NUL-terminated name; the fd is owned by the File below.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a fresh memfd nothing else owns.
    let mut w = unsafe { File::from_raw_fd(fd) };
    w.write_all(&cat).expect("fill the memfd");
    // A writable fd would make exec fail (ETXTBSY): run it through a read-only one.
    let ro = open_inheritable(Path::new(&format!("/proc/self/fd/{fd}")));
    drop(w);

    let rec = Recorder::start(&store, &[]);
    let mut child = spawn(
        Command::new(format!("/proc/self/fd/{ro}"))
            .arg0("cat")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
        "the memfd",
    );
    let pid = child.id();
    wait_ok(&mut child, "cat from a memfd");
    close(ro);
    rec.stop();

    let events = read_store(&store.dir);
    let (ev, p) = opener(&events, &file);
    assert_eq!(ev.pid, pid);
    assert_eq!(p.source, ProcSource::Exec, "{}", chain(&p));
    assert_eq!(
        exe(&p).as_deref(),
        Some("/memfd:of-test (deleted)"),
        "{}",
        chain(&p)
    );
    assert_eq!(
        args(&p),
        ["cat", file.to_str().expect("utf-8")],
        "{}",
        chain(&p)
    );
}

/// A binary unlinked before it was run (exec through an fd) is marked ` (deleted)`.
#[test]
fn deleted_binary_is_marked_deleted() {
    if !helpers::live_capture_available("deleted_binary_is_marked_deleted") {
        return;
    }
    let store = TempStore::new();
    let work = Work::new();
    let file = work.file("deleted.txt", "d");
    let copy = work.dir.join("of-deleted-cat");
    std::fs::copy(resolve("cat"), &copy).expect("copy cat");
    let fd = open_inheritable(&copy);
    std::fs::remove_file(&copy).expect("unlink the copy");

    let rec = Recorder::start(&store, &[]);
    let mut child = spawn(
        Command::new(format!("/proc/self/fd/{fd}"))
            .arg0("of-deleted-cat")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
        "the unlinked copy",
    );
    let pid = child.id();
    wait_ok(&mut child, "the unlinked cat");
    close(fd);
    rec.stop();

    let events = read_store(&store.dir);
    let (ev, p) = opener(&events, &file);
    assert_eq!(ev.pid, pid);
    let want = format!("{} (deleted)", copy.to_str().expect("utf-8"));
    assert_eq!(exe(&p).as_deref(), Some(want.as_str()), "{}", chain(&p));
    assert_eq!(
        args(&p),
        ["of-deleted-cat", file.to_str().expect("utf-8")],
        "{}",
        chain(&p)
    );
}

/// A script runs under its interpreter: the exe is the interpreter, argv names the script.
#[test]
fn script_runs_under_its_interpreter() {
    if !helpers::live_capture_available("script_runs_under_its_interpreter") {
        return;
    }
    let py = python();
    let store = TempStore::new();
    let work = Work::new();
    let file = work.file("scripted.txt", "s");
    let script = work.file(
        "of-script.py",
        &format!(
            "#!{}\nimport sys\nopen(sys.argv[1]).read()\n",
            py.to_str().expect("utf-8")
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .expect("chmod the script");

    let rec = Recorder::start(&store, &[]);
    let mut child = spawn(
        Command::new(&script).arg(&file).stdin(Stdio::null()),
        "the script",
    );
    let pid = child.id();
    wait_ok(&mut child, "the script");
    rec.stop();

    let events = read_store(&store.dir);
    let (ev, p) = opener(&events, &file);
    assert_eq!(ev.pid, pid);
    assert_eq!(exe(&p).as_deref(), py.to_str(), "{}", chain(&p));
    assert_eq!(
        args(&p),
        [
            py.to_str().expect("utf-8"),
            script.to_str().expect("utf-8"),
            file.to_str().expect("utf-8")
        ],
        "{}",
        chain(&p)
    );
    assert_eq!(
        p.comm.as_bytes(),
        b"of-script.py",
        "the name is the script's: {}",
        chain(&p)
    );
}

/// A process in new pid and mount namespaces is recorded with them, under its host pid.
#[test]
fn new_pid_and_mount_namespace_is_recorded() {
    if !helpers::live_capture_available("new_pid_and_mount_namespace_is_recorded") {
        return;
    }
    let store = TempStore::new();
    let work = Work::new();
    let file = work.file("unshared.txt", "u");
    let (pidns, mntns) = (own_ns("pid"), own_ns("mnt"));

    let rec = Recorder::start(&store, &[]);
    let mut child = Command::new("unshare")
        .args(["--pid", "--mount", "--fork", "cat"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn unshare");
    let unshare_pid = child.id();
    wait_ok(&mut child, "unshare");
    rec.stop();

    let events = read_store(&store.dir);
    let (ev, p) = opener(&events, &file);
    // In its namespace the cat is pid 1; the store keeps the host's pids.
    assert_ne!(ev.pid, 1, "{}", chain(&p));
    assert_eq!(ev.ppid, unshare_pid, "the host parent pid: {ev:?}");
    assert_eq!(p.ppid, unshare_pid, "{}", chain(&p));
    assert_eq!(exe(&p).as_deref(), resolve("cat").to_str(), "{}", chain(&p));
    let (pns, mns) = (
        p.pidns.expect("a pid namespace"),
        p.mntns.expect("a mount namespace"),
    );
    assert_ne!(pns, pidns, "a new pid namespace: {p:?}");
    assert_ne!(mns, mntns, "a new mount namespace: {p:?}");

    let parent = p.ancestors().next().expect("a parent");
    assert_eq!(parent.pid, unshare_pid, "{}", chain(&p));
    assert_eq!(
        exe(parent).as_deref(),
        resolve("unshare").to_str(),
        "{}",
        chain(&p)
    );
    assert_eq!(
        parent.pidns,
        Some(pidns),
        "unshare itself stays in ours: {}",
        chain(&p)
    );
    assert_eq!(parent.mntns, Some(mntns), "as exec'd: {}", chain(&p));
    assert_is_us(p.ancestors().nth(1).expect("a grandparent"));
}

/// Cgroup directories made for one test, removed (once empty) on drop.
struct Cgroups {
    dirs: Vec<PathBuf>,
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for d in &self.dirs {
            // A cgroup is busy until its last process is reaped and released: retry a while.
            for _ in 0..100 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Where our cgroups are: (mount point, our path) for the unified hierarchy and the v1 memory
/// controller, those present.
fn cgroup_places() -> Vec<(PathBuf, String)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("own cgroup");
    let own_path = |unified: bool| -> Option<String> {
        own.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (id, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            let hit = if unified {
                id == "0" && ctrl.is_empty()
            } else {
                ctrl.split(',').any(|c| c == "memory")
            };
            hit.then(|| path.to_owned())
        })
    };
    let mut out = Vec::new();
    for line in mounts.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 4 {
            continue;
        }
        let (mnt, fstype, opts) = (f[1], f[2], f[3]);
        let path = match fstype {
            "cgroup2" => own_path(true),
            "cgroup" if opts.split(',').any(|o| o == "memory") => own_path(false),
            _ => None,
        };
        if let Some(path) = path {
            out.push((PathBuf::from(mnt), path));
        }
    }
    out
}

/// A process in a cgroup named like a docker container's gets the container id; its cgroup path
/// names it.
#[test]
fn container_like_cgroup_gets_a_container_id() {
    if !helpers::live_capture_available("container_like_cgroup_gets_a_container_id") {
        return;
    }
    let store = TempStore::new();
    let work = Work::new();
    let file = work.file("contained.txt", "c");
    let id: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let scope = format!("docker-{id}.scope");
    let mut made = Cgroups { dirs: Vec::new() };
    let mut procs: Vec<CString> = Vec::new();
    for (mnt, own) in cgroup_places() {
        let dir = mnt.join(own.trim_start_matches('/')).join(&scope);
        if std::fs::create_dir(&dir).is_ok() {
            procs.push(
                CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).expect("no NUL"),
            );
            made.dirs.push(dir);
        }
    }
    if made.dirs.is_empty() {
        let why = "no cgroup hierarchy where a cgroup can be made";
        helpers::skip("container_like_cgroup_gets_a_container_id", why);
        return;
    }
    let inodes: Vec<u64> = made
        .dirs
        .iter()
        .map(|d| std::fs::metadata(d).expect("cgroup dir").ino())
        .collect();

    let rec = Recorder::start(&store, &[]);
    let mut cmd = Command::new("cat");
    cmd.arg(&file).stdin(Stdio::null()).stdout(Stdio::null());
    // SAFETY: only open/write/close on CStrings made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for p in &procs {
                let fd = libc::open(p.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = std::io::Error::last_os_error();
                libc::close(fd);
                if n != 1 {
                    return Err(err);
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn cat into the cgroups");
    wait_ok(&mut child, "contained cat");
    rec.stop();
    drop(made);

    let events = read_store(&store.dir);
    let (_, p) = opener(&events, &file);
    let cgroup = p
        .cgroup
        .as_ref()
        .map(|c| c.lossy().into_owned())
        .unwrap_or_default();
    assert!(
        cgroup.ends_with(&format!("/{scope}")),
        "cgroup {cgroup:?} is ours: {p:?}"
    );
    assert_eq!(
        p.container_id.as_ref().map(|c| c.lossy().into_owned()),
        Some(id),
        "{p:?}"
    );
    assert!(
        inodes.contains(&p.cgroup_id),
        "cgroup id {} is one of our cgroups' {inodes:?}",
        p.cgroup_id
    );
}

/// A chrooted process's opens and exe are the host's paths (issue #25), and its root is recorded
/// with its process (`root`): `chroot /x cat /etc/hostname` cannot pass for the host's
/// /etc/hostname, nor the jail's cat for /usr/bin/cat.
#[test]
fn chrooted_process_records_its_root() {
    if !helpers::live_capture_available("chrooted_process_records_its_root") {
        return;
    }
    let work = Work::new();
    let root = std::fs::canonicalize(&work.dir)
        .expect("canonical")
        .join("jail");
    // cat and the libraries it loads, at the same paths inside the jail.
    let ldd = Command::new("ldd")
        .arg("/usr/bin/cat")
        .output()
        .expect("ldd");
    let mut files = vec![PathBuf::from("/usr/bin/cat")];
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        if let Some(p) = line.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(PathBuf::from(p));
        }
    }
    for f in &files {
        let to = root.join(f.strip_prefix("/").expect("absolute"));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(f, &to).expect("copy into the jail");
    }
    std::fs::create_dir_all(root.join("etc")).expect("mkdir etc");
    std::fs::write(root.join("etc/hostname"), "jail\n").expect("write");
    let store = TempStore::new();
    let rec = Recorder::start(&store, &[]);
    let out = Command::new("chroot")
        .arg(&root)
        .args(["/usr/bin/cat", "/etc/hostname"])
        .output()
        .expect("run chroot");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"jail\n");
    rec.stop();
    let events = read_store(&store.dir);
    let ev = events
        .iter()
        .find(|e| {
            e.path.lossy() == root.join("etc/hostname").to_string_lossy()
                && e.raw_path.as_bytes() == b"/etc/hostname"
                && e.process.as_ref().and_then(|p| p.root.as_ref()).is_some()
        })
        .expect("the jailed open of /etc/hostname, with its root");
    let p = ev.process.as_ref().expect("lineage");
    assert_eq!(
        p.root.as_ref().map(|r| r.lossy().into_owned()),
        Some(root.display().to_string())
    );
    assert_eq!(
        exe(p),
        Some(root.join("usr/bin/cat").display().to_string()),
        "{}",
        chain(p)
    );
    // The host's processes have no root of their own.
    assert!(events
        .iter()
        .filter(|e| e.pid == std::process::id())
        .all(|e| e.process.as_ref().is_none_or(|p| p.root.is_none())));
}
