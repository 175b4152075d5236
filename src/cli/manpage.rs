//! The man pages (`install`, `man`): clap's, with the EXAMPLES and EXIT STATUS sections clap
//! cannot generate, from `docs/commands.md`: one text for the docs and the pages.

use anyhow::Context;

/// Each command's examples and the exit codes, as Markdown (see the page for its shape).
const COMMANDS_DOC: &str = include_str!("../../docs/commands.md");

/// The section of `docs/commands.md` that holds the exit codes.
const EXIT_SECTION: &str = "Exit status";

/// Every man page, `(file name, roff)`, the main page first, with EXAMPLES and EXIT STATUS
/// added: a command's page gets its own examples, the main page every command's.
pub(super) fn man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let sections = sections(COMMANDS_DOC);
    let exit = sections
        .iter()
        .find(|(name, _)| *name == EXIT_SECTION)
        .map(|(_, lines)| exit_status_roff(lines))
        .context("docs/commands.md has no exit status section")?;
    let pages = clap_pages()?;
    Ok(pages
        .into_iter()
        .map(|(file, roff)| {
            let command = file
                .strip_suffix(".1")
                .and_then(|n| n.strip_prefix("open-forensics"))
                .and_then(|n| n.strip_prefix('-'));
            let examples: String = sections
                .iter()
                // A nested command's page (`rules-check`) shows its command's examples.
                .filter(|(name, _)| {
                    *name != EXIT_SECTION
                        && command.is_none_or(|c| c.split('-').next() == Some(*name))
                })
                .map(|(_, lines)| examples_roff(lines))
                .collect();
            let extra = format!(".SH EXAMPLES\n{examples}.SH \"EXIT STATUS\"\n{exit}");
            (file, insert_before_version(roff, &extra))
        })
        .collect())
}

/// `## NAME` sections of a Markdown page, each with its lines.
fn sections(doc: &str) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in doc.lines() {
        match (line.strip_prefix("## "), out.last_mut()) {
            (Some(name), _) => out.push((name.trim(), Vec::new())),
            (None, Some((_, lines))) => lines.push(line),
            (None, None) => {}
        }
    }
    out
}

/// The examples in a section's `sh` blocks: each `# comment` line becomes a paragraph, and the
/// commands after it a literal block under it.
fn examples_roff(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut in_block = false;
    let mut commands_open = false;
    for line in lines {
        if line.starts_with("```") {
            in_block = !in_block;
        } else if !in_block || line.trim().is_empty() {
            continue;
        } else if let Some(text) = line.strip_prefix("# ") {
            if commands_open {
                out.push_str(".fi\n.RE\n");
                commands_open = false;
            }
            out.push_str(&format!(".PP\n\\&{}\n", escape(text)));
        } else {
            if !commands_open {
                out.push_str(".RS 4\n.nf\n");
                commands_open = true;
            }
            out.push_str(&format!("\\&{}\n", escape(line)));
        }
        if !in_block && commands_open {
            out.push_str(".fi\n.RE\n");
            commands_open = false;
        }
    }
    out
}

/// The exit status table as tagged paragraphs, and the prose around it as paragraphs.
fn exit_status_roff(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut prose: Vec<&str> = Vec::new();
    for line in lines {
        let line = line.trim();
        if let Some(row) = line.strip_prefix('|') {
            flush(&mut prose, &mut out);
            let cells: Vec<&str> = row
                .trim_end_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            if let [code, meaning] = cells[..] {
                if code.parse::<u8>().is_ok() {
                    out.push_str(&format!(".TP\n.B {code}\n\\&{}\n", inline(meaning)));
                }
            }
        } else if line.is_empty() {
            flush(&mut prose, &mut out);
        } else {
            prose.push(line);
        }
    }
    flush(&mut prose, &mut out);
    out
}

/// The prose gathered so far, as one paragraph.
fn flush(prose: &mut Vec<&str>, out: &mut String) {
    if !prose.is_empty() {
        out.push_str(&format!(".PP\n\\&{}\n", inline(&prose.join(" "))));
        prose.clear();
    }
}

/// Text safe in roff: a backslash is `\e`, a hyphen in a flag is a minus sign (`\-`), so that
/// copying from the page gives the flag.
fn escape(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// Markdown's inline code (`` `x` ``) in bold, the rest escaped.
fn inline(text: &str) -> String {
    escape(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("\\fB{part}\\fR")
            } else {
                part.to_owned()
            }
        })
        .collect()
}

/// Man pages end with VERSION (and AUTHORS); EXAMPLES and EXIT STATUS go before them.
fn insert_before_version(roff: Vec<u8>, extra: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(&roff);
    match text.find("\n.SH VERSION") {
        Some(at) => format!("{}\n{}{}", &text[..at], extra, &text[at + 1..]).into_bytes(),
        None => format!("{text}{extra}").into_bytes(),
    }
}

/// Every man page as clap renders it: `(file name, roff)`, the main page first.
fn clap_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let cmd = super::command();
    let mut pages = Vec::new();
    let mut main = Vec::new();
    clap_mangen::Man::new(cmd.clone().disable_help_subcommand(true))
        .render(&mut main)
        .context("render the man page")?;
    pages.push(("open-forensics.1".to_owned(), main));
    // Every subcommand at every depth (`rules check`…) has its page, since its parent's page
    // names it; no page for clap's `help` subcommand, so none names one.
    let mut todo: Vec<(String, clap::Command)> = cmd
        .get_subcommands()
        .map(|s| (format!("open-forensics-{}", s.get_name()), s.clone()))
        .collect();
    while let Some((name, sub)) = todo.pop() {
        todo.extend(
            sub.get_subcommands()
                .map(|s| (format!("{name}-{}", s.get_name()), s.clone())),
        );
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.name(name.clone()).disable_help_subcommand(true))
            .render(&mut page)
            .context("render a man page")?;
        pages.push((format!("{name}.1"), page));
    }
    pages[1..].sort_by(|a, b| a.0.cmp(&b.0));
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_examples_and_every_example_section_names_a_command() {
        let sections = sections(COMMANDS_DOC);
        let commands: Vec<String> = crate::cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        for c in &commands {
            let (_, lines) = sections
                .iter()
                .find(|(name, _)| name == c)
                .unwrap_or_else(|| panic!("docs/commands.md has no `## {c}` section"));
            assert!(examples_roff(lines).contains(".nf"), "{c}: no example");
        }
        for (name, _) in &sections {
            assert!(
                *name == EXIT_SECTION || commands.iter().any(|c| c == name),
                "docs/commands.md: `## {name}` is not a command"
            );
        }
    }

    #[test]
    fn the_exit_status_lists_every_code_the_program_returns() {
        let (_, lines) = sections(COMMANDS_DOC)
            .into_iter()
            .find(|(name, _)| *name == EXIT_SECTION)
            .unwrap();
        let roff = exit_status_roff(&lines);
        for code in [
            0,
            crate::cli::exit::EXIT_FAILURE,
            crate::cli::exit::EXIT_BAD_INPUT,
        ] {
            assert!(roff.contains(&format!(".TP\n.B {code}\n")), "{roff}");
        }
    }

    #[test]
    fn examples_become_paragraphs_with_literal_commands() {
        let lines = [
            "```sh",
            "# list them",
            "open-forensics segments",
            "open-forensics segments --format csv",
            "# the head",
            "open-forensics verify --head 3f1c",
            "```",
        ];
        assert_eq!(
            examples_roff(&lines),
            ".PP\n\\&list them\n.RS 4\n.nf\n\\&open\\-forensics segments\n\
             \\&open\\-forensics segments \\-\\-format csv\n.fi\n.RE\n\
             .PP\n\\&the head\n.RS 4\n.nf\n\\&open\\-forensics verify \\-\\-head 3f1c\n.fi\n.RE\n"
        );
        assert_eq!(
            inline(r"`a\b` c-d"),
            r"\fBa\eb\fR c\-d",
            "code in bold, backslash and hyphen escaped"
        );
    }
}
