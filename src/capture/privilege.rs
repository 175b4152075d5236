//! What capture needs from the system before anything is loaded: privileges and tracefs.
//!
//! Both failures are the user's to fix, so they are [`BadInput`] (exit 2), checked before the store
//! is touched, with a message naming exactly what is missing: libbpf's own hint for EPERM blames
//! RLIMIT_MEMLOCK, which is wrong on every kernel that accounts BPF memory to memcg (5.11+). The
//! memlock limit is never raised: it is not needed there, and root may lack CAP_SYS_RESOURCE.

use std::ffi::CString;
use std::fs;
use std::path::Path;

use crate::error::BadInput;

const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

pub const TRACEFS: &str = "/sys/kernel/tracing";

/// The effective capability set of this process (`CapEff` in /proc/self/status).
fn effective_caps() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Whether this process may load BPF programs and create maps (CAP_BPF, or CAP_SYS_ADMIN).
pub fn can_load_bpf() -> bool {
    let caps = effective_caps();
    caps & (1u64 << CAP_BPF) != 0 || caps & (1u64 << CAP_SYS_ADMIN) != 0
}

/// The message for a missing privilege (`detail` says which); also used when the kernel refuses
/// a load with EPERM.
pub fn privilege_message(detail: &str) -> String {
    format!(
        "capturing needs root (CAP_BPF and CAP_PERFMON, plus CAP_DAC_READ_SEARCH for tracefs): {detail}; run it with sudo"
    )
}

/// Fails, naming what is missing, unless this process can load tracing BPF programs and read
/// tracefs.
pub fn check() -> Result<(), BadInput> {
    let caps = effective_caps();
    let has = |c: u32| caps & (1u64 << c) != 0;
    let admin = has(CAP_SYS_ADMIN);
    let mut missing = Vec::new();
    if !has(CAP_BPF) && !admin {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) && !admin {
        missing.push("CAP_PERFMON");
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 && !has(CAP_DAC_READ_SEARCH) && !has(CAP_DAC_OVERRIDE) {
        // tracefs is 0700 root: attaching a tracepoint reads its id there.
        missing.push("CAP_DAC_READ_SEARCH");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(BadInput(privilege_message(&format!(
        "this process (euid {euid}) lacks {}",
        missing.join(", ")
    ))))
}

/// Mounts tracefs at /sys/kernel/tracing if it is not there: classic tracepoints are found by
/// their id file in it. Returns whether it mounted.
pub fn ensure_tracefs() -> Result<bool, BadInput> {
    ensure_mounted(Path::new(TRACEFS), mount_tracefs)
}

/// `mount(dir)` when `dir/events` is missing. Two recorders starting together both see it missing and
/// both mount; the kernel refuses the second (EBUSY: the same filesystem on the same mount point),
/// so a failed mount is an error only if tracefs is still absent after it.
fn ensure_mounted(
    dir: &Path,
    mount: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<bool, BadInput> {
    let events = dir.join("events");
    if events.is_dir() {
        return Ok(false);
    }
    match mount(dir) {
        Ok(()) => Ok(true),
        Err(_) if events.is_dir() => Ok(false),
        Err(err) => Err(BadInput(format!(
            "tracefs is not mounted at {} and mounting it failed ({err}); mount it with `mount -t tracefs tracefs {}`",
            dir.display(),
            dir.display()
        ))),
    }
}

fn mount_tracefs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let target = CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let (src, fstype) = (c"tracefs", c"tracefs");
    // SAFETY: all pointers are NUL-terminated strings that outlive the call; no data is passed.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the running kernel has the tracepoint `category/name` (tracefs must be mounted).
pub fn has_tracepoint(category: &str, name: &str) -> bool {
    Path::new(TRACEFS)
        .join("events")
        .join(category)
        .join(name)
        .is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracefs_mount_lost_to_a_racing_recorder_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // The other recorder mounted between our check and our mount: the kernel says EBUSY.
        let raced = ensure_mounted(dir.path(), |target| {
            assert_eq!(target, dir.path(), "mounts the directory it checked");
            fs::create_dir(dir.path().join("events")).unwrap();
            Err(std::io::Error::from_raw_os_error(libc::EBUSY))
        });
        assert!(!raced.unwrap());
        // Already there: no mount at all.
        let there = ensure_mounted(dir.path(), |_| panic!("mounted over an existing tracefs"));
        assert!(!there.unwrap());
    }

    #[test]
    fn a_failed_tracefs_mount_names_the_directory_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = ensure_mounted(dir.path(), |_| {
            Err(std::io::Error::from_raw_os_error(libc::EPERM))
        })
        .unwrap_err();
        let shown = dir.path().display().to_string();
        assert!(err.0.contains(&shown), "{}", err.0);
        assert!(err.0.contains("mount -t tracefs"), "{}", err.0);
        assert!(err.0.contains("not permitted"), "{}", err.0);
        let mounted = ensure_mounted(dir.path(), |_| Ok(())).unwrap();
        assert!(mounted);
    }
}
