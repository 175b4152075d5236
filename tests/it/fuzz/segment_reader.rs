//! Fuzz target 1: the segment reader.

use std::collections::HashMap;
use std::fmt::Debug;
use std::io::Write as _;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseResult;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use open_forensics::store::{link_of, Reader, SegmentMeta, TimeRange};

use super::{
    apply_bytes, byte_op, eval_rules, evaluate, fail, files, fuzz, generated_events, long_cases,
    scenario_dirs, within, ByteOp, SEGMENTS_READ, T0,
};
use crate::helpers::{fixtures_dir, TempStore};

const META_MAGIC: u32 = 0x184D_2A5E;
const META_TAG: &[u8] = b"OFSEG1\n";

/// A sealed segment taken apart: its metadata frame's JSON and its decompressed database.
struct SealedSeed {
    name: String,
    meta: Map<String, Value>,
    db: Vec<u8>,
}

impl Debug for SealedSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)
    }
}

fn split_sealed(name: String, file: &[u8]) -> SealedSeed {
    assert_eq!(
        file[..4],
        META_MAGIC.to_le_bytes(),
        "{name}: metadata frame"
    );
    let len = u32::from_le_bytes(file[4..8].try_into().expect("4 bytes")) as usize;
    let json = &file[8..8 + len];
    let json = json.strip_prefix(META_TAG).expect("OFSEG1 tag");
    SealedSeed {
        meta: serde_json::from_slice(json).expect("metadata JSON"),
        db: zstd::decode_all(&file[8 + len..]).expect("database frame"),
        name,
    }
}

/// A sealed file as the writer makes it: the metadata frame, then the database, zstd, with its
/// size and checksum in the frame.
fn seal(meta_json: &[u8], db: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(db.len() / 3 + meta_json.len() + 64);
    out.extend_from_slice(&META_MAGIC.to_le_bytes());
    out.extend_from_slice(&((META_TAG.len() + meta_json.len()) as u32).to_le_bytes());
    out.extend_from_slice(META_TAG);
    out.extend_from_slice(meta_json);
    let mut enc = zstd::Encoder::new(&mut out, 1).expect("zstd encoder");
    enc.include_checksum(true).expect("checksum");
    enc.set_pledged_src_size(Some(db.len() as u64))
        .expect("pledged size");
    enc.include_contentsize(true).expect("content size");
    enc.write_all(db).expect("compress");
    enc.finish().expect("finish");
    out
}

/// The fixture segments and one made by `open-forensics import`, taken apart once.
fn segment_seeds() -> &'static [SealedSeed] {
    static SEEDS: OnceLock<Vec<SealedSeed>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds = Vec::new();
        for dir in scenario_dirs() {
            for f in files(&dir, ".seg.zst") {
                let bytes = std::fs::read(&f).expect("read fixture segment");
                let name = f
                    .strip_prefix(fixtures_dir())
                    .unwrap_or(&f)
                    .display()
                    .to_string();
                seeds.push(split_sealed(name, &bytes));
            }
        }
        let store = TempStore::new();
        store.import(&generated_events());
        for f in files(&store.dir, ".seg.zst") {
            let bytes = std::fs::read(&f).expect("read imported segment");
            seeds.push(split_sealed(format!("import:{}", f.display()), &bytes));
        }
        assert!(seeds.len() >= 6, "fixture and imported segments: {seeds:?}");
        // The same segments with small pages (their 64 KiB pages are mostly empty, and a case
        // handles every byte several times) and a loss record: cheaper cases, the losses table.
        let compact: Vec<SealedSeed> = seeds.iter().map(compact_seed).collect();
        seeds.extend(compact);
        seeds
    })
}

/// `seed` re-sealed with 1 KiB pages and one loss record (its metadata updated to match).
fn compact_seed(seed: &SealedSeed) -> SealedSeed {
    let sql = [format!(
        "INSERT INTO losses (start_ns, end_ns, count, reason) VALUES ({T0}, {}, 5, 'ringbuf full');
         UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 5 AS TEXT) WHERE key = 'lost';
         PRAGMA page_size = 1024;
         VACUUM;",
        T0 + 1_000_000_000_000
    )];
    let (db, table) = run_sql(&seed.db, &sql, true);
    let mut meta = seed.meta.clone();
    frame_from_table(&mut meta, &table);
    set_db_hash(&mut meta, &db);
    assert!(
        db.len() < seed.db.len(),
        "{seed:?}: VACUUM with 1 KiB pages"
    );
    SealedSeed {
        name: format!("{} (1 KiB pages, a loss)", seed.name),
        meta,
        db,
    }
}

/// Gives the frame the size and SHA-256 of `db`, and, if it is chained, the link that matches.
fn set_db_hash(meta: &mut Map<String, Value>, db: &[u8]) {
    meta.insert("db_bytes".into(), (db.len() as u64).into());
    let sha: String = Sha256::digest(db)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    meta.insert("db_sha256".into(), sha.into());
    relink(meta);
}

/// A chained frame edited on purpose (to get damage past the checks) gets its link recomputed,
/// as a forger would: listing refuses a frame that does not match its link.
fn relink(meta: &mut Map<String, Value>) {
    if !meta.contains_key("link") {
        return;
    }
    if let Ok(m) = serde_json::from_value::<SegmentMeta>(Value::Object(meta.clone())) {
        meta.insert("link".into(), link_of(&m).into());
    }
}

/// Tables and columns of the segment schema (migrations/), for SQL-level mutations.
const TABLES: &[(&str, &[&str])] = &[
    (
        "blocks",
        &[
            "count",
            "base_ts_ns",
            "min_ts_ns",
            "max_ts_ns",
            "ts",
            "proc",
            "path",
            "raw_path",
            "shape",
            "ret",
            "id",
        ],
    ),
    (
        "procs",
        &[
            "id", "pid", "tid", "ppid", "uid", "gid", "comm", "euid", "egid", "process",
        ],
    ),
    (
        "shapes",
        &[
            "id",
            "syscall",
            "src",
            "truncated",
            "dirfd",
            "flags",
            "mode",
        ],
    ),
    ("strings", &["id", "value"]),
    (
        "processes",
        &[
            "id",
            "pid",
            "start_ns",
            "exec_ns",
            "parent",
            "ppid",
            "source",
            "comm",
            "exe",
            "argv",
            "args_truncated",
            "uid",
            "gid",
            "euid",
            "egid",
            "auid",
            "sessionid",
            "cgroup_id",
            "cgroup",
            "container_id",
            "pidns",
            "mntns",
            "tty",
            "exit_code",
            "exit_ns",
            "root",
        ],
    ),
    ("losses", &["id", "start_ns", "end_ns", "count", "reason"]),
    ("users", &["uid", "name"]),
    ("meta", &["value", "key"]),
];

const SQL_VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "255",
    "256",
    "65535",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "-4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "NULL",
    "'x'",
    "''",
    "'12'",
    "X''",
    "X'00'",
    "X'FF'",
    "X'80'",
    "X'8080808080808080808001'",
    "X'FFFFFFFFFFFFFFFFFF01'",
    "X'FFFFFFFFFFFFFFFFFFFF'",
    "1.5",
    "-0.0",
    "1e300",
    "randomblob(64)",
    "zeroblob(100000)",
];

/// One SQL statement against a segment's database (failures are ignored: a constraint may
/// refuse it).
fn sql_op() -> BoxedStrategy<String> {
    let table = (0..TABLES.len()).prop_flat_map(|t| (Just(t), 0..TABLES[t].1.len()));
    let value = prop_oneof![
        4 => select(SQL_VALUES).prop_map(str::to_owned),
        2 => any::<i64>().prop_map(|v| v.to_string()),
        2 => prop::collection::vec(any::<u8>(), 0..24)
            .prop_map(|b| format!("X'{}'", b.iter().map(|x| format!("{x:02X}")).collect::<String>())),
        2 => select(&["+ 1", "- 1", "* 2", "* -1", "|| X'00'", "|| X'80'", "|| X'01'"][..])
            .prop_map(|op| format!("{{col}} {op}")),
        1 => (1u32..40).prop_map(|n| format!("substr({{col}}, 1, {n})")),
        1 => (1u32..40).prop_map(|n| format!("substr({{col}}, {n})")),
    ];
    // Which rows: one row by position, or all of them.
    let rows = prop_oneof![3 => (0u8..12).prop_map(Some), 1 => Just(None)];
    prop_oneof![
        8 => (table.clone(), value, rows.clone()).prop_map(|((t, c), v, row)| {
            let (t, c) = (TABLES[t].0, TABLES[t].1[c]);
            let v = v.replace("{col}", c);
            format!("UPDATE {t} SET {c} = {v}{}", row_filter(t, row))
        }),
        2 => ((0..TABLES.len()), rows).prop_map(|(t, row)| {
            let t = TABLES[t].0;
            format!("DELETE FROM {t}{}", row_filter(t, row))
        }),
        1 => Just("INSERT INTO blocks (count, base_ts_ns, min_ts_ns, max_ts_ns, ts, proc, path, \
                raw_path, shape, ret) SELECT count, base_ts_ns, min_ts_ns, max_ts_ns, ts, proc, path, \
                raw_path, shape, ret FROM blocks ORDER BY id LIMIT 1".to_owned()),
        1 => Just("INSERT INTO processes SELECT id + 1000, pid, start_ns, exec_ns, id + 1000, ppid, \
                source, comm, exe, argv, args_truncated, uid, gid, euid, egid, auid, sessionid, \
                cgroup_id, cgroup, container_id, pidns, mntns, tty, exit_code, exit_ns FROM processes \
                ORDER BY id LIMIT 1".to_owned()),
        1 => Just("UPDATE processes SET parent = id".to_owned()),
        1 => Just("UPDATE processes SET parent = 0".to_owned()),
        1 => Just("UPDATE procs SET process = 0".to_owned()),
        1 => Just("UPDATE blocks SET count = count + 1".to_owned()),
        1 => Just("UPDATE blocks SET count = count - 1".to_owned()),
        1 => Just("UPDATE strings SET id = id + 1 WHERE id = (SELECT max(id) FROM strings)".to_owned()),
        1 => (select(&["user_version", "application_id"][..]), select(SQL_VALUES))
            .prop_map(|(p, v)| format!("PRAGMA {p} = {v}")),
        1 => (0..TABLES.len()).prop_map(|t| format!("DROP TABLE {}", TABLES[t].0)),
        1 => table_col().prop_map(|(t, c)| format!("ALTER TABLE {t} DROP COLUMN {c}")),
    ]
    .boxed()
}

fn table_col() -> impl Strategy<Value = (&'static str, &'static str)> {
    (0..TABLES.len())
        .prop_flat_map(|t| (0..TABLES[t].1.len()).prop_map(move |c| (TABLES[t].0, TABLES[t].1[c])))
}

fn row_filter(table: &str, row: Option<u8>) -> String {
    match (table, row) {
        (_, None) => String::new(),
        // WITHOUT ROWID
        ("meta", Some(k)) => {
            format!(" WHERE key = (SELECT key FROM meta ORDER BY key LIMIT 1 OFFSET {k})")
        }
        (t, Some(k)) => {
            format!(" WHERE rowid = (SELECT rowid FROM {t} ORDER BY rowid LIMIT 1 OFFSET {k})")
        }
    }
}

/// Keys of the metadata frame (`SegmentMeta`), and a few it does not have.
const META_KEYS: &[&str] = &[
    "seq",
    "schema_version",
    "tool_version",
    "host",
    "kernel",
    "boot_id",
    "first_ts_ns",
    "last_ts_ns",
    "events",
    "lost",
    "processes",
    "db_bytes",
    "clock_anchor_ns",
    "db_sha256",
    "prev",
    "link",
    "sig",
    "unknown",
    "",
];

#[derive(Clone, Debug)]
enum MetaOp {
    Set(&'static str, Value),
    Remove(&'static str),
    /// The JSON text itself, byte-mutated.
    Text(Vec<ByteOp>),
    /// The frame's declared length.
    Len(u32),
    /// The tag (`OFSEG1\n`).
    Tag(Vec<u8>),
}

fn meta_value() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        select(
            &[
                0i64,
                1,
                -1,
                2,
                1 << 30,
                (1 << 30) + 1,
                64 << 20,
                (64 << 20) + 1,
                i64::MAX,
                i64::MIN
            ][..]
        )
        .prop_map(Value::from),
        Just(Value::from(1e300)),
        Just(Value::from(-0.5)),
        Just(Value::from(u64::MAX)),
        ".{0,12}".prop_map(Value::from),
        "[0-9a-f]{64}".prop_map(Value::from),
        Just(Value::from("x".repeat(100_000))),
        Just(serde_json::json!([1, [2, {"a": null}]])),
        Just(serde_json::json!({"seq": 1})),
        any::<bool>().prop_map(Value::from),
    ]
    .boxed()
}

fn meta_op() -> BoxedStrategy<MetaOp> {
    prop_oneof![
        6 => (select(META_KEYS), meta_value()).prop_map(|(k, v)| MetaOp::Set(k, v)),
        2 => select(META_KEYS).prop_map(MetaOp::Remove),
        2 => prop::collection::vec(byte_op(), 1..4).prop_map(MetaOp::Text),
        1 => prop_oneof![
            Just(0u32), Just(6), Just(7), Just(8), Just(1 << 20), Just((1 << 20) + 1), Just(u32::MAX),
            any::<u32>(), 0u32..600,
        ].prop_map(MetaOp::Len),
        1 => prop::collection::vec(any::<u8>(), 0..9).prop_map(MetaOp::Tag),
    ]
    .boxed()
}

#[derive(Clone, Debug)]
struct SegCase {
    seed: Index,
    /// SQL statements run against the database.
    sql: Vec<String>,
    /// After the SQL: make the `meta` table and the frame agree with the blocks again, so the
    /// damage reaches the decoders instead of the consistency check.
    fix_meta: bool,
    /// Byte mutations of the decompressed database.
    db: Vec<ByteOp>,
    /// Give the frame the size and SHA-256 of the (mutated) database.
    fix_hash: bool,
    meta: Vec<MetaOp>,
    /// After the metadata operations: recompute the link of a chained frame (a forger would).
    forge_link: bool,
    /// Byte mutations of the sealed file itself.
    file: Vec<ByteOp>,
}

impl SegCase {
    fn is_identity(&self) -> bool {
        self.sql.is_empty() && self.db.is_empty() && self.meta.is_empty() && self.file.is_empty()
    }
}

fn seg_case() -> BoxedStrategy<SegCase> {
    (
        any::<Index>(),
        prop_oneof![2 => Just(vec![]), 3 => prop::collection::vec(sql_op(), 1..4)],
        prop::bool::weighted(0.8),
        prop_oneof![4 => Just(vec![]), 1 => prop::collection::vec(byte_op(), 1..4)],
        prop::bool::weighted(0.9),
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(meta_op(), 1..3)],
        any::<bool>(),
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(byte_op(), 1..4)],
    )
        .prop_map(
            |(seed, sql, fix_meta, db, fix_hash, meta, forge_link, file)| SegCase {
                seed,
                sql,
                fix_meta,
                db,
                fix_hash,
                meta,
                forge_link,
                file,
            },
        )
        .boxed()
}

/// Runs SQL against a database image; returns the new image and its `meta` table.
fn run_sql(db: &[u8], sql: &[String], fix_meta: bool) -> (Vec<u8>, HashMap<String, String>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("segment.db");
    let mut image = db.to_vec();
    // A sealed image may say WAL mode (header bytes 18, 19); the reader treats it as rollback.
    if image.len() > 19 {
        image[18] = 1;
        image[19] = 1;
    }
    std::fs::write(&path, &image).expect("write database copy");
    let mut table = HashMap::new();
    if let Ok(conn) = rusqlite::Connection::open(&path) {
        // The bundled SQLite enforces foreign keys by default; damage does not.
        let _ = conn.execute_batch("PRAGMA foreign_keys = OFF");
        for s in sql {
            let _ = conn.execute_batch(s);
        }
        if fix_meta {
            let _ = conn.execute_batch(
                "UPDATE meta SET value = (SELECT coalesce(sum(count), 0) FROM blocks) WHERE key = 'events';
                 UPDATE meta SET value = (SELECT coalesce(min(min_ts_ns), '') FROM blocks) WHERE key = 'first_ts_ns';
                 UPDATE meta SET value = (SELECT coalesce(max(max_ts_ns), '') FROM blocks) WHERE key = 'last_ts_ns';",
            );
            if let Ok(mut st) = conn.prepare("SELECT key, CAST(value AS TEXT) FROM meta") {
                if let Ok(rows) = st.query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
                }) {
                    table = rows
                        .flatten()
                        .map(|(k, v)| (k, v.unwrap_or_default()))
                        .collect();
                }
            }
        }
    }
    (
        std::fs::read(&path).expect("read database copy back"),
        table,
    )
}

/// What the reader would rebuild from a `meta` table, written into the frame (as
/// `read_meta_table` parses it).
fn frame_from_table(meta: &mut Map<String, Value>, table: &HashMap<String, String>) {
    let num = |k: &str| table.get(k).and_then(|v| v.parse::<i64>().ok());
    for k in ["tool_version", "host", "kernel", "boot_id"] {
        meta.insert(k.into(), table.get(k).cloned().unwrap_or_default().into());
    }
    for k in ["seq", "events", "lost", "processes"] {
        meta.insert(k.into(), ((num(k).unwrap_or(0)) as u64).into());
    }
    for k in ["schema_version", "clock_anchor_ns"] {
        meta.insert(k.into(), num(k).unwrap_or(0).into());
    }
    for k in ["first_ts_ns", "last_ts_ns"] {
        meta.insert(k.into(), num(k).map_or(Value::Null, Value::from));
    }
}

fn build_segment(case: &SegCase) -> Vec<u8> {
    // Three cases in four start from a compact seed (the second half).
    let seeds = segment_seeds();
    let half = seeds.len() / 2;
    let i = case.seed.index(seeds.len() * 2);
    let seed = &seeds[if i < half { i } else { half + i % half }];
    let mut meta = seed.meta.clone();
    let mut db = seed.db.clone();
    if !case.sql.is_empty() {
        let (image, table) = run_sql(&db, &case.sql, case.fix_meta);
        db = image;
        if case.fix_meta && !table.is_empty() {
            frame_from_table(&mut meta, &table);
            relink(&mut meta);
        }
    }
    apply_bytes(&mut db, &case.db);
    if case.fix_hash && (!case.sql.is_empty() || !case.db.is_empty()) {
        set_db_hash(&mut meta, &db);
    }
    let mut len_override = None;
    let mut tag = META_TAG.to_vec();
    let mut text_ops = Vec::new();
    for op in &case.meta {
        match op {
            MetaOp::Set(k, v) => {
                meta.insert((*k).into(), v.clone());
            }
            MetaOp::Remove(k) => {
                meta.remove(*k);
            }
            MetaOp::Text(ops) => text_ops.extend(ops.iter().cloned()),
            MetaOp::Len(n) => len_override = Some(*n),
            MetaOp::Tag(t) => tag = t.clone(),
        }
    }
    if case.forge_link {
        relink(&mut meta);
    }
    let mut json = serde_json::to_vec(&meta).expect("metadata serializes");
    apply_bytes(&mut json, &text_ops);
    let mut file = seal(&json, &db);
    if tag != META_TAG {
        // Swap the tag in place and fix the length, so only the tag is wrong.
        let rest = file.split_off(8 + META_TAG.len());
        file.truncate(8);
        file.extend_from_slice(&tag);
        file.extend_from_slice(&rest);
        let len = (tag.len() + json.len()) as u32;
        file[4..8].copy_from_slice(&len.to_le_bytes());
    }
    if let Some(n) = len_override {
        file[4..8].copy_from_slice(&n.to_le_bytes());
    }
    apply_bytes(&mut file, &case.file);
    file
}

/// What a store with one (mutated) sealed segment gives a reader.
#[derive(Debug, Default)]
struct ReadOutcome {
    listed: usize,
    loaded: usize,
    events: u64,
    errors: usize,
    scanned_segments: u64,
}

/// Everything a reader does with a store: list, scan (exporting and evaluating every event),
/// load each segment with its processes, losses and users, and verify the chain.
fn read_everything(dir: &Path) -> ReadOutcome {
    let mut out = ReadOutcome::default();
    let reader = match Reader::open(dir) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            out.errors += 1;
            return out;
        }
    };
    out.listed = reader.segments().len();
    let rules = eval_rules();
    let mut engine = rules.engine();
    let stats = reader.scan(&TimeRange::default(), |e| {
        out.events += 1;
        let line = e.to_json_line();
        assert!(
            serde_json::from_str::<Value>(&line).is_ok(),
            "an event read from a segment exports as invalid JSON: {line}"
        );
        evaluate(&mut engine, e);
        ControlFlow::Continue(())
    });
    for e in &stats.errors {
        let _ = e.to_string();
    }
    let _ = stats.lost();
    out.errors += stats.errors.len();
    out.scanned_segments = stats.segments;
    let range = TimeRange {
        since: Some(T0),
        until: Some(T0 + 10_000),
    };
    let _ = reader.scan(&range, |_| ControlFlow::Break(()));
    for info in reader.segments() {
        let _ = info.compression_ratio();
        if let Ok(seg) = reader.load(info) {
            out.loaded += 1;
            if let Ok(ps) = seg.processes() {
                for p in ps {
                    let _ = p.process.ancestors().count();
                    let _ = p.process.cmdline();
                }
            }
            let _ = seg.losses();
            let _ = seg.users();
            let _ = seg.for_each_event_in(&range, |_| ControlFlow::Continue(()));
        }
    }
    if let Ok(report) = open_forensics::store::verify::verify(dir, None, Some(b"key")) {
        let _ = report.ok();
    }
    out
}

fn check_segment(case: SegCase) -> TestCaseResult {
    let file = build_segment(&case);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    std::fs::create_dir(&dir).expect("store dir");
    std::fs::write(dir.join("0000000001.seg.zst"), &file).expect("write segment");
    let d = dir.clone();
    let out = within("segment reader", move || read_everything(&d));
    if case.is_identity() && (out.errors > 0 || out.loaded != 1) {
        return Err(fail(format!("an untouched segment does not read: {out:?}")));
    }
    if out.events > 0 {
        SEGMENTS_READ.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Found by `segment_reader_survives_damaged_segments`, fixed in ed3ceae: a metadata frame edited
/// to say `"first_ts_ns": null` (events, database and hash untouched, and no `link` to betray the
/// edit: segments sealed before the chain, like the fixtures, or the key deleted too) made `scan`
/// skip the segment without an error, so `export`, `replay` and `query` saw nothing and exited 0.
#[test]
fn edited_time_range_in_frame_is_reported_not_skipped() {
    let seeds = segment_seeds();
    let legacy = &seeds[0];
    let chained = seeds
        .iter()
        .find(|s| s.name.starts_with("import:") && s.meta.contains_key("link"))
        .expect("the imported segment is chained");
    let mut hidden = Vec::new();
    for (seed, unlink) in [(legacy, false), (chained, true)] {
        let mut meta = seed.meta.clone();
        assert!(
            meta["events"].as_u64().unwrap_or(0) > 0,
            "{seed:?} has events"
        );
        meta.insert("first_ts_ns".into(), Value::Null);
        if unlink {
            meta.remove("link");
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("store");
        std::fs::create_dir(&dir).expect("store dir");
        let json = serde_json::to_vec(&meta).expect("metadata serializes");
        std::fs::write(dir.join("0000000001.seg.zst"), seal(&json, &seed.db)).expect("write");
        let stats = Reader::open(&dir)
            .expect("open")
            .scan(&TimeRange::default(), |_| ControlFlow::Continue(()));
        if stats.segments == 0 && stats.errors.is_empty() {
            hidden.push(format!("{seed:?} (link removed: {unlink})"));
        }
    }
    assert!(
        hidden.is_empty(),
        "neither read nor reported by scan: {hidden:?}"
    );
}

/// Found by `segment_reader_survives_damaged_segments`, fixed in ed3ceae: a `processes` row whose
/// `parent` is 0 (in a segment with a valid hash) panicked a debug build with "attempt to subtract
/// with overflow" in src/store/segment/tables.rs (`p as usize - 1`), in every scan of the segment:
/// `export`, `replay`, `query` exited 101.
#[test]
fn process_with_parent_zero_does_not_panic() {
    let seed = segment_seeds()
        .iter()
        .find(|s| s.name.contains("segments/lineage/") && !s.name.contains("KiB"))
        .expect("the lineage fixture");
    let tmp = tempfile::tempdir().expect("tempdir");
    let db_path = tmp.path().join("segment.db");
    let mut image = seed.db.clone();
    image[18] = 1;
    image[19] = 1;
    std::fs::write(&db_path, &image).expect("write");
    let conn = rusqlite::Connection::open(&db_path).expect("open");
    conn.execute_batch("PRAGMA foreign_keys = OFF; UPDATE processes SET parent = 0 WHERE id = 2")
        .expect("update");
    drop(conn);
    let db = std::fs::read(&db_path).expect("read");
    let mut meta = seed.meta.clone();
    set_db_hash(&mut meta, &db);
    let dir = tmp.path().join("store");
    std::fs::create_dir(&dir).expect("store dir");
    let json = serde_json::to_vec(&meta).expect("metadata serializes");
    std::fs::write(dir.join("0000000001.seg.zst"), seal(&json, &db)).expect("write segment");
    let mut n = 0;
    let stats = Reader::open(&dir)
        .expect("open")
        .scan(&TimeRange::default(), |_| {
            n += 1;
            ControlFlow::Continue(())
        });
    assert!(n > 0 || !stats.errors.is_empty(), "{stats:?}");
}

const SEGMENT_SUITE_CASES: u32 = 120;

#[test]
fn segment_reader_survives_damaged_segments() {
    fuzz(
        "segment reader",
        SEGMENT_SUITE_CASES,
        &SEGMENTS_READ,
        seg_case(),
        check_segment,
    );
}

#[test]
#[ignore = "long fuzz run: FUZZ_CASES=N cargo test --release --test it fuzz:: -- --ignored"]
fn long_segment_reader() {
    fuzz(
        "segment reader",
        long_cases(),
        &SEGMENTS_READ,
        seg_case(),
        check_segment,
    );
}
