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

use hmac::{Mac, SimpleHmac};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use sha2::Sha256;

use crate::store::{sql_err, Result};

/// The SQL function the triggers call: `of_witness(TABLE, column values…)`.
const WITNESS_FN: &str = "of_witness";
/// What the schema's rows are filed under.
const SCHEMA: &str = "sqlite_schema";

type Sums = BTreeMap<String, [u8; 32]>;

#[derive(Default)]
struct State {
    committed: Sums,
    /// Rows of the transaction in progress.
    pending: Sums,
    /// Rows of a transaction SQLite is committing (its commit hook ran): confirmed by the WAL
    /// hook once the commit is in the log, dropped by the rollback hook when the disk refused it.
    staged: Sums,
}

/// SQLite's own automatic checkpoint threshold (pages in the log), which a WAL hook replaces.
const AUTOCHECKPOINT_PAGES: i32 = 1000;

/// The digest of what the writer committed to one active segment.
pub(crate) struct Witness {
    mac: SimpleHmac<Sha256>,
    state: Arc<Mutex<State>>,
}

fn xor_into(sums: &mut Sums, table: &str, h: [u8; 32]) {
    let acc = sums.entry(table.to_owned()).or_insert([0; 32]);
    for (a, b) in acc.iter_mut().zip(h) {
        *a ^= b;
    }
}

/// One value, typed and length-prefixed, so that no two rows encode alike.
fn encode(out: &mut Vec<u8>, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => out.push(0),
        ValueRef::Integer(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        ValueRef::Real(f) => {
            out.push(2);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        ValueRef::Text(b) | ValueRef::Blob(b) => {
            out.push(if matches!(v, ValueRef::Text(_)) { 3 } else { 4 });
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

fn row_hash<'a>(
    mac: &SimpleHmac<Sha256>,
    table: &str,
    values: impl Iterator<Item = ValueRef<'a>>,
) -> [u8; 32] {
    let mut buf = Vec::with_capacity(64);
    encode(&mut buf, ValueRef::Text(table.as_bytes()));
    for v in values {
        encode(&mut buf, v);
    }
    let mut m = mac.clone();
    m.update(&buf);
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
        let mac = SimpleHmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
        let start = digest_of(&mac, conn, path)?;
        let w = Arc::new(Witness {
            mac,
            state: Arc::new(Mutex::new(State {
                committed: start,
                ..State::default()
            })),
        });
        let (mac, state) = (w.mac.clone(), w.state.clone());
        // DIRECTONLY: a trigger planted in the file cannot call it (TEMP triggers can).
        conn.create_scalar_function(
            WITNESS_FN,
            -1,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY,
            move |ctx| {
                let table = ctx.get_raw(0).as_str().unwrap_or_default().to_owned();
                let h = row_hash(&mac, &table, (1..ctx.len()).map(|i| ctx.get_raw(i)));
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                xor_into(&mut s.pending, &table, h);
                Ok(rusqlite::types::Null)
            },
        )
        .map_err(sql_err(path, "create_scalar_function of_witness"))?;
        // INSERT OR REPLACE removes the row it replaces as a delete, which triggers see only
        // with recursive triggers on.
        let mut sql = String::from("PRAGMA recursive_triggers = ON;");
        for (t, cols) in tables(conn, path)? {
            let vals = |row: &str| {
                let mut s = format!("{WITNESS_FN}('{}'", t.replace('\'', "''"));
                for c in &cols {
                    s.push_str(&format!(", {row}.{}", quote(c)));
                }
                s + ")"
            };
            let (qt, old, new) = (quote(&t), vals("OLD"), vals("NEW"));
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
            for (t, h) in std::mem::take(&mut s.pending) {
                xor_into(&mut s.staged, &t, h);
            }
            false
        }))
        .map_err(sql_err(path, "commit_hook"))?;
        let state = w.state.clone();
        conn.rollback_hook(Some(move || {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.pending.clear();
            s.staged.clear();
        }))
        .map_err(sql_err(path, "rollback_hook"))?;
        let state = w.state.clone();
        // Installing a WAL hook turns off SQLite's automatic checkpoints: this one does what
        // they did (a passive checkpoint past the same threshold; a failure, e.g. a full disk,
        // is left for the next commit to retry, as SQLite's own hook leaves it).
        conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            for (t, h) in std::mem::take(&mut s.staged) {
                xor_into(&mut s.committed, &t, h);
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
        let zero = [0u8; 32];
        let mut differ: Vec<String> = now
            .keys()
            .chain(s.committed.keys())
            .filter(|t| now.get(*t).unwrap_or(&zero) != s.committed.get(*t).unwrap_or(&zero))
            .cloned()
            .collect();
        differ.sort();
        differ.dedup();
        Ok((!differ.is_empty()).then_some(differ))
    }
}

/// The digest of the database: its schema rows and every row of every table, under `mac`.
fn digest_of(mac: &SimpleHmac<Sha256>, conn: &Connection, path: &Path) -> Result<Sums> {
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
                "CREATE TRIGGER t AFTER INSERT ON strings BEGIN SELECT of_witness('strings', 1); END",
            )
            .unwrap();
        let err = c
            .execute_batch("INSERT INTO strings (id, value) VALUES (9, x'00')")
            .unwrap_err();
        assert!(err.to_string().contains("of_witness"), "{err}");
    }
}
