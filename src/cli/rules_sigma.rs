//! `rules import-sigma`: Sigma rule files (or directories of them) → one rule file.

use std::path::{Path, PathBuf};

use crate::rules::sigma;

#[derive(clap::Args, Debug)]
pub struct ImportSigmaArgs {
    /// Sigma rule files, or directories searched for `*.yml` and `*.yaml` (sorted by path).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// Write the rule file here (replaced whole) instead of to stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the rule file to stdout and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Sigma files under `p`, sorted; directory links are not followed (no cycles).
fn files(p: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(p)
        .map_err(|e| super::BadInput(format!("{}: {e}", p.display())))?;
    if !meta.is_dir() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
        .map_err(|e| super::BadInput(format!("{}: {e}", p.display())))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| super::BadInput(format!("{}: {e}", p.display())))?;
    entries.sort();
    for e in entries {
        let is_dir = std::fs::symlink_metadata(&e).is_ok_and(|m| m.is_dir());
        let sigma_file = e.extension().is_some_and(|x| x == "yml" || x == "yaml");
        if is_dir || sigma_file {
            files(&e, out)?;
        }
    }
    Ok(())
}

pub fn run(args: ImportSigmaArgs) -> anyhow::Result<()> {
    let mut paths = Vec::new();
    for p in &args.paths {
        files(p, &mut paths)?;
    }
    if paths.is_empty() {
        return Err(super::BadInput("no Sigma rule files (*.yml, *.yaml) given".into()).into());
    }
    let mut done = Vec::new();
    let mut refused = 0;
    for p in &paths {
        let text = std::fs::read_to_string(p)
            .map_err(|e| super::BadInput(format!("{}: {e}", p.display())))?;
        let source = p.display().to_string();
        match sigma::convert(&source, &text) {
            Ok(c) => done.push(c),
            Err(why) => {
                refused += 1;
                eprintln!(
                    "open-forensics: {}: refused: {}",
                    crate::text::printable(&source),
                    crate::text::printable(&why)
                );
            }
        }
    }
    let doc = sigma::document(&done);
    match (&args.out, args.dry_run) {
        (Some(out), false) => crate::safe_path::replace(out, doc.as_bytes(), 0o644)?,
        _ => {
            let mut o = super::stdout();
            std::io::Write::write_all(&mut o, doc.as_bytes())?;
            std::io::Write::flush(&mut o)?;
        }
    }
    let summary = format!(
        "converted {} of {} Sigma rules ({refused} refused)",
        done.len(),
        paths.len()
    );
    eprintln!("open-forensics: {summary}");
    if refused > 0 {
        return Err(super::Failed(summary).into());
    }
    Ok(())
}
