//! Live capture (issue #10): the resolved path follows the file system as it is at each open.
//! These guard the probes' directory path cache (bpf/opens.bpf.c): a cached directory must never
//! outlive a rename, a directory replaced at the same place, another root or another mount of
//! the same tree. The cache is per CPU, so every opener here is pinned to one CPU: the second
//! open of a directory is then a cache hit for sure. Root only; filtered by our pids and paths.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use open_forensics::event::{Op, PathSource};

use crate::helpers::{self, read_store, TempStore};
use crate::recorder::Recorder;

fn open_at(dirfd: i32, path: &[u8]) -> i32 {
    let c = CString::new(path).expect("no NUL");
    // SAFETY: a NUL-terminated path; the caller closes any fd returned.
    unsafe { libc::openat(dirfd, c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
}

fn open_path(p: &Path) -> i32 {
    open_at(libc::AT_FDCWD, p.as_os_str().as_bytes())
}

fn close(fd: i32) {
    if fd >= 0 {
        // SAFETY: closing an fd this test opened.
        unsafe { libc::close(fd) };
    }
}

/// Pins the calling thread to CPU 0 until dropped (the probes' cache is per CPU).
struct Pinned(libc::cpu_set_t);

impl Pinned {
    fn cpu0() -> Pinned {
        // SAFETY: cpu_set_t is plain data; the calls only read and write these sets.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old),
                0
            );
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut one);
            assert_eq!(
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one),
                0
            );
            Pinned(old)
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: restores the set read in `cpu0`.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) };
    }
}

/// What a forked child does, with only raw syscalls on memory prepared before the fork.
pub(crate) enum Step {
    Chroot(CString),
    Chdir(CString),
    /// A private mount namespace, then `mount --bind FROM TO` in it.
    BindMount(CString, CString),
    /// A private mount namespace, then a tmpfs mounted at the path.
    Tmpfs(CString),
    Mkdir(CString),
    /// Creates (or truncates) a file.
    Create(CString),
    Open(CString),
    Rename(CString, CString),
    Unlink(CString),
}

/// A mount namespace of the calling process's own, with nothing propagating out of it.
///
/// # Safety
/// Raw syscalls only (it runs in a forked child).
unsafe fn private_mounts() -> bool {
    libc::unshare(libc::CLONE_NEWNS) == 0
        && libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) == 0
}

/// Runs `steps` in a forked child pinned to CPU 0; returns its pid once it exited 0.
pub(crate) fn in_child(steps: &[Step]) -> u32 {
    // SAFETY: the child makes raw syscalls on CStrings owned by `steps`, then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut one);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
                libc::_exit(10);
            }
            for (i, step) in steps.iter().enumerate() {
                let ok = match step {
                    Step::Chroot(p) => libc::chroot(p.as_ptr()) == 0,
                    Step::Chdir(p) => libc::chdir(p.as_ptr()) == 0,
                    Step::BindMount(from, to) => {
                        private_mounts()
                            && libc::mount(
                                from.as_ptr(),
                                to.as_ptr(),
                                std::ptr::null(),
                                libc::MS_BIND,
                                std::ptr::null(),
                            ) == 0
                    }
                    Step::Tmpfs(at) => {
                        private_mounts()
                            && libc::mount(
                                c"tmpfs".as_ptr(),
                                at.as_ptr(),
                                c"tmpfs".as_ptr(),
                                0,
                                std::ptr::null(),
                            ) == 0
                    }
                    Step::Mkdir(p) => libc::mkdir(p.as_ptr(), 0o700) == 0,
                    Step::Create(p) => {
                        let fd = libc::open(
                            p.as_ptr(),
                            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                            0o600,
                        );
                        fd >= 0 && libc::close(fd) == 0
                    }
                    Step::Open(p) => {
                        let fd = libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                        if fd >= 0 {
                            libc::close(fd);
                        }
                        true
                    }
                    Step::Rename(a, b) => libc::rename(a.as_ptr(), b.as_ptr()) == 0,
                    Step::Unlink(p) => libc::unlink(p.as_ptr()) == 0,
                };
                if !ok {
                    libc::_exit(20 + i as i32);
                }
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed at step {}",
        libc::WEXITSTATUS(status) - 20
    );
    pid as u32
}

/// A test's store and its own canonical temp directory (None: no live capture here).
struct Scene {
    store: TempStore,
    root: std::path::PathBuf,
    _work: tempfile::TempDir,
}

fn scene(test: &str) -> Option<Scene> {
    if !helpers::live_capture_available(test) {
        return None;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(work.path()).expect("canonical temp dir");
    Some(Scene {
        store: TempStore::new(),
        root,
        _work: work,
    })
}

pub(crate) fn cstr(p: impl AsRef<Path>) -> CString {
    CString::new(p.as_ref().as_os_str().as_bytes()).expect("no NUL")
}

/// The paths of `pid`'s opens of files named `leaf`, in order.
fn leaf_paths(store: &TempStore, pid: u32) -> Vec<String> {
    paths_of(store, &[pid])
        .into_iter()
        .filter(|(_, p, _)| p.ends_with("/leaf"))
        .map(|(_, p, _)| p)
        .collect()
}

/// (pid, path, source) of the opens of `pids`, in order (each test filters its own paths; the
/// renames and mkdirs the tests make are recorded too, and are not what these tests are about).
fn paths_of(store: &TempStore, pids: &[u32]) -> Vec<(u32, String, PathSource)> {
    read_store(&store.dir)
        .into_iter()
        .filter(|e| pids.contains(&e.pid) && e.op == Op::Open)
        .map(|e| (e.pid, e.path.lossy().into_owned(), e.path_source))
        .collect()
}

/// The paths of this process's opens of files (PathSource::File) under `root`, in order.
fn own_files_under(store: &TempStore, root: &Path) -> Vec<String> {
    let root = root.to_string_lossy();
    paths_of(store, &[std::process::id()])
        .into_iter()
        .filter(|(_, p, s)| *s == PathSource::File && p.starts_with(&*root))
        .map(|(_, p, _)| p)
        .collect()
}

/// A directory renamed between two opens of the same file: the second open is recorded under
/// the new name, both by absolute path and through a directory fd opened before the rename (a
/// failed relative open there too); a new directory created at the old name is its own path.
#[test]
fn renamed_directory_is_recorded_under_its_new_name() {
    let Some(Scene { store, root, _work }) =
        scene("renamed_directory_is_recorded_under_its_new_name")
    else {
        return;
    };
    let old = root.join("before/deep");
    std::fs::create_dir_all(&old).expect("mkdir");
    std::fs::write(old.join("leaf.txt"), b"x").expect("write");

    let rec = Recorder::start(&store, &[]);
    let _pin = Pinned::cpu0();
    // Warm whatever the probes keep: the same directory, several times.
    for _ in 0..3 {
        let fd = open_path(&old.join("leaf.txt"));
        assert!(fd >= 0, "open before the rename");
        close(fd);
    }
    let dirfd = open_path(&old);
    assert!(dirfd >= 0, "open the directory");
    std::fs::rename(root.join("before"), root.join("after")).expect("rename");
    let new = root.join("after/deep");
    let fd = open_path(&new.join("leaf.txt"));
    assert!(fd >= 0, "open after the rename");
    close(fd);
    let fd = open_at(dirfd, b"leaf.txt");
    assert!(fd >= 0, "open through the directory fd");
    close(fd);
    assert!(open_at(dirfd, b"absent.txt") < 0, "a failed relative open");
    // A different directory at the old name.
    std::fs::create_dir_all(&old).expect("mkdir again");
    std::fs::write(old.join("leaf.txt"), b"y").expect("write");
    let fd = open_path(&old.join("leaf.txt"));
    assert!(fd >= 0, "open in the new directory at the old name");
    close(fd);
    close(dirfd);
    rec.stop();

    let me = std::process::id();
    let under = root.as_os_str().as_bytes();
    let events: Vec<_> = read_store(&store.dir)
        .into_iter()
        .filter(|e| e.pid == me && e.op == Op::Open && e.path.as_bytes().starts_with(under))
        .collect();
    let got: Vec<(String, PathSource)> = events
        .iter()
        .map(|e| (e.path.lossy().into_owned(), e.path_source))
        .collect();
    let s = |p: &Path| p.display().to_string();
    let want = vec![
        (s(&old.join("leaf.txt")), PathSource::File),
        (s(&old.join("leaf.txt")), PathSource::File),
        (s(&old.join("leaf.txt")), PathSource::File),
        (s(&old), PathSource::File),
        (s(&new.join("leaf.txt")), PathSource::File),
        (s(&new.join("leaf.txt")), PathSource::File),
        (s(&new.join("absent.txt")), PathSource::Dirfd),
        // Writing the new file is an open too, then the read.
        (s(&old.join("leaf.txt")), PathSource::File),
        (s(&old.join("leaf.txt")), PathSource::File),
    ];
    assert_eq!(got, want);
}

/// A directory removed and another made in its parent with a name of the same length (its
/// dentry is likely the freed one, reused): opens there are recorded under the new name. Done
/// over and over so that a reused dentry address is certain to come up.
#[test]
fn directory_replaced_by_another_of_the_same_name_length_is_recorded_under_its_name() {
    let Some(Scene { store, root, _work }) =
        scene("directory_replaced_by_another_of_the_same_name_length_is_recorded_under_its_name")
    else {
        return;
    };
    let rec = Recorder::start(&store, &[]);
    let _pin = Pinned::cpu0();
    let mut want = Vec::new();
    for i in 0..40 {
        let dir = root.join(format!("d{i:03}"));
        std::fs::create_dir(&dir).expect("mkdir");
        let leaf = dir.join("leaf");
        std::fs::write(&leaf, b"x").expect("write");
        for _ in 0..3 {
            let fd = open_path(&leaf);
            assert!(fd >= 0, "open {}", leaf.display());
            close(fd);
        }
        std::fs::remove_dir_all(&dir).expect("rm");
        // Written once, opened three times; then the removal lists the directory.
        want.extend(vec![leaf.display().to_string(); 4]);
        want.push(dir.display().to_string());
    }
    rec.stop();
    let got = own_files_under(&store, &root);
    assert!(
        got == want,
        "got {} paths: {:?}…",
        got.len(),
        &got[..got.len().min(12)]
    );
}

/// One directory opened from the host, from a chrooted process whose root is above it, and from
/// the host again, all on one CPU: each is the host's path (issue #25: a chroot renames nothing),
/// whichever opener filled the directory cache.
#[test]
fn one_directory_seen_from_a_chroot_is_the_hosts_path() {
    let Some(Scene { store, root, _work }) =
        scene("one_directory_seen_from_a_chroot_is_the_hosts_path")
    else {
        return;
    };
    let sub = root.join("jail/etc/conf");
    std::fs::create_dir_all(&sub).expect("mkdir");
    std::fs::write(sub.join("leaf"), b"x").expect("write");
    let host_path = sub.join("leaf");
    let rec = Recorder::start(&store, &[]);
    let _pin = Pinned::cpu0();
    let host = || {
        for _ in 0..3 {
            let fd = open_path(&host_path);
            assert!(fd >= 0, "open from the host");
            close(fd);
        }
    };
    host();
    let child = in_child(&[
        Step::Chroot(cstr(root.join("jail"))),
        Step::Chdir(c"/".into()),
        Step::Open(c"/etc/conf/leaf".into()),
        Step::Open(c"/etc/conf/leaf".into()),
        Step::Open(c"/etc/conf/leaf".into()),
    ]);
    host();
    rec.stop();
    let me = std::process::id();
    let got: Vec<(u32, String)> = paths_of(&store, &[me, child])
        .into_iter()
        .filter(|(_, p, _)| p.ends_with("/etc/conf/leaf"))
        .map(|(pid, p, _)| (pid, p))
        .collect();
    let h = host_path.display().to_string();
    let want: Vec<(u32, String)> = [(me, &h); 3]
        .into_iter()
        .chain([(child, &h); 3])
        .chain([(me, &h); 3])
        .map(|(p, s)| (p, s.clone()))
        .collect();
    assert_eq!(got, want);
}

/// The same directory reached through a bind mount (another mount of the same dentries) and
/// through its own path, on one CPU: each open is recorded under the path it was made by.
#[test]
fn one_directory_through_a_bind_mount_is_recorded_under_each_mount() {
    let Some(Scene { store, root, _work }) =
        scene("one_directory_through_a_bind_mount_is_recorded_under_each_mount")
    else {
        return;
    };
    let real = root.join("real/dir");
    let bound = root.join("bound");
    std::fs::create_dir_all(&real).expect("mkdir");
    std::fs::create_dir_all(&bound).expect("mkdir");
    std::fs::write(real.join("leaf"), b"x").expect("write");
    let rec = Recorder::start(&store, &[]);
    let (a, b) = (real.join("leaf"), bound.join("leaf"));
    let child = in_child(&[
        Step::Open(cstr(&a)),
        Step::Open(cstr(&a)),
        Step::BindMount(cstr(&real), cstr(&bound)),
        Step::Open(cstr(&b)),
        Step::Open(cstr(&b)),
        Step::Open(cstr(&a)),
        Step::Open(cstr(&b)),
    ]);
    rec.stop();
    let got = leaf_paths(&store, child);
    let (a, b) = (a.display().to_string(), b.display().to_string());
    assert_eq!(got, vec![a.clone(), a.clone(), b.clone(), b.clone(), a, b]);
}

/// A process whose cwd's parent is renamed: its failed relative opens (walked from the cwd) and
/// its successful ones are recorded under the new name, on one CPU.
#[test]
fn cwd_under_a_renamed_directory_is_recorded_under_its_new_name() {
    let Some(Scene { store, root, _work }) =
        scene("cwd_under_a_renamed_directory_is_recorded_under_its_new_name")
    else {
        return;
    };
    let old = root.join("old/cwd");
    std::fs::create_dir_all(&old).expect("mkdir");
    std::fs::write(old.join("leaf"), b"x").expect("write");
    let rec = Recorder::start(&store, &[]);
    let child = in_child(&[
        Step::Chdir(cstr(&old)),
        Step::Open(c"absent".into()),
        Step::Open(c"absent".into()),
        Step::Open(c"leaf".into()),
        Step::Rename(cstr(root.join("old")), cstr(root.join("new"))),
        Step::Open(c"absent".into()),
        Step::Open(c"leaf".into()),
    ]);
    rec.stop();
    let got: Vec<(String, PathSource)> = paths_of(&store, &[child])
        .into_iter()
        .filter(|(_, p, _)| p.starts_with(&*root.to_string_lossy()))
        .map(|(_, p, s)| (p, s))
        .collect();
    let (o, n) = (
        old.display().to_string(),
        root.join("new/cwd").display().to_string(),
    );
    assert_eq!(
        got,
        vec![
            (format!("{o}/absent"), PathSource::Cwd),
            (format!("{o}/absent"), PathSource::Cwd),
            (format!("{o}/leaf"), PathSource::File),
            (format!("{n}/absent"), PathSource::Cwd),
            (format!("{n}/leaf"), PathSource::File),
        ]
    );
}

/// Directories on both sides of a mount crossing (a tmpfs mounted inside the tree: the walk goes
/// from its root to its mountpoint) renamed between opens, on one CPU: first one on the tmpfs, then
/// one above the mountpoint; each time the open is recorded under the new names.
#[test]
fn renamed_directory_beyond_a_mount_is_recorded_under_its_new_name() {
    let Some(Scene { store, root, _work }) =
        scene("renamed_directory_beyond_a_mount_is_recorded_under_its_new_name")
    else {
        return;
    };
    let mnt = root.join("up/mnt");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let (old, new) = (mnt.join("old"), mnt.join("new"));
    let moved = root.join("down/mnt/new/deep/leaf");
    let rec = Recorder::start(&store, &[]);
    let child = in_child(&[
        Step::Tmpfs(cstr(&mnt)),
        Step::Mkdir(cstr(&old)),
        Step::Mkdir(cstr(old.join("deep"))),
        Step::Create(cstr(old.join("deep/leaf"))),
        Step::Open(cstr(old.join("deep/leaf"))),
        Step::Rename(cstr(&old), cstr(&new)),
        Step::Open(cstr(new.join("deep/leaf"))),
        Step::Open(cstr(new.join("deep/leaf"))),
        Step::Rename(cstr(root.join("up")), cstr(root.join("down"))),
        Step::Open(cstr(&moved)),
        Step::Open(cstr(&moved)),
    ]);
    rec.stop();
    let got = leaf_paths(&store, child);
    let (o, n, m) = (
        old.join("deep/leaf").display().to_string(),
        new.join("deep/leaf").display().to_string(),
        moved.display().to_string(),
    );
    assert_eq!(got, vec![o.clone(), o, n.clone(), n, m.clone(), m]);
}

/// Leaf names of every length from 1 to 60 bytes (across the 32- and 40-byte sizes of the
/// dentry's inline name, which the probe copies as words), and a file renamed to ever shorter
/// names between opens (its inline name rewritten in place): each open is recorded under exactly
/// its name, no byte of an earlier, longer one after it.
#[test]
fn leaf_names_of_every_length_are_recorded_whole() {
    let Some(Scene { store, root, _work }) = scene("leaf_names_of_every_length_are_recorded_whole")
    else {
        return;
    };
    let rec = Recorder::start(&store, &[]);
    let _pin = Pinned::cpu0();
    let mut want = Vec::new();
    for len in 1..=60 {
        let leaf = root.join("n".repeat(len - 1) + "Z");
        std::fs::write(&leaf, b"x").expect("write");
        let fd = open_path(&leaf);
        assert!(fd >= 0, "open {}", leaf.display());
        close(fd);
        want.extend(vec![leaf.display().to_string(); 2]);
    }
    let mut old = root.join("r".repeat(38) + "Z");
    std::fs::write(&old, b"x").expect("write");
    want.push(old.display().to_string());
    for len in [30, 17, 9, 2] {
        let new = root.join("s".repeat(len - 1) + "Y");
        std::fs::rename(&old, &new).expect("rename");
        let fd = open_path(&new);
        assert!(fd >= 0, "open {}", new.display());
        close(fd);
        want.push(new.display().to_string());
        old = new;
    }
    rec.stop();
    let got = own_files_under(&store, &root);
    assert!(got == want, "got {got:#?}\nwant {want:#?}");
}
