//! `proc PID [--at T]`: one process's story — what it ran (each image, with argv), who started it
//! (ancestors), what it started (children) and every file it opened. The timeline an analyst
//! wants after an alert.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use super::{report_scan, BadInput, TimeArgs};
use crate::event::Event;
use crate::output::{Format, Rows};
use crate::process::Process;
use crate::store::Reader;
use crate::timespec::format_ts;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The process id.
    pub pid: u32,
    /// Which process of that pid (pids are reused): the one running at this time (RFC3339 or a
    /// duration ago); default: the most recent.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[command(flatten)]
    pub time: TimeArgs,
    /// Output format [default: table on a terminal, jsonl otherwise]. JSON lines carry a `kind`
    /// key: `image`, `ancestor`, `child`, `open`.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

/// A process (not an image): pid and start.
type Key = (u32, i64);
/// An image and its exit (wait status, time) if seen.
type Image = (Arc<Process>, Option<(i32, i64)>);

#[derive(Default)]
struct Found {
    /// Images of processes with the pid, by process, each image once (by image key).
    images: BTreeMap<Key, BTreeMap<String, Image>>,
    /// Images whose parent has the pid, by the parent process.
    children: HashMap<Key, BTreeMap<String, Arc<Process>>>,
    opens: HashMap<Key, Vec<Event>>,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let format = Format::resolve(args.format);
    let range = args.time.range()?;
    let at = args
        .at
        .as_deref()
        .map(|s| crate::timespec::parse_time(s, crate::timespec::now_ns()))
        .transpose()
        .map_err(|e| BadInput(format!("--at: {e}")))?;
    let reader = Reader::open(store)?;
    let pid = args.pid;
    let mut found = Found::default();
    let stats = reader.scan_with(
        &range,
        |seg| {
            // Unreadable process tables show up as the segment's scan error.
            let Ok(procs) = seg.processes() else {
                return;
            };
            for sp in procs {
                let p = &sp.process;
                if p.pid == pid {
                    let slot = found
                        .images
                        .entry((p.pid, p.start_ns))
                        .or_default()
                        .entry(image_order(p))
                        .or_insert_with(|| (p.clone(), None));
                    slot.1 = slot.1.or(sp.exit);
                }
                if let Some(parent) = p.parent.as_deref().filter(|q| q.pid == pid) {
                    found
                        .children
                        .entry((parent.pid, parent.start_ns))
                        .or_default()
                        .entry(format!("{:020}:{}", p.start_ns, image_order(p)))
                        .or_insert_with(|| p.clone());
                }
            }
        },
        |ev| {
            if ev.pid == pid {
                if let Some(p) = &ev.process {
                    found
                        .opens
                        .entry((p.pid, p.start_ns))
                        .or_default()
                        .push(ev.clone());
                } else {
                    // Recorded before lineage: the pid is all there is.
                    found
                        .opens
                        .entry((pid, i64::MIN))
                        .or_default()
                        .push(ev.clone());
                }
            }
            ControlFlow::Continue(())
        },
    );
    let key = choose(&found, at).ok_or_else(|| {
        BadInput(format!(
            "no process {pid} in the store{}",
            at.map(|t| format!(" running at {}", format_ts(t)))
                .unwrap_or_default()
        ))
    })?;
    let mut out = super::stdout();
    print(&mut out, format, &found, key)?;
    out.flush()?;
    report_scan(&stats, &range, format == Format::Jsonl)
}

/// Images of one process sort by their exec time (a fork or snapshot image first).
fn image_order(p: &Process) -> String {
    format!("{:020}", p.exec_ns.unwrap_or(0).max(0))
}

/// The process of the pid running at `at` (started at or before it, latest start first), or the
/// most recent one.
fn choose(found: &Found, at: Option<i64>) -> Option<Key> {
    let mut keys: Vec<Key> = found
        .images
        .keys()
        .copied()
        .chain(found.opens.keys().copied())
        .collect();
    keys.sort();
    keys.dedup();
    match at {
        None => keys.last().copied(),
        Some(t) => keys.iter().rev().find(|k| k.1 <= t).copied(),
    }
}

fn lossy(s: &Option<crate::bytes::Str>) -> Value {
    s.as_ref().map_or(Value::Null, |s| json!(s.lossy()))
}

fn argv(p: &Process) -> Value {
    match &p.argv {
        None => Value::Null,
        Some(_) => json!(p
            .args()
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()),
    }
}

const PROC_COLUMNS: &[&str] = &[
    "kind",
    "pid",
    "start",
    "exec",
    "comm",
    "exe",
    "argv",
    "user",
    "container_id",
    "exit",
    "exit_code",
    "root",
    "mntns",
    "exe_id",
    "exe_verified",
];

fn proc_row(kind: &str, p: &Process, exit: Option<(i32, i64)>, user: Value) -> Vec<Value> {
    vec![
        json!(kind),
        json!(p.pid),
        json!(format_ts(p.start_ns)),
        json!(p.exec_ns.map(format_ts)),
        json!(p.comm.lossy()),
        lossy(&p.exe),
        argv(p),
        user,
        lossy(&p.container_id),
        json!(exit.map(|(_, t)| format_ts(t))),
        json!(exit.map(|(s, _)| if s & 0x7f != 0 {
            format!("signal {}", s & 0x7f)
        } else {
            ((s >> 8) & 0xff).to_string()
        })),
        lossy(&p.root),
        json!(p.mntns),
        json!(p.exe_id.map(|f| f.to_string())),
        json!(p.exe_verified),
    ]
}

const OPEN_COLUMNS: &[&str] = &[
    "kind", "ts", "tid", "comm", "access", "result", "path", "root",
];

fn open_row(e: &Event) -> Vec<Value> {
    let result = crate::errno::describe_ret(e.ret);
    vec![
        json!("open"),
        json!(format_ts(e.ts_ns)),
        json!(e.tid),
        json!(e.comm.lossy()),
        json!(crate::rules::access_names(e)),
        json!(result),
        json!(e.path.lossy()),
        lossy(&e.root),
    ]
}

fn print(out: &mut dyn Write, format: Format, found: &Found, key: Key) -> std::io::Result<()> {
    let images: Vec<&Image> = found
        .images
        .get(&key)
        .map(|m| m.values().collect())
        .unwrap_or_default();
    let opens = found.opens.get(&key).map(Vec::as_slice).unwrap_or(&[]);
    let user = opens
        .iter()
        .find_map(|e| e.user.as_ref())
        .map_or(Value::Null, |u| json!(u.lossy()));
    let mut procs = Rows::new(PROC_COLUMNS.iter().copied());
    for (p, exit) in &images {
        procs.push(proc_row("image", p, *exit, user.clone()));
    }
    // The ancestors of the first image that knows them (an exec keeps its process's parent).
    let newest = images
        .iter()
        .rev()
        .map(|(p, _)| p.clone())
        .chain(opens.iter().rev().filter_map(|e| e.process.clone()))
        .find(|p| p.parent.is_some());
    if let Some(p) = &newest {
        for a in p.ancestors() {
            procs.push(proc_row("ancestor", a, None, Value::Null));
        }
    }
    if let Some(children) = found.children.get(&key) {
        for c in children.values() {
            procs.push(proc_row("child", c, None, Value::Null));
        }
    }
    let mut files = Rows::new(OPEN_COLUMNS.iter().copied());
    for e in opens {
        files.push(open_row(e));
    }
    match format {
        Format::Jsonl => {
            procs.write(format, out)?;
            // Opens as full events, tagged, so nothing recorded is left out.
            for e in opens {
                let line = e.to_json_line();
                writeln!(out, "{{\"kind\":\"open\",{}", &line[1..])?;
            }
            Ok(())
        }
        Format::Csv | Format::Table => {
            procs.write(format, out)?;
            writeln!(out)?;
            files.write(format, out)
        }
    }
}
