//! What `--version` reports: the tool, the segment schema, libbpf, and what capture does on
//! this kernel, found by doing it:
//!
//! - BTF: `/sys/kernel/btf/vmlinux` is readable;
//! - ring buffer, `bpf_loop`: libbpf's feature probes (they create a tiny map or load a
//!   one-instruction program, so they need CAP_BPF: without it the answer is "unknown", since
//!   libbpf then reads a refusal as "no" for maps and as "yes" for helpers);
//! - `tp_btf` and each capability: the probes are loaded as `record` loads them (the same plan,
//!   the same retries after a rejection) and unloaded; each capability is captured or not, with
//!   the reason (root only: loading needs CAP_BPF).

use std::ffi::CStr;

/// The probe results, one `name: verdict` line each.
pub fn kernel_features() -> Vec<(String, String)> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let mut out = vec![(
        "BTF".to_owned(),
        yes_no(std::fs::File::open("/sys/kernel/btf/vmlinux").is_ok()),
    )];
    // Without the privilege libbpf's probes answer wrongly (a refused map reads as "no", a
    // refused program load as "yes"): do not ask.
    if !crate::capture::privilege::can_load_bpf() {
        for name in ["ring buffer", "bpf_loop", "tp_btf", "capture"] {
            out.push((
                name.into(),
                "unknown (probing needs CAP_BPF: run as root)".into(),
            ));
        }
        return out;
    }
    // SAFETY: plain libbpf probes with no options (null is documented as "defaults").
    let ringbuf = unsafe {
        libbpf_sys::libbpf_probe_bpf_map_type(libbpf_sys::BPF_MAP_TYPE_RINGBUF, std::ptr::null())
    };
    out.push(("ring buffer".into(), probe_verdict(ringbuf)));
    // SAFETY: as above.
    let bpf_loop = unsafe {
        libbpf_sys::libbpf_probe_bpf_helper(
            libbpf_sys::BPF_PROG_TYPE_TRACEPOINT,
            libbpf_sys::BPF_FUNC_loop,
            std::ptr::null(),
        )
    };
    out.push(("bpf_loop".into(), probe_verdict(bpf_loop)));
    match crate::capture::probe_coverage() {
        Ok(coverage) => {
            out.push(("tp_btf".into(), "yes (the probes loaded)".into()));
            for c in coverage {
                let verdict = match c.reason {
                    None => "captured".into(),
                    Some(why) => format!("not captured ({why})"),
                };
                out.push((c.name.into(), verdict));
            }
        }
        Err(e) => out.push(("capture".into(), format!("no: {e:#}"))),
    }
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
