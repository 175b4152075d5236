//! One Sigma field condition (`Field|modifier|…: values`) → rule values on one key.
//!
//! Sigma values are case-insensitive unless `|cased`, and hold `*` and `?` wildcards (`\` escapes
//! them): each value becomes a `re:` regex, which says exactly that — `(?i)` for the case,
//! `^`/`$` for where it must match — on every key alike (a path glob's `*` would stop at `/`).

use serde_yaml::Value;

use super::expr::{Atom, Expr};
use super::parse::Category;

/// Where a value must match.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Whole,
    Start,
    End,
    Anywhere,
}

/// The rule key of a Sigma field, or why there is none. In `process_creation` the event is the
/// exec and its process the new image, so `Image` and `CommandLine` are the new program's,
/// `Parent*` its parent's, `CurrentDirectory` the directory it began in.
fn key_of(field: &str, category: Category) -> Result<&'static str, String> {
    let exec = category == Category::Exec;
    Ok(match field {
        "TargetFilename" if !exec => "path",
        "SourceFilename" if category == Category::Renamed => "old_path",
        "Image" => "exe",
        "CommandLine" => "cmdline",
        "ParentImage" => "parent_exe",
        "ParentCommandLine" => "parent_cmdline",
        "User" => "user",
        "CurrentDirectory" if exec => "cwd",
        "CurrentDirectory" => {
            return Err(
                "field `CurrentDirectory`: the working directory is recorded when an image begins (its exec), not at each file event".into(),
            )
        }
        f => return Err(format!("field `{f}` has no rule key")),
    })
}

/// A Sigma string (wildcards `*`, `?`; `\` escapes `*`, `?` and `\`) as regex syntax.
fn sigma_string(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('*' | '?' | '\\')) => {
                let lit = chars.next().unwrap_or('\\');
                out.push_str(&regex_syntax::escape(&lit.to_string()));
            }
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c => out.push_str(&regex_syntax::escape(&c.to_string())),
        }
    }
    out
}

fn value_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err("a null value (the field is absent) has no rule form".into()),
        _ => Err("a value that is a list or mapping inside a value list".into()),
    }
}

/// `spec` (`Field|mod|…`) with `values` → an expression over atoms (`|all`: all of the values).
pub(super) fn field(spec: &str, values: &Value, category: Category) -> Result<Expr, String> {
    let mut parts = spec.split('|');
    let name = parts.next().unwrap_or_default();
    if name.is_empty() {
        return Err("a keyword search (values without a field) has no rule form".into());
    }
    let key = key_of(name, category)?;
    let (mut anchor, mut cased, mut all, mut re) = (Anchor::Whole, false, false, None::<String>);
    for m in parts {
        match m {
            "contains" => anchor = Anchor::Anywhere,
            "startswith" => anchor = Anchor::Start,
            "endswith" => anchor = Anchor::End,
            "cased" => cased = true,
            "all" => all = true,
            "re" => re = Some(String::new()),
            // Sigma's regex flags: ignore case, multi-line, dot matches newline.
            "i" | "m" | "s" if re.is_some() => re.get_or_insert_with(String::new).push_str(m),
            m => return Err(format!("field `{name}`: modifier `{m}` has no rule form")),
        }
    }
    if re.is_some() && (anchor != Anchor::Whole || cased) {
        return Err(format!(
            "field `{name}`: `re` with `contains`, `startswith`, `endswith` or `cased`"
        ));
    }
    let list: Vec<Value> = match values {
        Value::Sequence(s) => s.clone(),
        v => vec![v.clone()],
    };
    if list.is_empty() {
        return Err(format!("field `{name}`: an empty value list"));
    }
    let mut out = Vec::new();
    for v in &list {
        let s = value_text(v).map_err(|e| format!("field `{name}`: {e}"))?;
        out.push(match &re {
            // Sigma's regexes match anywhere in the value, as `re:` does; case-sensitive.
            Some(flags) if flags.is_empty() => format!("re:{s}"),
            Some(flags) => format!("re:(?{flags}){s}"),
            None => {
                let mut r = String::from("re:");
                let fold = !cased && s.chars().any(char::is_alphabetic);
                // `(?s)`: a wildcard also crosses line breaks (a command line may hold them).
                r.push_str(match (fold, s.contains(['*', '?'])) {
                    (true, true) => "(?is)",
                    (true, false) => "(?i)",
                    (false, true) => "(?s)",
                    (false, false) => "",
                });
                if matches!(anchor, Anchor::Whole | Anchor::Start) {
                    r.push('^');
                }
                r.push_str(&sigma_string(&s));
                if matches!(anchor, Anchor::Whole | Anchor::End) {
                    r.push('$');
                }
                r
            }
        });
    }
    Ok(if all && out.len() > 1 {
        Expr::And(
            out.into_iter()
                .map(|v| {
                    Expr::Atom(Atom {
                        key,
                        values: vec![v],
                    })
                })
                .collect(),
        )
    } else {
        Expr::Atom(Atom { key, values: out })
    })
}
