//! The rule file's syntax: what serde_yaml reads it into. serde_yaml checks syntax, keys and types
//! here and positions its errors itself; names are checked inside their visitors for the same
//! reason. Everything else is checked by the builder.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::diag::Origin;
use super::rule::Severity;

/// One value of a condition or a list, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Item {
    Str(String),
    Int(i64),
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Str(s) => f.write_str(s),
            Item::Int(i) => write!(f, "{i}"),
        }
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an integer")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
        Ok(Item::Str(v.to_owned()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Item, E> {
        Ok(Item::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item, E> {
        i64::try_from(v)
            .map(Item::Int)
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
}

/// The value of a condition key: one item or a list of them. `present` tells an absent key from
/// an empty list.
#[derive(Clone, Debug, Default)]
pub(super) struct Items {
    pub present: bool,
    /// Written as a YAML sequence (positions of items are then `key[i]`).
    pub seq: bool,
    pub items: Vec<Item>,
    /// Set by layering (`layer.rs`) on a value another entry replaced or appended to: where the
    /// key and each item were written, as they may lie in several files.
    pub placed: Option<Placed>,
}

/// Where a layered value's key and items were written.
#[derive(Clone, Debug)]
pub(super) struct Placed {
    pub key: Origin,
    pub items: Vec<Origin>,
}

impl Items {
    /// The node of this value's key, `key` under `parent` unless layering placed it elsewhere.
    pub fn key_at(&self, parent: &Origin, key: &str) -> Origin {
        match &self.placed {
            Some(p) => p.key.clone(),
            None => parent.key(key),
        }
    }

    /// The node of item `i`, its key's node being `key_at`.
    pub fn item_at(&self, key_at: &Origin, i: usize) -> Origin {
        match &self.placed {
            Some(p) => p.items[i].clone(),
            None if self.seq => key_at.index(i),
            None => key_at.clone(),
        }
    }

    /// This value with every node placed, its key being at `key_at`.
    pub fn placed_at(mut self, key_at: &Origin) -> Items {
        if self.placed.is_none() {
            let items = (0..self.items.len())
                .map(|i| self.item_at(key_at, i))
                .collect();
            self.placed = Some(Placed {
                key: key_at.clone(),
                items,
            });
        }
        self
    }

    /// This value (placed) with `more`'s items after its own.
    pub fn appended(self, key_at: &Origin, more: Items, more_at: &Origin) -> Items {
        if !self.present {
            return more.placed_at(more_at);
        }
        let mut a = self.placed_at(key_at);
        let b = more.placed_at(more_at);
        a.present = true;
        a.seq = true;
        a.items.extend(b.items);
        if let (Some(pa), Some(pb)) = (&mut a.placed, b.placed) {
            pa.items.extend(pb.items);
        }
        a
    }

    pub fn from_strs(values: &[String]) -> Items {
        Items {
            present: !values.is_empty(),
            seq: true,
            items: values.iter().map(|v| Item::Str(v.clone())).collect(),
            placed: None,
        }
    }

    pub fn from_ints(values: &[u32]) -> Items {
        Items {
            present: !values.is_empty(),
            seq: true,
            items: values.iter().map(|v| Item::Int(i64::from(*v))).collect(),
            placed: None,
        }
    }
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemsVisitor)
    }
}

struct ItemsVisitor;

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = Items;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an integer, or a list of them")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Items, E> {
        Ok(one(ItemVisitor.visit_str(v)?))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Items, E> {
        Ok(one(ItemVisitor.visit_i64(v)?))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Items, E> {
        Ok(one(ItemVisitor.visit_u64(v)?))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
        let mut items = Vec::new();
        while let Some(i) = seq.next_element::<Item>()? {
            items.push(i);
        }
        Ok(Items {
            present: true,
            seq: true,
            items,
            placed: None,
        })
    }
}

fn one(i: Item) -> Items {
    Items {
        present: true,
        seq: false,
        items: vec![i],
        placed: None,
    }
}

/// Names of rules and lists: they appear on command lines and in alerts.
fn check_name(kind: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {kind} name {name:?}: expected letters, digits, `_`, `-`, `.` or `:`"
        ))
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct RuleName(pub String);

impl<'de> Deserialize<'de> for RuleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `any`, not `str`: serde_yaml would hand `42` or `true` to `visit_str` as text.
        d.deserialize_any(NameVisitor {
            kind: "rule",
            seen: None,
        })
        .map(RuleName)
    }
}

/// Checks a name inside the visitor, so that serde_yaml positions the error at the name itself.
struct NameVisitor<'a> {
    kind: &'static str,
    /// Names already seen in this mapping (for lists).
    seen: Option<&'a mut HashSet<String>>,
}

impl<'de> Visitor<'de> for NameVisitor<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} name", self.kind)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        check_name(self.kind, v).map_err(E::custom)?;
        if let Some(seen) = self.seen {
            if !seen.insert(v.to_owned()) {
                return Err(E::custom(format!(
                    "{} `{v}` is defined twice in this file",
                    self.kind
                )));
            }
        }
        Ok(v.to_owned())
    }
}

/// `lists:`, in file order; a name defined twice in one file is an error at the second key.
#[derive(Debug, Default)]
pub(super) struct Lists(pub Vec<(String, ListDef)>);

/// A list's definition: its items, or, to change a list an earlier file defined,
/// `{items: [...], append: true}` or `{items: [...], replace: true}` (checked by `layer.rs`).
#[derive(Debug)]
pub(super) struct ListDef {
    pub items: Items,
    pub append: bool,
    pub replace: bool,
    /// Written as a mapping: the items are under `items`.
    pub mapping: bool,
}

/// The mapping form of a list definition.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListMap {
    items: Items,
    #[serde(default)]
    append: bool,
    #[serde(default)]
    replace: bool,
}

impl<'de> Deserialize<'de> for ListDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ListDef;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of values, or a mapping with `items` and `append: true` or `replace: true`")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ListDef, E> {
                ItemsVisitor.visit_str(v).map(plain)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ListDef, E> {
                ItemsVisitor.visit_i64(v).map(plain)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ListDef, E> {
                ItemsVisitor.visit_u64(v).map(plain)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ListDef, A::Error> {
                ItemsVisitor.visit_seq(seq).map(plain)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ListDef, A::Error> {
                let m = ListMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ListDef {
                    items: m.items,
                    append: m.append,
                    replace: m.replace,
                    mapping: true,
                })
            }
        }
        fn plain(items: Items) -> ListDef {
            ListDef {
                items,
                append: false,
                replace: false,
                mapping: false,
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Lists {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lists;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of list names to lists of values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lists, A::Error> {
                let mut seen = HashSet::new();
                let mut lists = Vec::new();
                while let Some(name) = map.next_key_seed(ListName(&mut seen))? {
                    lists.push((name, map.next_value::<ListDef>()?));
                }
                Ok(Lists(lists))
            }
        }
        d.deserialize_map(V)
    }
}

/// Deserializes a list name, failing at the key itself (so the error points at it).
struct ListName<'a>(&'a mut HashSet<String>);

impl<'de> DeserializeSeed<'de> for ListName<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(NameVisitor {
            kind: "list",
            seen: Some(self.0),
        })
    }
}

/// Lists every condition key once; `$callback!` receives them after its own arguments.
macro_rules! cond_keys {
    ($callback:ident! $($args:tt)*) => {
        $callback!($($args)* [
            path, path_prefix, not_path, not_path_prefix, comm, not_comm, exe, not_exe,
            uid, not_uid, gid, not_gid, pid, not_pid, ppid, not_ppid,
            syscall, not_syscall, access, not_access, result, not_result,
            cmdline, not_cmdline, parent_exe, not_parent_exe, parent_comm, not_parent_comm,
            ancestor_exe, not_ancestor_exe, ancestor_comm, not_ancestor_comm,
            container, not_container, user, not_user, euid, not_euid, auid, not_auid,
            ancestor_pid, not_ancestor_pid, op, not_op, old_path, not_old_path,
            mode_set, not_mode_set, parent_cmdline, not_parent_cmdline, cwd, not_cwd,
            tty, not_tty, proc_age, not_proc_age, raw_path, not_raw_path
        ]);
    };
}

macro_rules! cond_struct {
    ($(#[$m:meta])* $name:ident { $($extra:tt)* } [$($key:ident),*]) => {
        $(#[$m])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct $name {
            $($extra)*
            $(#[serde(default)] pub $key: Items,)*
        }

        impl $name {
            /// Every condition key with its value (absent ones have `present == false`).
            pub fn conditions(&self) -> Vec<(&'static str, &Items)> {
                vec![$((stringify!($key), &self.$key)),*]
            }
        }
    };
}

cond_keys!(cond_struct! #[derive(Default, Clone)] RawConds {});

macro_rules! merge_conds {
    ([$($key:ident),*]) => {
        impl RawConds {
            /// These conditions with `other`'s added (a key given in both takes `other`'s).
            pub fn merged(&self, other: RawConds) -> RawConds {
                RawConds {
                    $($key: if other.$key.present { other.$key } else { self.$key.clone() },)*
                }
            }
        }
    };
}

cond_keys!(merge_conds!);

// `description` and `severity` are required of a rule's definition, not of an entry that changes
// one (`layer.rs` checks which it is).
cond_keys!(cond_struct! #[derive(Clone)] RawRule {
    pub name: RuleName,
    #[serde(default, deserialize_with = "some_text")]
    pub description: Option<String>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub except: Option<Vec<RawConds>>,
    /// `override: {KEY: replace|append, ...}`: this entry changes the earlier rule of its name.
    #[serde(default, rename = "override")]
    pub overrides: Option<Overrides>,
    #[serde(default)]
    pub tags: Items,
    #[serde(default)]
    pub throttle: Option<RawThrottle>,
    /// `output:`, a template checked by the builder (positioned there).
    #[serde(default, deserialize_with = "some_text")]
    pub output: Option<String>,
});

macro_rules! condition_mut {
    ([$($key:ident),*]) => {
        impl RawRule {
            /// The value of condition key `key`, if there is such a key (for `override:`).
            pub fn condition_mut(&mut self, key: &str) -> Option<&mut Items> {
                match key {
                    $(stringify!($key) => Some(&mut self.$key),)*
                    _ => None,
                }
            }
        }
    };
}

cond_keys!(condition_mut!);

/// How an `override:` changes a key: its value replaces the earlier one, or is added to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Mode {
    Replace,
    Append,
}

/// `override:`'s keys and modes, in file order (the keys are checked by `layer.rs`).
#[derive(Clone, Debug, Default)]
pub(super) struct Overrides(pub Vec<(String, Mode)>);

impl<'de> Deserialize<'de> for Overrides {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Overrides;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of rule keys to `replace` or `append`")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Overrides, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    keys.push((k, map.next_value::<Mode>()?));
                }
                Ok(Overrides(keys))
            }
        }
        d.deserialize_map(V)
    }
}

/// `throttle: {key: [..], window: DUR, max: N}`, checked by the builder (positioned there).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThrottle {
    #[serde(default)]
    pub key: Items,
    pub window: Item,
    pub max: Item,
}

/// An optional string (see [`text`]).
fn some_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d).map(Some)
}

/// A string, and only a string (serde_yaml would turn `42` or `true` into text for a `String`).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
    }
    d.deserialize_any(V)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOpenMonitor {
    #[serde(default)]
    pub sensitive_paths: Items,
    #[serde(default)]
    pub allow_comm: Items,
    #[serde(default)]
    pub deny_comm: Items,
    #[serde(default)]
    pub ignore_path_prefixes: Items,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub open_monitor: Option<RawOpenMonitor>,
    #[serde(default)]
    pub lists: Lists,
    #[serde(default)]
    pub rules: Vec<RawRule>,
}
