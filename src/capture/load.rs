//! Opening and loading the probes by a [`Plan`]. Where the kernel rejects a program anyway, the
//! rejection is reported (the program, the kernel, the verifier's last lines: libbpf's printed
//! output is kept while loading) and the plan amended (the compat twin, else the program's hook
//! left out); the object is opened afresh and loaded again, so one rejected program never costs
//! the rest.

use std::mem::MaybeUninit;
use std::sync::Mutex;

use anyhow::{anyhow, Context};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{ErrorKind, OpenObject, PrintLevel, ProgramType};

use super::drain::drain_threshold;
use super::plan::Plan;
use super::privilege;
use super::skel::{self, OpenOpensSkel, OpensSkel, OpensSkelBuilder};
use crate::error::BadInput;

/// Testing and diagnosis: the programs named here (comma-separated) are loaded as socket
/// filters, which the kernel's verifier refuses, to exercise what a real rejection does.
pub const REJECT_ENV: &str = "OPEN_FORENSICS_REJECT";

/// The verifier log lines a rejection shows (`-v` shows all of libbpf's output).
const LOG_TAIL: usize = 10;

/// Loads at most this many times: each rejection switches a program to its twin or leaves its
/// hook out, so there are at most two per program (fewer than 16 programs load).
const ATTEMPTS: usize = 32;

/// Storage for each attempt's object (an opened skeleton borrows it).
pub type Objects = [MaybeUninit<OpenObject>; ATTEMPTS];

pub fn objects() -> Objects {
    [const { MaybeUninit::uninit() }; ATTEMPTS]
}

/// libbpf's output while loading, when kept.
static LOG: Mutex<Option<String>> = Mutex::new(None);

fn libbpf_print(level: PrintLevel, msg: String) {
    if crate::diag::verbose() {
        let level = match level {
            PrintLevel::Warn => "warn",
            PrintLevel::Info => "info",
            PrintLevel::Debug => "debug",
        };
        eprint!("open-forensics: libbpf {level}: {msg}");
    }
    if let Some(log) = LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        log.push_str(&msg);
    }
}

/// Kernel memory the directory path cache may take in all (it is per CPU).
const DIR_CACHE_BUDGET: usize = 16 << 20;

/// Slots per CPU of the probes' directory cache: the most (512 = OF_DIR_SLOTS) that keeps the
/// per-CPU array within [`DIR_CACHE_BUDGET`] for this many possible CPUs, a power of two, at
/// least 32 (a 2-CPU host: 512, 266 KiB per CPU; 256 CPUs: 64, 8.3 MiB in all).
fn dir_cache_slots(cpus: usize) -> u32 {
    let slot = std::mem::size_of::<skel::types::of_dir_slot>();
    let fit = DIR_CACHE_BUDGET / (cpus.max(1) * slot);
    let most = skel::types::of_limits::OF_LIMIT_DIR_SLOTS.0;
    let pow2 = if fit == 0 { 1 } else { 1 << fit.ilog2() };
    (pow2 as u32).clamp(32, most)
}

/// EPERM (a privilege problem) and EACCES (the verifier rejected a program) share an ErrorKind;
/// libbpf-rs keeps the errno only in its message.
fn is_eperm(e: &libbpf_rs::Error) -> bool {
    e.kind() == ErrorKind::PermissionDenied && e.to_string().contains("(os error 1)")
}

/// Sizes the maps and sets the flags and programs `plan` asks for.
fn configure(open: &mut OpenOpensSkel, ring_bytes: u32, plan: &Plan) -> anyhow::Result<()> {
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .ok_or_else(|| anyhow!("the BPF object has no read-only data"))?;
    rodata.targ_self_tgid = std::process::id();
    rodata.wakeup_shift = drain_threshold(ring_bytes).ilog2();
    rodata.uring_complete_cqe = plan.uring_complete_cqe;
    let slots = dir_cache_slots(libbpf_rs::num_possible_cpus().unwrap_or(1));
    rodata.dir_slots_mask = slots - 1;
    open.maps
        .of_events
        .set_max_entries(ring_bytes)
        .context("size the ring buffer")?;
    open.maps
        .of_dirs
        .set_max_entries(slots)
        .context("size the directory cache")?;
    let reject = std::env::var(REJECT_ENV).unwrap_or_default();
    let retarget = plan.retarget();
    for mut prog in open.open_object_mut().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        prog.set_autoload(plan.slots.iter().any(|s| s.name() == name));
        if let Some((_, target)) = retarget.filter(|(p, _)| *p == name) {
            prog.set_attach_target(0, Some(target.to_owned()))
                .with_context(|| format!("attach {name} to {target}"))?;
        }
        if reject.split(',').any(|r| r == name) {
            prog.set_prog_type(ProgramType::SocketFilter);
        }
    }
    Ok(())
}

/// The program libbpf names as failing in its output `log`, and the last lines of the
/// verifier's log for it (or of libbpf's lines about it, when the verifier never saw it).
fn rejected(log: &str) -> Option<(String, Vec<String>)> {
    let prog = log.lines().find_map(|l| {
        let (name, msg) = l.split_once("prog '")?.1.split_once("': ")?;
        msg.contains("fail").then(|| name.to_owned())
    })?;
    let begin = format!("prog '{prog}': -- BEGIN PROG LOAD LOG --");
    let (mut verifier, mut inside) = (Vec::new(), false);
    for l in log.lines() {
        if l.contains(&begin) {
            (verifier, inside) = (Vec::new(), true);
        } else if l.contains("-- END PROG LOAD LOG --") {
            inside = false;
        } else if inside && !l.trim().is_empty() {
            verifier.push(l);
        }
    }
    let named = format!("prog '{prog}'");
    let lines = if verifier.is_empty() {
        log.lines().filter(|l| l.contains(&named)).collect()
    } else {
        verifier
    };
    let tail = lines[lines.len().saturating_sub(LOG_TAIL)..]
        .iter()
        .map(|l| l.trim_end().to_owned())
        .collect();
    Some((prog, tail))
}

/// The verifier's verdict: the last line of its log that is not its statistics.
fn verdict(tail: &[String]) -> String {
    tail.iter()
        .rev()
        .find(|l| !l.starts_with("processed ") && !l.starts_with("verification time"))
        .map(|l| l.trim().trim_start_matches("libbpf: ").to_owned())
        .unwrap_or_else(|| "no reason given".into())
}

/// Opens and loads the probes by `plan`, amending it after each rejection; returns the loaded
/// skeleton and the plan it was loaded by.
pub fn load(
    objects: &mut Objects,
    ring_bytes: u32,
    mut plan: Plan,
) -> anyhow::Result<(OpensSkel<'_>, Plan)> {
    libbpf_rs::set_print(Some((PrintLevel::Debug, libbpf_print)));
    for object in objects.iter_mut() {
        let mut open = OpensSkelBuilder::default()
            .open(object)
            .context("open the BPF object")?;
        configure(&mut open, ring_bytes, &plan)?;
        *LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(String::new());
        let loaded = open.load();
        let log = LOG
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        let e = match loaded {
            Ok(skel) => return Ok((skel, plan)),
            Err(e) => e,
        };
        if is_eperm(&e) {
            return Err(BadInput(privilege::privilege_message(
                "the kernel refused to load the BPF programs (EPERM)",
            ))
            .into());
        }
        let r = plan.release.clone();
        let Some((prog, tail)) = rejected(&log) else {
            let last: Vec<&str> = log.lines().rev().take(LOG_TAIL).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            return Err(anyhow!(
                "kernel {r} refused the BPF object ({}); libbpf's last lines:\n  | {}",
                kernel_error(&e),
                last.join("\n  | ")
            ));
        };
        let why = verdict(&tail);
        let Some(change) = plan.reject(&prog, &why) else {
            return Err(anyhow!(
                "kernel {r}'s verifier rejected {prog}, which was not to be loaded: {why}"
            ));
        };
        eprintln!(
            "open-forensics: warning: kernel {r}'s verifier rejected program {prog} ({}); {change}. The verifier's last lines{}:\n  | {}",
            kernel_error(&e),
            if crate::diag::verbose() {
                ""
            } else {
                " (record -v or OPEN_FORENSICS_DEBUG=1 shows all)"
            },
            tail.join("\n  | ")
        );
        if plan.slots.is_empty() {
            return Err(anyhow!("kernel {r} rejected every program of the probes"));
        }
    }
    Err(anyhow!(
        "kernel {} kept rejecting the probes' programs after {ATTEMPTS} loads",
        plan.release
    ))
}

/// The kernel's error by its errno's name: EACCES is the verifier's refusal, not a permission.
fn kernel_error(e: &libbpf_rs::Error) -> String {
    let text = e.to_string();
    for (code, name) in [
        (libc::EACCES, "EACCES: the verifier refused it"),
        (libc::EINVAL, "EINVAL"),
        (libc::ESRCH, "ESRCH: a type or function it needs is missing"),
        (libc::ENOENT, "ENOENT"),
        (libc::E2BIG, "E2BIG: too large for the verifier"),
    ] {
        if text.contains(&format!("(os error {code})")) {
            return name.into();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The directory cache takes its full size on small hosts and shrinks, by powers of two, to
    /// stay within its budget on large ones.
    #[test]
    fn directory_cache_stays_within_its_budget_for_any_cpu_count() {
        let slot = std::mem::size_of::<skel::types::of_dir_slot>();
        assert_eq!(dir_cache_slots(2), 512);
        assert_eq!(dir_cache_slots(256), 64);
        for cpus in [1, 2, 3, 8, 31, 64, 100, 256, 1024] {
            let n = dir_cache_slots(cpus);
            assert!(
                n.is_power_of_two() && (32..=512).contains(&n),
                "{cpus} CPUs: {n}"
            );
            assert!(
                n == 32 || cpus * n as usize * slot <= DIR_CACHE_BUDGET,
                "{cpus}: {n}"
            );
        }
        assert_eq!(dir_cache_slots(100_000), 32);
    }

    /// libbpf 1.7's output for a program the verifier refused (trimmed).
    const REJECTED: &str = "libbpf: prog 'tp_btf__sys_exit': BPF program load failed: -EACCES
libbpf: prog 'tp_btf__sys_exit': -- BEGIN PROG LOAD LOG --
0: R1=ctx() R10=fp0
1: (79) r6 = *(u64 *)(r1 +8)
kfunc 'bpf_rdonly_cast' is referenced but wasn't resolved
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0
-- END PROG LOAD LOG --
libbpf: prog 'tp_btf__sys_exit': failed to load: -EACCES
libbpf: failed to load object 'opens_bpf'
";

    #[test]
    fn a_rejection_names_the_program_and_the_verifiers_reason() {
        let (prog, tail) = rejected(REJECTED).unwrap();
        assert_eq!(prog, "tp_btf__sys_exit");
        assert_eq!(tail.len(), 4, "{tail:?}");
        assert_eq!(
            verdict(&tail),
            "kfunc 'bpf_rdonly_cast' is referenced but wasn't resolved"
        );
        // Refused before the verifier: libbpf's own lines about the program.
        let relo = "libbpf: prog 'tp_btf__io_uring_submit_req': relo #3: no matching targets found\n\
                    libbpf: prog 'tp_btf__io_uring_submit_req': failed to relocate data references: -ESRCH\n";
        let (prog, tail) = rejected(relo).unwrap();
        assert_eq!(prog, "tp_btf__io_uring_submit_req");
        assert!(verdict(&tail).contains("failed to relocate"), "{tail:?}");
        assert_eq!(
            rejected("libbpf: failed to load object 'opens_bpf'\n"),
            None
        );
    }
}
