//! Where a YAML node is: its line and column, by its path of keys and indexes. serde_yaml tells a
//! node's position only in an error raised while deserializing that node, so both ways here make
//! the wanted node fail on purpose: `locate` for one node, `PosIndex` for many. Used by the rule
//! loader and the config file (one index per file); it depends on nothing else in the crate.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A step in a path to a YAML node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
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
}
