//! What one query may take (issue #26): wall-clock time, SQLite's heap, the size of one value,
//! and where its sorter and temporary tables go. Without them an unbounded recursive CTE runs
//! until killed, `randomblob(900000000)` takes the host's memory, and a sort of generated rows
//! fills the disk (by default `/var/tmp`, which may hold the store the recorder writes to).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::limits::Limit;
use rusqlite::{ffi, Connection};

/// `--timeout`'s default: generous, since a week of history may take minutes to read.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
/// SQLite's heap for the whole process: its sorter, groups and temporary tables in memory.
pub const HEAP_LIMIT: i64 = 1 << 30;
/// The largest string or blob one value may be.
pub const MAX_LENGTH: i32 = 256 << 20;
/// Virtual-machine steps between two looks at the clock.
const CLOCK_EVERY: i32 = 10_000;

/// The limits of one session.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock time from opening the session; `None`: none.
    pub timeout: Option<Duration>,
    /// Where sorts and temporary tables may spill to files; `None`: memory only (up to
    /// [`HEAP_LIMIT`]), never a disk.
    pub temp_dir: Option<PathBuf>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Some(DEFAULT_TIMEOUT),
            temp_dir: None,
        }
    }
}

/// Sets the limits on `conn`; the clock starts now.
pub(super) fn apply(conn: &mut Connection, limits: &Limits) -> rusqlite::Result<()> {
    // SAFETY: sets a process-wide limit; SQLite serialises it internally.
    unsafe { ffi::sqlite3_hard_heap_limit64(HEAP_LIMIT) };
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_LENGTH)?;
    match &limits.temp_dir {
        // In memory, the sorter never writes a file: it grows until the heap limit says no.
        None => conn.execute_batch("PRAGMA temp_store = MEMORY")?,
        Some(dir) => {
            conn.pragma_update(None, "temp_store_directory", path_text(dir)?)?;
            // Beyond this cache, sorts and groups spill to files in `dir`.
            conn.execute_batch("PRAGMA temp_store = FILE; PRAGMA cache_size = -16384")?;
        }
    }
    if let Some(t) = limits.timeout {
        let deadline = Instant::now() + t;
        conn.progress_handler(CLOCK_EVERY, Some(move || Instant::now() >= deadline))?;
    }
    Ok(())
}

fn path_text(dir: &Path) -> rusqlite::Result<&str> {
    dir.to_str()
        .ok_or_else(|| rusqlite::Error::ModuleError(format!("{}: not UTF-8", dir.display())))
}

/// Which limit an SQLite error means, in words, if it is one of them.
pub(super) fn exceeded(e: &rusqlite::Error, limits: &Limits) -> Option<String> {
    use rusqlite::ErrorCode as C;
    let code = e.sqlite_error_code()?;
    match code {
        C::OperationInterrupted => Some(format!(
            "stopped after {} (--timeout; give a longer one, or narrow --since/--until)",
            limits.timeout.map(humantime).unwrap_or_default()
        )),
        C::OutOfMemory => Some(match &limits.temp_dir {
            None => format!(
                "needs more than {} MiB of memory to sort or group in memory; give --temp-dir DIR to let it spill to files there",
                HEAP_LIMIT >> 20
            ),
            Some(_) => format!("needs more than {} MiB of memory", HEAP_LIMIT >> 20),
        }),
        C::TooBig => Some(format!(
            "a value would exceed {} MiB (the largest string or blob a query may make)",
            MAX_LENGTH >> 20
        )),
        _ => None,
    }
}

/// `1h`, `90s`, `250ms`: as `--timeout` takes it.
fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match (s, d.subsec_millis()) {
        (0, ms) => format!("{ms}ms"),
        (s, 0) if s % 3600 == 0 => format!("{}h", s / 3600),
        (s, 0) if s % 60 == 0 => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        _ => format!("{}ms", d.as_millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_back_as_given() {
        for (d, s) in [
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1500ms"),
        ] {
            assert_eq!(humantime(d), s);
        }
    }
}
