//! The alert line, the same live and on replay, and its columns for tables and CSV.

use std::borrow::Cow;

use serde_json::{json, Value};

use super::rule::Rule;
use crate::bytes::Str;
use crate::event::{
    bytes_to_json, put_ancestors, put_argv, put_bytes, put_identity, put_op, Event,
};
use crate::json::Obj;
use crate::process::Process;
use crate::timespec::format_ts;

/// A rule that matched an event.
#[derive(Clone, Copy, Debug)]
pub struct Alert<'a> {
    pub rule: &'a Rule,
    pub event: &'a Event,
    /// The rule's pattern that matched (defined in the rule reference, "Alerts"), if any.
    pub matched: Option<&'a str>,
    /// The recording host (`hostname`); set by the `Alerter`, empty from a bare engine.
    pub host: &'a str,
    /// The rule's position in its set (throttle state is kept per rule).
    pub rule_index: usize,
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
            None => o.null("matched"),
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
        // Alerts of events recorded before lineage keep exactly the keys they had.
        if let Some(p) = &e.process {
            put_alert_lineage(&mut o, p, e);
        }
        put_identity(&mut o, e);
        put_op(&mut o, e);
        o.str("hostname", self.host);
        o.str("description", &self.rule.description);
        o.strs("tags", &self.rule.tags);
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

/// The lineage keys of an alert, after the proof of concept's and today's keys.
fn put_alert_lineage(o: &mut Obj, p: &Process, ev: &Event) {
    put_bytes(o, "exe", p.exe.as_ref());
    put_argv(o, p);
    put_bytes(
        o,
        "parent_exe",
        p.parent.as_ref().and_then(|q| q.exe.as_ref()),
    );
    put_ancestors(o, p);
    put_bytes(o, "container_id", p.container_id.as_ref());
    put_bytes(o, "user", ev.user.as_ref());
}
