use std::path::Path;

use serde_json::json;

use super::Failed;
use crate::output::{Format, Rows};
use crate::store::list_segments;
use crate::timespec::format_ts;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format (default: table on a terminal, else jsonl).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let (segments, bad) = list_segments(store)?;
    let mut rows = Rows::new([
        "name", "state", "first", "last", "events", "lost", "late", "bytes", "ratio",
    ]);
    for s in &segments {
        rows.push(vec![
            json!(s.name()),
            json!(s.state),
            json!(s.meta.first_ts_ns.map(format_ts)),
            json!(s.meta.last_ts_ns.map(format_ts)),
            json!(s.meta.events),
            json!(s.meta.lost),
            json!(s.meta.late),
            json!(s.file_bytes),
            json!((s.compression_ratio() * 100.0).round() / 100.0),
        ]);
    }
    let mut out = super::stdout();
    rows.write(Format::resolve(args.format), &mut out)?;
    drop(out);
    let head = segments
        .iter()
        .filter(|s| s.state == crate::store::SegmentState::Sealed)
        .filter_map(|s| Some((s.meta.seq, s.meta.link.clone()?)))
        .max();
    if let Some((_, h)) = head {
        eprintln!("open-forensics: chain head {h}");
    }
    for p in crate::store::pruned(store) {
        eprintln!(
            "open-forensics: pruned ({}): {} events in {} segment(s) between {} and {}",
            p.by,
            p.events,
            p.segments,
            format_ts(p.from_ns),
            format_ts(p.to_ns)
        );
    }
    let (skipped, bad): (Vec<_>, Vec<_>) = bad.into_iter().partition(|e| {
        use crate::store::StoreError::{Skipped, Tampered};
        matches!(e, Skipped { .. } | Tampered { .. })
    });
    for w in &skipped {
        eprintln!("open-forensics: warning: {w}");
    }
    for e in &bad {
        eprintln!("open-forensics: error: {e}");
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Failed(format!("{} segment(s) could not be read", bad.len())).into())
    }
}
