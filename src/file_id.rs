//! A file's identity: the device and inode the kernel knows it by. Two paths (a hard link, a bind
//! mount, a chroot's view) name the same file exactly when their identities are equal, which is
//! what lets a rule about `/etc/shadow` see it through another name, and an allow-list of
//! executables refuse a copy that merely sits at the allowed path.

use std::fmt;

/// `dev` is in the encoding `stat(2)` reports (`st_dev`, glibc's `makedev`), not the kernel's
/// internal `MKDEV`, so that what a probe read compares equal to what user space stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    /// The identity of a kernel `s_dev` (MKDEV: major in the top 12 bits of 32, minor in the
    /// low 20) and inode number.
    pub fn from_kernel(s_dev: u32, ino: u64) -> Self {
        Self::new(u64::from(s_dev >> 20), u64::from(s_dev & 0xf_ffff), ino)
    }

    /// The identity of inode `ino` on device `major:minor`.
    pub fn new(major: u64, minor: u64, ino: u64) -> Self {
        // glibc's makedev: minor's low 8 bits, major's low 12 at bit 8, minor's rest at 20,
        // major's rest at 44.
        let dev = (minor & 0xff)
            | ((major & 0xfff) << 8)
            | ((minor & !0xff) << 12)
            | ((major & !0xfff) << 32);
        FileId { dev, ino }
    }

    /// The identity of what `meta` describes (a `stat` result).
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    // glibc's gnu_dev_major and gnu_dev_minor: each is 32 bits wide, so the high parts are
    // masked to 32 bits (else minor's would take major's high bits along).
    pub fn major(&self) -> u64 {
        ((self.dev >> 8) & 0xfff) | ((self.dev >> 32) & 0xffff_f000)
    }

    pub fn minor(&self) -> u64 {
        (self.dev & 0xff) | ((self.dev >> 12) & 0xffff_ff00)
    }
}

/// `major:minor:inode`, as `stat -c %t:%T:%i` would say it in decimal.
impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.major(), self.minor(), self.ino)
    }
}

/// Reads the `major:minor:inode` form back (what `import` does with a `file` or `exe_id` key).
impl std::str::FromStr for FileId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("not a file identity (major:minor:inode in decimal): {s:?}");
        let mut parts = s.split(':').map(|p| {
            // Digits only: `u64::from_str` would also take a leading `+`.
            p.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| p.parse::<u64>().ok())
                .flatten()
        });
        let mut next = || parts.next().flatten().ok_or_else(bad);
        let (major, minor, ino) = (next()?, next()?, next()?);
        // Beyond these widths `dev` cannot hold them (12 + 20 bits of major and minor would be
        // lost or mixed): such a text was never written by Display.
        if parts.next().is_some() || major >> 32 != 0 || minor >> 32 != 0 {
            return Err(bad());
        }
        Ok(FileId::new(major, minor, ino))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_device_number_reads_as_stat_reports_it() {
        // The root filesystem's device, as the kernel and as stat(2) name it.
        let meta = std::fs::metadata("/").unwrap();
        let id = FileId::of(&meta);
        let s_dev = ((id.major() << 20) | id.minor()) as u32;
        assert_eq!(FileId::from_kernel(s_dev, id.ino), id);
        // Minor numbers above 255 (e.g. anonymous devices 0:300) use the split encoding.
        let big = FileId::from_kernel((259 << 20) | 300, 7);
        assert_eq!((big.major(), big.minor()), (259, 300));
        assert_eq!(big.to_string(), "259:300:7");
    }

    #[test]
    fn display_parses_back() {
        for id in [
            FileId::new(8, 1, 1234),
            FileId::new(259, 300, u64::MAX),
            FileId::new(0, 0, 0),
            FileId::new(u64::from(u32::MAX), u64::from(u32::MAX), 1),
        ] {
            assert_eq!(id.to_string().parse::<FileId>(), Ok(id), "{id}");
        }
        for bad in [
            "",
            "8:1",
            "8:1:2:3",
            "8:1:x",
            "+8:1:2",
            "8:-1:2",
            "4294967296:0:1",
            " 8:1:2",
        ] {
            assert!(bad.parse::<FileId>().is_err(), "{bad:?}");
        }
    }
}
