//! Syslog: one RFC 5424 message per alert, one datagram each, to a local Unix datagram socket
//! (`/dev/log`, where journald and rsyslog listen).
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME open-forensics PID MSGID - MSG
//! ```
//!
//! - `PRI` is facility × 8 + severity; the facility is `--syslog-facility` (default `authpriv`:
//!   alerts quote paths and command lines, and `authpriv` is the facility syslog daemons keep
//!   private by convention); the severity comes from the rule's: `critical` → 2 (crit), `high` →
//!   3 (err), `medium` → 4 (warning), `low` → 5 (notice), `info` → 6 (info).
//! - `TIMESTAMP` is the alert's `ts` (the event's time) to the microsecond, as RFC 5424 allows.
//! - `MSGID` is `alert` or `alert_summary`; there is no structured data (`-`): `MSG` is the alert's
//!   JSON line itself, the same bytes as every other output, so one parser serves all. It has no
//!   UTF-8 BOM (RFC 5424 recommends one; JSON parsers reject it, and syslog daemons accept both).
//!
//! A missing or refusing socket (the daemon restarting) is retried with backoff; a message too
//! large for a datagram (`EMSGSIZE`) is dropped and counted.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use super::{Delivery, Fail, Msg, Sink};
use crate::rules::Severity;

/// Syslog facilities by name (RFC 5424 §6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    pub fn code(self) -> u8 {
        match self {
            Facility::Kern => 0,
            Facility::User => 1,
            Facility::Mail => 2,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Syslog => 5,
            Facility::Lpr => 6,
            Facility::News => 7,
            Facility::Uucp => 8,
            Facility::Cron => 9,
            Facility::Authpriv => 10,
            Facility::Ftp => 11,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// The syslog severity of a rule's severity.
pub fn severity_code(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// An RFC 5424 HOSTNAME: printable US-ASCII, at most 255, else the nil value.
fn header_host(h: &str) -> String {
    if !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| (33..=126).contains(&b)) {
        h.to_owned()
    } else {
        "-".to_owned()
    }
}

/// One message, as sent.
pub(crate) fn format(m: &Msg, facility: Facility, host: &str, pid: u32) -> Vec<u8> {
    let pri = u32::from(facility.code()) * 8 + u32::from(severity_code(m.severity));
    let ts = chrono::DateTime::from_timestamp_nanos(m.ts_ns)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let msgid = if m.summary { "alert_summary" } else { "alert" };
    let mut out = format!("<{pri}>1 {ts} {host} open-forensics {pid} {msgid} - ").into_bytes();
    out.extend_from_slice(m.line.as_bytes());
    out
}

pub(crate) struct Syslog {
    socket: PathBuf,
    facility: Facility,
    host: String,
    pid: u32,
    sock: UnixDatagram,
}

impl Syslog {
    pub fn new(socket: PathBuf, facility: Facility) -> anyhow::Result<Syslog> {
        let sock = UnixDatagram::unbound()?;
        // A receiver whose queue is full blocks senders: bound it, then retry.
        sock.set_write_timeout(Some(Duration::from_secs(1)))?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        Ok(Syslog {
            socket,
            facility,
            host: header_host(host.trim()),
            pid: std::process::id(),
            sock,
        })
    }
}

impl Sink for Syslog {
    fn max_batch(&self) -> usize {
        64
    }

    fn deliver(&mut self, batch: &[Msg]) -> Delivery {
        for (i, m) in batch.iter().enumerate() {
            let dgram = format(m, self.facility, &self.host, self.pid);
            if let Err(e) = self.sock.send_to(&dgram, &self.socket) {
                let why = format!("send to {}: {e}", self.socket.display());
                let fail = if e.raw_os_error() == Some(libc::EMSGSIZE) {
                    Fail::DropOne(why)
                } else {
                    Fail::Retry(why)
                };
                return Delivery {
                    done: i,
                    fail: Some(fail),
                };
            }
        }
        Delivery::all(batch.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn messages_are_rfc5424_with_the_json_as_msg() {
        let m = Msg {
            line: Arc::from(r#"{"a":1}"#),
            text: None,
            severity: Severity::High,
            ts_ns: 1_764_000_000_123_456_789,
            summary: false,
        };
        let got = String::from_utf8(format(&m, Facility::Authpriv, "h1", 42)).unwrap();
        // authpriv (10) * 8 + err (3)
        assert_eq!(
            got,
            r#"<83>1 2025-11-24T16:00:00.123456Z h1 open-forensics 42 alert - {"a":1}"#
        );
        let s = Msg {
            summary: true,
            severity: Severity::Info,
            ..m
        };
        let got = String::from_utf8(format(&s, Facility::Local0, "-", 1)).unwrap();
        assert!(got.starts_with("<134>1 "), "{got}");
        assert!(got.contains(" alert_summary - "), "{got}");
    }

    #[test]
    fn a_hostname_that_rfc5424_forbids_is_nil() {
        assert_eq!(header_host("web-1.example"), "web-1.example");
        assert_eq!(header_host("has space"), "-");
        assert_eq!(header_host(""), "-");
    }
}
