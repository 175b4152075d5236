//! Times for people: local time (`TZ` honoured) or UTC (`--utc`), as short as an answer's span
//! allows. Machine formats (JSON lines, CSV, Parquet, alert JSON) keep `timespec::format_ts`.

use chrono::{DateTime, Local, NaiveDate, Utc};

/// How much of a date a time shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// Every time is on this day: the time of day only (the date is said once, in the header).
    Day(NaiveDate),
    /// Every time is in one year: month, day and time.
    Year,
    /// The whole date.
    Full,
}

/// How times are shown in a table, a record view or an alert line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    utc: bool,
    form: Form,
}

impl Clock {
    /// For times from `lo` to `hi` (ns since the epoch).
    pub fn for_span(utc: bool, lo: i64, hi: i64) -> Clock {
        let (a, b) = (date(utc, lo), date(utc, hi));
        let form = if a == b {
            Form::Day(a)
        } else if chrono::Datelike::year(&a) == chrono::Datelike::year(&b) {
            Form::Year
        } else {
            Form::Full
        };
        Clock { utc, form }
    }

    /// For lines that arrive as they happen (live alerts): the time of day.
    pub fn live(utc: bool) -> Clock {
        let now = crate::timespec::now_ns();
        Clock::for_span(utc, now, now)
    }

    /// A time in a table cell or an alert line: `14:30:15.123`, `12-06 14:30:15.123` or
    /// `2026-12-06 14:30:15.123`.
    pub fn short(&self, ns: i64) -> String {
        let pattern = match self.form {
            Form::Day(_) => "%H:%M:%S%.3f",
            Form::Year => "%m-%d %H:%M:%S%.3f",
            Form::Full => "%Y-%m-%d %H:%M:%S%.3f",
        };
        self.format(ns, pattern)
    }

    /// The header of a time column named `name`, with `UTC` when times are UTC: an event's
    /// time (`ts`) is headed by the day when every time is on one (short times then name it).
    pub fn header(&self, name: &str) -> String {
        let zone = if self.utc { " UTC" } else { "" };
        match self.form {
            Form::Day(d) if name == "ts" => format!("{}{zone}", d.format("%Y-%m-%d")),
            _ => format!("{name}{zone}"),
        }
    }

    /// A time in full, to the nanosecond, with its zone's offset (the record view).
    pub fn full(&self, ns: i64) -> String {
        self.format(ns, "%Y-%m-%d %H:%M:%S%.9f %:z")
    }

    fn format(&self, ns: i64, pattern: &str) -> String {
        let t = DateTime::<Utc>::from_timestamp_nanos(ns);
        if self.utc {
            t.format(pattern).to_string()
        } else {
            t.with_timezone(&Local).format(pattern).to_string()
        }
    }
}

fn date(utc: bool, ns: i64) -> NaiveDate {
    let t = DateTime::<Utc>::from_timestamp_nanos(ns);
    if utc {
        t.date_naive()
    } else {
        t.with_timezone(&Local).date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_765_031_415_123_456_789; // 2025-12-06T14:30:15.123456789Z

    #[test]
    fn one_day_shows_the_time_of_day_and_names_the_day_in_the_header() {
        let c = Clock::for_span(true, T, T + 3_600_000_000_000);
        assert_eq!(c.short(T), "14:30:15.123");
        assert_eq!(c.header("ts"), "2025-12-06 UTC");
        assert_eq!(c.full(T), "2025-12-06 14:30:15.123456789 +00:00");
    }

    #[test]
    fn longer_spans_show_the_date() {
        let day = 86_400_000_000_000;
        let c = Clock::for_span(true, T, T + 2 * day);
        assert_eq!(c.short(T), "12-06 14:30:15.123");
        assert_eq!(c.header("ts"), "ts UTC");
        let c = Clock::for_span(true, T, T + 40 * day);
        assert_eq!(c.short(T), "2025-12-06 14:30:15.123");
    }
}
