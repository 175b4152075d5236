//! Fuzzing (issue #9): proptest-driven, bounded tests for the segment reader, the JSON-lines
//! importer, the rule loader and the kernel record decoder. Each target starts from real inputs
//! (the recorded fixtures, a segment made by `import`, exported lines, the example rule files, a
//! record built through the generated header type) and mutates them.
//!
//! One module per target; what they share (the runner, the byte mutations, seeds) is here.
//!
//! In the normal suite each target runs a small, fixed number of cases. Its `long_` twin (ignored)
//! runs `FUZZ_CASES` cases (default 20,000), to hunt rather than to guard:
//!
//! ```text
//! FUZZ_CASES=50000 cargo test --release --test it fuzz:: -- --ignored --nocapture
//! ```
//!
//! (`fuzz::` with `--ignored` selects the long runs: they are its only ignored tests.) Run them
//! with `CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true` too: the crashes found so far were overflows
//! that only a build with overflow checks turns into a panic.
//!
//! Nothing is written into the repository (`failure_persistence: None`): a failure prints its
//! shrunk input. Every case runs on its own thread under a deadline, so a hang fails the case too.
//! What the fuzzing found has a regression test here (`Found by …`).

use std::fmt::Debug;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestCaseResult, TestRunner};
use serde_json::Value;

use open_forensics::bytes::Str;
use open_forensics::errno;
use open_forensics::event::Event;
use open_forensics::process::Process;
use open_forensics::rules::RuleSet;

use crate::helpers::{event, fixtures_dir, scenarios};

mod json_import;
mod record_decoder;
mod rule_loader;
mod segment_reader;

// ---------------------------------------------------------------------------------------------
// The runner: a bounded number of cases, each on its own thread under a deadline.

/// Cases in the long runs, unless `FUZZ_CASES` says otherwise.
const LONG_CASES: u32 = 20_000;
/// A case that takes longer than this hangs (debug build, shared 2-core VM: generous).
const DEADLINE: Duration = Duration::from_secs(20);

fn long_cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LONG_CASES)
}

/// Cases whose input got through to the end (a segment with events read, a line imported, a
/// rule file loaded, a record decoded): the share of inputs that are not rejected early.
static SEGMENTS_READ: AtomicU64 = AtomicU64::new(0);
static LINES_IMPORTED: AtomicU64 = AtomicU64::new(0);
static RULES_LOADED: AtomicU64 = AtomicU64::new(0);
static RECORDS_DECODED: AtomicU64 = AtomicU64::new(0);

/// Runs `test` on `cases` inputs drawn from `strategy`; panics with the shrunk failing input.
fn fuzz<S>(
    name: &str,
    cases: u32,
    accepted: &AtomicU64,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) where
    S: Strategy,
    S::Value: Debug,
{
    let before = accepted.load(Ordering::Relaxed);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        max_shrink_time: 120_000,
        ..Config::default()
    };
    let start = Instant::now();
    let result = TestRunner::new(config).run(&strategy, test);
    let summary = format!(
        "fuzz {name}: {cases} cases in {:.1?}, {} got through",
        start.elapsed(),
        accepted.load(Ordering::Relaxed) - before
    );
    if std::env::var_os("FUZZ_CASES").is_some() {
        // A hunt: straight to fd 2, past libtest's capture.
        let _ = writeln!(std::io::stderr(), "{summary}");
    } else {
        eprintln!("{summary}");
    }
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

/// Runs `f` on a thread of its own: a panic there fails the case (with its message), and so does
/// taking longer than [`DEADLINE`] (the thread is then left behind).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(format!("fuzz {what}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn a fuzz case thread");
    match rx.recv_timeout(DEADLINE) {
        Ok(v) => {
            let _ = worker.join();
            v
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("hang: {what} took more than {DEADLINE:?}")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the worker sends before it ends"),
        },
    }
}

fn fail(msg: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(msg.into())
}

/// An input for a failure message: all of it when short.
fn shown(s: &str) -> String {
    if s.len() <= 4000 {
        format!("{s:?}")
    } else {
        format!(
            "({} bytes) {:?}…",
            s.len(),
            s.chars().take(1000).collect::<String>()
        )
    }
}

/// Files under `dir` (not recursive) whose name ends in `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// The recorded fixture stores (`fixtures/segments/*`), sorted.
/// The fixture scenarios small enough to seed: a case handles every byte of its seed several
/// times, so a big recording (baseline_busy's 134k events) adds minutes, not formats.
fn scenario_dirs() -> Vec<PathBuf> {
    const MAX_SEED_BYTES: u64 = 256 * 1024;
    let segments = fixtures_dir().join("segments");
    scenarios()
        .into_iter()
        .map(|s| segments.join(s))
        .filter(|d| {
            std::fs::read_dir(d).expect("fixture dir").all(|e| {
                e.expect("dir entry").metadata().expect("metadata").len() <= MAX_SEED_BYTES
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Byte-level mutations, shared by every target.

/// Bytes that mean something to one of the parsers (JSON, YAML, SQLite, zstd, varints).
const TOKENS: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"\x80",
    b"\x7f",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b": ",
    b"- ",
    b"\n",
    b"\n  ",
    b"\r",
    b"\t",
    b"*",
    b"**",
    b"&a ",
    b"*a",
    b"<<: *a",
    b"!!binary ",
    b"$",
    b"'",
    b"~",
    b"#",
    b"---\n",
    b"|\n",
    b"?",
    b"\xef\xbb\xbf",
    b"1e999",
    b"-0",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"null",
    b"true",
];

#[derive(Clone, Debug)]
enum ByteOp {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Token(Index, Index),
    Delete(Index, u8),
    Truncate(Index),
    /// Copies a slice of the input over another place (repeats structure).
    Splice(Index, Index, u8),
}

fn byte_op() -> BoxedStrategy<ByteOp> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| ByteOp::Flip(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteOp::Set(i, b)),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| ByteOp::Insert(i, b)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(i, t)| ByteOp::Token(i, t)),
        2 => (any::<Index>(), 1u8..64).prop_map(|(i, n)| ByteOp::Delete(i, n)),
        1 => any::<Index>().prop_map(ByteOp::Truncate),
        1 => (any::<Index>(), any::<Index>(), 1u8..128).prop_map(|(a, b, n)| ByteOp::Splice(a, b, n)),
    ]
    .boxed()
}

fn apply_bytes(b: &mut Vec<u8>, ops: &[ByteOp]) {
    for op in ops {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
        let len = b.len();
        match op {
            ByteOp::Flip(i, bit) if len > 0 => b[i.index(len)] ^= 1 << bit,
            ByteOp::Set(i, v) if len > 0 => b[i.index(len)] = *v,
            ByteOp::Insert(i, bytes) => {
                let p = at(i, len + 1);
                b.splice(p..p, bytes.iter().copied());
            }
            ByteOp::Token(i, t) => {
                let p = at(i, len + 1);
                b.splice(p..p, t.get(TOKENS).iter().copied());
            }
            ByteOp::Delete(i, n) if len > 0 => {
                let p = i.index(len);
                let end = (p + *n as usize).min(len);
                b.drain(p..end);
            }
            ByteOp::Truncate(i) => b.truncate(at(i, len + 1)),
            ByteOp::Splice(from, to, n) if len > 0 => {
                let f = from.index(len);
                let piece: Vec<u8> = b[f..(f + *n as usize).min(len)].to_vec();
                let t = at(to, len + 1);
                b.splice(t..t, piece);
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs and checks shared by several targets.

/// The time the generated events start at.
const T0: i64 = 1_764_000_000_000_000_000;

/// Events with lineage, non-UTF-8 bytes and failures, for a segment made by `import`.
fn generated_events() -> Vec<Event> {
    let init = Arc::new(Process {
        exe: Some(Str::from("/usr/lib/systemd/systemd")),
        ..Process::from_event(1, T0 - 9_000_000_000, 0, Str::from("systemd"), 0, 0)
    });
    let shell = Arc::new(Process {
        exe: Some(Str::from("/usr/bin/bash")),
        argv: Some(Str::new(&b"bash\0-c\0cat /etc/\xfe\0"[..])),
        parent: Some(init.clone()),
        auid: Some(1000),
        cgroup: Some(Str::from(
            "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
        )),
        container_id: Some(Str::from(
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )),
        ..Process::from_event(4000, T0 - 1_000_000, 1, Str::from("bash"), 1000, 1000)
    });
    let cat = Arc::new(Process {
        exe: Some(Str::new(&b"/usr/bin/c\xffat"[..])),
        argv: Some(Str::from("cat\0/etc/shadow\0")),
        parent: Some(shell.clone()),
        ..Process::from_event(4001, T0 - 500, 4000, Str::from("cat"), 1000, 1000)
    });
    let paths: [&[u8]; 6] = [
        b"/etc/shadow",
        b"/etc/ld.so.cache",
        b"/tmp/\xff\xfe name\n",
        b"/home/alice/.ssh/id_ed25519",
        b"/proc/self/status",
        b"/",
    ];
    (0..64)
        .map(|i| {
            let p = paths[i as usize % paths.len()];
            let mut e = event(i, "");
            e.path = Str::new(p);
            e.raw_path = if i % 3 == 0 {
                Str::from("rel/../x")
            } else {
                e.path.clone()
            };
            if i % 4 == 1 {
                e.ret = -13;
            }
            if i % 7 == 2 {
                e.comm = Str::new(&b"x\xffy"[..]);
            }
            e.process = match i % 5 {
                0 => None,
                1 | 2 => Some(cat.clone()),
                3 => Some(shell.clone()),
                _ => Some(init.clone()),
            };
            if let Some(p) = &e.process {
                e.pid = p.pid;
                e.euid = Some(if i % 2 == 0 { 0 } else { 1000 });
                e.egid = Some(1000);
                e.user = Some(Str::from("alice"));
            }
            e
        })
        .collect()
}

/// What every consumer of events does with one: rules (with their alert lines) and the errno
/// name.
fn evaluate(engine: &mut open_forensics::rules::Engine<'_>, e: &Event) {
    let _ = errno::name_of_ret(e.ret);
    let _ = open_forensics::rules::access_names(e);
    engine.eval(e, |a| {
        let line = a.to_json_line();
        assert!(
            serde_json::from_str::<Value>(&line).is_ok(),
            "an alert line is not JSON: {line}"
        );
    });
}

/// The rule set events read from damaged segments are evaluated with (the full example rules).
fn eval_rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| {
        RuleSet::load(&[fixtures_dir().join("rules").join("full.yaml")])
            .expect("example rules load")
    })
}
