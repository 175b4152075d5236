//! `open-forensics install`: gathers what to install (this binary, completions, man pages) and
//! hands it to `service::install`.

use std::path::PathBuf;

use anyhow::Context;
use clap_complete::Shell;

use crate::service::install::{install, Done, Layout};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the binary, completions and man pages go (PREFIX/bin, PREFIX/share/…); the unit
    /// and config go to /etc.
    #[arg(long, default_value = "/usr/local", value_name = "DIR")]
    pub prefix: PathBuf,
    /// Install under this staging root instead of / (for packages).
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub destdir: PathBuf,
    /// Only say what would be installed.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.prefix.is_absolute() {
        return Err(super::BadInput(format!(
            "--prefix {}: must be an absolute path",
            args.prefix.display()
        ))
        .into());
    }
    let exe = std::env::current_exe().context("find this binary")?;
    let binary = std::fs::read(&exe).with_context(|| format!("read {}", exe.display()))?;
    let completions: Vec<(&str, Vec<u8>)> = [
        ("bash", Shell::Bash),
        ("zsh", Shell::Zsh),
        ("fish", Shell::Fish),
    ]
    .into_iter()
    .map(|(n, s)| (n, super::shell::completion(s)))
    .collect();
    let man = super::manpage::man_pages()?;
    let layout = Layout {
        prefix: args.prefix.clone(),
        destdir: args.destdir.clone(),
    };
    let verb = if args.dry_run {
        "would install"
    } else {
        "installed"
    };
    for item in layout.items(binary, &completions, &man) {
        match install(&item, args.dry_run)? {
            Done::Installed => eprintln!("open-forensics: {verb} {}", item.path.display()),
            Done::Unchanged => eprintln!("open-forensics: unchanged {}", item.path.display()),
            Done::KeptWithNew(new) => eprintln!(
                "open-forensics: kept {} (it differs from this version's); {} the new one as {}",
                item.path.display(),
                if args.dry_run { "would write" } else { "wrote" },
                new.display()
            ),
        }
    }
    if !args.dry_run && args.destdir == std::path::Path::new("/") {
        eprintln!(
            "open-forensics: next: systemctl daemon-reload && systemctl enable --now open-forensics"
        );
    }
    Ok(())
}
