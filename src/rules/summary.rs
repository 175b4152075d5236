//! The `alert_summary` line: what throttling suppressed in one window of one rule and key value
//! (its shape and when it is emitted: `throttle.rs`).

use super::rule::Rule;
use super::throttle::{KeyField, KeyVal};
use crate::json::Obj;
use crate::timespec::format_ts;

/// An `alert_summary`: how many alerts of one rule and key value a window suppressed.
#[derive(Clone, Debug)]
pub struct Summary<'a> {
    pub rule: &'a Rule,
    pub ts_ns: i64,
    pub(super) key: Vec<(KeyField, KeyVal)>,
    pub suppressed: u64,
    pub window_start_ns: i64,
    pub window_end_ns: i64,
    pub first_suppressed_ns: i64,
    pub last_suppressed_ns: i64,
    pub host: &'a str,
}

impl Summary<'_> {
    /// One JSON object, no trailing newline (shape in `throttle.rs`).
    pub fn to_json_line(&self) -> String {
        let mut o = Obj::new();
        o.str("ts", &format_ts(self.ts_ns));
        o.str("event", "alert_summary");
        o.str("rule", &self.rule.name);
        o.str("severity", self.rule.severity.as_str());
        o.raw_key("key");
        let mut k = Obj::new();
        for (f, v) in &self.key {
            match v {
                KeyVal::Num(n) => k.num(f.name(), n),
                // Lossy for bytes that are not UTF-8: a summary names a key, it is not evidence.
                KeyVal::Text(t) => k.str(f.name(), &String::from_utf8_lossy(t)),
                KeyVal::Null => k.null(f.name()),
            }
        }
        o.push_raw(&k.finish());
        o.num("suppressed", self.suppressed);
        o.num("max", self.rule.throttle.as_ref().map_or(0, |t| t.max));
        o.str("window_start", &format_ts(self.window_start_ns));
        o.str("window_end", &format_ts(self.window_end_ns));
        o.str("first_suppressed", &format_ts(self.first_suppressed_ns));
        o.str("last_suppressed", &format_ts(self.last_suppressed_ns));
        o.str("hostname", self.host);
        o.str("description", &self.rule.description);
        o.strs("tags", &self.rule.tags);
        o.finish()
    }

    /// The key as `field=value` pairs (for tables).
    pub fn key_text(&self) -> String {
        self.key
            .iter()
            .map(|(f, v)| match v {
                KeyVal::Num(n) => format!("{}={n}", f.name()),
                KeyVal::Text(t) => format!("{}={}", f.name(), String::from_utf8_lossy(t)),
                KeyVal::Null => format!("{}=null", f.name()),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}
