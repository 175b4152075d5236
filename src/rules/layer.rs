//! Layering: rule files are merged in the order given, and a later file may change what an
//! earlier one defined without copying it, in the spirit of Falco's `override:` — an entry of a
//! rule's name with `override: {KEY: replace|append}` and the new values, an entry with only
//! `enabled:` to switch a rule on or off, and `{items: [...], append: true}` (or `replace: true`)
//! for a list. The result is the effective rules, each value keeping where it was written, so
//! that errors point into the file that wrote it and `rules check` shows where each key came from.

use std::collections::HashMap;

use super::diag::{Ctx, Origin};
use super::raw::{Items, Mode, RawConds, RawFile, RawOpenMonitor, RawRule};
use crate::yaml_pos::Seg;

/// Keys other than conditions that an `override:` may name: those that hold lists (and so may be
/// appended to), and the others.
const LIST_KEYS: &[&str] = &["except", "tags"];
const SCALAR_KEYS: &[&str] = &["description", "severity", "enabled", "throttle", "output"];

/// How many names an error lists.
const MAX_NAMED: usize = 20;

/// One rule of the effective set, in the order of definitions.
pub(super) enum Entry<'a> {
    /// `open_monitor:`'s rule, `open_sensitive` (only `enabled:` can change it).
    OpenMonitor {
        at: Origin,
        m: &'a RawOpenMonitor,
        enabled: bool,
        /// Where a later entry set `enabled`, if one did.
        toggled: Option<Origin>,
    },
    Rule(Box<Layered>),
}

/// A rule after every later entry of its name was applied.
pub(super) struct Layered {
    /// The effective values (`description` and `severity` are set).
    pub rule: RawRule,
    /// The entry that defined it (`rules[i]`).
    pub at: Origin,
    /// Where each `except` block was written.
    pub except_at: Vec<Origin>,
    /// For each key given, the nodes that wrote its value (several when appended to).
    pub from: Vec<(&'static str, Vec<Origin>)>,
    /// A later entry changed it.
    pub changed: bool,
}

impl Layered {
    /// The node of key `key`: where its value was last written (under the defining entry if
    /// nothing wrote it).
    pub fn key_at(&self, key: &str) -> Origin {
        self.from
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, at)| at.last().cloned())
            .unwrap_or_else(|| self.at.key(key))
    }

    fn set_from(&mut self, key: &'static str, at: Origin, mode: Mode) {
        match self.from.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) if mode == Mode::Append => v.push(at),
            Some((_, v)) => *v = vec![at],
            None => self.from.push((key, vec![at])),
        }
    }
}

/// The keys an override may name.
fn known_keys() -> Vec<&'static str> {
    RawConds::default()
        .conditions()
        .into_iter()
        .map(|(k, _)| k)
        .chain(LIST_KEYS.iter().copied())
        .chain(SCALAR_KEYS.iter().copied())
        .collect()
}

/// The keys an entry gives besides `name` and `override`, in a fixed order.
fn given(r: &RawRule) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = r
        .conditions()
        .into_iter()
        .filter(|(_, i)| i.present)
        .map(|(k, _)| k)
        .collect();
    let others = [
        ("except", r.except.is_some()),
        ("tags", r.tags.present),
        ("description", r.description.is_some()),
        ("severity", r.severity.is_some()),
        ("enabled", r.enabled.is_some()),
        ("throttle", r.throttle.is_some()),
        ("output", r.output.is_some()),
    ];
    keys.extend(others.iter().filter(|(_, g)| *g).map(|(k, _)| *k));
    keys
}

/// "defined rules: a, b" (or "no rules are defined yet"), for errors about a missing name.
fn known(kind: &str, names: impl Iterator<Item = String>) -> String {
    let mut names: Vec<String> = names.collect();
    names.sort_unstable();
    match names.len() {
        0 => format!("no {kind}s are defined before it"),
        n if n > MAX_NAMED => format!(
            "defined {kind}s: {}, … ({n} in all)",
            names[..MAX_NAMED].join(", ")
        ),
        _ => format!("defined {kind}s: {}", names.join(", ")),
    }
}

/// The effective rules of `files`, merged in order, reporting every problem to `ctx`.
pub(super) fn rules<'a>(ctx: &mut Ctx, files: &'a [(usize, RawFile)]) -> Vec<Entry<'a>> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (src, f) in files {
        let root = Origin {
            src: *src,
            path: Vec::new(),
        };
        if let Some(m) = &f.open_monitor {
            let at = root.key("open_monitor");
            let name = "open_sensitive";
            match by_name.get(name) {
                Some(&first) => duplicate(ctx, &entries[first], name, &at),
                None => {
                    by_name.insert(name.to_owned(), entries.len());
                    entries.push(Entry::OpenMonitor {
                        at,
                        m,
                        enabled: true,
                        toggled: None,
                    });
                }
            }
        }
        for (i, r) in f.rules.iter().enumerate() {
            let at = root.key("rules").index(i);
            let name = &r.name.0;
            let keys = given(r);
            let toggle = keys == ["enabled"];
            let Some(&first) = by_name.get(name) else {
                if r.overrides.is_some() || toggle {
                    let what = if toggle {
                        "enable or disable"
                    } else {
                        "override"
                    };
                    let hint = known("rule", by_name.keys().cloned());
                    ctx.error(
                        &at.key("name"),
                        format!("no rule `{name}` to {what} ({hint})"),
                    );
                } else if let Some(l) = define(ctx, r, &at, &keys) {
                    by_name.insert(name.clone(), entries.len());
                    entries.push(Entry::Rule(Box::new(l)));
                }
                continue;
            };
            match (&mut entries[first], r.overrides.is_some()) {
                (Entry::OpenMonitor {
                    enabled, toggled, ..
                }, false)
                    if toggle =>
                {
                    *enabled = r.enabled == Some(true);
                    *toggled = Some(at.key("enabled"));
                }
                (Entry::Rule(l), false) if toggle => {
                    l.rule.enabled = r.enabled;
                    l.set_from("enabled", at.key("enabled"), Mode::Replace);
                    l.changed = true;
                }
                (Entry::Rule(l), true) => apply(ctx, l, r, &at, &keys),
                (Entry::OpenMonitor { .. }, true) => ctx.error(
                    &at.key("override"),
                    "rule `open_sensitive` comes from `open_monitor:`: only `enabled:` can change it (or edit its `open_monitor:`)",
                ),
                (e, false) => {
                    let e = &*e;
                    duplicate(ctx, e, name, &at.key("name"));
                }
            }
        }
    }
    entries
}

/// A second definition of a name, without `override:`.
fn duplicate(ctx: &mut Ctx, first: &Entry, name: &str, at: &Origin) {
    let first = match first {
        Entry::OpenMonitor { at, .. } => ctx.describe(at),
        Entry::Rule(l) => ctx.describe(&l.at.key("name")),
    };
    ctx.error(
        at,
        format!("duplicate rule name `{name}` (first defined at {first}); to change that rule from here, give the keys to change in `override:` (see \"Layering\" in docs/rules.md)"),
    );
}

/// A rule's definition: `description` and `severity` are required.
fn define(ctx: &mut Ctx, r: &RawRule, at: &Origin, keys: &[&'static str]) -> Option<Layered> {
    let mut ok = true;
    for (key, missing) in [
        ("description", r.description.is_none()),
        ("severity", r.severity.is_none()),
    ] {
        if missing {
            ctx.error(at, format!("missing field `{key}`"));
            ok = false;
        }
    }
    let except_at = (0..r.except.as_ref().map_or(0, Vec::len))
        .map(|j| at.key("except").index(j))
        .collect();
    ok.then(|| Layered {
        rule: r.clone(),
        at: at.clone(),
        except_at,
        from: keys.iter().map(|k| (*k, vec![at.key(k)])).collect(),
        changed: false,
    })
}

/// Applies an entry with `override:` (at `at`, giving `keys`) to the rule `l`.
fn apply(ctx: &mut Ctx, l: &mut Layered, r: &RawRule, at: &Origin, keys: &[&'static str]) {
    let ov_at = at.key("override");
    let overrides = &r.overrides.as_ref().expect("an override entry").0;
    if overrides.is_empty() {
        ctx.error(
            &ov_at,
            "`override:` names no keys: give `KEY: replace` or `KEY: append` for each key to change",
        );
    }
    for key in keys {
        if *key != "enabled" && !overrides.iter().any(|(k, _)| k == key) {
            ctx.error(
                &at.key(key),
                format!("`{key}` is given but `override:` does not name it: add `{key}: replace` (or `{key}: append` for a list)"),
            );
        }
    }
    if keys.contains(&"enabled") && !overrides.iter().any(|(k, _)| k == "enabled") {
        l.rule.enabled = r.enabled;
        l.set_from("enabled", at.key("enabled"), Mode::Replace);
    }
    for (key, mode) in overrides {
        let key_at = ov_at.key(key);
        let all = known_keys();
        let Some(key) = all.iter().copied().find(|k| k == key) else {
            ctx.error(
                &key_at,
                format!(
                    "unknown key `{key}` in `override:`: a rule has no such key (expected one of {})",
                    all.join(", ")
                ),
            );
            continue;
        };
        if !keys.contains(&key) {
            ctx.error(
                &key_at,
                format!(
                    "`{key}: {}` but this entry gives no `{key}`",
                    mode_name(*mode)
                ),
            );
            continue;
        }
        if *mode == Mode::Append && SCALAR_KEYS.contains(&key) {
            ctx.error(
                &key_at,
                format!("`{key}` can only be replaced (it is not a list)"),
            );
            continue;
        }
        let new_at = at.key(key);
        match key {
            "description" => l.rule.description = r.description.clone(),
            "severity" => l.rule.severity = r.severity,
            "enabled" => l.rule.enabled = r.enabled,
            "throttle" => l.rule.throttle = r.throttle.clone(),
            "output" => l.rule.output = r.output.clone(),
            "except" => {
                let blocks = r.except.clone().unwrap_or_default();
                let block_at = (0..blocks.len()).map(|j| new_at.index(j));
                match mode {
                    Mode::Replace => {
                        l.rule.except = Some(blocks);
                        l.except_at = block_at.collect();
                    }
                    Mode::Append => {
                        l.rule.except.get_or_insert_with(Vec::new).extend(blocks);
                        l.except_at.extend(block_at);
                    }
                }
            }
            _ => {
                let base_at = l.key_at(key);
                let (old, new) = if key == "tags" {
                    (&mut l.rule.tags, &r.tags)
                } else {
                    let old = l.rule.condition_mut(key).expect("a condition key");
                    let new = r.conditions().into_iter().find(|(k, _)| *k == key);
                    (old, new.expect("a condition key").1)
                };
                // An absent condition matches everything: adding values to it would narrow
                // the rule, which is what `replace` says.
                let narrows = key != "tags" && !key.starts_with("not_");
                if *mode == Mode::Append && !old.present && narrows {
                    ctx.error(
                        &key_at,
                        format!(
                            "rule `{}` has no `{key}` to append to: use `{key}: replace`",
                            r.name.0
                        ),
                    );
                    continue;
                }
                let old_val = std::mem::take(old);
                *old = match mode {
                    Mode::Replace => new.clone().placed_at(&new_at),
                    Mode::Append => old_val.appended(&base_at, new.clone(), &new_at),
                };
            }
        }
        l.set_from(key, new_at, *mode);
    }
    l.changed = true;
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Replace => "replace",
        Mode::Append => "append",
    }
}

/// The effective lists of `files`: each name's parts (where written, items), in order. A list
/// defined again is an error unless the later definition says `append: true` (its items are
/// added) or `replace: true` (they take the place of the earlier ones).
pub(super) fn lists<'a>(
    ctx: &mut Ctx,
    files: &'a [(usize, RawFile)],
) -> HashMap<&'a str, Vec<(Origin, &'a Items)>> {
    let mut lists: HashMap<&str, Vec<(Origin, &Items)>> = HashMap::new();
    let mut first_at: HashMap<&str, Origin> = HashMap::new();
    for (src, f) in files {
        for (name, def) in &f.lists.0 {
            let at = Origin {
                src: *src,
                path: vec![Seg::Key("lists".into()), Seg::Key(name.clone())],
            };
            let items_at = if def.mapping {
                at.key("items")
            } else {
                at.clone()
            };
            let change = if def.append && def.replace {
                ctx.error(&at, "give `append: true` or `replace: true`, not both");
                continue;
            } else if def.append {
                Some(Mode::Append)
            } else if def.replace {
                Some(Mode::Replace)
            } else if def.mapping {
                ctx.error(&at, "a list written as a mapping changes an earlier one: give `append: true` or `replace: true` (or write the items as a list)");
                continue;
            } else {
                None
            };
            match (lists.get_mut(name.as_str()), change) {
                (None, None) => {
                    first_at.insert(name, at);
                    lists.insert(name, vec![(items_at, &def.items)]);
                }
                (None, Some(mode)) => {
                    let hint = known("list", lists.keys().map(|k| (*k).to_owned()));
                    ctx.error(
                        &at,
                        format!(
                            "no list `{name}` to {} ({hint})",
                            match mode {
                                Mode::Append => "append to",
                                Mode::Replace => "replace",
                            }
                        ),
                    );
                }
                (Some(_), None) => {
                    let first = ctx.describe(&first_at[name.as_str()]);
                    ctx.error(
                        &at,
                        format!("list `{name}` is already defined at {first}; to change it from here, write `{name}: {{items: [...], append: true}}` (or `replace: true`)"),
                    );
                }
                (Some(parts), Some(Mode::Append)) => parts.push((items_at, &def.items)),
                (Some(parts), Some(Mode::Replace)) => *parts = vec![(items_at, &def.items)],
            }
        }
    }
    lists
}

#[cfg(test)]
mod tests {
    use crate::rules::tests::{ev, fires};
    use crate::rules::RuleSet;

    const BASE: &str = "lists:\n  secrets: [/etc/shadow]\nrules:\n  - name: r\n    description: d\n    severity: low\n    path: [$secrets, /etc/gshadow]\n    not_path: [/etc/shadow-]\n    tags: [a]\n";

    /// Loads `BASE` as base.yaml and `local` as local.yaml; errors with the directory cut off.
    fn layered(local: &str) -> Result<RuleSet, String> {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("base.yaml"), dir.path().join("local.yaml"));
        std::fs::write(&a, BASE).unwrap();
        std::fs::write(&b, local).unwrap();
        RuleSet::load(&[a, b]).map_err(|e| {
            let prefix = format!("{}/", dir.path().display());
            e.to_string().replace(&prefix, "")
        })
    }

    fn ok(local: &str) -> RuleSet {
        layered(local).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn override_replaces_a_condition() {
        let s = ok("rules:\n  - name: r\n    override: {path: replace}\n    path: /etc/passwd\n");
        assert!(fires(&s, &ev("/etc/passwd")));
        assert!(!fires(&s, &ev("/etc/shadow")) && !fires(&s, &ev("/etc/gshadow")));
    }

    #[test]
    fn override_appends_to_conditions_and_exceptions() {
        let s = ok("rules:\n  - name: r\n    override: {path: append, not_path: append, except: append}\n    path: [/etc/sudoers]\n    not_path: /etc/gshadow\n    except:\n      - uid: [0]\n");
        assert!(fires(&s, &ev("/etc/shadow")) && fires(&s, &ev("/etc/sudoers")));
        assert!(!fires(&s, &ev("/etc/gshadow")), "not_path appended");
        let mut root = ev("/etc/shadow");
        root.uid = 0;
        assert!(!fires(&s, &root), "the appended exception holds");
        // A new condition key by replace narrows the rule.
        let s = ok("rules:\n  - name: r\n    override: {uid: replace}\n    uid: [0]\n");
        assert!(fires(&s, &root) && !fires(&s, &ev("/etc/shadow")));
    }

    #[test]
    fn lists_are_appended_to_or_replaced_for_every_rule() {
        let s = ok("lists:\n  secrets: {append: true, items: [/etc/master.passwd]}\n");
        assert!(fires(&s, &ev("/etc/master.passwd")) && fires(&s, &ev("/etc/shadow")));
        let s = ok("lists:\n  secrets: {replace: true, items: [/etc/master.passwd]}\n");
        assert!(fires(&s, &ev("/etc/master.passwd")) && !fires(&s, &ev("/etc/shadow")));
    }

    #[test]
    fn enabled_false_by_name_turns_a_rule_off() {
        let s = ok("rules:\n  - {name: r, enabled: false}\n  - {name: other, description: d, severity: low, path: /x}\n");
        assert!(!s.rules()[0].enabled && !fires(&s, &ev("/etc/shadow")));
        assert_eq!(s.rules()[0].layers.last().unwrap().0, "enabled");
        assert!(
            s.rules()[1].layers.is_empty(),
            "a rule as defined has no layers"
        );
    }

    #[test]
    fn severity_output_and_tags_are_replaced_or_appended() {
        let s = ok("rules:\n  - name: r\n    override: {severity: replace, output: replace, tags: append}\n    severity: critical\n    output: \"%path read\"\n    tags: [b]\n");
        let r = &s.rules()[0];
        assert_eq!(r.severity, crate::rules::Severity::Critical);
        assert_eq!(r.tags, ["a", "b"]);
        assert!(r.output.is_some());
        let tags = &r.layers.iter().find(|(k, _)| *k == "tags").unwrap().1;
        assert!(
            tags.len() == 2
                && tags[0].ends_with("/base.yaml:9:11")
                && tags[1].ends_with("/local.yaml:6:11"),
            "{tags:?}"
        );
    }

    /// An error in a value another file added points into that file.
    #[test]
    fn errors_in_layered_values_point_at_the_file_that_wrote_them() {
        let e = layered(
            "rules:\n  - name: r\n    override: {path: append}\n    path: [/ok, relative]\n",
        )
        .unwrap_err();
        assert!(e.starts_with("local.yaml:4:17: rules[0].path[1]: "), "{e}");
        let e = layered("lists:\n  secrets: {append: true, items: [7]}\n").unwrap_err();
        assert!(
            e.starts_with("local.yaml:2:35: lists.secrets.items[0]: "),
            "{e}"
        );
    }

    #[test]
    fn layering_errors_say_what_is_wrong() {
        let cases = [
            ("rules:\n  - name: x\n    override: {severity: replace}\n    severity: low\n",
             "local.yaml:2:11: rules[0].name: no rule `x` to override (defined rules: r)"),
            ("rules:\n  - {name: x, enabled: false}\n",
             "local.yaml:2:12: rules[0].name: no rule `x` to enable or disable (defined rules: r)"),
            ("rules:\n  - name: r\n    override: {path: append}\n",
             "local.yaml:3:22: rules[0].override.path: `path: append` but this entry gives no `path`"),
            ("rules:\n  - name: r\n    override: {}\n    severity: low\n",
             "local.yaml:3:15: rules[0].override: `override:` names no keys"),
            ("rules:\n  - name: r\n    override: {comm: append}\n    comm: sh\n",
             "local.yaml:3:22: rules[0].override.comm: rule `r` has no `comm` to append to: use `comm: replace`"),
            ("rules:\n  - name: r\n    override: {severity: replace}\n    severity: low\n    path: /x\n",
             "local.yaml:5:11: rules[0].path: `path` is given but `override:` does not name it"),
            ("rules:\n  - name: r\n    override: {path: merge}\n    path: /x\n",
             "local.yaml:3:22: rules[0].override.path: unknown variant `merge`"),
            ("lists:\n  secrets: [/x]\n",
             "local.yaml:2:12: lists.secrets: list `secrets` is already defined at base.yaml:2:12; to change it from here"),
            ("lists:\n  secrets: {items: [/x]}\n",
             "local.yaml:2:12: lists.secrets: a list written as a mapping changes an earlier one"),
            ("rules:\n  - name: new\n    path: /x\n",
             "local.yaml:2:5: rules[0]: missing field `description`"),
        ];
        for (text, want) in cases {
            let e = layered(text).unwrap_err();
            assert!(e.starts_with(want), "want {want}\n got {e}");
        }
    }
}
