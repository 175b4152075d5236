//! Live capture (issue #10): the resolved path follows the file system as it is at each open.
//! These guard any shortcut the probes take to resolve directories faster (a cached prefix must
//! never outlive a rename). Root only; filtered by our pid and our temp paths.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use open_forensics::event::PathSource;

use crate::helpers::{self, read_store, Recorder, TempStore};

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

/// A directory renamed between two opens of the same file: the second open is recorded under
/// the new name, both by absolute path and through a directory fd opened before the rename (a
/// failed relative open there too); a new directory created at the old name is its own path.
#[test]
fn renamed_directory_is_recorded_under_its_new_name() {
    if !helpers::live_capture_available("renamed_directory_is_recorded_under_its_new_name") {
        return;
    }
    let store = TempStore::new();
    let work = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(work.path()).expect("canonical temp dir");
    let old = root.join("before/deep");
    std::fs::create_dir_all(&old).expect("mkdir");
    std::fs::write(old.join("leaf.txt"), b"x").expect("write");

    let rec = Recorder::start(&store, &[]);
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
        .filter(|e| e.pid == me && e.path.as_bytes().starts_with(under))
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
