use std::path::Path;

use super::BadInput;
use crate::event::format_ts;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Delete sealed segments whose last event is older than this: RFC3339 or a duration ago (30d).
    #[arg(long)]
    pub before: String,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let before = crate::timespec::parse_time(&args.before, crate::timespec::now_ns())
        .map_err(|e| BadInput(format!("--before: {e}")))?;
    let removed = crate::store::prune_before(store, before)?;
    let events: u64 = removed.iter().map(|s| s.meta.events).sum();
    eprintln!(
        "open-forensics: pruned {} segment(s), {events} events, older than {}",
        removed.len(),
        format_ts(before)
    );
    Ok(())
}
