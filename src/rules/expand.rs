//! `$list` references: the lists every file defines, and their expansion into values, bounded
//! in depth and in the values they produce.

use std::collections::HashMap;
use std::rc::Rc;

use super::diag::{Ctx, Origin};
use super::layer;
use super::raw::{Item, Items, RawFile};

/// A value after list expansion, with where it was written.
#[derive(Clone)]
pub(super) struct Val {
    pub item: Item,
    pub at: Origin,
}

impl Val {
    /// The text of a value that must be a string (`what`: "a process name"…); an error otherwise.
    pub fn text(&self, ctx: &mut Ctx, what: &str) -> Option<&str> {
        match &self.item {
            Item::Str(s) => Some(s),
            Item::Int(i) => {
                ctx.error(&self.at, format!("expected {what} (a string), found {i}"));
                None
            }
        }
    }
}

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

/// The defined lists of a rule set (name → its parts: where written, items) and their expansion
/// state.
pub(super) struct Expander<'a> {
    defs: HashMap<&'a str, Vec<(Origin, &'a Items)>>,
    expansion: Expansion,
}

impl<'a> Expander<'a> {
    /// No lists (command-line filters).
    pub fn none() -> Expander<'a> {
        Expander {
            defs: HashMap::new(),
            expansion: Expansion::default(),
        }
    }

    /// The lists of every file (any file may use a list that another defines), layered in
    /// file order (see `layer::lists`).
    pub fn from_files(ctx: &mut Ctx, files: &'a [(usize, RawFile)]) -> Expander<'a> {
        Expander {
            defs: layer::lists(ctx, files),
            expansion: Expansion::default(),
        }
    }

    /// Expands `$list` references; errors for unknown lists, cycles, lists nested deeper than
    /// `MAX_LIST_DEPTH` and more than `MAX_LIST_VALUES` values from lists. Each list is expanded
    /// once (later uses copy the result), so its problems are reported once.
    pub fn expand(&mut self, ctx: &mut Ctx, items: &Items, at: &Origin) -> Vec<Val> {
        self.expand_in(ctx, items, at, &mut Vec::new())
    }

    fn expand_in(
        &mut self,
        ctx: &mut Ctx,
        items: &Items,
        at: &Origin,
        stack: &mut Vec<String>,
    ) -> Vec<Val> {
        let mut out = Vec::new();
        for (i, item) in items.items.iter().enumerate() {
            let item_at = items.item_at(at, i);
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
            let Some(parts) = self.defs.get(name) else {
                let hint = self.expansion.known_lists.get_or_insert_with(|| {
                    let mut known: Vec<&str> = self.defs.keys().copied().collect();
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
            let parts = parts.clone();
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
                    let mut v = Vec::new();
                    for (list_at, list) in &parts {
                        v.extend(self.expand_in(ctx, list, list_at, stack));
                    }
                    let v: Rc<[Val]> = v.into();
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
}
