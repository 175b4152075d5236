use std::path::Path;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Validate rule files and summarise their rules.
    Check,
}

pub fn run(_store: &Path, _cmd: Command) -> anyhow::Result<()> {
    anyhow::bail!("`rules` is not implemented yet")
}
