//! Live exec events (issue #30): every successful exec is one `op = exec` event in the stream,
//! of the new image (its exe, argv, cwd, parent), seen by `query`, `proc` and export → import
//! alike. Root only; every check filters by the pids of the processes these tests run.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use open_forensics::event::{Event, Op, PathSource, Syscall};

use crate::helpers::{self, read_store, TempStore};
use crate::recorder::Recorder;

/// A copy of `cat` in a test's own canonical temp directory, and a file for it to read.
struct Scene {
    store: TempStore,
    dir: PathBuf,
    prog: PathBuf,
    _work: tempfile::TempDir,
}

fn scene(test: &str) -> Option<Scene> {
    if !helpers::live_capture_available(test) {
        return None;
    }
    let work = tempfile::Builder::new()
        .prefix("of-exec-")
        .tempdir()
        .expect("tempdir");
    let dir = std::fs::canonicalize(work.path()).expect("canonical temp dir");
    let prog = dir.join("of-exec-cat");
    std::fs::copy("/usr/bin/cat", &prog).expect("copy cat");
    std::fs::write(dir.join("note"), "x\n").expect("write");
    Some(Scene {
        store: TempStore::new(),
        dir,
        prog,
        _work: work,
    })
}

/// Runs `./of-exec-cat note` in the scene's directory while recording; returns its pid.
fn run_recorded(sc: &Scene) -> u32 {
    let rec = Recorder::start(&sc.store, &[]);
    let mut child = Command::new("./of-exec-cat")
        .arg("note")
        .current_dir(&sc.dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the copy of cat");
    let pid = child.id();
    assert!(child.wait().expect("wait").success());
    let log = rec.stop();
    assert!(!log.contains("verifier rejected"), "{log}");
    pid
}

fn lossy(s: &Option<open_forensics::bytes::Str>) -> Option<String> {
    s.as_ref().map(|s| s.lossy().into_owned())
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

/// The exec of a program run by its relative name from a temp directory is one event of its
/// pid, first of them all: `path` the executable, `raw_path` the name as passed, the new image's
/// argv and cwd, the parent this test process; its later open carries the same image.
#[test]
fn an_exec_is_one_event_of_the_new_image_with_its_name_argv_cwd_and_parent() {
    let Some(sc) = scene("an_exec_is_one_event_of_the_new_image_with_its_name_argv_cwd_and_parent")
    else {
        return;
    };
    let pid = run_recorded(&sc);
    let mine: Vec<Event> = read_store(&sc.store.dir)
        .into_iter()
        .filter(|e| e.pid == pid)
        .collect();
    let execs: Vec<&Event> = mine.iter().filter(|e| e.op == Op::Exec).collect();
    assert_eq!(execs.len(), 1, "{mine:#?}");
    let ex = execs[0];
    assert_eq!(
        mine[0].op,
        Op::Exec,
        "the exec comes before the image's opens"
    );
    assert_eq!(ex.path.as_bytes(), sc.prog.as_os_str().as_bytes());
    assert_eq!(ex.raw_path.as_bytes(), b"./of-exec-cat");
    assert_eq!(
        (ex.syscall, ex.path_source, ex.ret, ex.tid),
        (Syscall::Execve, PathSource::File, 0, pid)
    );
    assert_eq!(ex.comm.as_bytes(), b"of-exec-cat");
    let p = ex.process.as_ref().expect("the new image");
    assert_eq!(lossy(&p.exe), Some(s(&sc.prog)));
    assert_eq!(p.args(), [&b"./of-exec-cat"[..], b"note"]);
    assert_eq!(p.exec_ns, Some(ex.ts_ns));
    assert_eq!(lossy(&p.cwd), Some(s(&sc.dir)));
    assert_eq!(ex.file, p.exe_id);
    let us = std::fs::canonicalize(std::env::current_exe().expect("own exe")).expect("canon");
    let parent = p.parent.as_ref().expect("parent image");
    assert_eq!(
        (parent.pid, lossy(&parent.exe)),
        (std::process::id(), Some(s(&us)))
    );

    // Its open of `note` is by the same image, cwd and all.
    let note = sc.dir.join("note");
    let open = mine
        .iter()
        .find(|e| e.op == Op::Open && e.path.as_bytes() == note.as_os_str().as_bytes())
        .expect("the open of note");
    let op = open.process.as_ref().expect("image");
    assert!(std::sync::Arc::ptr_eq(op, p) || **op == **p, "{op:#?}");
}

/// `query --op exec` shows the exec (with `cwd`), and `proc PID` lists the image (with its cwd)
/// and, among its events (JSON lines of kind `open`, as every event's), the exec.
#[test]
fn query_op_exec_and_proc_show_the_exec() {
    let Some(sc) = scene("query_op_exec_and_proc_show_the_exec") else {
        return;
    };
    let pid = run_recorded(&sc);
    let pid_s = pid.to_string();
    let out = sc.store.ok(&[
        "query", "--op", "exec", "--pid", &pid_s, "--format", "jsonl",
    ]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    let l = &lines[0];
    assert_eq!(l["op"], "exec");
    assert_eq!(l["path"], s(&sc.prog));
    assert_eq!(l["raw_path"], "./of-exec-cat");
    assert_eq!(l["syscall"], "execve");
    assert_eq!(l["argv"], serde_json::json!(["./of-exec-cat", "note"]));
    assert_eq!(l["cwd"], s(&sc.dir));

    let out = sc.store.ok(&["proc", &pid_s, "--format", "jsonl"]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let image = rows
        .iter()
        .find(|r| r["kind"] == "image" && r["exe"] == s(&sc.prog))
        .unwrap_or_else(|| panic!("no image row: {out}"));
    assert_eq!(image["argv"], serde_json::json!(["./of-exec-cat", "note"]));
    assert_eq!(image["cwd"], s(&sc.dir));
    assert_eq!(
        rows.iter()
            .filter(|r| r["op"] == "exec" && r["path"] == s(&sc.prog))
            .count(),
        1,
        "{out}"
    );
}
