//! How complete an answer is, for the range it answered: events lost (by reason), times no
//! recorder ran (outages), ranges pruned on purpose, capabilities the recorder lacked, and alert
//! lines live outputs dropped. Nothing said means complete: stderr stays quiet (and a paged
//! answer unbroken) when it is. Each statement has a line of prose and a JSON object, for answers
//! that are JSON lines.

use serde_json::{json, Value};

use crate::store::{Loss, ScanStats, TimeRange, OUTAGE};
use crate::timespec::format_ts;

/// One statement about an answer.
pub struct Statement {
    /// `{"warning": …}` or `{"notice": …}` with its figures.
    pub json: Value,
    /// The same as one line of prose (without the `open-forensics: ` prefix).
    pub text: String,
}

/// Everything there is to say about the completeness of an answer over `range`.
pub fn statements(stats: &ScanStats, range: &TimeRange) -> Vec<Statement> {
    let mut out = Vec::new();
    // Alert lines an output dropped while recording: every event is here (a replay shows those
    // alerts), so the answer is complete; said apart, never as lost events.
    let drops: Vec<&Loss> = stats.alert_drops().collect();
    if let Some((from, to, dropped)) = span(&drops) {
        out.push(Statement {
            json: json!({
                "notice": "alerts_dropped",
                "dropped": dropped,
                "loss_records": drops.len(),
                "from": from,
                "to": to,
            }),
            text: format!("notice: live alert outputs dropped {dropped} alert(s) between {from} and {to} (the events are all stored; replay shows those alerts)"),
        });
    }
    let (outages, lost): (Vec<&Loss>, Vec<&Loss>) =
        stats.event_losses().partition(|l| l.reason == OUTAGE);
    if let Some((from, to, count)) = span(&lost) {
        out.push(Statement {
            json: json!({
                "warning": "incomplete",
                "lost": count,
                "loss_records": lost.len(),
                "from": from,
                "to": to,
            }),
            text: format!(
                "warning: incomplete: {count} events were lost between {from} and {to} ({} loss records in the range{}{})",
                lost.len(),
                describe_range(range),
                reasons(&lost),
            ),
        });
    }
    for (from, to) in merged(&outages) {
        let (from, to) = (format_ts(from), format_ts(to));
        out.push(Statement {
            json: json!({"warning": "outage", "from": from, "to": to}),
            text: format!("warning: outage: recorder not running from {from} to {to} (nothing was captured then)"),
        });
    }
    // A capability the recorder lacked on its kernel: nothing of that kind is in the answer, not
    // because nothing happened.
    for g in &stats.uncaptured {
        let (from, to) = (format_ts(g.from_ns), format_ts(g.to_ns));
        let text = format!("{} not captured: {}", g.gap.what, g.gap.why);
        out.push(Statement {
            json: json!({
                "warning": "not_captured",
                "what": g.gap.what,
                "why": g.gap.why,
                "text": text,
                "from": from,
                "to": to,
            }),
            text: format!(
                "warning: {text} (recorded between {from} and {to}; the answer holds none of them)"
            ),
        });
    }
    if !stats.pruned.is_empty() {
        let from = format_ts(stats.pruned.iter().map(|p| p.from_ns).min().unwrap_or(0));
        let to = format_ts(stats.pruned.iter().map(|p| p.to_ns).max().unwrap_or(0));
        let segments: u64 = stats.pruned.iter().map(|p| p.segments).sum();
        let events = stats.pruned_events();
        out.push(Statement {
            json: json!({
                "warning": "pruned",
                "events": events,
                "segments": segments,
                "from": from,
                "to": to,
            }),
            text: format!("warning: pruned: {events} events in {segments} segment(s) between {from} and {to} were deleted on purpose (prune or retention); the answer holds nothing from them"),
        });
    }
    out
}

/// (first start, last end, total count) of some loss records, times formatted.
fn span(ls: &[&Loss]) -> Option<(String, String, u64)> {
    let from = ls.iter().map(|l| l.start_ns).min()?;
    let to = ls.iter().map(|l| l.end_ns).max()?;
    Some((
        format_ts(from),
        format_ts(to),
        ls.iter().map(|l| l.count).sum(),
    ))
}

/// Overlapping (or touching) ranges joined, in time order.
fn merged(ls: &[&Loss]) -> Vec<(i64, i64)> {
    let mut r: Vec<(i64, i64)> = ls.iter().map(|l| (l.start_ns, l.end_ns)).collect();
    r.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (s, e) in r {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `; by reason: disk_full 12, ringbuf_full 3`, when the reasons are worth naming.
fn reasons(ls: &[&Loss]) -> String {
    let mut by: std::collections::BTreeMap<&str, u64> = Default::default();
    for l in ls {
        *by.entry(l.reason.as_str()).or_default() += l.count;
    }
    let parts: Vec<String> = by.iter().map(|(r, n)| format!("{r} {n}")).collect();
    format!("; by reason: {}", parts.join(", "))
}

fn describe_range(r: &TimeRange) -> String {
    match (r.since, r.until) {
        (None, None) => String::new(),
        (s, u) => format!(
            " {}..{}",
            s.map(format_ts).unwrap_or_default(),
            u.map(format_ts).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(start_ns: i64, end_ns: i64, count: u64, reason: &str) -> Loss {
        Loss {
            start_ns,
            end_ns,
            count,
            reason: reason.into(),
        }
    }

    fn texts(stats: &ScanStats) -> Vec<String> {
        statements(stats, &TimeRange::default())
            .into_iter()
            .map(|s| s.text)
            .collect()
    }

    /// An outage counts no event: it is named as the recorder not running, never as "0 events
    /// were lost", and it makes the answer incomplete.
    #[test]
    fn an_outage_is_named_apart_from_lost_events() {
        let stats = ScanStats {
            losses: vec![
                loss(1_000_000_000, 5_000_000_000, 0, OUTAGE),
                loss(4_000_000_000, 6_000_000_000, 0, OUTAGE),
            ],
            ..ScanStats::default()
        };
        let t = texts(&stats);
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(t[0].starts_with("warning: outage: recorder not running from 1970-01-01T00:00:01"));
        assert!(t[0].contains("to 1970-01-01T00:00:06"), "{t:?}");
    }

    #[test]
    fn losses_say_their_reasons_and_a_complete_answer_says_nothing() {
        let stats = ScanStats {
            losses: vec![loss(1, 2, 7, "disk_full"), loss(2, 3, 3, "ringbuf_full")],
            ..ScanStats::default()
        };
        let t = texts(&stats);
        assert!(t[0].contains("10 events were lost"), "{t:?}");
        assert!(
            t[0].contains("by reason: disk_full 7, ringbuf_full 3"),
            "{t:?}"
        );
        assert!(texts(&ScanStats::default()).is_empty());
    }
}
