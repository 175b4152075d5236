//! How to load the probes on this kernel, decided from its BTF ([`Kernel`]) before load and
//! amended after a rejection: which programs, fast or compat (bpf/compat.h), which io_uring
//! shapes, and what is not captured and why.

use super::coverage::{Cap, Capability};
use super::hooks::{Hook, Prog, IO_URING, LIFECYCLE, RAW_EXIT, SYSCALL_EXITS, URING_SUBMIT};
use super::kernel::Kernel;
use crate::error::BadInput;

/// Testing and diagnosis: load the compat programs even where the fast ones would load.
pub const FORCE_COMPAT_ENV: &str = "OPEN_FORENSICS_FORCE_COMPAT";

/// One program to load, and why it is the compat twin when it is.
#[derive(Debug)]
pub struct Slot {
    pub hook: &'static Hook,
    pub prog: &'static Prog,
    pub compat: Option<String>,
}

impl Slot {
    /// The name of the variant loaded.
    pub fn name(&self) -> &'static str {
        match (&self.compat, self.prog.compat) {
            (Some(_), Some(twin)) => twin,
            _ => self.prog.fast,
        }
    }
}

#[derive(Debug)]
pub struct Plan {
    /// `uname -r`, for the reasons.
    pub release: String,
    pub slots: Vec<Slot>,
    /// Capabilities left out, and why.
    pub off: Vec<(Cap, String)>,
    /// Where io_uring's submission program attaches (its tp_btf tracepoint).
    pub uring_submit: &'static str,
    /// io_uring_complete passes the completion entry (6.14+), not user_data and res.
    pub uring_complete_cqe: bool,
    /// Whether the kernel has bpf_snprintf (5.13), which names pipes and sockets.
    pub snprintf: bool,
    /// What the plan does differently from what was asked, for the user.
    pub notices: Vec<String>,
}

impl Plan {
    /// The plan for kernel `k`: `no_ia32` asks for the per-syscall tracepoints, whose tracefs
    /// events exist when `syscall_events`; `force_compat` loads compat programs throughout.
    pub fn new(
        k: &Kernel,
        no_ia32: bool,
        syscall_events: bool,
        force_compat: bool,
    ) -> Result<Plan, BadInput> {
        let r = &k.release;
        if !k.btf {
            return Err(BadInput(format!(
                "kernel {r} has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF): the probes need it"
            )));
        }
        let compat = if force_compat {
            Some(format!("{FORCE_COMPAT_ENV} is set"))
        } else if !k.rdonly_cast || !k.has_helper("BPF_FUNC_loop") {
            Some(format!("kernel {r} lacks bpf_rdonly_cast (6.2)"))
        } else {
            None
        };
        let mut plan = Plan {
            release: r.clone(),
            slots: Vec::new(),
            off: Vec::new(),
            uring_submit: "io_uring_submit_req",
            uring_complete_cqe: true,
            snprintf: k.has_helper("BPF_FUNC_snprintf"),
            notices: Vec::new(),
        };

        // The syscalls:* programs read the registers through bpf_task_pt_regs (5.15) on a BTF
        // task (bpf_get_current_task_btf, 5.11), compat or not.
        let per_syscall = if !syscall_events {
            Err(format!("kernel {r} has no syscalls:sys_exit_* tracepoints"))
        } else if !k.has_helper("BPF_FUNC_task_pt_regs") {
            Err(format!("kernel {r} lacks bpf_task_pt_regs (5.15)"))
        } else {
            Ok(())
        };
        let raw = k.tracepoint("sys_exit").is_some();
        match (no_ia32, per_syscall, raw) {
            (true, Ok(()), _) => {
                plan.add(&SYSCALL_EXITS, &compat);
                plan.off.push((Cap::Ia32, "--no-ia32".into()));
                plan.off.push((
                    Cap::FileOps,
                    "--no-ia32: its per-syscall tracepoints are the opens' only".into(),
                ));
            }
            (true, Err(why), true) => {
                plan.notices.push(format!(
                    "--no-ia32 is not honoured: {why}, so the probe on every syscall's exit is loaded (it captures the 32-bit entry too)"
                ));
                plan.add(&RAW_EXIT, &compat);
            }
            (false, _, true) => plan.add(&RAW_EXIT, &compat),
            (_, Ok(()), false) => {
                plan.add(&SYSCALL_EXITS, &compat);
                let why = format!("kernel {r} has no raw_syscalls/sys_exit BTF tracepoint");
                plan.off.push((Cap::Ia32, why.clone()));
                plan.off.push((Cap::FileOps, why));
            }
            (_, Err(why), false) => {
                let why = format!("kernel {r} has no raw_syscalls/sys_exit BTF tracepoint; {why}");
                plan.off.push((Cap::Syscalls, why.clone()));
                plan.off.push((Cap::Ia32, why.clone()));
                plan.off.push((Cap::FileOps, why));
            }
        }

        match [
            "sched_process_exec",
            "sched_process_fork",
            "sched_process_exit",
        ]
        .into_iter()
        .find(|tp| k.tracepoint(tp).is_none())
        {
            None => plan.add(&LIFECYCLE, &compat),
            Some(tp) => plan.off.push((
                Cap::Lifecycle,
                format!("kernel {r} has no {tp} BTF tracepoint"),
            )),
        }

        // The submission's tracepoint must pass the request, whose open already holds the
        // kernel's copy of the path: io_uring_submit_req(req) since 6.3, io_uring_submit_sqe(req,
        // force_nonblock) in 5.19 - 6.2. The completion must pass the request too: (ctx, req,
        // cqe) since 6.14, (ctx, req, user_data, res, cflags, extra1, extra2) from 5.19.
        let submit = match (
            k.tracepoint("io_uring_submit_req"),
            k.tracepoint("io_uring_submit_sqe"),
        ) {
            (Some(2), _) => Ok("io_uring_submit_req"),
            (_, Some(3)) => Ok("io_uring_submit_sqe"),
            _ => Err(format!(
                "kernel {r} has no io_uring_submit_req tracepoint, nor an io_uring_submit_sqe that passes the request"
            )),
        };
        let complete = match k.tracepoint("io_uring_complete") {
            Some(4) => Ok(true),
            Some(8) => Ok(false),
            Some(_) => Err(format!(
                "kernel {r}'s io_uring_complete tracepoint does not pass the request"
            )),
            None => Err(format!("kernel {r} has no io_uring_complete tracepoint")),
        };
        match (submit, complete) {
            (Ok(submit), Ok(cqe)) => {
                plan.uring_submit = submit;
                plan.uring_complete_cqe = cqe;
                plan.add(&IO_URING, &compat);
            }
            (Err(why), _) | (_, Err(why)) => plan.off.push((Cap::IoUring, why)),
        }
        Ok(plan)
    }

    fn add(&mut self, hook: &'static Hook, compat: &Option<String>) {
        for prog in hook.progs {
            self.slots.push(Slot {
                hook,
                prog,
                compat: prog.compat.and(compat.clone()),
            });
        }
    }

    /// The program io_uring's submission loads, when it is retargeted (not the tracepoint its
    /// section names).
    pub fn retarget(&self) -> Option<(&'static str, &'static str)> {
        let slot = self.slots.iter().find(|s| *s.prog == URING_SUBMIT)?;
        (self.uring_submit != "io_uring_submit_req").then(|| (slot.name(), self.uring_submit))
    }

    /// After the kernel refused program `name` (`why`): its compat twin instead, or, for a compat
    /// or twinless program, its hook left out. Returns what changed, or None when `name` is not
    /// in the plan.
    pub fn reject(&mut self, name: &str, why: &str) -> Option<String> {
        let i = self.slots.iter().position(|s| s.name() == name)?;
        let slot = &mut self.slots[i];
        if let (None, Some(twin)) = (&slot.compat, slot.prog.compat) {
            slot.compat = Some(format!(
                "kernel {}'s verifier rejected {name}",
                self.release
            ));
            return Some(format!("loading its compat twin {twin} instead"));
        }
        let hook = slot.hook;
        self.slots.retain(|s| !std::ptr::eq(s.hook, hook));
        let why = format!("kernel {}'s verifier rejected {name}: {why}", self.release);
        for cap in hook.caps {
            self.off.push((*cap, why.clone()));
        }
        let names: Vec<&str> = hook.caps.iter().map(|c| c.name()).collect();
        Some(format!("{} not captured", names.join(", ")))
    }

    /// Every capability, captured or not and why.
    pub fn coverage(&self) -> Vec<Capability> {
        let compat = self
            .slots
            .iter()
            .find_map(|s| s.compat.as_deref().filter(|_| s.prog.compat.is_some()));
        let steps = super::skel::types::of_limits::OF_LIMIT_COMPAT_WALK_STEPS.0;
        Cap::ALL
            .iter()
            .map(|&cap| {
                let reason = match cap {
                    Cap::DeepPaths => compat.map(|why| {
                        format!("{why}: the compat probes walk {steps} levels and mark a deeper path truncated")
                    }),
                    Cap::PseudoNames if !self.snprintf => Some(format!(
                        "kernel {} lacks bpf_snprintf (5.13): such files are named by their dentry",
                        self.release
                    )),
                    _ => self
                        .off
                        .iter()
                        .find(|(c, _)| *c == cap)
                        .map(|(_, why)| why.clone()),
                };
                Capability {
                    name: cap.name(),
                    captured: reason.is_none(),
                    reason,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Facts as each Debian kernel's BTF states them (target/kbtf dumps, `bpftool btf dump`).
    fn kernel(release: &str) -> Kernel {
        let (rdonly_cast, helpers, uring): (bool, &[&str], &[(&'static str, usize)]) = match release
        {
            "5.10" => (
                false,
                &[],
                &[("io_uring_submit_sqe", 8), ("io_uring_complete", 5)],
            ),
            "6.1" => (
                false,
                &[
                    "BPF_FUNC_loop",
                    "BPF_FUNC_snprintf",
                    "BPF_FUNC_task_pt_regs",
                ],
                &[("io_uring_submit_sqe", 3), ("io_uring_complete", 8)],
            ),
            "6.12" => (
                true,
                &[
                    "BPF_FUNC_loop",
                    "BPF_FUNC_snprintf",
                    "BPF_FUNC_task_pt_regs",
                ],
                &[("io_uring_submit_req", 2), ("io_uring_complete", 8)],
            ),
            "7.3" => (
                true,
                &[
                    "BPF_FUNC_loop",
                    "BPF_FUNC_snprintf",
                    "BPF_FUNC_task_pt_regs",
                ],
                &[("io_uring_submit_req", 2), ("io_uring_complete", 4)],
            ),
            _ => unreachable!(),
        };
        let mut tracepoints = vec![
            ("sys_exit", 3),
            ("sched_process_exec", 4),
            ("sched_process_fork", 3),
            ("sched_process_exit", 2),
        ];
        tracepoints.extend_from_slice(uring);
        Kernel {
            release: release.into(),
            btf: true,
            rdonly_cast,
            helpers: helpers.iter().map(|h| h.to_string()).collect(),
            tracepoints,
        }
    }

    fn names(p: &Plan) -> Vec<&'static str> {
        p.slots.iter().map(|s| s.name()).collect()
    }

    fn gaps(p: &Plan) -> Vec<&'static str> {
        p.coverage()
            .into_iter()
            .filter(|c| !c.captured)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn debian_11s_5_10_loads_compat_programs_without_io_uring_and_says_why() {
        let p = Plan::new(&kernel("5.10"), false, true, false).unwrap();
        assert_eq!(
            names(&p),
            [
                "compat__sys_exit",
                "compat__sched_process_exec",
                "tp_btf__sched_process_fork",
                "tp_btf__sched_process_exit"
            ]
        );
        assert_eq!(
            gaps(&p),
            [
                Cap::IoUring.name(),
                Cap::DeepPaths.name(),
                Cap::PseudoNames.name()
            ]
        );
        let why = &p.coverage()[3].reason.clone().unwrap();
        assert!(
            why.contains("kernel 5.10 has no io_uring_submit_req"),
            "{why}"
        );
    }

    #[test]
    fn no_ia32_before_5_15_keeps_the_raw_exit_probe_and_says_so() {
        let p = Plan::new(&kernel("5.10"), true, true, false).unwrap();
        assert_eq!(names(&p)[0], "compat__sys_exit");
        assert!(p.notices[0].contains("bpf_task_pt_regs (5.15)"));
        assert!(!gaps(&p).contains(&Cap::Ia32.name()));
    }

    #[test]
    fn debian_12s_6_1_retargets_compat_io_uring_to_io_uring_submit_sqe() {
        let p = Plan::new(&kernel("6.1"), false, true, false).unwrap();
        assert!(names(&p).contains(&"compat__io_uring_submit_req"));
        assert!(names(&p).contains(&"compat__io_uring_complete"));
        assert_eq!(
            p.retarget(),
            Some(("compat__io_uring_submit_req", "io_uring_submit_sqe"))
        );
        assert!(!p.uring_complete_cqe);
        assert_eq!(gaps(&p), [Cap::DeepPaths.name()]);
    }

    #[test]
    fn debian_13s_6_12_is_fast_with_the_seven_argument_io_uring_complete() {
        let p = Plan::new(&kernel("6.12"), false, true, false).unwrap();
        assert!(p.slots.iter().all(|s| s.compat.is_none()));
        assert_eq!(p.retarget(), None);
        assert!(!p.uring_complete_cqe);
        assert!(gaps(&p).is_empty());
        let p = Plan::new(&kernel("6.12"), true, true, false).unwrap();
        assert!(names(&p).contains(&"tracepoint__syscalls__sys_exit_openat"));
        assert_eq!(gaps(&p), [Cap::Ia32.name(), Cap::FileOps.name()]);
    }

    #[test]
    fn kernel_7_3_reads_the_completion_entry() {
        let p = Plan::new(&kernel("7.3"), false, true, false).unwrap();
        assert!(p.uring_complete_cqe);
        assert!(gaps(&p).is_empty());
        let forced = Plan::new(&kernel("7.3"), false, true, true).unwrap();
        assert!(forced
            .slots
            .iter()
            .all(|s| s.prog.compat.is_none() || s.name().starts_with("compat__")));
        assert_eq!(gaps(&forced), [Cap::DeepPaths.name()]);
    }

    #[test]
    fn a_rejected_program_falls_back_to_its_twin_then_leaves_its_hook_out() {
        let mut p = Plan::new(&kernel("6.12"), false, true, false).unwrap();
        let change = p.reject(
            "tp_btf__io_uring_complete",
            "R2 invalid mem access 'scalar'",
        );
        assert!(change.unwrap().contains("compat__io_uring_complete"));
        assert!(names(&p).contains(&"compat__io_uring_complete"));
        assert!(names(&p).contains(&"tp_btf__io_uring_submit_req"));
        assert_eq!(gaps(&p), [Cap::DeepPaths.name()]);
        p.reject(
            "compat__io_uring_complete",
            "R2 invalid mem access 'scalar'",
        )
        .unwrap();
        assert!(!names(&p).iter().any(|n| n.contains("io_uring")));
        let uring = &p.coverage()[3];
        assert!(!uring.captured);
        assert!(
            uring.reason.as_deref().unwrap().contains(
                "kernel 6.12's verifier rejected compat__io_uring_complete: R2 invalid mem access"
            ),
            "{uring:?}"
        );
        // A twinless program takes its hook with it; an unknown one changes nothing.
        p.reject("tp_btf__sched_process_fork", "x").unwrap();
        assert!(!names(&p).iter().any(|n| n.contains("sched")));
        assert_eq!(p.reject("tp_btf__sched_process_fork", "x"), None);
    }
}
