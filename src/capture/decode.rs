//! Kernel record → [`Event`].
//!
//! A record (bpf/events.h) is the fixed `of_event_hdr`, `raw_len` bytes of the path exactly as the
//! process passed it, then `path_len` bytes of resolved components, each NUL-terminated, leaf
//! first. The header is read through the type libbpf-cargo generates from the BPF object's BTF, so
//! the layout is declared once, in C.

use std::sync::Arc;

use super::skel::types;
use crate::event::{Event, PathSource, Str, Syscall};

type Hdr = types::of_event_hdr;

/// Bytes of the fixed part of every record.
pub const HDR_LEN: usize = std::mem::size_of::<Hdr>();

const TRUNC_RAW: u8 = types::of_trunc::OF_TRUNC_RAW.0 as u8;
const TRUNC_PATH: u8 = types::of_trunc::OF_TRUNC_PATH.0 as u8;

/// A record user space cannot make sense of: a BPF/user-space mismatch, never expected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its header or the lengths it declares")]
    Short(usize),
    #[error("unknown syscall code {0}")]
    Syscall(u8),
    #[error("unknown path source code {0}")]
    PathSource(u8),
}

/// The header of a record.
pub fn header(rec: &[u8]) -> Result<Hdr, DecodeError> {
    if rec.len() < HDR_LEN {
        return Err(DecodeError::Short(rec.len()));
    }
    // SAFETY: `Hdr` is the #[repr(C)] struct generated from bpf/events.h and holds only integers
    // and integer arrays, so any bytes are a valid value; `rec` holds at least `HDR_LEN` bytes;
    // `read_unaligned` copies without requiring the ring buffer's alignment.
    Ok(unsafe { std::ptr::read_unaligned(rec.as_ptr().cast::<Hdr>()) })
}

/// Decodes one record; `anchor_ns` (wall clock minus boot clock) turns the kernel's boot-clock
/// timestamp into ns since the epoch.
pub fn decode(rec: &[u8], anchor_ns: i64) -> Result<Event, DecodeError> {
    let h = header(rec)?;
    let raw_len = usize::from(h.raw_len);
    let path_len = usize::from(h.path_len);
    let data = &rec[HDR_LEN..];
    if data.len() < raw_len + path_len {
        return Err(DecodeError::Short(rec.len()));
    }
    let raw = &data[..raw_len];
    let comps = &data[raw_len..raw_len + path_len];
    let syscall = Syscall::from_code(h.syscall).ok_or(DecodeError::Syscall(h.syscall))?;
    let path_source =
        PathSource::from_code(h.path_source).ok_or(DecodeError::PathSource(h.path_source))?;
    let walk_cut = h.trunc & TRUNC_PATH != 0;
    let path: Vec<u8> = match path_source {
        PathSource::File => join_components(comps, walk_cut),
        PathSource::Cwd | PathSource::Dirfd => {
            let mut dir = join_components(comps, walk_cut);
            dir.push(b'/');
            dir.extend_from_slice(raw);
            normalize(&dir)
        }
        PathSource::Raw | PathSource::Unresolved => raw.to_vec(),
    };
    Ok(Event {
        ts_ns: (h.ts_ns as i64).wrapping_add(anchor_ns),
        pid: h.pid,
        tid: h.tid,
        ppid: h.ppid,
        uid: h.uid,
        gid: h.gid,
        comm: Str::new(c_bytes(&h.comm)),
        syscall,
        path: Str::new(Arc::<[u8]>::from(path)),
        path_source,
        path_truncated: h.trunc & (TRUNC_RAW | TRUNC_PATH) != 0,
        raw_path: Str::new(raw),
        dirfd: (h.has_dirfd != 0).then_some(h.dirfd),
        flags: h.flags,
        mode: h.mode,
        ret: h.ret,
        table: 0,
    })
}

/// The kernel's `char[]` up to its NUL.
fn c_bytes(s: &[i8]) -> Vec<u8> {
    s.iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect()
}

/// Leaf-first NUL-terminated components → `/a/b/c`. A walk that was cut keeps the leaf end and
/// has no leading `/`: its top is unknown, and it must not pass for an absolute path.
fn join_components(comps: &[u8], cut: bool) -> Vec<u8> {
    let parts: Vec<&[u8]> = comps.split(|&b| b == 0).filter(|c| !c.is_empty()).collect();
    let mut out = Vec::with_capacity(comps.len() + 1);
    for (i, c) in parts.iter().rev().enumerate() {
        if i > 0 || !cut {
            out.push(b'/');
        }
        out.extend_from_slice(c);
    }
    if out.is_empty() && !cut {
        out.push(b'/');
    }
    out
}

/// Lexical clean-up of a joined path: drops empty and `.` components and applies `..` (the
/// directory part came from the kernel, so only the raw tail can hold them; a symlink in that
/// tail can make this differ from what the kernel would have resolved, which is why such paths
/// are marked `cwd`/`dirfd`, not `file`).
fn normalize(p: &[u8]) -> Vec<u8> {
    let absolute = p.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|l| *l != b"..") {
                    parts.pop();
                } else if !absolute {
                    parts.push(c);
                }
            }
            _ => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(p.len());
    for (i, c) in parts.iter().enumerate() {
        if i > 0 || absolute {
            out.push(b'/');
        }
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(if absolute { b'/' } else { b'.' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the kernel would send it, built through the generated header type.
    fn record(h: Hdr, raw: &[u8], comps: &[&str]) -> Vec<u8> {
        let mut h = h;
        let mut tail = raw.to_vec();
        let mut c = Vec::new();
        for s in comps {
            c.extend_from_slice(s.as_bytes());
            c.push(0);
        }
        h.raw_len = raw.len() as u16;
        h.path_len = c.len() as u16;
        tail.extend_from_slice(&c);
        let mut out = vec![0u8; HDR_LEN];
        // SAFETY: `out` has exactly HDR_LEN bytes; write_unaligned needs no alignment.
        unsafe { std::ptr::write_unaligned(out.as_mut_ptr().cast::<Hdr>(), h) };
        out.extend_from_slice(&tail);
        out
    }

    fn hdr(syscall: Syscall, source: PathSource) -> Hdr {
        let mut comm = [0i8; 16];
        for (d, s) in comm.iter_mut().zip(b"cat") {
            *d = *s as i8;
        }
        Hdr {
            ts_ns: 1_000,
            ret: 3,
            flags: 0x80000,
            pid: 10,
            tid: 11,
            ppid: 1,
            uid: 1000,
            gid: 100,
            mode: 0o644,
            dirfd: -100,
            has_dirfd: 1,
            syscall: syscall.code(),
            path_source: source.code(),
            comm,
            ..Hdr::default()
        }
    }

    #[test]
    fn codes_match_the_shared_header() {
        use types::{of_path_source as P, of_syscall as S};
        let pairs = [
            (S::OF_SYSCALL_OPEN, Syscall::Open),
            (S::OF_SYSCALL_CREAT, Syscall::Creat),
            (S::OF_SYSCALL_OPENAT, Syscall::Openat),
            (S::OF_SYSCALL_OPENAT2, Syscall::Openat2),
            (S::OF_SYSCALL_OPEN_BY_HANDLE_AT, Syscall::OpenByHandleAt),
            (S::OF_SYSCALL_IO_URING, Syscall::IoUring),
        ];
        for (c, r) in pairs {
            assert_eq!(c.0, u32::from(r.code()), "{r}");
        }
        assert_eq!(pairs.len(), Syscall::ALL.len());
        let pairs = [
            (P::OF_PATH_FILE, PathSource::File),
            (P::OF_PATH_RAW, PathSource::Raw),
            (P::OF_PATH_CWD, PathSource::Cwd),
            (P::OF_PATH_DIRFD, PathSource::Dirfd),
            (P::OF_PATH_UNRESOLVED, PathSource::Unresolved),
        ];
        for (c, r) in pairs {
            assert_eq!(c.0, u32::from(r.code()), "{r}");
        }
        assert_eq!(pairs.len(), PathSource::ALL.len());
    }

    #[test]
    fn walked_path_is_reversed_and_absolute() {
        let rec = record(
            hdr(Syscall::Openat, PathSource::File),
            b"hostname",
            &["hostname", "etc"],
        );
        let e = decode(&rec, 5_000).unwrap();
        assert_eq!(e.path.as_bytes(), b"/etc/hostname");
        assert_eq!(e.raw_path.as_bytes(), b"hostname");
        assert_eq!(e.ts_ns, 6_000);
        assert_eq!(e.comm.as_bytes(), b"cat");
        assert_eq!((e.pid, e.tid, e.ppid, e.uid, e.gid), (10, 11, 1, 1000, 100));
        assert_eq!(e.dirfd, Some(-100));
        assert!(!e.path_truncated);
    }

    #[test]
    fn root_and_cut_walks() {
        let rec = record(hdr(Syscall::Open, PathSource::File), b"/", &[]);
        assert_eq!(decode(&rec, 0).unwrap().path.as_bytes(), b"/");
        let mut h = hdr(Syscall::Open, PathSource::File);
        h.trunc = TRUNC_PATH;
        let rec = record(h, b"x", &["f", "deep"]);
        let e = decode(&rec, 0).unwrap();
        assert_eq!(e.path.as_bytes(), b"deep/f");
        assert!(e.path_truncated);
    }

    #[test]
    fn failed_relative_opens_join_the_directory() {
        let mut h = hdr(Syscall::Openat, PathSource::Cwd);
        h.ret = -2;
        let rec = record(h, b"../x/./missing", &["sub", "tmp"]);
        assert_eq!(decode(&rec, 0).unwrap().path.as_bytes(), b"/tmp/x/missing");
        let mut h = hdr(Syscall::Openat, PathSource::Dirfd);
        h.ret = -13;
        h.dirfd = 7;
        let rec = record(h, b"a b\nc", &["d"]);
        let e = decode(&rec, 0).unwrap();
        assert_eq!(e.path.as_bytes(), b"/d/a b\nc");
        assert_eq!(e.dirfd, Some(7));
    }

    #[test]
    fn raw_sources_keep_the_raw_path() {
        let mut h = hdr(Syscall::Creat, PathSource::Raw);
        h.has_dirfd = 0;
        h.ret = -2;
        let rec = record(h, b"/no/such/../file", &[]);
        let e = decode(&rec, 0).unwrap();
        assert_eq!(e.path.as_bytes(), b"/no/such/../file");
        assert_eq!(e.dirfd, None);
        assert_eq!(e.ret, -2);
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        assert_eq!(decode(&[0; 8], 0), Err(DecodeError::Short(8)));
        let mut rec = record(hdr(Syscall::Open, PathSource::File), b"abc", &["abc"]);
        rec.truncate(rec.len() - 2);
        assert!(matches!(decode(&rec, 0), Err(DecodeError::Short(_))));
        let mut h = hdr(Syscall::Open, PathSource::File);
        h.syscall = 99;
        assert_eq!(
            decode(&record(h, b"", &[]), 0),
            Err(DecodeError::Syscall(99))
        );
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(b"/a/b/../../.."), b"/");
        assert_eq!(normalize(b"//a//./b/"), b"/a/b");
        assert_eq!(normalize(b"a/../../b"), b"../b");
    }
}
