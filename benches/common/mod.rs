//! A realistic synthetic workload shared by the benchmarks: paths from a Zipf distribution over a
//! few thousand realistic paths, a few hundred processes, events a few microseconds apart, mixed
//! flags and results. Seeded, so every run measures the same events.
//!
//! [`Workload::with_lineage`] gives the same events (same seed, same draws) their lineage: one
//! process image per pid (exe consistent with its comm, a few arguments, a cgroup and user
//! consistent with its uid, a parent chain of 1-3 ancestors ending in pid 1 systemd), shared by
//! all of that pid's events, as the recorder attaches them.
//!
//! Each bench is a crate of its own and uses a part of this module and its submodules (BPF
//! stats, a CPU clock, the recorder the tests start too), hence `allow(dead_code)`.
#![allow(dead_code)]

pub mod bpf_stats;
pub mod cpu;
#[path = "../../tests/it/recorder.rs"]
pub mod recorder;
pub mod runs;

use std::sync::Arc;

use open_forensics::bytes::Str;
use open_forensics::event::{Event, PathSource, Syscall};
use open_forensics::process::{container_id, ProcSource, Process};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

pub struct Workload {
    rng: StdRng,
    paths: Vec<Str>,
    rel: Vec<Str>,
    procs: Vec<(u32, u32, u32, u32, Str)>,
    /// Per entry of `procs` when lineage is on: its image and its user's name.
    lineage: Vec<(Arc<Process>, Str)>,
    path_dist: Zipf<f64>,
    proc_dist: Zipf<f64>,
    ts_ns: i64,
}

const COMMS: &[&str] = &[
    "bash",
    "cat",
    "grep",
    "python3",
    "node",
    "sshd",
    "systemd",
    "cron",
    "rustc",
    "cc1",
    "ld",
    "make",
    "git",
    "apt-get",
    "dpkg",
    "nginx",
    "postgres",
    "java",
    "containerd",
    "dockerd",
    "chrome",
    "firefox",
    "vim",
    "less",
];

impl Workload {
    pub fn new(seed: u64) -> Workload {
        let rng = StdRng::seed_from_u64(seed);
        let mut paths = Vec::new();
        for i in 0..600 {
            paths.push(format!(
                "/usr/lib/x86_64-linux-gnu/lib{}.so.{}",
                ["c", "m", "ssl", "crypto", "z", "pthread", "dl", "gcc_s", "stdc++", "selinux"]
                    [i % 10],
                i / 10
            ));
        }
        for i in 0..400 {
            paths.push(format!(
                "/etc/{}",
                [
                    "passwd",
                    "group",
                    "hosts",
                    "resolv.conf",
                    "ld.so.cache",
                    "nsswitch.conf",
                    "localtime",
                    "ssl/openssl.cnf"
                ][i % 8]
                    .to_owned()
                    + &if i < 8 {
                        String::new()
                    } else {
                        format!(".d/{i}.conf")
                    }
            ));
        }
        for i in 0..1500 {
            paths.push(format!(
                "/home/dev/src/project/{}/module_{}/file_{}.rs",
                ["core", "net", "ui", "db", "tests"][i % 5],
                i / 50,
                i
            ));
        }
        for i in 0..800 {
            paths.push(format!(
                "/proc/{}/{}",
                1000 + i / 4,
                ["stat", "status", "cmdline", "fd"][i % 4]
            ));
        }
        for i in 0..700 {
            paths.push(format!(
                "/var/lib/apt/lists/deb.example.org_dists_bookworm_main_binary-amd64_Packages.{i}"
            ));
        }
        let rel: Vec<Str> = [
            "Cargo.toml",
            "src/main.rs",
            "../include/stdio.h",
            "./config.yaml",
            ".git/HEAD",
        ]
        .iter()
        .map(|s| Str::from(*s))
        .collect();
        let procs = (0..300)
            .map(|i| {
                let pid = 2000 + i * 7;
                let tid = if i % 5 == 0 { pid + 1 } else { pid };
                let uid = if i % 3 == 0 { 0 } else { 1000 };
                (
                    pid,
                    tid,
                    1 + i / 10,
                    uid,
                    Str::from(COMMS[i as usize % COMMS.len()]),
                )
            })
            .collect::<Vec<_>>();
        let path_dist = Zipf::new(paths.len() as f64, 1.1).expect("valid zipf");
        let proc_dist = Zipf::new(procs.len() as f64, 1.0).expect("valid zipf");
        Workload {
            rng,
            paths: paths.into_iter().map(|p| Str::from(p.as_str())).collect(),
            rel,
            procs,
            lineage: Vec::new(),
            path_dist,
            proc_dist,
            ts_ns: 1_764_000_000_000_000_000,
        }
    }

    /// The same events as [`Workload::new`] with the same seed, with lineage.
    pub fn with_lineage(seed: u64) -> Workload {
        let mut w = Workload::new(seed);
        let mut l = Lineage::new(w.ts_ns);
        w.lineage = w
            .procs
            .iter()
            .enumerate()
            .map(|(i, (pid, _, ppid, uid, comm))| {
                (l.leaf(i, *pid, *ppid, *uid, comm), user_name(*uid))
            })
            .collect();
        w
    }

    pub fn next_event(&mut self) -> Event {
        self.ts_ns += self.rng.random_range(500..8_000);
        let path = self.paths[self.path_dist.sample(&mut self.rng) as usize - 1].clone();
        let which = self.proc_dist.sample(&mut self.rng) as usize - 1;
        let (pid, tid, ppid, uid, comm) = self.procs[which].clone();
        let roll: u32 = self.rng.random_range(0..100);
        let (flags, ret, syscall) = match roll {
            0..=69 => (0o2000000, self.rng.random_range(3..40), Syscall::Openat),
            70..=79 => (0o2000000, -2, Syscall::Openat),
            80..=86 => (
                0o1101 | 0o2000000,
                self.rng.random_range(3..40),
                Syscall::Openat,
            ),
            87..=90 => (
                0o200000 | 0o4000 | 0o2000000,
                self.rng.random_range(3..40),
                Syscall::Openat,
            ),
            91..=92 => (0, -13, Syscall::Open),
            93..=96 => (0o2000000, self.rng.random_range(3..40), Syscall::IoUring),
            _ => (
                0o2000000 | 0o100,
                self.rng.random_range(3..40),
                Syscall::Openat2,
            ),
        };
        let relative = self.rng.random_range(0..10) == 0;
        let raw_path = if relative {
            self.rel[self.rng.random_range(0..self.rel.len())].clone()
        } else {
            path.clone()
        };
        Event {
            ts_ns: self.ts_ns,
            pid,
            tid,
            ppid,
            uid,
            gid: uid,
            comm,
            syscall,
            path,
            path_source: if ret >= 0 {
                PathSource::File
            } else if relative {
                PathSource::Cwd
            } else {
                PathSource::Raw
            },
            path_truncated: false,
            raw_path,
            dirfd: if syscall == Syscall::Open {
                None
            } else {
                Some(-100)
            },
            flags,
            mode: if flags & 0o100 != 0 { 0o644 } else { 0 },
            ret,
            euid: (!self.lineage.is_empty()).then_some(uid),
            egid: (!self.lineage.is_empty()).then_some(uid),
            process: self.lineage.get(which).map(|(p, _)| p.clone()),
            user: self.lineage.get(which).map(|(_, u)| u.clone()),
            ..Event::default()
        }
    }
}

fn user_name(uid: u32) -> Str {
    Str::from(if uid == 0 { "root" } else { "alice" })
}

/// Where a comm's binary lives, and a few argument lists it runs with (`{}` is a per-process
/// number, so compilers and editors get a file of their own).
fn program(comm: &str) -> (&'static str, &'static [&'static str]) {
    match comm {
        "bash" => ("/usr/bin/bash", &["-bash", "bash -c make -j2", "/bin/bash ./build.sh"]),
        "cat" => ("/usr/bin/cat", &["cat /etc/os-release", "cat src/file_{}.rs"]),
        "grep" => ("/usr/bin/grep", &["grep -rn TODO src", "grep -q alice /etc/passwd"]),
        "python3" => (
            "/usr/bin/python3.11",
            &["/usr/bin/python3 /usr/bin/unattended-upgrade", "python3 manage.py runserver 0.0.0.0:8000"],
        ),
        "node" => ("/usr/bin/node", &["node /home/alice/app/server.js --port 3000"]),
        "sshd" => ("/usr/sbin/sshd", &["sshd: alice [priv]", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"]),
        "systemd" => ("/usr/lib/systemd/systemd", &["/lib/systemd/systemd --user"]),
        "cron" => ("/usr/sbin/cron", &["/usr/sbin/cron -f -P"]),
        "rustc" => (
            "/home/alice/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/rustc",
            &["rustc --crate-name module_{} --edition=2021 src/module_{}/mod.rs --crate-type lib --emit=dep-info,metadata,link -C opt-level=3 -C embed-bitcode=no"],
        ),
        "cc1" => (
            "/usr/lib/gcc/x86_64-linux-gnu/12/cc1",
            &["/usr/lib/gcc/x86_64-linux-gnu/12/cc1 -quiet -I ../include src/file_{}.c -quiet -dumpbase file_{}.c -O2 -o /tmp/ccX{}.s"],
        ),
        "ld" => ("/usr/bin/x86_64-linux-gnu-ld.bfd", &["/usr/bin/ld -plugin /usr/libexec/gcc/x86_64-linux-gnu/12/liblto_plugin.so -o app_{} main.o -lc"]),
        "make" => ("/usr/bin/make", &["make -j2", "make -C build install"]),
        "git" => ("/usr/bin/git", &["git status --porcelain", "git fetch origin", "git log --oneline -n 20"]),
        "apt-get" => ("/usr/bin/apt-get", &["apt-get -qq update", "apt-get install -y libssl-dev"]),
        "dpkg" => ("/usr/bin/dpkg", &["/usr/bin/dpkg --status-fd 36 --configure --pending"]),
        "nginx" => ("/usr/sbin/nginx", &["nginx: worker process", "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;"]),
        "postgres" => ("/usr/lib/postgresql/15/bin/postgres", &["postgres: 15/main: checkpointer", "postgres: 15/main: alice app 127.0.0.1(5{}) idle"]),
        "java" => ("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", &["java -Xmx2g -jar /opt/app/app.jar --spring.profiles.active=prod"]),
        "containerd" => ("/usr/bin/containerd", &["/usr/bin/containerd"]),
        "dockerd" => ("/usr/bin/dockerd", &["/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"]),
        "chrome" => ("/opt/google/chrome/chrome", &["/opt/google/chrome/chrome --type=renderer --lang=en-US --renderer-client-id={}"]),
        "firefox" => ("/usr/lib/firefox-esr/firefox-esr", &["/usr/lib/firefox-esr/firefox-esr -contentproc -childID {} -isForBrowser tab"]),
        "vim" => ("/usr/bin/vim.basic", &["vim src/file_{}.rs", "vim /etc/hosts"]),
        "less" => ("/usr/bin/less", &["less /var/log/syslog", "less README.md"]),
        _ => ("/usr/bin/env", &["env"]),
    }
}

/// The cgroup of a process: a login session for alice, a service (or root's session) for root.
fn cgroup_of(comm: &str, uid: u32) -> &'static str {
    if uid != 0 {
        return "/user.slice/user-1000.slice/session-3.scope";
    }
    match comm {
        "systemd" => "/init.scope",
        "sshd" => "/system.slice/ssh.service",
        "cron" => "/system.slice/cron.service",
        "nginx" => "/system.slice/nginx.service",
        "postgres" => "/system.slice/system-postgresql.slice/postgresql@15-main.service",
        "containerd" => "/system.slice/containerd.service",
        "dockerd" => "/system.slice/docker.service",
        "apt-get" | "dpkg" | "python3" => "/system.slice/apt-daily-upgrade.service",
        _ => "/user.slice/user-0.slice/session-1.scope",
    }
}

/// Builds the images: the shared ancestors once, then one leaf per process.
struct Lineage {
    t0: i64,
    systemd: Arc<Process>,
    /// Parent images by pid (the events' `ppid`s).
    parents: std::collections::HashMap<u32, Arc<Process>>,
}

impl Lineage {
    fn new(first_event_ns: i64) -> Lineage {
        // Booted a day before the first event.
        let t0 = first_event_ns - 86_400_000_000_000;
        let systemd = Arc::new(image(1, None, "systemd", 0, t0, 0));
        Lineage {
            t0,
            systemd,
            parents: Default::default(),
        }
    }

    /// The image of parent pid `ppid`: pid 1 is systemd; others are a cron job's shell
    /// (systemd → cron), a login shell (systemd → sshd → bash) or an sshd.
    fn parent(&mut self, ppid: u32) -> Arc<Process> {
        if ppid <= 1 {
            return self.systemd.clone();
        }
        if let Some(p) = self.parents.get(&ppid) {
            return p.clone();
        }
        let t = self.t0 + i64::from(ppid) * 1_000_000_000;
        let p = match ppid % 3 {
            0 => Arc::new(image(ppid, Some(&self.systemd), "cron", 0, t, ppid)),
            1 => {
                let sshd = Arc::new(image(
                    ppid + 400,
                    Some(&self.systemd),
                    "sshd",
                    0,
                    t - 500_000_000,
                    ppid,
                ));
                Arc::new(image(ppid, Some(&sshd), "bash", 1000, t, ppid))
            }
            _ => Arc::new(image(ppid, Some(&self.systemd), "sshd", 0, t, ppid)),
        };
        self.parents.insert(ppid, p.clone());
        p
    }

    fn leaf(&mut self, i: usize, pid: u32, ppid: u32, uid: u32, comm: &Str) -> Arc<Process> {
        let parent = self.parent(ppid);
        let comm = std::str::from_utf8(comm.as_bytes()).unwrap_or("?");
        // Started within the hour before the first event.
        let start = self.t0 + 86_400_000_000_000 - 3_600_000_000_000 + i as i64 * 7_000_000_000;
        Arc::new(image(pid, Some(&parent), comm, uid, start, i as u32))
    }
}

fn image(
    pid: u32,
    parent: Option<&Arc<Process>>,
    comm: &str,
    uid: u32,
    start_ns: i64,
    variant: u32,
) -> Process {
    let (exe, argvs) = program(comm);
    let argv = argvs[variant as usize % argvs.len()]
        .replace("{}", &variant.to_string())
        .replace(' ', "\0")
        + "\0";
    let cgroup = cgroup_of(comm, uid);
    let session = cgroup.starts_with("/user.slice");
    Process {
        pid,
        start_ns,
        exec_ns: Some(start_ns + 350_000),
        ppid: parent.map_or(0, |p| p.pid),
        parent: parent.cloned(),
        source: ProcSource::Exec,
        comm: Str::from(comm),
        exe: Some(Str::from(exe)),
        argv: Some(Str::from(argv.as_str())),
        args_truncated: false,
        uid,
        gid: uid,
        euid: uid,
        egid: uid,
        auid: session.then_some(uid),
        sessionid: session.then_some(if uid == 0 { 1 } else { 3 }),
        cgroup_id: 4000 + cgroup.len() as u64,
        cgroup: Some(Str::from(cgroup)),
        container_id: container_id(cgroup.as_bytes()).map(|c| Str::from(c.as_str())),
        pidns: Some(4_026_531_836),
        mntns: Some(4_026_531_841),
        tty: session.then(|| Str::from(if uid == 0 { "pts/1" } else { "pts/0" })),
        cwd: None,
        root: None,
        exe_id: None,
        exe_verified: None,
    }
}
