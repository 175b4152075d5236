//! Running the binary as the unprivileged user `nobody` (when the tests run as root; unprivileged
//! already, commands run as they are).
//!
//! `nobody` reaches a file only through directories that let anyone search them, and a checkout
//! may sit under a 0700 directory (`mktemp -d` makes those): so the binary runs from a temporary
//! directory of its own, whose every ancestor is world-searchable.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{bin, is_root};

/// The unprivileged user's uid and gid.
pub const NOBODY: u32 = 65534;

/// A temporary directory `nobody` can reach (mode 0755) with the binary under test in it; removed
/// on drop.
pub struct Nobody {
    tmp: tempfile::TempDir,
    bin: PathBuf,
}

impl Nobody {
    pub fn new() -> Nobody {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        for dir in tmp.path().ancestors().skip(1) {
            let mode = std::fs::metadata(dir).expect("stat").permissions().mode();
            assert!(
                mode & 0o001 != 0,
                "{} (mode {mode:o}) keeps nobody out of the temporary directory: point TMPDIR \
                 at a world-searchable one",
                dir.display()
            );
        }
        let copy = tmp.path().join("open-forensics");
        // A link where the file system allows it: the debug binary is ~170 MB.
        if std::fs::hard_link(bin(), &copy).is_err() {
            std::fs::copy(bin(), &copy).expect("copy the binary");
        }
        Nobody { tmp, bin: copy }
    }

    /// The directory, for anything else `nobody` must reach.
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// The binary as `nobody`: uid and gid 65534, no supplementary groups.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        if is_root() {
            // SAFETY: between fork and exec only async-signal-safe syscalls run.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(NOBODY) != 0
                        || libc::setuid(NOBODY) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd
    }
}
