//! Running as a service: the config file, retention while recording, SIGHUP reloads, health
//! files, shell integration and installation. The recorder's store thread calls [`Service`] once
//! per tick (the `recorder::Supervisor` hook), between two events; everything else here
//! runs before recording starts.

pub mod config;
pub mod features;
pub mod install;
pub mod stats;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::recorder::{Supervisor, Tick};
use crate::rules::RuleSet;
use crate::store::Retention;
use stats::{Health, HealthFiles, OutputState, Queue, Ring};

/// What a reload produced: the rules to run from now on, and the retention to keep.
pub struct Reloaded {
    pub rules: Option<RuleSet>,
    pub retention: Retention,
}

/// Re-reads the config file and the rule files (given by the caller: it knows the command line).
pub type Reload = Box<dyn FnMut() -> anyhow::Result<Reloaded> + Send>;

/// How often retention is checked when no segment was sealed meanwhile (for `--retain-age`; a
/// check lists the store, reading every sealed segment's metadata frame, on the store thread).
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// The store thread's supervisor: SIGHUP reloads, retention, health files.
pub struct Service {
    pub retention: Retention,
    pub health: Option<HealthFiles>,
    pub health_every: Duration,
    /// Batches the capture queue holds.
    pub queue_capacity: u64,
    reload: Option<Reload>,
    started: Instant,
    last_retention: Option<(Instant, u64)>,
    last_health: (Instant, u64),
    pruned_segments: u64,
    pruned_events: u64,
    /// Retention could not get the store under its size limit (said once).
    warned_size: bool,
    /// systemd has been told READY=1 (on the first tick: every probe attached, the store open).
    ready: bool,
    last_status: Option<Instant>,
    /// systemd's watchdog (`WatchdogSec=`): pinged every tick, so a wedged store thread gets the
    /// recorder restarted (the next writer seals what it left).
    watchdog: bool,
}

/// Whether systemd asked for watchdog pings (`WATCHDOG_USEC`, for this process if
/// `WATCHDOG_PID` says whom).
fn watchdog_wanted() -> bool {
    let usec = std::env::var("WATCHDOG_USEC")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let pid = std::env::var("WATCHDOG_PID")
        .ok()
        .map(|v| v.parse::<u32>().ok());
    usec.is_some_and(|u| u > 0) && pid.is_none_or(|p| p == Some(std::process::id()))
}

/// How often the service manager's status line (`systemctl status`) is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Tells the service manager (`Type=notify`: `$NOTIFY_SOCKET`) how things stand; a no-op without
/// one, and a failure is not the recorder's problem.
fn notify(state: &[sd_notify::NotifyState]) {
    let _ = sd_notify::notify(false, state);
}

impl Service {
    pub fn new(retention: Retention, reload: Option<Reload>) -> Service {
        let now = Instant::now();
        Service {
            retention,
            health: None,
            health_every: Duration::from_secs(10),
            queue_capacity: 0,
            reload,
            started: now,
            last_retention: None,
            last_health: (now, 0),
            pruned_segments: 0,
            pruned_events: 0,
            warned_size: false,
            ready: false,
            last_status: None,
            watchdog: watchdog_wanted(),
        }
    }

    fn reload(&mut self) -> Option<Option<RuleSet>> {
        let reload = self.reload.as_mut()?;
        let mut state = vec![sd_notify::NotifyState::Reloading];
        // systemd 253+ (Type=notify-reload) wants the time with RELOADING=1.
        if let Ok(t) = sd_notify::NotifyState::monotonic_usec_now() {
            state.push(t);
        }
        notify(&state);
        let result = reload();
        notify(&[sd_notify::NotifyState::Ready]);
        match result {
            Ok(r) => {
                eprintln!(
                    "open-forensics: SIGHUP: reloaded: {} rule(s) in force from the next event{}",
                    r.rules.as_ref().map_or(0, |s| s.rules().len()),
                    if r.retention == self.retention {
                        String::new()
                    } else {
                        format!("; retention now {}", describe(&r.retention))
                    }
                );
                self.retention = r.retention;
                self.warned_size = false;
                Some(r.rules)
            }
            Err(e) => {
                eprintln!(
                    "open-forensics: SIGHUP: reload failed, the running rules and settings stay: {e:#}"
                );
                None
            }
        }
    }

    fn retain(&mut self, t: &mut Tick<'_>) -> anyhow::Result<()> {
        if self.retention.is_empty() {
            return Ok(());
        }
        let sealed = t.writer.summary().segments_sealed;
        let due = match self.last_retention {
            None => true,
            Some((at, s)) => s != sealed || at.elapsed() >= RETENTION_EVERY,
        };
        if !due {
            return Ok(());
        }
        self.last_retention = Some((Instant::now(), sealed));
        match t.writer.retain(&self.retention, t.now_ns) {
            Ok(Some(r)) => {
                self.pruned_segments += r.segments;
                self.pruned_events += r.events;
                report_removal(&r);
            }
            Ok(None) => {}
            // Retention failing must not stop recording: say so, try again next time.
            Err(e) => eprintln!("open-forensics: warning: retention: {e}"),
        }
        if let Some(max) = self.retention.max_bytes {
            let bytes = crate::recorder::dir_bytes(t.writer.dir());
            if bytes > max && !self.warned_size {
                self.warned_size = true;
                eprintln!(
                    "open-forensics: warning: retention: the store holds {bytes} bytes, over --retain-size {max}, with nothing sealed left to remove (the active segment is never removed: lower --max-bytes or --max-age)"
                );
            }
        }
        Ok(())
    }

    fn health(&mut self, t: &Tick<'_>) {
        let Some(files) = &self.health else { return };
        let (at, events_then) = self.last_health;
        let interval = at.elapsed();
        if interval < self.health_every {
            return;
        }
        let s = t.writer.summary();
        self.last_health = (Instant::now(), s.events);
        let size = t.gauges.ring_size.load(Ordering::Relaxed);
        let used = t.gauges.take_ring_peak();
        let alerts: u64 = t.counters.alerts_by_rule.values().sum();
        let h = Health {
            time: crate::timespec::format_ts(t.now_ns),
            uptime_s: self.started.elapsed().as_secs_f64(),
            interval_s: interval.as_secs_f64(),
            events: s.events,
            events_per_s: (s.events - events_then) as f64 / interval.as_secs_f64().max(1e-9),
            lost: s.lost,
            lost_by_reason: lost_by_reason(t, s.lost),
            ring: Ring {
                size_bytes: size,
                used_bytes: used,
                fill: if size == 0 {
                    0.0
                } else {
                    used as f64 / size as f64
                },
            },
            queue: Queue {
                batches: t.gauges.queued.load(Ordering::Relaxed),
                capacity: self.queue_capacity,
            },
            alerts,
            alerts_by_rule: t.counters.alerts_by_rule.clone(),
            outputs: t.outputs.iter().map(OutputState::from).collect(),
            bytes_written: s.sealed_bytes,
            segments_sealed: s.segments_sealed,
            store_bytes: crate::recorder::dir_bytes(t.writer.dir()),
            pruned_segments: self.pruned_segments,
            pruned_events: self.pruned_events,
        };
        if let Err(e) = files.write(&h) {
            eprintln!("open-forensics: warning: writing the health files: {e}");
        }
    }
}

/// The pipeline's losses by reason, plus what the store itself dropped (disk full).
fn lost_by_reason(t: &Tick<'_>, total: u64) -> std::collections::BTreeMap<String, u64> {
    let mut m: std::collections::BTreeMap<String, u64> = t
        .counters
        .lost_by_reason
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    let counted: u64 = m.values().sum();
    if total > counted {
        m.insert(crate::store::DISK_FULL.into(), total - counted);
    }
    m
}

/// One stderr line per retention removal.
pub fn report_removal(r: &crate::store::PrunedRange) {
    eprintln!(
        "open-forensics: retention ({}): removed {} segment(s), {} events, {} .. {}",
        r.by,
        r.segments,
        r.events,
        crate::timespec::format_ts(r.from_ns),
        crate::timespec::format_ts(r.to_ns)
    );
}

fn describe(r: &Retention) -> String {
    let mut parts = Vec::new();
    if let Some(b) = r.max_bytes {
        parts.push(format!("--retain-size {b}"));
    }
    if let Some(a) = r.max_age {
        parts.push(format!("--retain-age {}s", a.as_secs()));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

impl Service {
    fn status(&mut self, t: &Tick<'_>) {
        if self
            .last_status
            .is_some_and(|at| at.elapsed() < STATUS_EVERY)
        {
            return;
        }
        self.last_status = Some(Instant::now());
        let s = t.writer.summary();
        let alerts: u64 = t.counters.alerts_by_rule.values().sum();
        let line = format!(
            "recording: {} events, {} lost, {} alerts, {} segment(s) sealed",
            s.events, s.lost, alerts, s.segments_sealed
        );
        if !self.ready {
            self.ready = true;
            notify(&[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(&line),
            ]);
        } else {
            notify(&[sd_notify::NotifyState::Status(&line)]);
        }
    }
}

impl Supervisor for Service {
    fn retention(&self) -> Option<Retention> {
        Some(self.retention.clone())
    }

    fn tick(&mut self, mut t: Tick<'_>) -> anyhow::Result<Option<Option<RuleSet>>> {
        self.status(&t); // READY=1 on the first tick, before any other notification
        if self.watchdog {
            notify(&[sd_notify::NotifyState::Watchdog]);
        }
        let swap = if crate::recorder::HANGUP.swap(false, Ordering::SeqCst) {
            match self.reload.is_some() {
                true => self.reload(),
                false => {
                    eprintln!("open-forensics: SIGHUP: nothing to reload; still recording");
                    None
                }
            }
        } else {
            None
        };
        self.retain(&mut t)?;
        self.health(&t);
        Ok(swap)
    }
}

/// `512M`, `10G`, `1T` (powers of 1024; `KiB`, `MB`… are accepted too), or plain bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected a number and a unit (512M, 10G)"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {unit:?} (use K, M, G, T)"
            ))
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("invalid size {s:?}: too large"))
}

/// The `--stats-file` companion for node_exporter: `--prom-file`, else `PATH.prom`.
pub fn prom_path(stats_file: &std::path::Path, prom: Option<PathBuf>) -> PathBuf {
    prom.unwrap_or_else(|| {
        let mut p = stats_file.as_os_str().to_owned();
        p.push(".prom");
        PathBuf::from(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("10X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("99999999999T")
            .unwrap_err()
            .contains("too large"));
    }
}
