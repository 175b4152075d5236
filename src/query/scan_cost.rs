//! What reading an answer cost (`--stats`): segments read and ruled out by their summaries,
//! blocks left undecoded, events decoded and in range, and the time taken. It shows whether a
//! question was narrow enough for the summaries to help, and what the next one should narrow.

use std::time::Duration;

use serde_json::json;

use super::completeness::Statement;
use crate::store::ScanStats;

/// The statement `--stats` adds after an answer.
pub fn statement(stats: &ScanStats, took: Duration) -> Statement {
    let seconds = (took.as_secs_f64() * 1000.0).round() / 1000.0;
    let in_range = stats.segments + stats.segments_skipped;
    Statement {
        json: json!({
            "notice": "scan",
            "segments_read": stats.segments,
            "segments_skipped": stats.segments_skipped,
            "blocks_skipped": stats.blocks_skipped,
            "events_decoded": stats.events_scanned,
            "events_in_range": stats.events_in_range,
            "seconds": seconds,
        }),
        text: format!(
            "scan: read {} of {in_range} segment(s) in the range ({} ruled out by their summaries), \
             left {} block(s) of those undecoded, decoded {} event(s), {} in the range; {seconds:.3} s",
            stats.segments,
            stats.segments_skipped,
            stats.blocks_skipped,
            stats.events_scanned,
            stats.events_in_range,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_counts_what_was_read_and_skipped() {
        let stats = ScanStats {
            segments: 3,
            segments_skipped: 7,
            blocks_skipped: 40,
            events_scanned: 12_000,
            events_in_range: 11_500,
            ..ScanStats::default()
        };
        let s = statement(&stats, Duration::from_millis(1234));
        assert_eq!(s.json["segments_read"], 3);
        assert_eq!(s.json["segments_skipped"], 7);
        assert_eq!(s.json["blocks_skipped"], 40);
        assert_eq!(s.json["events_decoded"], 12_000);
        assert_eq!(s.json["seconds"], 1.234);
        assert!(
            s.text.starts_with("scan: read 3 of 10 segment(s)"),
            "{}",
            s.text
        );
    }
}
