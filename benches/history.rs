//! History benchmark (issue #11): reads of a large store on one host, as a user runs them — the
//! real binary, its wall time and its peak RSS (`wait4` rusage), against a baseline binary when
//! one is given, in the same run on the same stores.
//!
//! One store of `OF_BENCH_EVENTS` (default 100M) generated events with lineage (the store
//! benchmark's workload), spread evenly over the week before now, as a busy host records them:
//! - `query --since T --until T+1m` (a one-minute window in the middle of the history), jsonl;
//! - `query --rules R --rule etc_read --since 1h` (a rule over the last hour), jsonl;
//! - `query --sql top_paths` over the whole store.
//!
//! And `import` of `OF_BENCH_IMPORT` (default 10M) events from a JSON lines file.
//!
//! The baseline (`OF_BASELINE_BIN=/path/to/old/open-forensics`) held the whole answer or file in
//! memory: it runs the window and rule queries on the same large store, and `top_paths` and
//! `import` on a small store / file of `OF_BENCH_SMALL` (default 1M) events, where the new binary
//! runs too, for the ratio. `OF_BENCH_DIR` keeps the generated stores between runs.
//!
//! `cargo bench --bench history` (`OF_BENCH_BIN` runs another build of the new binary).

mod common;

use std::path::{Path, PathBuf};

use common::runs::{env_usize, generate, report, run};
use open_forensics::timespec::format_ts;

/// A JSON lines file of `n` events (no lineage: what another tool would export).
fn jsonl(path: &Path, n: usize) {
    if path.exists() {
        return;
    }
    use std::io::Write;
    let mut w = common::Workload::new(7);
    let tmp = path.with_extension("partial");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).expect("create"));
    for _ in 0..n {
        writeln!(f, "{}", w.next_event().to_json_line()).expect("write");
    }
    f.flush().expect("flush");
    drop(f);
    std::fs::rename(&tmp, path).expect("rename");
}

fn main() {
    let n = env_usize("OF_BENCH_EVENTS", 100_000_000);
    let import_n = env_usize("OF_BENCH_IMPORT", 10_000_000);
    let small = env_usize("OF_BENCH_SMALL", 1_000_000);
    // OF_BENCH_BIN: a copy of the binary, so that a rebuild during a long run does not swap it.
    let new_bin = std::env::var_os("OF_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_open-forensics")));
    let base_bin = std::env::var_os("OF_BASELINE_BIN").map(PathBuf::from);
    let (_tmp, root) = match std::env::var_os("OF_BENCH_DIR") {
        Some(d) => (None, PathBuf::from(d)),
        None => {
            let t = tempfile::tempdir().expect("tempdir");
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    std::fs::create_dir_all(&root).expect("bench dir");
    // Whole minutes, so that reruns over a kept store agree on "the last hour".
    let now = open_forensics::timespec::now_ns() / 60_000_000_000 * 60_000_000_000;
    let big = root.join(format!("store-{n}"));
    let (start, last) = generate(&big, n, now);
    let small_store = root.join(format!("store-{small}"));
    generate(&small_store, small, now);
    let rules = root.join("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: etc_read\n    description: reads under /etc\n    severity: low\n    path: [\"/etc/**\"]\n    access: read\n",
    )
    .expect("rules");
    let rules = rules.to_str().expect("utf-8").to_owned();

    println!(
        "history benchmark: {n} events over a week ({} to {})",
        format_ts(start),
        format_ts(last)
    );
    let mid = start + (last - start) / 2;
    let (since, until) = (format_ts(mid), format_ts(mid + 60_000_000_000));
    let window = [
        "query", "--since", &since, "--until", &until, "--format", "jsonl",
    ];
    let hour = [
        "query", "--rules", &rules, "--rule", "etc_read", "--since", "1h", "--format", "jsonl",
    ];
    let top = ["query", "--sql", "top_paths", "--format", "jsonl"];
    for (what, args, store) in [
        ("query: 1-minute window (mid-week)", &window[..], &big),
        ("query --rule over the last hour", &hour[..], &big),
    ] {
        let new = run(&new_bin, store, args);
        let base = base_bin.as_ref().map(|b| run(b, store, args));
        report(what, &new, base.as_ref());
    }
    let new = run(&new_bin, &big, &top);
    report(&format!("--sql top_paths, {n} events"), &new, None);
    let new = run(&new_bin, &small_store, &top);
    let base = base_bin.as_ref().map(|b| run(b, &small_store, &top));
    report(
        &format!("--sql top_paths, {small} events"),
        &new,
        base.as_ref(),
    );

    let file = root.join(format!("import-{import_n}.jsonl"));
    jsonl(&file, import_n);
    let small_file = root.join(format!("import-{small}.jsonl"));
    jsonl(&small_file, small);
    for (label, f, with_base) in [
        (format!("import {import_n} events"), &file, false),
        (format!("import {small} events"), &small_file, true),
    ] {
        let f = f.to_str().expect("utf-8").to_owned();
        let fresh = |tag: &str| {
            let d = root.join(format!("import-store-{tag}"));
            let _ = std::fs::remove_dir_all(&d);
            d
        };
        let new = run(&new_bin, &fresh("new"), &["import", &f]);
        let base = if with_base {
            base_bin
                .as_ref()
                .map(|b| run(b, &fresh("base"), &["import", &f]))
        } else {
            None
        };
        report(&label, &new, base.as_ref());
        let _ = std::fs::remove_dir_all(root.join("import-store-new"));
        let _ = std::fs::remove_dir_all(root.join("import-store-base"));
    }
}
