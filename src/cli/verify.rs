//! `verify [--head HASH] [--key FILE]`: checks every sealed segment and the hash chain; names
//! edits, deletions, insertions, reordering and (given a head kept off the host) truncation.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::Failed;
use crate::output::{Format, Rows};
use crate::store::verify::verify;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The chain head printed by `record` (or `segments`) earlier and kept off the host: history
    /// up to it must still be there, unchanged.
    #[arg(long, value_name = "HASH")]
    pub head: Option<String>,
    /// The key `record --sign-key` signed with: every link must carry its signature.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let key = args.key.as_deref().map(super::read_key).transpose()?;
    let report = verify(store, args.head.as_deref(), key.as_deref())?;
    let mut rows = Rows::new(["segment", "seq", "events", "status", "link"]);
    for c in &report.segments {
        let m = c.meta.as_ref();
        let status = if !c.problems.is_empty() {
            c.problems.join("; ")
        } else if report.unchained.contains(&c.file) {
            "ok (sealed before tamper evidence: not chained)".into()
        } else {
            "ok".into()
        };
        rows.push(vec![
            json!(c.file),
            json!(m.map(|m| m.seq)),
            json!(m.map(|m| m.events)),
            json!(status),
            json!(m
                .and_then(|m| m.link.as_deref())
                .map(|l| &l[..16.min(l.len())])),
        ]);
    }
    let format = Format::resolve(args.format);
    let mut out = super::stdout();
    rows.write(format, &mut out)?;
    out.flush()?;
    drop(out);
    for p in &report.chain {
        eprintln!("open-forensics: chain: {p}");
    }
    for a in &report.active {
        eprintln!("open-forensics: note: {a} is being written (not sealed, not yet in the chain)");
    }
    eprintln!(
        "open-forensics: chain head {}",
        if report.head.is_empty() {
            "(none)"
        } else {
            &report.head
        }
    );
    if report.ok() {
        Ok(())
    } else {
        let n = report.chain.len()
            + report
                .segments
                .iter()
                .filter(|s| !s.problems.is_empty())
                .count();
        Err(Failed(format!("verification failed: {n} problem(s)")).into())
    }
}
