use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;

use super::{report_scan, TimeArgs};
use crate::store::Reader;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub time: TimeArgs,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let range = args.time.range()?;
    let reader = Reader::open(store)?;
    let mut out = super::stdout();
    let mut io_err = None;
    let stats = reader.scan(&range, |ev| match writeln!(out, "{}", ev.to_json_line()) {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => {
            io_err = Some(e);
            ControlFlow::Break(())
        }
    });
    if let Some(e) = io_err {
        return Err(e.into());
    }
    out.flush()?;
    report_scan(&stats, &range, true)
}
