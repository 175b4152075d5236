//! Diagnostics: the `-v` switch and the lines it lets through. The ground floor: any part may
//! report what it is doing without importing the part that turned debugging on.

use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns debugging output on or off (`-v` / `OPEN_FORENSICS_DEBUG`).
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// Turns debugging output on when `OPEN_FORENSICS_DEBUG` is set (not empty, not 0), for every
/// command: `--version`'s probe load prints the verifier's whole log with it.
pub fn from_env() {
    if std::env::var("OPEN_FORENSICS_DEBUG").is_ok_and(|v| !v.is_empty() && v != "0") {
        set_verbose(true);
    }
}

/// Whether debugging output is on.
pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// A line on stderr when debugging.
pub fn debug(msg: &str) {
    if verbose() {
        eprintln!("open-forensics: debug: {msg}");
    }
}
