//! Tamper evidence: every sealed segment records the SHA-256 of its database and a link that
//! hashes its metadata together with the previous segment's link, so the store is a hash chain.
//! [`verify`] checks each segment against itself (database hash, metadata against the database,
//! link, optional HMAC signature) and the chain as a whole, and names what it finds: edits,
//! deletions, insertions, reordering, and — given the head shipped off the host — truncation.
//! What it proves with and without `--key` and `--head` is written once, in docs/store.md
//! ("What verify proves").

use std::collections::HashMap;
use std::path::Path;

use super::dir::{Kind, StoreDir};
use super::segment::{link_of, parse_name, sign_link, SegmentData, SegmentMeta};
use super::Result;

/// What one sealed segment looked like.
#[derive(Clone, Debug)]
pub struct Checked {
    pub file: String,
    pub meta: Option<SegmentMeta>,
    /// Problems with this segment on its own (empty: intact).
    pub problems: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub segments: Vec<Checked>,
    /// Problems of the chain (deletions, insertions, reordering, truncation).
    pub chain: Vec<String>,
    /// Segments sealed before tamper evidence (no link): checked on their own only.
    pub unchained: Vec<String>,
    /// Segments newer than the given head: the head does not vouch for them (the key may).
    pub after_head: Vec<String>,
    /// The newest link: the head to keep off the host.
    pub head: String,
    /// Active segments (not sealed, not yet in the chain).
    pub active: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.chain.is_empty() && self.segments.iter().all(|s| s.problems.is_empty())
    }
}

/// Checks the store at `path`; `head` is a chain head recorded earlier (or a prefix of one, lower
/// case), `key` the signing key.
pub fn verify(path: &Path, head: Option<&str>, key: Option<&[u8]>) -> Result<Report> {
    let dir = StoreDir::open_for_reading(path)?;
    let mut report = Report::default();
    let mut names = dir.names()?;
    names.sort();
    for name in names {
        let Some((seq, sealed)) = parse_name(&name) else {
            continue;
        };
        if !sealed {
            report.active.push(name);
            continue;
        }
        let mut c = Checked {
            file: name.clone(),
            meta: None,
            problems: Vec::new(),
        };
        if !matches!(dir.kind(&name), Ok(Some((Kind::File, _)))) {
            c.problems.push("not a regular file".into());
            report.segments.push(c);
            continue;
        }
        match SegmentData::load_sealed(&dir, &name) {
            Err(e) => c.problems.push(format!("edited or damaged: {e}")),
            Ok(seg) => {
                c.problems.extend(seg.summary_problems());
                let m = seg.meta;
                if m.seq != seq {
                    c.problems.push(format!(
                        "renamed or reordered: the file is named {seq}, it holds segment {}",
                        m.seq
                    ));
                }
                if let Some(t) = &m.tampered {
                    c.problems
                        .push(format!("tampered while it was recorded: {t}"));
                }
                match &m.link {
                    None => {
                        if key.is_some() {
                            c.problems.push(
                                "unverifiable: not chained and not signed (sealed before tamper evidence, or stripped), so the key cannot vouch for it".into(),
                            );
                        }
                        report.unchained.push(name.clone());
                    }
                    Some(link) => {
                        if *link != link_of(&m) {
                            c.problems.push(
                                "metadata edited: its link does not match its contents".into(),
                            );
                        }
                        if let Some(k) = key {
                            match &m.sig {
                                None => c.problems.push("not signed".into()),
                                Some(s) if *s != sign_link(k, link) => c.problems.push(
                                    "signature does not match (edited, or another key)".into(),
                                ),
                                Some(_) => {}
                            }
                        }
                    }
                }
                c.meta = Some(m);
            }
        }
        report.segments.push(c);
    }
    let record = super::retention::read_prune(&dir);
    if let (Some(r), Some(k)) = (&record, key) {
        if !super::retention::signed_by(r, k) {
            report.chain.push(format!(
                "{}: the prune record is not signed with this key (a prune made without the signing key, or a forged record)",
                super::retention::PRUNE_FILE
            ));
        }
    }
    let cuts: Vec<&str> = record
        .iter()
        .flat_map(|r| std::iter::once(r.link.as_str()).chain(r.prev_link.as_deref()))
        .collect();
    check_chain(&mut report, head, &cuts);
    Ok(report)
}

/// `pruned`: the links `prune` recorded as cut on purpose (the first segment may follow one: the
/// last cut, or the one before it when a removal was recorded but did not finish).
fn check_chain(report: &mut Report, head: Option<&str>, pruned: &[&str]) {
    // The chained segments, by their own sequence number.
    let mut chained: Vec<(u64, &str, &str, &str)> = report
        .segments
        .iter()
        .filter_map(|c| {
            let m = c.meta.as_ref()?;
            Some((
                m.seq,
                c.file.as_str(),
                m.link.as_deref()?,
                m.prev.as_deref()?,
            ))
        })
        .collect();
    chained.sort();
    let by_link: HashMap<&str, (u64, &str)> =
        chained.iter().map(|(s, f, l, _)| (*l, (*s, *f))).collect();
    let mut problems = std::mem::take(&mut report.chain);
    // Once a store chains, every seal after is chained: an unchained segment after the start of
    // the chain was inserted, or stripped of its chain.
    if let Some(first) = chained.first() {
        for c in &report.segments {
            match &c.meta {
                Some(m) if m.link.is_none() && m.seq > first.0 => problems.push(format!(
                    "inserted or stripped: {} (segment {}) is not chained, but the chain began at segment {}",
                    c.file, m.seq, first.0
                )),
                _ => {}
            }
        }
    }
    let mut successor: HashMap<&str, Vec<&str>> = HashMap::new();
    for (i, (seq, file, _, prev)) in chained.iter().enumerate() {
        if prev.is_empty() {
            if i > 0 {
                problems.push(format!(
                    "inserted: {file} (segment {seq}) starts a new chain after segment {}",
                    chained[i - 1].0
                ));
            }
            continue;
        }
        match by_link.get(prev) {
            // The oldest remaining segment follows what `prune` removed.
            None if i == 0 && pruned.contains(prev) => {}
            None => {
                let before = if i > 0 {
                    format!("after segment {} ", chained[i - 1].0)
                } else {
                    String::new()
                };
                problems.push(format!(
                    "deleted: the segment that came before {file} (segment {seq}) {before}is missing"
                ));
            }
            Some((pseq, pfile)) => {
                successor.entry(pfile).or_default().push(file);
                if *pseq >= *seq {
                    problems.push(format!(
                        "reordered: {file} (segment {seq}) follows segment {pseq} in the chain"
                    ));
                } else if i > 0 && chained[i - 1].0 != *pseq {
                    // Linked to an older segment than the one before it: what lies between was
                    // inserted (or the chain was rewritten there).
                    problems.push(format!(
                        "inserted: segment(s) between {pseq} and {seq} are not in the chain ({file} links to segment {pseq})"
                    ));
                }
            }
        }
    }
    for (pred, next) in &successor {
        if next.len() > 1 {
            problems.push(format!(
                "inserted: {} all claim to follow {pred}",
                next.join(", ")
            ));
        }
    }
    report.head = chained.last().map(|c| c.2.to_owned()).unwrap_or_default();
    if let Some(h) = head {
        let found: Vec<&(u64, &str, &str, &str)> =
            chained.iter().filter(|c| c.2.starts_with(h)).collect();
        match found[..] {
            [] => problems.push(format!(
                "truncated: the segment whose link is the given head {h} is gone (the newest history was deleted or rewritten)"
            )),
            [(seq, ..)] => {
                report.after_head = chained
                    .iter()
                    .filter(|c| c.0 > *seq)
                    .map(|c| c.1.to_owned())
                    .collect();
            }
            _ => problems.push(format!(
                "the given head {h} is the start of {} links: give more of its digits",
                found.len()
            )),
        }
    }
    report.chain = problems;
}
