//! Output paths another user could redirect: alert files, health files, `export --out`. A
//! recorder usually runs as root and writes where it is told; whoever can write in a directory on
//! the way could plant a symbolic link, a hard link or a file of their own there and make it
//! append to, replace or create a file of root's choosing elsewhere.
//!
//! So the directory a file goes in is reached from `/` one component at a time, and every
//! directory on the way must be *trusted*: owned by root or by us, and not writable by others
//! unless sticky (`/tmp`). A symbolic link on the way is followed only when root or we own it
//! (what `fs.protected_symlinks` does in sticky directories, enforced everywhere); its target is
//! walked by the same rules. Below that directory nothing is ever followed: files and
//! subdirectories are opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` relative to its
//! descriptor, a file appended to must be a regular file of ours with a single link, and a file
//! replaced is replaced by `renameat` (a link at its name is refused, not followed).

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// Why an output path was not used.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// Another user could redirect it: input to fix (exit 2).
    #[error("{path}: refused: {reason}")]
    Refused { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

type Result<T> = std::result::Result<T, PathError>;

fn refused(path: &Path, reason: impl Into<String>) -> PathError {
    PathError::Refused {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> PathError + '_ {
    move |source| PathError::Io {
        path: path.to_owned(),
        source,
    }
}

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in file name"))
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: a zeroed stat is a valid out-parameter; the fd is open.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(fd, &mut st) } as libc::c_long)?;
    Ok(st)
}

fn lstat_at(dfd: RawFd, name: &CString) -> io::Result<libc::stat> {
    // SAFETY: as above; `name` is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(
        unsafe { libc::fstatat(dfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) }
            as libc::c_long,
    )?;
    Ok(st)
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Why a directory (or link) with this owner and mode is not trusted, if it is not.
fn distrust(st: &libc::stat) -> Option<String> {
    let me = euid();
    if st.st_uid != 0 && st.st_uid != me {
        return Some(format!(
            "owned by uid {}, neither root nor the user writing (uid {me}): its owner could redirect the file",
            st.st_uid
        ));
    }
    let mode = st.st_mode & 0o7777;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR && mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Some(format!(
            "writable by every user without the sticky bit (mode {mode:04o}): anyone could plant a link there"
        ));
    }
    None
}

/// `openat2` relative to `dfd`, never leaving it and never following a link.
fn openat_beneath(
    dfd: RawFd,
    name: &CString,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain data; all zero is its default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    // No O_NOFOLLOW: with it a trailing link gives ENOTDIR or a descriptor of the link itself;
    // without it RESOLVE_NO_SYMLINKS refuses every link, the last one too, with ELOOP.
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        mode as u64
    } else {
        0
    };
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: `how` and `name` outlive the call; the kernel reads `size_of::<open_how>()` bytes.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dfd,
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })?;
    // SAFETY: a descriptor we just opened and own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn open_dir_fd(dfd: RawFd, name: &CString, follow: bool) -> io::Result<OwnedFd> {
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    // SAFETY: `name` is NUL-terminated; the result is checked.
    let fd = check(unsafe {
        libc::openat(
            dfd,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | nofollow,
        )
    } as libc::c_long)?;
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A directory reached through trusted directories only; files below it are opened beneath it.
#[derive(Debug)]
pub struct SafeDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// Links followed on the way, at most (the kernel's own limit).
const MAX_LINKS: usize = 40;

impl SafeDir {
    /// Opens directory `path`, walking it from `/` (see the module documentation); with `create`,
    /// missing directories are made (mode 0700).
    pub fn open(path: &Path, create: bool) -> Result<SafeDir> {
        let abs = std::path::absolute(path).map_err(io_at(path))?;
        let root = CString::new("/").expect("no NUL");
        let mut cur = open_dir_fd(libc::AT_FDCWD, &root, false).map_err(io_at(path))?;
        // What is left to walk, front first.
        let mut todo: Vec<OsString> = components(&abs);
        todo.reverse();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            let name = cstr(&c).map_err(io_at(path))?;
            let st = match lstat_at(cur.as_raw_fd(), &name) {
                Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
                    // SAFETY: NUL-terminated name relative to our directory fd.
                    let rc = unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o700) };
                    if rc < 0 {
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::AlreadyExists {
                            return Err(io_at(path)(e));
                        }
                    }
                    todo.push(c);
                    continue;
                }
                r => r.map_err(io_at(path))?,
            };
            if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                if let Some(why) = distrust(&st) {
                    return Err(refused(
                        path,
                        format!("the symbolic link {c:?} on the way is {why}"),
                    ));
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(io_at(path)(io::Error::from_raw_os_error(libc::ELOOP)));
                }
                let target = readlink_at(cur.as_raw_fd(), &name).map_err(io_at(path))?;
                if target.is_absolute() {
                    cur = open_dir_fd(libc::AT_FDCWD, &root, false).map_err(io_at(path))?;
                }
                todo.extend(components(&target).into_iter().rev());
                continue;
            }
            let next =
                open_dir_fd(cur.as_raw_fd(), &name, false).map_err(|e| match e.raw_os_error() {
                    Some(libc::ENOTDIR) => {
                        refused(path, format!("{c:?} on the way is not a directory"))
                    }
                    _ => io_at(path)(e),
                })?;
            let st = fstat(next.as_raw_fd()).map_err(io_at(path))?;
            if let Some(why) = distrust(&st) {
                return Err(refused(
                    path,
                    format!("the directory {c:?} on the way is {why}"),
                ));
            }
            cur = next;
        }
        Ok(SafeDir {
            fd: cur,
            path: path.to_owned(),
        })
    }

    /// The directory holding file `path`, and the file's name.
    pub fn parent_of(path: &Path) -> Result<(SafeDir, OsString)> {
        let Some(name) = path.file_name() else {
            return Err(refused(path, "it names no file"));
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // Errors name the file the user gave, not just its directory.
        let dir = SafeDir::open(parent, false).map_err(|e| match e {
            PathError::Refused { reason, .. } => refused(path, reason),
            PathError::Io { source, .. } => io_at(path)(source),
        })?;
        Ok((dir, name.to_owned()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, name: &OsStr) -> impl FnOnce(io::Error) -> PathError {
        let path = self.path.join(name);
        move |e| match e.raw_os_error() {
            Some(libc::ELOOP) => PathError::Refused {
                path,
                reason: "a symbolic link (links are never followed here)".into(),
            },
            Some(libc::EXDEV) => PathError::Refused {
                path,
                reason: "it leads outside its directory".into(),
            },
            Some(libc::ENOTDIR) => PathError::Refused {
                path,
                reason: "not a directory".into(),
            },
            _ => PathError::Io { path, source: e },
        }
    }

    /// Subdirectory `name` (one component), made (0700) if missing; never a link.
    pub fn subdir(&self, name: &str, create: bool) -> Result<SafeDir> {
        let n = OsStr::new(name);
        let c = cstr(n).map_err(self.err(n))?;
        if create {
            // SAFETY: NUL-terminated name relative to our directory fd.
            if unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), 0o700) } < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(self.err(n)(e));
                }
            }
        }
        let fd = openat_beneath(
            self.fd.as_raw_fd(),
            &c,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )
        .map_err(self.err(n))?;
        Ok(SafeDir {
            fd,
            path: self.path.join(name),
        })
    }

    /// Creates file `name`, failing if anything (a file, a link) has that name.
    pub fn create_new(&self, name: &OsStr, mode: u32) -> Result<File> {
        let c = cstr(name).map_err(self.err(name))?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
        let fd = openat_beneath(self.fd.as_raw_fd(), &c, flags, mode).map_err(self.err(name))?;
        Ok(File::from(fd))
    }

    /// Opens file `name` for appending, creating it (mode 0600) if missing. An existing one must be
    /// a regular file of ours with a single link: a link another user made to a file of ours would
    /// otherwise be written through.
    pub fn open_append(&self, name: &OsStr) -> Result<File> {
        let c = cstr(name).map_err(self.err(name))?;
        let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_NONBLOCK;
        let fd = openat_beneath(self.fd.as_raw_fd(), &c, flags, 0o600).map_err(self.err(name))?;
        let path = self.path.join(name);
        let st = fstat(fd.as_raw_fd()).map_err(io_at(&path))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(refused(&path, "not a regular file"));
        }
        if st.st_uid != euid() {
            return Err(refused(
                &path,
                format!(
                    "owned by uid {}, not by the user writing (uid {})",
                    st.st_uid,
                    euid()
                ),
            ));
        }
        if st.st_nlink != 1 {
            return Err(refused(
                &path,
                format!(
                    "it has {} hard links: another name could point at it",
                    st.st_nlink
                ),
            ));
        }
        // Back to blocking writes, now that it is known to be a regular file.
        // SAFETY: fcntl on our own descriptor.
        unsafe {
            let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
        Ok(File::from(fd))
    }

    /// Whether anything (a file, a link) has name `name`.
    pub fn exists(&self, name: &OsStr) -> bool {
        cstr(name).is_ok_and(|c| lstat_at(self.fd.as_raw_fd(), &c).is_ok())
    }

    /// Whether `name` is a symbolic link.
    pub fn is_link(&self, name: &OsStr) -> bool {
        cstr(name).is_ok_and(|c| {
            lstat_at(self.fd.as_raw_fd(), &c)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
        })
    }

    /// Removes `name` if it is a regular file (a leftover of ours); anything else stays.
    pub fn remove_file(&self, name: &OsStr) -> Result<()> {
        let c = cstr(name).map_err(self.err(name))?;
        match lstat_at(self.fd.as_raw_fd(), &c) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {}
            _ => return Ok(()),
        }
        // SAFETY: NUL-terminated name relative to our directory fd.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) } as libc::c_long)
            .map(|_| ())
            .map_err(self.err(name))
    }

    /// Renames `from` to `to` within this directory; over an existing `to` only with `replace`
    /// (a link at `to` is replaced, never followed).
    pub fn rename(&self, from: &OsStr, to: &OsStr, replace: bool) -> Result<()> {
        let (f, t) = (
            cstr(from).map_err(self.err(from))?,
            cstr(to).map_err(self.err(to))?,
        );
        let dfd = self.fd.as_raw_fd();
        let flags = if replace { 0 } else { libc::RENAME_NOREPLACE };
        // SAFETY: NUL-terminated names relative to our directory fd.
        check(unsafe {
            libc::syscall(libc::SYS_renameat2, dfd, f.as_ptr(), dfd, t.as_ptr(), flags)
        })
        .map(|_| ())
        .map_err(self.err(to))
    }

    pub fn sync(&self) -> Result<()> {
        // SAFETY: fsync on our own descriptor.
        check(unsafe { libc::fsync(self.fd.as_raw_fd()) } as libc::c_long)
            .map(|_| ())
            .map_err(io_at(&self.path))
    }
}

fn readlink_at(dfd: RawFd, name: &CString) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `buf` is writable for its length; `name` is NUL-terminated.
    let n =
        check(
            unsafe { libc::readlinkat(dfd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
                as libc::c_long,
        )?;
    buf.truncate(n as usize);
    Ok(PathBuf::from(OsString::from_vec(buf)))
}

/// The names of `path`'s components (`..` kept: the kernel resolves it from the directory we
/// hold; `.` and the root dropped).
fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Opens file `path` for appending (see [`SafeDir::open_append`]).
pub fn open_append(path: &Path) -> Result<File> {
    let (dir, name) = SafeDir::parent_of(path)?;
    dir.open_append(&name)
}

/// Replaces file `path` with `bytes` (mode `mode`): a new file beside it, renamed over it, so a
/// reader sees the old or the new file, never half of one. A link at `path` is refused.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    let (dir, name) = SafeDir::parent_of(path)?;
    if dir.is_link(&name) {
        return Err(refused(
            path,
            "a symbolic link (links are never followed here)",
        ));
    }
    let mut tmp = OsString::from(".");
    tmp.push(&name);
    tmp.push(format!(".{}.tmp", std::process::id()));
    dir.remove_file(&tmp)?;
    let mut f = dir.create_new(&tmp, mode)?;
    let tmp_path = dir.path().join(&tmp);
    let written = (|| {
        // The umask must not narrow it: the collector reading it may be another user.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        f.write_all(bytes)
    })();
    if let Err(e) = written {
        let _ = dir.remove_file(&tmp);
        return Err(io_at(&tmp_path)(e));
    }
    dir.rename(&tmp, &name, true).inspect_err(|_| {
        let _ = dir.remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_link_is_refused_where_a_file_goes_and_its_target_is_untouched() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let p = d.path().join("out");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        assert!(matches!(open_append(&p), Err(PathError::Refused { .. })));
        assert!(matches!(
            replace(&p, b"x", 0o644),
            Err(PathError::Refused { .. })
        ));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn a_hard_link_is_refused_for_appending() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let p = d.path().join("out");
        std::fs::hard_link(&target, &p).unwrap();
        let e = open_append(&p).unwrap_err().to_string();
        assert!(e.contains("2 hard links"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn a_world_writable_directory_without_the_sticky_bit_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let pub_dir = d.path().join("pub");
        std::fs::create_dir(&pub_dir).unwrap();
        std::fs::set_permissions(&pub_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = open_append(&pub_dir.join("alerts.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("without the sticky bit"), "{e}");
        std::fs::set_permissions(&pub_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        open_append(&pub_dir.join("alerts.jsonl")).unwrap();
    }

    #[test]
    fn links_of_ours_on_the_way_are_followed_and_links_below_a_dir_are_not() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink("real", d.path().join("via")).unwrap();
        let dir = SafeDir::open(&d.path().join("via/sub"), true).unwrap();
        dir.create_new(OsStr::new("f"), 0o600).unwrap();
        assert!(real.join("sub/f").is_file());
        let elsewhere = d.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, real.join("events")).unwrap();
        let top = SafeDir::open(&real, false).unwrap();
        assert!(matches!(
            top.subdir("events", true),
            Err(PathError::Refused { .. })
        ));
        assert!(matches!(
            top.subdir("..", false),
            Err(PathError::Refused { .. })
        ));
    }
}
