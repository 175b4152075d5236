//! Exec events and the cwd without privilege (issue #30): what `record` stores of an exec — an
//! `op = exec` event of the new image, the image's `cwd` — survives export → import exactly (the
//! kept fixtures are made that way), shows in SQL, and exports as OCSF Process Activity, an ECS
//! process start and a Timesketch "Process Exec".

use std::sync::Arc;

use serde_json::Value;

use open_forensics::bytes::Str;
use open_forensics::event::{Event, Op, PathSource, Syscall};
use open_forensics::process::{ProcSource, Process};

use crate::formats::{data, ecs_check, report, timesketch_check, Ocsf};
use crate::helpers::{event, TempStore};

const T0: i64 = 1_764_000_000_000_000_000;

/// A shell in /home/alice that runs `curl -o /tmp/x …` from /tmp/work: the exec, then the new
/// image's open of its output.
fn exec_then_open() -> Vec<Event> {
    let shell = Arc::new(Process {
        exe: Some(Str::from("/usr/bin/bash")),
        argv: Some(Str::from("bash\0")),
        cwd: Some(Str::from("/home/alice")),
        source: ProcSource::Procfs,
        ..Process::from_event(100, T0 - 5_000_000_000, 1, Str::from("bash"), 1000, 1000)
    });
    let curl = Arc::new(Process {
        exe: Some(Str::from("/usr/bin/curl")),
        argv: Some(Str::from("curl\0-o\0/tmp/x\0http://example.test/x\0")),
        cwd: Some(Str::from("/tmp/work")),
        exec_ns: Some(T0 + 100),
        source: ProcSource::Exec,
        parent: Some(shell),
        ..Process::from_event(101, T0, 100, Str::from("curl"), 1000, 1000)
    });
    let exec = Event {
        ts_ns: T0 + 100,
        pid: 101,
        tid: 101,
        ppid: 100,
        comm: Str::from("curl"),
        syscall: Syscall::Execve,
        op: Op::Exec,
        path: Str::from("/usr/bin/curl"),
        raw_path: Str::from("curl"),
        path_source: PathSource::File,
        dirfd: None,
        flags: 0,
        ret: 0,
        euid: Some(1000),
        egid: Some(1000),
        process: Some(curl.clone()),
        ..event(0, "/usr/bin/curl")
    };
    let open = Event {
        ts_ns: T0 + 200,
        pid: 101,
        tid: 101,
        ppid: 100,
        comm: Str::from("curl"),
        flags: (libc::O_WRONLY | libc::O_CREAT) as u64,
        euid: Some(1000),
        egid: Some(1000),
        process: Some(curl),
        ..event(0, "/tmp/x")
    };
    vec![exec, open]
}

fn stored() -> TempStore {
    let s = TempStore::new();
    s.import(&exec_then_open());
    s
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Exported then imported, a store prints the same `query` lines and replays the same alerts
/// of a rule about execs: nothing of the exec event or the image's cwd is lost on the way.
#[test]
fn exec_events_and_cwd_survive_export_then_import() {
    let a = stored();
    let lines = a.ok(&["export"]);
    assert!(lines.contains(r#""op":"exec""#), "{lines}");
    let file = a.path("exported.jsonl");
    std::fs::write(&file, &lines).expect("write");
    let b = TempStore::new();
    b.ok(&["import", file.to_str().expect("utf-8")]);
    let query = |s: &TempStore| s.ok(&["query", "--format", "jsonl"]);
    assert_eq!(query(&a), query(&b));
    let q = json_lines(&query(&a));
    assert_eq!(q.len(), 2);
    assert_eq!(
        (&q[0]["op"], &q[0]["cwd"], &q[1]["cwd"]),
        (
            &Value::from("exec"),
            &Value::from("/tmp/work"),
            &Value::from("/tmp/work")
        )
    );

    let rules = a.path("exec.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: curl_ran\n    description: curl ran\n    severity: low\n    op: [exec]\n    path: /usr/bin/curl\n",
    )
    .expect("write rules");
    let rules = rules.to_str().expect("utf-8");
    let replay = |s: &TempStore| s.ok(&["replay", "--rules", rules, "--format", "jsonl"]);
    let alerts = replay(&a);
    assert_eq!(alerts, replay(&b));
    let alerts = json_lines(&alerts);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (&alerts[0]["rule"], &alerts[0]["op"]),
        (&Value::from("curl_ran"), &Value::from("exec"))
    );
}

/// SQL: `events` has the exec with its image's `cwd`, `processes` the image's. The shell is
/// known here only as an ancestor, and `ancestors` entries carry no cwd: its row has none.
#[test]
fn sql_events_and_processes_have_the_cwd() {
    let s = stored();
    let out = s.ok(&[
        "query",
        "--sql",
        "SELECT op, path, syscall, cwd FROM events ORDER BY ts_ns",
        "--format",
        "jsonl",
    ]);
    assert_eq!(
        json_lines(&out),
        [
            serde_json::json!({"op": "exec", "path": "/usr/bin/curl", "syscall": "execve", "cwd": "/tmp/work"}),
            serde_json::json!({"op": "open", "path": "/tmp/x", "syscall": "openat", "cwd": "/tmp/work"}),
        ]
    );
    let out = s.ok(&[
        "query",
        "--sql",
        "SELECT exe, cwd FROM processes ORDER BY pid",
        "--format",
        "jsonl",
    ]);
    assert_eq!(
        json_lines(&out),
        [
            serde_json::json!({"exe": "/usr/bin/bash", "cwd": null}),
            serde_json::json!({"exe": "/usr/bin/curl", "cwd": "/tmp/work"}),
        ]
    );
}

/// OCSF: the exec is Process Activity: Launch (1007), `process` the new image, the actor its
/// parent, against the pinned 1.3.0 schema; the open stays File System Activity. ECS: a process
/// start with its working directory and no `file`. Timesketch: "Process Exec", "exe argv".
#[test]
fn an_exec_exports_as_ocsf_process_launch_ecs_process_start_and_timesketch_exec() {
    let s = stored();
    let ocsf = json_lines(&s.ok(&["export", "--format", "ocsf"]));
    let schema = Ocsf(data("ocsf-1.3.0-excerpt.json"));
    let mut errs = Vec::new();
    for v in &ocsf {
        schema.check_class(v, &mut errs);
    }
    report("OCSF", errs);
    let launch = &ocsf[0];
    assert_eq!(
        (
            &launch["class_uid"],
            &launch["activity_id"],
            &launch["type_uid"]
        ),
        (&Value::from(1007), &Value::from(1), &Value::from(100701))
    );
    assert_eq!(launch["process"]["pid"], 101);
    assert_eq!(launch["process"]["file"]["path"], "/usr/bin/curl");
    assert_eq!(
        launch["process"]["cmd_line"],
        "curl -o /tmp/x http://example.test/x"
    );
    assert_eq!(launch["actor"]["process"]["pid"], 100);
    assert_eq!(launch["actor"]["process"]["file"]["path"], "/usr/bin/bash");
    assert_eq!(launch["unmapped"]["cwd"], "/tmp/work");
    assert_eq!(ocsf[1]["class_uid"], 1001);

    let ecs = json_lines(&s.ok(&["export", "--format", "ecs"]));
    let schema = data("ecs-8.17.0-excerpt.json");
    let mut errs = Vec::new();
    for v in &ecs {
        ecs_check(
            schema["fields"].as_object().expect("fields"),
            v,
            "",
            &mut errs,
        );
    }
    report("ECS", errs);
    let start = &ecs[0];
    assert_eq!(start["event"]["category"], serde_json::json!(["process"]));
    assert_eq!(start["event"]["type"], serde_json::json!(["start"]));
    assert_eq!(start["process"]["working_directory"], "/tmp/work");
    assert_eq!(start["process"]["parent"]["executable"], "/usr/bin/bash");
    assert!(start.get("file").is_none(), "{start}");
    assert_eq!(ecs[1]["event"]["category"], serde_json::json!(["file"]));

    let ts = json_lines(&s.ok(&["export", "--format", "timesketch"]));
    let mut errs = Vec::new();
    for v in &ts {
        timesketch_check(v, &mut errs);
    }
    report("Timesketch", errs);
    assert_eq!(ts[0]["timestamp_desc"], "Process Exec");
    assert_eq!(
        ts[0]["message"],
        "/usr/bin/curl curl -o /tmp/x http://example.test/x"
    );
}
