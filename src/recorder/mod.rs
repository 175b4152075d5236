//! The recorder: `record`'s pipeline, wiring capture to the store, the live rules and the alert
//! outputs.
//!
//! ```text
//! capture::run (this thread)          of-store thread (store_thread::run)
//!   probes → ring → Batch ──queue──▶  decode → reorder window → store::Writer → rules → alerts
//!                                      + loss records, a Supervisor's tick (service)
//! ```
//!
//! The consumer only copies records into batches and hands them over a bounded queue; when the
//! queue is full it waits, leaving records in the kernel ring (backpressure): the only losses are
//! the kernel's (`ringbuf_full`), counted per CPU and recorded in the store. (Segments written
//! before this may hold `queue_full` losses: the user-space drops of earlier versions.)
//!
//! Alerts (the `rules::Alerter` stream: throttled, with summaries) are handed to
//! `alerts::Outputs`, which only enqueues; every second the lines outputs dropped become
//! `alert_dropped:OUTPUT` loss records, and at the end outputs get their grace period before the
//! store is sealed, so what they could not deliver is recorded too.
//!
//! Once per tick, between two events, a [`Supervisor`] (`crate::service`) gets the writer, the
//! counters, the gauges and the outputs' states: retention, health files and SIGHUP reloads
//! happen there, and a reload swaps the rule set at that point, so every event is evaluated by
//! exactly one rule set.

mod identity;
mod losses;
mod priority;
mod reorder;
mod signals;
pub mod stage;
mod stats;
mod store_thread;
mod supervisor;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

use crate::capture::{self, proctable, Batch, Gauges, QUEUE_BATCHES};
use crate::diag::debug;
use crate::rules::RuleSet;
use crate::store::{Uncaptured, Writer};

pub use identity::SENSITIVE_FILES;
pub use priority::boost_priority;
pub use reorder::DEFAULT_REORDER_WINDOW;
pub use signals::{stop_on_signals, HANGUP};
pub use stage::{Sinks, Stage};
pub use stats::{dir_bytes, stats_line};
pub use supervisor::{Counters, Supervisor, Tick};

/// What `record` was asked for, validated.
#[derive(Clone, Debug)]
pub struct Options {
    pub capture: capture::Options,
    pub duration: Option<Duration>,
    pub stats_every: Option<Duration>,
    /// How long events are held to be released in time order (see [`DEFAULT_REORDER_WINDOW`]).
    pub reorder_window: Duration,
}

#[derive(Debug)]
pub struct Summary {
    pub events: u64,
    pub lost: u64,
    pub late: u64,
    pub elapsed: Duration,
    pub bytes_written: u64,
    pub segments_sealed: u64,
    /// The store's hash-chain head after the last seal.
    pub head: String,
    /// Segments whose seal failed (they stay active databases; the next writer seals them).
    pub unsealed: u64,
    /// Lost events and records whose loss record the full disk kept out of the store too.
    pub unstored: u64,
    pub warnings: Vec<String>,
    /// The alert outputs' final counters.
    pub outputs: Vec<crate::alerts::OutputState>,
    /// The retention in force when recording stopped (a SIGHUP may have changed the start's).
    pub retention: Option<crate::store::Retention>,
}

/// Records until `stop` is set or the duration passes, then drains the ring, stores everything
/// and seals the store. Prints one line containing `attached` once every probe is attached.
pub fn record(
    opts: &Options,
    mut writer: Writer,
    rules: Option<RuleSet>,
    alerts: crate::alerts::Outputs,
    stop: &AtomicBool,
    supervisor: Option<Box<dyn Supervisor>>,
) -> anyhow::Result<Summary> {
    if capture::privilege::ensure_tracefs()? {
        debug("mounted tracefs at /sys/kernel/tracing");
    }
    let anchor_ns = capture::clock_anchor_ns();
    writer.set_clock_anchor(anchor_ns);
    writer.start_recording();

    let (tx, rx) = sync_channel::<Batch>(QUEUE_BATCHES);
    let gauges = Arc::new(Gauges::default());
    let store_dir = writer.dir().to_owned();
    let mut parts = Some((writer, rules, alerts, supervisor, rx));
    let mut worker = None;
    // When the store thread started: the recording's start, for `--duration` and the summary.
    let started = Cell::new(Instant::now());
    let on_attached = |a: capture::Attached| -> anyhow::Result<()> {
        let (mut writer, rules, alerts, supervisor, rx) = parts.take().expect("attached once");
        // Before anything is stored: every segment of this recording carries what it lacks.
        writer.set_uncaptured(
            a.coverage
                .iter()
                .filter(|c| !c.captured)
                .map(|c| Uncaptured {
                    what: c.name.to_owned(),
                    why: c.reason.clone().unwrap_or_default(),
                })
                .collect(),
        );
        // The time since the store's last recording, up to now that capture runs, is named.
        writer
            .record_outage(capture::boot_ns().wrapping_add(anchor_ns))
            .context("record the outage before this recording")?;
        // After attaching: a process started since is in a kernel record, one started before
        // is here.
        let passwd = std::path::Path::new("/etc/passwd");
        let mut procs = proctable::ProcTable::new(anchor_ns, std::collections::HashMap::new())
            .reading_users(passwd);
        let mut exe_check = identity::ExeCheck::new();
        procs.judge_images(move |p| exe_check.judge(p));
        procs.snapshot_proc(std::path::Path::new("/proc"), capture::boot_ns() as u64);
        debug(&format!("{} processes running at start", procs.len()));
        started.set(Instant::now());
        let settings = store_thread::Settings {
            anchor_ns,
            reorder_window_ns: i64::try_from(opts.reorder_window.as_nanos()).unwrap_or(i64::MAX),
            stats_every: opts.stats_every,
            started: started.get(),
            supervisor,
            gauges: gauges.clone(),
        };
        let sinks = Sinks {
            writer,
            rules,
            alerts,
            procs,
        };
        let losses = a.losses;
        worker = Some(
            std::thread::Builder::new()
                .name("of-store".into())
                .spawn(move || store_thread::run(rx, sinks, losses, settings))
                .context("start the store thread")?,
        );
        if let Some(notice) = capture::coverage::notice(&a.coverage) {
            eprintln!("{notice}");
        }
        eprintln!(
            "open-forensics: attached {} probes ({}); recording into {}",
            a.probes,
            capture::coverage::captured(&a.coverage),
            store_dir.display()
        );
        Ok(())
    };
    let captured = capture::run(&opts.capture, tx, gauges.clone(), on_attached, || {
        stop.load(Ordering::SeqCst)
            || opts
                .duration
                .is_some_and(|d| Instant::now() >= started.get() + d)
    });
    let outcome = match worker {
        Some(w) => w
            .join()
            .map_err(|_| anyhow!("the store thread panicked"))??,
        None => {
            return Err(captured
                .err()
                .unwrap_or_else(|| anyhow!("capture never attached")))
        }
    };
    captured?;
    let s = outcome.summary;
    Ok(Summary {
        events: s.events,
        lost: s.lost,
        late: outcome.late,
        elapsed: started.get().elapsed(),
        bytes_written: s.sealed_bytes,
        segments_sealed: s.segments_sealed,
        head: s.head,
        unsealed: s.unsealed,
        unstored: s.unstored,
        warnings: s.warnings,
        outputs: outcome.outputs,
        retention: outcome.retention,
    })
}
