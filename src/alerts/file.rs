//! stdout and alert files. A batch is written with one `write_all` of whole lines, so a reader
//! (or logrotate) never sees a line split by us between two files.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use crate::safe_path;

use super::{Delivery, Fail, Msg, Sink};

/// The batch's JSON lines, or (`text`) each alert's line for a terminal where it has one.
fn lines(batch: &[Msg], text: bool) -> Vec<u8> {
    let line = |m: &Msg| -> Arc<str> {
        match (&m.text, text) {
            (Some(t), true) => t.clone(),
            _ => m.line.clone(),
        }
    };
    let mut buf = Vec::with_capacity(batch.iter().map(|m| line(m).len() + 1).sum());
    for m in batch {
        buf.extend_from_slice(line(m).as_bytes());
        buf.push(b'\n');
    }
    buf
}

/// Stdout: JSON lines, or on a terminal the one-line form `Outputs` made for it.
pub(crate) struct Stdout;

impl Stdout {
    pub fn new() -> Stdout {
        Stdout
    }
}

impl Sink for Stdout {
    fn deliver(&mut self, batch: &[Msg]) -> Delivery {
        let mut out = std::io::stdout().lock();
        match out
            .write_all(&lines(batch, true))
            .and_then(|()| out.flush())
        {
            Ok(()) => Delivery::all(batch.len()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Delivery {
                done: 0,
                fail: Some(Fail::Dead("stdout is closed".into())),
            },
            Err(e) => Delivery {
                done: 0,
                fail: Some(Fail::Retry(format!("write to stdout: {e}"))),
            },
        }
    }
}

/// An alert file, appended to; reopened (by name) on SIGUSR1.
pub(crate) struct AlertFile {
    path: PathBuf,
    file: Option<File>,
    reopen: Arc<AtomicBool>,
    sig: Option<signal_hook::SigId>,
}

/// Alerts quote recorded paths and command lines: owner-only (0600), like the store; and never
/// written through a link or in a directory another user controls (see `safe_path`), on every
/// reopen too.
fn open(path: &Path) -> Result<File, safe_path::PathError> {
    safe_path::open_append(path)
}

impl AlertFile {
    pub fn open(path: &Path) -> anyhow::Result<AlertFile> {
        let file = open(path).context("the alerts file")?;
        let reopen = Arc::new(AtomicBool::new(false));
        // Every file output registers its own flag: one SIGUSR1 reopens them all.
        let sig = signal_hook::flag::register(signal_hook::consts::SIGUSR1, reopen.clone())
            .context("handle SIGUSR1")?;
        Ok(AlertFile {
            path: path.to_owned(),
            file: Some(file),
            reopen,
            sig: Some(sig),
        })
    }

    /// Reopens by name when SIGUSR1 asked (everything before was written to the old file).
    fn check_reopen(&mut self) -> Result<(), String> {
        if self.reopen.swap(false, Ordering::Relaxed) {
            self.file = None;
        }
        if self.file.is_none() {
            match open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) => return Err(format!("reopen: {e}")),
            }
        }
        Ok(())
    }
}

impl Sink for AlertFile {
    fn deliver(&mut self, batch: &[Msg]) -> Delivery {
        if let Err(e) = self.check_reopen() {
            return Delivery {
                done: 0,
                fail: Some(Fail::Retry(e)),
            };
        }
        let Some(f) = self.file.as_mut() else {
            return Delivery {
                done: 0,
                fail: Some(Fail::Retry("no file".into())),
            };
        };
        match f.write_all(&lines(batch, false)) {
            Ok(()) => Delivery::all(batch.len()),
            Err(e) => Delivery {
                done: 0,
                fail: Some(Fail::Retry(format!("write {}: {e}", self.path.display()))),
            },
        }
    }

    fn idle(&mut self) {
        // Reopen promptly even when no alert comes, so logrotate's old file is released.
        let _ = self.check_reopen();
    }

    fn close(&mut self) {
        if let Some(f) = &self.file {
            let _ = f.sync_data();
        }
        if let Some(id) = self.sig.take() {
            signal_hook::low_level::unregister(id);
        }
    }
}
