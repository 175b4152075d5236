//! Alert delivery: stdout, files, syslog, HTTP endpoints and programs, in any combination.
//!
//! The recorder's pipeline thread hands every alert line to [`Outputs::send`], which only
//! enqueues: each output has its own thread and a bounded queue (`--alert-queue`, 10,000 lines).
//! When an output's queue is full (it is slow, or dead and retrying) the line is dropped *for that
//! output*, counted, and the count becomes a loss record (`alert_dropped:<output>`) in the store.
//! Capture and storage never wait for an output: a dead syslog, an HTTP endpoint that never
//! answers or a program that never reads costs at most its queue's memory. Replaying the store
//! (`open-forensics replay`) regenerates every alert, dropped or not.
//!
//! Delivery is at least once where the transport lets us know: a batch that failed is retried
//! (exponential backoff from 100 ms to 30 s with jitter) until it is delivered, the output's queue
//! overflows meanwhile (new lines are dropped and counted, the retried batch is not), or the
//! recorder stops. On stop each output gets [`GRACE`] to deliver what it holds; what is still
//! queued then is counted as dropped. Per output:
//! - `stdout` and files: one `write` per batch; a failed write is retried whole. A closed stdout
//!   (`EPIPE`) is `down` for good: its lines are dropped and counted. Files are opened for
//!   appending (mode 0600 when created), and reopened on SIGUSR1 (logrotate: rename, then signal;
//!   every line lands in exactly one of the two files).
//! - syslog: one RFC 5424 datagram per alert to a local socket (`/dev/log`); see `syslog.rs`.
//! - HTTP: a POST per batch of up to `--http-batch` lines; see `http.rs`.
//! - program: lines on its stdin, restarted with backoff when it exits; see `program.rs`.

mod file;
mod http;
mod program;
mod syslog;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::io::IsTerminal;

use crate::output::alert_line::{self, LineStyle};
use crate::output::clock::Clock;
use crate::output::colour::ColorWhen;
use crate::output::foreign::LineFormat;
use crate::rules::{Raised, Severity};

pub use http::check_url as check_http_url;
pub use syslog::Facility;

/// How long outputs get, when the recorder stops, to deliver what they hold.
pub const GRACE: Duration = Duration::from_secs(5);
/// The default capacity of each output's queue, in alert lines.
pub const DEFAULT_QUEUE: usize = 10_000;
/// The longest wait between two attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Consecutive failed attempts after which an output is `down` rather than `retrying`.
const DOWN_AFTER: u32 = 5;
/// How long an output that dropped lines stays `degraded` (longer than health files' default
/// 10 s interval and a scraper's minute, so no reader of them misses it).
pub const DEGRADED_FOR: Duration = Duration::from_secs(60);

/// Where alerts go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Stdout,
    File(PathBuf),
    Syslog {
        socket: PathBuf,
        facility: Facility,
    },
    Http {
        url: String,
        batch: usize,
        timeout: Duration,
        format: HttpFormat,
    },
    /// A shell command (`/bin/sh -c`).
    Program(String),
}

/// The body of an HTTP batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpFormat {
    /// One alert per line (`application/x-ndjson`).
    Ndjson,
    /// A JSON array of alerts (`application/json`).
    Array,
}

impl Target {
    /// The output's name in `--stats`, states and loss records.
    pub fn name(&self) -> String {
        let n = match self {
            Target::Stdout => "stdout".to_owned(),
            Target::File(p) => format!("file:{}", p.display()),
            Target::Syslog { socket, .. } => format!("syslog:{}", socket.display()),
            Target::Http { url, .. } => format!("http:{url}"),
            Target::Program(c) => format!("program:{c}"),
        };
        // Names go into loss records and status lines: keep them short and on one line.
        let n: String = n
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        match n.char_indices().nth(120) {
            Some((i, _)) => format!("{}…", &n[..i]),
            None => n,
        }
    }
}

/// An output's health, for `--stats` and the stats file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The last attempt succeeded (or none was needed yet).
    Ok,
    /// The last attempts failed (fewer than five in a row); retrying with backoff.
    Retrying,
    /// Five attempts in a row failed (about 3 s of trying), or the output is gone for good (a
    /// closed stdout): still retried (unless gone), lines queue and then are dropped.
    Down,
    /// Delivering, but it dropped lines within the last [`DEGRADED_FOR`] (its queue was full:
    /// alerts come faster than it takes them; or it refused lines).
    Degraded,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Retrying => "retrying",
            State::Down => "down",
            State::Degraded => "degraded",
        }
    }

    fn from_u8(v: u8) -> State {
        match v {
            0 => State::Ok,
            1 => State::Retrying,
            _ => State::Down,
        }
    }
}

/// One output's counters, as [`Outputs::states`] returns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputState {
    pub name: String,
    pub state: State,
    /// Lines delivered.
    pub sent: u64,
    /// Lines dropped (queue full, refused for good, or left at stop).
    pub dropped: u64,
    /// Lines waiting in the queue or in the batch being delivered.
    pub queued: u64,
    /// Why it is not `ok`, when it dropped lines lately.
    pub reason: Option<String>,
}

/// One alert line, with what syslog needs to frame it.
#[derive(Clone, Debug)]
pub(crate) struct Msg {
    pub line: Arc<str>,
    /// The alert's one line for a person, when stdout is a terminal (see `output::alert_line`).
    pub text: Option<Arc<str>>,
    pub severity: Severity,
    pub ts_ns: i64,
    pub summary: bool,
}

/// Counters shared between the pipeline (which enqueues) and an output's thread.
#[derive(Default)]
pub(crate) struct Shared {
    state: AtomicU8,
    sent: AtomicU64,
    dropped: AtomicU64,
    /// When a line was last dropped (ns since the epoch; 0: never).
    last_drop_ns: std::sync::atomic::AtomicI64,
    /// In the queue or in the batch being delivered.
    queued: AtomicU64,
    /// Set when the recorder stops: deliver what is held until `deadline`, then give up.
    closing: AtomicBool,
    /// A program output's running instance (0: none).
    child: Arc<std::sync::atomic::AtomicU32>,
}

impl Shared {
    /// `n` lines left the queue. Saturating: `close` may have written off what a stuck thread
    /// held before that thread moves on.
    fn dequeue(&self, n: usize) {
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                Some(q.saturating_sub(n as u64))
            });
    }

    /// `n` lines dropped.
    fn drop_lines(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.last_drop_ns
            .store(crate::timespec::now_ns(), Ordering::Relaxed);
    }

    /// The state to report, and why when lines were dropped within [`DEGRADED_FOR`].
    fn reported(&self) -> (State, Option<String>) {
        let state = State::from_u8(self.state.load(Ordering::Relaxed));
        let last = self.last_drop_ns.load(Ordering::Relaxed);
        let ago =
            Duration::from_nanos(crate::timespec::now_ns().saturating_sub(last).max(0) as u64);
        if last == 0 || ago > DEGRADED_FOR {
            return (state, None);
        }
        let reason = format!(
            "dropped alert lines {}s ago ({} since the start; each drop is a stored loss record, and replay regenerates every alert)",
            ago.as_secs(),
            self.dropped.load(Ordering::Relaxed)
        );
        let state = if state == State::Ok {
            State::Degraded
        } else {
            state
        };
        (state, Some(reason))
    }

    fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    /// Whether the output should give up: the recorder stopped and the grace period is over.
    pub fn expired(&self, deadline: &std::sync::OnceLock<Instant>) -> bool {
        self.closing.load(Ordering::Relaxed) && deadline.get().is_some_and(|d| Instant::now() >= *d)
    }
}

/// What a delivery attempt achieved.
pub(crate) struct Delivery {
    /// The first `done` lines of the batch were delivered.
    pub done: usize,
    pub fail: Option<Fail>,
}

pub(crate) enum Fail {
    /// Try the rest of the batch again after a backoff.
    Retry(String),
    /// Line `done` is refused for good (too large, rejected): drop it, go on with the rest.
    DropOne(String),
    /// The rest of the batch is refused for good.
    DropAll(String),
    /// The output is gone for good (a closed stdout): drop everything from now on.
    Dead(String),
}

impl Delivery {
    pub fn all(n: usize) -> Delivery {
        Delivery {
            done: n,
            fail: None,
        }
    }
}

/// An output's transport. `deliver` is called with batches of at most `max_batch` lines;
/// `idle` when the queue has been empty for a moment (to flush, reap a child, reopen a file).
pub(crate) trait Sink: Send {
    fn max_batch(&self) -> usize {
        256
    }
    fn deliver(&mut self, batch: &[Msg]) -> Delivery;
    fn idle(&mut self) {}
    /// The recorder stops: release what blocks (a program's stdin is closed).
    fn close(&mut self) {}
}

struct Out {
    name: String,
    tx: Option<SyncSender<Msg>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Dropped lines already turned into loss records.
    reported: u64,
}

/// Every configured output. Owned by the pipeline thread.
pub struct Outputs {
    outs: Vec<Out>,
    /// Set when stdout is an output and a terminal: alerts there are one line each.
    lines: Option<LineStyle>,
    deadline: Arc<std::sync::OnceLock<Instant>>,
    /// SIGUSR1 with no file to reopen: said once per signal.
    usr1: Option<Arc<AtomicBool>>,
    /// How each alert line is written (`--alerts-format`).
    format: LineFormat,
}

impl Outputs {
    /// Starts a thread per target. Files are opened (and programs resolved) here, so that a bad
    /// path fails `record` before capture starts; an unreachable syslog or HTTP endpoint does
    /// not (it is retried).
    pub fn start(targets: &[Target], queue: usize) -> anyhow::Result<Outputs> {
        let deadline = Arc::new(std::sync::OnceLock::new());
        let mut outs = Vec::with_capacity(targets.len());
        let has_file = targets.iter().any(|t| matches!(t, Target::File(_)));
        let terminal = std::io::stdout().is_terminal();
        let lines = (terminal && targets.contains(&Target::Stdout)).then(|| LineStyle {
            clock: Clock::live(false),
            colour: ColorWhen::Auto.wanted(terminal),
        });
        for t in targets {
            let shared = Arc::new(Shared::default());
            let sink: Box<dyn Sink> = match t {
                Target::Stdout => Box::new(file::Stdout::new()),
                Target::File(p) => Box::new(file::AlertFile::open(p)?),
                Target::Syslog { socket, facility } => {
                    Box::new(syslog::Syslog::new(socket.clone(), *facility)?)
                }
                Target::Http {
                    url,
                    batch,
                    timeout,
                    format,
                } => Box::new(http::Http::new(
                    url,
                    *batch,
                    *timeout,
                    *format,
                    deadline.clone(),
                )?),
                Target::Program(cmd) => {
                    Box::new(program::Program::new(cmd.clone(), shared.child.clone()))
                }
            };
            let (tx, rx) = sync_channel(queue.max(1));
            let name = t.name();
            let thread = {
                let shared = shared.clone();
                let deadline = deadline.clone();
                let name = name.clone();
                std::thread::Builder::new()
                    .name("of-alerts".into())
                    .spawn(move || worker(sink, rx, &shared, &deadline, &name))?
            };
            outs.push(Out {
                name,
                tx: Some(tx),
                shared,
                thread: Some(thread),
                reported: 0,
            });
        }
        // Without a file, SIGUSR1 still must not kill the recorder (logrotate may send it).
        let usr1 = if has_file {
            None
        } else {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(signal_hook::consts::SIGUSR1, flag.clone())?;
            Some(flag)
        };
        Ok(Outputs {
            outs,
            lines,
            deadline,
            usr1,
            format: LineFormat::Json,
        })
    }

    /// No outputs (no rules). SIGUSR1 is still caught (and said to have nothing to reopen): a
    /// logrotate hook must not kill a recorder.
    pub fn none() -> Outputs {
        let flag = Arc::new(AtomicBool::new(false));
        let usr1 = signal_hook::flag::register(signal_hook::consts::SIGUSR1, flag.clone())
            .ok()
            .map(|_| flag);
        Outputs {
            outs: Vec::new(),
            lines: None,
            deadline: Arc::new(std::sync::OnceLock::new()),
            usr1,
            format: LineFormat::Json,
        }
    }

    /// Alert lines in `format` instead of our own JSON (a terminal still gets one line for a
    /// person).
    pub fn line_format(mut self, format: LineFormat) -> Outputs {
        self.format = format;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.outs.is_empty()
    }

    /// Enqueues one alert (or summary) for every output; never blocks.
    pub fn send(&self, r: &Raised) {
        if self.outs.is_empty() {
            return;
        }
        let msg = Msg {
            line: Arc::from(self.format.raised(r)),
            text: self
                .lines
                .map(|style| Arc::from(alert_line::line(r, &style))),
            severity: r.rule().severity,
            ts_ns: match r {
                Raised::Alert(a) => a.event.ts_ns,
                Raised::Summary(s) => s.ts_ns,
            },
            summary: matches!(r, Raised::Summary(_)),
        };
        for o in &self.outs {
            let Some(tx) = &o.tx else { continue };
            // Counted before the send: the worker may take the line (and decrement) at once.
            o.shared.queued.fetch_add(1, Ordering::Relaxed);
            match tx.try_send(msg.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    o.shared.dequeue(1);
                    o.shared.drop_lines(1);
                }
            }
        }
    }

    /// Name, state and counters of every output, in the order given.
    pub fn states(&self) -> Vec<OutputState> {
        self.outs
            .iter()
            .map(|o| {
                let (state, reason) = o.shared.reported();
                OutputState {
                    name: o.name.clone(),
                    state,
                    sent: o.shared.sent.load(Ordering::Relaxed),
                    dropped: o.shared.dropped.load(Ordering::Relaxed),
                    queued: o.shared.queued.load(Ordering::Relaxed),
                    reason,
                }
            })
            .collect()
    }

    /// Lines dropped per output since the last call (for loss records), outputs with none left
    /// out. Also says, once per SIGUSR1, that there is no alert file to reopen.
    pub fn take_drops(&mut self) -> Vec<(String, u64)> {
        if let Some(f) = &self.usr1 {
            if f.swap(false, Ordering::Relaxed) {
                eprintln!("open-forensics: SIGUSR1: no alert file to reopen");
            }
        }
        let mut out = Vec::new();
        for o in &mut self.outs {
            let d = o.shared.dropped.load(Ordering::Relaxed);
            if d > o.reported {
                out.push((o.name.clone(), d - o.reported));
                o.reported = d;
            }
        }
        out
    }

    /// Stops every output: each gets until `GRACE` from now to deliver what it holds; what is
    /// left then is dropped and counted. Returns the drops not yet taken (for loss records) and
    /// the final states.
    pub fn close_with_states(mut self) -> (Vec<(String, u64)>, Vec<OutputState>) {
        let deadline = Instant::now() + GRACE;
        let _ = self.deadline.set(deadline);
        for o in &mut self.outs {
            o.shared.closing.store(true, Ordering::Relaxed);
            // Disconnects the queue: the worker drains it, then ends.
            o.tx = None;
        }
        let all_done = |outs: &[Out]| {
            outs.iter()
                .all(|o| o.thread.as_ref().is_none_or(|t| t.is_finished()))
        };
        while !all_done(&self.outs) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // A program that never reads blocks its thread in a write: ending it unblocks that.
        for o in &self.outs {
            let pid = o.shared.child.load(Ordering::Relaxed);
            if pid != 0 && o.thread.as_ref().is_some_and(|t| !t.is_finished()) {
                // SAFETY: kill(2) of our own child, still running (its pid is cleared when reaped).
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        let last = Instant::now() + Duration::from_secs(1);
        while !all_done(&self.outs) && Instant::now() < last {
            std::thread::sleep(Duration::from_millis(10));
        }
        for o in &mut self.outs {
            let Some(t) = o.thread.take() else { continue };
            if t.is_finished() {
                let _ = t.join();
            } else {
                // Stuck in a write or a request that has not timed out (a stdout nobody reads):
                // what it holds is counted as dropped, and it is left behind.
                let q = o.shared.queued.swap(0, Ordering::Relaxed);
                o.shared.drop_lines(q);
                eprintln!(
                    "open-forensics: warning: alert output {} did not finish within {}s; {q} alert(s) it held are dropped",
                    o.name,
                    GRACE.as_secs()
                );
            }
        }
        (self.take_drops(), self.states())
    }
}

/// The outputs' part of a `--stats` line: ` alerts: NAME=STATE sent=N dropped=N queued=N; …`.
pub fn stats_text(states: &[OutputState]) -> String {
    if states.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = states
        .iter()
        .map(|s| {
            format!(
                "{}={}{} sent={} dropped={} queued={}",
                s.name,
                s.state.as_str(),
                s.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
                s.sent,
                s.dropped,
                s.queued
            )
        })
        .collect();
    format!(" alerts: {}", parts.join("; "))
}

/// A random delay in [d/2, d] (equal jitter: retries of many recorders do not synchronise).
fn jittered(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let half = d / 2;
    half + Duration::from_nanos(r % (half.as_nanos() as u64 + 1))
}

/// Sleeps up to `d`, waking early when the grace period ends.
fn sleep_unless_expired(d: Duration, shared: &Shared, deadline: &std::sync::OnceLock<Instant>) {
    let until = Instant::now() + d;
    while Instant::now() < until && !shared.expired(deadline) {
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(20)));
    }
}

/// An output's thread: batches from the queue, delivered with retries.
fn worker(
    mut sink: Box<dyn Sink>,
    rx: Receiver<Msg>,
    shared: &Shared,
    deadline: &std::sync::OnceLock<Instant>,
    name: &str,
) {
    let max = sink.max_batch().max(1);
    let mut batch: Vec<Msg> = Vec::with_capacity(max);
    let mut failures = 0u32;
    let mut dead = false;
    let mut warned = false;
    let drop_n = |n: usize| {
        shared.dequeue(n);
        shared.drop_lines(n as u64);
    };
    'outer: loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => batch.push(m),
            Err(RecvTimeoutError::Timeout) => {
                sink.idle();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while batch.len() < max {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut start = 0;
        while start < batch.len() {
            if dead || shared.expired(deadline) {
                drop_n(batch.len() - start);
                break;
            }
            let d = sink.deliver(&batch[start..]);
            let done = d.done.min(batch.len() - start);
            if done > 0 {
                shared.dequeue(done);
                shared.sent.fetch_add(done as u64, Ordering::Relaxed);
            }
            start += done;
            match d.fail {
                None => {
                    failures = 0;
                    shared.set_state(State::Ok);
                }
                Some(Fail::DropOne(why)) => {
                    drop_n(1);
                    start += 1;
                    say_once(&mut warned, name, &why);
                }
                Some(Fail::DropAll(why)) => {
                    drop_n(batch.len() - start);
                    start = batch.len();
                    say_once(&mut warned, name, &why);
                }
                Some(Fail::Dead(why)) => {
                    shared.set_state(State::Down);
                    say_once(&mut warned, name, &why);
                    dead = true;
                }
                Some(Fail::Retry(why)) => {
                    failures += 1;
                    shared.set_state(if failures >= DOWN_AFTER {
                        State::Down
                    } else {
                        State::Retrying
                    });
                    if failures == 1 || failures == DOWN_AFTER {
                        crate::diag::debug(&format!("alert output {name}: {why}; retrying"));
                    }
                    if failures == DOWN_AFTER {
                        eprintln!(
                            "open-forensics: warning: alert output {name} is down ({why}); retrying with backoff, alerts queue and then are dropped (counted)"
                        );
                    }
                    let exp = BACKOFF_MIN.saturating_mul(1 << (failures - 1).min(16));
                    sleep_unless_expired(jittered(exp.min(BACKOFF_MAX)), shared, deadline);
                }
            }
        }
        batch.clear();
        if dead {
            // Drain and count: a dead output keeps no memory.
            while let Ok(_m) = rx.recv() {
                drop_n(1);
                if shared.expired(deadline) {
                    break 'outer;
                }
            }
            break;
        }
    }
    sink.close();
    // Left in the queue after the grace period.
    let mut left = 0;
    while rx.try_recv().is_ok() {
        left += 1;
    }
    drop_n(left);
}

fn say_once(warned: &mut bool, name: &str, why: &str) {
    if !*warned {
        *warned = true;
        eprintln!("open-forensics: warning: alert output {name}: {why} (further problems of this output are counted, not printed)");
    }
}
