//! The sealed file: a zstd *skippable* frame holding the metadata as JSON, then the database as
//! one zstd frame with its content size and checksum (see the `store` module docs).
//!
//! Everything a file declares is bounded before it is believed: the metadata frame's length, the
//! database's size (and so what a reader allocates), and the bytes must hash to what the metadata
//! says. A database is decompressed into a mapping SQLite then reads in place (see `mapped`):
//! anonymous memory up to [`IN_MEMORY_MAX`], an unnamed temporary file above it. Not the heap:
//! a freed heap block of a segment's size stays with the process, and two readers at a time
//! (`path_counts`) held 20 MB more at peak that way.

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zstd::zstd_safe::{get_error_name, DCtx, DParameter, InBuffer, OutBuffer};

use super::mapped::{unnamed_copy, Mapped};
use super::{hex, SegmentMeta};
use crate::store::dir::StoreDir;
use crate::store::{io_err, Result, StoreError};

/// zstd skippable-frame magic used for our metadata frame (any of 0x184D2A50..=0x184D2A5F is
/// skippable; decoders ignore the frame).
const META_MAGIC: u32 = 0x184D_2A5E;
const META_TAG: &[u8] = b"OFSEG1\n";
/// A metadata frame larger than this is not ours (it holds a few hundred bytes of JSON).
const META_MAX: u32 = 1 << 20;
pub(crate) const ZSTD_LEVEL: i32 = 3;
/// The largest database a segment may declare: rotation keeps them far below (`--max-bytes` is
/// bounded by it), so anything larger is a crafted file, not a reason to allocate.
pub const DB_MAX: u64 = 1 << 30;
/// Databases up to this size are decompressed in memory; larger ones into an unnamed temp file.
pub const IN_MEMORY_MAX: u64 = 64 << 20;

/// Writes the sealed file for `meta` (whose `db_bytes` and `db_sha256` describe `db`) as
/// `name`: written to `name.tmp` (created exclusively), fsynced, renamed without replacing
/// anything, directory fsynced. Fails with `AlreadyExists` rather than replace a segment.
pub(crate) fn write_sealed(
    dir: &StoreDir,
    name: &str,
    meta: &SegmentMeta,
    db: &[&[u8]],
) -> Result<PathBuf> {
    let tmp_name = format!("{name}{}", super::TMP_SUFFIX);
    let tmp_path = dir.join(&tmp_name);
    // A leftover of a seal that died: ours to remove (a link is removed, not followed).
    dir.remove(&tmp_name).map_err(io_err(&tmp_path))?;
    let file = dir.create_new(&tmp_name).map_err(io_err(&tmp_path))?;
    let mut out = BufWriter::new(file);
    let json = serde_json::to_vec(meta).expect("SegmentMeta serializes");
    let payload_len = (META_TAG.len() + json.len()) as u32;
    let total: usize = db.iter().map(|p| p.len()).sum();
    let write = |out: &mut BufWriter<File>| -> io::Result<()> {
        out.write_all(&META_MAGIC.to_le_bytes())?;
        out.write_all(&payload_len.to_le_bytes())?;
        out.write_all(META_TAG)?;
        out.write_all(&json)?;
        let mut enc = zstd::Encoder::new(&mut *out, ZSTD_LEVEL)?;
        enc.include_checksum(true)?;
        enc.set_pledged_src_size(Some(total as u64))?;
        enc.include_contentsize(true)?;
        for part in db {
            enc.write_all(part)?;
        }
        enc.finish()?;
        out.flush()?;
        out.get_ref().sync_all()
    };
    if let Err(e) = write(&mut out) {
        drop(out);
        let _ = dir.remove(&tmp_name);
        return Err(io_err(&tmp_path)(e));
    }
    drop(out);
    let final_path = dir.join(name);
    if let Err(e) = dir.rename_noreplace(&tmp_name, name) {
        let _ = dir.remove(&tmp_name);
        return Err(io_err(&final_path)(e));
    }
    dir.sync()?;
    Ok(final_path)
}

fn corrupt(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Parses the metadata frame at the start of `r`; returns the metadata and the frame's length.
pub(crate) fn parse_meta(mut r: impl Read, path: &Path) -> Result<(SegmentMeta, u64)> {
    let mut head = [0u8; 8];
    r.read_exact(&mut head).map_err(|_| {
        corrupt(
            path,
            "not a sealed open-forensics segment (shorter than a metadata frame)",
        )
    })?;
    let magic = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if magic != META_MAGIC || !(META_TAG.len() as u32..=META_MAX).contains(&len) {
        return Err(corrupt(
            path,
            "not a sealed open-forensics segment (bad metadata frame)",
        ));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)
        .map_err(|_| corrupt(path, "truncated metadata frame"))?;
    let json = payload
        .strip_prefix(META_TAG)
        .ok_or_else(|| corrupt(path, "bad metadata tag"))?;
    let meta: SegmentMeta =
        serde_json::from_slice(json).map_err(|e| corrupt(path, format!("bad metadata: {e}")))?;
    if meta.db_bytes > DB_MAX {
        return Err(corrupt(
            path,
            format!(
                "metadata declares a {} byte database, more than any segment holds ({DB_MAX})",
                meta.db_bytes
            ),
        ));
    }
    Ok((meta, 8 + len as u64))
}

/// Reads the metadata frame of a sealed segment (a few hundred bytes; nothing is decompressed).
pub(crate) fn read_meta(dir: &StoreDir, name: &str) -> Result<SegmentMeta> {
    let path = dir.join(name);
    let f = dir.open_read(name).map_err(io_err(&path))?;
    parse_meta(io::BufReader::new(f), &path).map(|(m, _)| m)
}

/// What reading a sealed file gives: its metadata and its (verified) database, whose first
/// `meta.db_bytes` bytes are the database (the mapping is at least one byte).
pub(crate) struct Sealed {
    pub meta: SegmentMeta,
    pub db: Mapped,
}

/// Counts and hashes what passes through, and refuses more than `limit` bytes.
struct Bounded<W> {
    inner: W,
    written: u64,
    limit: u64,
    hash: Sha256,
}

impl<W: Write> Write for Bounded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(too_many());
        }
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decompresses the database frame at `r` into `buf`, which holds exactly the size the metadata
/// declares: (bytes decompressed, their SHA-256). More bytes than `buf` holds are an error.
///
/// zstd writes straight into `buf` (a stable output buffer: no window of its own, 2.4 MB less
/// per reader, and no copy out of it) and checks the frame's checksum at its end.
fn decode_into(buf: &mut [u8], r: &mut impl BufRead) -> io::Result<(u64, [u8; 32])> {
    let zstd_err = |code| io::Error::new(io::ErrorKind::InvalidData, get_error_name(code));
    let mut dctx = DCtx::try_create().ok_or_else(|| io::Error::other("zstd: no context"))?;
    dctx.set_parameter(DParameter::StableOutBuffer(true))
        .map_err(zstd_err)?;
    let mut out = OutBuffer::around(buf);
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the frame ends early",
            ));
        }
        let mut input = InBuffer::around(chunk);
        let before = out.pos();
        let res = dctx.decompress_stream(&mut out, &mut input);
        let used = input.pos();
        r.consume(used);
        match res {
            Ok(0) => break,
            // No progress: the output is full with the frame unfinished.
            Ok(_) if used == 0 && out.pos() == before => return Err(too_many()),
            Ok(_) => {}
            Err(code) if too_small(code) => return Err(too_many()),
            Err(code) => return Err(zstd_err(code)),
        }
    }
    let got = out.pos();
    Ok((got as u64, Sha256::digest(&out.as_slice()[..got]).into()))
}

/// Whether zstd refused for want of room: the frame's declared content size (or what it
/// decoded) exceeds the buffer.
fn too_small(code: usize) -> bool {
    use zstd::zstd_safe::zstd_sys::{ZSTD_ErrorCode, ZSTD_getErrorCode};
    // SAFETY: a pure function of its argument.
    unsafe { ZSTD_getErrorCode(code) == ZSTD_ErrorCode::ZSTD_error_dstSize_tooSmall }
}

fn too_many() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "database frame holds more bytes than its metadata says",
    )
}

/// Decompresses a sealed segment's database, verifying its size, zstd checksum and, when the
/// metadata carries one, its SHA-256.
pub(crate) fn read_sealed(dir: &StoreDir, name: &str) -> Result<Sealed> {
    let path = dir.join(name);
    let f = dir.open_read(name).map_err(io_err(&path))?;
    let mut r = io::BufReader::with_capacity(1 << 16, f);
    let (meta, _) = parse_meta(&mut r, &path)?;
    let size = meta.db_bytes;
    let decode = |out: &mut dyn Write, r: &mut dyn Read| -> io::Result<(u64, [u8; 32])> {
        let mut sink = Bounded {
            inner: out,
            written: 0,
            limit: size,
            hash: Sha256::new(),
        };
        let mut dec = zstd::Decoder::new(r)?.single_frame();
        io::copy(&mut dec, &mut sink)?;
        Ok((sink.written, sink.hash.finalize().into()))
    };
    let damaged = |e: io::Error| {
        corrupt(
            &path,
            format!("cannot decompress: {e} (truncated or damaged file)"),
        )
    };
    let (db, (got, sha256)) = if size <= IN_MEMORY_MAX {
        // Straight into the mapping (no bounce buffer: the copy cost 5% of `top_paths`), then
        // hashed there.
        let mut map = Mapped::anonymous(size.max(1) as usize).map_err(io_err(&path))?;
        let buf = &mut map.bytes_mut()[..size as usize];
        let res = decode_into(buf, &mut r).map_err(damaged)?;
        (map, res)
    } else {
        // A decoding error is the segment's; any other, the temporary file's.
        let mut damage = false;
        let (map, res) = unnamed_copy(size, |out| {
            decode(out, &mut r).inspect_err(|_| damage = true)
        })
        .map_err(|e| {
            if damage {
                damaged(e)
            } else {
                io_err(std::env::temp_dir())(e)
            }
        })?;
        (map, res)
    };
    if got != size {
        return Err(corrupt(
            &path,
            format!("database frame holds {got} bytes, metadata says {size}"),
        ));
    }
    if let Some(want) = &meta.db_sha256 {
        if *want != hex(&sha256) {
            return Err(corrupt(
                &path,
                "database does not match the SHA-256 in its metadata (edited after sealing)",
            ));
        }
    }
    Ok(Sealed { meta, db })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8]) -> Vec<u8> {
        let mut enc = zstd::Encoder::new(Vec::new(), ZSTD_LEVEL).unwrap();
        enc.include_checksum(true).unwrap();
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn data() -> Vec<u8> {
        (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn decode_into_fills_the_declared_size_and_hashes_it() {
        let d = data();
        let mut buf = vec![0u8; d.len()];
        let (got, sha) = decode_into(&mut buf, &mut &frame(&d)[..]).unwrap();
        assert_eq!(got, d.len() as u64);
        assert_eq!(buf, d);
        assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(&d)));
    }

    #[test]
    fn decode_into_refuses_a_frame_larger_than_declared() {
        let d = data();
        for short in [1, 4096, d.len() - 1] {
            let mut buf = vec![0u8; d.len() - short];
            let e = decode_into(&mut buf, &mut &frame(&d)[..]).unwrap_err();
            assert!(
                e.to_string().contains("more bytes than its metadata says"),
                "{e}"
            );
        }
    }

    #[test]
    fn decode_into_reports_a_smaller_frame_and_a_truncated_or_damaged_one() {
        let d = data();
        let f = frame(&d);
        // Smaller than declared: the count says so (read_sealed names both sizes).
        let mut buf = vec![0u8; d.len() + 10];
        let (got, _) = decode_into(&mut buf, &mut &f[..]).unwrap();
        assert_eq!(got, d.len() as u64);
        let mut buf = vec![0u8; d.len()];
        let e = decode_into(&mut buf, &mut &f[..f.len() / 2]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        // The checksum (the frame's last four bytes) is checked.
        let mut bad = f.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(decode_into(&mut buf, &mut &bad[..]).is_err());
    }
}
