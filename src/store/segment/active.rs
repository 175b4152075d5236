//! Reading an active segment without disturbing its writer: a private in-memory copy.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::dir_kind_ok;
use super::read_meta_table;
use crate::store::dir::StoreDir;
use crate::store::schema::check_readable;
use crate::store::{io_err, sql_err, Result, SegmentMeta};

/// A private in-memory copy of active segment `name`. With a live writer, a read-only connection
/// and SQLite's own locking give a consistent snapshot (readers never block the writer: it seals
/// through its own read of the database, not by changing journal modes). A segment left by a
/// dead writer is copied, with its WAL, into a private directory whose WAL is replayed there —
/// never in the store.
pub(crate) fn snapshot_active(
    dir: &StoreDir,
    name: &str,
    writer_alive: bool,
) -> Result<Connection> {
    let path = dir.join(name);
    dir_kind_ok(dir, name)?;
    let copy_from = |src: &Connection, mem: &mut Connection| -> Result<()> {
        let backup = rusqlite::backup::Backup::new(src, mem).map_err(sql_err(&path, "backup"))?;
        backup
            .run_to_completion(1024, std::time::Duration::from_millis(5), None)
            .map_err(sql_err(&path, "backup"))
    };
    if writer_alive {
        // A segment its writer is creating (between `journal_mode = WAL` and its WAL's first
        // frame) can refuse a read-only open for an instant (SQLITE_CANTOPEN, seen under load
        // in `readers_racing_rotation_never_stop_the_recorder`): try again briefly before
        // calling it unreadable.
        let open = || -> Result<Connection> {
            let src = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(sql_err(&path, "open read-only"))?;
            let mut mem = Connection::open_in_memory().map_err(sql_err(&path, "open :memory:"))?;
            copy_from(&src, &mut mem)?;
            Ok(mem)
        };
        let mut tries = 0;
        return loop {
            match open() {
                Ok(mem) => break Ok(mem),
                Err(_) if tries < 20 && matches!(dir.kind(name), Ok(Some(_))) => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => break Err(e),
            }
        };
    }
    let tmp = tempfile::tempdir().map_err(io_err(&path))?;
    let copy = tmp.path().join("segment.db");
    copy_file(dir, name, &copy)?;
    let wal = format!("{name}-wal");
    if dir.kind(&wal).ok().flatten().is_some() {
        copy_file(dir, &wal, &tmp.path().join("segment.db-wal"))?;
    }
    let src = Connection::open(&copy).map_err(sql_err(&path, "open copy"))?;
    let mut mem = Connection::open_in_memory().map_err(sql_err(&path, "open :memory:"))?;
    copy_from(&src, &mut mem)?;
    Ok(mem)
}

/// Copies a regular file of the store (not through a link) to a private path.
fn copy_file(dir: &StoreDir, name: &str, to: &Path) -> Result<()> {
    let from = dir.join(name);
    let mut src = dir.open_read(name).map_err(io_err(&from))?;
    let mut dst = std::fs::File::create(to).map_err(io_err(to))?;
    std::io::copy(&mut src, &mut dst).map_err(io_err(&from))?;
    Ok(())
}

/// What an active file turned out to be.
pub(crate) enum ActiveMeta {
    Segment(Box<SegmentMeta>),
    /// Empty, or a database with nothing in it yet: a segment its writer is creating (or died
    /// creating). Nothing was recorded in it.
    Uninitialized,
    /// A database that is not an open-forensics segment.
    Foreign,
}

/// The metadata of an active segment, for listing.
pub(crate) fn active_meta(dir: &StoreDir, name: &str, writer_alive: bool) -> Result<ActiveMeta> {
    let path = dir.join(name);
    if let Ok(Some((_, 0))) = dir.kind(name) {
        if !matches!(dir.kind(&format!("{name}-wal")), Ok(Some((_, n))) if n > 0) {
            return Ok(ActiveMeta::Uninitialized);
        }
    }
    let conn = snapshot_active(dir, name, writer_alive)?;
    let (app_id, version, tables): (i32, i64, i64) = conn
        .query_row(
            "SELECT (SELECT application_id FROM pragma_application_id()), \
                    (SELECT user_version FROM pragma_user_version()), \
                    (SELECT count(*) FROM sqlite_schema)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(sql_err(&path, "PRAGMA application_id"))?;
    if app_id == 0 && version == 0 {
        return Ok(if tables == 0 {
            ActiveMeta::Uninitialized
        } else {
            ActiveMeta::Foreign
        });
    }
    if app_id != crate::store::APPLICATION_ID {
        return Ok(ActiveMeta::Foreign);
    }
    check_readable(&conn, &path)?;
    let mut meta = read_meta_table(&conn, &path)?;
    meta.db_bytes = conn
        .query_row(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(sql_err(&path, "page_count"))? as u64;
    Ok(ActiveMeta::Segment(Box::new(meta)))
}
