//! Reading rule files. serde_yaml checks syntax, keys and types and reports their positions itself;
//! the semantic checks that come later (unknown lists, bad globs, duplicate names…) and the rules'
//! `origin`s find their position in a `PosIndex`, built once per file when first needed.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{compile, Diagnostic, RuleSet, RulesError, Severity};

/// One value of a condition or a list, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
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
pub(crate) struct Items {
    pub present: bool,
    /// Written as a YAML sequence (positions of items are then `key[i]`).
    pub seq: bool,
    pub items: Vec<Item>,
}

impl Items {
    pub fn from_strs(values: &[String]) -> Items {
        Items {
            present: !values.is_empty(),
            seq: true,
            items: values.iter().map(|v| Item::Str(v.clone())).collect(),
        }
    }

    pub fn from_ints(values: &[u32]) -> Items {
        Items {
            present: !values.is_empty(),
            seq: true,
            items: values.iter().map(|v| Item::Int(i64::from(*v))).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
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
                })
            }
        }
        fn one(i: Item) -> Items {
            Items {
                present: true,
                seq: false,
                items: vec![i],
            }
        }
        d.deserialize_any(V)
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

#[derive(Debug, Default)]
pub(crate) struct RuleName(pub String);

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
pub(crate) struct Lists(pub Vec<(String, Items)>);

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
                    lists.push((name, map.next_value::<Items>()?));
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
            ancestor_pid, not_ancestor_pid
        ]);
    };
}

macro_rules! cond_struct {
    ($(#[$m:meta])* $name:ident { $($extra:tt)* } [$($key:ident),*]) => {
        $(#[$m])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
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

cond_keys!(cond_struct! RawRule {
    pub name: RuleName,
    #[serde(deserialize_with = "text")]
    pub description: String,
    pub severity: Severity,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub except: Vec<RawConds>,
    #[serde(default)]
    pub tags: Items,
    #[serde(default)]
    pub throttle: Option<RawThrottle>,
});

/// `throttle: {key: [..], window: DUR, max: N}`, checked in `compile` (positioned there).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThrottle {
    #[serde(default)]
    pub key: Items,
    pub window: Item,
    pub max: Item,
}

fn yes() -> bool {
    true
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
pub(crate) struct RawOpenMonitor {
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
pub(crate) struct RawFile {
    #[serde(default)]
    pub open_monitor: Option<RawOpenMonitor>,
    #[serde(default)]
    pub lists: Lists,
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// A step in a path to a YAML node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// Where a value came from: a source and the path to its node.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    pub src: usize,
    pub path: Vec<Seg>,
}

impl Origin {
    pub fn key(&self, k: &str) -> Origin {
        let mut o = self.clone();
        o.path.push(Seg::Key(k.to_owned()));
        o
    }

    pub fn index(&self, i: usize) -> Origin {
        let mut o = self.clone();
        o.path.push(Seg::Index(i));
        o
    }

    /// `rules[2].path[0]`, as serde_yaml writes paths.
    pub fn dotted(&self) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) if s.is_empty() => s.push_str(k),
                Seg::Key(k) => {
                    s.push('.');
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }
}

/// A rule file's name and text (`None` for rules built from command-line flags).
pub(crate) struct Source {
    pub name: String,
    pub text: Option<String>,
}

/// Collects diagnostics, positioning them in their sources.
pub(crate) struct Ctx {
    pub sources: Vec<Source>,
    pub diags: Vec<Diagnostic>,
    /// Node positions per source (by index in `sources`), built when first asked for.
    index: RefCell<HashMap<usize, PosIndex>>,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            sources: Vec::new(),
            diags: Vec::new(),
            index: RefCell::new(HashMap::new()),
        }
    }

    /// The position of the node at `at`, or of its nearest ancestor that exists.
    fn position(&self, at: &Origin) -> Option<(usize, usize)> {
        let text = self.sources[at.src].text.as_deref()?;
        let mut index = self.index.borrow_mut();
        let index = index.entry(at.src).or_default();
        (0..=at.path.len())
            .rev()
            .find_map(|n| index.get(text, &at.path[..n]))
    }

    /// Records an error about the node at `at`; the message is prefixed by the node's path.
    pub fn error(&mut self, at: &Origin, msg: impl fmt::Display) {
        let src = &self.sources[at.src];
        let (pos, message) = match &src.text {
            Some(_) => (self.position(at), format!("{}: {msg}", at.dotted())),
            // From the command line: name the flag.
            None => {
                let flag = at.path.iter().find_map(|s| match s {
                    Seg::Key(k) => Some(k.replace('_', "-")),
                    Seg::Index(_) => None,
                });
                let message = match flag {
                    Some(f) => format!("--{f}: {msg}"),
                    None => msg.to_string(),
                };
                (None, message)
            }
        };
        self.diags.push(Diagnostic {
            file: src.name.clone(),
            pos,
            message,
        });
    }

    /// `file:line:col` of a node (for "first defined at").
    pub fn describe(&self, at: &Origin) -> String {
        let name = &self.sources[at.src].name;
        match self.position(at) {
            Some((l, c)) => format!("{name}:{l}:{c}"),
            None => name.clone(),
        }
    }
}

/// The position of the node at `path`, or of its nearest ancestor that exists (one `locate` per
/// try: for tests and single look-ups; `PosIndex` answers many).
#[cfg(test)]
fn locate_best(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    (0..=path.len())
        .rev()
        .find_map(|n| locate(text, &path[..n]))
}

/// The positions of a YAML text's nodes, by path: what `locate` finds, for every node, without
/// re-reading the text per node (that made loading N rules O(N²): 10,000 rules took minutes).
///
/// serde_yaml tells a node's position only in an error raised while deserializing it, and an
/// error usually leaves its deserializer mid-node. Two errors do not: one raised by a scalar (the
/// scalar is already consumed), and serde_yaml's own "invalid length" error, raised after a
/// mapping or sequence whose visitor read none of its entries has been skipped to its end. So a
/// pass for depth D visits every container shallower than D entry by entry, makes each scalar on
/// the way and each container at depth D raise its error, and catches the error in the parent,
/// which records the position and carries on. One pass places every node at its depth (and the
/// scalars above): a rule's origin, `rules[i]`, takes one pass for all rules, and each other depth
/// asked for (by errors) one more. The errors are read through `Display` (a visitor only sees its
/// deserializer's generic error type), whose text ends in "at line L column C" (with nothing at
/// line 1, column 1).
///
/// Nodes the passes do not place (the root, empty containers; anything, if a pass meets an error
/// of its own, such as a tag) fall back to `locate`, which is exact but reads the text per node.
#[derive(Debug, Default)]
pub(crate) struct PosIndex {
    /// Node path → 1-based line and column.
    pos: HashMap<Vec<Seg>, (usize, usize)>,
    /// Containers that exist but are empty (not placed by the passes).
    empty: HashSet<Vec<Seg>>,
    /// The depths that a pass has placed.
    passes: HashSet<usize>,
    /// A pass failed: use `locate` for everything.
    broken: bool,
    /// `locate`'s answers (the root, empty containers, or everything once broken).
    located: HashMap<Vec<Seg>, Option<(usize, usize)>>,
}

impl PosIndex {
    /// The position of the node at `path` in `text` (`None` if there is no such node).
    pub(crate) fn get(&mut self, text: &str, path: &[Seg]) -> Option<(usize, usize)> {
        if !path.is_empty() && !self.broken {
            if let Some(p) = self.pos.get(path) {
                return Some(*p);
            }
            if self.passes.insert(path.len()) {
                self.pass(text, path.len());
                if let Some(p) = self.pos.get(path) {
                    return Some(*p);
                }
            }
            if !self.broken && !self.empty.contains(path) {
                return None;
            }
        }
        *self
            .located
            .entry(path.to_vec())
            .or_insert_with(|| locate(text, path))
    }

    fn pass(&mut self, text: &str, depth: usize) {
        let mut state = PassState {
            index: self,
            depth,
            path: Vec::new(),
            marked: false,
            empty: false,
        };
        let de = serde_yaml::Deserializer::from_str(text);
        if PassNode(&mut state).deserialize(de).is_err() {
            self.broken = true;
        }
    }
}

const POSITION_MARK: &str = "\u{0}open-forensics-position";

struct PassState<'i> {
    index: &'i mut PosIndex,
    /// The depth of the containers to place.
    depth: usize,
    /// The path of the node being visited.
    path: Vec<Seg>,
    /// The node just visited raised its error to tell its position.
    marked: bool,
    /// The node just visited is an empty container that was not placed yet.
    empty: bool,
}

impl PassState<'_> {
    /// Records what the child at `self.path` told by `result`; `Err` for a real error.
    fn child<E: de::Error>(&mut self, result: Result<(), E>) -> Result<(), E> {
        let marked = std::mem::take(&mut self.marked);
        let empty = std::mem::take(&mut self.empty);
        match result {
            Ok(()) => {
                if empty {
                    self.index.empty.insert(self.path.clone());
                }
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                if marked && (msg.contains(POSITION_MARK) || msg.contains("invalid length")) {
                    let pos = position_in_message(&msg);
                    self.index.pos.insert(self.path.clone(), pos);
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// A scalar whose position is wanted (the root's is not: it has no parent to catch it).
    fn wanted(&self) -> bool {
        !self.path.is_empty() && !self.index.pos.contains_key(&self.path)
    }
}

/// The position at the end of a serde_yaml error message: "… at line L column C", or nothing
/// for line 1, column 1.
fn position_in_message(msg: &str) -> (usize, usize) {
    msg.rfind(" at line ")
        .and_then(|i| {
            let (l, c) = msg[i + " at line ".len()..].split_once(" column ")?;
            Some((l.parse().ok()?, c.parse().ok()?))
        })
        .unwrap_or((1, 1))
}

struct PassNode<'s, 'i>(&'s mut PassState<'i>);

impl<'de> DeserializeSeed<'de> for PassNode<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl PassNode<'_, '_> {
    fn leaf<E: de::Error>(self) -> Result<(), E> {
        if self.0.wanted() {
            self.0.marked = true;
            Err(E::custom(POSITION_MARK))
        } else {
            Ok(())
        }
    }

    /// For a container at the depth being placed: to read nothing, so that serde_yaml skips the
    /// entries and fails with "invalid length" at the container, unless it is empty.
    fn placing(&mut self) -> bool {
        let st = &mut *self.0;
        if st.path.len() < st.depth {
            return false;
        }
        st.empty = true;
        st.marked = true;
        true
    }
}

impl<'de> Visitor<'de> for PassNode<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        if self.placing() {
            return Ok(());
        }
        let st = self.0;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            // Like `locate`, address string keys only, and the first of equal keys.
            match key.as_str() {
                Some(k) if seen.insert(k.to_owned()) => {
                    st.path.push(Seg::Key(k.to_owned()));
                    let r = map.next_value_seed(PassNode(st));
                    let r = st.child(r);
                    st.path.pop();
                    r?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        if self.placing() {
            return Ok(());
        }
        let st = self.0;
        for i in 0.. {
            st.path.push(Seg::Index(i));
            let r = seq.next_element_seed(PassNode(st));
            let r = match r {
                Ok(None) => {
                    st.path.pop();
                    break;
                }
                Ok(Some(())) => st.child(Ok::<(), A::Error>(())),
                Err(e) => st.child(Err(e)),
            };
            st.path.pop();
            r?;
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
}

const LOCATE_MARK: &str = "\u{0}open-forensics-locate";

/// Finds the line and column (1-based) of the node at `path` by deserializing `text` with a seed
/// that fails on reaching that node: serde_yaml attaches the node's position to the error. Exact for
/// any YAML layout (flow or block, anchors resolve to the anchored node), with no second parser.
pub(crate) fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let de = serde_yaml::Deserializer::from_str(text);
    match Seek(path).deserialize(de) {
        Err(e) if e.to_string().contains(LOCATE_MARK) => {
            e.location().map(|l| (l.line(), l.column()))
        }
        _ => None,
    }
}

struct Seek<'p>(&'p [Seg]);

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.0.split_first() else {
            return Err(de::Error::custom(LOCATE_MARK));
        };
        let Seg::Key(want) = first else {
            return Ok(());
        };
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            if key.as_str() == Some(want) {
                return map.next_value_seed(Seek(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.0.split_first() else {
            return Err(de::Error::custom(LOCATE_MARK));
        };
        let Seg::Index(want) = first else {
            return Ok(());
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Seek(rest)).map(|_| ())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
}

impl Seek<'_> {
    fn leaf<E: de::Error>(&self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(LOCATE_MARK))
        } else {
            Ok(())
        }
    }
}

/// A serde_yaml error as a diagnostic: its position, and its message without the trailing
/// "at line L column C" that the position already says.
fn yaml_diag(file: &str, e: &serde_yaml::Error) -> Diagnostic {
    let pos = e.location().map(|l| (l.line(), l.column()));
    let mut message = e.to_string();
    if let Some((l, c)) = pos {
        message = message.replacen(&format!(" at line {l} column {c}"), "", 1);
    }
    Diagnostic {
        file: file.to_owned(),
        pos,
        message,
    }
}

/// Parses one file; an empty document is an error.
fn parse(name: &str, text: &str) -> Result<RawFile, Diagnostic> {
    let empty = || Diagnostic {
        file: name.to_owned(),
        pos: Some((1, 1)),
        message: "empty rule file: expected a mapping with `rules`, `lists` or `open_monitor`"
            .to_owned(),
    };
    match serde_yaml::from_str::<Option<RawFile>>(text) {
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err(empty()),
        Err(e) if e.to_string().starts_with("EOF while parsing") => Err(empty()),
        Err(e) => Err(yaml_diag(name, &e)),
    }
}

pub(crate) fn load_files(paths: &[PathBuf]) -> Result<RuleSet, RulesError> {
    let mut inputs = Vec::with_capacity(paths.len());
    for p in paths {
        let text = std::fs::read(p).map_err(|source| RulesError::Io {
            path: p.clone(),
            source,
        })?;
        let name = p.display().to_string();
        match String::from_utf8(text) {
            Ok(t) => inputs.push((name, t)),
            Err(e) => {
                return Err(RulesError::Invalid(vec![Diagnostic {
                    file: name,
                    pos: None,
                    message: format!("not UTF-8 text ({e})"),
                }]))
            }
        }
    }
    load_texts(inputs)
}

pub(crate) fn load_texts(inputs: Vec<(String, String)>) -> Result<RuleSet, RulesError> {
    if inputs.is_empty() {
        return Err(RulesError::Invalid(vec![Diagnostic {
            file: "rules".to_owned(),
            pos: None,
            message: "no rule files given".to_owned(),
        }]));
    }
    let mut ctx = Ctx::new();
    let mut files = Vec::new();
    for (name, text) in inputs {
        let parsed = parse(&name, &text);
        ctx.sources.push(Source {
            name,
            text: Some(text),
        });
        match parsed {
            Ok(f) => files.push((ctx.sources.len() - 1, f)),
            Err(d) => ctx.diags.push(d),
        }
    }
    // A file that does not parse may define lists the others use: checking further would only
    // add noise.
    if !ctx.diags.is_empty() {
        return Err(RulesError::Invalid(ctx.diags));
    }
    let set = compile::build(&mut ctx, &files);
    if ctx.diags.is_empty() {
        Ok(set)
    } else {
        Err(RulesError::Invalid(ctx.diags))
    }
}

/// Command-line filters of `query`, as one rule: every given filter must hold.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub pid: Vec<u32>,
    pub ppid: Vec<u32>,
    pub uid: Vec<u32>,
    pub gid: Vec<u32>,
    /// Exact names or globs.
    pub comm: Vec<String>,
    /// Path patterns, as in rule files: exact, `dir/`, or glob.
    pub path: Vec<String>,
    pub syscall: Vec<String>,
    pub access: Vec<String>,
    /// `success`, `failure` or errno names.
    pub result: Vec<String>,
    /// Executable path patterns (as `path`).
    pub exe: Vec<String>,
    /// Container id globs, or `host`.
    pub container: Vec<String>,
    /// User names (or globs).
    pub user: Vec<String>,
    /// A process and its descendants: a pid, or an executable path pattern.
    pub ancestor: Option<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.pid.is_empty()
            && self.ppid.is_empty()
            && self.uid.is_empty()
            && self.gid.is_empty()
            && self.comm.is_empty()
            && self.path.is_empty()
            && self.syscall.is_empty()
            && self.access.is_empty()
            && self.result.is_empty()
            && self.exe.is_empty()
            && self.container.is_empty()
            && self.user.is_empty()
            && self.ancestor.is_none()
    }
}

pub(crate) fn load_filter(name: &str, f: &Filter) -> Result<RuleSet, RulesError> {
    let conds = RawConds {
        pid: Items::from_ints(&f.pid),
        ppid: Items::from_ints(&f.ppid),
        uid: Items::from_ints(&f.uid),
        gid: Items::from_ints(&f.gid),
        comm: Items::from_strs(&f.comm),
        path: Items::from_strs(&f.path),
        syscall: Items::from_strs(&f.syscall),
        access: Items::from_strs(&f.access),
        result: Items::from_strs(&f.result),
        exe: Items::from_strs(&f.exe),
        container: Items::from_strs(&f.container),
        user: Items::from_strs(&f.user),
        ..RawConds::default()
    };
    // `--ancestor X`: the process X (by pid or exe) or any of its descendants, as two rules of
    // which either may match.
    let alternatives = match &f.ancestor {
        None => vec![conds],
        Some(a) => {
            let (own, up) = match a.parse::<u32>() {
                Ok(pid) => (
                    RawConds {
                        pid: Items::from_ints(&[pid]),
                        ..RawConds::default()
                    },
                    RawConds {
                        ancestor_pid: Items::from_ints(&[pid]),
                        ..RawConds::default()
                    },
                ),
                Err(_) => (
                    RawConds {
                        exe: Items::from_strs(std::slice::from_ref(a)),
                        ..RawConds::default()
                    },
                    RawConds {
                        ancestor_exe: Items::from_strs(std::slice::from_ref(a)),
                        ..RawConds::default()
                    },
                ),
            };
            vec![conds.merged(own), conds.merged(up)]
        }
    };
    let mut ctx = Ctx::new();
    ctx.sources.push(Source {
        name: "command line".to_owned(),
        text: None,
    });
    let set = compile::build_single(&mut ctx, name, &alternatives);
    if ctx.diags.is_empty() {
        Ok(set)
    } else {
        Err(RulesError::Invalid(ctx.diags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Seg {
        Seg::Key(s.to_owned())
    }

    #[test]
    fn locate_finds_block_and_flow_nodes() {
        let text =
            "rules:\n  - name: a\n    path: [/x, \"/y\"]\n  - name: b\n    comm:\n      - sh\n";
        assert_eq!(locate(text, &[k("rules")]), Some((2, 3)));
        assert_eq!(
            locate(text, &[k("rules"), Seg::Index(0), k("name")]),
            Some((2, 11))
        );
        assert_eq!(
            locate(text, &[k("rules"), Seg::Index(0), k("path"), Seg::Index(1)]),
            Some((3, 16))
        );
        assert_eq!(
            locate(text, &[k("rules"), Seg::Index(1), k("comm"), Seg::Index(0)]),
            Some((6, 9))
        );
        assert_eq!(locate(text, &[k("rules"), Seg::Index(5)]), None);
        assert_eq!(
            locate_best(text, &[k("rules"), Seg::Index(1), k("nope")]),
            Some((4, 5))
        );
    }

    fn all_paths(v: &serde_yaml::Value, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        out.push(path.clone());
        match v {
            serde_yaml::Value::Mapping(m) => {
                for (k, v) in m {
                    if let Some(k) = k.as_str() {
                        path.push(Seg::Key(k.to_owned()));
                        all_paths(v, path, out);
                        path.pop();
                    }
                }
            }
            serde_yaml::Value::Sequence(s) => {
                for (i, v) in s.iter().enumerate() {
                    path.push(Seg::Index(i));
                    all_paths(v, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// The index places every node where `locate` does, and knows which nodes do not exist.
    #[test]
    fn position_index_agrees_with_locate() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/rules");
        let mut texts = vec![
            "rules:\n  - name: a\n    path: [/x, \"/y\"]\n  - name: b\n    comm:\n      - sh\n"
                .to_owned(),
            // Flow and block, empty containers, anchors and aliases, comments, quoted and
            // non-string keys, multi-line scalars, a duplicate key.
            "# c\nlists: {a: [], b: {}, c: &x [1, {k: v}], d: *x}\nrules:\n- &r\n  name: n\n  \"q k\": |\n    text\n  7: seven\n  e: []\n  f: {}\n- *r\n- [[[deep]], {}]\n- 'x'\n- k: 1\n  k: 2\n"
                .to_owned(),
            "[a, [b, c], {d: e}]".to_owned(),
            "just a scalar".to_owned(),
        ];
        for f in ["full.yaml", "poc.yaml"] {
            texts.push(std::fs::read_to_string(format!("{fixtures}/{f}")).unwrap());
        }
        for text in &texts {
            let mut paths = Vec::new();
            // serde_yaml rejects the duplicate key in a `Value`: compare without it.
            let value_text = text.replace("- k: 1\n  k: 2\n", "- k: 1\n");
            let v: serde_yaml::Value = serde_yaml::from_str(&value_text).unwrap();
            all_paths(&v, &mut Vec::new(), &mut paths);
            assert!(paths.len() > 1 || text == "just a scalar");
            let mut index = PosIndex::default();
            for p in &paths {
                assert_eq!(index.get(text, p), locate(text, p), "{p:?} in {text}");
                for extra in [k("nope"), Seg::Index(99)] {
                    let mut q = p.clone();
                    q.push(extra);
                    assert_eq!(index.get(text, &q), locate(text, &q), "{q:?} in {text}");
                }
            }
            assert!(!index.broken, "{text}");
        }
    }

    #[test]
    fn serde_errors_carry_positions() {
        let d = parse("f.yaml", "rules:\n  - name: a\n    sevrity: high\n").unwrap_err();
        assert_eq!(d.pos, Some((3, 5)), "{d}");
        assert!(d.message.contains("unknown field `sevrity`"), "{d}");
        assert!(!d.message.contains("at line"), "{d}");
    }

    #[test]
    fn empty_files_are_errors() {
        assert!(parse("f", "").unwrap_err().message.contains("empty"));
        assert!(parse("f", "# just a comment\n")
            .unwrap_err()
            .message
            .contains("empty"));
    }
}
