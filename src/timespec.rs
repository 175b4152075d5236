//! Time: the one timestamp format of lines and tables (RFC3339 with nanoseconds), and time
//! arguments: RFC3339 (`2026-11-24T16:00:00Z`) or a duration back from now (`15m`, `2h`, `7d`).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC3339, UTC, always nine fractional digits: fixed width, so lines sort and compare as text.
pub fn format_ts(ts_ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ts_ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parses an RFC3339 timestamp into nanoseconds since the epoch.
pub fn parse_ts(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()?
        .with_timezone(&Utc)
        .timestamp_nanos_opt()
}

/// Parses a time argument into ns since the epoch, relative ones against `now_ns`.
pub fn parse_time(s: &str, now_ns: i64) -> Result<i64, String> {
    if let Some(ts) = parse_ts(s) {
        return Ok(ts);
    }
    let d = parse_duration(s).map_err(|e| {
        if e.contains("too large") {
            e
        } else {
            format!(
            "invalid time {s:?}: expected RFC3339 (2026-11-24T16:00:00Z) or a duration ago (30s, 15m, 2h, 7d)"
        )
        }
    })?;
    // A duration back past what i64 nanoseconds hold (about 1677) names no time.
    i64::try_from(d.as_nanos())
        .ok()
        .and_then(|d| now_ns.checked_sub(d))
        .ok_or_else(|| {
            format!("time {s:?} is too large: a duration ago must reach no further back than 1677")
        })
}

/// `500ms`, `30s`, `15m`, `2h`, `7d`, `1w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|e: std::num::ParseIntError| {
        if *e.kind() == std::num::IntErrorKind::PosOverflow {
            too_large(s)
        } else {
            format!("invalid duration {s:?}: expected a number and a unit (30s, 15m, 2h, 7d)")
        }
    })?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {unit:?} (use ms, s, m, h, d, w)"
            ))
        }
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| too_large(s))
}

fn too_large(s: &str) -> String {
    format!("duration {s:?} is too large")
}

pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute() {
        let now = 10_000 * 1_000_000_000;
        assert_eq!(parse_time("15m", now).unwrap(), now - 900 * 1_000_000_000);
        assert_eq!(
            parse_time("7d", now).unwrap(),
            now - 7 * 86_400 * 1_000_000_000
        );
        assert_eq!(
            parse_time("1970-01-01T00:00:02Z", now).unwrap(),
            2_000_000_000
        );
        assert!(parse_time("yesterday", now)
            .unwrap_err()
            .contains("RFC3339"));
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    }

    /// Issue #25 item 9: `--since 30000000000000000w` wrapped to a time after now, and
    /// `18446744073709551615s` truncated: both answered nothing, exit 0.
    #[test]
    fn huge_durations_are_too_large_not_wrapped() {
        let now = now_ns();
        for s in [
            "30000000000000000w",
            "18446744073709551615s",
            "18446744073709551616s",
            "300y0",
            "9223372037s",
            "18446744073709551615ms",
        ] {
            match parse_time(s, now) {
                Err(e) => assert!(e.contains("too large") || e.contains("invalid"), "{s}: {e}"),
                Ok(t) => panic!("{s}: parsed as {t}"),
            }
        }
        assert!(parse_time("30000000000000000w", now)
            .unwrap_err()
            .contains("too large"));
        assert!(parse_duration("18446744073709551616s")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_duration("30000000000000000w")
            .unwrap_err()
            .contains("too large"));
        // The longest that still names a time: back to 1970 from now.
        assert_eq!(
            parse_time(&format!("{}ms", now / 1_000_000), now).unwrap(),
            now % 1_000_000
        );
    }
}
