//! A Sigma detection as a boolean expression over atoms: what `condition` builds and `shape` fits.

/// Any of `values` matches rule key `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Atom {
    pub key: &'static str,
    pub values: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Expr {
    Atom(Atom),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}
