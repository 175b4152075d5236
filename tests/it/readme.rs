//! The README's promises that a file can check.

use std::path::Path;

/// CI runs `.ci/run`, users run the README's test command: the two must be the same command, or a
/// green CI proves nothing about what a new machine runs.
#[test]
fn the_readme_test_command_is_what_ci_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    let command = ci.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().trim())
        .collect();
    assert!(
        blocks.contains(&command),
        "the README has no ```sh block holding exactly .ci/run's command:\n{command}"
    );
}
