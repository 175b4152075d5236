//! The recorder's user-space work per event (issue #10), on a replayable batch of kernel records:
//! the shared synthetic workload (benches/common) encoded as the probes encode opens
//! (bpf/events.h, through the generated header type), handed over in batches as the ring
//! consumer hands them to the store thread, then what that thread does with them
//! (`recorder::Stage`): decode, hold for the reorder window, attach each open's process,
//! append to the store. Times and bytes written (`wchar`, sealing included) are printed per
//! event; for a repeatable before/after use instruction counts:
//!
//! ```text
//! cargo bench --bench decode --no-run
//! DECODE_BENCH_EVENTS=100000 valgrind --tool=callgrind --toggle-collect='*decode::replay*' \
//!     target/release/deps/decode-*  # the bench binary
//! ```
//!
//! `--toggle-collect='*decode_only*'` counts the decoder alone. `DECODE_BENCH_EVENTS` (default
//! 500000) sets the batch. Instruction counts miss what the reorder window costs in cache
//! misses (it holds ~100k events of ~200 bytes live); the recorder's CPU per event under a real
//! open loop is `benches/recorder_cpu.sh`.

mod common;

use std::collections::HashMap;
use std::time::Instant;

use open_forensics::alerts::Outputs;
use open_forensics::capture::decode::{self, Record};
use open_forensics::capture::proctable::ProcTable;
use open_forensics::capture::skel::types::{of_event_hdr, of_rec_kind, of_trunc};
use open_forensics::capture::Batch;
use open_forensics::event::{Event, PathSource};
use open_forensics::recorder::{Sinks, Stage, DEFAULT_REORDER_WINDOW};
use open_forensics::store::{RotateConfig, Writer};
use open_forensics::timespec::parse_duration;

/// One open as the kernel sends it: header, raw path, resolved components leaf first — through
/// the probes' directory cache as in its steady state: a directory's first open defines its slot
/// (every component), later ones send the leaf only (`dirs`: directory → slot id).
fn encode(ev: &Event, dirs: &mut HashMap<Vec<u8>, u32>, out: &mut Batch) {
    let (comps, has_leaf): (&[u8], bool) = match ev.path_source {
        PathSource::File => (ev.path.as_bytes(), true),
        // A failed relative open carries its cwd.
        PathSource::Cwd | PathSource::Dirfd => (b"/home/dev/src/project", false),
        // The corpus has no chrooted opens (their root would follow).
        PathSource::Raw | PathSource::Unresolved | PathSource::Root => (b"", false),
    };
    let mut tail = ev.raw_path.as_bytes().to_vec();
    let raw_len = tail.len();
    let (dir, leaf) = match comps.iter().rposition(|&b| b == b'/') {
        Some(i) if has_leaf => (&comps[..i], &comps[i + 1..]),
        _ => (comps, &b""[..]),
    };
    let (mut dir_slot, mut cached) = (0, false);
    if !dir.is_empty() {
        let next = dirs.len() as u32 + 1;
        match dirs.get(dir) {
            Some(&id) => (dir_slot, cached) = (id, true),
            None => {
                dirs.insert(dir.to_vec(), next);
                dir_slot = next;
            }
        }
    }
    let walked = if cached { leaf } else { comps };
    if cached && !leaf.is_empty() {
        tail.extend_from_slice(leaf);
        tail.push(0);
    } else if !cached {
        for c in walked.split(|&b| b == b'/').filter(|c| !c.is_empty()).rev() {
            tail.extend_from_slice(c);
            tail.push(0);
        }
    }
    let mut comm = [0i8; 16];
    for (d, s) in comm.iter_mut().zip(ev.comm.as_bytes()) {
        *d = *s as i8;
    }
    let h = of_event_hdr {
        kind: of_rec_kind::OF_REC_OPEN.0,
        pid: ev.pid,
        ts_ns: ev.ts_ns as u64,
        proc_start: u64::from(ev.pid) * 1_000_000,
        ret: ev.ret,
        flags: ev.flags,
        tid: ev.tid,
        ppid: ev.ppid,
        uid: ev.uid,
        gid: ev.gid,
        euid: ev.uid,
        egid: ev.gid,
        mode: ev.mode,
        dirfd: ev.dirfd.unwrap_or(0),
        raw_len: raw_len as u16,
        path_len: (tail.len() - raw_len) as u16,
        syscall: ev.syscall.code(),
        path_source: ev.path_source.code(),
        has_dirfd: u8::from(ev.dirfd.is_some()),
        trunc: if cached {
            of_trunc::OF_PATH_CACHED.0 as u8
        } else {
            0
        },
        comm,
        dir_slot,
        dir_gen: u32::from(dir_slot != 0),
        // Every successful open carries its file's identity.
        ino: if ev.ret >= 0 {
            1 << 20 | u64::from(ev.pid)
        } else {
            0
        },
        dev: if ev.ret >= 0 { 259 << 20 | 1 } else { 0 },
        ..of_event_hdr::default()
    };
    let mut rec = vec![0u8; std::mem::size_of::<of_event_hdr>()];
    // SAFETY: `rec` has exactly the header's size; write_unaligned needs no alignment.
    unsafe { std::ptr::write_unaligned(rec.as_mut_ptr().cast::<of_event_hdr>(), h) };
    rec.extend_from_slice(&tail);
    out.push(&rec);
}

/// Every record of the batches, in order.
fn records(batches: &[Batch]) -> impl Iterator<Item = &[u8]> {
    batches.iter().flat_map(Batch::records)
}

/// Decodes every record and drops the result.
#[inline(never)]
fn decode_only(batches: &[Batch]) -> u64 {
    let mut n = 0;
    let mut decoder = decode::Decoder::default();
    for rec in records(batches) {
        if let Ok(Record::Open(ev, _)) = decoder.decode_any(rec, 0) {
            n += ev.path.as_bytes().len() as u64;
        }
    }
    n
}

/// The store thread's work on records (`pipeline::Stage`): decode, hold for the reorder window,
/// attach the process, append. The batches are as the ring consumer hands them over.
#[inline(never)]
fn replay(batches: &[Batch], stage: &mut Stage) {
    for b in batches {
        stage.take(b).expect("store a batch");
    }
    stage.release_all().expect("release");
}

/// Bytes this process has passed to write calls (`wchar`), all threads.
fn written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: ")?.trim().parse().ok())
        .unwrap_or(0)
}

/// Records per batch: what the consumer hands over at a time under load.
const BATCH: usize = 4096;

fn main() {
    let n: usize = std::env::var("DECODE_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500_000);
    let mut w = common::Workload::new(42);
    let mut batches = vec![Batch::with_capacity(BATCH * 200)];
    let mut dirs = HashMap::new();
    let mut paths = Vec::with_capacity(n);
    for _ in 0..n {
        let ev = w.next_event();
        let last = batches.last_mut().expect("a batch");
        encode(&ev, &mut dirs, last);
        // The consumer's drain mark: every record before it has been handed over.
        last.drained_at_ns = ev.ts_ns as u64;
        if last.records as usize == BATCH {
            batches.push(Batch::with_capacity(BATCH * 200));
        }
        paths.push((ev.path_source == PathSource::File).then_some(ev.path));
    }
    // The encoding is the kernel's, cached directories included: walked files decode to the
    // same paths (failed relative opens get the bench's own cwd).
    let mut decoder = decode::Decoder::default();
    for (rec, want) in records(&batches).zip(&paths) {
        match decoder.decode_any(rec, 0) {
            Ok(Record::Open(ev, _)) => {
                if let Some(want) = want {
                    assert_eq!(ev.path.as_bytes(), want.as_bytes());
                }
            }
            other => panic!("record decodes to {other:?}"),
        }
    }
    let bytes: usize = batches.iter().map(|b| b.buf.len()).sum();
    println!(
        "decode bench: {n} records, {bytes} bytes ({:.0} per record)",
        bytes as f64 / n as f64
    );

    let t = Instant::now();
    let sum = decode_only(&batches);
    let decode_s = t.elapsed().as_secs_f64();

    let tmp = tempfile::tempdir().expect("tempdir");
    let writer =
        Writer::open(&tmp.path().join("store"), RotateConfig::default()).expect("open store");
    let sinks = Sinks {
        writer,
        rules: None,
        alerts: Outputs::none(),
        procs: ProcTable::new(0, HashMap::new()),
    };
    let window = parse_duration(DEFAULT_REORDER_WINDOW).expect("the default window parses");
    let mut stage = Stage::new(sinks, 0, window.as_nanos() as i64).expect("stage");
    let (t, wchar) = (Instant::now(), written());
    replay(&batches, &mut stage);
    let replay_s = t.elapsed().as_secs_f64();
    let wchar = written() - wchar;
    let summary = stage.close().expect("close");

    println!(
        "decode only:             {:>6.0} ns/event  ({sum} path bytes)",
        decode_s * 1e9 / n as f64
    );
    println!(
        "decode + reorder + attach + append: {:>6.0} ns/event",
        replay_s * 1e9 / n as f64
    );
    println!(
        "written while storing: {:.1} bytes/event; sealed: {:.1} bytes/event",
        wchar as f64 / n as f64,
        summary.sealed_bytes as f64 / n as f64
    );
}
