//! `verify [--head HASH] [--key FILE]`: checks every sealed segment and the hash chain; names
//! edits, deletions, insertions, reordering and (given a head kept off the host) truncation.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{BadInput, Failed};
use crate::output::view::ViewArgs;
use crate::output::{Output, Rows};
use crate::store::verify::verify;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The chain head printed by `record` (or `segments`) earlier and kept off the host: history
    /// up to it must still be there, unchanged. Any unique prefix of at least 8 hex digits, in
    /// either case (`verify` prints 16).
    #[arg(long, value_name = "HASH")]
    pub head: Option<String>,
    /// The key `record --sign-key` signed with: every link must carry its signature.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    pub format: Option<crate::output::Format>,
    #[command(flatten)]
    pub view: ViewArgs,
}

/// A head as given: 8 to 64 hex digits, either case; lower case.
fn parse_head(h: &str) -> Result<String, BadInput> {
    let t = h.trim();
    if (8..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(BadInput(format!(
            "--head {h:?}: not a chain head: give the 64 hex digits `record` or `verify` printed, or at least the first 8 of them"
        )))
    }
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let head = args.head.as_deref().map(parse_head).transpose()?;
    let key = args.key.as_deref().map(super::read_key).transpose()?;
    let report = verify(store, head.as_deref(), key.as_deref())?;
    let mut rows = Rows::new(["segment", "seq", "events", "status", "link"]);
    for c in &report.segments {
        let m = c.meta.as_ref();
        let status = if !c.problems.is_empty() {
            c.problems.join("; ")
        } else if report.unchained.contains(&c.file) {
            "ok (sealed before tamper evidence: not chained)".into()
        } else if report.after_head.contains(&c.file) {
            if key.is_some() {
                "ok (newer than the given head: vouched for by its signature)".into()
            } else {
                "ok (newer than the given head: chained, but neither the head nor a key vouches for it)".into()
            }
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
    let view = args.view.view();
    let mut out = Output::open(view.page);
    rows.write_view(view.format(args.format), &view, &mut out)?;
    out.finish()?;
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

#[cfg(test)]
mod tests {
    use super::parse_head;

    #[test]
    fn heads_are_8_to_64_hex_digits_in_either_case() {
        assert_eq!(parse_head(" ABCDEF0123 ").unwrap(), "abcdef0123");
        assert_eq!(parse_head(&"f".repeat(64)).unwrap(), "f".repeat(64));
        for bad in ["abcdef0", "xyz12345678", &"a".repeat(65), "", "0x12345678"] {
            let e = parse_head(bad).unwrap_err().to_string();
            assert!(e.contains("not a chain head"), "{bad}: {e}");
        }
    }
}
