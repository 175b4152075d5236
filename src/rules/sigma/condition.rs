//! A Sigma detection's `condition` (`selection and not 1 of filter_*`, `all of them`, parentheses)
//! → one boolean expression over field atoms, each selection expanded in place.

use serde_yaml::Value;

use super::expr::Expr;
use super::field::field;
use super::parse::{Category, SigmaRule};

/// The rule's condition with every selection expanded.
pub(super) fn expand(rule: &SigmaRule, category: Category) -> Result<Expr, String> {
    let text = match &rule.condition {
        Value::String(s) => s.clone(),
        Value::Sequence(_) => {
            return Err("a list of conditions (deprecated Sigma) has no rule form".into())
        }
        _ => return Err("`condition` is not a string".into()),
    };
    let mut p = Parser {
        toks: tokens(&text)?,
        at: 0,
        rule,
        category,
    };
    let e = p.or()?;
    match p.toks.get(p.at) {
        None => Ok(e),
        Some(t) => Err(format!("condition {text:?}: unexpected `{t}`")),
    }
}

fn tokens(s: &str) -> Result<Vec<String>, String> {
    if s.contains('|') {
        return Err(format!(
            "condition {s:?}: an aggregation (`| count()`…) has no rule form"
        ));
    }
    Ok(s.replace('(', " ( ")
        .replace(')', " ) ")
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// A selection's value: a mapping (all its fields hold) or a list of mappings (any holds).
fn selection(name: &str, v: &Value, category: Category) -> Result<Expr, String> {
    let map = |m: &serde_yaml::Mapping| -> Result<Expr, String> {
        if m.is_empty() {
            return Err(format!("selection `{name}` is empty"));
        }
        let mut all = Vec::new();
        for (k, v) in m {
            let Value::String(k) = k else {
                return Err(format!("selection `{name}`: a field name is not a string"));
            };
            all.push(field(k, v, category)?);
        }
        Ok(Expr::And(all))
    };
    match v {
        Value::Mapping(m) => map(m),
        Value::Sequence(items) if items.iter().all(|i| matches!(i, Value::Mapping(_))) => {
            let any = items
                .iter()
                .filter_map(|i| match i {
                    Value::Mapping(m) => Some(map(m)),
                    _ => None,
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Expr::Or(any))
        }
        _ => Err(format!(
            "selection `{name}`: a keyword search (values without a field) has no rule form"
        )),
    }
}

/// Whether selection name `n` matches `pat` (`*` for any text).
fn wildcard(pat: &str, n: &str) -> bool {
    match pat.split_once('*') {
        None => pat == n,
        Some((head, rest)) => {
            n.starts_with(head)
                && (0..=n.len() - head.len())
                    .filter(|i| n.is_char_boundary(head.len() + i))
                    .any(|i| wildcard(rest, &n[head.len() + i..]))
        }
    }
}

struct Parser<'a> {
    toks: Vec<String>,
    at: usize,
    rule: &'a SigmaRule,
    category: Category,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> Result<String, String> {
        let t = self
            .toks
            .get(self.at)
            .cloned()
            .ok_or("the condition ends too early")?;
        self.at += 1;
        Ok(t)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut v = vec![self.and()?];
        while self.peek() == Some("or") {
            self.at += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::Or(v)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut v = vec![self.not()?];
        while self.peek() == Some("and") {
            self.at += 1;
            v.push(self.not()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::And(v)
        })
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.peek() == Some("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let t = self.next()?;
        match t.as_str() {
            "(" => {
                let e = self.or()?;
                match self.next()?.as_str() {
                    ")" => Ok(e),
                    other => Err(format!("expected `)`, found `{other}`")),
                }
            }
            "1" | "all" | "any" => {
                if self.next()? != "of" {
                    return Err(format!("expected `of` after `{t}`"));
                }
                let target = self.next()?;
                let picked: Vec<Expr> = self
                    .rule
                    .selections
                    .iter()
                    .filter(|(n, _)| {
                        if target == "them" {
                            !n.starts_with('_')
                        } else {
                            wildcard(&target, n)
                        }
                    })
                    .map(|(n, v)| selection(n, v, self.category))
                    .collect::<Result<_, _>>()?;
                if picked.is_empty() {
                    return Err(format!("`{t} of {target}` names no selection"));
                }
                Ok(if t == "all" {
                    Expr::And(picked)
                } else {
                    Expr::Or(picked)
                })
            }
            ")" | "and" | "or" | "of" => Err(format!("unexpected `{t}` in the condition")),
            name => {
                let (n, v) = self
                    .rule
                    .selections
                    .iter()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| format!("the condition names `{name}`, which is not defined"))?;
                selection(n, v, self.category)
            }
        }
    }
}
