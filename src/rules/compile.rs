//! Raw rules → matchers. Every string pattern of the whole set goes into one table per field (path,
//! comm), so that a string is matched against all of them at once; each rule and each `except`
//! block becomes a `Clause` that refers to patterns by id.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use globset::{Candidate, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use super::lineage::{
    self, cmdline_pattern, container_pattern, ProcCond, ProcField, ProcScratch, ProcTables, Table,
    UserSet,
};
use super::load::{Ctx, Item, Items, Origin, RawConds, RawFile, RawOpenMonitor, Seg};
use super::throttle::{KeyField, Throttle};
use super::{errno, Rule, RuleSet, Severity};
use crate::event::{Event, Syscall};
use crate::process::Process;

/// The kernel keeps 15 bytes of a process name (TASK_COMM_LEN 16, with the NUL).
const COMM_MAX: usize = 15;

#[derive(Clone, Debug)]
pub(crate) enum PatKind {
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    Glob(GlobMatcher),
}

#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    /// As written (it is the alert's `matched`).
    pub(crate) text: String,
    pub(crate) kind: PatKind,
}

/// All patterns for one field, deduplicated.
#[derive(Clone, Debug, Default)]
pub(crate) struct PatternTable {
    pub(crate) pats: Vec<Pattern>,
    ids: HashMap<(u8, String), u32>,
    exact: HashMap<Box<[u8]>, Vec<u32>>,
    prefixes: Vec<(Box<[u8]>, u32)>,
    /// All globs at once; `None` when the set could not be built (a size limit of the
    /// combined automaton): then each glob is matched on its own, slower but never wrong.
    globs: Option<GlobSet>,
    glob_ids: Vec<u32>,
}

impl PatternTable {
    pub(crate) fn add(&mut self, text: &str, kind: PatKind) -> u32 {
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
    pub(crate) fn finish(&mut self) {
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
    pub(crate) fn matches(&self, s: &[u8], hit: &mut Vec<bool>, tmp: &mut Vec<usize>) {
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

    pub(crate) fn is_match(&self, id: u32, s: &[u8]) -> bool {
        match &self.pats[id as usize].kind {
            PatKind::Exact(b) => **b == *s,
            PatKind::Prefix(b) => s.starts_with(b),
            PatKind::Glob(m) => {
                m.is_match_candidate(&Candidate::new(std::ffi::OsStr::from_bytes(s)))
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum IdField {
    Uid,
    Gid,
    Pid,
    Ppid,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ResultSet {
    pub(crate) success: bool,
    pub(crate) failure: bool,
    pub(crate) errnos: Vec<i64>,
}

/// The conditions on an event's numbers (strings are decided per string, see `Compiled`).
#[derive(Clone, Debug)]
pub(crate) enum Pred {
    Id {
        field: IdField,
        set: Vec<u32>,
        neg: bool,
    },
    Syscall {
        mask: u64,
        neg: bool,
    },
    Access {
        mask: u32,
        neg: bool,
    },
    Result {
        set: ResultSet,
        neg: bool,
    },
    User {
        set: UserSet,
        neg: bool,
    },
    /// `euid` (the open's effective uid) or `auid` (the process's login uid); an event that does
    /// not know it matches no value.
    Cred {
        auid: bool,
        set: Vec<u32>,
        neg: bool,
    },
    /// `ancestor_pid`: a pid among the opener's ancestors.
    AncestorPid {
        set: Vec<u32>,
        neg: bool,
    },
}

impl Pred {
    fn holds(&self, ev: &Event) -> bool {
        match self {
            Pred::Id { field, set, neg } => {
                let v = match field {
                    IdField::Uid => ev.uid,
                    IdField::Gid => ev.gid,
                    IdField::Pid => ev.pid,
                    IdField::Ppid => ev.ppid,
                };
                set.contains(&v) != *neg
            }
            Pred::Syscall { mask, neg } => ((mask & (1u64 << ev.syscall.code())) != 0) != *neg,
            Pred::Access { mask, neg } => (access_of(ev) & mask != 0) != *neg,
            Pred::Result { set, neg } => {
                let hit = if ev.ret >= 0 {
                    set.success
                } else {
                    set.failure
                        || ev
                            .ret
                            .checked_neg()
                            .is_some_and(|e| set.errnos.contains(&e))
                };
                hit != *neg
            }
            Pred::User { set, neg } => set.matches(ev) != *neg,
            Pred::AncestorPid { set, neg } => {
                let hit = ev
                    .process
                    .as_ref()
                    .is_some_and(|p| p.ancestors().any(|a| set.contains(&a.pid)));
                hit != *neg
            }
            Pred::Cred { auid, set, neg } => {
                let v = if *auid {
                    ev.process.as_ref().and_then(|p| p.auid)
                } else {
                    ev.euid
                };
                v.is_some_and(|v| set.contains(&v)) != *neg
            }
        }
    }
}

/// Access kinds, as bits; the order is the documentation's.
pub(crate) const ACCESS: &[(&str, u32)] = &[
    ("read", 1 << 0),
    ("write", 1 << 1),
    ("create", 1 << 2),
    ("truncate", 1 << 3),
    ("append", 1 << 4),
    ("exclusive", 1 << 5),
    ("directory", 1 << 6),
    ("tmpfile", 1 << 7),
    ("path", 1 << 8),
    ("nofollow", 1 << 9),
    ("cloexec", 1 << 10),
];

fn access_bit(name: &str) -> u32 {
    ACCESS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, b)| *b)
}

/// What an open asks for, from its flags (the host's `O_*` values, which is what the kernel
/// recorded) and its syscall (`creat` implies `O_CREAT|O_WRONLY|O_TRUNC`).
pub(crate) fn access_of(ev: &Event) -> u32 {
    let mut flags = ev.flags;
    if matches!(ev.syscall, Syscall::Creat | Syscall::Ia32Creat) {
        flags |= (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64;
    }
    let has = |f: libc::c_int| flags & f as u64 == f as u64;
    let mut a = 0;
    let o_path = has(libc::O_PATH);
    let acc = flags & libc::O_ACCMODE as u64;
    if !o_path {
        // O_ACCMODE 3 is Linux's "no read, no write" (ioctl only).
        if acc == libc::O_RDONLY as u64 || acc == libc::O_RDWR as u64 {
            a |= access_bit("read");
        }
        if acc == libc::O_WRONLY as u64 || acc == libc::O_RDWR as u64 {
            a |= access_bit("write");
        }
    }
    // O_TMPFILE includes O_DIRECTORY's bit: a tmpfile open is not a directory open.
    let tmpfile = has(libc::O_TMPFILE);
    for (f, name) in [
        (libc::O_CREAT, "create"),
        (libc::O_TRUNC, "truncate"),
        (libc::O_APPEND, "append"),
        (libc::O_EXCL, "exclusive"),
        (libc::O_PATH, "path"),
        (libc::O_NOFOLLOW, "nofollow"),
        (libc::O_CLOEXEC, "cloexec"),
    ] {
        if has(f) {
            a |= access_bit(name);
        }
    }
    if tmpfile {
        a |= access_bit("tmpfile");
    } else if has(libc::O_DIRECTORY) {
        a |= access_bit("directory");
    }
    a
}

/// One rule's or one `except` block's conditions.
#[derive(Clone, Debug, Default)]
pub(crate) struct Clause {
    /// `None`: no positive path condition. `Some([])` can hold for no path.
    pub(crate) path_any: Option<Vec<u32>>,
    pub(crate) path_none: Vec<u32>,
    pub(crate) comm_any: Option<Vec<u32>>,
    pub(crate) comm_none: Vec<u32>,
    /// Lineage conditions, decided once per process image.
    pub(crate) procs: Vec<ProcCond>,
    pub(crate) preds: Vec<Pred>,
}

fn first_match<'t>(t: &'t PatternTable, ids: &Option<Vec<u32>>, s: &[u8]) -> Option<&'t str> {
    ids.as_ref()?
        .iter()
        .find(|&&id| t.is_match(id, s))
        .map(|&id| t.pats[id as usize].text.as_str())
}

fn strings_ok(any: &Option<Vec<u32>>, none: &[u32], hit: &[bool]) -> bool {
    let any_ok = match any {
        None => true,
        Some(ids) => ids.iter().any(|i| hit[*i as usize]),
    };
    any_ok && !none.iter().any(|i| hit[*i as usize])
}

/// Scratch buffers for matching one string.
#[derive(Default)]
pub(crate) struct Scratch {
    hit: Vec<bool>,
    tmp: Vec<usize>,
}

/// The compiled form of a rule set. Clause `i < rules` is rule `i`'s own; the rest are `except`s.
#[derive(Clone, Debug, Default)]
pub(crate) struct Compiled {
    pub(crate) paths: PatternTable,
    pub(crate) comms: PatternTable,
    pub(crate) clauses: Vec<Clause>,
    pub(crate) excepts: Vec<Vec<usize>>,
    /// Bits of the rules that run (enabled, or chosen by `RuleSet::only`).
    active: Vec<u64>,
    /// Clauses without path (comm) conditions: their bit is always set.
    path_free: Vec<u64>,
    comm_free: Vec<u64>,
    path_clauses: Vec<usize>,
    comm_clauses: Vec<usize>,
    pub(crate) ptables: ProcTables,
    proc_free: Vec<u64>,
    proc_clauses: Vec<usize>,
}

fn set_bit(words: &mut [u64], i: usize) {
    words[i / 64] |= 1 << (i % 64);
}

pub(crate) fn bit(words: &[u64], i: usize) -> bool {
    words[i / 64] & (1 << (i % 64)) != 0
}

impl Compiled {
    /// Words in a clause bitset.
    pub fn words(&self) -> usize {
        self.clauses.len().div_ceil(64)
    }

    /// The active rules' bits (a prefix of a clause bitset).
    pub fn active(&self) -> &[u64] {
        &self.active
    }

    pub fn activate_only(&mut self, rule: usize) {
        self.active.iter_mut().for_each(|w| *w = 0);
        set_bit(&mut self.active, rule);
    }

    /// Bits of the clauses whose path conditions hold for `path`.
    pub fn path_verdict(&self, path: &[u8], out: &mut [u64], s: &mut Scratch) {
        out.copy_from_slice(&self.path_free);
        if self.path_clauses.is_empty() {
            return;
        }
        self.paths.matches(path, &mut s.hit, &mut s.tmp);
        for &c in &self.path_clauses {
            let cl = &self.clauses[c];
            if strings_ok(&cl.path_any, &cl.path_none, &s.hit) {
                set_bit(out, c);
            }
        }
    }

    /// Bits of the clauses whose comm conditions hold for `comm`.
    pub fn comm_verdict(&self, comm: &[u8], out: &mut [u64], s: &mut Scratch) {
        out.copy_from_slice(&self.comm_free);
        if self.comm_clauses.is_empty() {
            return;
        }
        self.comms.matches(comm, &mut s.hit, &mut s.tmp);
        for &c in &self.comm_clauses {
            let cl = &self.clauses[c];
            if strings_ok(&cl.comm_any, &cl.comm_none, &s.hit) {
                set_bit(out, c);
            }
        }
    }

    /// Bits of the clauses whose lineage conditions hold for process `p` (`None`: no lineage).
    pub fn proc_verdict(&self, p: Option<&Process>, out: &mut [u64], s: &mut ProcScratch) {
        out.copy_from_slice(&self.proc_free);
        for &c in &self.proc_clauses {
            let ok = self.clauses[c]
                .procs
                .iter()
                .all(|cond| lineage::holds(cond, p, &self.ptables, &self.comms, s));
            if ok {
                set_bit(out, c);
            }
        }
    }

    /// Whether clause `c`'s numeric conditions hold.
    pub fn preds_hold(&self, c: usize, ev: &Event) -> bool {
        self.clauses[c].preds.iter().all(|p| p.holds(ev))
    }

    pub fn excepts(&self, rule: usize) -> &[usize] {
        &self.excepts[rule]
    }

    /// The pattern reported as `matched`: the rule's first path pattern matching the path, else
    /// its first comm pattern matching the comm.
    pub fn matched(&self, rule: usize, ev: &Event) -> Option<&str> {
        let cl = &self.clauses[rule];
        first_match(&self.paths, &cl.path_any, ev.path.as_bytes())
            .or_else(|| first_match(&self.comms, &cl.comm_any, ev.comm.as_bytes()))
            .or_else(|| {
                let exe = ev.process.as_ref()?.exe.as_ref()?;
                let ids = cl
                    .procs
                    .iter()
                    .find(|c| c.field == ProcField::Exe && !c.neg)?;
                first_match(&self.ptables.exe, &Some(ids.ids.clone()), exe.as_bytes())
            })
    }

    fn finish(&mut self, enabled: &[bool]) {
        self.paths.finish();
        self.comms.finish();
        self.ptables.finish();
        let words = self.words();
        self.active = vec![0; words];
        for (i, on) in enabled.iter().enumerate() {
            if *on {
                set_bit(&mut self.active, i);
            }
        }
        self.path_free = vec![0; words];
        self.comm_free = vec![0; words];
        self.proc_free = vec![0; words];
        self.path_clauses.clear();
        self.comm_clauses.clear();
        self.proc_clauses.clear();
        for (i, c) in self.clauses.iter().enumerate() {
            if c.procs.is_empty() {
                set_bit(&mut self.proc_free, i);
            } else {
                self.proc_clauses.push(i);
            }
            if c.path_any.is_none() && c.path_none.is_empty() {
                set_bit(&mut self.path_free, i);
            } else {
                self.path_clauses.push(i);
            }
            if c.comm_any.is_none() && c.comm_none.is_empty() {
                set_bit(&mut self.comm_free, i);
            } else {
                self.comm_clauses.push(i);
            }
        }
    }
}

/// A value after list expansion, with where it was written.
#[derive(Clone)]
struct Val {
    item: Item,
    at: Origin,
}

/// Defined lists: name → (where, items).
type ListDefs<'a> = HashMap<&'a str, (Origin, &'a Items)>;

/// How deep lists may refer to lists (a chain of 20,000 overflowed the stack).
const MAX_LIST_DEPTH: usize = 64;

/// How many values list references may produce in a whole rule set, counting a list's values
/// each time it is used (lists referring nine times to the previous one grew 9ⁿ, to memory
/// exhaustion, from a 600-byte file). Values written in rules themselves are not counted.
const MAX_LIST_VALUES: usize = 100_000;

/// List expansion state of one rule set.
#[derive(Default)]
struct Expansion {
    /// Each list's values, expanded once.
    memo: HashMap<String, Rc<[Val]>>,
    /// Values produced by list references so far (see `MAX_LIST_VALUES`).
    values: usize,
    /// `MAX_LIST_VALUES` was exceeded (reported once).
    over: bool,
    /// The defined lists, for "unknown list" errors.
    known_lists: Option<String>,
}

/// How many list names an "unknown list" error names.
const MAX_LISTS_NAMED: usize = 20;

struct Builder<'a> {
    lists: ListDefs<'a>,
    out: Compiled,
    /// Rule clauses, then except clauses, appended after all rules are known.
    pending_excepts: Vec<(usize, Clause)>,
    expansion: Expansion,
}

fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// The longest pattern accepted, in bytes: no path is longer (PATH_MAX), and globset panics on a
/// glob whose regex outgrows its size limit (one of 240 KB did).
const PATTERN_MAX: usize = 4096;

fn check_length(text: &str) -> Result<(), String> {
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
fn path_pattern(text: &str) -> Result<PatKind, String> {
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

fn prefix_pattern(text: &str) -> Result<PatKind, String> {
    check_length(text)?;
    if !text.starts_with('/') {
        return Err(format!(
            "path prefix {text:?} does not start with `/` and can never match"
        ));
    }
    Ok(PatKind::Prefix(text.as_bytes().into()))
}

fn comm_pattern(text: &str) -> Result<(String, PatKind), String> {
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

/// The text of a value that must be a string (`what`: "a process name"…); an error otherwise.
fn string_of<'v>(ctx: &mut Ctx, v: &'v Val, what: &str) -> Option<&'v str> {
    match &v.item {
        Item::Str(s) => Some(s),
        Item::Int(i) => {
            ctx.error(&v.at, format!("expected {what} (a string), found {i}"));
            None
        }
    }
}

fn names(all: impl IntoIterator<Item = &'static str>) -> String {
    all.into_iter().collect::<Vec<_>>().join(", ")
}

impl<'a> Builder<'a> {
    /// Expands `$list` references; errors for unknown lists, cycles, lists nested deeper than
    /// `MAX_LIST_DEPTH` and more than `MAX_LIST_VALUES` values from lists. Each list is expanded
    /// once (later uses copy the result), so its problems are reported once.
    fn expand(
        &mut self,
        ctx: &mut Ctx,
        items: &Items,
        at: &Origin,
        stack: &mut Vec<String>,
    ) -> Vec<Val> {
        let mut out = Vec::new();
        for (i, item) in items.items.iter().enumerate() {
            let item_at = if items.seq { at.index(i) } else { at.clone() };
            let name = match item {
                Item::Str(s) if s.starts_with('$') => &s[1..],
                _ => {
                    out.push(Val {
                        item: item.clone(),
                        at: item_at,
                    });
                    continue;
                }
            };
            let Some((list_at, list)) = self.lists.get(name) else {
                let hint = self.expansion.known_lists.get_or_insert_with(|| {
                    let mut known: Vec<&str> = self.lists.keys().copied().collect();
                    known.sort_unstable();
                    match known.len() {
                        0 => "no lists are defined".to_owned(),
                        // Thousands of names in each of thousands of errors would be too many.
                        n if n > MAX_LISTS_NAMED => format!(
                            "defined lists: {}, … ({n} in all)",
                            known[..MAX_LISTS_NAMED].join(", ")
                        ),
                        _ => format!("defined lists: {}", known.join(", ")),
                    }
                });
                ctx.error(&item_at, format!("unknown list `{name}` ({hint})"));
                continue;
            };
            let (list_at, list) = (list_at.clone(), *list);
            if stack.iter().any(|n| n == name) {
                ctx.error(
                    &item_at,
                    format!(
                        "list `{name}` refers to itself ({} → {name})",
                        stack.join(" → ")
                    ),
                );
                continue;
            }
            let vals = match self.expansion.memo.get(name) {
                Some(v) => v.clone(),
                None if stack.len() >= MAX_LIST_DEPTH => {
                    ctx.error(
                        &item_at,
                        format!(
                            "list `{name}` is nested more than {MAX_LIST_DEPTH} levels deep (`{}` → … → `{}` → `{name}`); lists may refer to lists at most {MAX_LIST_DEPTH} levels deep",
                            stack[0],
                            stack[stack.len() - 1],
                        ),
                    );
                    continue;
                }
                None => {
                    stack.push(name.to_owned());
                    let v: Rc<[Val]> = self.expand(ctx, list, &list_at, stack).into();
                    stack.pop();
                    self.expansion.memo.insert(name.to_owned(), v.clone());
                    v
                }
            };
            if self.expansion.over {
                continue;
            }
            self.expansion.values += vals.len();
            if self.expansion.values > MAX_LIST_VALUES {
                self.expansion.over = true;
                ctx.error(
                    &item_at,
                    format!(
                        "list `{name}` makes the lists expand to more than {MAX_LIST_VALUES} values in all (each use of a list counts its values): use fewer or shorter lists"
                    ),
                );
                continue;
            }
            out.extend(vals.iter().cloned());
        }
        out
    }

    fn ints(&self, ctx: &mut Ctx, vals: &[Val], what: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for v in vals {
            match &v.item {
                Item::Int(i) => match u32::try_from(*i) {
                    Ok(n) => out.push(n),
                    Err(_) => ctx.error(
                        &v.at,
                        format!("{what} {i} is out of range (0..=4294967295)"),
                    ),
                },
                Item::Str(s) => ctx.error(
                    &v.at,
                    format!("expected a {what} (an integer), found {s:?}"),
                ),
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Compiles one condition set; `what` is "rule" or "except block" (for messages).
    fn clause(
        &mut self,
        ctx: &mut Ctx,
        conds: &[(&'static str, &Items)],
        at: &Origin,
        what: &str,
    ) -> Clause {
        let mut c = Clause::default();
        let mut any_condition = false;
        for (key, items) in conds {
            if !items.present {
                continue;
            }
            any_condition = true;
            let key_at = at.key(key);
            let neg = key.starts_with("not_");
            let field = key.trim_start_matches("not_");
            if !neg && items.items.is_empty() {
                ctx.error(
                    &key_at,
                    format!("`{key}: []` can never hold: give values or remove the key"),
                );
                continue;
            }
            let vals = self.expand(ctx, items, &key_at, &mut Vec::new());
            match field {
                "path" | "path_prefix" => {
                    let mut ids = Vec::new();
                    for v in &vals {
                        let Item::Str(s) = &v.item else {
                            ctx.error(
                                &v.at,
                                format!("expected a path (a string), found {}", v.item),
                            );
                            continue;
                        };
                        let kind = if field == "path" {
                            path_pattern(s)
                        } else {
                            prefix_pattern(s)
                        };
                        match kind {
                            Ok(k) => ids.push(self.out.paths.add(s, k)),
                            Err(e) => ctx.error(&v.at, e),
                        }
                    }
                    if neg {
                        c.path_none.extend(ids);
                    } else {
                        c.path_any.get_or_insert_with(Vec::new).extend(ids);
                    }
                }
                "comm" => {
                    let mut ids = Vec::new();
                    for v in &vals {
                        let Some(name) = string_of(ctx, v, "a process name") else {
                            continue;
                        };
                        match comm_pattern(name) {
                            Ok((text, k)) => ids.push(self.out.comms.add(&text, k)),
                            Err(e) => ctx.error(&v.at, e),
                        }
                    }
                    if neg {
                        c.comm_none.extend(ids);
                    } else {
                        c.comm_any.get_or_insert_with(Vec::new).extend(ids);
                    }
                }
                "uid" | "gid" | "pid" | "ppid" => {
                    let f = match field {
                        "uid" => IdField::Uid,
                        "gid" => IdField::Gid,
                        "pid" => IdField::Pid,
                        _ => IdField::Ppid,
                    };
                    let set = self.ints(ctx, &vals, field);
                    c.preds.push(Pred::Id { field: f, set, neg });
                }
                "syscall" => {
                    let mut mask = 0u64;
                    for v in &vals {
                        let Some(name) = string_of(ctx, v, "a syscall name") else {
                            continue;
                        };
                        match Syscall::parse(name) {
                            Some(s) => mask |= 1 << s.code(),
                            None => ctx.error(
                                &v.at,
                                format!(
                                    "unknown syscall {name:?}, expected one of {}",
                                    names(Syscall::ALL.iter().map(|s| s.as_str()))
                                ),
                            ),
                        }
                    }
                    c.preds.push(Pred::Syscall { mask, neg });
                }
                "access" => {
                    let mut mask = 0;
                    for v in &vals {
                        let Some(name) = string_of(ctx, v, "an access name") else {
                            continue;
                        };
                        match ACCESS.iter().find(|(n, _)| *n == name) {
                            Some((_, b)) => mask |= b,
                            None => ctx.error(
                                &v.at,
                                format!(
                                    "unknown access {name:?}, expected one of {}",
                                    names(ACCESS.iter().map(|(n, _)| *n))
                                ),
                            ),
                        }
                    }
                    c.preds.push(Pred::Access { mask, neg });
                }
                "result" => {
                    let mut set = ResultSet::default();
                    for v in &vals {
                        let Some(name) = string_of(ctx, v, "a result") else {
                            continue;
                        };
                        match name {
                            "success" => set.success = true,
                            "failure" => set.failure = true,
                            n => match errno::by_name(n) {
                                Some(e) => set.errnos.push(i64::from(e)),
                                None => ctx.error(
                                    &v.at,
                                    format!(
                                        "unknown result {name:?}, expected `success`, `failure` or an errno name such as EACCES or ENOENT{}",
                                        errno::by_name(&n.to_ascii_uppercase())
                                            .map(|_| format!(" (did you mean {}?)", n.to_ascii_uppercase()))
                                            .unwrap_or_default()
                                    ),
                                ),
                            },
                        }
                    }
                    c.preds.push(Pred::Result { set, neg });
                }
                "user" => {
                    let mut pats = Vec::new();
                    for v in &vals {
                        let Some(name) = string_of(ctx, v, "a user name") else {
                            continue;
                        };
                        match comm_pattern(name) {
                            // User names are not cut like comms: match the whole name.
                            Ok((text, PatKind::Exact(_))) => {
                                pats.push(PatKind::Exact(text.as_bytes().into()))
                            }
                            Ok((_, k)) => pats.push(k),
                            Err(e) => ctx.error(&v.at, e),
                        }
                    }
                    c.preds.push(Pred::User {
                        set: UserSet { pats },
                        neg,
                    });
                }
                "ancestor_pid" => {
                    let set = self.ints(ctx, &vals, field);
                    c.preds.push(Pred::AncestorPid { set, neg });
                }
                "euid" | "auid" => {
                    let set = self.ints(ctx, &vals, field);
                    c.preds.push(Pred::Cred {
                        auid: field == "auid",
                        set,
                        neg,
                    });
                }
                f if ProcField::parse(f).is_some() => {
                    let pf = ProcField::parse(f).expect("checked by the guard");
                    let mut cond = ProcCond {
                        field: pf,
                        ids: Vec::new(),
                        host: false,
                        neg,
                    };
                    for v in &vals {
                        let what = match pf.table() {
                            Table::Exe => "a path",
                            Table::Comm => "a process name",
                            Table::Cmdline => "a command line",
                            Table::Container => "a container id",
                        };
                        let Some(text) = string_of(ctx, v, what) else {
                            continue;
                        };
                        if let Err(e) = check_length(text) {
                            ctx.error(&v.at, e);
                            continue;
                        }
                        let added = match pf.table() {
                            Table::Exe => {
                                path_pattern(text).map(|k| self.out.ptables.exe.add(text, k))
                            }
                            Table::Comm => {
                                comm_pattern(text).map(|(t, k)| self.out.comms.add(&t, k))
                            }
                            Table::Cmdline => {
                                cmdline_pattern(text).map(|k| self.out.ptables.cmdline.add(text, k))
                            }
                            Table::Container if text == "host" => {
                                cond.host = true;
                                continue;
                            }
                            Table::Container => container_pattern(text)
                                .map(|k| self.out.ptables.container.add(text, k)),
                        };
                        match added {
                            Ok(id) => cond.ids.push(id),
                            Err(e) => ctx.error(&v.at, e),
                        }
                    }
                    c.procs.push(cond);
                }
                other => ctx.error(&key_at, format!("unknown condition `{other}`")),
            }
        }
        if !any_condition {
            ctx.error(
                at,
                format!(
                    "this {what} has no conditions (it would match every open); add at least one"
                ),
            );
        }
        // Cheap, selective predicates first.
        c.preds.sort_by_key(|p| match p {
            Pred::Id { .. } | Pred::Cred { .. } => 0,
            Pred::Syscall { .. } | Pred::Result { .. } => 1,
            Pred::Access { .. } | Pred::User { .. } | Pred::AncestorPid { .. } => 2,
        });
        c
    }

    fn push_rule(&mut self, rule: Clause, excepts: Vec<Clause>) {
        let idx = self.out.clauses.len();
        self.out.clauses.push(rule);
        for e in excepts {
            self.pending_excepts.push((idx, e));
        }
    }

    fn finish(mut self, enabled: &[bool]) -> Compiled {
        let rules = self.out.clauses.len();
        self.out.excepts = vec![Vec::new(); rules];
        for (rule, clause) in std::mem::take(&mut self.pending_excepts) {
            self.out.excepts[rule].push(self.out.clauses.len());
            self.out.clauses.push(clause);
        }
        self.out.finish(enabled);
        self.out
    }
}

/// The conditions as written, for `rules check`.
fn summarize(conds: &[(&'static str, &Items)]) -> String {
    conds
        .iter()
        .filter(|(_, i)| i.present)
        .map(|(k, i)| {
            let vals: Vec<String> = i.items.iter().map(|v| v.to_string()).collect();
            format!("{k}: [{}]", vals.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn open_monitor_conds(m: &RawOpenMonitor) -> Vec<(&'static str, &Items)> {
    vec![
        ("sensitive_paths", &m.sensitive_paths),
        ("allow_comm", &m.allow_comm),
        ("deny_comm", &m.deny_comm),
        ("ignore_path_prefixes", &m.ignore_path_prefixes),
    ]
}

/// Compiles parsed files (in order) into a rule set, reporting every problem to `ctx`.
pub(crate) fn build(ctx: &mut Ctx, files: &[(usize, RawFile)]) -> RuleSet {
    // Lists first: any file may use a list that another defines.
    let mut lists: ListDefs = HashMap::new();
    for (src, f) in files {
        for (name, items) in &f.lists.0 {
            let at = Origin {
                src: *src,
                path: vec![Seg::Key("lists".into()), Seg::Key(name.clone())],
            };
            if let Some((first, _)) = lists.get(name.as_str()) {
                let first = ctx.describe(first);
                ctx.error(&at, format!("list `{name}` is already defined at {first}"));
                continue;
            }
            lists.insert(name, (at, items));
        }
    }
    let mut b = Builder {
        lists,
        out: Compiled::default(),
        pending_excepts: Vec::new(),
        expansion: Expansion::default(),
    };
    let mut rules: Vec<Rule> = Vec::new();
    let mut enabled = Vec::new();
    let mut seen: HashMap<String, Origin> = HashMap::new();
    let mut check_dup = |ctx: &mut Ctx, name: &str, at: Origin| {
        if let Some(first) = seen.get(name) {
            let first = ctx.describe(first);
            ctx.error(
                &at,
                format!("duplicate rule name `{name}` (first defined at {first})"),
            );
        } else {
            seen.insert(name.to_owned(), at);
        }
    };

    for (src, f) in files {
        let root = Origin {
            src: *src,
            path: Vec::new(),
        };
        if let Some(m) = &f.open_monitor {
            let at = root.key("open_monitor");
            check_dup(ctx, "open_sensitive", at.clone());
            let clause = open_monitor_clause(&mut b, ctx, m, &at);
            b.push_rule(clause, Vec::new());
            enabled.push(true);
            rules.push(Rule {
                name: "open_sensitive".to_owned(),
                description: "An open (or attempt) of a path in open_monitor.sensitive_paths"
                    .to_owned(),
                severity: Severity::High,
                enabled: true,
                origin: ctx.describe(&at),
                summary: summarize(&open_monitor_conds(m)),
                excepts: 0,
                tags: Vec::new(),
                throttle: None,
            });
        }
        for (i, r) in f.rules.iter().enumerate() {
            let at = root.key("rules").index(i);
            check_dup(ctx, &r.name.0, at.key("name"));
            let conds = r.conditions();
            let clause = b.clause(ctx, &conds, &at, "rule");
            let excepts: Vec<Clause> = r
                .except
                .iter()
                .enumerate()
                .map(|(j, e)| {
                    b.clause(
                        ctx,
                        &e.conditions(),
                        &at.key("except").index(j),
                        "except block",
                    )
                })
                .collect();
            b.push_rule(clause, excepts);
            enabled.push(r.enabled);
            let mut summary = summarize(&conds);
            for e in &r.except {
                summary.push_str(&format!("; except {{{}}}", summarize(&e.conditions())));
            }
            rules.push(Rule {
                name: r.name.0.clone(),
                description: r.description.clone(),
                severity: r.severity,
                enabled: r.enabled,
                origin: ctx.describe(&at),
                summary,
                excepts: r.except.len(),
                tags: rule_tags(&mut b, ctx, &r.tags, &at.key("tags")),
                throttle: r
                    .throttle
                    .as_ref()
                    .and_then(|t| rule_throttle(&mut b, ctx, t, &at.key("throttle"))),
            });
        }
    }
    if rules.is_empty() && ctx.diags.is_empty() {
        let at = Origin {
            src: files.first().map_or(0, |(s, _)| *s),
            path: Vec::new(),
        };
        ctx.error(
            &at,
            "no rules defined (expected `rules:` or `open_monitor:`)",
        );
    }
    RuleSet {
        rules,
        compiled: b.finish(&enabled),
    }
}

/// Tags a rule may carry, and how long each may be.
const MAX_TAGS: usize = 32;
const MAX_TAG_LEN: usize = 64;

/// `tags:`: strings of letters, digits and `_ - . : / @ +` (no spaces: they are labels, and go
/// into alerts and SIEM fields), each at most 64 bytes, at most 32, no duplicates; `$lists` work.
fn rule_tags(b: &mut Builder, ctx: &mut Ctx, items: &Items, at: &Origin) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let vals = b.expand(ctx, items, at, &mut Vec::new());
    if vals.len() > MAX_TAGS {
        ctx.error(
            at,
            format!("{} tags: at most {MAX_TAGS} are allowed", vals.len()),
        );
        return tags;
    }
    for v in &vals {
        let Some(t) = string_of(ctx, v, "a tag") else {
            continue;
        };
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "_-.:/@+".contains(c);
        if t.is_empty() || t.len() > MAX_TAG_LEN || !t.chars().all(ok_char) {
            ctx.error(
                &v.at,
                format!(
                    "invalid tag {t:?}: expected 1 to {MAX_TAG_LEN} letters, digits, `_`, `-`, `.`, `:`, `/`, `@` or `+`"
                ),
            );
        } else if tags.iter().any(|x| x == t) {
            ctx.error(&v.at, format!("tag `{t}` is given twice"));
        } else {
            tags.push(t.to_owned());
        }
    }
    tags
}

/// `throttle:` (see `throttle.rs`): known key fields, once each; a window of 1 ms to 30 days;
/// `max` from 1 to 1,000,000.
fn rule_throttle(
    b: &mut Builder,
    ctx: &mut Ctx,
    t: &super::load::RawThrottle,
    at: &Origin,
) -> Option<Throttle> {
    let mut ok = true;
    let mut key = Vec::new();
    let key_at = at.key("key");
    for v in b.expand(ctx, &t.key, &key_at, &mut Vec::new()) {
        let Some(name) = string_of(ctx, &v, "a key field") else {
            ok = false;
            continue;
        };
        match KeyField::parse(name) {
            Some(k) if key.contains(&k) => {
                ctx.error(&v.at, format!("key field `{name}` is given twice"));
                ok = false;
            }
            Some(k) => key.push(k),
            None => {
                ctx.error(
                    &v.at,
                    format!(
                        "unknown key field `{name}`: expected one of {}",
                        names(KeyField::ALL.iter().map(|(n, _)| *n))
                    ),
                );
                ok = false;
            }
        }
    }
    const MAX_WINDOW_NS: i64 = 30 * 86_400 * 1_000_000_000;
    let window_at = at.key("window");
    let window_ns = match &t.window {
        Item::Str(w) => match crate::timespec::parse_duration(w) {
            Ok(d) => {
                let ns = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
                if (1_000_000..=MAX_WINDOW_NS).contains(&ns) {
                    ns
                } else {
                    ctx.error(
                        &window_at,
                        format!("window {w:?}: must be between 1ms and 30d"),
                    );
                    ok = false;
                    0
                }
            }
            Err(e) => {
                ctx.error(&window_at, e);
                ok = false;
                0
            }
        },
        Item::Int(i) => {
            ctx.error(
                &window_at,
                format!("expected a duration with a unit (30s, 15m, 1h), found {i}"),
            );
            ok = false;
            0
        }
    };
    let max_at = at.key("max");
    let max = match &t.max {
        Item::Int(n) if (1..=super::throttle::MAX_PER_WINDOW as i64).contains(n) => *n as u64,
        other => {
            ctx.error(
                &max_at,
                format!(
                    "max {other}: expected an integer from 1 to {}",
                    super::throttle::MAX_PER_WINDOW
                ),
            );
            ok = false;
            0
        }
    };
    ok.then_some(Throttle {
        key,
        window_ns,
        max,
    })
}

/// The proof of concept's one rule, `open_sensitive`.
fn open_monitor_clause(b: &mut Builder, ctx: &mut Ctx, m: &RawOpenMonitor, at: &Origin) -> Clause {
    let mut c = Clause {
        path_any: Some(Vec::new()),
        ..Clause::default()
    };
    let key_at = at.key("sensitive_paths");
    for v in b.expand(ctx, &m.sensitive_paths, &key_at, &mut Vec::new()) {
        let Item::Str(s) = &v.item else {
            ctx.error(
                &v.at,
                format!("expected a path (a string), found {}", v.item),
            );
            continue;
        };
        match path_pattern(s) {
            Ok(k) => {
                let id = b.out.paths.add(s, k);
                c.path_any.get_or_insert_with(Vec::new).push(id);
            }
            Err(e) => ctx.error(&v.at, e),
        }
    }
    let key_at = at.key("ignore_path_prefixes");
    for v in b.expand(ctx, &m.ignore_path_prefixes, &key_at, &mut Vec::new()) {
        let Some(prefix) = string_of(ctx, &v, "a path prefix") else {
            continue;
        };
        match prefix_pattern(prefix) {
            Ok(k) => c.path_none.push(b.out.paths.add(prefix, k)),
            Err(e) => ctx.error(&v.at, e),
        }
    }
    for (key, items, neg) in [
        ("allow_comm", &m.allow_comm, false),
        ("deny_comm", &m.deny_comm, true),
    ] {
        let vals = b.expand(ctx, items, &at.key(key), &mut Vec::new());
        let mut ids = Vec::new();
        for v in &vals {
            let Some(name) = string_of(ctx, v, "a process name") else {
                continue;
            };
            match comm_pattern(name) {
                Ok((text, k)) => ids.push(b.out.comms.add(&text, k)),
                Err(e) => ctx.error(&v.at, e),
            }
        }
        if neg {
            c.comm_none = ids;
        } else if !ids.is_empty() {
            // An empty allow_comm means "everyone".
            c.comm_any = Some(ids);
        }
    }
    c
}

/// Rules from command-line filters: one per alternative (an event matches if any does).
pub(crate) fn build_single(ctx: &mut Ctx, name: &str, alternatives: &[RawConds]) -> RuleSet {
    let mut b = Builder {
        lists: HashMap::new(),
        out: Compiled::default(),
        pending_excepts: Vec::new(),
        expansion: Expansion::default(),
    };
    let at = Origin {
        src: 0,
        path: Vec::new(),
    };
    let mut rules = Vec::new();
    for conds in alternatives {
        let cl = b.clause(ctx, &conds.conditions(), &at, "filter");
        b.push_rule(cl, Vec::new());
        rules.push(Rule {
            name: name.to_owned(),
            description: "command-line filters".to_owned(),
            severity: Severity::Info,
            enabled: true,
            origin: "command line".to_owned(),
            summary: summarize(&conds.conditions()),
            excepts: 0,
            tags: Vec::new(),
            throttle: None,
        });
    }
    let enabled = vec![true; rules.len()];
    RuleSet {
        rules,
        compiled: b.finish(&enabled),
    }
}
