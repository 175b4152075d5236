//! `open-forensics record`: flags → validated options → `capture::record`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::BadInput;
use crate::capture::{self, privilege, Options};
use crate::rules::RuleSet;
use crate::service::stats::HealthFiles;
use crate::service::{Reloaded, Service};
use crate::store::{Retention, RotateConfig, Writer};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Stop after this long (500ms, 30s, 15m, 2h); default: until SIGINT or SIGTERM.
    #[arg(long, value_parser = duration)]
    pub duration: Option<Duration>,
    /// Start a new segment after this many events.
    #[arg(long)]
    pub max_events: Option<u64>,
    /// Start a new segment when the active one's database reaches this many bytes.
    #[arg(long)]
    pub max_bytes: Option<u64>,
    /// Start a new segment when the active one is this old (30s, 15m, 1h).
    #[arg(long, value_parser = duration)]
    pub max_age: Option<Duration>,
    /// Rule files to run live on every event.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Append alerts to this file instead of stdout.
    #[arg(long, requires = "rules", value_name = "PATH")]
    pub alerts: Option<PathBuf>,
    /// Print events, losses, rate and bytes written every 2 seconds.
    #[arg(long)]
    pub stats: bool,
    /// Sign each sealed segment's chain link with HMAC-SHA-256 under this key (at least 16
    /// bytes); `verify --key FILE` checks the signatures.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Do not record opens made through the 32-bit entry (int $0x80): saves the one check that
    /// probe makes on every syscall of the host, and leaves that route unseen.
    #[arg(long)]
    pub no_ia32: bool,
    /// Kernel ring buffer size in MiB (a power of two).
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub ring_mb: u32,
    /// Show libbpf's log and other debugging output (also OPEN_FORENSICS_DEBUG=1).
    #[arg(short, long)]
    pub verbose: bool,
    /// Settings file: a YAML mapping of these flags' long names to values (flags given here
    /// win); default /etc/open-forensics/config.yaml if it exists (/dev/null: none).
    #[arg(long, env = "OPEN_FORENSICS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Retention: remove the oldest sealed segments to keep the store within this size
    /// (512M, 10G; the active segment is never removed).
    #[arg(long, value_parser = size, value_name = "SIZE")]
    pub retain_size: Option<u64>,
    /// Retention: remove sealed segments whose newest event is older than this (30d, 12h).
    #[arg(long, value_parser = duration, value_name = "DUR")]
    pub retain_age: Option<Duration>,
    /// Health: rewrite this file with one JSON object every --stats-interval (and a Prometheus
    /// text-format file beside it, PATH.prom, unless --prom-file says where).
    #[arg(long, value_name = "PATH")]
    pub stats_file: Option<PathBuf>,
    /// Health: the Prometheus text-format file (for node_exporter's textfile collector).
    #[arg(long, value_name = "PATH")]
    pub prom_file: Option<PathBuf>,
    /// Health: how often the health files are rewritten.
    #[arg(long, value_parser = duration, default_value = "10s", value_name = "DUR")]
    pub stats_interval: Duration,
}

fn size(s: &str) -> Result<u64, String> {
    crate::service::parse_size(s)
}

fn duration(s: &str) -> Result<Duration, String> {
    crate::timespec::parse_duration(s)
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    if !args.ring_mb.is_power_of_two() || args.ring_mb > 1024 {
        return Err(BadInput(format!(
            "--ring-mb {}: must be a power of two between 1 and 1024",
            args.ring_mb
        ))
        .into());
    }
    if let Some(b) = args.max_bytes {
        let most = crate::store::DB_MAX / 2;
        if b == 0 || b > most {
            return Err(BadInput(format!(
                "--max-bytes {b}: must be between 1 and {most} (a segment larger than that is refused by readers)"
            ))
            .into());
        }
    }
    let sign_key = args.sign_key.as_deref().map(super::read_key).transpose()?;
    let defaults = RotateConfig::default();
    let rotate = RotateConfig {
        max_events: args.max_events.unwrap_or(defaults.max_events),
        max_bytes: args.max_bytes.unwrap_or(defaults.max_bytes),
        max_age: args.max_age.unwrap_or(defaults.max_age),
        ..defaults
    };
    let debug = args.verbose
        || std::env::var("OPEN_FORENSICS_DEBUG").is_ok_and(|v| !v.is_empty() && v != "0");
    let opts = Options {
        ring_bytes: args.ring_mb << 20,
        duration: args.duration,
        stats_every: args.stats.then_some(Duration::from_secs(2)),
        debug,
        no_ia32: args.no_ia32,
    };
    for p in [&args.stats_file, &args.prom_file].into_iter().flatten() {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            return Err(BadInput(format!(
                "{}: its directory does not exist (health files are replaced, not created with their directory)",
                p.display()
            ))
            .into());
        }
    }
    let rules = load_rules(&args.rules)?;
    let mut service = Service::new(retention(&args), Some(Box::new(reload)));
    if args.stats_file.is_some() || args.prom_file.is_some() {
        service.health = Some(HealthFiles {
            prom: Some(match &args.stats_file {
                Some(f) => crate::service::prom_path(f, args.prom_file.clone()),
                None => args.prom_file.clone().unwrap_or_default(),
            }),
            json: args.stats_file.clone(),
        });
        service.health_every = args.stats_interval.max(Duration::from_secs(1));
    }
    service.alerts_output = if args.alerts.is_some() {
        "file".into()
    } else {
        "stdout".into()
    };
    service.queue_capacity = capture::QUEUE_BATCHES as u64;
    // Before the store is touched: a user without the privilege gets exit 2 and no store.
    privilege::check()?;
    let stop = capture::stop_on_signals()?;

    let mut writer = Writer::open(store, rotate)
        .with_context(|| format!("open the store {}", store.display()))?;
    for w in writer.take_warnings() {
        eprintln!("open-forensics: warning: {w}");
    }
    if let Some(k) = sign_key {
        writer.set_sign_key(k);
    }
    let alerts: Box<dyn Write + Send> = match &args.alerts {
        None => Box::new(std::io::LineWriter::new(std::io::stdout())),
        Some(p) => Box::new(std::io::BufWriter::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("open the alerts file {}", p.display()))?,
        )),
    };
    let s = capture::record(&opts, writer, rules, alerts, stop, Some(Box::new(service)))?;
    // The last seals happened after the store thread's last retention pass.
    match crate::store::retain(store, &retention(&args), crate::timespec::now_ns()) {
        Ok(Some(r)) => crate::service::report_removal(&r),
        Ok(None) => {}
        Err(e) => eprintln!("open-forensics: warning: retention: {e}"),
    }
    for w in &s.warnings {
        eprintln!("open-forensics: warning: {w}");
    }
    if s.unsealed > 0 {
        eprintln!(
            "open-forensics: warning: {} segment(s) could not be sealed and stay active databases; the next writer seals them",
            s.unsealed
        );
    }
    if !s.head.is_empty() {
        // Ship this line off the host: `verify --head` then proves nothing before it changed.
        eprintln!("open-forensics: chain head {}", s.head);
    }
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "open-forensics: recorded {} events, lost {}, {:.0} events/s over {:.1}s, {} bytes written in {} segment(s) to {}{}",
        s.events,
        s.lost,
        s.events as f64 / secs,
        secs,
        s.bytes_written,
        s.segments_sealed,
        store.display(),
        if s.late > 0 {
            format!(" ({} stored out of order)", s.late)
        } else {
            String::new()
        }
    );
    Ok(())
}

fn load_rules(files: &[PathBuf]) -> anyhow::Result<Option<RuleSet>> {
    if files.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        RuleSet::load(files).map_err(|e| BadInput(format!("--rules: {e}")))?,
    ))
}

fn retention(args: &Args) -> Retention {
    Retention {
        max_bytes: args.retain_size,
        max_age: args.retain_age,
    }
}

/// SIGHUP: the command line and the config file read again, as at the start (flags still win),
/// and the rule files they name loaded; any error leaves the running set in force.
fn reload() -> anyhow::Result<Reloaded> {
    let cli = super::parse_again()?;
    let super::Command::Record(args) = cli.command else {
        anyhow::bail!("the command line no longer names record");
    };
    Ok(Reloaded {
        rules: load_rules(&args.rules)?,
        retention: retention(&args),
    })
}
