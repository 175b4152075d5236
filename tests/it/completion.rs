//! Bash completion past the first word with the hyphenated binary name (issue #30; clap#6421:
//! clap_complete's script never reached a subcommand's flags for `open-forensics`).

use crate::helpers::TempStore;

/// What bash offers for `words`, the last being the word being completed.
fn complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let prev = words[cword - 1];
    let cur = words[cword];
    let sh = format!(
        "source '{}'; f=$(complete -p open-forensics | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p'); \
         COMP_WORDS=({}); COMP_CWORD={cword}; $f open-forensics '{cur}' '{prev}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" ")
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &sh])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_a_subcommands_flags_and_values_for_the_hyphenated_name() {
    let s = TempStore::new();
    let script = s.path("open-forensics.bash");
    std::fs::write(&script, s.ok(&["completions", "bash"])).expect("write");
    let top = complete(&script, &["open-forensics", ""]);
    assert!(top.contains(&"query".to_owned()), "{top:?}");
    let flags = complete(&script, &["open-forensics", "query", "--"]);
    for f in ["--sql", "--since", "--format", "--store"] {
        assert!(flags.contains(&f.to_owned()), "{f} not in {flags:?}");
    }
    let formats = complete(&script, &["open-forensics", "export", "--format", ""]);
    assert_eq!(formats, ["jsonl", "parquet", "ocsf", "ecs", "timesketch"]);
    let alerts = complete(
        &script,
        &["open-forensics", "record", "--alerts-format", ""],
    );
    assert_eq!(alerts, ["json", "ocsf", "ecs", "timesketch"]);
}
