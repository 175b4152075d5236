//! The process tree of a time range (the model `proc --tree`, `query --tree` and the HTML report
//! draw): processes from the segments' process tables, joined parent → child through the lineage
//! each image carries (so a parent that started before the range is still shown), with what each
//! process did in the range — opens, failed opens, writes, other operations, the files, the events
//! a query matched and the alerts of a rule set.
//!
//! A node is a *process* (pid and start), not an image: its exe and argv are its last image's in
//! the store. The model is plain data (`serde::Serialize`): the report puts it in its page as JSON.
//! Times are nanoseconds since the epoch (a page's JavaScript reads them as doubles, to the µs).
//! Bounded: [`Caps`] limits the processes and the files per process kept, and [`Cut`] says what
//! was left out.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;

use serde::Serialize;

use crate::event::{Event, Op};
use crate::process::Process;
use crate::rules::{Alerter, Raised, RuleSet};
use crate::store::{Reader, ScanStats, SegmentData, TimeRange};

/// A process: its pid and start time (pids are reused; with its start, never).
pub type Key = (u32, i64);

/// An exit as a segment saw it: wait status and time.
pub type Exit = (i32, i64);

/// How much a forest holds at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Processes (a selection's first ones in drawing order; ancestors before descendants).
    pub max_processes: usize,
    /// Distinct files listed per process (the first ones it used).
    pub max_files: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_processes: 10_000,
            max_files: 50,
        }
    }
}

/// What a forest left out to stay within its [`Caps`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Cut {
    /// Processes of the selection not in `nodes`.
    pub processes: u64,
    /// Events of the kept processes on files not listed in their `files`.
    pub file_events: u64,
}

/// One file a process used in the range.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FileUse {
    pub path: String,
    /// When the process first used it.
    pub first_ns: i64,
    pub opens: u64,
    /// Events on it that failed (opens and operations).
    pub failed: u64,
    /// Events that wrote it (an open for writing, a rename into it, a truncate…).
    pub writes: u64,
    /// The operations other than opens done on it, by name (`unlink`, `rename`…), sorted.
    pub operations: Vec<String>,
}

/// One process of a forest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    pub pid: u32,
    pub ppid: u32,
    pub start_ns: i64,
    /// When it exited, if a segment saw it.
    pub exit_ns: Option<i64>,
    /// Its exit: `"0"`, `"1"`… or `"signal 9"`, if seen.
    pub exit: Option<String>,
    pub comm: String,
    pub exe: Option<String>,
    pub argv: Vec<String>,
    pub uid: u32,
    /// The user name the recording knew the uid as (from its events), if any.
    pub user: Option<String>,
    pub container: Option<String>,
    /// Distance from its root (roots are 0).
    pub depth: usize,
    /// Its parent's index in `Forest::nodes`.
    pub parent: Option<usize>,
    /// Its children's indices, by start time.
    pub children: Vec<usize>,
    /// Shown for context only: an ancestor (or a link between selected processes) that is not
    /// itself selected.
    pub context: bool,
    pub opens: u64,
    /// Events that failed (opens and operations).
    pub failed: u64,
    pub writes: u64,
    /// Events other than opens (rename, unlink, chmod…).
    pub operations: u64,
    /// Events a query's filters or rule matched (0 without a query).
    pub matched: u64,
    /// Alerts a rule set raised on its events (throttled as `replay` prints them).
    pub alerts: u64,
    /// The rules of those alerts, sorted.
    pub rules: Vec<String>,
    /// The files it used, first used first (at most `Caps::max_files`).
    pub files: Vec<FileUse>,
}

/// The processes of a selection as trees.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Forest {
    /// Depth first: each root, then its subtree; siblings by start time.
    pub nodes: Vec<Node>,
    /// Indices of the roots in `nodes`.
    pub roots: Vec<usize>,
    pub cut: Cut,
}

/// Picks processes (by their last image).
pub type Pick = Box<dyn Fn(&Process) -> bool>;

/// Which processes a forest shows.
pub enum Scope {
    /// Every process alive in the range, with the ancestors that started them as context.
    All,
    /// One process and its descendants, with its ancestors above it as context.
    Process(Key),
    /// The processes with matched events and the processes `anchor` picks (alive in the range),
    /// joined through the processes between them (as context); each topmost one is a root.
    Matched(Option<Pick>),
}

/// What is gathered about one process while reading.
#[derive(Default)]
struct Acc {
    /// Its last image in the store.
    image: Option<Arc<Process>>,
    parent: Option<Key>,
    exit: Option<Exit>,
    /// An image of it was alive in the range.
    in_range: bool,
    user: Option<String>,
    opens: u64,
    failed: u64,
    writes: u64,
    operations: u64,
    matched: u64,
    alerts: u64,
    rules: BTreeSet<String>,
    files: Vec<FileUse>,
    file_index: HashMap<Vec<u8>, usize>,
    files_cut: u64,
}

/// Gathers a forest from a store's process tables, events, matches and alerts, in any order.
pub struct Builder {
    range: TimeRange,
    caps: Caps,
    procs: HashMap<Key, Acc>,
    /// Events whose process is unknown (recorded before lineage).
    pub unattributed: u64,
}

fn key(p: &Process) -> Key {
    (p.pid, p.start_ns)
}

impl Builder {
    pub fn new(range: TimeRange, caps: Caps) -> Builder {
        Builder {
            range,
            caps,
            procs: HashMap::new(),
            unattributed: 0,
        }
    }

    /// Takes one image (and, through its lineage, its ancestors). `exit` is its exit as a
    /// segment saw it.
    pub fn image(&mut self, p: &Arc<Process>, exit: Option<Exit>) {
        let alive = self
            .range
            .overlaps(p.start_ns, exit.map_or(i64::MAX, |(_, t)| t));
        let acc = self.learn(p);
        acc.in_range |= alive;
        acc.exit = acc.exit.or(exit);
    }

    /// Takes every process image of a segment.
    pub fn segment(&mut self, seg: &SegmentData) {
        // Unreadable process tables show up as the segment's scan error.
        if let Ok(procs) = seg.processes() {
            for sp in procs {
                self.image(&sp.process, sp.exit);
            }
        }
    }

    /// Records an image and its ancestors (without marking them alive in the range).
    fn learn(&mut self, p: &Arc<Process>) -> &mut Acc {
        let mut child = Some(p.clone());
        let mut up = p.ancestors().cloned().collect::<Vec<_>>().into_iter();
        while let Some(img) = child {
            let parent = img.parent.as_deref().map(key);
            let acc = self.procs.entry(key(&img)).or_default();
            acc.parent = acc.parent.or(parent);
            let later = acc
                .image
                .as_ref()
                .is_none_or(|have| have.exec_ns.unwrap_or(0) <= img.exec_ns.unwrap_or(0));
            if later {
                acc.image = Some(img);
            }
            child = up.next();
        }
        self.procs.entry(key(p)).or_default()
    }

    /// Counts one event of the range for its process.
    pub fn event(&mut self, ev: &Event) {
        let Some(p) = &ev.process else {
            self.unattributed += 1;
            return;
        };
        let max_files = self.caps.max_files;
        // The lineage is walked once per image, not per event.
        let known = self.procs.get(&key(p)).and_then(|a| a.image.as_ref());
        if !known.is_some_and(|have| Arc::ptr_eq(have, p) || have.exec_ns >= p.exec_ns) {
            self.learn(p);
        }
        let Some(acc) = self.procs.get_mut(&key(p)) else {
            return;
        };
        acc.in_range = true;
        if acc.user.is_none() {
            acc.user = ev.user.as_ref().map(|u| u.lossy().into_owned());
        }
        let failed = ev.ret < 0;
        let writes = crate::rules::writes(ev);
        let open = ev.op == Op::Open;
        acc.opens += u64::from(open);
        acc.operations += u64::from(!open);
        acc.failed += u64::from(failed);
        acc.writes += u64::from(writes);
        let path = ev.path.as_bytes();
        let slot = match acc.file_index.get(path) {
            Some(&i) => i,
            None if acc.files.len() < max_files => {
                acc.files.push(FileUse {
                    path: ev.path.lossy().into_owned(),
                    first_ns: ev.ts_ns,
                    ..FileUse::default()
                });
                acc.file_index.insert(path.to_vec(), acc.files.len() - 1);
                acc.files.len() - 1
            }
            None => {
                acc.files_cut += 1;
                return;
            }
        };
        let f = &mut acc.files[slot];
        f.opens += u64::from(open);
        f.failed += u64::from(failed);
        f.writes += u64::from(writes);
        if !open && !f.operations.iter().any(|o| o == ev.op.as_str()) {
            f.operations.push(ev.op.as_str().to_owned());
            f.operations.sort();
        }
    }

    /// Counts an event a query matched (after [`Builder::event`] for it).
    pub fn matched(&mut self, ev: &Event) {
        if let Some(p) = &ev.process {
            self.procs.entry(key(p)).or_default().matched += 1;
        }
    }

    /// Counts an alert of `rule` on an event.
    pub fn alert(&mut self, ev: &Event, rule: &str) {
        if let Some(p) = &ev.process {
            let acc = self.learn(p);
            acc.alerts += 1;
            if !acc.rules.contains(rule) {
                acc.rules.insert(rule.to_owned());
            }
        }
    }

    /// The processes with `pid` alive in the range, by start.
    pub fn processes_with_pid(&self, pid: u32) -> Vec<Key> {
        let mut keys: Vec<Key> = self
            .procs
            .iter()
            .filter(|(k, a)| k.0 == pid && a.in_range)
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        keys
    }

    /// A process's last image in the store and its exit, if seen.
    pub fn last_image(&self, k: Key) -> Option<(Arc<Process>, Option<Exit>)> {
        let a = self.procs.get(&k)?;
        Some((a.image.clone()?, a.exit))
    }

    /// The forest of `scope`.
    pub fn build(mut self, scope: &Scope) -> Forest {
        let mut children: HashMap<Key, Vec<Key>> = HashMap::new();
        for (k, a) in &self.procs {
            if let Some(p) = a.parent.filter(|p| self.procs.contains_key(p)) {
                children.entry(p).or_default().push(*k);
            }
        }
        for c in children.values_mut() {
            c.sort_by_key(|k| (k.1, k.0));
        }
        let parent_of = |k: &Key| self.procs.get(k).and_then(|a| a.parent);
        // Selected processes, and which are context only.
        let mut selected: BTreeSet<Key> = BTreeSet::new();
        let mut context: BTreeSet<Key> = BTreeSet::new();
        match scope {
            Scope::All => {
                selected.extend(
                    self.procs
                        .iter()
                        .filter(|(_, a)| a.in_range)
                        .map(|(k, _)| *k),
                );
                for k in selected.clone() {
                    let mut up = parent_of(&k);
                    while let Some(p) = up.filter(|p| self.procs.contains_key(p)) {
                        if selected.contains(&p) || !context.insert(p) {
                            break;
                        }
                        up = parent_of(&p);
                    }
                }
            }
            Scope::Process(root) => {
                let mut stack = vec![*root];
                while let Some(k) = stack.pop() {
                    if self.procs.get(&k).is_some_and(|a| a.in_range || k == *root) {
                        selected.insert(k);
                        stack.extend(children.get(&k).into_iter().flatten().copied());
                    }
                }
                let mut up = parent_of(root);
                while let Some(p) =
                    up.filter(|p| self.procs.contains_key(p) && !context.contains(p))
                {
                    context.insert(p);
                    up = parent_of(&p);
                }
            }
            Scope::Matched(anchor) => {
                selected.extend(
                    self.procs
                        .iter()
                        .filter(|(_, a)| {
                            a.matched > 0
                                || a.in_range
                                    && anchor
                                        .as_ref()
                                        .is_some_and(|f| a.image.as_deref().is_some_and(f))
                        })
                        .map(|(k, _)| *k),
                );
                // The links between selected processes, as context.
                for k in selected.clone() {
                    let mut path = Vec::new();
                    let mut up = parent_of(&k);
                    while let Some(p) = up.filter(|p| self.procs.contains_key(p)) {
                        if selected.contains(&p) || context.contains(&p) {
                            context.extend(path.drain(..));
                            break;
                        }
                        path.push(p);
                        up = parent_of(&p);
                    }
                }
            }
        }
        let shown = |k: &Key| selected.contains(k) || context.contains(k);
        let mut roots: Vec<Key> = selected
            .iter()
            .chain(context.iter())
            .filter(|k| !parent_of(k).is_some_and(|p| shown(&p)))
            .copied()
            .collect();
        roots.sort_by_key(|k| (k.1, k.0));
        roots.dedup();
        let total = selected.iter().chain(context.iter()).count() as u64;
        // Depth first, cut at the cap (ancestors always come before their descendants).
        let mut forest = Forest::default();
        let mut stack: Vec<(Key, Option<usize>, usize)> =
            roots.iter().rev().map(|k| (*k, None, 0)).collect();
        while let Some((k, parent, depth)) = stack.pop() {
            if forest.nodes.len() >= self.caps.max_processes {
                break;
            }
            let Some(acc) = self.procs.remove(&k) else {
                continue;
            };
            let i = forest.nodes.len();
            match parent {
                Some(p) => forest.nodes[p].children.push(i),
                None => forest.roots.push(i),
            }
            forest.cut.file_events += acc.files_cut;
            forest.nodes.push(node(
                k,
                acc,
                parent,
                depth,
                context.contains(&k) && !selected.contains(&k),
            ));
            for c in children.get(&k).into_iter().flatten().rev() {
                if shown(c) {
                    stack.push((*c, Some(i), depth + 1));
                }
            }
        }
        forest.cut.processes = total - forest.nodes.len() as u64;
        forest
    }
}

fn node(k: Key, acc: Acc, parent: Option<usize>, depth: usize, context: bool) -> Node {
    let p = acc.image.as_deref();
    let text = |s: Option<&crate::bytes::Str>| s.map(|s| s.lossy().into_owned());
    Node {
        pid: k.0,
        // The parent's pid when its lineage is known (a snapshot image may say 0).
        ppid: acc.parent.map_or(p.map_or(0, |p| p.ppid), |k| k.0),
        start_ns: k.1,
        exit_ns: acc.exit.map(|(_, t)| t),
        exit: acc.exit.map(|(s, _)| exit_text(s)),
        comm: p.map_or_else(String::new, |p| p.comm.lossy().into_owned()),
        exe: text(p.and_then(|p| p.exe.as_ref())),
        argv: p.map_or_else(Vec::new, |p| {
            p.args()
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        }),
        uid: p.map_or(0, |p| p.uid),
        user: acc.user,
        container: text(p.and_then(|p| p.container_id.as_ref())),
        depth,
        parent,
        children: Vec::new(),
        context,
        opens: acc.opens,
        failed: acc.failed,
        writes: acc.writes,
        operations: acc.operations,
        matched: acc.matched,
        alerts: acc.alerts,
        rules: acc.rules.into_iter().collect(),
        files: acc.files,
    }
}

/// A wait status as `proc` shows it: the exit code, or `signal N`.
pub fn exit_text(status: i32) -> String {
    if status & 0x7f != 0 {
        format!("signal {}", status & 0x7f)
    } else {
        ((status >> 8) & 0xff).to_string()
    }
}

/// Reads `range` of a store into a builder: process tables, every event, and with `rules` the
/// alerts they raise (as `replay` prints them). `on_event` sees each event (progress bars) and
/// says whether a query matches it.
pub fn read(
    builder: &mut Builder,
    reader: &Reader,
    range: &TimeRange,
    rules: Option<&RuleSet>,
    mut on_event: impl FnMut(&Event) -> bool,
) -> ScanStats {
    let b = std::cell::RefCell::new(builder);
    let mut each = |ev: &Event| {
        let mut b = b.borrow_mut();
        b.event(ev);
        if on_event(ev) {
            b.matched(ev);
        }
    };
    match rules {
        Some(set) => {
            let mut alerter = Alerter::new(set);
            super::replay::alerts_with(
                &mut alerter,
                reader,
                range,
                |seg| b.borrow_mut().segment(seg),
                &mut each,
                |r| {
                    if let Raised::Alert(a) = r {
                        b.borrow_mut().alert(a.event, &a.rule.name);
                    }
                    ControlFlow::Continue(())
                },
            )
        }
        None => reader.scan_with(
            range,
            |seg| b.borrow_mut().segment(seg),
            |ev| {
                each(ev);
                ControlFlow::Continue(())
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Str;

    fn proc(pid: u32, start: i64, exe: &str, parent: Option<&Arc<Process>>) -> Arc<Process> {
        Arc::new(Process {
            exe: Some(Str::from(exe)),
            argv: Some(Str::from(format!("{exe}\0-x").as_str())),
            parent: parent.cloned(),
            ..Process::from_event(
                pid,
                start,
                parent.map_or(0, |p| p.pid),
                Str::from("c"),
                0,
                0,
            )
        })
    }

    fn open(p: &Arc<Process>, ts: i64, path: &str, ret: i64) -> Event {
        Event {
            ts_ns: ts,
            pid: p.pid,
            path: Str::from(path),
            ret,
            process: Some(p.clone()),
            user: Some(Str::from("alice")),
            ..Event::default()
        }
    }

    /// init(1) → sshd(10) → bash(20) → {cat(30), curl(31)}; cron(40) under init.
    fn sample() -> (Builder, Vec<Arc<Process>>) {
        let init = proc(1, 0, "/sbin/init", None);
        let sshd = proc(10, 10, "/usr/sbin/sshd", Some(&init));
        let bash = proc(20, 20, "/bin/bash", Some(&sshd));
        let cat = proc(30, 30, "/bin/cat", Some(&bash));
        let curl = proc(31, 31, "/usr/bin/curl", Some(&bash));
        let cron = proc(40, 40, "/usr/sbin/cron", Some(&init));
        let mut b = Builder::new(TimeRange::default(), Caps::default());
        for p in [&cron, &curl, &cat, &bash, &sshd] {
            b.image(p, None);
        }
        b.image(&cat, Some((9 << 8, 35)));
        (b, vec![init, sshd, bash, cat, curl, cron])
    }

    fn shape(f: &Forest) -> Vec<(usize, u32)> {
        f.nodes.iter().map(|n| (n.depth, n.pid)).collect()
    }

    #[test]
    fn forest_nests_children_under_parents_by_start_with_ancestors_as_context() {
        let (b, _) = sample();
        let f = b.build(&Scope::All);
        assert_eq!(
            shape(&f),
            [(0, 1), (1, 10), (2, 20), (3, 30), (3, 31), (1, 40)]
        );
        assert_eq!(f.roots, [0]);
        assert!(f.nodes[0].context, "init only started them: context");
        assert!(!f.nodes[1].context);
        assert_eq!(f.nodes[2].children, [3, 4]);
        assert_eq!(f.nodes[3].parent, Some(2));
        assert_eq!(f.nodes[3].exit.as_deref(), Some("9"));
        assert_eq!(f.nodes[3].exit_ns, Some(35));
        assert_eq!(f.nodes[3].argv, ["/bin/cat", "-x"]);
        assert_eq!(f.cut, Cut::default());
    }

    #[test]
    fn process_scope_is_the_subtree_below_its_ancestor_chain() {
        let (b, _) = sample();
        let f = b.build(&Scope::Process((20, 20)));
        assert_eq!(shape(&f), [(0, 1), (1, 10), (2, 20), (3, 30), (3, 31)]);
        let ctx: Vec<bool> = f.nodes.iter().map(|n| n.context).collect();
        assert_eq!(ctx, [true, true, false, false, false]);
    }

    #[test]
    fn events_count_opens_failures_writes_operations_and_files_per_process() {
        let (mut b, p) = sample();
        let cat = &p[3];
        b.event(&open(cat, 31, "/etc/shadow", 3));
        b.event(&open(cat, 32, "/etc/shadow", -13));
        b.event(&Event {
            flags: libc::O_WRONLY as u64,
            ..open(cat, 33, "/tmp/x", 4)
        });
        b.event(&Event {
            op: Op::Unlink,
            ..open(cat, 34, "/tmp/x", 0)
        });
        b.alert(&open(cat, 32, "/etc/shadow", -13), "shadow_read");
        b.matched(&open(cat, 31, "/etc/shadow", 3));
        let f = b.build(&Scope::Process((30, 30)));
        let n = f.nodes.iter().find(|n| n.pid == 30).unwrap();
        assert_eq!((n.opens, n.failed, n.writes, n.operations), (3, 1, 1, 1));
        assert_eq!((n.alerts, n.matched), (1, 1));
        assert_eq!(n.rules, ["shadow_read"]);
        assert_eq!(n.user.as_deref(), Some("alice"));
        assert_eq!(n.files.len(), 2);
        assert_eq!((n.files[0].opens, n.files[0].failed), (2, 1));
        assert_eq!(n.files[1].operations, ["unlink"]);
        assert_eq!((n.files[1].opens, n.files[1].writes), (1, 1));
    }

    #[test]
    fn caps_cut_processes_and_files_and_say_how_many() {
        let (_, p) = sample();
        let mut b = Builder::new(
            TimeRange::default(),
            Caps {
                max_processes: 3,
                max_files: 1,
            },
        );
        for q in &p[1..] {
            b.image(q, None);
        }
        b.event(&open(&p[1], 11, "/a", 3));
        b.event(&open(&p[1], 12, "/b", 3));
        b.event(&open(&p[1], 13, "/b", 3));
        let f = b.build(&Scope::All);
        assert_eq!(shape(&f), [(0, 1), (1, 10), (2, 20)]);
        assert_eq!(
            f.cut,
            Cut {
                processes: 3,
                file_events: 2
            }
        );
        assert_eq!(f.nodes[1].files.len(), 1);
        assert_eq!(f.nodes[1].opens, 3, "counts stay whole");
    }

    #[test]
    fn matched_scope_roots_at_the_anchor_and_links_matches_through_context() {
        let (mut b, p) = sample();
        b.event(&open(&p[4], 32, "/x", 3));
        b.matched(&open(&p[4], 32, "/x", 3));
        let sshd = |q: &Process| {
            q.exe
                .as_ref()
                .is_some_and(|e| e.as_bytes() == b"/usr/sbin/sshd")
        };
        let f = b.build(&Scope::Matched(Some(Box::new(sshd))));
        assert_eq!(shape(&f), [(0, 10), (1, 20), (2, 31)]);
        let ctx: Vec<bool> = f.nodes.iter().map(|n| n.context).collect();
        assert_eq!(ctx, [false, true, false]);
        assert_eq!(f.nodes[2].matched, 1);
        // Without an anchor, the matched process alone.
        let (mut b, p) = sample();
        b.matched(&open(&p[4], 32, "/x", 3));
        assert_eq!(shape(&b.build(&Scope::Matched(None))), [(0, 31)]);
    }

    #[test]
    fn processes_outside_the_range_are_not_selected() {
        let (_, p) = sample();
        let mut b = Builder::new(
            TimeRange {
                since: Some(36),
                until: None,
            },
            Caps::default(),
        );
        b.image(&p[3], Some((0, 35)));
        b.image(&p[5], None);
        assert_eq!(b.processes_with_pid(30), Vec::<Key>::new());
        assert_eq!(b.processes_with_pid(40), [(40, 40)]);
        assert_eq!(shape(&b.build(&Scope::All)), [(0, 1), (1, 40)]);
    }

    #[test]
    fn forest_serialises_to_json_for_the_report() {
        let (b, _) = sample();
        let v = serde_json::to_value(b.build(&Scope::All)).unwrap();
        assert_eq!(v["nodes"][1]["exe"], "/usr/sbin/sshd");
        assert_eq!(v["nodes"][2]["children"], serde_json::json!([3, 4]));
        assert_eq!(v["cut"]["processes"], 0);
    }
}
