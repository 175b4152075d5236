//! OCSF (Open Cybersecurity Schema Framework) 1.3.0: an event is a File System Activity (class
//! 1001), an exec a Process Activity (1007, Launch), an alert a Detection Finding (2004) whose
//! evidence is the event's actor and file. Our keys without an OCSF attribute go under
//! `unmapped`, whole. The mapping table: docs/formats.md.

use serde_json::{json, Map, Value};

use super::mapping::{args, rest, split_path, text};
use crate::event::{Event, Op};
use crate::process::Process;
use crate::rules::{Alert, Raised, Severity, Summary};

/// The schema version every line names in `metadata.version`.
pub const VERSION: &str = "1.3.0";
/// The profiles whose attributes lines use (the device, the actor; the process's container).
const PROFILES: [&str; 2] = ["host", "container"];

/// Our event keys that have an OCSF home; every other key goes to `unmapped`.
const MAPPED: &[&str] = &[
    "ts",
    "pid",
    "tid",
    "ppid",
    "uid",
    "comm",
    "path",
    "exe",
    "argv",
    "proc_start",
    "user",
    "container_id",
    "parent_exe",
];
/// Our alert keys with an OCSF home (beside the event's).
const ALERT_MAPPED: &[&str] = &[
    "event",
    "rule",
    "severity",
    "hostname",
    "description",
    "tags",
];

/// OCSF's File System Activity activity for an op: an open creates a handle (`Open`), a
/// chmod or chown sets what OCSF calls the file's security (its permissions and owner); an
/// exec is Process Activity's Launch.
pub fn activity(op: Op) -> (u32, &'static str) {
    match op {
        Op::Open => (14, "Open"),
        Op::Rename => (5, "Rename"),
        Op::Unlink | Op::Rmdir => (4, "Delete"),
        Op::Mkdir | Op::Link | Op::Symlink => (1, "Create"),
        Op::Chmod | Op::Chown => (7, "Set Security"),
        Op::Truncate => (3, "Update"),
        Op::Exec => (1, "Launch"),
    }
}

fn severity(s: Severity) -> (u32, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

fn ms(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

fn metadata(labels: &[String]) -> Value {
    let mut m = json!({
        "version": VERSION,
        "profiles": PROFILES,
        "product": {
            "name": "open-forensics",
            "vendor_name": "open-forensics",
            "version": env!("CARGO_PKG_VERSION"),
        },
    });
    if !labels.is_empty() {
        m["labels"] = json!(labels);
    }
    m
}

fn device(host: &str) -> Value {
    // The recording host; OCSF's type (server, desktop…) is not recorded: 0, Unknown.
    json!({"hostname": host, "type_id": 0, "type": "Unknown", "os": {"name": "Linux", "type_id": 200, "type": "Linux"}})
}

/// A file object; `type_id` is known only where the op says (a directory, a symlink).
fn file(path: &str, type_id: u32) -> Value {
    let (name, folder) = split_path(path);
    json!({"name": name, "path": path, "parent_folder": folder, "type_id": type_id})
}

fn exe_file(p: &Process) -> Option<Value> {
    p.exe.as_ref().map(|x| file(&text(x), 1))
}

/// A process image other than the event's own (an exec's parent, the launching actor).
fn other_process(p: &Process) -> Value {
    let mut o = json!({"pid": p.pid, "name": text(&p.comm), "created_time": ms(p.start_ns)});
    if let Some(f) = exe_file(p) {
        o["file"] = f;
    }
    if let Some(a) = args(p) {
        o["cmd_line"] = json!(a.join(" "));
    }
    if let Some(c) = &p.container_id {
        o["container"] = json!({"uid": text(c)});
    }
    o
}

/// The acting process: the event's pid, thread and name, the image's exe, command line, start,
/// user and container, its parent, and the executables of its ancestors (`lineage`).
fn process(e: &Event) -> Value {
    let mut o = Map::new();
    o.insert("pid".into(), json!(e.pid));
    o.insert("tid".into(), json!(e.tid));
    o.insert("name".into(), json!(text(&e.comm)));
    let mut parent = json!({"pid": e.ppid});
    if let Some(p) = &e.process {
        if let Some(f) = exe_file(p) {
            o.insert("file".into(), f);
        }
        if let Some(a) = args(p) {
            o.insert("cmd_line".into(), json!(a.join(" ")));
        }
        o.insert("created_time".into(), json!(ms(p.start_ns)));
        if let Some(c) = &p.container_id {
            o.insert("container".into(), json!({"uid": text(c)}));
        }
        if let Some(q) = &p.parent {
            parent["name"] = json!(text(&q.comm));
            parent["created_time"] = json!(ms(q.start_ns));
            if let Some(f) = exe_file(q) {
                parent["file"] = f;
            }
        }
        let lineage: Vec<String> = p
            .ancestors()
            .filter_map(|a| a.exe.as_ref().map(text))
            .collect();
        if !lineage.is_empty() {
            o.insert("lineage".into(), json!(lineage));
        }
    }
    o.insert("parent_process".into(), parent);
    o.insert("user".into(), user(e));
    Value::Object(o)
}

fn user(e: &Event) -> Value {
    let mut u = json!({"uid": e.uid.to_string()});
    if let Some(n) = &e.user {
        u["name"] = json!(text(n));
    }
    u
}

/// The file an event acts on and, for a rename, the name it ends with (`file_result`).
fn files(e: &Event) -> (Value, Option<Value>) {
    let path = text(&e.path);
    match (e.op, &e.old_path) {
        (Op::Rename, Some(old)) => (file(&text(old), 0), Some(file(&path, 0))),
        (Op::Mkdir | Op::Rmdir, _) => (file(&path, 2), None),
        (Op::Symlink, _) => (file(&path, 7), None),
        _ => (file(&path, 0), None),
    }
}

/// The frame of an event of `class` (System Activity) for its op's activity.
fn activity_frame(e: &Event, host: &str, class: u32, class_name: &str) -> Value {
    let (id, name) = activity(e.op);
    json!({
        "class_uid": class,
        "class_name": class_name,
        "category_uid": 1,
        "category_name": "System Activity",
        "activity_id": id,
        "activity_name": name,
        "type_uid": class * 100 + id,
        "type_name": format!("{class_name}: {name}"),
        "severity_id": 1,
        "severity": "Informational",
        "time": ms(e.ts_ns),
        "metadata": metadata(&[]),
        "device": device(host),
    })
}

/// One event as a File System Activity, or an exec as a Process Activity.
pub fn event(e: &Event, host: &str) -> Value {
    if e.op == Op::Exec {
        return launch(e, host);
    }
    let mut o = activity_frame(e, host, 1001, "File System Activity");
    o["actor"] = json!({"process": process(e), "user": user(e)});
    let (f, result) = files(e);
    o["file"] = f;
    if let Some(r) = result {
        o["file_result"] = r;
    }
    status(&mut o, e);
    o["unmapped"] = Value::Object(rest(&e.to_json_line(), MAPPED));
    o
}

/// An exec as Process Activity: Launch. `process` is the new image (its parent inside it), the
/// actor the parent that launched it (only its pid when its image is not known). The cwd has
/// no attribute in 1.3.0: it stays in `unmapped`.
fn launch(e: &Event, host: &str) -> Value {
    let mut o = activity_frame(e, host, 1007, "Process Activity");
    o["process"] = process(e);
    let parent = e.process.as_ref().and_then(|p| p.parent.as_deref());
    let actor = parent.map_or_else(|| json!({"pid": e.ppid}), other_process);
    o["actor"] = json!({"process": actor, "user": user(e)});
    status(&mut o, e);
    o["unmapped"] = Value::Object(rest(&e.to_json_line(), MAPPED));
    o
}

/// `status_id` 1 (Success) or 2 (Failure) with the errno as `status_code`.
fn status(o: &mut Value, e: &Event) {
    if e.succeeded() {
        o["status_id"] = json!(1);
        o["status"] = json!("Success");
    } else {
        o["status_id"] = json!(2);
        o["status"] = json!("Failure");
        o["status_code"] = json!(crate::errno::describe_ret(e.ret));
        o["status_detail"] = json!(format!("{} returned {}", e.syscall, e.ret));
    }
}

/// The frame of a Detection Finding (activity Create, status New) for a rule.
fn finding(rule: &crate::rules::Rule, ts_ns: i64, uid: String, host: &str) -> Value {
    let (sev_id, sev) = severity(rule.severity);
    json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": sev_id,
        "severity": sev,
        "status_id": 1,
        "status": "New",
        "time": ms(ts_ns),
        "metadata": metadata(&rule.tags),
        "device": device(host),
        "finding_info": {
            "uid": uid,
            "title": rule.name,
            "desc": rule.description,
            "analytic": {"name": rule.name, "uid": rule.name, "type_id": 1, "type": "Rule"},
        },
    })
}

fn alert(a: &Alert) -> Value {
    let e = a.event;
    let uid = format!("{}:{}:{}:{}", a.rule.name, e.ts_ns, e.pid, e.tid);
    let mut o = finding(a.rule, e.ts_ns, uid, a.host);
    o["message"] = json!(super::alert_line::default_text(e));
    // Evidence has no `file_result`: a rename's file is the name it ends with (the rules'
    // `path`); the old name stays in `unmapped`.
    let (f, result) = files(e);
    let f = result.unwrap_or(f);
    o["evidences"] = json!([{"actor": {"process": process(e), "user": user(e)}, "file": f}]);
    let mapped: Vec<&str> = MAPPED.iter().chain(ALERT_MAPPED).copied().collect();
    o["unmapped"] = Value::Object(rest(&a.to_json_line(), &mapped));
    o
}

/// What throttling suppressed: a finding with `count` and the window as start and end.
fn summary(s: &Summary) -> Value {
    let uid = format!("{}:{}:{}", s.rule.name, s.window_start_ns, s.ts_ns);
    let mut o = finding(s.rule, s.ts_ns, uid, s.host);
    o["count"] = json!(s.suppressed);
    o["start_time"] = json!(ms(s.window_start_ns));
    o["end_time"] = json!(ms(s.window_end_ns));
    o["message"] = json!(format!(
        "{} more suppressed ({})",
        s.suppressed,
        s.key_text()
    ));
    o["unmapped"] = Value::Object(rest(&s.to_json_line(), ALERT_MAPPED));
    o
}

pub fn raised(r: &Raised) -> Value {
    match r {
        Raised::Alert(a) => alert(a),
        Raised::Summary(s) => summary(s),
    }
}
