//! `rules import-sigma`: Sigma rules → this rule language, faithfully or not at all.
//!
//! A Sigma rule is read (`parse`), its detection's condition parsed into a boolean expression over
//! its selections (`condition`), each selection's fields and modifiers mapped to rule keys and
//! values (`field`), the expression fitted to a rule's shape — conditions that all hold, and
//! `except` blocks of which none may (`shape`) — and the rule written as YAML (`emit`), then
//! loaded back to prove it compiles. Whatever has no exact equivalent is refused with the reason:
//! a field no rule key holds, a modifier, an `or` across fields, a category whose events are not
//! recorded.

mod condition;
mod emit;
mod expr;
mod field;
mod parse;
mod shape;

use super::set::RuleSet;

/// One Sigma rule, converted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Converted {
    /// The rule's name in the output (`sigma_<title>`; `document` makes names unique).
    pub name: String,
    /// The Sigma rule's `id`.
    pub id: String,
    /// Its YAML: one item of a `rules:` list, comments included.
    pub yaml: String,
}

/// Converts the Sigma rule `text` (from `source`, named in the output's comments).
pub fn convert(source: &str, text: &str) -> Result<Converted, String> {
    let rule = parse::parse(text)?;
    let category = rule.category()?;
    let expr = condition::expand(&rule, category)?;
    let shape = shape::shape(expr)?;
    let name = emit::name(&rule.title);
    let yaml = emit::rule(&rule, category, &shape, &name, source);
    // The output must load: a regex beyond this engine's syntax (look-around, backreferences)
    // or a tag it does not accept is caught here, never written.
    RuleSet::from_yaml(source, &emit::document(std::slice::from_ref(&yaml)))
        .map_err(|e| format!("the converted rule does not load: {e}"))?;
    Ok(Converted {
        name,
        id: rule.id.clone(),
        yaml,
    })
}

/// A rule file of converted rules, in the order given; a name given twice gets `_2`, `_3`….
pub fn document(rules: &[Converted]) -> String {
    let mut seen = std::collections::HashMap::new();
    let items: Vec<String> = rules
        .iter()
        .map(|r| {
            let n = seen.entry(r.name.clone()).or_insert(0u32);
            *n += 1;
            if *n == 1 {
                r.yaml.clone()
            } else {
                r.yaml.replacen(
                    &format!("- name: {}\n", r.name),
                    &format!("- name: {}_{n}\n", r.name),
                    1,
                )
            }
        })
        .collect();
    emit::document(&items)
}

#[cfg(test)]
mod tests;
