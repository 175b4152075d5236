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
    match parse_duration(s) {
        Ok(d) => Ok(now_ns - d.as_nanos() as i64),
        Err(_) => Err(format!(
            "invalid time {s:?}: expected RFC3339 (2026-11-24T16:00:00Z) or a duration ago (30s, 15m, 2h, 7d)"
        )),
    }
}

/// `500ms`, `30s`, `15m`, `2h`, `7d`, `1w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("invalid duration {s:?}: expected a number and a unit (30s, 15m, 2h, 7d)")
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
    Ok(Duration::from_secs(n * secs))
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
}
