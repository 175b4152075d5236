//! Command-line parsing and dispatch: one module per subcommand, no business logic here.

mod debuginfo;
pub mod exit;
mod export;
mod forest;
mod import;
mod install;
mod manpage;
mod proc;
mod prune;
mod query;
mod record;
mod replay;
mod report;
mod rules;
mod rules_sigma;
mod rules_test;
mod segments;
mod shell;
mod timeline;
mod verify;

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::rules::{RuleSet, RulesError};
use crate::store::{self, Reader, ScanStats, TimeRange};

#[derive(Parser, Debug)]
#[command(
    name = "open-forensics",
    version,
    about = "Record every file open with eBPF; replay rules and query history"
)]
pub struct Cli {
    /// Store directory.
    #[arg(long, global = true, env = "OPEN_FORENSICS_STORE", default_value = store::DEFAULT_DIR)]
    pub store: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Capture every file open on this host into the store (root).
    Record(Box<record::Args>),
    /// Re-run rules over stored history and print the alerts they would have raised live.
    Replay(replay::Args),
    /// Query stored history: by rule, by filters, or with named SQL.
    Query(Box<query::Args>),
    /// One process's lineage, images, children and opens.
    Proc(proc::Args),
    /// Write a self-contained HTML case report: timeline, process tree, alerts, verify verdict.
    Report(Box<report::Args>),
    /// Events, failures and alerts per time bucket, with losses and outages marked.
    Timeline(timeline::Args),
    /// Check or test rule files.
    #[command(subcommand)]
    Rules(rules::Command),
    /// Append events from JSON lines (a file, or - for stdin) to the store.
    Import(import::Args),
    /// Print stored events as JSON lines.
    Export(export::Args),
    /// List the store's segments.
    Segments(segments::Args),
    /// Delete sealed segments whose events are all older than a time.
    Prune(prune::Args),
    /// Check every sealed segment and the store's hash chain for tampering.
    Verify(verify::Args),
    /// Install the binary, the systemd unit, a default config, completions and man pages.
    Install(install::Args),
    /// Print a shell completion script (bash, zsh, fish).
    Completions(shell::CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(shell::ManArgs),
}

pub use crate::error::{BadInput, Failed};

pub fn main() -> ExitCode {
    // Everything this process creates (segments, alerts files) is for the owner only.
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe { libc::umask(0o077) };
    crate::diag::from_env();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let cli = match parse(&argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(io::stderr(), "open-forensics: {}", exit::message(&e));
            return ExitCode::from(exit::exit_code(&e));
        }
    };
    let _ = ARGV.set(argv);
    let result = match cli.command {
        Command::Record(a) => record::run(&cli.store, *a),
        Command::Replay(a) => replay::run(&cli.store, a),
        Command::Query(a) => query::run(&cli.store, *a),
        Command::Proc(a) => proc::run(&cli.store, a),
        Command::Report(a) => report::run(&cli.store, *a),
        Command::Timeline(a) => timeline::run(&cli.store, a),
        Command::Rules(c) => rules::run(&cli.store, c),
        Command::Import(a) => import::run(&cli.store, a),
        Command::Export(a) => export::run(&cli.store, a),
        Command::Segments(a) => segments::run(&cli.store, a),
        Command::Prune(a) => prune::run(&cli.store, a),
        Command::Verify(a) => verify::run(&cli.store, a),
        Command::Install(a) => install::run(a),
        Command::Completions(a) => shell::completions(a),
        Command::Man(a) => shell::man(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit::exit_code(&e);
            if !e.chain().any(|c| c.is::<Failed>()) || e.chain().count() > 1 {
                let _ = writeln!(io::stderr(), "open-forensics: {}", exit::message(&e));
            }
            ExitCode::from(code)
        }
    }
}

/// The command line, kept for SIGHUP reloads (they parse it again with the config file).
static ARGV: OnceLock<Vec<OsString>> = OnceLock::new();

/// The whole command tree (for completions and man pages).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses `argv` (clap's own errors, `--help` and `--version` exit here, as usual); for
/// `record`, adds the config file's settings for every flag not given (see `service::config`).
fn parse(argv: &[OsString]) -> anyhow::Result<Cli> {
    let mut cmd = Cli::command();
    if argv.iter().skip(1).any(|a| a == "--version") {
        // Probed only when asked for.
        cmd = cmd.long_version(crate::service::features::long_version());
    }
    let m = match with_config(cmd, argv) {
        Ok(m) => m,
        Err(e) => match e.downcast::<clap::Error>() {
            Ok(clap_error) => clap_error.exit(),
            Err(e) => return Err(e),
        },
    };
    Ok(Cli::from_arg_matches(&m).unwrap_or_else(|e| e.exit()))
}

/// The command line as at the start, with the config file read again.
pub(crate) fn parse_again() -> anyhow::Result<Cli> {
    let argv = ARGV.get().cloned().unwrap_or_default();
    let m = with_config(Cli::command(), &argv)?;
    Ok(Cli::from_arg_matches(&m)?)
}

/// The command line's matches, with the config file's settings for `record`. A requirement the
/// command line alone misses (`--alerts` needs `--rules`) may be met by the config file, so for
/// `record` the first look is lenient and the final parse, with the config, is strict. Clap's own
/// errors come back as `clap::Error`: the caller decides whether they end the process (a reload
/// must not).
fn with_config(mut cmd: clap::Command, argv: &[OsString]) -> anyhow::Result<ArgMatches> {
    use crate::service::config;
    let m = match cmd.clone().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument => {
            match cmd.clone().ignore_errors(true).try_get_matches_from(argv) {
                Ok(m) if m.subcommand_name() == Some("record") => m,
                _ => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    let Some(("record", sm)) = m.subcommand() else {
        return Ok(m);
    };
    let Some(path) = config::locate(sm.get_one::<PathBuf>("config").map(|p| p.as_path())) else {
        return Ok(cmd.try_get_matches_from(argv)?);
    };
    let mut file = config::ConfigFile::load(&path)?;
    cmd.build();
    let sub = cmd
        .find_subcommand("record")
        .ok_or_else(|| anyhow::anyhow!("no record command"))?;
    let (extra, prov) = config::args_for(&mut file, sub, sm)?;
    let full: Vec<OsString> = argv.iter().cloned().chain(extra).collect();
    cmd.try_get_matches_from(full)
        .map_err(|e| config::explain(&mut file, &prov, &e).into())
}

/// A signing key file: its bytes, at least 16 of them (an HMAC key shorter than that guards
/// nothing).
pub fn read_key(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let key = std::fs::read(path)
        .map_err(|e| BadInput(format!("reading the key {}: {e}", path.display())))?;
    if key.len() < 16 {
        return Err(BadInput(format!(
            "{}: a signing key needs at least 16 bytes (e.g. head -c 32 /dev/urandom > {})",
            path.display(),
            path.display()
        ))
        .into());
    }
    Ok(key)
}

/// `open-forensics export | head` is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `--since` / `--until`, shared by every command that reads history.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TimeArgs {
    /// Only events at or after this time: RFC3339, a local date or time (2026-12-06,
    /// "2026-12-06 14:30"), now, today, yesterday, or a duration ago (15m, 2h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events at or before this time (the same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
}

impl TimeArgs {
    pub fn range(&self) -> anyhow::Result<TimeRange> {
        let now = crate::timespec::now_ns();
        let parse = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<i64>> {
            v.as_deref()
                .map(|s| {
                    crate::timespec::parse_time(s, now)
                        .map_err(|e| BadInput(format!("--{flag}: {e}")).into())
                })
                .transpose()
        };
        let range = TimeRange {
            since: parse("since", &self.since)?,
            until: parse("until", &self.until)?,
        };
        // An empty window is a mistake, not an answer: it used to print nothing without a word.
        if let (Some(since), Some(until)) = (range.since, range.until) {
            if until < since {
                return Err(BadInput(format!(
                    "--until ({}) is before --since ({}): the window is empty",
                    crate::timespec::format_ts(until),
                    crate::timespec::format_ts(since)
                ))
                .into());
            }
        }
        Ok(range)
    }
}

/// Prints what a scan could not read and how complete the answer is
/// ([`crate::query::completeness`]); returns an error (exit 1) if any segment was unreadable,
/// after everything readable was printed.
///
/// With `json` (the answer went out as JSON lines) each statement is itself one JSON object on
/// stderr (`{"warning":"incomplete",…}`, `{"warning":"outage",…}`, `{"notice":"alerts_dropped",…}`…),
/// so a script can tell a complete answer from one with holes without parsing prose.
pub fn report_scan(stats: &ScanStats, range: &TimeRange, json: bool) -> anyhow::Result<()> {
    let mut err = io::stderr().lock();
    for w in &stats.warnings {
        let _ = writeln!(err, "open-forensics: warning: {w}");
    }
    for s in crate::query::completeness::statements(stats, range) {
        say(&mut err, json, &s);
    }
    for e in &stats.errors {
        let _ = writeln!(err, "open-forensics: error: {e}");
    }
    if stats.errors.is_empty() {
        Ok(())
    } else {
        Err(Failed(format!(
            "{} segment(s) could not be read",
            stats.errors.len()
        ))
        .into())
    }
}

/// With `--stats` (`started` given): what reading the answer cost, on stderr, after it.
pub fn say_cost(stats: &ScanStats, json: bool, started: Option<std::time::Instant>) {
    if let Some(t) = started {
        let s = crate::query::scan_cost::statement(stats, t.elapsed());
        say(&mut io::stderr().lock(), json, &s);
    }
}

/// Prints one statement about an answer on stderr: its JSON object when the answer is JSON
/// lines, else its prose.
pub fn say(err: &mut impl Write, json: bool, s: &crate::query::completeness::Statement) {
    let _ = if json {
        writeln!(err, "{}", s.json)
    } else {
        writeln!(err, "open-forensics: {}", s.text)
    };
}

/// Loads rule files; any problem in them is the user's to fix (exit 2).
pub fn load_rules(files: &[PathBuf]) -> anyhow::Result<RuleSet> {
    RuleSet::load(files).map_err(|e| match e {
        RulesError::Invalid(_) | RulesError::Io { .. } => BadInput(e.to_string()).into(),
    })
}

/// When the events of `range` in the store lie (ns): from the first to the last event of its
/// segments, within the range. Tables show times as short as this allows.
pub fn span(reader: &Reader, range: &TimeRange) -> (i64, i64) {
    let segs = || reader.segments_in(range);
    let lo = segs().filter_map(|s| s.meta.first_ts_ns).min();
    let hi = segs().filter_map(|s| s.meta.last_ts_ns).max();
    let now = crate::timespec::now_ns();
    (
        lo.unwrap_or(now).max(range.since.unwrap_or(i64::MIN)),
        hi.unwrap_or(now).min(range.until.unwrap_or(i64::MAX)),
    )
}

/// A progress bar over the events of `range`, on stderr when it is a terminal; hidden otherwise.
pub fn progress(reader: &Reader, range: &TimeRange, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let total: u64 = reader.segments_in(range).map(|s| s.meta.events).sum();
    let style = ProgressStyle::with_template(&format!(
        "{what} {{bar:30}} {{human_pos}}/{{human_len}} events (eta {{steady_eta}})"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key(
        "steady_eta",
        |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&eta_text(s.elapsed(), s.pos(), s.len().unwrap_or(0)));
        },
    );
    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(style)
}

/// How long a scan runs before its rate is trusted for an ETA: the first steps open and
/// decompress segments before events flow.
const ETA_WARM_UP: std::time::Duration = std::time::Duration::from_secs(2);

/// The time left at the average rate since the start, after [`ETA_WARM_UP`]: indicatif's own
/// estimate weighs the first steps and started about 20x too high (#28).
fn eta_text(elapsed: std::time::Duration, done: u64, total: u64) -> String {
    if elapsed < ETA_WARM_UP || done == 0 {
        return "…".into();
    }
    let left = total.saturating_sub(done) as f64 / done as f64 * elapsed.as_secs_f64();
    indicatif::HumanDuration(std::time::Duration::from_secs_f64(left)).to_string()
}

/// Events between progress-bar updates (an update per event would cost more than the rules).
pub const PROGRESS_STEP: u64 = 1 << 14;

/// A locked, buffered stdout.
pub fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::with_capacity(1 << 16, io::stdout().lock())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::eta_text;

    #[test]
    fn the_eta_waits_for_a_rate_then_follows_the_average() {
        assert_eq!(eta_text(Duration::from_millis(1500), 10, 100), "…");
        assert_eq!(eta_text(Duration::from_secs(5), 0, 100), "…");
        // 100 of 300 in 4 s: 200 more at the same rate is 8 s.
        assert_eq!(eta_text(Duration::from_secs(4), 100, 300), "8 seconds");
        assert_eq!(eta_text(Duration::from_secs(4), 300, 300), "0 seconds");
    }
}
