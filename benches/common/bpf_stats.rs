//! Per-program kernel cost from BPF stats (`kernel.bpf_stats_enabled`): each program's run count
//! and total run time (`bpf_prog_info.run_cnt` / `run_time_ns`, read through libbpf-rs), for the
//! programs a given process holds (found through its `/proc/PID/fdinfo`, so programs other
//! processes on a shared machine load are never counted).

use std::collections::BTreeMap;
use std::ffi::CStr;

use libbpf_rs::libbpf_sys;
use libbpf_rs::query::{ProgInfoIter, ProgInfoQueryOptions};

/// Turns BPF stats on while alive and puts the sysctl back as it was on drop (also on panic).
pub struct StatsOn {
    before: String,
}

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl StatsOn {
    pub fn new() -> std::io::Result<StatsOn> {
        let before = std::fs::read_to_string(SYSCTL)?.trim().to_owned();
        std::fs::write(SYSCTL, "1")?;
        Ok(StatsOn { before })
    }
}

impl Drop for StatsOn {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, &self.before);
    }
}

/// Run count and nanoseconds per program, keyed by the program's full name.
#[derive(Clone, Debug, Default)]
pub struct Snapshot(pub BTreeMap<String, (u64, u64)>);

impl Snapshot {
    /// The programs `pid` holds open.
    pub fn of_pid(pid: u32) -> Snapshot {
        let ids = prog_ids(pid);
        let opts = ProgInfoQueryOptions::default().include_func_info(true);
        let mut out = BTreeMap::new();
        for info in ProgInfoIter::with_query_opts(opts).filter(|i| ids.contains(&i.id)) {
            let name = info
                .func_info
                .first()
                .and_then(|f| btf_name(info.btf_id, f.type_id))
                .unwrap_or_else(|| info.name.to_string_lossy().into_owned());
            let e = out.entry(name).or_insert((0, 0));
            e.0 += info.run_cnt;
            e.1 += info.run_time_ns;
        }
        Snapshot(out)
    }

    /// What ran between `before` and `self`: (name, runs, ns per run), busiest first.
    pub fn since(&self, before: &Snapshot) -> Vec<(String, u64, f64)> {
        let mut v: Vec<_> = self
            .0
            .iter()
            .filter_map(|(name, &(cnt, ns))| {
                let (c0, n0) = before.0.get(name).copied().unwrap_or((0, 0));
                let runs = cnt.saturating_sub(c0);
                (runs > 0).then(|| {
                    (
                        name.clone(),
                        runs,
                        ns.saturating_sub(n0) as f64 / runs as f64,
                    )
                })
            })
            .collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.1));
        v
    }
}

/// Ids of the BPF programs among `pid`'s open fds.
fn prog_ids(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("prog_id:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect()
}

/// A program's full name from its BTF (the info's own name is cut at 15 bytes, and the open
/// probes' names share their first 15).
fn btf_name(btf_id: u32, type_id: u32) -> Option<String> {
    if btf_id == 0 {
        return None;
    }
    // SAFETY: libbpf returns a BTF object or NULL (or an error pointer, checked by
    // libbpf_get_error); the name is a NUL-terminated string inside it, copied before the free.
    unsafe {
        let btf = libbpf_sys::btf__load_from_kernel_by_id(btf_id);
        if btf.is_null() || libbpf_sys::libbpf_get_error(btf.cast()) != 0 {
            return None;
        }
        let t = libbpf_sys::btf__type_by_id(btf, type_id);
        let name = (!t.is_null())
            .then(|| libbpf_sys::btf__name_by_offset(btf, (*t).name_off))
            .filter(|p| !p.is_null())
            .map(|p| CStr::from_ptr(p).to_string_lossy().into_owned());
        libbpf_sys::btf__free(btf);
        name
    }
}
