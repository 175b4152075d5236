//! `proc PID [--at T]`: one process's story — what it ran (each image, with argv), who started it
//! (ancestors), what it started (children) and every file it opened. The timeline an analyst
//! wants after an alert.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::forest::{self, Counts};
use super::{load_rules, report_scan, BadInput, TimeArgs};
use crate::event::Event;
use crate::output::view::{View, ViewArgs};
use crate::output::{Format, Output, Rows};
use crate::process::Process;
use crate::query::tree::{self, Builder, Caps, Scope};
use crate::store::{Reader, TimeRange};
use crate::timespec::format_ts;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The process id.
    pub pid: u32,
    /// Which process of that pid (pids are reused): the one running at this time (RFC3339 or a
    /// duration ago). Needed when more than one process had the pid in the range: they are
    /// listed.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[command(flatten)]
    pub time: TimeArgs,
    /// Output format [default: table on a terminal, jsonl otherwise]. JSON lines carry a `kind`
    /// key: `image`, `ancestor`, `child`, `open`; with --tree, one object per process (`depth`,
    /// `pid`, `ppid`, `start`…).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Draw the process tree: its ancestors above it, every descendant below, each with its
    /// user, opens, failures and other operations (and alerts with --rules).
    #[arg(long)]
    pub tree: bool,
    /// With --tree: count per process the alerts these rule files raise (as `replay` prints
    /// them).
    #[arg(long = "rules", value_name = "FILE", num_args = 1.., requires = "tree")]
    pub rules: Vec<PathBuf>,
    /// With --tree: at most this many processes are shown (the first in drawing order); the
    /// others are counted on stderr.
    #[arg(long, value_name = "N", default_value_t = Caps::default().max_processes)]
    pub max_processes: usize,
    #[command(flatten)]
    pub view: ViewArgs,
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
    let view = args.view.view();
    let format = view.format(args.format);
    let range = args.time.range()?;
    let at = args
        .at
        .as_deref()
        .map(|s| crate::timespec::parse_time(s, crate::timespec::now_ns()))
        .transpose()
        .map_err(|e| BadInput(format!("--at: {e}")))?;
    if args.tree {
        return run_tree(store, &args, at, range, format, &view);
    }
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
    let key = choose(&found, at, &range).map_err(|why| BadInput(why.describe(pid, &found)))?;
    let mut out = Output::open(view.page);
    print(&mut out, format, &view, &found, key)?;
    out.finish()?;
    report_scan(&stats, &range, format == Format::Jsonl)
}

/// `proc PID --tree`: one read of the range feeds the process model and the choice of the
/// process (the same as without --tree: pids are reused).
fn run_tree(
    store: &Path,
    args: &Args,
    at: Option<i64>,
    range: TimeRange,
    format: Format,
    view: &View,
) -> anyhow::Result<()> {
    let rules = match args.rules.as_slice() {
        [] => None,
        files => Some(load_rules(files)?),
    };
    let reader = Reader::open(store)?;
    let pid = args.pid;
    let caps = Caps {
        max_processes: args.max_processes,
        max_files: 0,
    };
    let mut builder = Builder::new(range, caps);
    let mut found = Found::default();
    let stats = tree::read(&mut builder, &reader, &range, rules.as_ref(), |ev| {
        if ev.pid == pid {
            let key = ev
                .process
                .as_deref()
                .map_or((pid, i64::MIN), |p| (p.pid, p.start_ns));
            found.opens.entry(key).or_default();
        }
        false
    });
    for key in builder.processes_with_pid(pid) {
        if let Some((p, exit)) = builder.last_image(key) {
            found
                .images
                .entry(key)
                .or_default()
                .insert(image_order(&p), (p, exit));
        }
    }
    let key = choose(&found, at, &range).map_err(|why| BadInput(why.describe(pid, &found)))?;
    if key.1 == i64::MIN {
        return Err(BadInput(format!(
            "pid {pid} was recorded before lineage: its events carry no start time, so there is no tree"
        ))
        .into());
    }
    let forest = builder.build(&Scope::Process(key));
    let mut out = Output::open(view.page);
    let counts = Counts::Activity {
        alerts: rules.is_some(),
    };
    forest::print(&mut out, format, &forest, counts, view.width.into())?;
    out.finish()?;
    forest::report_cut(&forest, args.max_processes, format == Format::Jsonl);
    report_scan(&stats, &range, format == Format::Jsonl)
}

/// Images of one process sort by their exec time (a fork or snapshot image first).
fn image_order(p: &Process) -> String {
    format!("{:020}", p.exec_ns.unwrap_or(0).max(0))
}

/// Why no single process was chosen.
#[derive(Debug, PartialEq)]
enum NoChoice {
    /// No process of the pid in the range (running at `at`, if given).
    None(Option<i64>),
    /// More than one process had the pid in the range: these, and `--at` was not given.
    Several(Vec<Key>),
}

impl NoChoice {
    fn describe(&self, pid: u32, found: &Found) -> String {
        match self {
            NoChoice::None(at) => format!(
                "no process {pid} in the store{}",
                at.map(|t| format!(" running at {}", format_ts(t)))
                    .unwrap_or_default()
            ),
            NoChoice::Several(keys) => {
                let mut text = format!(
                    "pid {pid} was {} processes in the range (pids are reused); say which with --at TIME, a time it was running:",
                    keys.len()
                );
                for k in keys {
                    text.push_str("\n  ");
                    text.push_str(&describe_process(found, *k));
                }
                text
            }
        }
    }
}

/// One line of a process for choosing: its start, exit, exe and argv (of its last image).
fn describe_process(found: &Found, key: Key) -> String {
    if key.1 == i64::MIN {
        return "recorded before lineage: no start time, exe or argv".to_owned();
    }
    let last = found.images.get(&key).and_then(|m| m.values().last());
    let exit = lifetime(found, key)
        .1
        .map_or("running or exit not seen".to_owned(), |t| {
            format!("exited {}", format_ts(t))
        });
    let (exe, argv) = match last {
        Some((p, _)) => (
            p.exe
                .as_ref()
                .map_or("?".to_owned(), |e| e.lossy().into_owned()),
            String::from_utf8_lossy(&p.cmdline()).into_owned(),
        ),
        None => ("?".to_owned(), String::new()),
    };
    format!(
        "started {}, {exit}: {} [{}]",
        format_ts(key.1),
        crate::text::printable(&exe),
        crate::text::printable(&argv)
    )
}

/// A process's start and, if any image saw it, its exit time.
fn lifetime(found: &Found, key: Key) -> (i64, Option<i64>) {
    let exit = found
        .images
        .get(&key)
        .and_then(|m| m.values().filter_map(|(_, e)| e.map(|(_, t)| t)).max());
    (key.1, exit)
}

/// The process of the pid: the only one alive in the range, or, with `at`, the one running
/// then (started at or before it and not exited before it; of several whose exit is unknown,
/// the latest start: a pid is held by one process at a time).
fn choose(found: &Found, at: Option<i64>, range: &TimeRange) -> Result<Key, NoChoice> {
    let mut keys: Vec<Key> = found
        .images
        .keys()
        .copied()
        .chain(found.opens.keys().copied())
        .collect();
    keys.sort();
    keys.dedup();
    // Opens are in the range already; an image may be of a process that ended before it.
    keys.retain(|k| {
        found.opens.contains_key(k) || {
            let (start, exit) = lifetime(found, *k);
            range.overlaps(start, exit.unwrap_or(i64::MAX))
        }
    });
    match at {
        None => match keys.as_slice() {
            [] => Err(NoChoice::None(None)),
            [one] => Ok(*one),
            _ => Err(NoChoice::Several(keys)),
        },
        Some(t) => keys
            .iter()
            .rev()
            .find(|k| {
                let (start, exit) = lifetime(found, **k);
                start <= t && exit.is_none_or(|e| e >= t)
            })
            .copied()
            .ok_or(NoChoice::None(Some(t))),
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
    "cwd",
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
        lossy(&p.cwd),
        user,
        lossy(&p.container_id),
        json!(exit.map(|(_, t)| format_ts(t))),
        json!(exit.map(|(s, _)| tree::exit_text(s))),
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
        json!(e.op.as_str()),
        json!(format_ts(e.ts_ns)),
        json!(e.tid),
        json!(e.comm.lossy()),
        json!(crate::rules::access_names(e)),
        json!(result),
        json!(e.path.lossy()),
        lossy(&e.root),
    ]
}

fn print(
    out: &mut dyn Write,
    format: Format,
    view: &View,
    found: &Found,
    key: Key,
) -> std::io::Result<()> {
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
            procs.write_view(format, view, out)?;
            // Opens as full events, tagged, so nothing recorded is left out.
            for e in opens {
                let line = e.to_json_line();
                writeln!(out, "{{\"kind\":\"open\",{}", &line[1..])?;
            }
            Ok(())
        }
        Format::Csv | Format::Table => {
            procs.write_view(format, view, out)?;
            writeln!(out)?;
            files.write_view(format, view, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Str;

    /// Processes of pid 7: (start, exit).
    fn found(lives: &[(i64, Option<i64>)]) -> Found {
        let mut f = Found::default();
        for &(start, exit) in lives {
            let p = Process {
                exe: Some(Str::from("/usr/bin/sleep")),
                ..Process::from_event(7, start, 1, Str::from("sleep"), 0, 0)
            };
            f.images
                .entry((7, start))
                .or_default()
                .insert(image_order(&p), (Arc::new(p), exit.map(|t| (0, t))));
        }
        f
    }

    /// Issue #25 item 7: `proc PID` silently showed a later process that reused the pid.
    #[test]
    fn proc_pid_reused_lists_the_processes_and_asks_for_at() {
        let all = TimeRange::default();
        let f = found(&[(100, Some(200)), (300, None)]);
        let Err(NoChoice::Several(keys)) = choose(&f, None, &all) else {
            panic!("two processes had the pid: no silent choice");
        };
        assert_eq!(keys, vec![(7, 100), (7, 300)]);
        let text = NoChoice::Several(keys).describe(7, &f);
        assert!(text.contains("--at") && text.contains("exited 1970-01-01T00:00:00.000000200Z"));
        assert!(text.contains("/usr/bin/sleep"), "{text}");
        // --at picks the one running then; between the two, none was.
        assert_eq!(choose(&f, Some(150), &all), Ok((7, 100)));
        assert_eq!(choose(&f, Some(400), &all), Ok((7, 300)));
        assert_eq!(choose(&f, Some(250), &all), Err(NoChoice::None(Some(250))));
        // A range in which only one was alive needs no --at.
        let later = TimeRange {
            since: Some(250),
            until: None,
        };
        assert_eq!(choose(&f, None, &later), Ok((7, 300)));
        assert_eq!(choose(&found(&[(100, None)]), None, &all), Ok((7, 100)));
        assert_eq!(choose(&found(&[]), None, &all), Err(NoChoice::None(None)));
    }
}
