//! Process identity and lineage: which program opened a file, with which arguments, started by
//! what, in which container.
//!
//! A process is keyed by `(pid, start_ns)`: pids are reused, a pid with its start time never is.
//! What a process runs can change (`execve`), so lineage is kept per *image*: a [`Process`] is one
//! image of one process, from its exec (or its fork, until it execs, or the `/proc` snapshot taken
//! when recording started) on. An open refers to the image its process ran when it opened; an
//! image refers to its parent's image at the time of its fork, so `ancestors` say what actually
//! started it even if the parent later exec'd something else.

use std::sync::Arc;

use crate::bytes::Str;
use crate::file_id::FileId;
use crate::wire::wire_enum;

/// How many ancestors an event lists at most (pid 1 usually comes first).
pub const MAX_ANCESTORS: usize = 32;

wire_enum! {
    /// Where a process image's record came from. Codes are stored on disk: only append.
    ProcSource {
        // sched_process_exec: the image's exe, argv and credentials as the kernel had them.
        Exec = 1 => "exec",
        // sched_process_fork: a new process, still running its parent's image.
        Fork = 2 => "fork",
        // The /proc snapshot taken when `record` started (processes already running).
        Procfs = 3 => "procfs",
        // Seen by none of the above (e.g. lost records): only what its opens carried.
        Event = 4 => "event",
        // Rebuilt by `import` from the lineage keys of JSON lines.
        Import = 5 => "import",
    }
}

/// One image of one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// When the process started (ns since the epoch; from the kernel's `start_boottime`).
    pub start_ns: i64,
    /// When this image began (its exec); `None` when the record is not an exec.
    pub exec_ns: Option<i64>,
    pub ppid: u32,
    /// The parent's image when this process was forked, if known.
    pub parent: Option<Arc<Process>>,
    pub source: ProcSource,
    /// The process name when the image began (events carry the thread's name at each open).
    pub comm: Str,
    /// The executable as the kernel resolved it from `mm->exe_file` (` (deleted)` when unlinked;
    /// a memfd is `/memfd:NAME (deleted)`); `None` when unknown.
    pub exe: Option<Str>,
    /// argv as the process received it, NUL-separated (like `/proc/PID/cmdline`).
    pub argv: Option<Str>,
    /// The kernel's copy of argv was longer than kept (4096 bytes).
    pub args_truncated: bool,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// Login uid and audit session; `None` when unset (daemons started outside a login).
    pub auid: Option<u32>,
    pub sessionid: Option<u32>,
    pub cgroup_id: u64,
    /// The cgroup path (unified hierarchy; on a hybrid v1 host, the memory controller's).
    pub cgroup: Option<Str>,
    /// The container, parsed from the cgroup path (see [`container_id`]); `None` on the host.
    pub container_id: Option<Str>,
    pub pidns: Option<u32>,
    pub mntns: Option<u32>,
    /// The controlling terminal (`pts/0`, `tty1`), `None` when there is none.
    pub tty: Option<Str>,
    /// The working directory when the image began (its exec, or the `/proc` snapshot), as the
    /// host sees it; `None` when not recorded (fork records, segments before schema 7).
    pub cwd: Option<Str>,
    /// A chrooted process's root directory, as the host (its mount namespace's top) sees it;
    /// its `exe` and its opens' paths are the host's too. `None` when not chrooted.
    pub root: Option<Str>,
    /// The executable's identity (device and inode); `None` for images not from an exec record
    /// or segments written before identities were recorded.
    pub exe_id: Option<FileId>,
    /// `Some(true)` when the executable is the host's own file at `exe` (the same identity as
    /// the host's path, in the host's mount namespace, not chrooted): what an allow-list of
    /// executables may trust. `Some(false)`: a file that only bears the name. `None`: unknown
    /// (no identity recorded). Set by the recorder.
    pub exe_verified: Option<bool>,
}

impl Process {
    /// A process known only from an open: pid, start, parent pid and name.
    pub fn from_event(pid: u32, start_ns: i64, ppid: u32, comm: Str, uid: u32, gid: u32) -> Self {
        Process {
            pid,
            start_ns,
            exec_ns: None,
            ppid,
            parent: None,
            source: ProcSource::Event,
            comm,
            exe: None,
            argv: None,
            args_truncated: false,
            uid,
            gid,
            euid: uid,
            egid: gid,
            auid: None,
            sessionid: None,
            cgroup_id: 0,
            cgroup: None,
            container_id: None,
            pidns: None,
            mntns: None,
            tty: None,
            cwd: None,
            root: None,
            exe_id: None,
            exe_verified: None,
        }
    }

    /// Names this image across segments (each segment stores its own copy): pid, start, exec.
    pub fn image_key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.pid,
            self.start_ns,
            self.exec_ns.unwrap_or(0)
        )
    }

    /// argv as separate strings.
    pub fn args(&self) -> Vec<&[u8]> {
        match &self.argv {
            None => Vec::new(),
            Some(a) => split_args(a.as_bytes()),
        }
    }

    /// argv joined with spaces (what `cmdline:` rule patterns match).
    pub fn cmdline(&self) -> Vec<u8> {
        self.args().join(&b' ')
    }

    /// The parent, grandparent, … up to pid 1, an unknown parent or [`MAX_ANCESTORS`].
    pub fn ancestors(&self) -> impl Iterator<Item = &Arc<Process>> {
        let mut next = self.parent.as_ref();
        let mut n = 0;
        std::iter::from_fn(move || {
            let p = next.filter(|_| n < MAX_ANCESTORS)?;
            n += 1;
            next = if p.pid <= 1 { None } else { p.parent.as_ref() };
            Some(p)
        })
    }
}

/// argv bytes (NUL-separated, maybe NUL-terminated) → arguments.
pub fn split_args(b: &[u8]) -> Vec<&[u8]> {
    let b = b.strip_suffix(b"\0").unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0).collect()
}

/// The container a cgroup path belongs to, from the common runtimes' naming:
/// docker (`/docker/ID`, `docker-ID.scope`), containerd/CRI (`cri-containerd-ID.scope`,
/// `/kubepods/…/ID`), CRI-O (`crio-ID.scope`), podman (`libpod-ID.scope`, `/libpod_parent/…`),
/// where ID is 64 hex digits; otherwise a Kubernetes pod (`…pod<UID>.slice`, `/kubepods/…/pod<UID>`)
/// as `pod:<UID>`. `None` for host cgroups.
pub fn container_id(cgroup: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(cgroup).ok()?;
    let mut pod = None;
    for comp in text.split('/').rev() {
        let comp = comp.strip_suffix(".scope").unwrap_or(comp);
        let id = [
            "docker-",
            "cri-containerd-",
            "crio-",
            "libpod-",
            "containerd-",
            "",
        ]
        .iter()
        .find_map(|p| comp.strip_prefix(p).filter(|r| is_hex_id(r)));
        if let Some(id) = id {
            return Some(id.to_owned());
        }
        if pod.is_none() {
            pod = pod_uid(comp);
        }
    }
    pod.map(|u| format!("pod:{u}"))
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `kubepods-burstable-pod1234_5678….slice` (systemd driver, `_` for `-`) or `pod1234-5678-…`
/// (cgroupfs driver) → the pod UID with dashes.
fn pod_uid(comp: &str) -> Option<String> {
    let comp = comp.strip_suffix(".slice").unwrap_or(comp);
    let at = comp.rfind("pod")?;
    let uid = comp[at + 3..].replace('_', "-");
    let ok = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| {
            if [8, 13, 18, 23].contains(&i) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        });
    ok.then_some(uid)
}

/// Linux's tty names (`pts0`, the kernel's `tty->name`) as people write them (`pts/0`).
pub fn tty_display(kernel_name: &str) -> String {
    match kernel_name.strip_prefix("pts") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => format!("pts/{n}"),
        _ => kernel_name.to_owned(),
    }
}

/// A tty device number (`/proc/PID/stat`'s `tty_nr`) → its name; `None` for none or unknown.
pub fn tty_from_nr(nr: u64) -> Option<String> {
    if nr == 0 {
        return None;
    }
    let major = (nr >> 8) & 0xfff;
    let minor = (nr & 0xff) | ((nr >> 12) & 0xfff00);
    match major {
        136..=143 => Some(format!("pts/{}", (major - 136) * 256 + minor)),
        4 if minor < 64 => Some(format!("tty{minor}")),
        4 => Some(format!("ttyS{}", minor - 64)),
        5 if minor == 1 => Some("console".to_owned()),
        _ => Some(format!("tty({major}:{minor})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_of_common_runtimes() {
        let id = "3f4e".repeat(16);
        for path in [
            format!("/docker/{id}"),
            format!("/system.slice/docker-{id}.scope"),
            format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice/cri-containerd-{id}.scope"),
            format!("/kubepods/burstable/pod0a1b2c3d-4e5f-6789-abcd-ef0123456789/{id}"),
            format!("/machine.slice/libpod-{id}.scope/container"),
            format!("/kubepods.slice/crio-{id}.scope"),
        ] {
            assert_eq!(container_id(path.as_bytes()).as_deref(), Some(id.as_str()), "{path}");
        }
        assert_eq!(
            container_id(b"/kubepods.slice/kubepods-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice")
                .as_deref(),
            Some("pod:0a1b2c3d-4e5f-6789-abcd-ef0123456789")
        );
        for host in [
            "/",
            "/user.slice/user-1000.slice/session-2.scope",
            "/system.slice/ssh.service",
            "/process_api/4a53fb5b66b0575062ebfbf3ad7b822f",
        ] {
            assert_eq!(container_id(host.as_bytes()), None, "{host}");
        }
    }

    #[test]
    fn ancestors_stop_at_pid_1_and_unknown_parents() {
        let init = Arc::new(Process::from_event(1, 0, 0, Str::from("init"), 0, 0));
        let mut sh = Process::from_event(50, 10, 1, Str::from("sh"), 0, 0);
        sh.parent = Some(init.clone());
        let sh = Arc::new(sh);
        let mut leaf = Process::from_event(60, 20, 50, Str::from("cat"), 0, 0);
        leaf.parent = Some(sh);
        let pids: Vec<u32> = leaf.ancestors().map(|p| p.pid).collect();
        assert_eq!(pids, vec![50, 1]);
        assert_eq!(init.ancestors().count(), 0);
    }

    #[test]
    fn args_and_ttys() {
        let mut p = Process::from_event(5, 0, 1, Str::from("sh"), 0, 0);
        p.argv = Some(Str::from(&b"sh\0-c\0echo hi\0"[..]));
        assert_eq!(p.cmdline(), b"sh -c echo hi");
        assert_eq!(split_args(b""), Vec::<&[u8]>::new());
        assert_eq!(tty_display("pts3"), "pts/3");
        assert_eq!(tty_display("tty1"), "tty1");
        assert_eq!(tty_from_nr((136 << 8) | 3).as_deref(), Some("pts/3"));
        assert_eq!(tty_from_nr(0), None);
    }
}
