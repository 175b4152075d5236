//! The capture benchmark's floor (`bpf/floor.bpf.c`): probes on the recorder's open hooks that
//! only count. Not part of `record` or of any command: it lives in the library, not in
//! `benches/`, only because build.rs generates every skeleton into this crate's OUT_DIR.

use std::mem::MaybeUninit;

use anyhow::Context;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};

#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    non_camel_case_types,
    dead_code
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/floor.skel.rs"));
}

/// The counting probes, attached until dropped.
pub struct Floor<'obj> {
    skel: skel::FloorSkel<'obj>,
}

impl<'obj> Floor<'obj> {
    /// Loads and attaches the counting probes (root); `object` is the storage libbpf-rs
    /// skeletons borrow.
    pub fn attach(object: &'obj mut MaybeUninit<OpenObject>) -> anyhow::Result<Floor<'obj>> {
        let open = skel::FloorSkelBuilder::default()
            .open(object)
            .context("open the floor BPF object")?;
        let mut skel = open.load().context("load the floor probes")?;
        libbpf_rs::skel::Skel::attach(&mut skel).context("attach the floor probes")?;
        Ok(Floor { skel })
    }

    /// Probe runs so far, summed over the CPUs.
    pub fn count(&self) -> u64 {
        self.skel
            .maps
            .floor_count
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.get(..8)?.try_into().ok().map(u64::from_ne_bytes))
            .sum()
    }
}
