//! Store benchmark (issues #2, #8): ingest rate, sealed bytes per event against zstd'd JSON lines,
//! and full-scan speed against plain zstd decompression, all from one run on the same events;
//! measured without lineage and with it (the same events, each pid with its process image, user
//! and effective ids, as the recorder stores them), side by side.
//!
//! `cargo bench --bench store` (OF_BENCH_EVENTS=N to change the 2M default; OF_BENCH_LINEAGE=0
//! or 1 for one pass only).

mod common;

use std::ops::ControlFlow;
use std::time::Instant;

use open_forensics::event::Event;
use open_forensics::store::{list_segments, Reader, RotateConfig, TimeRange, Writer};

#[derive(Default)]
struct Figures {
    segments: u64,
    recovered: usize,
    processes: u64,
    append_s: f64,
    ingest_s: f64,
    db: u64,
    sealed: u64,
    jsonl: u64,
    jsonl_zst: u64,
    jsonl_compress_s: f64,
    scan_s: f64,
    unzstd_s: f64,
    unzstd_out: usize,
}

fn measure(lineage: bool, n: usize) -> Figures {
    let mut w = if lineage {
        common::Workload::with_lineage(42)
    } else {
        common::Workload::new(42)
    };
    let events: Vec<Event> = (0..n).map(|_| w.next_event()).collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let mut f = Figures::default();

    // Ingest: intern + batched inserts + sealing, on this one thread.
    let t = Instant::now();
    let mut writer = Writer::open(&dir, RotateConfig::default()).expect("open store");
    for e in &events {
        writer.append(&mut e.clone()).expect("append");
    }
    writer.commit().expect("commit");
    f.append_s = t.elapsed().as_secs_f64();
    let summary = writer.close().expect("close");
    f.ingest_s = t.elapsed().as_secs_f64();
    f.segments = summary.segments_sealed;
    f.recovered = summary.recovered.len();

    let (segments, _) = list_segments(&dir).expect("list");
    f.sealed = segments.iter().map(|s| s.file_bytes).sum();
    f.db = segments.iter().map(|s| s.meta.db_bytes).sum();
    f.processes = segments.iter().map(|s| s.meta.processes).sum();

    // Baseline for size: the same events as JSON lines, zstd at its default level.
    let jsonl: String = events.iter().map(|e| e.to_json_line() + "\n").collect();
    let t = Instant::now();
    let jsonl_zst =
        zstd::bulk::compress(jsonl.as_bytes(), zstd::DEFAULT_COMPRESSION_LEVEL).expect("zstd");
    f.jsonl_compress_s = t.elapsed().as_secs_f64();
    f.jsonl = jsonl.len() as u64;
    f.jsonl_zst = jsonl_zst.len() as u64;
    drop(jsonl);
    drop(events);

    // Read: full scan (decompress + load + decode every event) vs plain decompression of the files.
    let reader = Reader::open(&dir).expect("reader");
    let t = Instant::now();
    let mut count = 0u64;
    let mut with_process = 0u64;
    let stats = reader.scan(&TimeRange::default(), |e| {
        count += 1;
        with_process += u64::from(e.process.is_some());
        ControlFlow::Continue(())
    });
    f.scan_s = t.elapsed().as_secs_f64();
    assert!(
        stats.errors.is_empty() && count as usize == n,
        "scan read {count} of {n}"
    );
    assert_eq!(
        with_process,
        if lineage { count } else { 0 },
        "events read back with a process image"
    );
    let files: Vec<Vec<u8>> = segments
        .iter()
        .map(|s| std::fs::read(&s.path).expect("read"))
        .collect();
    let t = Instant::now();
    for file in &files {
        let mut d = zstd::Decoder::new(&file[..]).expect("decoder");
        f.unzstd_out += std::io::copy(&mut d, &mut std::io::sink()).expect("decompress") as usize;
    }
    f.unzstd_s = t.elapsed().as_secs_f64();
    f
}

fn main() {
    let n: usize = std::env::var("OF_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let passes: Vec<bool> = match std::env::var("OF_BENCH_LINEAGE").as_deref() {
        Ok("0") => vec![false],
        Ok("1") => vec![true],
        _ => vec![false, true],
    };
    let figs: Vec<(bool, Figures)> = passes.iter().map(|&l| (l, measure(l, n))).collect();

    let per = |b: u64| b as f64 / n as f64;
    println!("store benchmark: {n} events (seed 42)");
    print!("{:<30}", "");
    for (l, _) in &figs {
        print!(
            " {:>16}",
            if *l {
                "with lineage"
            } else {
                "without lineage"
            }
        );
    }
    println!();
    let row = |label: &str, unit: &str, v: &dyn Fn(&Figures) -> String| {
        print!("  {label:<28}");
        for (_, f) in &figs {
            print!(" {:>16}", v(f));
        }
        println!("  {unit}");
    };
    row("segments sealed (recovered)", "", &|f| {
        format!("{} ({})", f.segments, f.recovered)
    });
    row("process images stored", "", &|f| f.processes.to_string());
    row("ingest (append+commit)", "events/s", &|f| {
        format!("{:.0}", n as f64 / f.append_s)
    });
    row("ingest incl. sealing", "events/s", &|f| {
        format!("{:.0}", n as f64 / f.ingest_s)
    });
    row("SQLite before sealing", "bytes/event", &|f| {
        format!("{:.2}", per(f.db))
    });
    row("sealed segments", "bytes/event", &|f| {
        format!("{:.2}", per(f.sealed))
    });
    row("JSON lines", "bytes/event", &|f| {
        format!("{:.2}", per(f.jsonl))
    });
    row("JSON lines + zstd -3", "bytes/event", &|f| {
        format!("{:.2}", per(f.jsonl_zst))
    });
    row("  (time to compress)", "s", &|f| {
        format!("{:.2}", f.jsonl_compress_s)
    });
    row("sealed / (JSON lines+zstd)", "(target <= 0.333)", &|f| {
        format!("{:.3}", f.sealed as f64 / f.jsonl_zst as f64)
    });
    row("full scan of sealed", "events/s", &|f| {
        format!("{:.0}", n as f64 / f.scan_s)
    });
    row("plain zstd -d of same files", "MB/s", &|f| {
        format!("{:.0}", f.unzstd_out as f64 / 1e6 / f.unzstd_s)
    });
    row("scan time / decompress time", "", &|f| {
        format!("{:.2}", f.scan_s / f.unzstd_s)
    });
    if let [(false, a), (true, b)] = &figs[..] {
        println!(
            "  lineage costs {:+.2} sealed bytes/event ({:+.1}%)",
            per(b.sealed) - per(a.sealed),
            (b.sealed as f64 / a.sealed as f64 - 1.0) * 100.0
        );
    }
}
