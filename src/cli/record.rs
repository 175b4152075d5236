//! `open-forensics record`: flags → validated options → `recorder::record`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::BadInput;
use crate::alerts::{Outputs, Target};
use crate::capture::{self, privilege};
use crate::recorder::{self, Options};
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
    /// Append alerts to this file (repeatable; reopened on SIGUSR1). With no alert output given,
    /// alerts go to stdout.
    #[arg(long, requires = "rules", value_name = "PATH")]
    pub alerts: Vec<PathBuf>,
    /// Print alerts on stdout too (the default when no other alert output is given).
    #[arg(long, requires = "rules")]
    pub alert_stdout: bool,
    /// Send alerts to syslog: RFC 5424, one datagram each, to --syslog-socket.
    #[arg(long, requires = "rules")]
    pub alert_syslog: bool,
    /// The syslog socket (a Unix datagram socket).
    #[arg(long, default_value = "/dev/log", value_name = "PATH")]
    pub syslog_socket: PathBuf,
    /// The syslog facility of alerts (the severity comes from the rule's).
    #[arg(long, value_enum, default_value = "authpriv", value_name = "NAME")]
    pub syslog_facility: crate::alerts::Facility,
    /// POST alerts in batches to this http:// URL (repeatable; no TLS: use a local relay).
    #[arg(long, requires = "rules", value_name = "URL")]
    pub alert_http: Vec<String>,
    /// At most this many alerts per HTTP POST.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub http_batch: usize,
    /// Give up on an HTTP request (and retry it) after this long.
    #[arg(long, value_parser = duration, default_value = "10s", value_name = "DUR")]
    pub http_timeout: Duration,
    /// The body of an HTTP POST: NDJSON lines or a JSON array.
    #[arg(long, value_enum, default_value = "ndjson", value_name = "FORMAT")]
    pub http_format: crate::alerts::HttpFormat,
    /// Run this command (`/bin/sh -c`) with alerts as JSON lines on its stdin; restarted with
    /// backoff when it exits (repeatable).
    #[arg(long, requires = "rules", value_name = "COMMAND")]
    pub alert_program: Vec<String>,
    /// How alert lines are written to every output: our JSON, or OCSF (Detection Finding),
    /// ECS or Timesketch (docs/formats.md). On a terminal, stdout still shows one line each.
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    pub alerts_format: crate::output::foreign::LineFormat,
    /// Alerts each output holds while it is slow or down; beyond that they are dropped for it
    /// and counted (in --stats and the store's loss records).
    #[arg(long, default_value_t = crate::alerts::DEFAULT_QUEUE, value_name = "N")]
    pub alert_queue: usize,
    /// Print events, losses, rate and bytes written every 2 seconds.
    #[arg(long)]
    pub stats: bool,
    /// Sign each sealed segment's chain link with HMAC-SHA-256 under this key (at least 16
    /// bytes); `verify --key FILE` checks the signatures.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Do not record opens made through the 32-bit entry (int $0x80): one tracepoint per open
    /// syscall instead of the default probe on every syscall's exit, so no other syscall pays
    /// for capture, and that route goes unseen.
    #[arg(long)]
    pub no_ia32: bool,
    /// Kernel ring buffer size in MiB (a power of two).
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub ring_mb: u32,
    /// Lower the recorder's nice value by this much (0-20; 0: leave it), as auditd's
    /// priority_boost does: on a host busy on every core the recorder keeps up instead of
    /// losing opens.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub priority_boost: u8,
    /// How long events are held to be stored and evaluated in kernel-time order (0-1s): a
    /// record delayed longer than this between its timestamp and the ring (a vCPU the
    /// hypervisor stopped) is stored out of order and counted. Longer costs the recorder memory
    /// and CPU (the held events leave the CPU's cache) and delays live alerts as much.
    #[arg(long, value_parser = duration, value_name = "DUR",
          default_value = crate::recorder::DEFAULT_REORDER_WINDOW)]
    pub reorder_window: Duration,
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

/// The alert outputs the flags ask for (stdout when none is named), checked.
fn alert_targets(args: &Args) -> Result<Vec<Target>, BadInput> {
    if !(1..=10_000).contains(&args.http_batch) {
        return Err(BadInput(format!(
            "--http-batch {}: must be between 1 and 10000",
            args.http_batch
        )));
    }
    if !(1..=1_000_000).contains(&args.alert_queue) {
        return Err(BadInput(format!(
            "--alert-queue {}: must be between 1 and 1000000",
            args.alert_queue
        )));
    }
    if args.http_timeout.is_zero() {
        return Err(BadInput("--http-timeout: must be more than 0".into()));
    }
    let mut t = Vec::new();
    let named = !args.alerts.is_empty()
        || args.alert_syslog
        || !args.alert_http.is_empty()
        || !args.alert_program.is_empty();
    if args.alert_stdout || !named {
        t.push(Target::Stdout);
    }
    t.extend(args.alerts.iter().cloned().map(Target::File));
    if args.alert_syslog {
        t.push(Target::Syslog {
            socket: args.syslog_socket.clone(),
            facility: args.syslog_facility,
        });
    }
    for url in &args.alert_http {
        crate::alerts::check_http_url(url)?;
        t.push(Target::Http {
            url: url.clone(),
            batch: args.http_batch,
            timeout: args.http_timeout,
            format: args.http_format,
        });
    }
    for cmd in &args.alert_program {
        if cmd.trim().is_empty() {
            return Err(BadInput("--alert-program: the command is empty".into()));
        }
        t.push(Target::Program(cmd.clone()));
    }
    Ok(t)
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
    // Held events take memory: ~200 bytes each, 200 MB at 1M events/s for 1 s.
    if args.reorder_window > Duration::from_secs(1) {
        return Err(BadInput(format!(
            "--reorder-window {:?}: must be at most 1s",
            args.reorder_window
        ))
        .into());
    }
    if args.priority_boost > 20 {
        return Err(BadInput(format!(
            "--priority-boost {}: must be between 0 and 20",
            args.priority_boost
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
    let targets = alert_targets(&args)?;
    let defaults = RotateConfig::default();
    let rotate = RotateConfig {
        max_events: args.max_events.unwrap_or(defaults.max_events),
        max_bytes: args.max_bytes.unwrap_or(defaults.max_bytes),
        max_age: args.max_age.unwrap_or(defaults.max_age),
        ..defaults
    };
    if args.verbose {
        crate::diag::set_verbose(true);
    }
    let opts = Options {
        capture: capture::Options {
            ring_bytes: args.ring_mb << 20,
            no_ia32: args.no_ia32,
        },
        reorder_window: args.reorder_window,
        duration: args.duration,
        stats_every: args.stats.then_some(Duration::from_secs(2)),
    };
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
        if let Some(h) = &service.health {
            // Whatever is wrong with it (a link, a missing or shared directory) is the user's to fix.
            h.check()
                .map_err(|e| BadInput(format!("a health file: {e}")))?;
        }
    }
    service.queue_capacity = capture::QUEUE_BATCHES as u64;
    // Before the store is touched: a user without the privilege gets exit 2 and no store.
    privilege::check()?;
    // Before any thread is started: threads inherit the nice value of the one creating them.
    if let Err(e) = recorder::boost_priority(args.priority_boost) {
        eprintln!(
            "open-forensics: warning: --priority-boost {}: {e}",
            args.priority_boost
        );
    }
    let stop = recorder::stop_on_signals()?;

    let mut writer = Writer::open(store, rotate)
        .with_context(|| format!("open the store {}", store.display()))?;
    for w in writer.take_warnings() {
        eprintln!("open-forensics: warning: {w}");
    }
    if let Some(k) = sign_key.clone() {
        writer.set_sign_key(k);
    }
    let alerts = if rules.is_some() {
        Outputs::start(&targets, args.alert_queue)?.line_format(args.alerts_format)
    } else {
        Outputs::none()
    };
    let s = recorder::record(&opts, writer, rules, alerts, stop, Some(Box::new(service)))?;
    // The last seals happened after the store thread's last retention pass. With the limits in
    // force at the end, not the start's: a reload that raised or dropped a limit must not see
    // segments removed under the old one.
    let keep = s.retention.clone().unwrap_or_else(|| retention(&args));
    match crate::store::retain(store, &keep, crate::timespec::now_ns(), sign_key.as_deref()) {
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
    for o in &s.outputs {
        eprintln!(
            "open-forensics: alerts to {}: {} sent, {} dropped{}",
            o.name,
            o.sent,
            o.dropped,
            if o.dropped > 0 {
                " (recorded as loss records `alert_dropped`; replay shows every alert)"
            } else {
                ""
            }
        );
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
    if s.unstored > 0 {
        // The one failure of a full disk: a loss the store does not name.
        return Err(super::Failed(
            "losses the store does not name (the disk stayed full; see the warning above)".into(),
        )
        .into());
    }
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
