//! Problems in rule files, and where they are: each value keeps the path of its YAML node, and the
//! problems found later (unknown lists, bad globs, duplicate names…) and the rules' `origin`s find
//! their line and column in a `PosIndex`, built once per file when first needed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use crate::text::printable;
use crate::yaml_pos::{PosIndex, Seg};

/// A problem in a rule file, at a position when one is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based line and column.
    pub pos: Option<(usize, usize)>,
    pub message: String,
}

/// Control characters in the file name or in values the message quotes (an unknown key, say) are
/// escaped: a rule file must not be able to drive the terminal its errors are printed on.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (file, message) = (printable(&self.file), printable(&self.message));
        match self.pos {
            Some((l, c)) => write!(f, "{file}:{l}:{c}: {message}"),
            None => write!(f, "{file}: {message}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("reading rule file {}: {source}", printable(&path.display().to_string()))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found, in file order.
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

/// Where a value came from: a source and the path to its node.
#[derive(Clone, Debug)]
pub(super) struct Origin {
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
pub(super) struct Source {
    pub name: String,
    pub text: Option<String>,
}

/// Collects diagnostics, positioning them in their sources.
pub(super) struct Ctx {
    pub sources: Vec<Source>,
    pub diags: Vec<Diagnostic>,
    /// What loads but deserves a look (`rules check` prints them).
    pub warnings: Vec<Diagnostic>,
    /// Node positions per source (by index in `sources`), built when first asked for.
    index: RefCell<HashMap<usize, PosIndex>>,
}

impl Ctx {
    pub fn new() -> Ctx {
        Ctx {
            sources: Vec::new(),
            diags: Vec::new(),
            warnings: Vec::new(),
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
        let d = self.diagnostic(at, msg);
        self.diags.push(d);
    }

    /// Records a warning about the node at `at`, positioned as errors are.
    pub fn warn(&mut self, at: &Origin, msg: impl fmt::Display) {
        let d = self.diagnostic(at, msg);
        self.warnings.push(d);
    }

    fn diagnostic(&self, at: &Origin, msg: impl fmt::Display) -> Diagnostic {
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
        Diagnostic {
            file: src.name.clone(),
            pos,
            message,
        }
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
