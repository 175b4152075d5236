//! open-forensics: record every file open with eBPF, keep it in compressed SQLite segments, and
//! replay detection rules over history.

pub mod alerts;
pub mod bytes;
pub mod capture;
pub mod cli;
pub mod columns;
pub mod diag;
pub mod errno;
pub mod error;
pub mod event;
pub mod file_id;
pub(crate) mod json;
pub mod need;
pub mod output;
pub mod process;
pub mod query;
pub mod recorder;
pub mod rules;
pub mod safe_path;
pub mod service;
pub mod store;
pub mod text;
pub mod timespec;
mod wire;
pub(crate) mod yaml_pos;
