//! The single-writer lock: `flock(2)` on `STORE/store.lock`, released by the kernel when the writer
//! dies, so a SIGKILLed recorder never leaves a stale lock behind. The lock file is opened through
//! the store's directory descriptor without following links and must be a regular file of the
//! writer's with a single link: a planted `store.lock` (a symbolic link, a hard link to another
//! file, a file of another user's) cannot make a writer truncate or write anything else.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use super::dir::StoreDir;
use super::{io_err, Result, StoreError};

pub(crate) const LOCK_FILE: &str = "store.lock";

#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

impl StoreLock {
    pub(crate) fn acquire(dir: &StoreDir) -> Result<StoreLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = dir
            .open_rw_or_create(LOCK_FILE)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => StoreError::Unsafe {
                    path: path.clone(),
                    reason: "the lock file is a symbolic link (remove it)".into(),
                },
                _ => io_err(&path)(e),
            })?;
        // Checked before it is locked or truncated: nothing is written to a file that is not ours.
        let md = file.metadata().map_err(io_err(&path))?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        let refuse = if md.uid() != me {
            Some(format!(
                "the lock file is owned by uid {}, not by the writer (uid {me}): remove it",
                md.uid()
            ))
        } else if md.nlink() != 1 {
            Some(format!(
                "the lock file has {} hard links: another name points at the same file, which a writer would overwrite (remove {})",
                md.nlink(),
                path.display()
            ))
        } else {
            None
        };
        if let Some(reason) = refuse {
            return Err(StoreError::Unsafe { path, reason });
        }
        // SAFETY: flock on an fd we own; no memory is shared with the kernel.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut s = String::new();
                let _ = file.take(32).read_to_string(&mut s);
                return Err(StoreError::Locked {
                    dir: dir.path().into(),
                    pid: s.trim().parse().ok(),
                });
            }
            return Err(StoreError::Io { path, source: err });
        }
        // Our own regular file, locked: rewriting it touches nothing else.
        file.set_len(0).map_err(io_err(&path))?;
        file.rewind().map_err(io_err(&path))?;
        write!(file, "{}", std::process::id()).map_err(io_err(&path))?;
        Ok(StoreLock { _file: file })
    }

    /// Whether a writer holds the lock now (readers use this to tell a live active segment from one
    /// a dead writer left behind). Takes and drops a shared lock; never blocks.
    pub(crate) fn is_held(dir: &StoreDir) -> bool {
        let Ok(file) = dir.open_read(LOCK_FILE) else {
            return false;
        };
        // SAFETY: as above.
        let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
        if free {
            // SAFETY: as above.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        }
        !free
    }
}
