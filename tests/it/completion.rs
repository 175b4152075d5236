//! Completion past the first word with the hyphenated binary name (issue #30; clap#6421:
//! clap_complete's bash script never reached a subcommand's flags for `open-forensics`), in a real
//! bash, zsh and fish: each is asked what it offers after a subcommand and after a flag.

use std::path::Path;
use std::process::Command;

use crate::helpers::TempStore;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Whether `shell` is installed; when not, SKIPPED (where [`live_capture_required`], a panic:
/// the README's test command installs it).
///
/// [`live_capture_required`]: crate::helpers::live_capture_required
fn shell_available(shell: &str, test: &str) -> bool {
    if Path::new("/usr/bin").join(shell).exists() {
        return true;
    }
    let reason = format!("no {shell} (apt-get install {shell})");
    if crate::helpers::live_capture_required() {
        panic!("{test}: {shell} is required here (CI) but there is {reason}");
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
    false
}

fn lines_of(out: std::process::Output) -> Vec<String> {
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

/// What bash offers for `words`, the last being the word being completed.
fn bash(script: &Path, words: &[&str]) -> Vec<String> {
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
    lines_of(
        Command::new("bash")
            .args(["-c", &sh])
            .output()
            .expect("bash"),
    )
}

/// What zsh's completion system offers for the command `line` (completing its last word), with
/// the script installed as `dir/_open-forensics` (tests/completion/zsh_complete.zsh).
fn zsh(dir: &Path, line: &str) -> Vec<String> {
    let out = dir.join("matches");
    let run = Command::new("timeout")
        .arg("30")
        .args([
            "zsh",
            "-f",
            &format!("{ROOT}/tests/completion/zsh_complete.zsh"),
        ])
        .arg(dir)
        .arg(&out)
        .arg(line)
        .output()
        .expect("zsh");
    lines_of(run);
    std::fs::read_to_string(&out)
        .expect("zsh's matches")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// What fish offers for the command `line` (`complete -C`), without descriptions.
fn fish(script: &Path, line: &str) -> Vec<String> {
    let sh = format!("source '{}'; complete -C '{line}'", script.display());
    lines_of(
        Command::new("fish")
            .args(["--no-config", "-c", &sh])
            .output()
            .expect("fish"),
    )
    .into_iter()
    .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
    .collect()
}

const QUERY_FLAGS: [&str; 4] = ["--sql", "--since", "--format", "--store"];
const EXPORT_FORMATS: [&str; 5] = ["jsonl", "parquet", "ocsf", "ecs", "timesketch"];
const ALERTS_FORMATS: [&str; 4] = ["json", "ocsf", "ecs", "timesketch"];

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn sorted_of(v: &[&str]) -> Vec<String> {
    sorted(v.iter().map(|s| s.to_string()).collect())
}

#[test]
fn bash_completes_a_subcommands_flags_and_values_for_the_hyphenated_name() {
    let s = TempStore::new();
    let script = s.path("open-forensics.bash");
    std::fs::write(&script, s.ok(&["completions", "bash"])).expect("write");
    let top = bash(&script, &["open-forensics", ""]);
    assert!(top.contains(&"query".to_owned()), "{top:?}");
    let flags = bash(&script, &["open-forensics", "query", "--"]);
    for f in QUERY_FLAGS {
        assert!(flags.contains(&f.to_owned()), "{f} not in {flags:?}");
    }
    let formats = bash(&script, &["open-forensics", "export", "--format", ""]);
    assert_eq!(formats, EXPORT_FORMATS);
    let alerts = bash(
        &script,
        &["open-forensics", "record", "--alerts-format", ""],
    );
    assert_eq!(alerts, ALERTS_FORMATS);
}

#[test]
fn zsh_completes_a_subcommands_flags_and_values_for_the_hyphenated_name() {
    let test = "zsh_completes_a_subcommands_flags_and_values_for_the_hyphenated_name";
    if !shell_available("zsh", test) {
        return;
    }
    let s = TempStore::new();
    let dir = s.path("site-functions");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("_open-forensics"), s.ok(&["completions", "zsh"])).expect("write");
    let top = zsh(&dir, "open-forensics ");
    assert!(top.contains(&"query".to_owned()), "{top:?}");
    let flags = zsh(&dir, "open-forensics query --");
    for f in QUERY_FLAGS {
        assert!(flags.contains(&f.to_owned()), "{f} not in {flags:?}");
    }
    assert!(!flags.contains(&"--alerts-format".to_owned()), "{flags:?}");
    let formats = zsh(&dir, "open-forensics export --format ");
    assert_eq!(formats, EXPORT_FORMATS);
    let alerts = zsh(&dir, "open-forensics record --alerts-format ");
    assert_eq!(alerts, ALERTS_FORMATS);
}

#[test]
fn fish_completes_a_subcommands_flags_and_values_for_the_hyphenated_name() {
    let test = "fish_completes_a_subcommands_flags_and_values_for_the_hyphenated_name";
    if !shell_available("fish", test) {
        return;
    }
    let s = TempStore::new();
    let script = s.path("open-forensics.fish");
    std::fs::write(&script, s.ok(&["completions", "fish"])).expect("write");
    let top = fish(&script, "open-forensics ");
    assert!(top.contains(&"query".to_owned()), "{top:?}");
    let flags = fish(&script, "open-forensics query --");
    for f in QUERY_FLAGS {
        assert!(flags.contains(&f.to_owned()), "{f} not in {flags:?}");
    }
    assert!(!flags.contains(&"--alerts-format".to_owned()), "{flags:?}");
    // fish sorts what it offers.
    let formats = fish(&script, "open-forensics export --format ");
    assert_eq!(sorted(formats), sorted_of(&EXPORT_FORMATS));
    let alerts = fish(&script, "open-forensics record --alerts-format ");
    assert_eq!(sorted(alerts), sorted_of(&ALERTS_FORMATS));
}
