//! Fleet: `export --format parquet` + `rules sql`, run on real engines (DuckDB, and Apache Spark in
//! local mode) by `tests/fleet/run_sql.py`, return exactly `replay`'s alerts — rule by rule, event by
//! event, with the same `matched` — over every fixture scenario and over a generated multi-host
//! store (several stores with different host names exported into one directory).
//!
//! The engines are Python packages (`duckdb`, `pyspark` with a Java runtime) that the README's test
//! command installs. The generated stores get their host names from UTS namespaces (`unshare
//! --uts`: root, or a user namespace). Where an engine or namespaces are missing the test says
//! `SKIPPED`; with `CI=true` (or `OPEN_FORENSICS_REQUIRE_LIVE=1`) that is a failure instead.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Map, Value};

use crate::helpers::{bin, fixtures_dir, scenarios};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Hosts of the generated fleet, and how many events each recorded.
const FLEET: &[(&str, usize)] = &[("web-1", 4000), ("web-2", 3000), ("db-1", 2500)];

/// The keys compared: everything that identifies the alert's event, the rule, and `matched`.
const KEYS: &[&str] = &[
    "host",
    "rule",
    "ts_ns",
    "pid",
    "tid",
    "ppid",
    "uid",
    "gid",
    "comm",
    "comm_b64",
    "path",
    "path_b64",
    "raw_path",
    "raw_path_b64",
    "syscall",
    "flags",
    "ret",
    "matched",
    "severity",
];

fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn of(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args).stdin(std::process::Stdio::null());
    c
}

/// Whether `engine` can run here; when not, SKIPPED (or, where required, a panic).
pub(crate) fn engine_available(engine: &str, test: &str) -> bool {
    let out = Command::new("python3")
        .arg(format!("{ROOT}/tests/fleet/run_sql.py"))
        .args([engine, "--check"])
        .output();
    let reason = match out {
        Ok(o) if o.status.success() => return true,
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
        Err(e) => format!("python3: {e}"),
    };
    crate::helpers::skip(test, &format!("{engine}: {reason}"));
    false
}

/// A set of stores exported into one Parquet directory.
struct Dataset {
    name: String,
    parquet: PathBuf,
    /// (store, host) pairs whose alerts the queries must return.
    stores: Vec<(PathBuf, String)>,
}

fn host_of(store: &Path) -> String {
    let r = open_forensics::store::Reader::open(store).expect("open store");
    r.segments()[0].meta.host.clone()
}

/// `export --format parquet --out OUT` of one store (files of several stores share OUT).
fn export_parquet(store: &Path, out: &Path) {
    run_ok(
        of(&["--store", store.to_str().expect("utf-8"), "export"]).args([
            "--format",
            "parquet",
            "--out",
            out.to_str().expect("utf-8"),
        ]),
    );
}

/// Every fixture scenario, exported into one directory (the queries see them all at once).
fn fixtures_dataset(tmp: &Path) -> Dataset {
    let parquet = tmp.join("fixtures-parquet");
    let mut stores = Vec::new();
    for name in scenarios() {
        let store = fixtures_dir().join("segments").join(name);
        export_parquet(&store, &parquet);
        let host = host_of(&store);
        stores.push((store, host));
    }
    assert_eq!(stores.len(), 9, "every fixture scenario");
    Dataset {
        name: "fixtures".into(),
        parquet,
        stores,
    }
}

/// `unshare` with a UTS namespace (as root, or in a user namespace of its own).
fn unshare_uts() -> Command {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut c = Command::new("unshare");
    if !root {
        c.args(["--user", "--map-root-user"]);
    }
    c.arg("--uts");
    c
}

/// Whether stores can be given other host names here (see `import_as_host`).
fn host_names_available(test: &str) -> bool {
    let ok = unshare_uts()
        .args(["sh", "-c", "hostname fleet-probe"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    crate::helpers::skip(
        test,
        "cannot create a UTS namespace (unshare --uts: not root, no user namespaces)",
    );
    false
}

/// Imports `jsonl` into a new store whose segments say `host` (a UTS namespace of its own:
/// the store takes the host name from the kernel).
fn import_as_host(host: &str, store: &Path, jsonl: &Path) {
    let mut c = unshare_uts();
    c.args([
        "sh",
        "-c",
        "hostname \"$1\" && exec \"$2\" --store \"$3\" import \"$4\"",
    ])
    .arg("sh")
    .arg(host)
    .arg(bin())
    .arg(store)
    .arg(jsonl);
    run_ok(&mut c);
    assert_eq!(host_of(store), host);
}

/// Several hosts' stores (generated by `tests/fleet/gen.py`), exported into one directory, then
/// copied as they would be uploaded to a bucket (`BUCKET/open-forensics/events/host=…/date=…/`).
fn fleet_dataset(tmp: &Path) -> Dataset {
    let parquet = tmp.join("fleet-parquet");
    let mut stores = Vec::new();
    for (host, n) in FLEET {
        let jsonl = tmp.join(format!("{host}.jsonl"));
        let lines = run_ok(
            Command::new("python3")
                .arg(format!("{ROOT}/tests/fleet/gen.py"))
                .args(["--host", host, "--events", &n.to_string()]),
        );
        std::fs::write(&jsonl, lines).expect("write jsonl");
        let store = tmp.join(format!("store-{host}"));
        import_as_host(host, &store, &jsonl);
        export_parquet(&store, &parquet);
        stores.push((store, host.to_string()));
    }
    let bucket = tmp.join("bucket").join("open-forensics");
    copy_tree(&parquet, &bucket);
    Dataset {
        name: "fleet".into(),
        parquet: bucket,
        stores,
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

fn rule_sets() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(format!("{ROOT}/fixtures/rules"))
        .expect("fixtures/rules")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v.push(PathBuf::from(format!("{ROOT}/tests/fleet/semantics.yaml")));
    v
}

/// One alert as the comparison sees it: the `KEYS`, missing `_b64` keys as null.
fn key_of(o: &Map<String, Value>, host: Option<&str>) -> String {
    let mut k = Map::new();
    for &name in KEYS {
        let v = match name {
            "host" => match host {
                Some(h) => json!(h),
                None => o.get("host").cloned().unwrap_or(Value::Null),
            },
            "ts_ns" => match o.get("ts_ns") {
                Some(v) => v.clone(),
                None => json!(open_forensics::timespec::parse_ts(
                    o["ts"].as_str().expect("ts is a string")
                )
                .expect("ts parses")),
            },
            n => o.get(n).cloned().unwrap_or(Value::Null),
        };
        k.insert(name.to_owned(), v);
    }
    Value::Object(k).to_string()
}

fn lines(text: &[u8]) -> Vec<Map<String, Value>> {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| match serde_json::from_str(l) {
            Ok(Value::Object(o)) => o,
            other => panic!("not a JSON object: {l}: {other:?}"),
        })
        .collect()
}

fn by_rule(keys: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for k in keys {
        let v: Value = serde_json::from_str(k).expect("key json");
        *m.entry(v["rule"].as_str().unwrap_or("").to_owned())
            .or_insert(0) += 1;
    }
    m
}

/// Compiles every rule set for `engine`, runs every dataset × rule set in one engine session,
/// and compares each answer with `replay` over the dataset's stores.
fn check_engine(engine: &str, test: &str) {
    if !engine_available(engine, test) || !host_names_available(test) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let datasets = [fixtures_dataset(tmp.path()), fleet_dataset(tmp.path())];
    let mut jobs = Vec::new();
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut ordered: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rules in rule_sets() {
        let rules_s = rules.to_str().expect("utf-8");
        let stem = rules
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let sql = run_ok(&mut of(&["rules", "sql", rules_s, "--dialect", engine]));
        let sql_file = tmp.path().join(format!("{stem}.{engine}.sql"));
        std::fs::write(&sql_file, sql).expect("write sql");
        for d in &datasets {
            let name = format!("{}/{stem}", d.name);
            let mut want = Vec::new();
            for (store, host) in &d.stores {
                let out = run_ok(&mut of(&[
                    "--store",
                    store.to_str().expect("utf-8"),
                    "replay",
                    "--rules",
                    rules_s,
                ]));
                want.extend(lines(&out).iter().map(|o| key_of(o, Some(host))));
            }
            // `replay`'s order per host: by time (stable: one event's rules stay in rule order).
            let ts = |k: &String| {
                let v: Value = serde_json::from_str(k).expect("key json");
                (v["host"].to_string(), v["ts_ns"].as_i64().expect("ts_ns"))
            };
            want.sort_by_key(ts);
            ordered.insert(name.clone(), want.clone());
            want.sort();
            expected.insert(name.clone(), want);
            jobs.push(json!({
                "name": name,
                "parquet": d.parquet,
                "sql": sql_file,
                "out": tmp.path().join(format!("{}-{stem}.{engine}.jsonl", d.name)),
            }));
        }
    }
    let manifest = tmp.path().join(format!("{engine}.json"));
    std::fs::write(&manifest, json!({ "jobs": jobs }).to_string()).expect("manifest");
    let report = run_ok(
        Command::new("python3")
            .arg(format!("{ROOT}/tests/fleet/run_sql.py"))
            .arg(engine)
            .arg(&manifest),
    );
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "{test}: {}",
        String::from_utf8_lossy(&report).trim()
    );
    let mut nonempty = BTreeSet::new();
    let mut in_order = 0;
    for job in &jobs {
        let name = job["name"].as_str().expect("name");
        let out = std::fs::read(job["out"].as_str().expect("out")).expect("engine output");
        let mut got: Vec<String> = lines(&out).iter().map(|o| key_of(o, None)).collect();
        if got == ordered[name] {
            in_order += 1;
        }
        got.sort();
        let want = &expected[name];
        if got != *want {
            let (g, w): (BTreeSet<&String>, BTreeSet<&String>) =
                (got.iter().collect(), want.iter().collect());
            let missing: Vec<&&String> = w.difference(&g).take(5).collect();
            let extra: Vec<&&String> = g.difference(&w).take(5).collect();
            panic!(
                "{engine} {name}: {} alerts, replay {}\nper rule (engine): {:?}\nper rule (replay): {:?}\nmissing (first 5): {missing:#?}\nextra (first 5): {extra:#?}",
                got.len(),
                want.len(),
                by_rule(&got),
                by_rule(want)
            );
        }
        if !want.is_empty() {
            nonempty.insert(name.to_owned());
        }
    }
    // Rows come in `replay`'s order (host, time, rule order).
    assert_eq!(
        in_order,
        jobs.len(),
        "some answers are not in replay's order"
    );
    // The comparison means something only where there are alerts: every rule set fires on the
    // generated fleet, and the fixtures' attack scenarios fire the fixture rule sets.
    assert!(
        nonempty.len() >= jobs.len() - 1,
        "too few non-empty answers: {nonempty:?}"
    );
    // Several hosts in one answer.
    let fleet_hosts: BTreeSet<String> = expected["fleet/semantics"]
        .iter()
        .map(|k| serde_json::from_str::<Value>(k).expect("json")["host"].to_string())
        .collect();
    assert_eq!(fleet_hosts.len(), FLEET.len(), "{fleet_hosts:?}");
}

#[test]
fn duckdb_runs_the_compiled_rules_and_returns_replays_alerts() {
    check_engine(
        "duckdb",
        "fleet::duckdb_runs_the_compiled_rules_and_returns_replays_alerts",
    );
}

#[test]
fn spark_runs_the_compiled_rules_and_returns_replays_alerts() {
    check_engine(
        "spark",
        "fleet::spark_runs_the_compiled_rules_and_returns_replays_alerts",
    );
}

/// Every Parquet file under `dir`, sorted, as paths relative to `dir`.
pub(crate) fn parquet_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(
                    p.strip_prefix(root)
                        .expect("under root")
                        .display()
                        .to_string(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub(crate) fn read_parquet(path: &Path) -> (Vec<arrow_array::RecordBatch>, Vec<(String, String)>) {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).expect("open"))
        .expect("a Parquet file");
    let kv = b
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let batches = b
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect();
    (batches, kv)
}

/// One segment that runs past midnight gives one events file per date; bytes that are not UTF-8
/// survive in `_b64`; the schema version is in every file; exporting again writes nothing and
/// `--overwrite` rewrites.
#[test]
fn parquet_export_is_partitioned_typed_versioned_and_idempotent() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampNanosecondType};
    use open_forensics::bytes::Str;

    let store = crate::helpers::TempStore::new();
    // 2025-11-24T23:59:59.9Z and the next day.
    let before_midnight = 1_764_028_799_900_000_000;
    let mut a = crate::helpers::event(0, "/etc/shadow");
    a.ts_ns = before_midnight;
    let mut b = crate::helpers::event(1, "/tmp/x");
    b.ts_ns = before_midnight + 200_000_000;
    b.path = Str::from(&b"/tmp/\xff\xfe"[..]);
    b.ret = -13;
    store.import(&[a, b]);
    let out = store.path("pq");
    let out_s = out.to_str().expect("utf-8");
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let first = store.run(&["export", "--format", "parquet", "--out", out_s]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("4 files written"),
        "{}",
        stderr(&first)
    );
    let files = parquet_files(&out);
    let host = open_forensics::output::parquet::hive_escape(&host_of(&store.dir));
    let events: Vec<&String> = files.iter().filter(|f| f.starts_with("events/")).collect();
    assert_eq!(events.len(), 2, "{files:?}");
    assert!(events[0].starts_with(&format!("events/host={host}/date=2025-11-24/")));
    assert!(events[1].starts_with(&format!("events/host={host}/date=2025-11-25/")));
    assert!(files.iter().any(|f| f.starts_with("losses/")));
    assert!(files.iter().any(|f| f.starts_with("processes/")));
    assert!(!files.iter().any(|f| f.contains(".tmp")), "{files:?}");

    let (batches, kv) = read_parquet(&out.join(events[1]));
    assert!(
        kv.contains(&(
            "open_forensics.schema_version".into(),
            open_forensics::columns::PARQUET_SCHEMA_VERSION.to_string()
        )),
        "{kv:?}"
    );
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), 1);
    let col = |n: &str| {
        batch
            .column_by_name(n)
            .unwrap_or_else(|| panic!("column {n}"))
    };
    let ts = col("ts").as_primitive::<TimestampNanosecondType>();
    assert_eq!(ts.value(0), before_midnight + 200_000_000);
    assert_eq!(
        col("ts").data_type(),
        &arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, Some("UTC".into()))
    );
    assert_eq!(col("ret").as_primitive::<Int64Type>().value(0), -13);
    assert_eq!(col("seq").as_primitive::<Int64Type>().value(0), 1);
    assert_eq!(
        col("path").as_string::<i32>().value(0),
        "/tmp/\u{FFFD}\u{FFFD}"
    );
    assert_eq!(col("path_b64").as_string::<i32>().value(0), "L3RtcC///g==");
    assert!(col("raw_path_b64").is_null(0));
    assert!(col("exe").is_null(0), "no lineage, no exe");

    // Again: nothing rewritten.
    let mtimes = |files: &[String]| -> Vec<std::time::SystemTime> {
        files
            .iter()
            .map(|f| {
                std::fs::metadata(out.join(f))
                    .and_then(|m| m.modified())
                    .expect("mtime")
            })
            .collect()
    };
    let before = mtimes(&files);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = store.run(&["export", "--format", "parquet", "--out", out_s]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("0 files written"),
        "{}",
        stderr(&again)
    );
    assert!(
        stderr(&again).contains("4 already there"),
        "{}",
        stderr(&again)
    );
    assert_eq!(mtimes(&files), before);
    assert_eq!(parquet_files(&out), files);
    let over = store.run(&[
        "export",
        "--format",
        "parquet",
        "--out",
        out_s,
        "--overwrite",
    ]);
    assert!(
        stderr(&over).contains("4 files written"),
        "{}",
        stderr(&over)
    );
    assert_eq!(parquet_files(&out), files);

    // Bad combinations are input errors.
    let no_out = store.run(&["export", "--format", "parquet"]);
    assert_eq!(no_out.status.code(), Some(2));
    let stray = store.run(&["export", "--out", out_s]);
    assert_eq!(stray.status.code(), Some(2));
}

/// `rules sql` loads rules exactly as `replay` does: a bad file is exit 2 with file:line:column,
/// and the query names every enabled rule.
#[test]
fn rules_sql_uses_the_rule_loader() {
    let bad = format!("{ROOT}/fixtures/rules/bad/unknown_key.yaml");
    let out = of(&["rules", "sql", &bad, "--dialect", "duckdb"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown_key.yaml:"), "{err}");
    let full = format!("{ROOT}/fixtures/rules/full.yaml");
    for dialect in ["duckdb", "spark"] {
        let sql = String::from_utf8(run_ok(&mut of(&[
            "rules",
            "sql",
            &full,
            "--dialect",
            dialect,
        ])))
        .expect("utf-8");
        for rule in [
            "credentials_read",
            "credentials_denied",
            "ssh_key_access",
            "sudoers_write",
            "tmp_exec_dir",
        ] {
            assert!(
                sql.contains(&format!("'rule', '{rule}'"))
                    || sql.contains(&format!("'rule': '{rule}'")),
                "{rule} in {sql}"
            );
        }
        assert!(!sql.contains("disabled_example"), "{sql}");
    }
}

/// A throttled rule has no faithful single-query translation: `rules sql` names it and why, exit
/// 2, rather than compile it without its throttle (which would return alerts replay suppresses).
#[test]
fn rules_sql_refuses_a_throttled_rule_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("throttled.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: plain\n    description: d\n    severity: high\n    path: /etc/shadow\n  - name: noisy\n    description: d\n    severity: high\n    path: /etc/passwd\n    throttle: {key: [pid], window: 1m, max: 3}\n",
    )
    .expect("write");
    for dialect in ["duckdb", "spark"] {
        let out = of(&[
            "rules",
            "sql",
            rules.to_str().expect("utf-8"),
            "--dialect",
            dialect,
        ])
        .output()
        .expect("run");
        assert_eq!(out.status.code(), Some(2), "{dialect}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("noisy") && err.contains("throttle"), "{err}");
        assert!(!err.contains("plain"), "{err}");
        assert!(out.stdout.is_empty());
    }
}
