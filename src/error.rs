//! Error kinds every part can raise. The ground floor: it depends on nothing else in the crate,
//! so capture, store and cli all use it without importing each other (`cli::exit` maps them to
//! exit codes).

/// Input the user must fix (a malformed file, a bad argument, an unsafe store, missing
/// privilege): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// A command that ran but must report failure without an error chain (e.g. `rules test` found
/// failing rules, or some segments could not be read): exit code 1, message already printed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);
