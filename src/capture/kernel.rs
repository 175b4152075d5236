//! What the running kernel offers the probes, read from its own BTF (`/sys/kernel/btf/vmlinux`)
//! before anything is loaded: the facts [`super::plan`] decides by.

use std::ffi::CString;

/// The running kernel, as far as the probes care.
#[derive(Clone, Debug, Default)]
pub struct Kernel {
    /// `uname -r`.
    pub release: String,
    /// The kernel has BTF: without it no tp_btf program loads.
    pub btf: bool,
    /// The bpf_rdonly_cast kfunc (6.2), behind bpf_core_cast.
    pub rdonly_cast: bool,
    /// Helpers by their `enum bpf_func_id` name (BPF_FUNC_loop, BPF_FUNC_snprintf, …).
    pub helpers: Vec<String>,
    /// The BTF tracepoints the plan asks about that this kernel has, with their prototypes'
    /// parameter counts (`btf_trace_<name>`; the leading `void *` data counted).
    pub tracepoints: Vec<(&'static str, usize)>,
}

/// The tracepoints whose presence or shape changes the plan.
const TRACEPOINTS: &[&str] = &[
    "sys_exit",
    "sched_process_exec",
    "sched_process_fork",
    "sched_process_exit",
    "io_uring_submit_req",
    "io_uring_submit_sqe",
    "io_uring_complete",
];

impl Kernel {
    /// Reads this kernel's BTF; a kernel without it has `btf: false` and nothing else.
    pub fn running() -> Kernel {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        let Some(btf) = Btf::load() else {
            return Kernel {
                release,
                ..Kernel::default()
            };
        };
        Kernel {
            release,
            btf: true,
            rdonly_cast: btf
                .find("bpf_rdonly_cast", libbpf_sys::BTF_KIND_FUNC)
                .is_some(),
            helpers: btf.enum_names("bpf_func_id"),
            tracepoints: TRACEPOINTS
                .iter()
                .filter_map(|&tp| Some((tp, btf.tracepoint(tp)?)))
                .collect(),
        }
    }

    pub fn has_helper(&self, name: &str) -> bool {
        self.helpers.iter().any(|h| h == name)
    }

    /// Tracepoint `name`'s parameter count, if the kernel has it.
    pub fn tracepoint(&self, name: &str) -> Option<usize> {
        self.tracepoints
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, p)| p)
    }
}

/// The kernel's own BTF, freed on drop.
struct Btf(std::ptr::NonNull<libbpf_sys::btf>);

impl Drop for Btf {
    fn drop(&mut self) {
        // SAFETY: owned, freed once.
        unsafe { libbpf_sys::btf__free(self.0.as_ptr()) };
    }
}

const fn kind(t: &libbpf_sys::btf_type) -> u32 {
    (t.info >> 24) & 0x1f
}

const fn vlen(t: &libbpf_sys::btf_type) -> usize {
    (t.info & 0xffff) as usize
}

impl Btf {
    fn load() -> Option<Self> {
        // SAFETY: returns an owned BTF object or null.
        std::ptr::NonNull::new(unsafe { libbpf_sys::btf__load_vmlinux_btf() }).map(Self)
    }

    fn find(&self, name: &str, kind: u32) -> Option<u32> {
        let name = CString::new(name).ok()?;
        // SAFETY: a valid BTF object and a NUL-terminated name.
        let id =
            unsafe { libbpf_sys::btf__find_by_name_kind(self.0.as_ptr(), name.as_ptr(), kind) };
        u32::try_from(id).ok()
    }

    fn ty(&self, id: u32) -> Option<&libbpf_sys::btf_type> {
        // SAFETY: a valid BTF object; null for an unknown id; the type lives as long as `self`.
        unsafe { libbpf_sys::btf__type_by_id(self.0.as_ptr(), id).as_ref() }
    }

    /// The type a typedef, pointer or modifier refers to.
    fn target(&self, t: &libbpf_sys::btf_type) -> Option<&libbpf_sys::btf_type> {
        // SAFETY: these kinds use the `type_` member of the union.
        self.ty(unsafe { t.__bindgen_anon_1.type_ })
    }

    fn name(&self, off: u32) -> String {
        // SAFETY: a valid BTF object; libbpf returns a NUL-terminated string in its string
        // section, or null for a bad offset.
        let p = unsafe { libbpf_sys::btf__name_by_offset(self.0.as_ptr(), off) };
        if p.is_null() {
            return String::new();
        }
        // SAFETY: non-null, NUL-terminated, alive as long as `self`.
        unsafe { std::ffi::CStr::from_ptr(p) }
            .to_string_lossy()
            .into_owned()
    }

    /// The member names of enum `name`.
    fn enum_names(&self, name: &str) -> Vec<String> {
        let Some(t) = self
            .find(name, libbpf_sys::BTF_KIND_ENUM)
            .and_then(|id| self.ty(id))
        else {
            return Vec::new();
        };
        // SAFETY: an ENUM's members (`struct btf_enum`, vlen of them) follow its btf_type.
        let members = unsafe {
            std::slice::from_raw_parts(
                (t as *const libbpf_sys::btf_type).add(1) as *const libbpf_sys::btf_enum,
                vlen(t),
            )
        };
        members.iter().map(|m| self.name(m.name_off)).collect()
    }

    /// Tracepoint `tp`'s parameter count: `btf_trace_<tp>` is a typedef of a pointer to its
    /// prototype.
    fn tracepoint(&self, tp: &str) -> Option<usize> {
        let typedef =
            self.ty(self.find(&format!("btf_trace_{tp}"), libbpf_sys::BTF_KIND_TYPEDEF)?)?;
        let proto = self.target(self.target(typedef)?)?;
        (kind(proto) == libbpf_sys::BTF_KIND_FUNC_PROTO).then(|| vlen(proto))
    }
}
