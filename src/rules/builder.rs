//! Parsed rule files → a `RuleSet`: every rule (and the proof of concept's `open_monitor`) with
//! its clauses, tags and throttle, checked and positioned; also the one-rule sets of command-line
//! filters.

use super::clause::{names, opens_only, Compiler, Kind};
use super::diag::{Ctx, Origin};
use super::expand::Expander;
use super::layer::{self, Entry, Layered};
use super::matcher::{Clause, Compiled, Pred};
use super::raw::{Item, Items, RawConds, RawFile, RawOpenMonitor, RawThrottle};
use super::rule::{Rule, Severity};
use super::set::RuleSet;
use super::template::Template;
use super::throttle::{KeyField, Throttle, MAX_PER_WINDOW};
use super::trust;
use crate::event::Op;
use crate::timespec;

struct Builder<'a> {
    c: Compiler<'a>,
    /// Rule clauses, then except clauses, appended after all rules are known.
    pending_excepts: Vec<(usize, Clause)>,
}

impl<'a> Builder<'a> {
    fn new(lists: Expander<'a>) -> Builder<'a> {
        Builder {
            c: Compiler {
                lists,
                out: Compiled::default(),
            },
            pending_excepts: Vec::new(),
        }
    }

    fn push_rule(&mut self, rule: Clause, excepts: Vec<Clause>) {
        let idx = self.c.out.clauses.len();
        self.c.out.clauses.push(rule);
        for e in excepts {
            self.pending_excepts.push((idx, e));
        }
    }

    fn finish(mut self, enabled: &[bool]) -> Compiled {
        let rules = self.c.out.clauses.len();
        self.c.out.excepts = vec![Vec::new(); rules];
        for (rule, clause) in std::mem::take(&mut self.pending_excepts) {
            self.c.out.excepts[rule].push(self.c.out.clauses.len());
            self.c.out.clauses.push(clause);
        }
        self.c.out.finish(enabled);
        self.c.out
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

/// The operations a clause can match, by its `op` conditions.
fn ops_of(cl: &Clause) -> Vec<&'static str> {
    Op::ALL
        .iter()
        .filter(|o| {
            cl.preds.iter().all(|p| match p {
                Pred::Op { mask, neg } => (mask & (1 << o.code()) != 0) != *neg,
                _ => true,
            })
        })
        .map(|o| o.as_str())
        .collect()
}

fn open_monitor_conds(m: &RawOpenMonitor) -> Vec<(&'static str, &Items)> {
    vec![
        ("sensitive_paths", &m.sensitive_paths),
        ("allow_comm", &m.allow_comm),
        ("deny_comm", &m.deny_comm),
        ("ignore_path_prefixes", &m.ignore_path_prefixes),
    ]
}

/// Compiles parsed files (in order, layered: see `layer.rs`) into a rule set, reporting every
/// problem to `ctx`.
pub(super) fn build(ctx: &mut Ctx, files: &[(usize, RawFile)]) -> RuleSet {
    let mut b = Builder::new(Expander::from_files(ctx, files));
    let mut rules: Vec<Rule> = Vec::new();
    let mut enabled = Vec::new();
    for entry in layer::rules(ctx, files) {
        match entry {
            Entry::OpenMonitor {
                at,
                m,
                enabled: on,
                toggled,
            } => {
                trust::lint_open_monitor(ctx, &m.allow_comm, &m.deny_comm, &at);
                let clause = open_monitor_clause(&mut b, ctx, m, &at);
                let ops = ops_of(&clause);
                b.push_rule(clause, Vec::new());
                enabled.push(on);
                let layers = match toggled {
                    Some(t) => vec![
                        ("open_monitor", vec![ctx.describe(&at)]),
                        ("enabled", vec![ctx.describe(&t)]),
                    ],
                    None => Vec::new(),
                };
                rules.push(Rule {
                    name: "open_sensitive".to_owned(),
                    description: "An open (or attempt) of a path in open_monitor.sensitive_paths"
                        .to_owned(),
                    severity: Severity::High,
                    enabled: on,
                    origin: ctx.describe(&at),
                    summary: summarize(&open_monitor_conds(m)),
                    ops,
                    excepts: 0,
                    tags: Vec::new(),
                    throttle: None,
                    output: None,
                    layers,
                });
            }
            Entry::Rule(l) => {
                let rule = layered_rule(&mut b, ctx, &l);
                enabled.push(rule.enabled);
                rules.push(rule);
            }
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
        warnings: Vec::new(),
    }
}

/// One effective rule: its clause and except clauses go to `b`.
fn layered_rule(b: &mut Builder, ctx: &mut Ctx, l: &Layered) -> Rule {
    let (r, at) = (&l.rule, &l.at);
    let name = &r.name.0;
    let conds = r.conditions();
    let except = r.except.as_deref().unwrap_or_default();
    let except_conds: Vec<_> = except
        .iter()
        .zip(&l.except_at)
        .map(|(e, e_at)| (e_at.clone(), e.conditions()))
        .collect();
    trust::lint(ctx, name, &conds, &except_conds, at);
    let clause = b.c.clause(ctx, &conds, at, Kind::Rule);
    let excepts: Vec<Clause> = except_conds
        .iter()
        .map(|(e_at, e)| b.c.clause(ctx, e, e_at, Kind::Except))
        .collect();
    let ops = ops_of(&clause);
    b.push_rule(clause, excepts);
    let mut summary = summarize(&conds);
    for e in except {
        summary.push_str(&format!("; except {{{}}}", summarize(&e.conditions())));
    }
    let layers = if l.changed {
        l.from
            .iter()
            .map(|(k, ats)| (*k, ats.iter().map(|a| ctx.describe(a)).collect()))
            .collect()
    } else {
        Vec::new()
    };
    Rule {
        name: name.clone(),
        description: r.description.clone().unwrap_or_default(),
        severity: r.severity.unwrap_or(Severity::Info),
        enabled: r.enabled.unwrap_or(true),
        origin: ctx.describe(at),
        summary,
        ops,
        excepts: except.len(),
        tags: rule_tags(b, ctx, &r.tags, &r.tags.key_at(at, "tags")),
        throttle: r
            .throttle
            .as_ref()
            .and_then(|t| rule_throttle(b, ctx, t, &l.key_at("throttle"))),
        output: r.output.as_deref().and_then(|o| {
            Template::parse(o)
                .map_err(|e| ctx.error(&l.key_at("output"), e))
                .ok()
        }),
        layers,
    }
}

/// Tags a rule may carry, and how long each may be.
const MAX_TAGS: usize = 32;
const MAX_TAG_LEN: usize = 64;

/// `tags:`: strings of letters, digits and `_ - . : / @ +` (no spaces: they are labels, and go
/// into alerts and SIEM fields), each at most 64 bytes, at most 32, no duplicates; `$lists` work.
fn rule_tags(b: &mut Builder, ctx: &mut Ctx, items: &Items, at: &Origin) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let vals = b.c.lists.expand(ctx, items, at);
    if vals.len() > MAX_TAGS {
        ctx.error(
            at,
            format!("{} tags: at most {MAX_TAGS} are allowed", vals.len()),
        );
        return tags;
    }
    for v in &vals {
        let Some(t) = v.text(ctx, "a tag") else {
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
fn rule_throttle(b: &mut Builder, ctx: &mut Ctx, t: &RawThrottle, at: &Origin) -> Option<Throttle> {
    let mut ok = true;
    let mut key = Vec::new();
    let key_at = at.key("key");
    for v in b.c.lists.expand(ctx, &t.key, &key_at) {
        let Some(name) = v.text(ctx, "a key field") else {
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
        Item::Str(w) => match timespec::parse_duration(w) {
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
        Item::Int(n) if (1..=MAX_PER_WINDOW as i64).contains(n) => *n as u64,
        other => {
            ctx.error(
                &max_at,
                format!(
                    "max {other}: expected an integer from 1 to {}",
                    MAX_PER_WINDOW
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
    let c = &mut b.c;
    let vals = c
        .lists
        .expand(ctx, &m.sensitive_paths, &at.key("sensitive_paths"));
    let path_any = Some(c.path_ids(ctx, &vals, false, "a path"));
    let vals = c.lists.expand(
        ctx,
        &m.ignore_path_prefixes,
        &at.key("ignore_path_prefixes"),
    );
    let path_none = c.path_ids(ctx, &vals, true, "a path prefix");
    let vals = c.lists.expand(ctx, &m.allow_comm, &at.key("allow_comm"));
    let allow = c.comm_ids(ctx, &vals);
    let vals = c.lists.expand(ctx, &m.deny_comm, &at.key("deny_comm"));
    let comm_none = c.comm_ids(ctx, &vals);
    Clause {
        path_any,
        path_none,
        // An empty allow_comm means "everyone".
        comm_any: (!allow.is_empty()).then_some(allow),
        comm_none,
        // The proof of concept watched opens.
        preds: vec![opens_only()],
        ..Clause::default()
    }
}

/// Rules from command-line filters: one per alternative (an event matches if any does).
pub(super) fn build_single(ctx: &mut Ctx, name: &str, alternatives: &[RawConds]) -> RuleSet {
    let mut b = Builder::new(Expander::none());
    let at = Origin {
        src: 0,
        path: Vec::new(),
    };
    let mut rules = Vec::new();
    for conds in alternatives {
        let cl = b.c.clause(ctx, &conds.conditions(), &at, Kind::Filter);
        let ops = ops_of(&cl);
        b.push_rule(cl, Vec::new());
        rules.push(Rule {
            name: name.to_owned(),
            description: "command-line filters".to_owned(),
            severity: Severity::Info,
            enabled: true,
            origin: "command line".to_owned(),
            summary: summarize(&conds.conditions()),
            ops,
            excepts: 0,
            tags: Vec::new(),
            throttle: None,
            output: None,
            layers: Vec::new(),
        });
    }
    let enabled = vec![true; rules.len()];
    RuleSet {
        rules,
        compiled: b.finish(&enabled),
        warnings: Vec::new(),
    }
}
