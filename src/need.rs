//! What a reading needs an event to have, in the terms store summaries answer
//! (`store::Summary`): the predicate segments and blocks are pruned by, which a rule set compiles
//! to (`RuleSet::need`) and the SQL tables build from their constraints. A reader that cannot say
//! (a condition summaries do not record) asks for [`Need::all`]; pruning must never drop an event
//! the reading would have kept.

/// A value summaries record. Paths are one namespace: `Path` is any of an event's `path`,
/// `old_path` and `alias_of`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// An exact path (or old path, or watched path an open is an alias of).
    Path(Box<[u8]>),
    /// A directory prefix ending in `/` of such a path (see [`Key::path_prefix`]).
    PathDir(Box<[u8]>),
    /// The opener's executable (`Process::exe`).
    Exe(Box<[u8]>),
    /// A directory prefix of the executable.
    ExeDir(Box<[u8]>),
    Pid(u32),
    Uid(u32),
    /// The opener's container id.
    Container(Box<[u8]>),
}

/// How many directory levels of a path are recorded as `PathDir`/`ExeDir` keys: a deeper literal
/// prefix is looked up by its first `DIR_LEVELS` levels (still a true prefix).
pub const DIR_LEVELS: usize = 8;

impl Key {
    /// The key for "some path starts with `prefix`" (a prefix pattern, or the literal start of a
    /// glob): its directory part, at most [`DIR_LEVELS`] deep. `None` when that part is `/` or
    /// empty, which every path has: nothing to prune by.
    pub fn path_prefix(prefix: &[u8]) -> Option<Key> {
        dir_prefix(prefix).map(|d| Key::PathDir(d.into()))
    }

    /// As [`Key::path_prefix`], for executables.
    pub fn exe_prefix(prefix: &[u8]) -> Option<Key> {
        dir_prefix(prefix).map(|d| Key::ExeDir(d.into()))
    }
}

/// The directory prefixes (ending in `/`, after the leading `/`) of `path` a summary records:
/// `/etc/ssh/sshd_config` → `/etc/`, `/etc/ssh/`.
pub(crate) fn dirs_of(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.iter()
        .enumerate()
        .filter(|(_, &b)| b == b'/')
        .map(|(i, _)| &path[..=i])
        .filter(|d| d.len() > 1)
        .take(DIR_LEVELS)
}

/// The longest recorded directory prefix that every string starting with `prefix` has.
fn dir_prefix(prefix: &[u8]) -> Option<&[u8]> {
    let end = prefix.iter().rposition(|&b| b == b'/')?;
    dirs_of(&prefix[..=end]).last()
}

/// One condition of an alternative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    /// The event has one of these keys.
    AnyKey(Vec<Key>),
    /// The event's operation is one of these (bits `1 << Op::code()`).
    Ops(u32),
    /// The event succeeded (`ok`) or failed (`failed`), as allowed.
    Result { ok: bool, failed: bool },
}

/// Events a reading may want: those satisfying every term of any one alternative.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Need {
    /// `None`: any event (nothing can be pruned).
    any_of: Option<Vec<Vec<Term>>>,
}

impl Need {
    /// Every event may be wanted: no pruning.
    pub fn all() -> Need {
        Need { any_of: None }
    }

    /// Events satisfying all terms of at least one alternative. An alternative without terms
    /// wants every event; no alternatives at all, none.
    pub fn any_of(alternatives: Vec<Vec<Term>>) -> Need {
        if alternatives.iter().any(Vec::is_empty) {
            return Need::all();
        }
        Need {
            any_of: Some(alternatives),
        }
    }

    /// Whether nothing can be pruned.
    pub fn is_all(&self) -> bool {
        self.any_of.is_none()
    }

    pub fn alternatives(&self) -> Option<&[Vec<Term>]> {
        self.any_of.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_prefixes_are_directories_a_prefix_guarantees() {
        let dirs: Vec<&[u8]> = dirs_of(b"/etc/ssh/sshd_config").collect();
        assert_eq!(dirs, [&b"/etc/"[..], b"/etc/ssh/"]);
        assert_eq!(
            Key::path_prefix(b"/etc/ss"),
            Some(Key::PathDir(b"/etc/"[..].into()))
        );
        assert_eq!(
            Key::path_prefix(b"/etc/ssh/"),
            Some(Key::PathDir(b"/etc/ssh/"[..].into()))
        );
        assert_eq!(Key::path_prefix(b"/et"), None);
        assert_eq!(Key::path_prefix(b"pipe:"), None);
        let deep = b"/a/b/c/d/e/f/g/h/i/j/k";
        let Some(Key::PathDir(d)) = Key::path_prefix(deep) else {
            panic!("a deep prefix prunes by its first levels")
        };
        assert_eq!(&d[..], b"/a/b/c/d/e/f/g/h/");
        assert!(dirs_of(deep).any(|x| x == &d[..]));
    }

    #[test]
    fn an_empty_alternative_wants_everything() {
        assert!(Need::any_of(vec![vec![Term::Ops(1)], vec![]]).is_all());
        assert!(!Need::any_of(vec![]).is_all());
    }
}
