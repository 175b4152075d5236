//! The store directory as hostile territory: every file is opened relative to the directory's own
//! descriptor with `O_NOFOLLOW`, new files with `O_EXCL`, anything that is not a regular file is
//! refused, and nothing is ever renamed over an existing file. Whoever can write in the directory
//! can plant symlinks, FIFOs and foreign files; none of them can make the store write, chmod or
//! truncate anything else, or hang a reader.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Result, StoreError};

/// An open store directory.
#[derive(Debug)]
pub struct StoreDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a directory entry is, from `lstat` (links are not followed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

fn cstr(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in file name"))
}

/// Renames `from` to `to` (both relative to `dfd`, or `AT_FDCWD`) unless `to` exists (then
/// `AlreadyExists`); never replaces a file, never follows a link at `to`.
pub(crate) fn renameat_noreplace(dfd: RawFd, from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated names relative to `dfd`; the kernel reads them and nothing else.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            dfd,
            from.as_ptr(),
            dfd,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOSYS) {
        return Err(e);
    }
    // A filesystem without RENAME_NOREPLACE: link (fails if `to` exists), then unlink.
    // SAFETY: as above.
    check(unsafe { libc::linkat(dfd, from.as_ptr(), dfd, to.as_ptr(), 0) })?;
    check(unsafe { libc::unlinkat(dfd, from.as_ptr(), 0) }).map(|_| ())
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// The bad-input error for a store directory others could tamper with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnsafeStore(pub String);

impl StoreDir {
    /// Opens `path` for writing: creates it (0700) if missing; refuses a symlink, a directory
    /// owned by another user, or one that others can write to. A directory others can only read
    /// is tightened to 0700 through its own descriptor (recorded paths are sensitive).
    pub fn open_for_writing(path: &Path) -> Result<StoreDir> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(super::io_err(parent))?;
                }
                let c = CString::new(path.as_os_str().as_bytes())
                    .map_err(|_| unsafe_store(path, "the path contains a NUL byte"))?;
                // SAFETY: a valid NUL-terminated path.
                match check(unsafe { libc::mkdir(c.as_ptr(), 0o700) }) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(super::io_err(path)(e)),
                }
            }
            Err(e) => return Err(super::io_err(path)(e)),
            Ok(_) => {}
        }
        let dir = Self::open_dir(path)?;
        let st = dir.fstat()?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if st.st_uid != me {
            return Err(unsafe_store(
                path,
                &format!(
                    "it is owned by uid {}, not by the user recording (uid {me}): a store must belong to its writer (chown {me} {} or choose another --store)",
                    st.st_uid,
                    path.display()
                ),
            ));
        }
        if st.st_mode & 0o022 != 0 {
            return Err(unsafe_store(
                path,
                &format!(
                    "other users can write to it (mode {:04o}): they could plant or replace segments (chmod 700 {})",
                    st.st_mode & 0o7777,
                    path.display()
                ),
            ));
        }
        if st.st_mode & 0o077 != 0 {
            // SAFETY: fchmod on the descriptor we hold: never through a name.
            check(unsafe { libc::fchmod(dir.fd.as_raw_fd(), 0o700) })
                .map_err(super::io_err(path))?;
        }
        Ok(dir)
    }

    /// Opens `path` for reading: it must be a directory, not a symlink to one.
    pub fn open_for_reading(path: &Path) -> Result<StoreDir> {
        Self::open_dir(path)
    }

    fn open_dir(path: &Path) -> Result<StoreDir> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| unsafe_store(path, "the path contains a NUL byte"))?;
        // SAFETY: a valid NUL-terminated path; the result is checked.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            // With O_DIRECTORY, a link at the end gives ENOTDIR (ELOOP on some kernels).
            let link = std::fs::read_link(path).ok();
            return Err(match (e.raw_os_error(), link) {
                (Some(libc::ELOOP | libc::ENOTDIR), Some(to)) => unsafe_store(
                    path,
                    &format!(
                        "it is a symbolic link (to {}), and a store is never reached through one: a link planted where the store belongs would redirect every write (give the real path)",
                        to.display()
                    ),
                ),
                (Some(libc::ENOTDIR), None) => unsafe_store(path, "it is not a directory"),
                _ if e.kind() == io::ErrorKind::NotFound => StoreError::Missing { path: path.into() },
                _ => super::io_err(path)(e),
            });
        }
        Ok(StoreDir {
            // SAFETY: a descriptor we just opened and own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn fstat(&self) -> Result<libc::stat> {
        // SAFETY: a zeroed stat is a valid out-parameter; the fd is ours.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check(unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) })
            .map_err(super::io_err(&self.path))?;
        Ok(st)
    }

    /// `lstat` of an entry; `None` when it does not exist.
    pub fn kind(&self, name: &str) -> io::Result<Option<(Kind, u64)>> {
        let c = cstr(name)?;
        // SAFETY: a zeroed stat is a valid out-parameter; c is NUL-terminated.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(e)
            };
        }
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        };
        Ok(Some((kind, st.st_size as u64)))
    }

    /// Opens an existing regular file for reading: not through a symlink, never blocking on a
    /// FIFO or a device.
    pub fn open_read(&self, name: &str) -> io::Result<File> {
        let f = self.openat(name, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
        regular(&f)?;
        Ok(f)
    }

    /// Opens an existing regular file for reading and writing (the lock file).
    pub fn open_rw_or_create(&self, name: &str) -> io::Result<File> {
        let f = self.openat(name, libc::O_RDWR | libc::O_CREAT | libc::O_NONBLOCK, 0o600)?;
        regular(&f)?;
        Ok(f)
    }

    /// Creates a new file, failing if anything (a file, a link, a FIFO) has that name.
    pub fn create_new(&self, name: &str) -> io::Result<File> {
        self.openat(name, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, 0o600)
    }

    fn openat(&self, name: &str, flags: libc::c_int, mode: libc::c_uint) -> io::Result<File> {
        let c = cstr(name)?;
        // SAFETY: NUL-terminated name relative to our directory fd; the result is checked.
        let fd = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode,
            )
        })?;
        // SAFETY: a descriptor we just opened and own.
        let f = unsafe { File::from_raw_fd(fd) };
        if flags & libc::O_NONBLOCK != 0 {
            // Back to blocking I/O for the regular file it turned out to be.
            // SAFETY: fcntl on our own descriptor.
            let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            unsafe { libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK) };
        }
        Ok(f)
    }

    /// Removes an entry (a link is removed, never followed); a missing one is fine.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: NUL-terminated name relative to our directory fd.
        match check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) }) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Renames `from` to `to` unless `to` exists (then `AlreadyExists`): a seal never replaces a
    /// file.
    pub fn rename_noreplace(&self, from: &str, to: &str) -> io::Result<()> {
        renameat_noreplace(self.fd.as_raw_fd(), &cstr(from)?, &cstr(to)?)
    }

    /// Renames `from` over `to` (for the store's own bookkeeping files; a link at `to` is
    /// replaced, never followed).
    pub fn rename_replace(&self, from: &str, to: &str) -> io::Result<()> {
        let (f, t) = (cstr(from)?, cstr(to)?);
        let dfd = self.fd.as_raw_fd();
        // SAFETY: NUL-terminated names relative to our directory fd.
        check(unsafe { libc::renameat(dfd, f.as_ptr(), dfd, t.as_ptr()) }).map(|_| ())
    }

    /// Moves a file that does not belong in the store out of the way, under a name no segment
    /// can have, so that recording and reading go on; returns the new name.
    pub fn quarantine(&self, name: &str) -> io::Result<String> {
        let stamp = crate::timespec::now_ns();
        for n in 0..100 {
            let to = format!("{name}.quarantined-{stamp}-{n}");
            match self.rename_noreplace(name, &to) {
                Ok(()) => return Ok(to),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free quarantine name",
        ))
    }

    /// Names of the entries (not `.`/`..`).
    pub fn names(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        // Read through /proc/self/fd so the listing is of the very directory we hold.
        let path = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        let rd = std::fs::read_dir(&path).or_else(|_| std::fs::read_dir(&self.path));
        for e in rd.map_err(super::io_err(&self.path))? {
            let e = e.map_err(super::io_err(&self.path))?;
            out.push(e.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }

    pub fn sync(&self) -> Result<()> {
        // SAFETY: fsync on our own descriptor.
        check(unsafe { libc::fsync(self.fd.as_raw_fd()) })
            .map(|_| ())
            .map_err(super::io_err(&self.path))
    }
}

fn regular(f: &File) -> io::Result<()> {
    let md = f.metadata()?;
    if md.file_type().is_file() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ))
    }
}

fn unsafe_store(path: &Path, why: &str) -> StoreError {
    StoreError::Unsafe {
        path: path.into(),
        reason: why.to_owned(),
    }
}

/// For messages: an entry's name as text.
pub fn display(name: &CStr) -> String {
    name.to_string_lossy().into_owned()
}
