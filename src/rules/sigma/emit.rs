//! A converted rule as YAML: the Sigma metadata kept (title, id, author, level → severity, tags,
//! references), the category's operations, the shape's conditions and `except` blocks. Strings
//! are written as JSON strings, which YAML reads as they are.

use super::parse::{Category, SigmaRule};
use super::shape::{Lit, Shape};

/// `sigma_` and the title's letters and digits, lowercased, other runs as `_`.
pub(super) fn name(title: &str) -> String {
    let mut n = String::from("sigma_");
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            n.push(c.to_ascii_lowercase());
        } else if !n.ends_with('_') {
            n.push('_');
        }
    }
    n.trim_end_matches('_').to_owned()
}

fn q(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// One line of comment text.
fn comment(s: &str) -> String {
    crate::text::printable(s).replace(['\n', '\r'], " ")
}

/// What each category's events are here: the operations, and what they do to `path`. Sigma's
/// events record what happened, so failed attempts are left out.
fn ops(c: Category) -> &'static str {
    match c {
        // Created (or overwritten): an open with O_CREAT, or a name made by rename, link, symlink.
        Category::Created => "    op: [open, rename, link, symlink]\n    access: [create]\n",
        Category::Accessed => "    op: [open]\n",
        Category::Renamed => "    op: [rename]\n",
        Category::Deleted => "    op: [unlink]\n",
        // A process created: an exec (a fork runs no new program; Sigma's process_creation
        // events, from Sysmon for Linux or auditd's execve, are execs too).
        Category::Exec => "    op: [exec]\n",
    }
}

fn severity(level: &str) -> &str {
    match level {
        "informational" => "info",
        l => l,
    }
}

fn lits(out: &mut String, lits: &[Lit], indent: &str) {
    for (i, l) in lits.iter().enumerate() {
        let lead = if i == 0 && indent.ends_with("- ") {
            indent.to_owned()
        } else {
            " ".repeat(indent.len())
        };
        let vals: Vec<String> = l.values.iter().map(|v| q(v)).collect();
        out.push_str(&format!(
            "{lead}{}{}: [{}]\n",
            if l.neg { "not_" } else { "" },
            l.key,
            vals.join(", ")
        ));
    }
}

/// One item of a `rules:` list.
pub(super) fn rule(r: &SigmaRule, c: Category, s: &Shape, name: &str, source: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "  # Sigma rule {} ({})\n",
        comment(&r.id),
        comment(source)
    ));
    if let Some(a) = &r.author {
        out.push_str(&format!("  # author: {}\n", comment(a)));
    }
    for u in &r.references {
        out.push_str(&format!("  # reference: {}\n", comment(u)));
    }
    out.push_str(&format!("  - name: {name}\n"));
    out.push_str(&format!("    description: {}\n", q(&r.title)));
    out.push_str(&format!("    severity: {}\n", severity(&r.level)));
    let mut tags: Vec<String> = r.tags.iter().map(|t| q(t)).collect();
    tags.push(q(&format!("sigma:{}", r.id)));
    out.push_str(&format!("    tags: [{}]\n", tags.join(", ")));
    out.push_str(ops(c));
    out.push_str("    result: [success]\n");
    lits(&mut out, &s.conds, "    ");
    if !s.excepts.is_empty() {
        out.push_str("    except:\n");
        for block in &s.excepts {
            lits(&mut out, block, "      - ");
        }
    }
    out
}

/// A rule file of `items` (each from `rule`).
pub(super) fn document(items: &[String]) -> String {
    let mut out = String::from(
        "# Converted by `open-forensics rules import-sigma`. The Sigma rules are under the Detection\n# Rule License 1.1 (https://github.com/SigmaHQ/Detection-Rule-License): each keeps its author\n# and references.\nrules:\n",
    );
    for i in items {
        out.push_str(i);
    }
    out
}
