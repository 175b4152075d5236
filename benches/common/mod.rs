//! A realistic synthetic workload shared by the benchmarks: paths from a Zipf distribution over a
//! few thousand realistic paths, a few hundred processes, events a few microseconds apart, mixed
//! flags and results. Seeded, so every run measures the same events.
#![allow(dead_code)]

use open_forensics::event::{Event, PathSource, Str, Syscall};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

pub struct Workload {
    rng: StdRng,
    paths: Vec<Str>,
    rel: Vec<Str>,
    procs: Vec<(u32, u32, u32, u32, Str)>,
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
            path_dist,
            proc_dist,
            ts_ns: 1_764_000_000_000_000_000,
        }
    }

    pub fn next_event(&mut self) -> Event {
        self.ts_ns += self.rng.random_range(500..8_000);
        let path = self.paths[self.path_dist.sample(&mut self.rng) as usize - 1].clone();
        let (pid, tid, ppid, uid, comm) =
            self.procs[self.proc_dist.sample(&mut self.rng) as usize - 1].clone();
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
            ..Event::default()
        }
    }
}
