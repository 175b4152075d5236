//! Embedded migrations, applied in order and tracked with `PRAGMA user_version`.

use std::path::Path;

use rusqlite::Connection;

use super::{sql_err, Result, StoreError};

/// "OFRS": marks a SQLite file as an open-forensics segment.
pub const APPLICATION_ID: i32 = 0x4F46_5253;

/// `(file name, SQL)`, in order. Append only: a released migration is never edited.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init.sql",
        include_str!("../../migrations/0001_init.sql"),
    ),
    (
        "0002_lineage.sql",
        include_str!("../../migrations/0002_lineage.sql"),
    ),
    (
        "0003_root.sql",
        include_str!("../../migrations/0003_root.sql"),
    ),
    (
        "0004_identity.sql",
        include_str!("../../migrations/0004_identity.sql"),
    ),
    (
        "0005_file_ops.sql",
        include_str!("../../migrations/0005_file_ops.sql"),
    ),
    (
        "0006_summaries.sql",
        include_str!("../../migrations/0006_summaries.sql"),
    ),
    (
        "0007_cwd.sql",
        include_str!("../../migrations/0007_cwd.sql"),
    ),
];

/// The first schema version with process lineage (`processes`, `users`, `procs.process`).
pub const LINEAGE_VERSION: i64 = 2;
/// The first schema version with `processes.root`.
pub const ROOT_VERSION: i64 = 3;
/// The first schema version with identities: `files`, `blocks.file` and `blocks.alias_of`,
/// `procs.root`, `processes.exe_dev`, `exe_ino` and `exe_verified`.
pub const IDENTITY_VERSION: i64 = 4;
/// The first schema version with file operations: `shapes.op`, `blocks.old_path`, `new_uid`,
/// `new_gid` and `length`.
pub const FILE_OPS_VERSION: i64 = 5;
/// The first schema version with block summaries (`blocks.summary`).
pub const SUMMARY_VERSION: i64 = 6;
/// The first schema version with `processes.cwd`.
pub const CWD_VERSION: i64 = 7;

/// Brings `conn` up to the newest schema. Idempotent; fails on a file that is not ours or is newer
/// than this build.
pub fn apply_migrations(conn: &mut Connection, path: &Path) -> Result<()> {
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(sql_err(path, "PRAGMA application_id"))?;
    let version = user_version(conn, path)?;
    if version == 0 && app_id == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(sql_err(path, "SELECT count(*) FROM sqlite_schema"))?;
        if tables != 0 {
            return Err(not_ours(path));
        }
    } else if app_id != APPLICATION_ID {
        return Err(not_ours(path));
    }
    if version > MIGRATIONS.len() as i64 {
        return Err(StoreError::TooNew {
            path: path.into(),
            found: version,
            supported: MIGRATIONS.len() as i64,
        });
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
            .map_err(sql_err(path, "BEGIN EXCLUSIVE"))?;
        tx.execute_batch(sql).map_err(|source| StoreError::Sql {
            path: path.into(),
            sql: format!("migrations/{name}"),
            source,
        })?;
        let stamp = format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {};",
            i + 1
        );
        tx.execute_batch(&stamp).map_err(sql_err(path, &stamp))?;
        tx.commit().map_err(sql_err(path, "COMMIT"))?;
    }
    Ok(())
}

pub(crate) fn user_version(conn: &Connection, path: &Path) -> Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err(path, "PRAGMA user_version"))
}

/// Checks a segment opened for reading: ours, and not newer than this build.
pub(crate) fn check_readable(conn: &Connection, path: &Path) -> Result<i64> {
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(sql_err(path, "PRAGMA application_id"))?;
    if app_id != APPLICATION_ID {
        return Err(not_ours(path));
    }
    let version = user_version(conn, path)?;
    if version > MIGRATIONS.len() as i64 || version < 1 {
        return Err(StoreError::TooNew {
            path: path.into(),
            found: version,
            supported: MIGRATIONS.len() as i64,
        });
    }
    Ok(version)
}

fn not_ours(path: &Path) -> StoreError {
    StoreError::Corrupt {
        path: path.into(),
        reason: format!(
            "not an open-forensics segment (application_id is not {APPLICATION_ID:#x})"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_twice_and_stamp() {
        let mut c = Connection::open_in_memory().unwrap();
        let p = Path::new(":memory:");
        apply_migrations(&mut c, p).unwrap();
        apply_migrations(&mut c, p).unwrap();
        assert_eq!(user_version(&c, p).unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(check_readable(&c, p).unwrap(), MIGRATIONS.len() as i64);
    }

    #[test]
    fn refuses_foreign_database() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t(x)").unwrap();
        let err = apply_migrations(&mut c, Path::new("x.db")).unwrap_err();
        assert!(
            err.to_string().contains("not an open-forensics segment"),
            "{err}"
        );
    }

    #[test]
    fn refuses_newer_schema() {
        let mut c = Connection::open_in_memory().unwrap();
        apply_migrations(&mut c, Path::new("x")).unwrap();
        c.execute_batch("PRAGMA user_version = 999").unwrap();
        let err = apply_migrations(&mut c, Path::new("x.db")).unwrap_err();
        assert!(
            matches!(err, StoreError::TooNew { found: 999, .. }),
            "{err}"
        );
    }
}
