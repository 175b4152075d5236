//! The `--stats` line.

use std::path::Path;
use std::time::Duration;

/// Bytes of the files in the store directory (for `--stats`).
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

pub fn stats_line(events: u64, lost: u64, elapsed: Duration, bytes: u64) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    format!(
        "events={events} lost={lost} events/s={:.0} bytes={bytes} elapsed={:.1}s",
        events as f64 / secs,
        secs
    )
}
