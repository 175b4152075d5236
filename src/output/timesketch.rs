//! Timesketch's JSON lines: the three fields it requires (`message`, `datetime`,
//! `timestamp_desc`), `timestamp` in microseconds, then our own keys flat (ancestors as
//! `exe[pid]` strings: Timesketch shows flat attributes). The mapping table: docs/formats.md.

use serde_json::{json, Map, Value};

use super::mapping::rest;
use crate::event::{Event, Op};
use crate::rules::Raised;
use crate::timespec::format_ts;

/// What the timestamp of an op's event means, as Timesketch's timelines say it.
pub fn timestamp_desc(op: Op) -> &'static str {
    match op {
        Op::Open => "File Open",
        Op::Rename => "File Rename",
        Op::Link => "File Link",
        Op::Symlink => "File Symlink",
        Op::Unlink => "File Delete",
        Op::Rmdir => "Directory Delete",
        Op::Mkdir => "Directory Create",
        Op::Chmod => "File Chmod",
        Op::Chown => "File Chown",
        Op::Truncate => "File Truncate",
        Op::Exec => "Process Exec",
    }
}

/// The required fields first, then `line`'s keys but `ts`, flattened.
fn doc(message: String, ts_ns: i64, desc: &str, line: &str) -> Value {
    let mut o = Map::new();
    o.insert("message".into(), json!(message));
    o.insert("datetime".into(), json!(format_ts(ts_ns)));
    o.insert("timestamp".into(), json!(ts_ns.div_euclid(1000)));
    o.insert("timestamp_desc".into(), json!(desc));
    for (k, v) in rest(line, &["ts"]) {
        let v = match (k.as_str(), v) {
            ("ancestors", Value::Array(a)) => Value::Array(a.iter().map(ancestor).collect()),
            ("key", Value::Object(m)) => json!(Value::Object(m).to_string()),
            (_, v) => v,
        };
        o.insert(k, v);
    }
    Value::Object(o)
}

/// `exe[pid]` (the comm when the exe is not known).
fn ancestor(a: &Value) -> Value {
    let who = a["exe"].as_str().or(a["comm"].as_str()).unwrap_or("?");
    json!(format!("{who}[{}]", a["pid"]))
}

/// One event; an exec's message is what ran: the executable and its arguments.
pub fn event(e: &Event, host: &str) -> Value {
    let message = match (e.op, e.process.as_deref().and_then(super::mapping::args)) {
        (Op::Exec, Some(args)) => format!("{} {}", e.path.lossy(), args.join(" ")),
        _ => super::alert_line::default_text(e),
    };
    let mut o = doc(message, e.ts_ns, timestamp_desc(e.op), &e.to_json_line());
    o["hostname"] = json!(host);
    o
}

/// An alert (`timestamp_desc: Alert`) or a summary of suppressed ones (`Alert Summary`).
pub fn raised(r: &Raised) -> Value {
    let rule = r.rule();
    let line = r.to_json_line();
    match r {
        Raised::Alert(a) => doc(
            format!(
                "[{}] {}: {}",
                rule.severity,
                rule.name,
                super::alert_line::default_text(a.event)
            ),
            a.event.ts_ns,
            "Alert",
            &line,
        ),
        Raised::Summary(s) => doc(
            format!(
                "[{}] {}: {} more suppressed ({})",
                rule.severity,
                rule.name,
                s.suppressed,
                s.key_text()
            ),
            s.ts_ns,
            "Alert Summary",
            &line,
        ),
    }
}
