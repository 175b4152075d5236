//! The installed binary without its debug info, which goes to a file of its own: a build with
//! line tables for profiling is ~125 MB, ~14 MB without them. `objcopy` (binutils, there wherever
//! the binary was built) does the split, as dh_strip and cargo-deb do; the binary keeps a
//! `.gnu_debuglink` to the file, so gdb, perf and addr2line find it under /usr/lib/debug.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::service::install::DEBUG_NAME;

/// Below this much debug info the binary is installed as it is.
const WORTH_SPLITTING: usize = 1 << 20;

/// `(stripped binary, debug file)`, or `None` when there is nothing worth splitting or no
/// `objcopy` (then the binary is installed whole, and a notice says why).
pub fn split(exe: &Path, binary: &[u8]) -> anyhow::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let tmp = tempfile::tempdir().context("a temporary directory for objcopy")?;
    let debug = tmp.path().join(DEBUG_NAME);
    let stripped = tmp.path().join("open-forensics");
    let objcopy = |args: &[&std::ffi::OsStr]| -> anyhow::Result<bool> {
        match Command::new("objcopy").args(args).status() {
            Ok(s) if s.success() => Ok(true),
            Ok(s) => Err(anyhow::anyhow!("objcopy {args:?}: {s}")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).context("run objcopy"),
        }
    };
    if !objcopy(&[
        "--only-keep-debug".as_ref(),
        exe.as_os_str(),
        debug.as_os_str(),
    ])? {
        eprintln!("open-forensics: notice: no objcopy (binutils): the binary is installed with its debug info");
        return Ok(None);
    }
    // The link is made from the debug file's own directory, so it records the bare name.
    let link = format!("--add-gnu-debuglink={}", debug.display());
    objcopy(&[
        "--strip-debug".as_ref(),
        link.as_ref(),
        exe.as_os_str(),
        stripped.as_os_str(),
    ])?;
    let stripped = std::fs::read(&stripped).context("read the stripped binary")?;
    if binary.len().saturating_sub(stripped.len()) < WORTH_SPLITTING {
        return Ok(None);
    }
    let debug = std::fs::read(&debug).context("read the debug file")?;
    Ok(Some((stripped, debug)))
}
