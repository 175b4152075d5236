//! `open-forensics completions SHELL` and `open-forensics man`: generated from the command tree
//! (clap_complete, clap_mangen), so they never drift from the flags.

use std::io::Write;
use std::path::PathBuf;

use clap_complete::Shell;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh or fish (also elvish, powershell).
    pub shell: Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Write open-forensics.1 and one page per command (open-forensics-record.1, …) here
    /// instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The name the bash script is generated for (see [`completion`]).
const BASH_NAME: &str = "openforensics";

/// The completion script for `shell`.
///
/// clap_complete's bash script spells a hyphenated binary name two ways in its subcommand
/// states (`open__forensics__subcmd__query` and `open__subcmd__forensics__subcmd__query`,
/// clap#6421), so nothing past the first word completed: it is generated for a name without the
/// hyphen, and `complete` bound to the real one.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    if shell != Shell::Bash {
        clap_complete::generate(shell, &mut super::command(), "open-forensics", &mut out);
        return out;
    }
    clap_complete::generate(shell, &mut super::command(), BASH_NAME, &mut out);
    String::from_utf8_lossy(&out)
        .replace(&format!(" {BASH_NAME}\n"), " open-forensics\n")
        .into_bytes()
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut out = super::stdout();
    out.write_all(&completion(args.shell))?;
    out.flush()?;
    Ok(())
}

pub fn man(args: ManArgs) -> anyhow::Result<()> {
    let pages = super::manpage::man_pages()?;
    match args.dir {
        None => {
            let mut out = super::stdout();
            out.write_all(&pages[0].1)?;
            out.flush()?;
        }
        Some(dir) => {
            for (name, page) in pages {
                crate::safe_path::replace(&dir.join(&name), &page, 0o644)?;
            }
        }
    }
    Ok(())
}
