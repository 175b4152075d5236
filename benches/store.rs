//! Store benchmark (issue #2): ingest rate, sealed bytes per event against zstd'd JSON lines, and
//! full-scan speed against plain zstd decompression, all from one run on the same events.
//!
//! `cargo bench --bench store` (OF_BENCH_EVENTS=N to change the 2M default).

mod common;

use std::ops::ControlFlow;
use std::time::Instant;

use open_forensics::event::Event;
use open_forensics::store::{list_segments, Reader, RotateConfig, TimeRange, Writer};

fn main() {
    let n: usize = std::env::var("OF_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let mut w = common::Workload::new(42);
    let events: Vec<Event> = (0..n).map(|_| w.next_event()).collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");

    // Ingest: intern + batched inserts + sealing, on this one thread.
    let t = Instant::now();
    let mut writer = Writer::open(&dir, RotateConfig::default()).expect("open store");
    for e in &events {
        writer.append(&mut e.clone()).expect("append");
    }
    writer.commit().expect("commit");
    let append_s = t.elapsed().as_secs_f64();
    let summary = writer.close().expect("close");
    let ingest_s = t.elapsed().as_secs_f64();

    let (segments, _) = list_segments(&dir).expect("list");
    let sealed: u64 = segments.iter().map(|s| s.file_bytes).sum();
    let db: u64 = segments.iter().map(|s| s.meta.db_bytes).sum();

    // Baseline for size: the same events as JSON lines, zstd at its default level.
    let jsonl: String = events.iter().map(|e| e.to_json_line() + "\n").collect();
    let t = Instant::now();
    let jsonl_zst =
        zstd::bulk::compress(jsonl.as_bytes(), zstd::DEFAULT_COMPRESSION_LEVEL).expect("zstd");
    let jsonl_compress_s = t.elapsed().as_secs_f64();

    // Read: full scan (decompress + load + decode every event) vs plain decompression of the files.
    let reader = Reader::open(&dir).expect("reader");
    let t = Instant::now();
    let mut count = 0u64;
    let stats = reader.scan(&TimeRange::default(), |_| {
        count += 1;
        ControlFlow::Continue(())
    });
    let scan_s = t.elapsed().as_secs_f64();
    assert!(
        stats.errors.is_empty() && count as usize == n,
        "scan read {count} of {n}"
    );
    let files: Vec<Vec<u8>> = segments
        .iter()
        .map(|s| std::fs::read(&s.path).expect("read"))
        .collect();
    let t = Instant::now();
    let mut out = 0usize;
    for f in &files {
        let mut d = zstd::Decoder::new(&f[..]).expect("decoder");
        out += std::io::copy(&mut d, &mut std::io::sink()).expect("decompress") as usize;
    }
    let unzstd_s = t.elapsed().as_secs_f64();

    let per = |b: u64| b as f64 / n as f64;
    println!(
        "store benchmark: {n} events, {} segment(s), {} recovered",
        summary.segments_sealed,
        summary.recovered.len()
    );
    println!(
        "  ingest (append+commit)      {:>12.0} events/s  ({append_s:.2} s)",
        n as f64 / append_s
    );
    println!(
        "  ingest incl. sealing        {:>12.0} events/s  ({ingest_s:.2} s)",
        n as f64 / ingest_s
    );
    println!(
        "  SQLite before sealing       {:>12.2} bytes/event",
        per(db)
    );
    println!(
        "  sealed segments             {:>12.2} bytes/event",
        per(sealed)
    );
    println!(
        "  JSON lines                  {:>12.2} bytes/event",
        per(jsonl.len() as u64)
    );
    println!(
        "  JSON lines + zstd -3        {:>12.2} bytes/event  ({jsonl_compress_s:.2} s to compress)",
        per(jsonl_zst.len() as u64)
    );
    println!(
        "  sealed / (JSON lines+zstd)  {:>12.3}  (target <= 0.333)",
        sealed as f64 / jsonl_zst.len() as f64
    );
    println!(
        "  full scan of sealed         {:>12.0} events/s  ({scan_s:.2} s)",
        n as f64 / scan_s
    );
    println!(
        "  plain zstd -d of same files {:>12.0} MB/s      ({unzstd_s:.3} s, {} MB out)",
        out as f64 / 1e6 / unzstd_s,
        out / 1_000_000
    );
    println!("  scan time / decompress time {:>12.2}", scan_s / unzstd_s);
}
