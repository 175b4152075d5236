//! Space kept back on the store's filesystem: `STORE/reserve`, a preallocated owner-only file that
//! a recording holds from its start. When the disk fills, the writer gives part of it back to
//! write the gap record that says so, and the rest at the end, so that the last loss records and
//! a clean seal of the active segment fit whatever else filled the disk. Segments are rotated
//! small enough that one seal fits in it (see [`Reserve::seal_limit`]).

use std::io;
use std::os::fd::AsRawFd;

use crate::store::dir::{Kind, StoreDir};

pub(super) const RESERVE_FILE: &str = "reserve";

/// Room for one gap segment: a fresh database with its schema, its WAL after one commit, and
/// its sealed copy (measured: about 200 KiB together).
pub(super) const GAP_BYTES: u64 = 512 << 10;
/// The smallest reserve: a gap at the start of an outage, one at its end, and a small seal.
const MIN_BYTES: u64 = 2 << 20;
/// What zstd may add to incompressible input (`ZSTD_compressBound`: 1/256, plus a little), and
/// the metadata frame.
const FRAME_SLACK: u64 = 64 << 10;

pub(super) struct Reserve {
    /// The size it has when held whole.
    bytes: u64,
    /// What the file holds now (0: not there).
    held: u64,
}

/// Free bytes on the filesystem holding `dir` (for unprivileged writers: `f_bavail`).
fn free_bytes(dir: &StoreDir) -> io::Result<u64> {
    let st = statvfs(dir)?;
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// By path: a measurement only (a directory swapped under us skews a number, nothing is written).
fn statvfs(dir: &StoreDir) -> io::Result<libc::statvfs> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.path().as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the store path"))?;
    // SAFETY: a zeroed statvfs is a valid out-parameter; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

impl Reserve {
    /// The reserve for a store on its filesystem: an eighth of the filesystem, at least
    /// [`MIN_BYTES`], and no more than the seal of a segment of `max_bytes` needs.
    pub(super) fn for_store(dir: &StoreDir, max_bytes: u64) -> io::Result<Reserve> {
        let st = statvfs(dir)?;
        let fs_bytes = st.f_blocks as u64 * st.f_frsize as u64;
        let most = max_bytes + max_bytes / 256 + FRAME_SLACK + 2 * GAP_BYTES;
        Ok(Reserve {
            bytes: (fs_bytes / 8).max(MIN_BYTES).min(most),
            held: 0,
        })
    }

    /// The largest active database whose seal fits in the reserve after two gap segments: the
    /// writer rotates before a segment grows past it.
    pub(super) fn seal_limit(&self) -> u64 {
        let room = self.bytes.saturating_sub(2 * GAP_BYTES + FRAME_SLACK);
        room - room / 257
    }

    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the file holds its whole size.
    pub(super) fn is_whole(&self) -> bool {
        self.held == self.bytes
    }

    /// Removes what a dead writer left at the reserve's name (moved aside if it is not a regular
    /// file: nothing in the store is followed or trusted).
    pub(super) fn clear_leftover(dir: &StoreDir) -> io::Result<Option<String>> {
        match dir.kind(RESERVE_FILE)? {
            None => Ok(None),
            Some((Kind::File, _)) => dir.remove(RESERVE_FILE).map(|()| None),
            Some(_) => dir.quarantine(RESERVE_FILE).map(Some),
        }
    }

    /// Makes the file hold its whole size again if the filesystem has that much free and
    /// `headroom` bytes more; `Ok(false)` when it has not.
    pub(super) fn take(&mut self, dir: &StoreDir, headroom: u64) -> io::Result<bool> {
        if self.is_whole() {
            return Ok(true);
        }
        if free_bytes(dir)? < self.bytes - self.held + headroom {
            return Ok(false);
        }
        let f = if self.held == 0 {
            dir.create_new(RESERVE_FILE)?
        } else {
            dir.open_rw_or_create(RESERVE_FILE)?
        };
        // SAFETY: fallocate on our own descriptor; the kernel allocates blocks, nothing else.
        let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, self.bytes as libc::off_t) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                drop(f);
                self.shrink_to(dir, self.held)?;
                return if e.raw_os_error() == Some(libc::ENOSPC) {
                    Ok(false)
                } else {
                    Err(e)
                };
            }
            // A filesystem without fallocate: zeros written are blocks allocated all the same.
            write_zeros(&f, self.held, self.bytes)?;
        }
        f.sync_all()?;
        self.held = self.bytes;
        Ok(true)
    }

    /// Gives back room for one gap segment (all that is left if less).
    pub(super) fn give_gap(&mut self, dir: &StoreDir) -> io::Result<()> {
        self.shrink_to(dir, self.held.saturating_sub(GAP_BYTES))
    }

    /// Gives everything back and removes the file.
    pub(super) fn release(&mut self, dir: &StoreDir) -> io::Result<()> {
        self.shrink_to(dir, 0)
    }

    fn shrink_to(&mut self, dir: &StoreDir, to: u64) -> io::Result<()> {
        if to == 0 {
            // A file that is gone is released (the next writer clears leftovers).
            self.held = 0;
            return dir.remove(RESERVE_FILE);
        }
        let f = dir.open_rw_or_create(RESERVE_FILE)?;
        f.set_len(to)?;
        self.held = to;
        Ok(())
    }
}

fn write_zeros(f: &std::fs::File, from: u64, to: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let chunk = vec![0u8; 1 << 20];
    let mut at = from;
    while at < to {
        let n = chunk.len().min((to - at) as usize);
        f.write_all_at(&chunk[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment rotated at the seal limit seals into what is left of the reserve after the
    /// two gap segments of an outage, even if zstd cannot compress it at all.
    #[test]
    fn a_segment_at_the_seal_limit_seals_into_the_reserve() {
        for bytes in [MIN_BYTES, 20 << 20, 257 << 20] {
            let r = Reserve { bytes, held: 0 };
            let db = r.seal_limit();
            let sealed = db + db / 256 + FRAME_SLACK;
            assert!(sealed + 2 * GAP_BYTES <= bytes, "{bytes}: {db} → {sealed}");
            assert!(
                db > bytes / 3,
                "{bytes}: a limit of {db} wastes the reserve"
            );
        }
    }

    #[test]
    fn the_reserve_is_taken_given_back_in_steps_and_released() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StoreDir::open_for_writing(&tmp.path().join("s")).unwrap();
        let mut r = Reserve::for_store(&dir, 256 << 20).unwrap();
        assert!(r.bytes() >= MIN_BYTES);
        assert!(r.take(&dir, 0).unwrap());
        let size = |d: &StoreDir| d.kind(RESERVE_FILE).unwrap().map(|k| k.1);
        assert_eq!(size(&dir), Some(r.bytes()));
        r.give_gap(&dir).unwrap();
        assert_eq!(size(&dir), Some(r.bytes() - GAP_BYTES));
        assert!(!r.is_whole());
        assert!(r.take(&dir, 0).unwrap());
        assert_eq!(size(&dir), Some(r.bytes()));
        r.release(&dir).unwrap();
        assert_eq!(size(&dir), None);
    }

    /// A link planted at the reserve's name is moved aside, never followed or removed through.
    #[test]
    fn a_planted_link_at_the_reserve_is_moved_aside() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let dir = StoreDir::open_for_writing(&tmp.path().join("s")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(RESERVE_FILE)).unwrap();
        let moved = Reserve::clear_leftover(&dir).unwrap();
        assert!(moved.is_some_and(|m| m.starts_with("reserve.quarantined-")));
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(dir.kind(RESERVE_FILE).unwrap(), None);
    }
}
