//! The active segment's witness: a digest of what the writer committed, so that an edit of the
//! active database by another process (`sqlite3` on the file while recording) is caught at seal
//! time instead of being sealed and signed as genuine.
//!
//! The writer's own connection carries TEMP triggers (they live in that connection, never in
//! the file, so no other process runs them) that hand every row it inserts, updates or deletes
//! to [`WITNESS_FN`]. Each row is hashed with HMAC-SHA-256 under a key drawn at random when the
//! segment starts and held only in the writer's memory, and the hashes are XORed into one
//! accumulator per table; rows of one table are distinct (their primary key), so another process
//! that does not know the key cannot make an edited table sum to the same value. A transaction's
//! rows count only once SQLite has committed it: the commit hook runs before the commit, which a
//! full disk can still refuse (SQLite then rolls back at once, calling the rollback hook), so
//! the rows are confirmed by the WAL hook, which SQLite calls only after a commit reached the
//! log. The schema (`sqlite_schema`) is witnessed when the segment starts, so a trigger or table
//! planted later shows as well.
//!
//! At seal the same digest is computed from the database, in the read transaction that
//! serializes it: what is sealed is what was compared. Root can still read the key out of the
//! recorder's memory; see docs/store.md, "What verify proves".

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use sha2::Sha256;

use crate::store::{sql_err, Result};

/// The SQL function the triggers call: `of_witness(TABLE NUMBER, column values…)`.
const WITNESS_FN: &str = "of_witness";
/// What the schema's rows are filed under.
const SCHEMA: &str = "sqlite_schema";

/// HMAC-SHA-256 with the key's inner and outer pad states computed once (`Hmac`, not
/// `SimpleHmac`, which hashes the outer pad again for every row: benches/decode.rs under
/// callgrind, docs/benchmarks.md).
type Key = Hmac<Sha256>;
type Sum = [u8; 32];
/// A digest by table name, as computed from the database.
type Sums = BTreeMap<String, Sum>;

/// The digests of one segment's tables, by table number (the triggers' first argument): the
/// triggers run for every row the writer commits, so they find their sum by index, with no
/// name to allocate or compare.
struct State {
    committed: Vec<Sum>,
    /// Rows of the transaction in progress.
    pending: Vec<Sum>,
    /// Rows of a transaction SQLite is committing (its commit hook ran): confirmed by the WAL
    /// hook once the commit is in the log, dropped by the rollback hook when the disk refused it.
    staged: Vec<Sum>,
}

/// SQLite's own automatic checkpoint threshold (pages in the log), which a WAL hook replaces.
const AUTOCHECKPOINT_PAGES: i32 = 1000;

/// The digest of what the writer committed to one active segment.
pub(crate) struct Witness {
    mac: Key,
    /// Table numbers' names: [`SCHEMA`], then the segment's tables when it started.
    names: Arc<Vec<String>>,
    state: Arc<Mutex<State>>,
}

fn xor(acc: &mut Sum, h: &Sum) {
    for (a, b) in acc.iter_mut().zip(h) {
        *a ^= b;
    }
}

fn xor_into(sums: &mut Sums, table: &str, h: Sum) {
    match sums.get_mut(table) {
        Some(acc) => xor(acc, &h),
        None => {
            sums.insert(table.to_owned(), h);
        }
    }
}

/// One value, typed and length-prefixed, so that no two rows encode alike; fed to the MAC as
/// it is encoded (no buffer: the triggers hash every committed row).
fn encode(m: &mut Key, v: ValueRef<'_>) {
    let (tag, word, bytes): (u8, u64, &[u8]) = match v {
        ValueRef::Null => return m.update(&[0]),
        ValueRef::Integer(i) => (1, i as u64, &[]),
        ValueRef::Real(f) => (2, f.to_bits(), &[]),
        ValueRef::Text(b) => (3, b.len() as u64, b),
        ValueRef::Blob(b) => (4, b.len() as u64, b),
    };
    let mut head = [tag; 9];
    head[1..].copy_from_slice(&word.to_le_bytes());
    m.update(&head);
    m.update(bytes);
}

fn row_hash<'a>(mac: &Key, table: &str, values: impl Iterator<Item = ValueRef<'a>>) -> Sum {
    let mut m = mac.clone();
    encode(&mut m, ValueRef::Text(table.as_bytes()));
    for v in values {
        encode(&mut m, v);
    }
    m.finalize().into_bytes().into()
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The tables of the segment and their columns, in declared order (`SELECT *`'s).
fn tables(conn: &Connection, path: &Path) -> Result<Vec<(String, Vec<String>)>> {
    const T: &str = "SELECT name FROM main.sqlite_schema WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";
    let names: Vec<String> = conn
        .prepare(T)
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(sql_err(path, T))?;
    let mut out = Vec::new();
    for name in names {
        const C: &str = "SELECT name FROM pragma_table_info(?1) ORDER BY cid";
        let cols: Vec<String> = conn
            .prepare(C)
            .and_then(|mut st| st.query_map([&name], |r| r.get(0))?.collect())
            .map_err(sql_err(path, C))?;
        out.push((name, cols));
    }
    Ok(out)
}

impl Witness {
    /// Starts witnessing `conn` (a new segment, its schema just applied): draws the key, installs
    /// the triggers and hooks, and takes the schema (and any rows) as the starting point.
    pub(crate) fn watch(conn: &mut Connection, path: &Path) -> Result<Arc<Witness>> {
        let mut key = [0u8; 32];
        // SAFETY: getrandom writes at most key.len() bytes into key.
        let n = unsafe { libc::getrandom(key.as_mut_ptr().cast(), key.len(), 0) };
        if n != key.len() as isize {
            return Err(crate::store::io_err(path)(std::io::Error::last_os_error()));
        }
        let mac = Key::new_from_slice(&key).expect("HMAC takes any key length");
        let start = digest_of(&mac, conn, path)?;
        let tables = tables(conn, path)?;
        let names: Vec<String> = std::iter::once(SCHEMA.to_owned())
            .chain(tables.iter().map(|(t, _)| t.clone()))
            .collect();
        let zero = vec![[0; 32]; names.len()];
        let w = Arc::new(Witness {
            state: Arc::new(Mutex::new(State {
                committed: names
                    .iter()
                    .map(|t| start.get(t).copied().unwrap_or_default())
                    .collect(),
                pending: zero.clone(),
                staged: zero,
            })),
            names: Arc::new(names),
            mac,
        });
        let (mac, names, state) = (w.mac.clone(), w.names.clone(), w.state.clone());
        // DIRECTONLY: a trigger planted in the file cannot call it (TEMP triggers can).
        conn.create_scalar_function(
            WITNESS_FN,
            -1,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY,
            move |ctx| {
                let i = ctx
                    .get_raw(0)
                    .as_i64()
                    .ok()
                    .and_then(|i| usize::try_from(i).ok());
                let Some((i, table)) = i.and_then(|i| Some((i, names.get(i)?))) else {
                    return Err(rusqlite::Error::UserFunctionError(
                        format!("{WITNESS_FN}: no table number {:?}", ctx.get_raw(0)).into(),
                    ));
                };
                let h = row_hash(&mac, table, (1..ctx.len()).map(|i| ctx.get_raw(i)));
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                xor(&mut s.pending[i], &h);
                Ok(rusqlite::types::Null)
            },
        )
        .map_err(sql_err(path, "create_scalar_function of_witness"))?;
        // INSERT OR REPLACE removes the row it replaces as a delete, which triggers see only
        // with recursive triggers on.
        let mut sql = String::from("PRAGMA recursive_triggers = ON;");
        for (n, (t, cols)) in tables.iter().enumerate() {
            let vals = |row: &str| {
                // Table number n + 1: 0 is the schema's.
                let mut s = format!("{WITNESS_FN}({}", n + 1);
                for c in cols {
                    s.push_str(&format!(", {row}.{}", quote(c)));
                }
                s + ")"
            };
            let (qt, old, new) = (quote(t), vals("OLD"), vals("NEW"));
            let trig = |what: &str| quote(&format!("of_witness_{what}_{t}"));
            sql.push_str(&format!(
                "CREATE TEMP TRIGGER {} AFTER INSERT ON main.{qt} BEGIN SELECT {new}; END;
                 CREATE TEMP TRIGGER {} AFTER UPDATE ON main.{qt} BEGIN SELECT {old}, {new}; END;
                 CREATE TEMP TRIGGER {} AFTER DELETE ON main.{qt} BEGIN SELECT {old}; END;",
                trig("ins"),
                trig("upd"),
                trig("del"),
            ));
        }
        conn.execute_batch(&sql).map_err(sql_err(path, &sql))?;
        let state = w.state.clone();
        conn.commit_hook(Some(move || {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            let s = &mut *s;
            for (st, p) in s.staged.iter_mut().zip(&mut s.pending) {
                xor(st, p);
                *p = [0; 32];
            }
            false
        }))
        .map_err(sql_err(path, "commit_hook"))?;
        let state = w.state.clone();
        conn.rollback_hook(Some(move || {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.pending.fill([0; 32]);
            s.staged.fill([0; 32]);
        }))
        .map_err(sql_err(path, "rollback_hook"))?;
        let state = w.state.clone();
        // Installing a WAL hook turns off SQLite's automatic checkpoints: this one does what
        // they did (a passive checkpoint past the same threshold; a failure, e.g. a full disk,
        // is left for the next commit to retry, as SQLite's own hook leaves it).
        conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            let s_ = &mut *s;
            for (c, st) in s_.committed.iter_mut().zip(&mut s_.staged) {
                xor(c, st);
                *st = [0; 32];
            }
            drop(s);
            if pages >= AUTOCHECKPOINT_PAGES {
                let _ = wal.checkpoint_v2(rusqlite::wal::CheckpointMode::PASSIVE);
            }
            Ok(())
        }))
        .map_err(sql_err(path, "wal_hook"))?;
        Ok(w)
    }

    /// Compares the database as `conn` reads it now (call it inside the read transaction whose
    /// image is sealed) with what was committed through it: `None` when they agree, else the
    /// tables that differ.
    pub(crate) fn check(&self, conn: &Connection, path: &Path) -> Result<Option<Vec<String>>> {
        let now = digest_of(&self.mac, conn, path)?;
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let committed: Sums = self
            .names
            .iter()
            .cloned()
            .zip(s.committed.clone())
            .collect();
        let zero = [0u8; 32];
        let mut differ: Vec<String> = now
            .keys()
            .chain(committed.keys())
            .filter(|t| now.get(*t).unwrap_or(&zero) != committed.get(*t).unwrap_or(&zero))
            .cloned()
            .collect();
        differ.sort();
        differ.dedup();
        Ok((!differ.is_empty()).then_some(differ))
    }
}

/// The digest of the database: its schema rows and every row of every table, under `mac`.
fn digest_of(mac: &Key, conn: &Connection, path: &Path) -> Result<Sums> {
    let mut sums = Sums::new();
    let mut add = |table: &str, sql: &str| -> Result<()> {
        let mut st = conn.prepare(sql).map_err(sql_err(path, sql))?;
        let n = st.column_count();
        let mut rows = st.query([]).map_err(sql_err(path, sql))?;
        while let Some(r) = rows.next().map_err(sql_err(path, sql))? {
            let vals = (0..n).map(|i| r.get_ref(i).unwrap_or(ValueRef::Null));
            xor_into(&mut sums, table, row_hash(mac, table, vals));
        }
        Ok(())
    };
    add(
        SCHEMA,
        "SELECT type, name, tbl_name, sql FROM main.sqlite_schema",
    )?;
    for (t, _) in tables(conn, path)? {
        add(&t, &format!("SELECT * FROM main.{}", quote(&t)))?;
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::apply_migrations;

    fn segment() -> (tempfile::TempDir, Connection, Arc<Witness>) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.db");
        let mut c = Connection::open(&p).unwrap();
        c.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        apply_migrations(&mut c, &p).unwrap();
        let w = Witness::watch(&mut c, &p).unwrap();
        (d, c, w)
    }

    fn write(c: &Connection) {
        c.execute_batch(
            "BEGIN; INSERT INTO strings (id, value) VALUES (1, x'2f6574632f736861646f77'), (2, x'61');
             INSERT OR REPLACE INTO meta (key, value) VALUES ('events', '1');
             INSERT OR REPLACE INTO meta (key, value) VALUES ('events', '2');
             INSERT INTO users (uid, name) VALUES (0, 'root');
             INSERT OR IGNORE INTO users (uid, name) VALUES (0, 'root');
             COMMIT;
             UPDATE strings SET value = x'62' WHERE id = 2;",
        )
        .unwrap();
    }

    #[test]
    fn what_the_writer_committed_checks_clean() {
        let (_d, c, w) = segment();
        write(&c);
        // A rolled-back transaction leaves no trace in the digest.
        c.execute_batch("BEGIN; INSERT INTO strings (id, value) VALUES (3, x'63'); ROLLBACK;")
            .unwrap();
        assert_eq!(w.check(&c, Path::new("s")).unwrap(), None);
    }

    #[test]
    fn a_rollback_after_a_commit_keeps_what_was_committed() {
        // The last statement of `write` commits on its own (autocommit); a transaction that then
        // rolls back before writing a row must not take that commit's rows with it. A commit the
        // disk refuses is rolled back by SQLite right after the commit hook:
        // tests/it/diskfull.rs proves it counts nothing, on a full tmpfs.
        let (_d, c, w) = segment();
        write(&c);
        c.execute_batch("BEGIN; ROLLBACK;").unwrap();
        assert_eq!(w.check(&c, Path::new("s")).unwrap(), None);
        c.execute_batch("BEGIN; INSERT INTO strings (id, value) VALUES (9, x'09');")
            .unwrap();
        c.execute_batch("ROLLBACK").unwrap();
        assert_eq!(w.check(&c, Path::new("s")).unwrap(), None);
    }

    #[test]
    fn the_log_is_still_checkpointed() {
        // A WAL hook replaces SQLite's automatic checkpoints: the witness's must do their work.
        let (d, c, _w) = segment();
        c.execute_batch("CREATE TABLE big (b BLOB)").unwrap();
        for _ in 0..40 {
            c.execute("INSERT INTO big VALUES (randomblob(400000))", [])
                .unwrap();
        }
        let wal = std::fs::metadata(d.path().join("s.db-wal")).unwrap().len();
        let db = std::fs::metadata(d.path().join("s.db")).unwrap().len();
        assert!(
            db > 8 << 20,
            "nothing was checkpointed into the database: {db} bytes"
        );
        assert!(wal < 16 << 20, "the log grew without bound: {wal} bytes");
    }

    #[test]
    fn another_connections_edit_is_named_by_table() {
        let (d, c, w) = segment();
        write(&c);
        let other = Connection::open(d.path().join("s.db")).unwrap();
        other
            .execute_batch("UPDATE strings SET value = x'2f746d702f78' WHERE id = 1")
            .unwrap();
        assert_eq!(
            w.check(&c, Path::new("s")).unwrap(),
            Some(vec!["strings".to_owned()])
        );
        // A planted trigger (or table) changes the schema, whatever it does.
        let (d, c, w) = segment();
        let other = Connection::open(d.path().join("s.db")).unwrap();
        other
            .execute_batch("CREATE TRIGGER t AFTER INSERT ON strings BEGIN SELECT 1; END")
            .unwrap();
        write(&c);
        assert_eq!(
            w.check(&c, Path::new("s")).unwrap(),
            Some(vec![SCHEMA.to_owned()])
        );
    }

    #[test]
    fn a_trigger_in_the_file_cannot_call_the_witness() {
        let (d, c, _w) = segment();
        let other = Connection::open(d.path().join("s.db")).unwrap();
        other
            .execute_batch(
                "CREATE TRIGGER t AFTER INSERT ON strings BEGIN SELECT of_witness(1, 1); END",
            )
            .unwrap();
        let err = c
            .execute_batch("INSERT INTO strings (id, value) VALUES (9, x'00')")
            .unwrap_err();
        assert!(err.to_string().contains("of_witness"), "{err}");
    }
}
