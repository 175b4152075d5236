//! Sealing: segments are sealed in sequence order, one at a time, on a background thread, so that
//! the caller never waits for zstd and fsync and the hash chain follows the sequence. A seal that
//! fails hands its job back, to be retried; its database stays in place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, MAIN_DB};
use sha2::{Digest, Sha256};

use super::digest::Witness;
use super::Writer;
use crate::store::dir::StoreDir;
use crate::store::segment::summarize::Collector;
use crate::store::segment::{
    force_rollback_mode, frame, hex, link_of, sealed_name, sign_link, summarize, SegmentMeta,
    COMPANIONS,
};
use crate::store::{io_err, sql_err, Result, StoreError};

/// Segments that may wait for their seal at once, beyond the one in flight.
pub const MAX_SEALS_WAITING: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    No,
    One,
    All,
}

/// A segment to seal: its open connection, so a failed seal can be retried without reopening.
pub(super) struct SealJob {
    pub(super) conn: Connection,
    pub(super) name: String,
    pub(super) meta: SegmentMeta,
    /// The ids of the rows its writer committed (`None`, as `witness`).
    pub(super) committed: Option<Collector>,
    /// What its writer committed; `None` for a segment a dead writer left (nothing to compare).
    pub(super) witness: Option<Arc<Witness>>,
}

/// What a seal gives: the sealed bytes, the new link, what the user must hear (a file moved
/// aside, an edit found), and its wall time and that of building the summary within it.
pub(super) struct Sealed {
    pub(super) bytes: u64,
    pub(super) link: String,
    pub(super) notes: Vec<String>,
    pub(super) time: Duration,
    pub(super) summary_time: Duration,
}

/// (the job back, for a retry, if the seal failed; or what it gave).
pub(super) type SealResult = (Option<SealJob>, Result<Sealed>);

impl super::WriterSummary {
    /// Counts a seal done.
    pub(super) fn sealed(&mut self, s: &Sealed) {
        self.sealed_bytes += s.bytes;
        self.head = s.link.clone();
        self.seal_time += s.time;
        self.seal_summary_time += s.summary_time;
    }
}

impl Writer {
    /// Collects a finished seal and starts the next one; `Wait::One` first waits for the seal in
    /// flight; `Wait::All` runs them all to the end (or to the first that fails).
    pub(super) fn pump(&mut self, wait: Wait) {
        loop {
            if let Some(h) = &self.sealing {
                if wait == Wait::No && !h.is_finished() {
                    return;
                }
                let h = self.sealing.take().expect("checked above");
                self.sealing_seq = None;
                let (left, res) = h.join().unwrap_or_else(|_| {
                    (
                        None,
                        Err(StoreError::Corrupt {
                            path: self.dir.path().into(),
                            reason: "the sealing thread panicked".into(),
                        }),
                    )
                });
                match res {
                    Ok(sealed) => {
                        for n in &sealed.notes {
                            self.warn(n.clone());
                        }
                        self.summary.segments_sealed += 1;
                        self.summary.sealed(&sealed);
                        self.retry_at = None;
                    }
                    Err(e) => {
                        let name = left.as_ref().map(|j| j.name.clone()).unwrap_or_default();
                        self.warn(format!(
                            "sealing {} failed, it stays an active database and is retried: {e}",
                            self.dir.join(&name).display()
                        ));
                        if let Some(job) = left {
                            self.pending.push_front(job);
                        }
                        self.retry_at = Some(Instant::now() + Duration::from_secs(5));
                        return;
                    }
                }
            }
            if self.retry_at.is_some_and(|t| Instant::now() < t) && wait != Wait::All {
                return;
            }
            // While the disk is full a seal would only take room the gap records need.
            if self.full && wait != Wait::All {
                return;
            }
            let Some(job) = self.pending.pop_front() else {
                return;
            };
            let seq = job.meta.seq;
            let dir = self.dir.clone();
            let prev = self.summary.head.clone();
            let key = self.sign_key.clone();
            let spawned = std::thread::Builder::new()
                .name("of-seal".into())
                .spawn(move || seal(job, &dir, &prev, key.as_deref().map(|k| &k[..])));
            match spawned {
                Ok(h) => {
                    self.sealing = Some(h);
                    self.sealing_seq = Some(seq);
                }
                Err(e) => {
                    self.warn(format!("cannot start the sealing thread: {e}"));
                    return;
                }
            }
            if wait != Wait::All {
                return;
            }
        }
    }
}

pub(super) fn remove_active_files(dir: &StoreDir, name: &str) -> Result<()> {
    for c in COMPANIONS {
        let n = format!("{name}{c}");
        dir.remove(&n).map_err(io_err(dir.join(&n)))?;
    }
    dir.remove(name).map_err(io_err(dir.join(name)))
}

/// Seals one segment: serializes its database through the writer's own connection
/// (`sqlite3_serialize`: no journal-mode switch, so no reader can make it fail), checks it against
/// what the writer committed (an edit by another process is recorded in `tampered`, never sealed
/// as genuine), hashes it, extends the chain, writes the sealed file without replacing anything,
/// then removes the active files. On failure the job comes back for a retry.
pub(super) fn seal(mut job: SealJob, dir: &StoreDir, prev: &str, key: Option<&[u8]>) -> SealResult {
    let path = dir.join(&job.name);
    let start = Instant::now();
    let mut summary_time = Duration::ZERO;
    let mut run = || -> Result<(u64, String, Vec<String>)> {
        let mut notes = Vec::new();
        // One read transaction (ended after `run`): the image compared with the witness is the
        // image sealed.
        job.conn
            .execute_batch("BEGIN")
            .map_err(sql_err(&path, "BEGIN"))?;
        let edited = match &job.witness {
            Some(w) => w.check(&job.conn, &path)?,
            None => None,
        };
        // The summary of the image sealed. A database it cannot be built from (rows naming ids
        // its tables lack) is sealed without one: every reading then reads it, and says why.
        let t = Instant::now();
        let version = job.meta.schema_version;
        // From the ids the writer collected when the witness vouches that the image holds just
        // the rows it committed; else from the image's rows.
        let summary = match (&job.witness, &edited, &job.committed) {
            (Some(_), None, Some(c)) => summarize::segment_summary(&job.conn, &path, version, c),
            _ => summarize::rebuild(&job.conn, &path, version, false).map(|r| r.segment),
        }
        .map(|s| s.to_base64());
        summary_time = t.elapsed();
        // Read through the pager: the committed pages, WAL included, without a second copy of
        // the database (an in-memory backup would be one).
        let data = job
            .conn
            .serialize(MAIN_DB)
            .map_err(sql_err(&path, "serialize"))?;
        // An image of a WAL database says so in its header; a sealed one is read in rollback
        // mode (and sqlite3_deserialize requires it), so the header is written as such.
        let split = data.len().min(100);
        let mut header = data[..split].to_vec();
        force_rollback_mode(&mut header);
        let parts = [&header[..], &data[split..]];
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        let mut meta = job.meta.clone();
        if let Some(tables) = edited {
            let what = format!(
                "changed by another process while it was being recorded (tables: {}): the file no longer holds what the recorder committed",
                tables.join(", ")
            );
            notes.push(format!("{}: {what}; sealed as tampered", path.display()));
            meta.tampered = Some(what);
        }
        match summary {
            Ok(s) => meta.summary = Some(s),
            Err(e) => notes.push(format!("{e}; sealed without a summary")),
        }
        meta.db_bytes = data.len() as u64;
        meta.db_sha256 = Some(hex(&h.finalize()));
        meta.prev = Some(prev.to_owned());
        let link = link_of(&meta);
        meta.sig = key.map(|k| sign_link(k, &link));
        meta.link = Some(link.clone());
        let name = sealed_name(meta.seq);
        let sealed = match frame::write_sealed(dir, &name, &meta, &parts) {
            Err(StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                // Only this writer seals this number: whatever holds the name was planted (or
                // is a copy). It moves aside, never over the segment, and the seal goes on.
                let to = dir.quarantine(&name).map_err(io_err(dir.join(&name)))?;
                notes.push(format!(
                    "{}: a file was in the way of sealing this segment; moved aside as {to}",
                    dir.join(&name).display()
                ));
                frame::write_sealed(dir, &name, &meta, &parts)?
            }
            other => other?,
        };
        let bytes = dir.kind(&name).ok().flatten().map_or(0, |k| k.1);
        drop(sealed);
        Ok((bytes, link, notes))
    };
    let res = run();
    if !job.conn.is_autocommit() {
        let _ = job.conn.execute_batch("ROLLBACK");
    }
    match res {
        Ok((bytes, link, notes)) => {
            let SealJob { conn, name, .. } = job;
            // The sealed file is durable: the active files are now redundant. A failure to
            // remove them is harmless (the next writer removes leftovers of sealed segments).
            let _ = conn.close();
            let _ = remove_active_files(dir, &name);
            let _ = dir.sync();
            let time = start.elapsed();
            (
                None,
                Ok(Sealed {
                    bytes,
                    link,
                    notes,
                    time,
                    summary_time,
                }),
            )
        }
        Err(e) => (Some(job), Err(e)),
    }
}
