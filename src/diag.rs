//! Diagnostics: the `-v` switch and the lines it lets through. The ground floor: any part may
//! report what it is doing without importing the part that turned debugging on.

use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns debugging output on or off (`-v` / `OPEN_FORENSICS_DEBUG`).
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
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
