//! `open-forensics prune`: flags → `store::prune_before`.

use std::path::{Path, PathBuf};

use super::BadInput;
use crate::timespec::format_ts;

/// How recent a `--before` may be without `--force`: one rotation period at the default
/// `--max-age` (1h), so that a slip (`--before 0s`) cannot empty a store.
pub const RECENT_NS: i64 = 3600 * 1_000_000_000;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Delete sealed segments whose last event is older than this: RFC3339 or a duration ago (30d).
    #[arg(long)]
    pub before: String,
    /// Only list what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Allow a --before less than an hour ago (one rotation period at the default --max-age).
    #[arg(long)]
    pub force: bool,
    /// The key the store is signed with (`record --sign-key`): signs the prune record, so that
    /// `verify --key` accepts the cut.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let now = crate::timespec::now_ns();
    let before = crate::timespec::parse_time(&args.before, now)
        .map_err(|e| BadInput(format!("--before: {e}")))?;
    if before > now - RECENT_NS && !args.force && !args.dry_run {
        return Err(BadInput(format!(
            "--before {}: {} is less than an hour ago (one rotation period): that would delete recent history; check with --dry-run, and pass --force if you mean it",
            args.before,
            format_ts(before)
        ))
        .into());
    }
    let key = args.sign_key.as_deref().map(super::read_key).transpose()?;
    let removed = crate::store::prune_before(store, before, args.dry_run, key.as_deref())?;
    let events: u64 = removed.iter().map(|s| s.meta.events).sum();
    if args.dry_run {
        for s in &removed {
            println!("{}", s.file);
        }
    }
    eprintln!(
        "open-forensics: {} {} segment(s), {events} events, older than {}",
        if args.dry_run {
            "would prune"
        } else {
            "pruned"
        },
        removed.len(),
        format_ts(before)
    );
    Ok(())
}
