//! The live process table: kernel lifecycle records and the `/proc` snapshot taken at start →
//! the [`Process`] image each open belongs to.
//!
//! Records reach this table in kernel-time order (after the reorder window), so an open is
//! attributed to the image its process ran at that instant: opens before an exec go to the old
//! image, opens after it to the new one. Keys are `(pid, start_boottime)`; the `/proc` snapshot only
//! knows the start to the clock tick (`/proc/PID/stat` field 22), so a snapshot entry is adopted
//! by the first kernel key that falls in its tick.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::decode::{ProcKind, ProcRecord};
use super::users::Users;
use crate::bytes::Str;
use crate::event::Event;
use crate::file_id::FileId;
use crate::process::{container_id, tty_from_nr, ProcSource, Process};

/// `/proc/PID/stat` start times are in USER_HZ ticks (100 on every Linux ABI).
const TICK_NS: u64 = 10_000_000;

/// An exited process stays resolvable this long (late opens of its last moments).
const EXITED_GRACE_NS: i64 = 5_000_000_000;

struct Entry {
    image: Arc<Process>,
    exited_at: Option<i64>,
}

pub struct ProcTable {
    /// Boot clock → wall clock.
    anchor_ns: i64,
    live: FxHashMap<(u32, u64), Entry>,
    /// The newest start seen per pid: the parent of a process no record told us about.
    newest: FxHashMap<u32, u64>,
    /// Running at start, keyed by `(pid, start tick)`, until a kernel key adopts them.
    snapshot: FxHashMap<(u32, u64), Arc<Process>>,
    users: Users,
    /// The image the previous open resolved to: most opens come in runs of one process.
    last: Option<((u32, u64), Arc<Process>)>,
    /// Completes each image learnt from a record or the snapshot before it is shared (the
    /// recorder's `exe_verified`).
    judge: Option<Judge>,
}

/// See [`ProcTable::judge_images`].
type Judge = Box<dyn FnMut(&mut Process) + Send>;

/// What applying a record means for the store.
pub enum Change {
    /// A new image to store.
    Image(Arc<Process>),
    /// A process ended.
    Exit(Arc<Process>, i32, i64),
}

impl ProcTable {
    pub fn new(anchor_ns: i64, users: HashMap<u32, Str>) -> ProcTable {
        ProcTable {
            anchor_ns,
            live: FxHashMap::default(),
            newest: FxHashMap::default(),
            snapshot: FxHashMap::default(),
            users: Users::fixed(users),
            last: None,
            judge: None,
        }
    }

    /// Names users from `passwd`, read again as it changes while recording (see [`Users`]).
    pub fn reading_users(self, passwd: &Path) -> ProcTable {
        ProcTable {
            users: Users::from_passwd(passwd),
            ..self
        }
    }

    /// Has `f` complete every image made from now on (before the snapshot, to cover it).
    pub fn judge_images(&mut self, f: impl FnMut(&mut Process) + Send + 'static) {
        self.judge = Some(Box::new(f));
    }

    fn judged(&mut self, mut p: Process) -> Arc<Process> {
        if let Some(j) = self.judge.as_mut() {
            j(&mut p);
        }
        Arc::new(p)
    }

    pub fn len(&self) -> usize {
        self.live.len() + self.snapshot.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn wall(&self, boot: u64) -> i64 {
        (boot as i64).wrapping_add(self.anchor_ns)
    }

    /// Loads the processes running now from `/proc` (after the probes are attached, so nothing
    /// started in between is missed: it is either here or in a kernel record).
    pub fn snapshot_proc(&mut self, proc_root: &Path, boot_now_ns: u64) {
        let mut found: Vec<(u64, Process)> = Vec::new();
        let Ok(dir) = fs::read_dir(proc_root) else {
            return;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some((tick, p)) = read_proc_entry(&entry.path(), pid, self.anchor_ns) {
                // A tick after now is a pid reused after the scan began: not what ran at start.
                if tick * TICK_NS <= boot_now_ns + TICK_NS {
                    found.push((tick, p));
                }
            }
        }
        // Parents start before their children: link in start order.
        found.sort_by_key(|(tick, p)| (*tick, p.pid));
        let mut by_pid: FxHashMap<u32, Arc<Process>> = FxHashMap::default();
        for (tick, mut p) in found {
            p.parent = by_pid.get(&p.ppid).cloned();
            let p = self.judged(p);
            by_pid.insert(p.pid, p.clone());
            self.snapshot.insert((p.pid, tick), p);
        }
    }

    /// The image of `(pid, start)`, adopting a snapshot entry or making one from an open.
    fn resolve(&mut self, pid: u32, start: u64) -> Option<Arc<Process>> {
        if let Some(e) = self.live.get(&(pid, start)) {
            return Some(e.image.clone());
        }
        // The snapshot knows the start to the tick only; its image (already stored) keeps that.
        let image = self.snapshot.remove(&(pid, start / TICK_NS))?;
        self.insert(pid, start, image.clone());
        Some(image)
    }

    fn insert(&mut self, pid: u32, start: u64, image: Arc<Process>) {
        self.live.insert(
            (pid, start),
            Entry {
                image,
                exited_at: None,
            },
        );
        let n = self.newest.entry(pid).or_insert(start);
        *n = (*n).max(start);
    }

    /// Applies a lifecycle record; returns what to store.
    pub fn apply(&mut self, r: &ProcRecord) -> Option<Change> {
        // An exec gives the process a new image; never serve the old one from the cache.
        self.last = None;
        let (pid, ppid) = (r.image.pid, r.image.ppid);
        match r.kind {
            ProcKind::Exit => {
                let image = self.resolve(pid, r.start_boot)?;
                if let Some(e) = self.live.get_mut(&(pid, r.start_boot)) {
                    e.exited_at = Some(r.ts_ns);
                }
                Some(Change::Exit(image, r.exit_code, r.ts_ns))
            }
            ProcKind::Fork => {
                let parent = self.resolve(ppid, r.parent_start_boot);
                // Until it execs, a child runs its parent's image (and stays in its cgroup unless
                // it was cloned into another).
                let inherited = parent.as_deref();
                let same_cgroup = inherited.is_some_and(|p| p.cgroup_id == r.image.cgroup_id);
                let from_parent = |f: fn(&Process) -> Option<Str>| inherited.and_then(f);
                let image = self.judged(Process {
                    exe: from_parent(|p| p.exe.clone()),
                    exe_id: inherited.and_then(|p| p.exe_id),
                    argv: from_parent(|p| p.argv.clone()),
                    args_truncated: inherited.is_some_and(|p| p.args_truncated),
                    cgroup: from_parent(|p| p.cgroup.clone()).filter(|_| same_cgroup),
                    container_id: from_parent(|p| p.container_id.clone()).filter(|_| same_cgroup),
                    tty: from_parent(|p| p.tty.clone()),
                    root: from_parent(|p| p.root.clone()),
                    source: ProcSource::Fork,
                    parent: parent.clone(),
                    ..r.image.clone()
                });
                self.insert(pid, r.start_boot, image.clone());
                Some(Change::Image(image))
            }
            ProcKind::Exec => {
                // An exec keeps the process (and its parent); only the image changes.
                let parent = match self.resolve(pid, r.start_boot) {
                    Some(old) => old.parent.clone(),
                    None => self.resolve(ppid, r.parent_start_boot),
                };
                let image = self.judged(Process {
                    source: ProcSource::Exec,
                    exec_ns: Some(r.ts_ns),
                    parent,
                    ..r.image.clone()
                });
                self.insert(pid, r.start_boot, image.clone());
                Some(Change::Image(image))
            }
        }
    }

    /// Attaches the opener's image (and user name) to an event; returns the image when it is new
    /// (a process no record or snapshot knew: made from what the open carried).
    ///
    /// What `ev` holds already is kept where it is the same (the recorder recycles events): a
    /// new reference is an atomic update.
    pub fn attach(&mut self, ev: &mut Event, start: u64) -> Option<Arc<Process>> {
        match self.users.get(ev.uid) {
            Some(u)
                if ev
                    .user
                    .as_ref()
                    .is_some_and(|e| Arc::ptr_eq(&e.bytes, &u.bytes)) => {}
            u => ev.user = u.cloned(),
        }
        let key = (ev.pid, start);
        if let Some((k, p)) = &self.last {
            if *k == key {
                if !ev.process.as_ref().is_some_and(|e| Arc::ptr_eq(e, p)) {
                    ev.process = Some(p.clone());
                }
                return None;
            }
        }
        if let Some(p) = self.resolve(ev.pid, start) {
            self.last = Some((key, p.clone()));
            ev.process = Some(p);
            return None;
        }
        let parent = self
            .newest
            .get(&ev.ppid)
            .copied()
            .and_then(|s| self.resolve(ev.ppid, s));
        let image = Arc::new(Process {
            parent,
            ..Process::from_event(
                ev.pid,
                self.wall(start),
                ev.ppid,
                ev.comm.clone(),
                ev.uid,
                ev.gid,
            )
        });
        self.insert(ev.pid, start, image.clone());
        self.last = Some((key, image.clone()));
        ev.process = Some(image.clone());
        Some(image)
    }

    /// Forgets processes that exited a while ago, and snapshot entries no open adopted (they
    /// were stored when recording began).
    pub fn sweep(&mut self, now_ns: i64) {
        self.live
            .retain(|_, e| e.exited_at.is_none_or(|t| now_ns - t < EXITED_GRACE_NS));
        let newest = &mut self.newest;
        let live = &self.live;
        newest.retain(|pid, start| live.contains_key(&(*pid, *start)));
    }

    /// The snapshot's images, to store when recording begins.
    pub fn snapshot_images(&self) -> Vec<Arc<Process>> {
        let mut v: Vec<Arc<Process>> = self.snapshot.values().cloned().collect();
        v.sort_by_key(|p| (p.start_ns, p.pid));
        v
    }
}

/// One `/proc/PID` → its start tick and image (`None` for a process that vanished meanwhile).
fn read_proc_entry(dir: &Path, pid: u32, anchor_ns: i64) -> Option<(u64, Process)> {
    let stat = fs::read(dir.join("stat")).ok()?;
    // The comm is in parentheses and may contain anything: fields start after the last `)`.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let open = stat.iter().position(|&b| b == b'(')?;
    let comm = stat.get(open + 1..close)?.to_vec();
    let fields: Vec<&[u8]> = stat[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .collect();
    let num = |i: usize| -> Option<u64> { std::str::from_utf8(fields.get(i)?).ok()?.parse().ok() };
    // fields[0] is field 3 (state).
    let ppid = num(1)? as u32;
    let tty_nr = num(4)?;
    let start_tick = num(19)?;
    let status = fs::read_to_string(dir.join("status")).unwrap_or_default();
    let ids = |key: &str| -> Option<(u32, u32)> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let mut it = line[key.len()..].split_whitespace();
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    let (uid, euid) = ids("Uid:").unwrap_or((0, 0));
    let (gid, egid) = ids("Gid:").unwrap_or((0, 0));
    let audit = |f: &str| -> Option<u32> {
        fs::read_to_string(dir.join(f))
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|v| *v != u32::MAX)
    };
    // Kernel threads have no exe and an empty cmdline.
    let exe = fs::read_link(dir.join("exe"))
        .ok()
        .map(|p| Str::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())));
    let argv = fs::read(dir.join("cmdline")).ok().map(Str::new);
    let (cgroup, cgroup_id) = proc_cgroup(dir);
    let ns = |n: &str| -> Option<u32> {
        let link = fs::read_link(dir.join("ns").join(n)).ok()?;
        let s = link.to_str()?;
        s[s.find('[')? + 1..s.find(']')?].parse().ok()
    };
    let process = Process {
        pid,
        start_ns: ((start_tick * TICK_NS) as i64).wrapping_add(anchor_ns),
        exec_ns: None,
        ppid,
        parent: None,
        source: ProcSource::Procfs,
        comm: Str::new(comm),
        exe,
        argv,
        args_truncated: false,
        uid,
        gid,
        euid,
        egid,
        auid: audit("loginuid"),
        sessionid: audit("sessionid"),
        cgroup_id,
        container_id: cgroup
            .as_ref()
            .and_then(|c| container_id(c.as_bytes()))
            .map(|c| Str::from(c.as_str())),
        cgroup,
        pidns: ns("pid"),
        mntns: ns("mnt"),
        tty: tty_from_nr(tty_nr).map(|t| Str::from(t.as_str())),
        // Read as `exe` is: the link's text, never followed (kernel threads have none).
        cwd: fs::read_link(dir.join("cwd"))
            .ok()
            .map(|p| Str::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))),
        // As the exec probe records it: only a root that is not the namespace's own.
        root: fs::read_link(dir.join("root"))
            .ok()
            .filter(|r| r.as_os_str() != "/")
            .map(|r| Str::new(std::os::unix::ffi::OsStrExt::as_bytes(r.as_os_str()))),
        // The file /proc/PID/exe links to, as the kernel holds it (even when deleted).
        exe_id: fs::metadata(dir.join("exe")).ok().map(|m| FileId::of(&m)),
        exe_verified: None,
    };
    Some((start_tick, process))
}

/// The cgroup path as the exec probe records it: the unified one, or on a hybrid host where that
/// is the root, the memory controller's; with its id (the cgroup directory's inode).
fn proc_cgroup(dir: &Path) -> (Option<Str>, u64) {
    let Ok(text) = fs::read_to_string(dir.join("cgroup")) else {
        return (None, 0);
    };
    let mut unified = None;
    let mut memory = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" && ctrl.is_empty() {
            unified = Some(path.to_owned());
        } else if ctrl.split(',').any(|c| c == "memory") {
            memory = Some(path.to_owned());
        }
    }
    let (path, roots): (String, &[&str]) = match (&unified, &memory) {
        (Some(u), _) if u != "/" => (u.clone(), &["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]),
        (_, Some(m)) => (m.clone(), &["/sys/fs/cgroup/memory"]),
        (Some(u), None) => (u.clone(), &["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]),
        (None, None) => return (None, 0),
    };
    let id = roots
        .iter()
        .find_map(|r| fs::metadata(format!("{r}{path}")).ok())
        .map_or(0, |m| m.ino());
    (Some(Str::from(path.as_str())), id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attaching to an event that held another process and user (a recycled one) gives this
    /// open's, and one with no known user none: nothing of the old event is kept.
    #[test]
    fn attaching_to_a_recycled_event_replaces_its_process_and_user() {
        let users = HashMap::from([(0, Str::from("root")), (1000, Str::from("bob"))]);
        let mut t = ProcTable::new(0, users);
        let open = |pid, uid| Event {
            pid,
            ppid: 1,
            uid,
            comm: Str::from("cat"),
            ..Event::default()
        };
        let mut ev = open(10, 0);
        t.attach(&mut ev, 100);
        let first = ev.process.clone().expect("a process");
        assert_eq!(ev.user.as_ref().map(|u| u.as_bytes()), Some(&b"root"[..]));
        // The same slot, another opener: another process, another user, then none.
        let (process, user) = (ev.process.take(), ev.user.take());
        for (pid, uid, name) in [(20, 1000, Some(&b"bob"[..])), (30, 4242, None)] {
            let mut next = open(pid, uid);
            (next.process, next.user) = (process.clone(), user.clone());
            t.attach(&mut next, 200);
            let p = next.process.expect("a process");
            assert_eq!(p.pid, pid);
            assert!(!Arc::ptr_eq(&p, &first));
            assert_eq!(next.user.as_ref().map(|u| u.as_bytes()), name);
        }
        // The same opener again keeps the very image it was given.
        let mut again = open(10, 0);
        again.process = Some(first.clone());
        t.attach(&mut again, 100);
        assert!(Arc::ptr_eq(again.process.as_ref().unwrap(), &first));
    }

    #[test]
    fn own_proc_entry_reads() {
        let pid = std::process::id();
        let (tick, p) = read_proc_entry(Path::new(&format!("/proc/{pid}")), pid, 0).unwrap();
        assert!(tick > 0);
        assert_eq!(p.pid, pid);
        assert!(p.exe.is_some());
        assert!(!p.args().is_empty());
        assert!(p.pidns.is_some());
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            p.cwd.as_ref().map(|c| c.as_bytes()),
            Some(std::os::unix::ffi::OsStrExt::as_bytes(cwd.as_os_str()))
        );
    }
}
