//! How a recording is stopped and asked to reload: SIGINT/SIGTERM stop it (a second one ends it at
//! once), SIGHUP asks for a reload and never ends it.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, LazyLock};

use anyhow::Context;

static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);
/// Set by SIGHUP: a request to reload the configuration and rules (`crate::service` takes it; a
/// recorder without a supervisor says it has nothing to reload, and keeps recording).
pub static HANGUP: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);

/// Makes SIGINT and SIGTERM set the returned flag instead of killing the process (a second one
/// ends it at once, exit 1: the next writer seals what it leaves), and SIGHUP set [`HANGUP`] (a
/// terminal closing must not end a recording and leave a segment unsealed). signal-hook's
/// handlers only store to atomics, which is async-signal-safe.
pub fn stop_on_signals() -> anyhow::Result<&'static AtomicBool> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        // Registered first: it sees the flag as it was before this signal set it.
        signal_hook::flag::register_conditional_shutdown(sig, 1, STOP.clone())
            .context("install a signal handler")?;
        signal_hook::flag::register(sig, STOP.clone()).context("install a signal handler")?;
    }
    signal_hook::flag::register(SIGHUP, HANGUP.clone()).context("install a signal handler")?;
    Ok(&STOP)
}
