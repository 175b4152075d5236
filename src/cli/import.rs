use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::BadInput;
use crate::event::{Event, EventJson, ImportedProcs};
use crate::store::{RotateConfig, Writer};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON lines with the event fields (see README); - reads stdin.
    pub file: PathBuf,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let (name, text) = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading stdin")?;
        ("<stdin>".to_owned(), s)
    } else {
        let s = fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?;
        (args.file.display().to_string(), s)
    };
    // Validate the whole file before writing anything: a rejected file leaves no trace.
    let mut events = parse_jsonl(&name, &text)?;
    let mut writer = Writer::open(store, RotateConfig::default())?;
    for w in writer.take_warnings() {
        eprintln!("open-forensics: warning: {w}");
    }
    for ev in &mut events {
        writer.append(ev)?;
    }
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

/// Parses JSON lines into events; the first bad line is an error naming the line and the field.
pub fn parse_jsonl(name: &str, text: &str) -> anyhow::Result<Vec<Event>> {
    let mut events = Vec::new();
    // One process image per distinct lineage, shared by the lines that carry it.
    let mut procs = ImportedProcs::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |msg: String| BadInput(format!("{name}:{}: {msg}", i + 1));
        let json: EventJson = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        events.push(procs.event(json).map_err(bad)?);
    }
    Ok(events)
}
