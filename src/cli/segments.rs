use std::path::Path;

use serde_json::json;

use super::Failed;
use crate::output::view::ViewArgs;
use crate::output::{Output, Rows};
use crate::store::list_segments;
use crate::timespec::format_ts;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format (default: table on a terminal, else jsonl).
    #[arg(long, value_enum)]
    pub format: Option<crate::output::Format>,
    #[command(flatten)]
    pub view: ViewArgs,
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
    let view = args.view.view();
    let mut out = Output::open(view.page);
    rows.write_view(view.format(args.format), &view, &mut out)?;
    out.finish()?;
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
