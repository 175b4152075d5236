//! Recovery when a writer opens a store: half-written seals are removed, segments a dead writer
//! left active are sealed under the number in their file name, and what does not belong is moved
//! aside (named in the summary's warnings).

use rusqlite::{Connection, OpenFlags};

use super::reserve::{Reserve, RESERVE_FILE};
use super::sealer::{remove_active_files, seal, SealJob};
use super::Writer;
use crate::store::dir::Kind;
use crate::store::schema::{apply_migrations, check_readable};
use crate::store::segment::{
    dir_kind_ok, frame, parse_name, read_meta_table, sealed_name, COMPANIONS, TMP_SUFFIX,
};
use crate::store::{io_err, sql_err, Result, StoreError};

impl Writer {
    pub(super) fn recover(&mut self) -> Result<()> {
        // A dead writer's reserve: the space is ours again.
        if let Some(to) =
            Reserve::clear_leftover(&self.dir).map_err(io_err(self.dir.join(RESERVE_FILE)))?
        {
            self.warn(format!(
                "{}: not a regular file; moved aside as {to}",
                self.dir.join(RESERVE_FILE).display()
            ));
        }
        let mut max_seq = 0;
        let mut active = Vec::new();
        let mut head: Option<(u64, String)> = None;
        let mut names = self.dir.names()?;
        names.sort();
        for name in names {
            if name.ends_with(TMP_SUFFIX) && parse_name(name.trim_end_matches(TMP_SUFFIX)).is_some()
            {
                // A seal that died half-way: ours to remove (a link is removed, not followed).
                self.dir
                    .remove(&name)
                    .map_err(io_err(self.dir.join(&name)))?;
                continue;
            }
            let Some((seq, sealed)) = parse_name(&name) else {
                continue;
            };
            max_seq = max_seq.max(seq);
            let kind = self.dir.kind(&name).map_err(io_err(self.dir.join(&name)))?;
            if !matches!(kind, Some((Kind::File, _))) {
                self.quarantine(&name, "not a regular file where a segment belongs")?;
                continue;
            }
            if sealed {
                // The chain continues from the newest sealed segment that has a link.
                if let Ok(meta) = frame::read_meta(&self.dir, &name) {
                    self.note_recorded(&meta.recording, meta.last_ts_ns);
                    if let Some(link) = meta.link {
                        if head.as_ref().is_none_or(|(s, _)| seq > *s) {
                            head = Some((seq, link));
                        }
                    }
                }
            } else {
                active.push((seq, name));
            }
        }
        self.next_seq = max_seq + 1;
        self.summary.head = head.map(|(_, l)| l).unwrap_or_default();
        for (seq, name) in active {
            let sealed = sealed_name(seq);
            if matches!(self.dir.kind(&sealed), Ok(Some((Kind::File, _)))) {
                if frame::read_meta(&self.dir, &sealed).is_ok() {
                    // Sealed before the writer died: the active files are leftovers.
                    self.remove_active_files(&name)?;
                    continue;
                }
                // Something unreadable sits at the sealed name of a recorded segment: the
                // segment is the data; the other file moves aside.
                self.quarantine(
                    &sealed,
                    "unreadable, at the sealed name of an unsealed segment",
                )?;
            }
            if let Err(e) = self.recover_one(seq, &name) {
                if e.is_unsafe() {
                    return Err(e);
                }
                self.quarantine(&name, &format!("cannot be recovered ({e})"))?;
                for c in COMPANIONS {
                    let n = format!("{name}{c}");
                    if let Ok(Some(_)) = self.dir.kind(&n) {
                        self.quarantine(&n, "companion of an unrecoverable segment")?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Seals an active segment a dead writer left behind, under the number in its file name.
    fn recover_one(&mut self, seq: u64, name: &str) -> Result<()> {
        let path = self.dir.join(name);
        dir_kind_ok(&self.dir, name)?;
        let wal = format!("{name}-wal");
        let empty = |n: &str| matches!(self.dir.kind(n), Ok(Some((Kind::File, 0))) | Ok(None));
        if empty(name) && empty(&wal) {
            // Created, then the writer died before its first commit: nothing was recorded.
            return self.remove_active_files(name);
        }
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_err(&path, "open"))?;
        // A file that is not one of ours must not be migrated into one: check first.
        check_readable(&conn, &path)?;
        apply_migrations(&mut conn, &path)?;
        let meta = read_meta_table(&conn, &path)?;
        if meta.seq != seq {
            return Err(StoreError::Corrupt {
                path,
                reason: format!(
                    "it says it is segment {}, its name says {seq} (copied in from elsewhere?)",
                    meta.seq
                ),
            });
        }
        self.note_recorded(&meta.recording, meta.last_ts_ns);
        if meta.events == 0 && meta.processes == 0 && !has_losses(&conn, &path)? {
            drop(conn);
            return self.remove_active_files(name);
        }
        let job = SealJob {
            conn,
            name: name.to_owned(),
            meta,
            // Its writer died, and what it committed with it: sealed from what the file holds.
            committed: None,
            witness: None,
        };
        let (left, res) = seal(
            job,
            &self.dir,
            &self.summary.head,
            self.sign_key.as_deref().map(|k| &k[..]),
        );
        drop(left);
        let sealed = res?;
        for n in &sealed.notes {
            self.warn(n.clone());
        }
        self.summary.sealed(&sealed);
        self.summary.recovered.push(path);
        Ok(())
    }

    fn remove_active_files(&self, name: &str) -> Result<()> {
        remove_active_files(&self.dir, name)
    }
}

/// Whether the database holds loss records (a gap segment holds nothing else, and an outage
/// counts no event).
fn has_losses(conn: &Connection, path: &std::path::Path) -> Result<bool> {
    const Q: &str = "SELECT EXISTS (SELECT 1 FROM losses)";
    conn.query_row(Q, [], |r| r.get(0))
        .map_err(sql_err(path, Q))
}
