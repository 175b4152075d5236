//! The installed man pages carry what clap cannot generate: examples and exit codes.

use crate::helpers::TempStore;

#[test]
fn installed_man_pages_carry_examples_and_exit_status() {
    let s = TempStore::new();
    let root = s.path("root");
    s.ok(&[
        "install",
        "--destdir",
        root.to_str().unwrap(),
        "--prefix",
        "/usr",
    ]);
    let dir = root.join("usr/share/man/man1");
    let mut pages: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    // The main page and one per command (record, replay, query, …, man).
    assert!(pages.len() > 10, "{pages:?}");
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let name = page.file_name().unwrap().to_str().unwrap();
        let examples = text
            .split(".SH EXAMPLES\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: no EXAMPLES\n{text}"));
        let (examples, exit) = examples
            .split_once(".SH \"EXIT STATUS\"\n")
            .unwrap_or_else(|| panic!("{name}: no EXIT STATUS after EXAMPLES\n{text}"));
        for code in ["0", "1", "2"] {
            assert!(
                exit.contains(&format!(".TP\n.B {code}\n")),
                "{name}: exit {code}\n{exit}"
            );
        }
        // Each command's page shows that command at work; the main page shows every command.
        let commands: Vec<&str> = match name.strip_prefix("open-forensics-") {
            Some(c) => vec![c.strip_suffix(".1").unwrap().split('-').next().unwrap()],
            None => vec!["record", "replay", "query", "proc", "rules", "verify"],
        };
        for c in commands {
            assert!(
                examples.contains("\\&open\\-forensics ") && examples.contains(&format!(" {c}")),
                "{name}: no example of {c}\n{examples}"
            );
        }
    }
    // Every page a page names exists (`rules` names `rules-check`…; none names clap's `help`).
    let names: Vec<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap().replace("\\-", "-");
        for (i, _) in text.match_indices("open-forensics-") {
            let rest = &text[i..];
            if let Some(end) = rest.find("(1)") {
                let named = &rest[..end];
                if named.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                    assert!(
                        names.contains(&format!("{named}.1")),
                        "{page:?} names {named}(1), which is not installed"
                    );
                }
            }
        }
    }
    // A command's page has its own examples only; the main page has them all.
    let record_example = "\\&open\\-forensics record \\-\\-duration 10m";
    for (page, has) in [
        ("open-forensics.1", true),
        ("open-forensics-record.1", true),
        ("open-forensics-query.1", false),
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert_eq!(text.contains(record_example), has, "{page}");
    }
}
