//! What `--version` reports: the tool, the segment schema, libbpf, and the kernel features
//! capture relies on, each probed cheaply without loading the recorder's programs:
//!
//! - BTF: `/sys/kernel/btf/vmlinux` is readable;
//! - `tp_btf`: the kernel's BTF has the `btf_trace_*` typedefs of the tracepoints capture attaches
//!   to (`sched_process_exec`, `io_uring_submit_req`), looked up by libbpf;
//! - ring buffer, `bpf_loop`: libbpf's feature probes (they create a tiny map or load a
//!   one-instruction program, so they need CAP_BPF: without it the answer is "unknown", since
//!   libbpf then reads a refusal as "no" for maps and as "yes" for helpers);
//! - syscall tracepoints: their tracefs directories (root; tracefs may not be mounted yet).

use std::ffi::{CStr, CString};

/// The probe results, one `name: verdict` line each.
pub fn kernel_features() -> Vec<(&'static str, String)> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let mut out = vec![(
        "BTF",
        yes_no(std::fs::File::open("/sys/kernel/btf/vmlinux").is_ok()),
    )];
    out.push(("tp_btf", tp_btf()));
    // Without the privilege libbpf's probes answer wrongly (a refused map reads as "no", a
    // refused program load as "yes"): do not ask.
    if crate::capture::privilege::can_load_bpf() {
        // SAFETY: plain libbpf probes with no options (null is documented as "defaults").
        let ringbuf = unsafe {
            libbpf_sys::libbpf_probe_bpf_map_type(
                libbpf_sys::BPF_MAP_TYPE_RINGBUF,
                std::ptr::null(),
            )
        };
        out.push(("ring buffer", probe_verdict(ringbuf)));
        // SAFETY: as above.
        let bpf_loop = unsafe {
            libbpf_sys::libbpf_probe_bpf_helper(
                libbpf_sys::BPF_PROG_TYPE_TRACEPOINT,
                libbpf_sys::BPF_FUNC_loop,
                std::ptr::null(),
            )
        };
        out.push(("bpf_loop", probe_verdict(bpf_loop)));
    } else {
        for name in ["ring buffer", "bpf_loop"] {
            out.push((name, "unknown (probing needs CAP_BPF: run as root)".into()));
        }
    }
    let tracefs = std::path::Path::new(crate::capture::privilege::TRACEFS).join("events");
    out.push((
        "syscall tracepoints",
        if !tracefs.is_dir() {
            "unknown (tracefs not mounted or not readable; record mounts it)".into()
        } else {
            yes_no(crate::capture::privilege::has_tracepoint(
                "syscalls",
                "sys_exit_openat",
            ))
        },
    ));
    out
}

fn probe_verdict(rc: i32) -> String {
    match rc {
        1 => "yes".into(),
        0 => "no".into(),
        e if -e == libc::EPERM || -e == libc::EACCES => "unknown (probing needs CAP_BPF)".into(),
        e => format!("unknown (probe failed: errno {})", -e),
    }
}

fn tp_btf() -> String {
    // SAFETY: returns an owned BTF object (freed below) or null.
    let btf = unsafe { libbpf_sys::btf__load_vmlinux_btf() };
    if btf.is_null() {
        return "no (no kernel BTF)".into();
    }
    let mut missing = Vec::new();
    for tp in ["sched_process_exec", "io_uring_submit_req"] {
        let name = CString::new(format!("btf_trace_{tp}")).expect("no NUL");
        // SAFETY: `btf` is valid until freed; `name` is a NUL-terminated string.
        let id = unsafe {
            libbpf_sys::btf__find_by_name_kind(btf, name.as_ptr(), libbpf_sys::BTF_KIND_TYPEDEF)
        };
        if id < 0 {
            missing.push(tp);
        }
    }
    // SAFETY: freed once, not used after.
    unsafe { libbpf_sys::btf__free(btf) };
    if missing.is_empty() {
        "yes".into()
    } else {
        format!("partly (no {})", missing.join(", "))
    }
}

/// libbpf's version, as linked.
pub fn libbpf_version() -> String {
    // SAFETY: libbpf returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(libbpf_sys::libbpf_version_string()) }
        .to_string_lossy()
        .into_owned()
}

/// The long `--version` text.
pub fn long_version() -> String {
    let mut s = format!(
        "{}\nschema {} (segments of schema 1 to {} are readable)\nlibbpf {}\nkernel {}",
        env!("CARGO_PKG_VERSION"),
        crate::store::MIGRATIONS.len(),
        crate::store::MIGRATIONS.len(),
        libbpf_version(),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into()),
    );
    for (name, verdict) in kernel_features() {
        s.push_str(&format!("\n  {name}: {verdict}"));
    }
    s
}
