//! Fuzz target 4: the kernel record decoder.

use std::fmt::Debug;
use std::sync::atomic::Ordering;

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseResult;

use open_forensics::capture::decode::{decode_any, Record};
use open_forensics::capture::skel::types::{of_event_hdr, of_proc_hdr};
use open_forensics::event::EventJson;

use super::{apply_bytes, byte_op, fail, fuzz, long_cases, within, ByteOp, RECORDS_DECODED};

const HDR_LEN: usize = std::mem::size_of::<of_event_hdr>();
const PROC_HDR_LEN: usize = std::mem::size_of::<of_proc_hdr>();

#[derive(Clone, Debug)]
struct RecCase {
    /// 1 open, 2 exec, 3 fork, 4 exit, anything else as it is.
    kind: u32,
    header: Vec<u8>,
    /// Lengths that add up to the tail (else the header's random ones).
    consistent: bool,
    /// Syscall and path-source codes near the valid ones (else the header's random ones).
    codes: Option<(u8, u8)>,
    tail: Vec<u8>,
    /// Where the tail splits into the parts the header's lengths declare.
    cuts: [Index; 3],
    ops: Vec<ByteOp>,
    anchor: i64,
}

const PATH_PIECES: &[&[u8]] = &[
    b"etc", b"\0", b"..", b".", b"/", b"a/b", b"\xff", b"", b"//", b"memfd:x",
];

fn path_tail() -> BoxedStrategy<Vec<u8>> {
    let piece = prop_oneof![
        3 => select(PATH_PIECES).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop_oneof![
        3 => prop::collection::vec(piece, 0..24).prop_map(|p| p.concat()),
        1 => prop::collection::vec(any::<u8>(), 0..600),
        1 => (0usize..9000).prop_map(|n| vec![b'a'; n]),
    ]
    .boxed()
}

fn rec_case() -> BoxedStrategy<RecCase> {
    (
        prop_oneof![5 => 1u32..=4, 1 => any::<u32>()],
        prop::collection::vec(any::<u8>(), PROC_HDR_LEN.max(HDR_LEN)),
        prop::bool::weighted(0.7),
        proptest::option::weighted(0.7, (0u8..=12, 0u8..=6)),
        path_tail(),
        any::<[Index; 3]>(),
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(byte_op(), 1..4)],
        prop_oneof![Just(0i64), any::<i64>()],
    )
        .prop_map(
            |(kind, header, consistent, codes, tail, cuts, ops, anchor)| RecCase {
                kind,
                header,
                consistent,
                codes,
                tail,
                cuts,
                ops,
                anchor,
            },
        )
        .boxed()
}

fn put<const N: usize>(b: &mut [u8], at: usize, v: [u8; N]) {
    b[at..at + N].copy_from_slice(&v);
}

fn build_record(c: &RecCase) -> Vec<u8> {
    use std::mem::offset_of;
    let n = c.tail.len();
    let mut cuts = c.cuts.each_ref().map(|i| i.index(n + 1));
    cuts.sort_unstable();
    let [a, b, d] = cuts;
    let clamp = |x: usize| x.min(u16::MAX as usize) as u16;
    let mut rec;
    if c.kind == 1 {
        rec = c.header[..HDR_LEN].to_vec();
        put(
            &mut rec,
            offset_of!(of_event_hdr, kind),
            c.kind.to_ne_bytes(),
        );
        if c.consistent {
            put(
                &mut rec,
                offset_of!(of_event_hdr, raw_len),
                clamp(a).to_ne_bytes(),
            );
            put(
                &mut rec,
                offset_of!(of_event_hdr, path_len),
                clamp(n - a).to_ne_bytes(),
            );
        }
        if let Some((s, p)) = c.codes {
            rec[offset_of!(of_event_hdr, syscall)] = s;
            rec[offset_of!(of_event_hdr, path_source)] = p;
        }
    } else {
        rec = c.header[..PROC_HDR_LEN].to_vec();
        put(
            &mut rec,
            offset_of!(of_proc_hdr, kind),
            c.kind.to_ne_bytes(),
        );
        if c.consistent {
            put(
                &mut rec,
                offset_of!(of_proc_hdr, exe_len),
                clamp(a).to_ne_bytes(),
            );
            put(
                &mut rec,
                offset_of!(of_proc_hdr, args_len),
                clamp(b - a).to_ne_bytes(),
            );
            put(
                &mut rec,
                offset_of!(of_proc_hdr, cgroup_len),
                clamp(d - b).to_ne_bytes(),
            );
            put(
                &mut rec,
                offset_of!(of_proc_hdr, root_len),
                clamp(n - d).to_ne_bytes(),
            );
        }
    }
    rec.extend_from_slice(&c.tail);
    apply_bytes(&mut rec, &c.ops);
    rec
}

fn decode_record(rec: &[u8], anchor: i64) -> Result<(), String> {
    let decoded = decode_any(rec, anchor);
    if decoded.is_ok() {
        RECORDS_DECODED.fetch_add(1, Ordering::Relaxed);
    }
    match decoded {
        Ok(Record::Open(e, _)) => {
            let line = e.to_json_line();
            serde_json::from_str::<EventJson>(&line).map_err(|err| {
                format!("a decoded open exports a line that does not parse: {err}\n{line}")
            })?;
        }
        Ok(Record::Proc(p)) => {
            let _ = format!("{p:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    Ok(())
}

fn check_record(c: RecCase) -> TestCaseResult {
    let rec = build_record(&c);
    let anchor = c.anchor;
    within("record decoder", move || decode_record(&rec, anchor)).map_err(fail)
}

fn random_record() -> BoxedStrategy<(Vec<u8>, i64)> {
    (
        prop_oneof![
            3 => prop::collection::vec(any::<u8>(), 0..400),
            1 => (1u32..=4, prop::collection::vec(any::<u8>(), 0..400)).prop_map(|(k, mut b)| {
                let mut r = k.to_ne_bytes().to_vec();
                r.append(&mut b);
                r
            }),
        ],
        any::<i64>(),
    )
        .boxed()
}

const DECODER_SUITE_CASES: u32 = 2_000;

#[test]
fn record_decoder_survives_any_bytes() {
    fuzz(
        "record decoder (random bytes)",
        DECODER_SUITE_CASES,
        &RECORDS_DECODED,
        random_record(),
        |(rec, anchor)| decode_record(&rec, anchor).map_err(fail),
    );
    fuzz(
        "record decoder (mutated records)",
        DECODER_SUITE_CASES,
        &RECORDS_DECODED,
        rec_case(),
        check_record,
    );
}

#[test]
#[ignore = "long fuzz run: FUZZ_CASES=N cargo test --release --test it fuzz:: -- --ignored"]
fn long_record_decoder() {
    fuzz(
        "record decoder (random bytes)",
        long_cases(),
        &RECORDS_DECODED,
        random_record(),
        |(rec, anchor)| decode_record(&rec, anchor).map_err(fail),
    );
    fuzz(
        "record decoder (mutated records)",
        long_cases(),
        &RECORDS_DECODED,
        rec_case(),
        check_record,
    );
}
