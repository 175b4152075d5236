//! How an answer is shown to a person: the shared display flags (`--utc`, `--wide`,
//! `--no-pager`, `--color`) of every command that prints one, and the terminal they print to.

use std::io::{self, IsTerminal};

use super::colour::ColorWhen;
use super::Format;

/// The width when the terminal's is unknown (or 0): what most terminals have at least.
pub const DEFAULT_WIDTH: u16 = 100;

/// The display flags, one definition flattened into each command.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ViewArgs {
    /// Show times in UTC (default: local time, `TZ` honoured). JSON lines and CSV are always
    /// RFC3339 UTC.
    #[arg(long)]
    pub utc: bool,
    /// Show every column and whole paths in tables, wider than the terminal if need be
    /// (default: the least useful columns are dropped to fit).
    #[arg(long)]
    pub wide: bool,
    /// Print straight to the terminal, without $PAGER (default `less -FRSX`).
    #[arg(long)]
    pub no_pager: bool,
    /// Colour severities: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// Lay out as for a terminal even when stdout is not one (the width from COLUMNS): for tests.
    #[arg(long, hide = true)]
    pub terminal: bool,
}

/// The display settings, resolved against the terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Stdout is a terminal (or `--terminal`): a person reads it as it comes.
    pub terminal: bool,
    /// Columns to fit: `COLUMNS`, else the terminal's, else [`DEFAULT_WIDTH`].
    pub width: u16,
    pub utc: bool,
    pub wide: bool,
    pub colour: bool,
    /// Through `$PAGER` (when stdout is a terminal).
    pub page: bool,
}

impl ViewArgs {
    pub fn view(&self) -> View {
        let terminal = self.terminal || io::stdout().is_terminal();
        View {
            terminal,
            width: width(),
            utc: self.utc,
            wide: self.wide,
            colour: self.color.wanted(terminal),
            page: !self.no_pager,
        }
    }
}

impl View {
    /// The defaults, for a command without the flags.
    pub fn detect() -> View {
        ViewArgs::default().view()
    }

    /// The explicit choice, else a table on a terminal and JSON lines otherwise.
    pub fn format(&self, choice: Option<Format>) -> Format {
        choice.unwrap_or(if self.terminal {
            Format::Table
        } else {
            Format::Jsonl
        })
    }
}

/// `COLUMNS` when it is a positive number, else stdout's terminal's width, else the default.
fn width() -> u16 {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|&c| c > 0);
    from_env.or_else(terminal_width).unwrap_or(DEFAULT_WIDTH)
}

/// Stdout's terminal's width, if it is a terminal that knows it (a serial console says 0).
fn terminal_width() -> Option<u16> {
    if !io::stdout().is_terminal() {
        return None;
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass, on our own stdout.
    let r = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(ws.ws_col)
}
