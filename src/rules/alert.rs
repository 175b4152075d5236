//! The alert line: the only place an alert is formatted, live and on replay.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::Rule;
use crate::event::{bytes_to_json, format_ts, Event, Str};

/// A rule that matched an event.
#[derive(Clone, Copy, Debug)]
pub struct Alert<'a> {
    pub rule: &'a Rule,
    pub event: &'a Event,
    /// The rule's pattern that matched (see the module documentation), if it has one.
    pub matched: Option<&'a str>,
}

/// Column names, in the order of the JSON keys (the `_b64` keys only appear when needed).
pub const COLUMNS: &[&str] = &[
    "ts", "event", "rule", "pid", "ppid", "comm", "path", "matched", "severity", "tid", "uid",
    "gid", "syscall", "raw_path", "flags", "ret",
];

impl<'a> Alert<'a> {
    /// One JSON object, no trailing newline: the keys of the proof of concept first, in its order.
    pub fn to_json_line(&self) -> String {
        let e = self.event;
        // Borrow the text when it is UTF-8 (nearly always); `bytes_to_json` otherwise.
        let text = |s: &'a Str| match std::str::from_utf8(s.as_bytes()) {
            Ok(t) => (Cow::Borrowed(t), None),
            Err(_) => {
                let (t, b64) = bytes_to_json(s);
                (Cow::Owned(t), b64)
            }
        };
        let (comm, comm_b64) = text(&e.comm);
        let (path, path_b64) = text(&e.path);
        let (raw_path, raw_path_b64) = text(&e.raw_path);
        let mut o = Obj::new();
        o.str("ts", &format_ts(e.ts_ns));
        o.str("event", "alert");
        o.str("rule", &self.rule.name);
        o.num("pid", e.pid);
        o.num("ppid", e.ppid);
        o.str("comm", &comm);
        o.str("path", &path);
        match self.matched {
            Some(m) => o.str("matched", m),
            None => o.raw("matched", "null"),
        }
        o.str("severity", self.rule.severity.as_str());
        o.num("tid", e.tid);
        o.num("uid", e.uid);
        o.num("gid", e.gid);
        o.str("syscall", e.syscall.as_str());
        o.str("raw_path", &raw_path);
        o.num("flags", e.flags);
        o.num("ret", e.ret);
        for (k, v) in [
            ("comm_b64", comm_b64),
            ("path_b64", path_b64),
            ("raw_path_b64", raw_path_b64),
        ] {
            if let Some(v) = v {
                o.str(k, &v);
            }
        }
        o.finish()
    }

    /// The values of `COLUMNS` (for tables and CSV); text is lossy there, as tables are for people.
    pub fn values(&self) -> Vec<Value> {
        let e = self.event;
        vec![
            json!(format_ts(e.ts_ns)),
            json!("alert"),
            json!(self.rule.name),
            json!(e.pid),
            json!(e.ppid),
            json!(e.comm.lossy()),
            json!(e.path.lossy()),
            json!(self.matched),
            json!(self.rule.severity.as_str()),
            json!(e.tid),
            json!(e.uid),
            json!(e.gid),
            json!(e.syscall.as_str()),
            json!(e.raw_path.lossy()),
            json!(e.flags),
            json!(e.ret),
        ]
    }
}

/// A JSON object written in key order (serde_json's map would sort the keys).
struct Obj(String);

impl Obj {
    fn new() -> Obj {
        let mut s = String::with_capacity(320);
        s.push('{');
        Obj(s)
    }

    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        escape_into(&mut self.0, k);
        self.0.push(':');
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        escape_into(&mut self.0, v);
    }

    fn num(&mut self, k: &str, v: impl std::fmt::Display) {
        self.key(k);
        let _ = write!(self.0, "{v}");
    }

    fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.0.push_str(v);
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// A JSON string literal, escaped exactly as serde_json escapes (so alerts and exported events
/// spell strings the same way).
fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_serde_json() {
        for s in [
            "plain",
            "quote\" back\\slash",
            "ctl\u{0}\u{1}\u{1f}\u{7f}\n\r\t\u{8}\u{c}",
            "ünïcødé \u{2028} ✓",
            "\u{fffd}",
        ] {
            let mut out = String::new();
            escape_into(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }
}
