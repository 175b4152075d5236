use std::path::Path;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_store: &Path, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`replay` is not implemented yet")
}
