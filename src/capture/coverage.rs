//! What a recording captures on this kernel, capability by capability, and why not where it
//! does not: handed to the recorder (its start notice, the store's coverage record) and printed
//! by `--version`.

/// A capability the probes may or may not have on a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    Syscalls,
    Ia32,
    FileOps,
    IoUring,
    Lifecycle,
    DeepPaths,
    PseudoNames,
}

impl Cap {
    pub const ALL: [Cap; 7] = [
        Cap::Syscalls,
        Cap::Ia32,
        Cap::FileOps,
        Cap::IoUring,
        Cap::Lifecycle,
        Cap::DeepPaths,
        Cap::PseudoNames,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cap::Syscalls => "opens by syscall (open, creat, openat, openat2, open_by_handle_at)",
            Cap::Ia32 => "opens through the 32-bit entry",
            Cap::FileOps => {
                "file operations by syscall (rename, link, symlink, unlink, rmdir, mkdir, chmod, chown, truncate)"
            }
            Cap::IoUring => "io_uring opens and file operations",
            Cap::Lifecycle => "process lifecycle (exec, fork, exit)",
            // OF_LIMIT_COMPAT_WALK_STEPS (a test holds the two together).
            Cap::DeepPaths => "whole paths deeper than 10 levels",
            Cap::PseudoNames => "pipe:[ino], socket:[ino] and anon_inode: names",
        }
    }
}

/// One capability on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capability {
    pub name: &'static str,
    pub captured: bool,
    /// Why not, when not captured.
    pub reason: Option<String>,
}

/// The names of what is captured, for the `attached` line.
pub fn captured(coverage: &[Capability]) -> String {
    let names: Vec<&str> = coverage
        .iter()
        .filter(|c| c.captured)
        .map(|c| c.name)
        .collect();
    names.join(", ")
}

/// The one line naming what is not captured and why, or None when everything is.
pub fn notice(coverage: &[Capability]) -> Option<String> {
    let gaps: Vec<String> = coverage
        .iter()
        .filter(|c| !c.captured)
        .map(|c| {
            format!(
                "{} not captured ({})",
                c.name,
                c.reason.as_deref().unwrap_or("")
            )
        })
        .collect();
    (!gaps.is_empty()).then(|| format!("open-forensics: notice: {}", gaps.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::super::skel::types::of_limits;
    use super::*;

    #[test]
    fn the_deep_path_capability_names_the_compat_walks_depth() {
        let steps = of_limits::OF_LIMIT_COMPAT_WALK_STEPS.0;
        assert!(
            Cap::DeepPaths.name().contains(&format!(" {steps} levels")),
            "{steps}"
        );
    }

    #[test]
    fn the_notice_names_every_gap_with_its_reason_and_nothing_captured() {
        let cov = [
            Capability {
                name: "a",
                captured: true,
                reason: None,
            },
            Capability {
                name: "io_uring opens and file operations",
                captured: false,
                reason: Some("kernel 5.10 has no io_uring_submit_req tracepoint".into()),
            },
            Capability {
                name: "c",
                captured: false,
                reason: Some("why c".into()),
            },
        ];
        assert_eq!(
            notice(&cov).unwrap(),
            "open-forensics: notice: io_uring opens and file operations not captured (kernel 5.10 has no \
             io_uring_submit_req tracepoint); c not captured (why c)"
        );
        assert_eq!(captured(&cov), "a");
        assert_eq!(notice(&cov[..1]), None);
    }
}
