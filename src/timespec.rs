//! Time: the one timestamp format of lines and tables (RFC3339 with nanoseconds), and time
//! arguments: RFC3339 (`2026-11-24T16:00:00Z`), a local date or time (`2026-11-24`,
//! `2026-11-24 16:00[:00]`), `now`, `today`, `yesterday`, or a duration back from now with its
//! unit (`15m`, `2h`, `7d`).

use std::time::Duration;

use chrono::{
    DateTime, Local, LocalResult, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc,
};

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

/// What a time argument may be, for error messages.
const TIME_FORMS: &str = "RFC3339 (2026-11-24T16:00:00Z), a local date or time (2026-11-24, \
                          2026-11-24 16:00, 2026-11-24 16:00:30), now, today, yesterday, or a \
                          duration ago with its unit (30s, 15m, 2h, 7d)";

/// Parses a time argument into ns since the epoch, relative ones against `now_ns`. Dates and
/// times without a zone are the local time zone's (`TZ`), as `journalctl --since` reads them.
pub fn parse_time(s: &str, now_ns: i64) -> Result<i64, String> {
    if let Some(ts) = parse_ts(s) {
        return Ok(ts);
    }
    let t = s.trim();
    let today = || {
        DateTime::<Utc>::from_timestamp_nanos(now_ns)
            .with_timezone(&Local)
            .date_naive()
    };
    let local_day = match t {
        "now" => return Ok(now_ns),
        "today" => Some(today()),
        "yesterday" => today().pred_opt(),
        _ => NaiveDate::parse_from_str(t, "%Y-%m-%d").ok(),
    };
    let local = match local_day {
        Some(d) => d.and_hms_opt(0, 0, 0),
        None => [
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok()),
    };
    if let Some(local) = local {
        return from_local(s, local);
    }
    // A bare number is refused: `--since 10` read as ten seconds ago surprised its users.
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid time {s:?}: a duration needs its unit (10s, 10m, 10h, 10d); expected {TIME_FORMS}"
        ));
    }
    let d = parse_duration(s).map_err(|e| {
        if e.contains("too large") {
            e
        } else {
            format!("invalid time {s:?}: expected {TIME_FORMS}")
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

/// A local wall-clock time as ns since the epoch: the earlier of two when the clock was set back
/// (a daylight-saving change), an error for a time the clock skipped.
fn from_local(s: &str, local: NaiveDateTime) -> Result<i64, String> {
    let at = match Local.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
        LocalResult::None => {
            return Err(format!(
                "time {s:?} does not exist in the local time zone (the clock skipped it)"
            ))
        }
    };
    at.with_timezone(&Utc)
        .timestamp_nanos_opt()
        .ok_or_else(|| format!("time {s:?} is out of range (1677 to 2262)"))
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
        assert!(parse_time("lastweek", now).unwrap_err().contains("RFC3339"));
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    }

    /// Issue #28: `--since yesterday` and `--since 2026-12-06` were refused, and `--since 10`
    /// silently meant ten seconds ago.
    #[test]
    fn days_local_times_and_bare_numbers() {
        let now = now_ns();
        let day = 86_400 * 1_000_000_000i64;
        assert_eq!(parse_time("now", now).unwrap(), now);
        let today = parse_time("today", now).unwrap();
        let yesterday = parse_time("yesterday", now).unwrap();
        // Local midnights: today's within the last day (and an hour of daylight saving).
        assert!(
            today <= now && now - today < day + 3_600_000_000_000,
            "{today} {now}"
        );
        assert!((today - yesterday - day).abs() <= 3_600_000_000_000);
        let date = parse_time("2026-12-06", now).unwrap();
        let minute = parse_time("2026-12-06 14:30", now).unwrap();
        let second = parse_time("2026-12-06T14:30:15", now).unwrap();
        assert_eq!(minute - date, (14 * 3600 + 30 * 60) * 1_000_000_000);
        assert_eq!(second - minute, 15_000_000_000);
        for bare in ["10", "0", " 15 "] {
            let e = parse_time(bare, now).unwrap_err();
            assert!(e.contains("needs its unit"), "{bare}: {e}");
        }
        assert!(parse_time("2026-13-01", now)
            .unwrap_err()
            .contains("expected RFC3339"));
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
