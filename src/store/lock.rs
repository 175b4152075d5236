//! The single-writer lock: `flock(2)` on `STORE/store.lock`, released by the kernel when the writer
//! dies, so a SIGKILLed recorder never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{io_err, Result, StoreError};

pub(crate) const LOCK_FILE: &str = "store.lock";

#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

impl StoreLock {
    pub(crate) fn acquire(dir: &Path) -> Result<StoreLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        // SAFETY: flock on an fd we own; no memory is shared with the kernel.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                return Err(StoreError::Locked {
                    dir: dir.into(),
                    pid: s.trim().parse().ok(),
                });
            }
            return Err(StoreError::Io { path, source: err });
        }
        file.set_len(0).map_err(io_err(&path))?;
        file.rewind().map_err(io_err(&path))?;
        write!(file, "{}", std::process::id()).map_err(io_err(&path))?;
        Ok(StoreLock { _file: file })
    }

    /// Whether a writer holds the lock now (readers use this to tell a live active segment from one
    /// a dead writer left behind). Takes and drops a shared lock; never blocks.
    pub(crate) fn is_held(dir: &Path) -> bool {
        let path: PathBuf = dir.join(LOCK_FILE);
        let Ok(file) = File::open(&path) else {
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
