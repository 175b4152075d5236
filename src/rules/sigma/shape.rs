//! A boolean expression over atoms → a rule's shape: conditions that must all hold (each a key, or
//! `not_` key, with any of its values), and `except` blocks, none of which may hold. Only
//! expressions with exactly that meaning fit; the rest are refused with the reason.
//!
//! What fits: `A and B…` (one condition per key), `A or B` on one key (its values merge),
//! `not A` (`not_` key), `not (A and B…)` (an `except` block), `not (A or B)` (`not A and not
//! B`), and a second condition on a key already used, as an `except` block of its negation
//! (`path: X` and `path: Y` → `path: X`, `except: [{not_path: Y}]`).

use super::expr::{Atom, Expr};

/// A key's condition: any value matches (`neg`: none does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Lit {
    pub key: &'static str,
    pub neg: bool,
    pub values: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Shape {
    pub conds: Vec<Lit>,
    pub excepts: Vec<Vec<Lit>>,
}

fn flatten_and(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::And(v) => v.into_iter().for_each(|x| flatten_and(x, out)),
        e => out.push(e),
    }
}

fn flatten_or(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Or(v) => v.into_iter().for_each(|x| flatten_or(x, out)),
        // A selection of one field is an `and` of one atom.
        Expr::And(mut v) if v.len() == 1 => flatten_or(v.remove(0), out),
        e => out.push(e),
    }
}

/// `A or B…` as one key's values, when every alternative is an atom of that key.
fn one_key(alts: Vec<Expr>) -> Result<Atom, String> {
    let mut flat = Vec::new();
    alts.into_iter().for_each(|x| flatten_or(x, &mut flat));
    let mut atom: Option<Atom> = None;
    for x in flat {
        let Expr::Atom(a) = x else {
            return Err("an `or` whose alternatives are not each one field (a selection of several fields, or a negation, among them) has no rule form: a rule's conditions all hold, and two rules would alert twice on an event matching both".into());
        };
        match &mut atom {
            None => atom = Some(a),
            Some(m) if m.key == a.key => m.values.extend(a.values),
            Some(m) => {
                return Err(format!(
                    "an `or` across fields ({} and {}) has no rule form: a rule's conditions all hold, and two rules would alert twice on an event matching both",
                    m.key, a.key
                ))
            }
        }
    }
    atom.ok_or_else(|| "an empty `or`".to_owned())
}

/// A conjunct as a literal, when it is one (an atom, an `or` on one key, or their negation).
fn literal(e: Expr) -> Result<Lit, String> {
    match e {
        Expr::Atom(a) => Ok(Lit {
            key: a.key,
            neg: false,
            values: a.values,
        }),
        Expr::Or(v) => one_key(v).map(|a| Lit {
            key: a.key,
            neg: false,
            values: a.values,
        }),
        Expr::And(mut v) if v.len() == 1 => literal(v.remove(0)),
        Expr::Not(x) => match *x {
            Expr::Not(y) => literal(*y),
            y => {
                let l = literal(y)?;
                Ok(Lit { neg: !l.neg, ..l })
            }
        },
        Expr::And(_) => Err("an `and` nested where one field's condition was expected".into()),
    }
}

/// Adds `l` to a conjunction of literals: one per key and sign, `not_` ones merging (none of
/// either list matches); a second positive one on a key goes to `spill` (or is an error).
fn add(lits: &mut Vec<Lit>, l: Lit, spill: Option<&mut Vec<Vec<Lit>>>) -> Result<(), String> {
    match lits.iter_mut().find(|x| x.key == l.key && x.neg == l.neg) {
        None => lits.push(l),
        Some(x) if l.neg => x.values.extend(l.values),
        Some(_) => match spill {
            Some(excepts) => excepts.push(vec![Lit { neg: true, ..l }]),
            None => {
                return Err(format!(
                    "two conditions on `{}` inside one negated `and` have no rule form",
                    l.key
                ))
            }
        },
    }
    Ok(())
}

fn term(s: &mut Shape, e: Expr) -> Result<(), String> {
    match e {
        Expr::Not(x) => match *x {
            Expr::Not(y) => term(s, *y),
            // not (A or B) = not A and not B.
            Expr::Or(v) if one_key(v.clone()).is_err() => v
                .into_iter()
                .try_for_each(|y| term(s, Expr::Not(Box::new(y)))),
            Expr::And(v) if v.len() > 1 => {
                let mut parts = Vec::new();
                v.into_iter().for_each(|x| flatten_and(x, &mut parts));
                let mut block = Vec::new();
                for p in parts {
                    add(&mut block, literal(p)?, None)?;
                }
                s.excepts.push(block);
                Ok(())
            }
            y => add(
                &mut s.conds,
                literal(Expr::Not(Box::new(y)))?,
                Some(&mut s.excepts),
            ),
        },
        e => add(&mut s.conds, literal(e)?, Some(&mut s.excepts)),
    }
}

pub(super) fn shape(e: Expr) -> Result<Shape, String> {
    let mut terms = Vec::new();
    flatten_and(e, &mut terms);
    let mut s = Shape::default();
    for t in terms {
        term(&mut s, t)?;
    }
    Ok(s)
}
