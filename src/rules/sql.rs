//! A loaded rule set as one SQL query over the Parquet export (`rules sql`), for DuckDB and Spark.
//!
//! The query is compiled from the same validated, compiled form `replay` evaluates (the pattern
//! tables, clauses and predicates of `compile`), never from the YAML again, and returns exactly
//! the alerts `replay` prints: one row per (event, matching rule), with the rule's name and
//! severity and the pattern `replay` reports as `matched`. It reads a relation named `events`
//! with the columns of the Parquet schema (`crate::columns`) plus its `host` partition column,
//! which the user defines over the files wherever they are. It scans `events` once, however many
//! rules there are: each row gets the list of the rules that hold for it (with severity and
//! `matched`), unnested into one row per alert; rows come out in `replay`'s order per host
//! (`ts`, then position in the segment, then rule order).
//!
//! Faithfulness, where the engines differ from the Rust matchers:
//! - Strings are bytes. Parquet holds lossy text plus `<column>_b64` for bytes that are not
//!   UTF-8. Exact values, prefixes, and globs whose every piece is whole characters (literals, `*`,
//!   `**`, ASCII classes) are matched on the text: for a pattern without U+FFFD this decides
//!   exactly what matching the bytes decides (a valid character in the pattern can only meet valid
//!   characters; the replacement character stands for bytes that only `*` can absorb). Globs that
//!   count bytes (`?`, negated classes: globset matches one *byte* where SQL engines match one
//!   *character*) and patterns with control characters or U+FFFD are matched on the exact bytes,
//!   as uppercase hex (`hex(bytes)`), with the glob's byte automaton rewritten over hex digit
//!   pairs.
//! - Globs are translated from globset's own regex (`Glob::regex`, parsed by `regex-syntax` with
//!   globset's settings), not re-implemented: `*` within a component, `**` across, `?`, `[…]`,
//!   `{a,b}` mean in SQL what they mean to `replay`. Regexes use only syntax RE2 (DuckDB) and
//!   Java (Spark) read alike: `\x{H}` escapes, `(?:…)`, `(?s:.)`, `^…\z`.
//! - `re:` regexes are translated from their own syntax tree the same way, case folding already
//!   expanded into classes: on the text when the value is UTF-8 (its `_b64` is NULL), else on the
//!   hex of its bytes, kept to even offsets (a regex may match anywhere), with each character
//!   class as its UTF-8 byte sequences. Assertions other than `^` and `$` (`\b`, multi-line) read
//!   differently in RE2 and Java and are refused. `i:` values are case-insensitive globs.
//! - Every condition is NULL-safe (`coalesce(…, FALSE)`): a missing lineage value fails a
//!   positive condition and passes a `not_` one, as in the engine.
//! - Path patterns match `path` or `alias_of`; an exempting `exe` match (see `trust`) also needs
//!   `exe_verified` not false, as in the engine.

use std::fmt::Write as _;

use regex_syntax::hir::{Class, Hir, HirKind, Look};

use super::access::{ACCESS, OP_ACCESS};
use super::lineage::{ProcCond, ProcField, Table};
use super::matcher::{bit, Clause, IdField, Pred};
use super::pattern::{PatKind, PatternTable};
use super::set::RuleSet;
use crate::event::{Op, Syscall};

/// The SQL engine the query is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// DuckDB (RE2 regexes).
    Duckdb,
    /// Spark SQL (Java regexes, backslash-escaped string literals).
    Spark,
}

/// Why a rule has no faithful translation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub rule: String,
    pub origin: String,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rule `{}` (defined at {}) has no faithful SQL translation: {}",
            crate::text::printable(&self.rule),
            crate::text::printable(&self.origin),
            self.reason
        )
    }
}

/// The columns of every alert row, in order: the proof of concept's keys, the rest of the alert
/// line's keys, then what identifies the event (`host`, `segment`, `seq`).
pub const COLUMNS: &[&str] = &[
    "ts",
    "event",
    "rule",
    "pid",
    "ppid",
    "comm",
    "path",
    "matched",
    "severity",
    "tid",
    "uid",
    "gid",
    "syscall",
    "raw_path",
    "flags",
    "ret",
    "comm_b64",
    "path_b64",
    "raw_path_b64",
    "exe",
    "argv",
    "parent_exe",
    "ancestors",
    "container_id",
    "user",
    "root",
    "file",
    "alias_of",
    "exec_ts",
    "proc_root",
    "mntns",
    "exe_id",
    "exe_verified",
    "host",
    "segment",
    "seq",
];

struct Gen {
    d: Dialect,
}

/// A string column: its text and its `_b64` twin, as SQL expressions.
#[derive(Clone)]
struct StrCol {
    text: String,
    b64: String,
}

/// Characters that text comparisons can carry verbatim in a SQL literal.
fn text_safe(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

impl Gen {
    fn ident(&self, name: &str) -> String {
        match self.d {
            Dialect::Duckdb => format!("\"{name}\""),
            Dialect::Spark => format!("`{name}`"),
        }
    }

    /// A column of `events`, qualified: unqualified, DuckDB may bind a name such as `user` to
    /// its function of that name inside the lateral unnest.
    fn column(&self, name: &str) -> String {
        format!("e.{}", self.ident(name))
    }

    fn lit(&self, s: &str) -> String {
        match self.d {
            Dialect::Duckdb => format!("'{}'", s.replace('\'', "''")),
            // Spark unescapes backslashes in string literals.
            Dialect::Spark => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        }
    }

    fn col(&self, name: &str) -> StrCol {
        StrCol {
            text: self.column(name),
            b64: self.column(&format!("{name}_b64")),
        }
    }

    /// The field `name` of struct variable `var` (a lambda's parameter).
    fn field(&self, var: &str, name: &str) -> StrCol {
        StrCol {
            text: format!("{var}.{}", self.ident(name)),
            b64: format!("{var}.{}", self.ident(&format!("{name}_b64"))),
        }
    }

    /// The exact bytes of a string column, as uppercase hex.
    fn raw_hex(&self, c: &StrCol) -> String {
        match self.d {
            Dialect::Duckdb => format!("hex(coalesce(from_base64({}), encode({})))", c.b64, c.text),
            Dialect::Spark => format!(
                "hex(coalesce(unbase64({}), encode({}, 'UTF-8')))",
                c.b64, c.text
            ),
        }
    }

    fn starts_with(&self, s: &str, prefix: &str) -> String {
        match self.d {
            Dialect::Duckdb => format!("starts_with({s}, {prefix})"),
            Dialect::Spark => format!("startswith({s}, {prefix})"),
        }
    }

    fn regex(&self, s: &str, re: &str) -> String {
        match self.d {
            Dialect::Duckdb => format!("regexp_matches({s}, {})", self.lit(re)),
            Dialect::Spark => format!("rlike({s}, {})", self.lit(re)),
        }
    }

    /// Whether any element `a` of list `list` satisfies `cond` (written over `a`).
    fn exists(&self, list: &str, cond: &str) -> String {
        match self.d {
            Dialect::Duckdb => format!(
                "coalesce(list_bool_or(list_transform({list}, lambda a: coalesce({cond}, FALSE))), FALSE)"
            ),
            Dialect::Spark => {
                format!("coalesce(exists({list}, a -> coalesce({cond}, FALSE)), FALSE)")
            }
        }
    }

    /// Whether string column `c` matches pattern `kind`; NULL-safe.
    fn pattern(&self, c: &StrCol, kind: &PatKind) -> Result<String, String> {
        let e = match kind {
            PatKind::Exact(b) => match std::str::from_utf8(b) {
                Ok(t) if text_safe(t) => format!("{} = {}", c.text, self.lit(t)),
                _ => format!("{} = '{}'", self.raw_hex(c), hex(b)),
            },
            PatKind::Prefix(b) => match std::str::from_utf8(b) {
                Ok(t) if text_safe(t) => self.starts_with(&c.text, &self.lit(t)),
                _ => self.starts_with(&self.raw_hex(c), &format!("'{}'", hex(b))),
            },
            PatKind::Glob(m) => {
                let hir = regex_syntax::ParserBuilder::new()
                    .utf8(false)
                    .dot_matches_new_line(true)
                    .build()
                    .parse(m.glob().regex())
                    .map_err(|e| format!("glob {:?}: {e}", m.glob().glob()))?;
                if char_safe(&hir, false) {
                    let mut re = String::new();
                    text_re(&hir, &mut re)
                        .map_err(|r| format!("glob {:?}: {r}", m.glob().glob()))?;
                    self.regex(&c.text, &re)
                } else {
                    let mut re = String::new();
                    hex_re(&hir, &mut re)
                        .map_err(|r| format!("glob {:?}: {r}", m.glob().glob()))?;
                    self.regex(&self.raw_hex(c), &re)
                }
            }
            PatKind::Regex(r) => self.user_regex(c, r.as_str())?,
        };
        Ok(format!("coalesce({e}, FALSE)"))
    }

    /// A `re:` pattern: the regex's own syntax tree (parsed as `regex::bytes` parses it) written
    /// back in the syntax both engines read, case folding already expanded into classes. On a
    /// value that is UTF-8 (no `_b64` bytes) it runs on the text, else on the hex of the bytes,
    /// kept to whole bytes (an even offset) since the match may start anywhere.
    fn user_regex(&self, c: &StrCol, re: &str) -> Result<String, String> {
        let hir = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(re)
            .map_err(|e| format!("regex {re:?}: {e}"))?;
        let mut h = String::from("^(?:[0-9A-F]{2})*?(?:");
        hex_re(&hir, &mut h).map_err(|why| format!("regex {re:?}: {why}"))?;
        h.push(')');
        let on_bytes = self.regex(&self.raw_hex(c), &h);
        if !regex_text_safe(&hir) {
            return Ok(on_bytes);
        }
        let mut t = String::new();
        text_re(&hir, &mut t).map_err(|why| format!("regex {re:?}: {why}"))?;
        Ok(format!(
            "CASE WHEN {} IS NULL THEN {} ELSE {on_bytes} END",
            c.b64,
            self.regex(&c.text, &t)
        ))
    }

    /// Any of the patterns `ids` of `t` matches `c`.
    fn any_of(&self, c: &StrCol, t: &PatternTable, ids: &[u32]) -> Result<String, String> {
        let parts = ids
            .iter()
            .map(|&id| self.pattern(c, &t.pats[id as usize].kind))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(or(parts))
    }
}

fn or(parts: Vec<String>) -> String {
    match parts.len() {
        0 => "FALSE".to_owned(),
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => format!("({})", parts.join(" OR ")),
    }
}

fn and(parts: Vec<String>) -> String {
    match parts.len() {
        0 => "TRUE".to_owned(),
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => format!("({})", parts.join(" AND ")),
    }
}

fn not_if(neg: bool, e: String) -> String {
    if neg {
        format!("NOT {e}")
    } else {
        e
    }
}

/// Whether matching `hir` on text decides what globset decides on bytes: literals are whole
/// characters (no U+FFFD), classes are ASCII-only, or contain every non-ASCII byte and repeat
/// without bound (`*`, `**`), so that any character sequence and any byte sequence agree.
fn char_safe(h: &Hir, under_star: bool) -> bool {
    match h.kind() {
        HirKind::Empty => true,
        HirKind::Literal(l) => std::str::from_utf8(&l.0).is_ok_and(|t| !t.contains('\u{FFFD}')),
        HirKind::Class(Class::Bytes(c)) => {
            let ascii = c.ranges().iter().all(|r| r.end() < 0x80);
            let all_high = c
                .ranges()
                .iter()
                .any(|r| r.start() <= 0x80 && r.end() == 0xFF);
            ascii || (under_star && all_high)
        }
        HirKind::Class(Class::Unicode(c)) => {
            let ascii = c.ranges().iter().all(|r| (r.end() as u32) < 0x80);
            let all_high = c
                .ranges()
                .iter()
                .any(|r| (r.start() as u32) <= 0x80 && r.end() == char::MAX);
            ascii || (under_star && all_high)
        }
        HirKind::Look(l) => matches!(l, Look::Start | Look::End),
        HirKind::Repetition(r) => char_safe(&r.sub, r.min == 0 && r.max.is_none()),
        HirKind::Capture(c) => char_safe(&c.sub, false),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().all(|h| char_safe(h, false)),
    }
}

/// Whether a `re:` regex means on UTF-8 text what it means on its bytes: its literals are whole
/// characters and its byte classes (`(?-u:…)`) ASCII.
fn regex_text_safe(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) | HirKind::Class(Class::Unicode(_)) => true,
        HirKind::Literal(l) => std::str::from_utf8(&l.0).is_ok(),
        HirKind::Class(Class::Bytes(c)) => c.ranges().iter().all(|r| r.end() < 0x80),
        HirKind::Repetition(r) => regex_text_safe(&r.sub),
        HirKind::Capture(c) => regex_text_safe(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().all(regex_text_safe),
    }
}

/// A character as an escape both RE2 and Java read (letters and digits as themselves).
fn re_char(c: char, out: &mut String) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    }
}

fn repetition(r: &regex_syntax::hir::Repetition, out: &mut String) {
    match (r.min, r.max) {
        (0, None) => out.push('*'),
        (1, None) => out.push('+'),
        (0, Some(1)) => out.push('?'),
        (n, None) => {
            let _ = write!(out, "{{{n},}}");
        }
        (n, Some(m)) if n == m => {
            let _ = write!(out, "{{{n}}}");
        }
        (n, Some(m)) => {
            let _ = write!(out, "{{{n},{m}}}");
        }
    }
    if !r.greedy {
        out.push('?');
    }
}

fn look(l: &Look, out: &mut String) -> Result<(), String> {
    match l {
        Look::Start => out.push('^'),
        // Java's `$` also matches before a final line terminator; `\z` is the end in both.
        Look::End => out.push_str("\\z"),
        other => return Err(format!("regex assertion {other:?} has no translation")),
    }
    Ok(())
}

/// The regex over text (see `char_safe`, which must hold).
fn text_re(h: &Hir, out: &mut String) -> Result<(), String> {
    match h.kind() {
        HirKind::Empty => {}
        HirKind::Literal(l) => {
            let t = std::str::from_utf8(&l.0).map_err(|e| e.to_string())?;
            t.chars().for_each(|c| re_char(c, out));
        }
        HirKind::Class(Class::Unicode(u)) => {
            // Characters as they are (a regex's classes, case folding included).
            if u.ranges().is_empty() {
                out.push_str("[^\\x{0}-\\x{10FFFF}]");
            } else {
                out.push('[');
                for r in u.ranges() {
                    let _ = write!(out, "\\x{{{:X}}}", r.start() as u32);
                    if r.end() > r.start() {
                        let _ = write!(out, "-\\x{{{:X}}}", r.end() as u32);
                    }
                }
                out.push(']');
            }
        }
        HirKind::Class(c) => {
            // ASCII part as ranges; everything above it when the class holds it (see char_safe).
            let (ranges, high): (Vec<(u32, u32)>, bool) = match c {
                Class::Bytes(b) => (
                    b.ranges()
                        .iter()
                        .filter(|r| r.start() < 0x80)
                        .map(|r| (u32::from(r.start()), u32::from(r.end()).min(0x7F)))
                        .collect(),
                    b.ranges().iter().any(|r| r.end() >= 0x80),
                ),
                Class::Unicode(u) => (
                    u.ranges()
                        .iter()
                        .filter(|r| (r.start() as u32) < 0x80)
                        .map(|r| (r.start() as u32, (r.end() as u32).min(0x7F)))
                        .collect(),
                    u.ranges().iter().any(|r| r.end() as u32 >= 0x80),
                ),
            };
            let class = |rs: &[(u32, u32)], out: &mut String| {
                for &(a, b) in rs {
                    let _ = write!(out, "\\x{{{a:X}}}");
                    if b > a {
                        let _ = write!(out, "-\\x{{{b:X}}}");
                    }
                }
            };
            if high {
                // Negate the ASCII bytes it leaves out.
                let mut missing = Vec::new();
                let mut next = 0u32;
                for &(a, b) in &ranges {
                    if a > next {
                        missing.push((next, a - 1));
                    }
                    next = b + 1;
                }
                if next <= 0x7F {
                    missing.push((next, 0x7F));
                }
                if missing.is_empty() {
                    out.push_str("(?s:.)");
                } else {
                    out.push_str("[^");
                    class(&missing, out);
                    out.push(']');
                }
            } else if ranges.is_empty() {
                // Matches nothing: a character no text holds.
                out.push_str("[^\\x{0}-\\x{10FFFF}]");
            } else {
                out.push('[');
                class(&ranges, out);
                out.push(']');
            }
        }
        HirKind::Look(l) => look(l, out)?,
        HirKind::Repetition(r) => {
            out.push_str("(?:");
            text_re(&r.sub, out)?;
            out.push(')');
            repetition(r, out);
        }
        HirKind::Capture(c) => {
            out.push_str("(?:");
            text_re(&c.sub, out)?;
            out.push(')');
        }
        HirKind::Concat(v) => {
            for h in v {
                text_re(h, out)?;
            }
        }
        HirKind::Alternation(v) => {
            out.push_str("(?:");
            for (i, h) in v.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                text_re(h, out)?;
            }
            out.push(')');
        }
    }
    Ok(())
}

/// The bytes `lo..=hi`, as a set.
fn byte_range(lo: u8, hi: u8) -> [bool; 256] {
    let mut set = [false; 256];
    set[lo as usize..=hi as usize].fill(true);
    set
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// One byte of `set`, over its two hex digits.
fn hex_class(set: &[bool; 256], out: &mut String) {
    // Group by high nibble: `H[lows]`, with full nibbles merged into `[Hs][0-9A-F]`.
    let mut full = String::new();
    let mut parts = Vec::new();
    for hi in 0..16 {
        let lows: Vec<usize> = (0..16).filter(|lo| set[hi * 16 + lo]).collect();
        match lows.len() {
            0 => {}
            16 => full.push(HEX[hi] as char),
            _ => {
                let lows: String = lows.iter().map(|&l| HEX[l] as char).collect();
                parts.push(format!("{}[{lows}]", HEX[hi] as char));
            }
        }
    }
    if !full.is_empty() {
        parts.insert(0, format!("[{full}][0-9A-F]"));
    }
    match parts.len() {
        // Matches nothing: hex digits never include `Z`.
        0 => out.push('Z'),
        1 => out.push_str(&parts[0]),
        _ => {
            out.push_str("(?:");
            out.push_str(&parts.join("|"));
            out.push(')');
        }
    }
}

/// The same automaton over the hex digits of the bytes: each byte is two characters.
fn hex_re(h: &Hir, out: &mut String) -> Result<(), String> {
    match h.kind() {
        HirKind::Empty => {}
        HirKind::Literal(l) => out.push_str(&hex(&l.0)),
        HirKind::Class(Class::Bytes(b)) => {
            let mut set = [false; 256];
            for r in b.ranges() {
                set[r.start() as usize..=r.end() as usize].fill(true);
            }
            hex_class(&set, out);
        }
        HirKind::Class(Class::Unicode(u)) => {
            // A character is its UTF-8 bytes: each range as sequences of byte ranges.
            let mut alts = Vec::new();
            for r in u.ranges() {
                for seq in regex_syntax::utf8::Utf8Sequences::new(r.start(), r.end()) {
                    let mut a = String::new();
                    for br in seq.as_slice() {
                        hex_class(&byte_range(br.start, br.end), &mut a);
                    }
                    alts.push(a);
                }
            }
            match alts.len() {
                0 => out.push('Z'),
                1 => out.push_str(&alts[0]),
                _ => {
                    out.push_str("(?:");
                    out.push_str(&alts.join("|"));
                    out.push(')');
                }
            }
        }
        HirKind::Look(l) => look(l, out)?,
        HirKind::Repetition(r) => {
            out.push_str("(?:");
            hex_re(&r.sub, out)?;
            out.push(')');
            repetition(r, out);
        }
        HirKind::Capture(c) => {
            out.push_str("(?:");
            hex_re(&c.sub, out)?;
            out.push(')');
        }
        HirKind::Concat(v) => {
            for h in v {
                hex_re(h, out)?;
            }
        }
        HirKind::Alternation(v) => {
            out.push_str("(?:");
            for (i, h) in v.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                hex_re(h, out)?;
            }
            out.push(')');
        }
    }
    Ok(())
}

/// Whether the event's `op` is one of `mask`'s (bits `1 << Op::code()`).
fn op_in(g: &Gen, mask: u32) -> String {
    let names: Vec<String> = Op::ALL
        .iter()
        .filter(|o| mask & (1 << o.code()) != 0)
        .map(|o| g.lit(o.as_str()))
        .collect();
    if names.is_empty() {
        "FALSE".to_owned()
    } else {
        format!("{} IN ({})", g.column("op"), names.join(", "))
    }
}

/// SQL of what an event asks for (see `access::access_of`): `mask`'s bits, any of them; an
/// open's from its flags, another operation's from its op.
fn access_sql(g: &Gen, mask: u32) -> String {
    let ops = OP_ACCESS
        .iter()
        .filter(|(_, names)| {
            ACCESS
                .iter()
                .any(|(n, b)| mask & b != 0 && names.contains(n))
        })
        .fold(0, |m, (o, _)| m | 1 << o.code());
    let open = format!(
        "({} = {} AND {})",
        g.column("op"),
        g.lit(Op::Open.as_str()),
        open_access_sql(g, mask)
    );
    if ops == 0 {
        open
    } else {
        format!("({open} OR {})", op_in(g, ops))
    }
}

/// SQL of what an open asks for (see `access::access_of`): `mask`'s bits, any of them.
fn open_access_sql(g: &Gen, mask: u32) -> String {
    let flags = g.column("flags");
    let creat = [Syscall::Creat, Syscall::Ia32Creat]
        .iter()
        .map(|s| g.lit(s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let implied = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as i64;
    let f = format!(
        "(CASE WHEN {} IN ({creat}) THEN {flags} | {implied} ELSE {flags} END)",
        g.column("syscall")
    );
    let has = |bits: libc::c_int| format!("(({f} & {bits}) = {bits})");
    let acc = format!("({f} & {})", libc::O_ACCMODE);
    let mut parts = Vec::new();
    for &(name, bit) in ACCESS {
        if mask & bit == 0 {
            continue;
        }
        parts.push(match name {
            "read" => format!(
                "(NOT {} AND {acc} IN ({}, {}))",
                has(libc::O_PATH),
                libc::O_RDONLY,
                libc::O_RDWR
            ),
            "write" => format!(
                "(NOT {} AND {acc} IN ({}, {}))",
                has(libc::O_PATH),
                libc::O_WRONLY,
                libc::O_RDWR
            ),
            "create" => has(libc::O_CREAT),
            "truncate" => has(libc::O_TRUNC),
            "append" => has(libc::O_APPEND),
            "exclusive" => has(libc::O_EXCL),
            "path" => has(libc::O_PATH),
            "nofollow" => has(libc::O_NOFOLLOW),
            "cloexec" => has(libc::O_CLOEXEC),
            // O_TMPFILE includes O_DIRECTORY's bit: a tmpfile open is not a directory open.
            "tmpfile" => has(libc::O_TMPFILE),
            "directory" => format!(
                "(NOT {} AND {})",
                has(libc::O_TMPFILE),
                has(libc::O_DIRECTORY)
            ),
            other => format!("/* unknown access {other} */ FALSE"),
        });
    }
    or(parts)
}

fn ints(set: &[u32]) -> String {
    set.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn in_set(col: &str, set: &[u32]) -> String {
    if set.is_empty() {
        "FALSE".to_owned()
    } else {
        format!("coalesce({col} IN ({}), FALSE)", ints(set))
    }
}

impl RuleSet {
    /// The enabled rules as one query (see the module documentation); the rules that have no
    /// faithful translation otherwise, each with why.
    pub fn to_sql(&self, dialect: Dialect) -> Result<String, Vec<Refusal>> {
        let g = Gen { d: dialect };
        let c = &self.compiled;
        let mut branches = Vec::new();
        let mut refusals = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if !bit(c.active(), i) {
                continue;
            }
            let res = (|| -> Result<String, String> {
                if rule.throttle.is_some() {
                    // Which alert is suppressed depends on every earlier alert of its key (and a
                    // summary is a row no event has): state across events, not one query.
                    return Err("`throttle` needs state carried across events in time order; one query over the events cannot reproduce which alerts it suppresses or its summaries (compile the rule without it)".into());
                }
                let mut cond = clause_sql(&g, self, &c.clauses[i])?;
                let excepts = c.excepts[i]
                    .iter()
                    .map(|&x| clause_sql(&g, self, &c.clauses[x]))
                    .collect::<Result<Vec<_>, _>>()?;
                if !excepts.is_empty() {
                    cond = format!("{cond}\n    AND NOT {}", or(excepts));
                }
                let matched = matched_sql(&g, self, &c.clauses[i])?;
                let (name, sev) = (g.lit(&rule.name), g.lit(rule.severity.as_str()));
                let comment = format!(
                    "    -- {} ({})\n",
                    crate::text::printable(&rule.name).replace('\n', " "),
                    crate::text::printable(&rule.origin).replace('\n', " "),
                );
                // One hit per rule that holds: (rule, rule_index, severity, matched).
                Ok(match dialect {
                    Dialect::Duckdb => format!(
                        "{comment}    CASE WHEN {cond}\n    THEN {{'rule': {name}, 'rule_index': {i}, 'severity': {sev}, 'matched': CAST({matched} AS VARCHAR)}} END"
                    ),
                    Dialect::Spark => format!(
                        "{comment}    IF({cond},\n    named_struct('rule', {name}, 'rule_index', {i}, 'severity', {sev}, 'matched', CAST({matched} AS STRING)), NULL)"
                    ),
                })
            })();
            match res {
                Ok(b) => branches.push(b),
                Err(reason) => refusals.push(Refusal {
                    rule: rule.name.clone(),
                    origin: rule.origin.clone(),
                    reason,
                }),
            }
        }
        if !refusals.is_empty() {
            return Err(refusals);
        }
        let hit_cols = ["rule", "rule_index", "severity", "matched"];
        // One scan of `events` whatever the number of rules: each row gets the list of the rules
        // that hold for it, unnested into one row per alert (no row for no rule).
        let inner = if branches.is_empty() {
            // No rule runs: the same columns, no rows.
            format!(
                "  SELECT e.*, CAST(NULL AS STRING) AS {}, 0 AS {}, CAST(NULL AS STRING) AS {}, CAST(NULL AS STRING) AS {}\n  FROM events e\n  WHERE FALSE",
                g.ident("rule"),
                g.ident("rule_index"),
                g.ident("severity"),
                g.ident("matched")
            )
        } else {
            match dialect {
                Dialect::Duckdb => format!(
                    "  SELECT e.*, {}\n  FROM events e, unnest(list_filter([\n{}\n  ], lambda x: x IS NOT NULL)) AS h(hit)",
                    hit_cols
                        .iter()
                        .map(|c| format!("h.hit.{} AS {}", g.ident(c), g.ident(c)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    branches.join(",\n")
                ),
                Dialect::Spark => format!(
                    "  SELECT e.*, {}\n  FROM events e\n  LATERAL VIEW inline(filter(array(\n{}\n  ), x -> x IS NOT NULL)) h AS {}",
                    hit_cols
                        .iter()
                        .map(|c| format!("h.{}", g.ident(c)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    branches.join(",\n"),
                    hit_cols
                        .iter()
                        .map(|c| g.ident(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        };
        let cols: Vec<String> = COLUMNS
            .iter()
            .map(|&n| match n {
                "event" => format!("'alert' AS {}", g.ident("event")),
                n => format!("alerts.{} AS {}", g.ident(n), g.ident(n)),
            })
            .collect();
        let names: Vec<&str> = self
            .rules
            .iter()
            .enumerate()
            .filter(|(i, _)| bit(c.active(), *i))
            .map(|(_, r)| r.name.as_str())
            .collect();
        let mut q = String::new();
        let _ = writeln!(
            q,
            "-- open-forensics {} rules sql --dialect {}: Parquet schema {}; rules: {}",
            env!("CARGO_PKG_VERSION"),
            match dialect {
                Dialect::Duckdb => "duckdb",
                Dialect::Spark => "spark",
            },
            crate::columns::PARQUET_SCHEMA_VERSION,
            crate::text::printable(&names.join(", ")).replace('\n', " ")
        );
        let _ = writeln!(
            q,
            "-- Reads the relation `events`: the exported events/ Parquet files with their `host` partition column."
        );
        let _ = writeln!(q, "SELECT {}\nFROM (", cols.join(", "));
        q.push_str(&inner);
        let order: Vec<String> = ["host", "ts", "segment", "seq", "rule_index"]
            .iter()
            .map(|n| format!("alerts.{}", g.ident(n)))
            .collect();
        let _ = write!(q, "\n) alerts\nORDER BY {}\n", order.join(", "));
        Ok(q)
    }
}

fn clause_sql(g: &Gen, set: &RuleSet, cl: &Clause) -> Result<String, String> {
    let c = &set.compiled;
    let mut parts = Vec::new();
    let (path, alias) = (g.col("path"), g.col("alias_of"));
    let comm = g.col("comm");
    // A path pattern matches the path or the watched path it is another name of (`alias_of`).
    let either = |ids: &[u32]| -> Result<String, String> {
        Ok(or(vec![
            g.any_of(&path, &c.paths, ids)?,
            g.any_of(&alias, &c.paths, ids)?,
        ]))
    };
    if let Some(ids) = &cl.path_any {
        parts.push(either(ids)?);
    }
    if !cl.path_none.is_empty() {
        parts.push(format!("NOT {}", either(&cl.path_none)?));
    }
    // A missing old name matches no pattern (`any_of` is FALSE on NULL).
    let old = g.col("old_path");
    if let Some(ids) = &cl.old_any {
        parts.push(g.any_of(&old, &c.old_paths, ids)?);
    }
    if !cl.old_none.is_empty() {
        parts.push(format!(
            "NOT {}",
            g.any_of(&old, &c.old_paths, &cl.old_none)?
        ));
    }
    let raw = g.col("raw_path");
    if let Some(ids) = &cl.raw_any {
        parts.push(g.any_of(&raw, &c.raw_paths, ids)?);
    }
    if !cl.raw_none.is_empty() {
        parts.push(format!(
            "NOT {}",
            g.any_of(&raw, &c.raw_paths, &cl.raw_none)?
        ));
    }
    if let Some(ids) = &cl.comm_any {
        parts.push(g.any_of(&comm, &c.comms, ids)?);
    }
    if !cl.comm_none.is_empty() {
        parts.push(format!("NOT {}", g.any_of(&comm, &c.comms, &cl.comm_none)?));
    }
    for p in &cl.procs {
        parts.push(proc_sql(g, set, p)?);
    }
    for p in &cl.preds {
        parts.push(pred_sql(g, p)?);
    }
    Ok(and(parts))
}

fn proc_sql(g: &Gen, set: &RuleSet, p: &ProcCond) -> Result<String, String> {
    let c = &set.compiled;
    let t = match p.field.table() {
        Table::Exe => &c.ptables.exe,
        Table::Comm => &c.comms,
        Table::Cmdline => &c.ptables.cmdline,
        Table::Container => &c.ptables.container,
        Table::Cwd => &c.ptables.cwd,
        Table::Tty => &c.ptables.tty,
    };
    let hit = match p.field {
        // An exempting match needs an image not known to be a fake (NULL: the path is trusted).
        ProcField::Exe if p.exempts => format!(
            "({} AND coalesce({}, TRUE))",
            g.any_of(&g.col("exe"), t, &p.ids)?,
            g.column("exe_verified")
        ),
        ProcField::Exe => g.any_of(&g.col("exe"), t, &p.ids)?,
        ProcField::Cmdline => g.any_of(&g.col("cmdline"), t, &p.ids)?,
        ProcField::ParentExe => g.any_of(&g.col("parent_exe"), t, &p.ids)?,
        ProcField::ParentComm => g.any_of(&g.col("parent_comm"), t, &p.ids)?,
        ProcField::ParentCmdline => g.any_of(&g.col("parent_cmdline"), t, &p.ids)?,
        ProcField::Cwd => g.any_of(&g.col("cwd"), t, &p.ids)?,
        ProcField::AncestorExe => g.exists(
            &g.column("ancestors"),
            &g.any_of(&g.field("a", "exe"), t, &p.ids)?,
        ),
        ProcField::AncestorComm => g.exists(
            &g.column("ancestors"),
            &g.any_of(&g.field("a", "comm"), t, &p.ids)?,
        ),
        ProcField::Container => format!(
            "(CASE WHEN {} IS NULL THEN FALSE WHEN {} IS NULL THEN {} ELSE {} END)",
            g.column("proc_start"),
            g.column("container_id"),
            if p.absent { "TRUE" } else { "FALSE" },
            g.any_of(&g.col("container_id"), t, &p.ids)?
        ),
        ProcField::Tty => format!(
            "(CASE WHEN {} IS NULL THEN FALSE WHEN {} IS NULL THEN {} ELSE {} END)",
            g.column("proc_start"),
            g.column("tty"),
            if p.absent { "TRUE" } else { "FALSE" },
            g.any_of(&g.col("tty"), t, &p.ids)?
        ),
    };
    Ok(not_if(p.neg, hit))
}

fn pred_sql(g: &Gen, p: &Pred) -> Result<String, String> {
    Ok(match p {
        Pred::Id { field, set, neg } => {
            let col = match field {
                IdField::Uid => "uid",
                IdField::Gid => "gid",
                IdField::Pid => "pid",
                IdField::Ppid => "ppid",
            };
            not_if(*neg, in_set(&g.column(col), set))
        }
        Pred::Syscall { mask, neg } => {
            let names: Vec<String> = Syscall::ALL
                .iter()
                .filter(|s| mask & (1u128 << s.code()) != 0)
                .map(|s| g.lit(s.as_str()))
                .collect();
            let e = if names.is_empty() {
                "FALSE".to_owned()
            } else {
                format!("{} IN ({})", g.column("syscall"), names.join(", "))
            };
            not_if(*neg, e)
        }
        Pred::Access { mask, neg } => not_if(*neg, access_sql(g, *mask)),
        Pred::Op { mask, neg } => not_if(*neg, op_in(g, *mask)),
        Pred::Mode { mask, neg } => not_if(*neg, format!("(({} & {mask}) <> 0)", g.column("mode"))),
        Pred::Age { set, neg } => {
            let age = g.column("proc_age_ns");
            let parts = set
                .iter()
                .map(|a| format!("coalesce({age} {} {}, FALSE)", a.op(), a.ns))
                .collect();
            not_if(*neg, or(parts))
        }
        Pred::Result { set, neg } => {
            let ret = g.column("ret");
            let mut alts = Vec::new();
            if set.success {
                alts.push(format!("{ret} >= 0"));
            }
            if set.failure {
                alts.push(format!("{ret} < 0"));
            } else if !set.errnos.is_empty() {
                // `ret = -errno`, without negating `ret` (no overflow on any value).
                let neg: Vec<String> = set.errnos.iter().map(|e| (-e).to_string()).collect();
                alts.push(format!("{ret} IN ({})", neg.join(", ")));
            }
            not_if(*neg, or(alts))
        }
        Pred::User { set, neg } => {
            let user = g.col("user");
            let parts = set
                .pats
                .iter()
                .map(|k| g.pattern(&user, k))
                .collect::<Result<Vec<_>, _>>()?;
            not_if(*neg, or(parts))
        }
        Pred::Cred { auid, set, neg } => {
            let col = g.column(if *auid { "auid" } else { "euid" });
            not_if(*neg, in_set(&col, set))
        }
        Pred::AncestorPid { set, neg } => {
            let e = if set.is_empty() {
                "FALSE".to_owned()
            } else {
                g.exists(
                    &g.column("ancestors"),
                    &format!("a.{} IN ({})", g.ident("pid"), ints(set)),
                )
            };
            not_if(*neg, e)
        }
    })
}

/// `matched` (see `Compiled::matched`): the rule's first path pattern matching the path, else its
/// first matching `alias_of`, else its first `old_path` pattern matching the old name, else its
/// first `raw_path` pattern matching the raw path, else its first comm pattern matching the comm,
/// else its first positive `exe` pattern matching the exe.
fn matched_sql(g: &Gen, set: &RuleSet, cl: &Clause) -> Result<String, String> {
    let c = &set.compiled;
    let mut whens = Vec::new();
    let mut add = |col: &StrCol, t: &PatternTable, ids: &[u32]| -> Result<(), String> {
        for &id in ids {
            let p = &t.pats[id as usize];
            whens.push(format!(
                "WHEN {} THEN {}",
                g.pattern(col, &p.kind)?,
                g.lit(&p.text)
            ));
        }
        Ok(())
    };
    if let Some(ids) = &cl.path_any {
        add(&g.col("path"), &c.paths, ids)?;
        add(&g.col("alias_of"), &c.paths, ids)?;
    }
    if let Some(ids) = &cl.old_any {
        add(&g.col("old_path"), &c.old_paths, ids)?;
    }
    if let Some(ids) = &cl.raw_any {
        add(&g.col("raw_path"), &c.raw_paths, ids)?;
    }
    if let Some(ids) = &cl.comm_any {
        add(&g.col("comm"), &c.comms, ids)?;
    }
    if let Some(p) = cl
        .procs
        .iter()
        .find(|p| p.field == ProcField::Exe && !p.neg)
    {
        add(&g.col("exe"), &c.ptables.exe, &p.ids)?;
    }
    if whens.is_empty() {
        return Ok("CAST(NULL AS STRING)".to_owned());
    }
    Ok(format!("CASE {} ELSE NULL END", whens.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob_sql(glob: &str, literal_separator: bool) -> (bool, String, String) {
        let m = globset::GlobBuilder::new(glob)
            .literal_separator(literal_separator)
            .backslash_escape(true)
            .build()
            .unwrap()
            .compile_matcher();
        let hir = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .dot_matches_new_line(true)
            .build()
            .parse(m.glob().regex())
            .unwrap();
        let safe = char_safe(&hir, false);
        let (mut t, mut h) = (String::new(), String::new());
        if safe {
            text_re(&hir, &mut t).unwrap();
        }
        hex_re(&hir, &mut h).unwrap();
        (safe, t, h)
    }

    /// Globs whose pieces are whole characters run on the text; byte-counting ones on the hex.
    #[test]
    fn globs_translate_to_text_or_hex_regexes() {
        let (safe, t, _) = glob_sql("/etc/*.conf", true);
        assert!(safe);
        assert_eq!(t, "^\\x{2F}etc\\x{2F}(?:[^\\x{2F}])*\\x{2E}conf\\z");
        let (safe, t, _) = glob_sql("/home/**/.ssh/*", true);
        assert!(safe, "{t}");
        let (safe, _, h) = glob_sql("/tmp/?", true);
        assert!(!safe);
        assert_eq!(
            h,
            "^2F746D702F(?:[013456789ABCDEF][0-9A-F]|2[0123456789ABCDE])\\z"
        );
        let (safe, _, _) = glob_sql("/tmp/[!a]x", true);
        assert!(!safe);
        let (safe, t, _) = glob_sql("/tmp/[a-c]x", true);
        assert!(safe);
        assert!(t.contains("[\\x{61}-\\x{63}]"), "{t}");
    }

    /// What globset never produces but the translator cannot express is an error, never a guess.
    #[test]
    fn untranslatable_regex_pieces_are_refused() {
        let hir = regex_syntax::parse(r"(?-u)\bx").unwrap();
        assert!(hex_re(&hir, &mut String::new()).is_err());
        assert!(text_re(&hir, &mut String::new()).is_err());
    }

    #[test]
    fn only_enabled_rules_are_compiled_in_rule_order() {
        let set = RuleSet::from_yaml(
            "t.yaml",
            "rules:\n  - {name: b, description: d, severity: low, path: /x}\n  - {name: off, description: d, severity: low, enabled: false, path: /y}\n  - {name: a, description: d, severity: high, comm: sh}\n",
        )
        .unwrap();
        let q = set.to_sql(Dialect::Duckdb).unwrap();
        assert!(q.contains("{'rule': 'b', 'rule_index': 0,"), "{q}");
        assert!(q.contains("{'rule': 'a', 'rule_index': 2,"), "{q}");
        assert!(!q.contains("'off'"), "{q}");
        assert!(q.contains("ORDER BY alerts.\"host\", alerts.\"ts\", alerts.\"segment\", alerts.\"seq\", alerts.\"rule_index\""), "{q}");
        let q = set.to_sql(Dialect::Spark).unwrap();
        assert!(q.contains("`rule`") && !q.contains("\"rule\""), "{q}");
    }

    /// As in the engine: a path pattern also matches `alias_of`, and only an exempting `exe`
    /// match (a rule's `not_exe`, an exception's `exe`) needs `exe_verified`.
    #[test]
    fn paths_match_their_alias_and_exe_exemptions_need_a_verified_image() {
        let set = RuleSet::from_yaml(
            "t.yaml",
            "rules:\n  - {name: a, description: d, severity: high, path: /etc/shadow, not_exe: /usr/bin/passwd, except: [{exe: /usr/sbin/x}]}\n  - {name: b, description: d, severity: high, exe: /usr/bin/passwd, except: [{not_exe: /usr/sbin/y}]}\n",
        )
        .unwrap();
        let q = set.to_sql(Dialect::Duckdb).unwrap();
        assert!(q.contains("(coalesce(e.\"path\" = '/etc/shadow', FALSE) OR coalesce(e.\"alias_of\" = '/etc/shadow', FALSE))"), "{q}");
        assert!(
            q.contains("WHEN coalesce(e.\"alias_of\" = '/etc/shadow', FALSE) THEN '/etc/shadow'"),
            "{q}"
        );
        let verified = |exe: &str| {
            format!("(coalesce(e.\"exe\" = '{exe}', FALSE) AND coalesce(e.\"exe_verified\", TRUE))")
        };
        assert!(
            q.contains(&format!("NOT {}", verified("/usr/bin/passwd"))),
            "{q}"
        );
        assert!(q.contains(&verified("/usr/sbin/x")), "{q}");
        assert!(!q.contains(&verified("/usr/sbin/y")), "{q}");
        // Only the two exemptions read it (the alert's own column list names it too).
        assert_eq!(q.matches("e.\"exe_verified\"").count(), 2, "{q}");
    }

    /// A `re:` regex means in SQL what it means to `replay`: checked here with the regex crate
    /// (RE2 syntax, as DuckDB) on the text of UTF-8 values and on the hex of any bytes.
    #[test]
    fn regexes_translate_to_text_and_hex_regexes_that_agree_with_the_bytes() {
        let values: &[&[u8]] = &[
            b"/etc/shadow",
            b"/ETC/Shadow",
            b"/etc/shadow.bak",
            b"x/etc/shadowy",
            "/tmp/\u{e9}t\u{e9}/K".as_bytes(),
            "/tmp/\u{c9}T\u{c9}/\u{212a}".as_bytes(),
            b"/tmp/\xFF\xFE/k",
            b"",
            b"\n/etc/shadow\n",
        ];
        for re in [
            r"^/etc/shadow$",
            r"(?i)/ETC/SHADOW",
            r"shadow\.(bak|old)?",
            r"(?i)/tmp/\w+/k$",
            r"/tmp/.{2}/",
            r"(?-u:\xFF)",
            r"[^/]+$",
            r"^$",
            r"a{2,3}|dow",
        ] {
            let want = regex::bytes::Regex::new(re).unwrap();
            let hir = regex_syntax::ParserBuilder::new()
                .utf8(false)
                .build()
                .parse(re)
                .unwrap();
            let mut h = String::from("^(?:[0-9A-F]{2})*?(?:");
            hex_re(&hir, &mut h).unwrap();
            h.push(')');
            let on_hex = regex::Regex::new(&h).unwrap();
            let on_text = regex_text_safe(&hir).then(|| {
                let mut t = String::new();
                text_re(&hir, &mut t).unwrap();
                regex::Regex::new(&t).unwrap()
            });
            for v in values {
                let w = want.is_match(v);
                assert_eq!(on_hex.is_match(&hex(v)), w, "{re} on hex of {v:?}: {h}");
                if let (Some(t), Ok(text)) = (&on_text, std::str::from_utf8(v)) {
                    assert_eq!(t.is_match(text), w, "{re} on {text:?}");
                }
            }
        }
        // Assertions the engines read differently are refused, never guessed.
        let set = RuleSet::from_yaml(
            "t.yaml",
            "rules:\n  - {name: w, description: d, severity: low, path: 're:\\bshadow'}\n",
        )
        .unwrap();
        let refused = set.to_sql(Dialect::Duckdb).unwrap_err();
        assert!(
            refused[0].reason.contains("has no translation"),
            "{refused:?}"
        );
    }

    /// UTF-8 values are matched on the text, others on the bytes; `i:` is a case-insensitive glob.
    #[test]
    fn regex_and_nocase_values_compile_for_both_dialects() {
        let set = RuleSet::from_yaml(
            "t.yaml",
            "rules:\n  - {name: r, description: d, severity: low, path: 're:^/etc/x', comm: 'i:Ab'}\n",
        )
        .unwrap();
        let q = set.to_sql(Dialect::Duckdb).unwrap();
        assert!(
            q.contains("CASE WHEN e.\"path_b64\" IS NULL THEN regexp_matches(e.\"path\", '^\\x{2F}etc\\x{2F}x') ELSE regexp_matches(hex("),
            "{q}"
        );
        assert!(
            q.contains("regexp_matches(e.\"comm\", '^[\\x{41}\\x{61}][\\x{42}\\x{62}]\\z')"),
            "{q}"
        );
        let q = set.to_sql(Dialect::Spark).unwrap();
        assert!(q.contains("rlike(e.`path`, '^\\\\x{2F}etc"), "{q}");
    }

    #[test]
    fn spark_literals_escape_backslashes_and_quotes() {
        let g = Gen { d: Dialect::Spark };
        assert_eq!(g.lit("a\\b'c"), "'a\\\\b\\'c'");
        let g = Gen { d: Dialect::Duckdb };
        assert_eq!(g.lit("a\\b'c"), "'a\\b''c'");
    }
}
