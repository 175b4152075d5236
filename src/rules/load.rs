//! Reading rule files: each is parsed on its own (an empty one is an error), then all are built
//! into one rule set, so that any file may use another's lists.

use std::path::PathBuf;

use super::builder;
use super::diag::{Ctx, Diagnostic, RulesError, Source};
use super::filter::Filter;
use super::raw::RawFile;
use super::set::RuleSet;

impl RuleSet {
    /// Loads, merges and validates rule files (see the module documentation for the format).
    pub fn load(paths: &[PathBuf]) -> Result<RuleSet, RulesError> {
        load_files(paths)
    }

    /// Loads rules from YAML text; `name` stands for the file in messages.
    pub fn from_yaml(name: &str, text: &str) -> Result<RuleSet, RulesError> {
        load_texts(vec![(name.to_owned(), text.to_owned())])
    }

    /// One rule, named `name`, from command-line filters (for `query`): every given filter must
    /// hold.
    pub fn from_filter(name: &str, filter: &Filter) -> Result<RuleSet, RulesError> {
        let mut ctx = Ctx::new();
        ctx.sources.push(Source {
            name: "command line".to_owned(),
            text: None,
        });
        let set = builder::build_single(&mut ctx, name, &filter.alternatives());
        if ctx.diags.is_empty() {
            Ok(set)
        } else {
            Err(RulesError::Invalid(ctx.diags))
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

fn load_files(paths: &[PathBuf]) -> Result<RuleSet, RulesError> {
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

fn load_texts(inputs: Vec<(String, String)>) -> Result<RuleSet, RulesError> {
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
    let mut set = builder::build(&mut ctx, &files);
    if ctx.diags.is_empty() {
        set.warnings = ctx.warnings;
        Ok(set)
    } else {
        Err(RulesError::Invalid(ctx.diags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
