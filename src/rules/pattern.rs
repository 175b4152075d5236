//! Pattern values (exact, prefix, glob, regex) and their tables. Every string pattern of a rule set
//! goes into one table per field (path, comm, exe…), deduplicated, so that a string is matched
//! against all of them at once; clauses refer to patterns by id.
//!
//! Two forms work for every string key: `re:REGEX` (a regular expression, `regex` crate syntax,
//! matched anywhere in the value's bytes in linear time) and `i:PATTERN` (the key's own pattern,
//! ignoring ASCII case; compiled to a case-insensitive glob so that `rules sql` translates it as
//! it translates every glob).

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
    /// `re:`: matches when the regex matches anywhere in the value.
    Regex(regex::bytes::Regex),
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
    regex_ids: Vec<u32>,
}

impl PatternTable {
    pub(super) fn add(&mut self, text: &str, kind: PatKind) -> u32 {
        let tag = match kind {
            PatKind::Exact(_) => 0,
            PatKind::Prefix(_) => 1,
            PatKind::Glob(_) => 2,
            PatKind::Regex(_) => 3,
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
            PatKind::Regex(_) => self.regex_ids.push(id),
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
        for &id in &self.regex_ids {
            if let PatKind::Regex(r) = &self.pats[id as usize].kind {
                hit[id as usize] = r.is_match(s);
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
            PatKind::Regex(r) => r.is_match(s),
        }
    }
}

/// How a value is written: as the key's own pattern, `re:` a regex, or `i:` the key's pattern
/// ignoring ASCII case.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Plain,
    Regex,
    Nocase,
}

/// Whether `text` is an `i:` value: its glob ignores case, so its literal start is no key a
/// summary could be asked about.
pub(super) fn ignores_case(text: &str) -> bool {
    form(text).0 == Form::Nocase
}

fn form(text: &str) -> (Form, &str) {
    if let Some(r) = text.strip_prefix("re:") {
        (Form::Regex, r)
    } else if let Some(p) = text.strip_prefix("i:") {
        (Form::Nocase, p)
    } else {
        (Form::Plain, text)
    }
}

/// The longest compiled regex accepted (the `regex` crate's own default is 10 MiB per regex;
/// a rule set has many).
const REGEX_SIZE_MAX: usize = 1 << 20;

/// A `re:` value: the regex as `regex::bytes` reads it (Unicode on: `.` is one UTF-8 character).
fn regex_pattern(re: &str) -> Result<PatKind, String> {
    regex::bytes::RegexBuilder::new(re)
        .size_limit(REGEX_SIZE_MAX)
        .build()
        .map(PatKind::Regex)
        .map_err(|e| {
            // The crate's message spans lines (the regex, a caret, the error): keep the error.
            let msg = e.to_string();
            let why = msg
                .lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(msg.lines().last().unwrap_or_default());
            format!("invalid regular expression {re:?}: {why}")
        })
}

/// A glob matching exactly `lit` (then anything, when `then_anything`), ignoring ASCII case.
fn nocase_literal(lit: &[u8], then_anything: bool) -> Result<PatKind, String> {
    let lit = std::str::from_utf8(lit).map_err(|e| e.to_string())?;
    // Brackets around glob characters (globset::escape), and a backslash escaped by one.
    let mut g = globset::escape(lit).replace('\\', "\\\\");
    if then_anything {
        g.push('*');
    }
    nocase_glob(&g, false)
}

fn nocase_glob(g: &str, literal_separator: bool) -> Result<PatKind, String> {
    GlobBuilder::new(g)
        .literal_separator(literal_separator)
        .backslash_escape(true)
        .case_insensitive(true)
        .build()
        .map(|g| PatKind::Glob(g.compile_matcher()))
        .map_err(|e| format!("invalid glob {g:?}: {}", glob_reason(&e)))
}

/// `text` in any form: `re:` a regex, `i:` what `plain` makes of the rest ignoring ASCII case
/// (`literal_separator`: whether its globs keep `*` within a component), else `plain`'s.
fn with_forms(
    text: &str,
    literal_separator: bool,
    plain: impl Fn(&str) -> Result<PatKind, String>,
) -> Result<PatKind, String> {
    check_length(text)?;
    match form(text) {
        (Form::Plain, p) => plain(p),
        (Form::Regex, re) => regex_pattern(re),
        (Form::Nocase, p) => match plain(p)? {
            PatKind::Exact(b) => nocase_literal(&b, false),
            PatKind::Prefix(b) => nocase_literal(&b, true),
            PatKind::Glob(m) => nocase_glob(m.glob().glob(), literal_separator),
            PatKind::Regex(_) => Err(format!(
                "{text:?}: `i:` takes a pattern, not a regex (write `re:(?i)…`)"
            )),
        },
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

/// A path value: exact path, `dir/` prefix, or glob (`*` within a component, `**` across); or
/// `re:`/`i:` (see the module documentation).
pub(super) fn path_pattern(text: &str) -> Result<PatKind, String> {
    with_forms(text, true, |t| plain_path_pattern(t, true))
}

/// A `raw_path` value: as a `path` value, but a path as passed may be relative (`../x`), so a
/// value need not start with `/` (`*` stays within a component either way; a leading `**/` also
/// matches nothing, so `**/../**` holds for `../x`, `a/../x` and `/a/../x`).
pub(super) fn raw_path_pattern(text: &str) -> Result<PatKind, String> {
    if text.is_empty() {
        return Err("empty path".into());
    }
    with_forms(text, true, |t| plain_path_pattern(t, false))
}

/// `absolute`: refuse a value that cannot start with `/` (resolved paths always do).
fn plain_path_pattern(text: &str, absolute: bool) -> Result<PatKind, String> {
    // Pseudo files are recorded by the kernel's names for them (pipe:[N], socket:[N],
    // anon_inode:[…]), which are not paths.
    let pseudo = ["pipe:", "socket:", "anon_inode:"]
        .iter()
        .any(|p| text.starts_with(p));
    if absolute && !pseudo && !text.starts_with(['/', '*', '?', '[', '{']) {
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

/// A `path_prefix` value: a byte prefix, or `i:` one ignoring ASCII case.
pub(super) fn prefix_pattern(text: &str) -> Result<PatKind, String> {
    if text.starts_with("re:") {
        return Err(format!(
            "path prefix {text:?}: a regex is a `path` value, not a prefix (write `path: {text:?}`)"
        ));
    }
    with_forms(text, false, plain_prefix_pattern)
}

fn plain_prefix_pattern(text: &str) -> Result<PatKind, String> {
    if !text.starts_with('/') {
        return Err(format!(
            "path prefix {text:?} does not start with `/` and can never match"
        ));
    }
    Ok(PatKind::Prefix(text.as_bytes().into()))
}

/// A process name: exact (cut to 15 bytes, as the kernel does), a glob, or `re:`/`i:`.
pub(super) fn comm_pattern(text: &str) -> Result<PatKind, String> {
    with_forms(text, false, |t| {
        name_pattern(t, "process name", Some(COMM_MAX))
    })
}

/// A user name: exact (whole), a glob, or `re:`/`i:`.
pub(super) fn user_pattern(text: &str) -> Result<PatKind, String> {
    with_forms(text, false, |t| name_pattern(t, "user name", None))
}

/// An exact name (cut to `cut` bytes) or a glob, where `*` crosses everything.
fn name_pattern(text: &str, what: &str, cut: Option<usize>) -> Result<PatKind, String> {
    if text.is_empty() {
        return Err(format!("empty {what}"));
    }
    if has_glob_meta(text) {
        return GlobBuilder::new(text)
            .backslash_escape(true)
            .build()
            .map(|g| PatKind::Glob(g.compile_matcher()))
            .map_err(|e| format!("invalid glob {text:?}: {}", glob_reason(&e)));
    }
    let mut end = text.len().min(cut.unwrap_or(usize::MAX));
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Ok(PatKind::Exact(text.as_bytes()[..end].into()))
}

/// A `cmdline:` pattern: a glob over argv joined with spaces, where `*` crosses everything
/// (arguments hold paths); a value without glob characters must equal the whole command line.
pub(super) fn cmdline_pattern(text: &str) -> Result<PatKind, String> {
    with_forms(text, false, plain_cmdline_pattern)
}

fn plain_cmdline_pattern(text: &str) -> Result<PatKind, String> {
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

/// A `tty:` value: a terminal's name (`pts/0`, `tty1`) or a glob where `*` also crosses `/`
/// (`pts/*`); `none` is handled by the caller.
pub(super) fn tty_pattern(text: &str) -> Result<PatKind, String> {
    cmdline_pattern(text)
}

/// A `container:` value: a container id or glob (`host` is handled by the caller).
pub(super) fn container_pattern(text: &str) -> Result<PatKind, String> {
    cmdline_pattern(text)
}
