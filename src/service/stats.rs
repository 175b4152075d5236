//! Health files: `--stats-file PATH` (one JSON object) and a Prometheus text-format file
//! (`PATH.prom`, or `--prom-file`) for node_exporter's textfile collector, both rewritten
//! atomically (a temporary file in the same directory, renamed over the old one: a reader sees
//! the old or the new file, never half of one). A link at PATH, or a directory another user
//! controls on the way, is refused (`safe_path`): at start (exit 2) and at every write.
//!
//! Both are mode 0644: they hold counts and rule names, no recorded path, and the collector
//! usually runs as another user.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::safe_path::{self, PathError, SafeDir};

/// One alert output's state. The alert-delivery side fills this in; until it does, the one
/// output is the alerts stream itself (`stdout` or `file`), with what was written to it.
#[derive(Clone, Debug, Serialize)]
pub struct OutputState {
    pub name: String,
    /// `ok`, `degraded`, `retrying`, `down`.
    pub state: String,
    /// Why it is not `ok`, when it dropped lines lately.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub sent: u64,
    pub dropped: u64,
    pub queued: u64,
}

impl From<&crate::alerts::OutputState> for OutputState {
    fn from(o: &crate::alerts::OutputState) -> OutputState {
        OutputState {
            name: o.name.clone(),
            state: o.state.as_str().into(),
            reason: o.reason.clone(),
            sent: o.sent,
            dropped: o.dropped,
            queued: o.queued,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Ring {
    pub size_bytes: u64,
    /// The most the ring held when the consumer started a batch during the interval.
    pub used_bytes: u64,
    pub fill: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Queue {
    pub batches: u64,
    pub capacity: u64,
}

/// What `--stats-file` holds.
#[derive(Clone, Debug, Serialize)]
pub struct Health {
    pub time: String,
    pub uptime_s: f64,
    pub interval_s: f64,
    pub events: u64,
    /// Events stored per second over the last interval (not since the start).
    pub events_per_s: f64,
    pub lost: u64,
    pub lost_by_reason: BTreeMap<String, u64>,
    pub ring: Ring,
    pub queue: Queue,
    pub alerts: u64,
    pub alerts_by_rule: BTreeMap<String, u64>,
    pub outputs: Vec<OutputState>,
    /// Bytes of sealed segment files written.
    pub bytes_written: u64,
    pub segments_sealed: u64,
    /// Bytes of the files in the store directory.
    pub store_bytes: u64,
    /// What retention removed since the start.
    pub pruned_segments: u64,
    pub pruned_events: u64,
}

impl Health {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("Health serializes") + "\n"
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
            out.push_str(&format!(
                "# HELP open_forensics_{name} {help}\n# TYPE open_forensics_{name} {kind}\n"
            ));
            for (labels, v) in samples {
                out.push_str(&format!("open_forensics_{name}{labels} {v}\n"));
            }
        };
        let one = |v: u64| vec![(String::new(), v as f64)];
        metric(
            "events_total",
            "counter",
            "Events stored.",
            &one(self.events),
        );
        metric(
            "events_per_second",
            "gauge",
            "Events stored per second over the last interval.",
            &[(String::new(), self.events_per_s)],
        );
        let by = |label: &str, m: &BTreeMap<String, u64>| -> Vec<(String, f64)> {
            m.iter()
                .map(|(k, v)| (format!("{{{label}=\"{}\"}}", escape(k)), *v as f64))
                .collect()
        };
        metric(
            "lost_total",
            "counter",
            "Events lost, by reason.",
            &by("reason", &self.lost_by_reason),
        );
        metric(
            "ring_size_bytes",
            "gauge",
            "Size of the kernel ring buffer.",
            &one(self.ring.size_bytes),
        );
        metric(
            "ring_used_bytes",
            "gauge",
            "Most bytes waiting in the kernel ring during the last interval.",
            &one(self.ring.used_bytes),
        );
        metric(
            "queue_batches",
            "gauge",
            "Batches waiting for the store thread.",
            &one(self.queue.batches),
        );
        metric(
            "alerts_total",
            "counter",
            "Alerts raised, by rule.",
            &by("rule", &self.alerts_by_rule),
        );
        for (name, help, get) in [
            (
                "output_sent_total",
                "Alerts an output delivered.",
                (|o: &OutputState| o.sent) as fn(&OutputState) -> u64,
            ),
            (
                "output_dropped_total",
                "Alerts an output dropped.",
                |o: &OutputState| o.dropped,
            ),
            (
                "output_queued",
                "Alerts waiting in an output's queue.",
                |o: &OutputState| o.queued,
            ),
        ] {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let samples: Vec<(String, f64)> = self
                .outputs
                .iter()
                .map(|o| {
                    (
                        format!(
                            "{{output=\"{}\",state=\"{}\"}}",
                            escape(&o.name),
                            escape(&o.state)
                        ),
                        get(o) as f64,
                    )
                })
                .collect();
            metric(name, kind, help, &samples);
        }
        metric(
            "bytes_written_total",
            "counter",
            "Bytes of sealed segments written.",
            &one(self.bytes_written),
        );
        metric(
            "store_bytes",
            "gauge",
            "Bytes of the files in the store.",
            &one(self.store_bytes),
        );
        metric(
            "pruned_events_total",
            "counter",
            "Events removed by retention.",
            &one(self.pruned_events),
        );
        out
    }
}

/// A label value, escaped as the text format wants (backslash, double quote, newline).
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Where the health files go.
#[derive(Clone, Debug)]
pub struct HealthFiles {
    pub json: Option<PathBuf>,
    pub prom: Option<PathBuf>,
}

impl HealthFiles {
    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.json.iter().chain(&self.prom)
    }

    /// Refuses, before recording starts, a health file that is a link or whose directory is
    /// missing or controlled by another user.
    pub fn check(&self) -> Result<(), PathError> {
        for p in self.paths() {
            let (dir, name) = SafeDir::parent_of(p).map_err(|e| match e {
                PathError::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                    PathError::Refused {
                        path,
                        reason: "its directory does not exist (health files are replaced, not created with their directory)".into(),
                    }
                }
                e => e,
            })?;
            if dir.is_link(&name) {
                return Err(PathError::Refused {
                    path: p.clone(),
                    reason: "a symbolic link (links are never followed here)".into(),
                });
            }
        }
        Ok(())
    }

    pub fn write(&self, h: &Health) -> Result<(), PathError> {
        if let Some(p) = &self.json {
            safe_path::replace(p, h.to_json().as_bytes(), MODE)?;
        }
        if let Some(p) = &self.prom {
            safe_path::replace(p, h.to_prometheus().as_bytes(), MODE)?;
        }
        Ok(())
    }
}

/// Counts and rule names, no recorded path; the collector usually runs as another user.
const MODE: u32 = 0o644;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Health {
        Health {
            time: "t".into(),
            uptime_s: 1.0,
            interval_s: 1.0,
            events: 10,
            events_per_s: 5.0,
            lost: 3,
            lost_by_reason: [("ringbuf_full".to_owned(), 3)].into(),
            ring: Ring {
                size_bytes: 16,
                used_bytes: 4,
                fill: 0.25,
            },
            queue: Queue {
                batches: 0,
                capacity: 128,
            },
            alerts: 2,
            alerts_by_rule: [("a\"b\\c\nd".to_owned(), 2)].into(),
            outputs: vec![OutputState {
                name: "stdout".into(),
                state: "ok".into(),
                reason: None,
                sent: 2,
                dropped: 0,
                queued: 0,
            }],
            bytes_written: 100,
            segments_sealed: 1,
            store_bytes: 200,
            pruned_segments: 0,
            pruned_events: 0,
        }
    }

    #[test]
    fn prometheus_text_escapes_labels_and_types_every_metric() {
        let text = sample().to_prometheus();
        assert!(text.contains("open_forensics_alerts_total{rule=\"a\\\"b\\\\c\\nd\"} 2\n"));
        assert!(text.contains("open_forensics_lost_total{reason=\"ringbuf_full\"} 3\n"));
        assert!(
            text.contains("open_forensics_output_sent_total{output=\"stdout\",state=\"ok\"} 2\n")
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} has no TYPE line"
            );
        }
    }

    #[test]
    fn health_files_are_replaced_whole_and_links_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        let p = d.path().join("stats.json");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let files = HealthFiles {
            json: Some(p.clone()),
            prom: None,
        };
        assert!(matches!(files.check(), Err(PathError::Refused { .. })));
        assert!(matches!(
            files.write(&sample()),
            Err(PathError::Refused { .. })
        ));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, "old").unwrap();
        files.check().unwrap();
        files.write(&sample()).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["events_per_s"], 5.0);
        assert_eq!(v["outputs"][0]["name"], "stdout");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
}
