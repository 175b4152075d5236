//! The libbpf-cargo skeleton of `bpf/opens.bpf.c`, and the record types it generates from
//! `bpf/events.h` (the only declaration of the record layout).

#![allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    non_camel_case_types,
    dead_code
)]

include!(concat!(env!("OUT_DIR"), "/opens.skel.rs"));
