//! A forging tool, written from the segment format as `docs/store.md` and `src/store/mod.rs`
//! document it (as an attacker would), not from the writer's code: a sealed segment is a zstd
//! skippable frame (magic 0x184D2A5E, length, `OFSEG1\n`, the metadata as JSON), then the SQLite
//! database as one zstd frame. The tamper tests edit segments with it.

use std::fs;
use std::path::Path;

use rusqlite::Connection;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

const META_MAGIC: u32 = 0x184D_2A5E;
const META_TAG: &[u8] = b"OFSEG1\n";
/// The fields of the hash chain.
pub const CHAIN: [&str; 4] = ["db_sha256", "prev", "link", "sig"];

/// A sealed segment taken apart: its metadata and its database, decompressed.
pub struct Forged {
    pub meta: Map<String, Value>,
    pub db: Vec<u8>,
}

impl Forged {
    pub fn open(path: &Path) -> Forged {
        let b = fs::read(path).expect("read segment");
        assert_eq!(u32::from_le_bytes(b[..4].try_into().unwrap()), META_MAGIC);
        let len = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
        let json = b[8..8 + len].strip_prefix(META_TAG).expect("metadata tag");
        let meta: Value = serde_json::from_slice(json).expect("metadata JSON");
        let db = zstd::decode_all(&b[8 + len..]).expect("database frame");
        Forged {
            meta: meta.as_object().expect("object").clone(),
            db,
        }
    }

    /// Edits the database with SQL, through a file (SQLite's own tool would do the same).
    pub fn edit_db(&mut self, f: impl FnOnce(&Connection)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("db");
        fs::write(&p, &self.db).expect("write db");
        {
            let c = Connection::open(&p).expect("open db");
            f(&c);
        }
        self.db = fs::read(&p).expect("read db");
    }

    /// Removes the chain fields: what a segment sealed before tamper evidence looks like.
    pub fn strip_chain(&mut self) {
        for k in CHAIN {
            self.meta.remove(k);
        }
    }

    /// Makes the segment look written by schema 2, before the chain: `user_version` 2, no
    /// `processes.root`, `schema_version` 2 in both metadata copies.
    pub fn downgrade_to_schema_2(&mut self) {
        self.edit_db(|c| {
            c.execute_batch(
                "ALTER TABLE processes DROP COLUMN root; PRAGMA user_version = 2;
                 UPDATE meta SET value = '2' WHERE key = 'schema_version';",
            )
            .expect("downgrade");
        });
        self.meta.insert("schema_version".into(), 2.into());
    }

    /// Sets a metadata key in both copies (the frame and the database's `meta` table).
    pub fn set_both(&mut self, key: &str, value: Value) {
        let text = match &value {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        self.edit_db(|c| {
            c.execute(
                "UPDATE meta SET value = ?2 WHERE key = ?1",
                rusqlite::params![key, text],
            )
            .expect("update meta");
        });
        self.meta.insert(key.into(), value);
    }

    /// Rewrites the path strings containing `from` (the events' paths are interned there).
    pub fn rewrite_paths(&mut self, from: &str, to: &str) -> usize {
        let mut n = 0;
        self.edit_db(|c| {
            n = c
                .execute(
                    "UPDATE strings SET value = CAST(replace(CAST(value AS TEXT), ?1, ?2) AS BLOB)
                     WHERE instr(CAST(value AS TEXT), ?1) > 0",
                    rusqlite::params![from, to],
                )
                .expect("rewrite strings");
        });
        n
    }

    /// Writes the segment: the size and, when `hashed`, the SHA-256 of the database follow it.
    pub fn write(&mut self, path: &Path, hashed: bool) {
        // Sealed databases are in rollback-journal mode (header bytes 18 and 19).
        self.db[18] = 1;
        self.db[19] = 1;
        self.meta
            .insert("db_bytes".into(), (self.db.len() as u64).into());
        if hashed {
            let h: String = Sha256::digest(&self.db)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            self.meta.insert("db_sha256".into(), h.into());
        }
        let json = serde_json::to_vec(&self.meta).expect("JSON");
        let mut out = META_MAGIC.to_le_bytes().to_vec();
        out.extend_from_slice(&((META_TAG.len() + json.len()) as u32).to_le_bytes());
        out.extend_from_slice(META_TAG);
        out.extend_from_slice(&json);
        let mut enc = zstd::Encoder::new(Vec::new(), 3).expect("zstd");
        enc.include_checksum(true).expect("checksum");
        enc.set_pledged_src_size(Some(self.db.len() as u64))
            .expect("size");
        enc.include_contentsize(true).expect("content size");
        std::io::Write::write_all(&mut enc, &self.db).expect("compress");
        out.extend_from_slice(&enc.finish().expect("finish"));
        fs::write(path, out).expect("write segment");
    }
}
