//! A large decompressed database, kept where it cannot outlive its reader: an unnamed temporary
//! file (`O_TMPFILE` where the file system has it, else unlinked the moment it is created:
//! `tempfile::tempfile`), mapped privately so that SQLite reads it in place. It never has a name,
//! so however the reader ends (Ctrl-C, SIGKILL, a panic) the kernel frees it with the last
//! descriptor or mapping; and its pages are the page cache's, not the heap's.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

/// A private, writable mapping of a whole file (writes stay in memory: copy on write).
pub(crate) struct Mapped {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone and freed once, on drop.
unsafe impl Send for Mapped {}

impl Mapped {
    /// Maps the first `len` bytes of `file` (`len` > 0).
    pub fn new(file: &File, len: usize) -> io::Result<Mapped> {
        Mapped::map(len, libc::MAP_PRIVATE, file.as_raw_fd())
    }

    /// A private anonymous mapping of `len` zeroed bytes (`len` > 0): heap-like memory that is
    /// returned to the system when dropped, as a freed heap block of this size often is not.
    pub fn anonymous(len: usize) -> io::Result<Mapped> {
        Mapped::map(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1)
    }

    fn map(len: usize, flags: libc::c_int, fd: libc::c_int) -> io::Result<Mapped> {
        // SAFETY: a fresh mapping, of our own descriptor or anonymous; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Mapped { ptr, len })
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `len` mapped bytes, readable and writable, borrowed through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Decompresses through `fill` into an unnamed temporary file and maps it.
pub(crate) fn unnamed_copy<T>(
    len: u64,
    fill: impl FnOnce(&mut dyn io::Write) -> io::Result<T>,
) -> io::Result<(Mapped, T)> {
    let file = tempfile::tempfile()?;
    let mut out = io::BufWriter::new(&file);
    let res = fill(&mut out)?;
    io::Write::flush(&mut out)?;
    drop(out);
    let len = usize::try_from(len.max(1)).map_err(io::Error::other)?;
    Ok((Mapped::new(&file, len)?, res))
}
