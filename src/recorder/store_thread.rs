//! The `of-store` thread: batches in, events stored and evaluated, losses recorded, a supervisor
//! told every tick; at the end everything held is released and the store sealed.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::identity::Watched;
use super::losses::{record_alert_drops, LossTracker};
use super::stage::{send, Emitter, Sinks, Stage};
use super::stats::{dir_bytes, stats_line};
use super::supervisor::{Supervisor, Tick};
use crate::alerts::OutputState;
use crate::capture::{Batch, Gauges, KernelLosses};
use crate::rules::Alerter;
use crate::store::WriterSummary;

/// How often losses are read, the writer ticked and alerts flushed.
const TICK: Duration = Duration::from_secs(1);

pub struct Settings {
    pub anchor_ns: i64,
    /// See [`super::DEFAULT_REORDER_WINDOW`].
    pub reorder_window_ns: i64,
    pub stats_every: Option<Duration>,
    pub started: Instant,
    /// Told every tick (retention, health files, SIGHUP reloads: see `crate::service`).
    pub supervisor: Option<Box<dyn Supervisor>>,
    pub gauges: Arc<Gauges>,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub summary: WriterSummary,
    /// Events that arrived after later ones had been released (stored out of order).
    pub late: u64,
    /// The alert outputs' final counters.
    pub outputs: Vec<OutputState>,
    /// The supervisor's retention at the end ([`Supervisor::retention`]).
    pub retention: Option<crate::store::Retention>,
}

/// Runs until the consumer hangs up, then releases everything held, records the last losses and
/// seals the store.
pub fn run(
    rx: Receiver<Batch>,
    sinks: Sinks,
    losses: KernelLosses,
    mut settings: Settings,
) -> anyhow::Result<Outcome> {
    let anchor = settings.anchor_ns;
    let now_ns = || crate::capture::boot_ns().wrapping_add(anchor);
    let mut stage = Stage::new(sinks, anchor, settings.reorder_window_ns)?;
    let mut drops_since = now_ns();
    let mut loss = LossTracker::new(losses, now_ns());
    let mut last_tick = Instant::now();
    let mut last_stats = Instant::now();
    loop {
        match rx.recv_timeout(TICK / 4) {
            Ok(batch) => {
                settings.gauges.queued.fetch_sub(1, Ordering::Relaxed);
                stage.take(&batch)?;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            let malformed = std::mem::take(&mut stage.malformed);
            let em = &mut stage.em;
            loss.poll(&mut em.writer, &mut em.counters, malformed, now_ns())?;
            em.procs.sweep(now_ns());
            em.writer.tick().context("commit to the store")?;
            for w in em.writer.take_warnings() {
                eprintln!("open-forensics: warning: {w}");
            }
            if let Some(sup) = settings.supervisor.as_mut() {
                let tick = Tick {
                    writer: &mut em.writer,
                    counters: &em.counters,
                    gauges: &settings.gauges,
                    outputs: em.alerts.states(),
                    now_ns: now_ns(),
                };
                // The rule-swap point: between two events, so each is evaluated exactly once.
                if let Some(rules) = sup.tick(tick)? {
                    // Windows the old set throttled are summarised now: a reload loses no count.
                    if let Some(old) = em.engine.as_mut() {
                        let (alerts, by_rule) = (&em.alerts, &mut em.counters.alerts_by_rule);
                        old.finish(|r| send(alerts, by_rule, r));
                    }
                    em.watched = Watched::for_rules(rules.as_ref());
                    em.engine = rules.map(|r| Alerter::shared(Arc::new(r)));
                    em.host_table = u64::MAX;
                }
            } else if super::HANGUP.swap(false, Ordering::SeqCst) {
                eprintln!("open-forensics: SIGHUP: nothing to reload; still recording");
            }
            record_alert_drops(
                &mut em.writer,
                em.alerts.take_drops(),
                &mut drops_since,
                now_ns(),
            )?;
            if let Some(every) = settings.stats_every {
                if last_stats.elapsed() >= every {
                    last_stats = Instant::now();
                    let s = em.writer.summary();
                    eprintln!(
                        "open-forensics: stats: {}{}",
                        stats_line(
                            s.events,
                            s.lost,
                            settings.started.elapsed(),
                            dir_bytes(em.writer.dir())
                        ),
                        crate::alerts::stats_text(&em.alerts.states())
                    );
                }
            }
        }
    }
    stage.release_all()?;
    let (mut em, late, malformed) = (stage.em, stage.reorder.late, stage.malformed);
    loss.poll(&mut em.writer, &mut em.counters, malformed, now_ns())?;
    let Emitter {
        mut writer, alerts, ..
    } = em;
    // Outputs get their grace period; what they could not deliver is recorded as a loss.
    let drops = alerts.close_with_states();
    record_alert_drops(&mut writer, drops.0, &mut drops_since, now_ns())?;
    let summary = writer.close().context("seal the store")?;
    Ok(Outcome {
        summary,
        late,
        outputs: drops.1,
        retention: settings.supervisor.as_ref().and_then(|s| s.retention()),
    })
}
