//! The report's last section, what makes it evidence: the store's `verify` verdict and chain
//! head at the time of the report, the command line that made it, the tool's version and when.

use std::path::Path;

use serde::Serialize;

use crate::store::verify::{verify, Report};

#[derive(Debug, Serialize)]
pub struct Evidence {
    /// The store's hash chain and every sealed segment checked (`verify` without `--head`/`--key`).
    pub verified: bool,
    /// The chain head: keep it with the report to show later that the store is the same.
    pub head: String,
    pub segments: usize,
    /// What `verify` found wrong, one line each (empty when `verified`).
    pub problems: Vec<String>,
    /// Segments sealed before tamper evidence: intact on their own, not chained.
    pub unchained: usize,
    /// Segments still being written: not sealed, not yet in the chain.
    pub active: usize,
    pub store: String,
    pub command: Vec<String>,
    pub version: &'static str,
    pub generated: String,
}

impl Evidence {
    pub fn of(store: &Path, command: Vec<String>, generated_ns: i64) -> crate::store::Result<Self> {
        Ok(Self::from_report(
            &verify(store, None, None)?,
            store,
            command,
            generated_ns,
        ))
    }

    fn from_report(r: &Report, store: &Path, command: Vec<String>, generated_ns: i64) -> Self {
        let problems = r
            .chain
            .iter()
            .map(|p| format!("chain: {p}"))
            .chain(
                r.segments
                    .iter()
                    .flat_map(|s| s.problems.iter().map(move |p| format!("{}: {p}", s.file))),
            )
            .collect();
        Evidence {
            verified: r.ok(),
            head: r.head.clone(),
            segments: r.segments.len(),
            problems,
            unchained: r.unchained.len(),
            active: r.active.len(),
            store: store.display().to_string(),
            command,
            version: env!("CARGO_PKG_VERSION"),
            generated: crate::timespec::format_ts(generated_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::verify::Checked;

    #[test]
    fn every_problem_verify_finds_is_in_the_verdict() {
        let mut r = Report {
            head: "ab".repeat(32),
            ..Report::default()
        };
        r.segments.push(Checked {
            file: "0000000002.seg.zst".into(),
            meta: None,
            problems: vec!["metadata edited".into()],
        });
        r.chain.push("segment 1 deleted".into());
        let e = Evidence::from_report(&r, Path::new("/s"), vec![], 0);
        assert!(!e.verified);
        assert_eq!(
            e.problems,
            [
                "chain: segment 1 deleted",
                "0000000002.seg.zst: metadata edited"
            ]
        );
        assert_eq!(e.head, "ab".repeat(32));
        let ok = Evidence::from_report(&Report::default(), Path::new("/s"), vec![], 0);
        assert!(ok.verified && ok.problems.is_empty());
    }
}
