//! Pattern values (exact, prefix, glob) and their tables. Every string pattern of a rule set goes
//! into one table per field (path, comm, exe…), deduplicated, so that a string is matched against
//! all of them at once; clauses refer to patterns by id.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;

use globset::{Candidate, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

/// The kernel keeps 15 bytes of a process name (TASK_COMM_LEN 16, with the NUL).
const COMM_MAX: usize = 15;

#[derive(Clone, Debug)]
pub(super) enum PatKind {
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    Glob(GlobMatcher),
}

#[derive(Clone, Debug)]
pub(super) struct Pattern {
    /// As written (it is the alert's `matched`).
    pub(super) text: String,
    pub(super) kind: PatKind,
}

/// All patterns for one field, deduplicated.
#[derive(Clone, Debug, Default)]
pub(super) struct PatternTable {
    pub(super) pats: Vec<Pattern>,
    ids: HashMap<(u8, String), u32>,
    exact: HashMap<Box<[u8]>, Vec<u32>>,
    prefixes: Vec<(Box<[u8]>, u32)>,
    /// All globs at once; `None` when the set could not be built (a size limit of the
    /// combined automaton): then each glob is matched on its own, slower but never wrong.
    globs: Option<GlobSet>,
    glob_ids: Vec<u32>,
}

impl PatternTable {
    pub(super) fn add(&mut self, text: &str, kind: PatKind) -> u32 {
        let tag = match kind {
            PatKind::Exact(_) => 0,
            PatKind::Prefix(_) => 1,
            PatKind::Glob(_) => 2,
        };
        if let Some(id) = self.ids.get(&(tag, text.to_owned())) {
            return *id;
        }
        let id = self.pats.len() as u32;
        self.ids.insert((tag, text.to_owned()), id);
        match &kind {
            PatKind::Exact(b) => self.exact.entry(b.clone()).or_default().push(id),
            PatKind::Prefix(b) => self.prefixes.push((b.clone(), id)),
            PatKind::Glob(_) => {}
        }
        self.pats.push(Pattern {
            text: text.to_owned(),
            kind,
        });
        id
    }

    /// Builds the glob set once every pattern is in.
    pub(super) fn finish(&mut self) {
        let mut b = GlobSetBuilder::new();
        self.glob_ids.clear();
        for (id, p) in self.pats.iter().enumerate() {
            if let PatKind::Glob(m) = &p.kind {
                b.add(m.glob().clone());
                self.glob_ids.push(id as u32);
            }
        }
        // Each glob was built alone already, so the set can only fail on its combined size.
        self.globs = b.build().ok();
    }

    /// Sets `hit[id]` for every pattern that matches `s`.
    pub(super) fn matches(&self, s: &[u8], hit: &mut Vec<bool>, tmp: &mut Vec<usize>) {
        hit.clear();
        hit.resize(self.pats.len(), false);
        if let Some(ids) = self.exact.get(s) {
            for id in ids {
                hit[*id as usize] = true;
            }
        }
        for (p, id) in &self.prefixes {
            if s.starts_with(p) {
                hit[*id as usize] = true;
            }
        }
        if !self.glob_ids.is_empty() {
            let cand = Candidate::from_bytes(s);
            match &self.globs {
                Some(set) => {
                    set.matches_candidate_into(&cand, tmp);
                    for i in tmp.iter() {
                        hit[self.glob_ids[*i] as usize] = true;
                    }
                }
                None => {
                    for &id in &self.glob_ids {
                        if let PatKind::Glob(m) = &self.pats[id as usize].kind {
                            hit[id as usize] = m.is_match_candidate(&cand);
                        }
                    }
                }
            }
        }
    }

    pub(super) fn is_match(&self, id: u32, s: &[u8]) -> bool {
        match &self.pats[id as usize].kind {
            PatKind::Exact(b) => **b == *s,
            PatKind::Prefix(b) => s.starts_with(b),
            PatKind::Glob(m) => {
                m.is_match_candidate(&Candidate::new(std::ffi::OsStr::from_bytes(s)))
            }
        }
    }
}

pub(super) fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// The longest pattern accepted, in bytes: no path is longer (PATH_MAX), and globset panics on a
/// glob whose regex outgrows its size limit (one of 240 KB did).
const PATTERN_MAX: usize = 4096;

pub(super) fn check_length(text: &str) -> Result<(), String> {
    if text.len() <= PATTERN_MAX {
        return Ok(());
    }
    let mut end = 40;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Err(format!(
        "pattern {:?}… is {} bytes long; patterns are limited to {PATTERN_MAX} bytes (no path is longer)",
        &text[..end],
        text.len()
    ))
}

/// A path value: exact path, `dir/` prefix, or glob (`*` within a component, `**` across).
pub(super) fn path_pattern(text: &str) -> Result<PatKind, String> {
    check_length(text)?;
    // Pseudo files are recorded by the kernel's names for them (pipe:[N], socket:[N],
    // anon_inode:[…]), which are not paths.
    let pseudo = ["pipe:", "socket:", "anon_inode:"]
        .iter()
        .any(|p| text.starts_with(p));
    if !pseudo && !text.starts_with(['/', '*', '?', '[', '{']) {
        return Err(format!(
            "path {text:?} is not absolute and can never match (recorded paths start with `/`; use `/{text}` or `**/{text}`)"
        ));
    }
    if has_glob_meta(text) {
        GlobBuilder::new(text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map(|g| PatKind::Glob(g.compile_matcher()))
            .map_err(|e| format!("invalid glob {text:?}: {}", glob_reason(&e)))
    } else if text.ends_with('/') {
        Ok(PatKind::Prefix(text.as_bytes().into()))
    } else {
        Ok(PatKind::Exact(text.as_bytes().into()))
    }
}

fn glob_reason(e: &globset::Error) -> String {
    e.kind().to_string()
}

pub(super) fn prefix_pattern(text: &str) -> Result<PatKind, String> {
    check_length(text)?;
    if !text.starts_with('/') {
        return Err(format!(
            "path prefix {text:?} does not start with `/` and can never match"
        ));
    }
    Ok(PatKind::Prefix(text.as_bytes().into()))
}

pub(super) fn comm_pattern(text: &str) -> Result<(String, PatKind), String> {
    check_length(text)?;
    if text.is_empty() {
        return Err("empty process name".to_owned());
    }
    if has_glob_meta(text) {
        return GlobBuilder::new(text)
            .backslash_escape(true)
            .build()
            .map(|g| (text.to_owned(), PatKind::Glob(g.compile_matcher())))
            .map_err(|e| format!("invalid glob {text:?}: {}", glob_reason(&e)));
    }
    // The kernel cuts names to 15 bytes: match what it records.
    let mut end = text.len().min(COMM_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Ok((
        text.to_owned(),
        PatKind::Exact(text.as_bytes()[..end].into()),
    ))
}

/// A `cmdline:` pattern: a glob over argv joined with spaces, where `*` crosses everything
/// (arguments hold paths); a value without glob characters must equal the whole command line.
pub(super) fn cmdline_pattern(text: &str) -> Result<PatKind, String> {
    if text.contains(['*', '?', '[', '{']) {
        GlobBuilder::new(text)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map(|g| PatKind::Glob(g.compile_matcher()))
            .map_err(|e| format!("invalid glob {text:?}: {}", e.kind()))
    } else {
        Ok(PatKind::Exact(text.as_bytes().into()))
    }
}

/// A `container:` value: a container id or glob (`host` is handled by the caller).
pub(super) fn container_pattern(text: &str) -> Result<PatKind, String> {
    cmdline_pattern(text)
}
