//! `import`: events from JSON lines into the store, all or nothing, in constant memory.
//!
//! Two passes over the input: the first validates every line and copies it to a private,
//! already-unlinked temporary file (so stdin works, and a file that changes while it is read
//! cannot slip in a line that was never checked); only when every line is good does the second pass
//! append the copy to the store. A rejected file therefore leaves no trace, and memory holds one
//! line and the process images of the file (one per distinct lineage), never the file.

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::BadInput;
use crate::event::{Event, EventJson, ImportedProcs};
use crate::store::{RotateConfig, Writer};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON lines with the event fields (docs/events.md); - reads stdin.
    pub file: PathBuf,
}

/// The longest line read (an event with its lineage is a few kilobytes; a longer line is not an
/// event, and reading it whole would let one line take the memory).
pub const MAX_LINE: usize = 16 << 20;

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let (name, input): (String, Box<dyn Read>) = if args.file.as_os_str() == "-" {
        ("<stdin>".to_owned(), Box::new(std::io::stdin().lock()))
    } else {
        let f = fs::File::open(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?;
        (args.file.display().to_string(), Box::new(f))
    };
    // Pass 1: validate everything before writing anything.
    let spool = tempfile::tempfile().context("creating a temporary file for the import")?;
    let mut copy = BufWriter::with_capacity(1 << 16, spool);
    let lines = for_each_event(&name, input, |line, _| {
        copy.write_all(line)?;
        copy.write_all(b"\n")
    })?;
    let mut spool = copy
        .into_inner()
        .map_err(|e| e.into_error())
        .context("writing the temporary copy")?;
    spool
        .seek(SeekFrom::Start(0))
        .context("rereading the temporary copy")?;

    // Pass 2: the validated copy into the store.
    let mut writer = Writer::open(store, RotateConfig::default())?;
    for w in writer.take_warnings() {
        eprintln!("open-forensics: warning: {w}");
    }
    let mut failed = None;
    let again = for_each_event(&name, spool, |_, ev| {
        if failed.is_none() {
            if let Err(e) = writer.append(ev) {
                failed = Some(e);
            }
        }
        Ok(())
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    debug_assert_eq!(lines, again);
    let summary = writer.close()?;
    for w in &summary.warnings {
        eprintln!("open-forensics: warning: {w}");
    }
    eprintln!(
        "open-forensics: imported {} events from {name} into {}",
        summary.events,
        store.display()
    );
    Ok(())
}

/// Parses JSON lines one at a time and hands each line and its event to `f`; the first bad line is
/// an error naming the line and the field. Returns the number of events.
pub fn for_each_event(
    name: &str,
    input: impl Read,
    mut f: impl FnMut(&[u8], &mut Event) -> std::io::Result<()>,
) -> anyhow::Result<u64> {
    // One process image per distinct lineage, shared by the lines that carry it.
    let mut procs = ImportedProcs::default();
    let mut input = BufReader::with_capacity(1 << 16, input);
    let mut buf = Vec::new();
    let (mut n, mut events) = (0u64, 0u64);
    loop {
        buf.clear();
        let got = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("reading {name}"))?;
        if got == 0 {
            return Ok(events);
        }
        n += 1;
        let bad = |msg: String| BadInput(format!("{name}:{n}: {msg}"));
        if buf.len() > MAX_LINE {
            return Err(bad(format!("longer than {} MiB: not an event", MAX_LINE >> 20)).into());
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line)
            .map_err(|e| bad(format!("not UTF-8 (byte {})", e.valid_up_to() + 1)))?;
        if text.trim().is_empty() {
            continue;
        }
        let json: EventJson = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut ev = procs.event(json).map_err(bad)?;
        events += 1;
        f(line, &mut ev).with_context(|| format!("{name}:{n}"))?;
    }
}
