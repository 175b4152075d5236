//! Completion past the first word with the hyphenated binary name (issue #30; clap#6421:
//! clap_complete's bash script never reached a subcommand's flags for `open-forensics`), in a real
//! bash, zsh and fish: each is asked what it offers after a subcommand and after a flag.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::TempStore;
use crate::lifecycle_rules::ok;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What a shell offers for `words` (the last being the word being completed; one offer a line,
/// any description after a tab) must reach past the subcommand: its flags, and a flag's values.
fn completes_flags_and_values(printed: impl Fn(&[&str]) -> String) {
    let offers = |words: &[&str]| -> Vec<String> {
        printed(words)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
            .collect()
    };
    let has = |v: &[String], s: &str| v.iter().any(|x| x == s);
    let top = offers(&["open-forensics", ""]);
    assert!(has(&top, "query"), "{top:?}");
    let flags = offers(&["open-forensics", "query", "--"]);
    for f in ["--sql", "--since", "--format", "--store"] {
        assert!(has(&flags, f), "{f} not in {flags:?}");
    }
    assert!(!has(&flags, "--alerts-format"), "record's flag: {flags:?}");
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // fish sorts what it offers; the others keep the order of the flag's values.
    assert_eq!(
        sorted(offers(&["open-forensics", "export", "--format", ""])),
        ["ecs", "jsonl", "ocsf", "parquet", "timesketch"]
    );
    assert_eq!(
        sorted(offers(&["open-forensics", "record", "--alerts-format", ""])),
        ["ecs", "json", "ocsf", "timesketch"]
    );
}

/// A temporary directory with `shell`'s completion script at `name` in it, or `None` (SKIPPED)
/// where the shell is not installed.
fn script_of(shell: &str, name: &str, test: &str) -> Option<(TempStore, PathBuf)> {
    if !Path::new("/usr/bin").join(shell).exists() {
        crate::helpers::skip(test, &format!("no {shell} (apt-get install {shell})"));
        return None;
    }
    let s = TempStore::new();
    let script = s.path(name);
    std::fs::create_dir_all(script.parent().expect("a directory")).expect("mkdir");
    std::fs::write(&script, s.ok(&["completions", shell])).expect("write");
    Some((s, script))
}

#[test]
fn bash_completes_a_subcommands_flags_and_values_for_the_hyphenated_name() {
    let test = "bash_completes_a_subcommands_flags_and_values_for_the_hyphenated_name";
    let Some((_s, script)) = script_of("bash", "open-forensics.bash", test) else {
        return;
    };
    completes_flags_and_values(|words| {
        let cword = words.len() - 1;
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let sh = format!(
            "source '{}'; f=$(complete -p open-forensics | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p'); \
             COMP_WORDS=({}); COMP_CWORD={cword}; $f open-forensics '{}' '{}'; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            quoted.join(" "),
            words[cword],
            words[cword - 1],
        );
        ok(Command::new("bash").args(["-c", &sh]))
    });
}

/// zsh's completion system, with the script installed as `_open-forensics` in a directory of
/// `$fpath`, driven in a pseudo-terminal (tests/completion/zsh_complete.zsh).
#[test]
fn zsh_completes_a_subcommands_flags_and_values_for_the_hyphenated_name() {
    let test = "zsh_completes_a_subcommands_flags_and_values_for_the_hyphenated_name";
    let Some((s, script)) = script_of("zsh", "site-functions/_open-forensics", test) else {
        return;
    };
    let dir = script.parent().expect("site-functions");
    let matches = s.path("matches");
    completes_flags_and_values(|words| {
        ok(Command::new("timeout")
            .args(["30", "zsh", "-f"])
            .arg(format!("{ROOT}/tests/completion/zsh_complete.zsh"))
            .arg(dir)
            .arg(&matches)
            .arg(words.join(" ")));
        std::fs::read_to_string(&matches).expect("zsh's matches")
    });
}

/// fish's own `complete -C`: what it offers for a command line.
#[test]
fn fish_completes_a_subcommands_flags_and_values_for_the_hyphenated_name() {
    let test = "fish_completes_a_subcommands_flags_and_values_for_the_hyphenated_name";
    let Some((_s, script)) = script_of("fish", "open-forensics.fish", test) else {
        return;
    };
    completes_flags_and_values(|words| {
        let sh = format!(
            "source '{}'; complete -C '{}'",
            script.display(),
            words.join(" ")
        );
        ok(Command::new("fish").args(["--no-config", "-c", &sh]))
    });
}
