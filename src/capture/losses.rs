//! The probes' own loss counters (`of_losses`, per CPU and per reason): records the kernel could
//! not hand over, read as running totals for the recorder to turn into loss records.

use anyhow::Context;
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use super::skel::types::of_loss_reason;

/// The kernel's per-CPU `of_losses` array.
pub struct KernelLosses {
    map: MapHandle,
}

impl KernelLosses {
    pub(super) fn new(map: MapHandle) -> KernelLosses {
        KernelLosses { map }
    }

    /// How many reasons the kernel counts (each a key of the array).
    pub fn reasons(&self) -> u32 {
        of_loss_reason::OF_LOSS_NR.0
    }

    /// The name a reason is stored under.
    pub fn reason_name(code: u32) -> &'static str {
        match of_loss_reason(code) {
            of_loss_reason::OF_LOSS_RINGBUF_FULL => "ringbuf_full",
            of_loss_reason::OF_LOSS_STASH_FULL => "stash_full",
            _ => "kernel",
        }
    }

    /// The total of one reason's counters over every CPU.
    pub fn total(&self, code: u32) -> anyhow::Result<u64> {
        let per_cpu = self
            .map
            .lookup_percpu(&code.to_ne_bytes(), MapFlags::ANY)
            .context("read the kernel's loss counters")?
            .unwrap_or_default();
        Ok(per_cpu
            .iter()
            .filter_map(|v| v.get(..8)?.try_into().ok().map(u64::from_ne_bytes))
            .sum())
    }
}
