//! Query speed (issue #29): the questions a responder asks of a large store, timed in one run on
//! one generated store — each against a full scan of the same store in the same run, and against
//! DuckDB over the same store's Parquet export (`export --format parquet`).
//!
//! The store: `OF_BENCH_EVENTS` (default 10M) events of the shared realistic workload (Zipf
//! paths and processes, with lineage) over the week before now. The full scan is the statement
//! that reads and hands SQLite every event (`WHERE path || '' = …`: an expression, which nothing
//! pushes). DuckDB's time is the query, its answer held in a temporary table, inside one session (its start and the Python
//! import excluded), over `events/**/*.parquet`. Peak RSS by `/usr/bin/time`.
//!
//! `OF_BASELINE_BIN` adds a line per question: another build (e.g. main before the pushdown) on
//! the same store — which it must be able to read: `OF_BENCH_STORE` runs over an existing store
//! instead of generating one (e.g. one of an older schema, `export | import -` by the older build).
//! `OF_BENCH_DIR` keeps the store and its export between runs (delete it afterwards).
//! `OF_BENCH_ONLY` runs only the questions whose name contains it (e.g. `top_paths`);
//! `OF_BENCH_RUNS` (default 1) runs each that many times, each run ours then DuckDB's.
//!
//! `cargo bench --bench query_speed`

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::runs::{env_usize, generate, run, Run, NEEDLE_PATH};
use open_forensics::timespec::format_ts;

/// Runs `sql` over the Parquet export in DuckDB: (seconds to compute the answer, rows).
fn duckdb(parquet: &Path, sql: &str) -> Option<(f64, u64)> {
    const SCRIPT: &str = r#"
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute("SET enable_progress_bar = false")
glob = sys.argv[1].rstrip("/") + "/events/**/*.parquet"
con.execute("CREATE VIEW events AS SELECT * FROM read_parquet('" + glob.replace("'", "''")
            + "', hive_partitioning = true, union_by_name = true)")
t = time.monotonic()
# The whole answer, computed and held in DuckDB (Python's conversion of its rows is not timed).
con.execute("CREATE TEMP TABLE answer AS " + sys.argv[2])
rows = con.execute("SELECT count(*) FROM answer").fetchone()[0]
print(time.monotonic() - t, rows)
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(parquet)
        .arg(sql)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("duckdb: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.lines().last()?.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The first field of the first JSON line `bin` prints for `query --sql sql`.
fn first_value(bin: &Path, store: &Path, sql: &str) -> String {
    let out = Command::new(bin)
        .arg("--store")
        .arg(store)
        .args(["query", "--sql", sql, "--format", "csv"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().nth(1).unwrap_or_default().to_owned()
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn line(what: &str, who: &str, r: &Run, scan: f64) {
    println!(
        "  {what:<40} {who:<9} {:>8.2} s {:>7.3}x scan {:>7.1} MB {:>9} lines{}",
        r.wall_s,
        r.wall_s / scan.max(1e-9),
        r.max_rss_mb,
        r.stdout_lines,
        if r.ok { "" } else { "  (FAILED)" }
    );
}

fn main() {
    let n = env_usize("OF_BENCH_EVENTS", 10_000_000);
    let bin = std::env::var_os("OF_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_open-forensics")));
    let base = std::env::var_os("OF_BASELINE_BIN").map(PathBuf::from);
    let (_tmp, root) = match std::env::var_os("OF_BENCH_DIR") {
        Some(d) => (None, PathBuf::from(d)),
        None => {
            let t = tempfile::tempdir().expect("tempdir");
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    std::fs::create_dir_all(&root).expect("bench dir");
    let now = open_forensics::timespec::now_ns() / 60_000_000_000 * 60_000_000_000;
    let (store, (start, last)) = match std::env::var_os("OF_BENCH_STORE") {
        Some(s) => {
            let s = PathBuf::from(s);
            let span = first_value(
                &bin,
                &s,
                "SELECT min(first_ts_ns) || ' ' || max(last_ts_ns) FROM path_counts",
            );
            let (a, b) = span.split_once(' ').expect("a store with events");
            (s, (a.parse().expect("ns"), b.parse().expect("ns")))
        }
        None => {
            let s = root.join(format!("store-{n}"));
            let span = generate(&s, n, now);
            (s, span)
        }
    };
    let name = store.file_name().expect("store name").to_string_lossy();
    let parquet = root.join(format!("{name}.parquet"));
    if !parquet.join("events").exists() {
        let out = parquet.to_str().expect("utf-8");
        let r = run(
            &bin,
            &store,
            &["export", "--format", "parquet", "--out", out],
        );
        assert!(r.ok, "export --format parquet failed");
        println!("export --format parquet: {:.1} s", r.wall_s);
    }

    // A common and a rare path, an executable (from the store itself).
    let common_path = first_value(
        &bin,
        &store,
        "SELECT path FROM path_counts ORDER BY events DESC, path LIMIT 1",
    );
    let rare_path = first_value(
        &bin,
        &store,
        "SELECT path FROM path_counts GROUP BY path ORDER BY sum(events), path LIMIT 1",
    );
    let exe = first_value(
        &bin,
        &store,
        "SELECT exe FROM processes WHERE exe IS NOT NULL ORDER BY exe LIMIT 1",
    );
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules/detections.yaml");
    let rules = rules.to_str().expect("utf-8");
    let mid = start + (last - start) / 2;
    let (since, until) = (format_ts(mid), format_ts(mid + 60_000_000_000));
    println!(
        "query speed: {} from {} to {}; common path {common_path}, rare path {rare_path}, exe {exe}",
        store.display(),
        format_ts(start),
        format_ts(last),
    );

    let scan_sql = format!(
        "SELECT count(*) FROM events WHERE path || '' = {}",
        quoted(&rare_path)
    );
    let scan = run(&bin, &store, &["query", "--sql", &scan_sql]);
    println!(
        "  full scan (every event handed to SQLite): {:.2} s, {:.1} MB",
        scan.wall_s, scan.max_rss_mb
    );
    let old_top = root.join("top_paths_over_events.sql");
    std::fs::write(
        &old_top,
        "SELECT path, count(*) AS opens, count(DISTINCT comm) AS processes, sum(ret < 0) AS failed, \
         min(ts) AS first_seen, max(ts) AS last_seen FROM events WHERE op = 'open' \
         GROUP BY path ORDER BY opens DESC, path LIMIT 50",
    )
    .expect("write");
    let top_duck = "SELECT path, count(*) AS opens, count(DISTINCT comm) AS processes, \
         sum(CASE WHEN ret < 0 THEN 1 ELSE 0 END) AS failed, min(ts) AS first_seen, \
         max(ts) AS last_seen FROM events WHERE op = 'open' GROUP BY path \
         ORDER BY opens DESC, path LIMIT 50";
    let by_path = |p: &str| format!("SELECT * FROM events WHERE path = {}", quoted(p));
    let cases: Vec<(String, Vec<String>, Option<String>)> = vec![
        (
            "query --path (rare)".into(),
            vec!["query".into(), "--path".into(), rare_path.clone()],
            Some(by_path(&rare_path)),
        ),
        (
            "query --path (needle: one event)".into(),
            vec!["query".into(), "--path".into(), NEEDLE_PATH.into()],
            Some(by_path(NEEDLE_PATH)),
        ),
        (
            "query --path (common)".into(),
            vec!["query".into(), "--path".into(), common_path.clone()],
            Some(by_path(&common_path)),
        ),
        (
            "query --exe".into(),
            vec!["query".into(), "--exe".into(), exe.clone()],
            Some(format!("SELECT * FROM events WHERE exe = {}", quoted(&exe))),
        ),
        (
            "query --rule shadow_read".into(),
            vec![
                "query".into(),
                "--rules".into(),
                rules.into(),
                "--rule".into(),
                "shadow_read".into(),
            ],
            None,
        ),
        (
            "query: a 1-minute window".into(),
            vec![
                "query".into(),
                "--since".into(),
                since.clone(),
                "--until".into(),
                until.clone(),
            ],
            Some(format!(
                "SELECT * FROM events WHERE epoch_ns(ts) BETWEEN {mid} AND {}",
                mid + 60_000_000_000
            )),
        ),
        (
            "--sql top_paths (path_counts)".into(),
            vec!["query".into(), "--sql".into(), "top_paths".into()],
            Some(top_duck.into()),
        ),
        (
            "--sql top_paths as GROUP BY over events".into(),
            vec![
                "query".into(),
                "--sql".into(),
                old_top.to_str().unwrap().into(),
            ],
            Some(top_duck.into()),
        ),
        (
            "--sql path = rare (pushed down)".into(),
            vec!["query".into(), "--sql".into(), by_path(&rare_path)],
            Some(by_path(&rare_path)),
        ),
        (
            "--sql path = needle (pushed down)".into(),
            vec!["query".into(), "--sql".into(), by_path(NEEDLE_PATH)],
            Some(by_path(NEEDLE_PATH)),
        ),
        (
            "replay detections.yaml".into(),
            vec!["replay".into(), "--rules".into(), rules.into()],
            None,
        ),
    ];
    let only = std::env::var("OF_BENCH_ONLY").unwrap_or_default();
    let runs = env_usize("OF_BENCH_RUNS", 1);
    for (what, args, duck) in cases.into_iter().filter(|c| c.0.contains(&only)) {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        if args[0] == "query" {
            args.extend(["--format", "jsonl"]);
        }
        // Each run of ours followed by DuckDB's: on a shared machine, a ratio of neighbours.
        for i in 0..runs {
            let what = if i == 0 { what.as_str() } else { "" };
            let ours = run(&bin, &store, &args);
            line(what, "new", &ours, scan.wall_s);
            if let Some(b) = &base {
                line("", "baseline", &run(b, &store, &args), scan.wall_s);
            }
            if let Some((secs, rows)) = duck.as_ref().and_then(|sql| duckdb(&parquet, sql)) {
                println!(
                    "  {:<40} {:<9} {secs:>8.2} s {:>7.3}x scan {:>10} {:>9} rows; new / duckdb {:.2}",
                    "",
                    "duckdb",
                    secs / scan.wall_s.max(1e-9),
                    "",
                    rows,
                    ours.wall_s / secs.max(1e-9)
                );
            }
        }
    }
}
