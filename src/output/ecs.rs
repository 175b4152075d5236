//! Elastic Common Schema 8.17: an event is a `file` event (`event.kind: event`), an exec a
//! `process` start, an alert the same document with `event.kind: alert`, `event.severity` and
//! `rule.*`. Our keys without an ECS
//! field go under `open_forensics` (ECS's advice for custom fields: a namespace of one's own),
//! whole. The mapping table: docs/formats.md.

use serde_json::{json, Map, Value};

use super::mapping::{args, rest, split_path, text};
use crate::event::{Event, Op};
use crate::process::Process;
use crate::rules::{Alert, Raised, Rule, Severity, Summary};
use crate::timespec::format_ts;

/// The version every line names in `ecs.version`.
pub const VERSION: &str = "8.17.0";
/// Where our own keys go.
const OURS: &str = "open_forensics";

/// Our event keys with an ECS home; every other key goes under `open_forensics`.
const MAPPED: &[&str] = &[
    "ts",
    "pid",
    "tid",
    "ppid",
    "uid",
    "gid",
    "comm",
    "path",
    "exe",
    "argv",
    "proc_start",
    "user",
    "container_id",
    "parent_exe",
    "cwd",
];
const ALERT_MAPPED: &[&str] = &[
    "event",
    "rule",
    "severity",
    "hostname",
    "description",
    "tags",
];

/// `event.type` for an op (ECS's allowed values for the `file` category; an exec's for
/// `process`).
pub fn event_type(op: Op) -> &'static str {
    match op {
        Op::Open => "access",
        Op::Mkdir | Op::Link | Op::Symlink => "creation",
        Op::Unlink | Op::Rmdir => "deletion",
        Op::Rename | Op::Chmod | Op::Chown | Op::Truncate => "change",
        Op::Exec => "start",
    }
}

fn file(e: &Event) -> Value {
    let path = text(&e.path);
    let (name, dir) = split_path(&path);
    let mut f = json!({"path": path, "name": name, "directory": dir});
    match (e.op, &e.old_path) {
        (Op::Mkdir | Op::Rmdir, _) => f["type"] = json!("dir"),
        (Op::Symlink, target) => {
            f["type"] = json!("symlink");
            if let Some(t) = target {
                f["target_path"] = json!(text(t));
            }
        }
        _ => {}
    }
    f
}

fn image(o: &mut Map<String, Value>, p: &Process) {
    if let Some(x) = &p.exe {
        o.insert("executable".into(), json!(text(x)));
    }
    if let Some(a) = args(p) {
        o.insert("args_count".into(), json!(a.len()));
        o.insert("command_line".into(), json!(a.join(" ")));
        o.insert("args".into(), json!(a));
    }
    o.insert("start".into(), json!(format_ts(p.start_ns)));
}

fn process(e: &Event) -> Value {
    let mut o = Map::new();
    o.insert("pid".into(), json!(e.pid));
    o.insert("thread".into(), json!({"id": e.tid}));
    o.insert("name".into(), json!(text(&e.comm)));
    let mut parent = Map::new();
    parent.insert("pid".into(), json!(e.ppid));
    if let Some(p) = &e.process {
        image(&mut o, p);
        if let Some(c) = &p.cwd {
            o.insert("working_directory".into(), json!(text(c)));
        }
        if let Some(q) = &p.parent {
            parent.insert("name".into(), json!(text(&q.comm)));
            image(&mut parent, q);
        }
    }
    o.insert("parent".into(), Value::Object(parent));
    Value::Object(o)
}

/// The fields an event and its alert share.
fn base(e: &Event, host: &str, kind: &str, mapped: &[&str], line: &str) -> Value {
    let mut o = json!({
        "@timestamp": format_ts(e.ts_ns),
        "ecs": {"version": VERSION},
        "message": super::alert_line::default_text(e),
        "event": {
            "kind": kind,
            "category": [if e.op == Op::Exec { "process" } else { "file" }],
            "type": [event_type(e.op)],
            "action": e.op.as_str(),
            "outcome": if e.succeeded() { "success" } else { "failure" },
        },
        "process": process(e),
    });
    // An exec's path is the process's executable, not a file it acted on.
    if e.op != Op::Exec {
        o["file"] = file(e);
    }
    let mut user = json!({"id": e.uid.to_string()});
    if let Some(n) = &e.user {
        user["name"] = json!(text(n));
    }
    o["user"] = user;
    o["group"] = json!({"id": e.gid.to_string()});
    if let Some(c) = e.process.as_ref().and_then(|p| p.container_id.as_ref()) {
        o["container"] = json!({"id": text(c)});
    }
    o["host"] = json!({"hostname": host, "os": {"type": "linux"}});
    o[OURS] = Value::Object(rest(line, mapped));
    o
}

/// One event.
pub fn event(e: &Event, host: &str) -> Value {
    base(e, host, "event", MAPPED, &e.to_json_line())
}

fn rule_fields(o: &mut Value, r: &Rule) {
    o["event"]["severity"] = json!(severity(r));
    o["rule"] = json!({"name": r.name, "id": r.name, "description": r.description});
    o["tags"] = json!(r.tags);
}

/// Our severities as 1 (info) to 5 (critical).
fn severity(r: &Rule) -> u32 {
    match r.severity {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

fn alert(a: &Alert) -> Value {
    let mapped: Vec<&str> = MAPPED.iter().chain(ALERT_MAPPED).copied().collect();
    let mut o = base(a.event, a.host, "alert", &mapped, &a.to_json_line());
    o["message"] = json!(format!(
        "{}: {}",
        a.rule.name,
        super::alert_line::default_text(a.event)
    ));
    rule_fields(&mut o, a.rule);
    o
}

/// What throttling suppressed: `event.action: alert_summary`, the window as start and end.
fn summary(s: &Summary) -> Value {
    let mut o = json!({
        "@timestamp": format_ts(s.ts_ns),
        "ecs": {"version": VERSION},
        "message": format!("{}: {} more suppressed ({})", s.rule.name, s.suppressed, s.key_text()),
        "event": {
            "kind": "alert",
            "category": ["file"],
            "type": ["info"],
            "action": "alert_summary",
            "start": format_ts(s.window_start_ns),
            "end": format_ts(s.window_end_ns),
        },
        "host": {"hostname": s.host, "os": {"type": "linux"}},
    });
    rule_fields(&mut o, s.rule);
    o[OURS] = Value::Object(rest(&s.to_json_line(), ALERT_MAPPED));
    o
}

pub fn raised(r: &Raised) -> Value {
    match r {
        Raised::Alert(a) => alert(a),
        Raised::Summary(s) => summary(s),
    }
}
