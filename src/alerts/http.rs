//! HTTP: a `POST` per batch of alerts to `--alert-http URL`, plain HTTP only (ureq without TLS;
//! for HTTPS, point it at a local relay — Vector, Fluent Bit, an nginx `proxy_pass`).
//!
//! - Body: by default NDJSON (`Content-Type: application/x-ndjson`, one alert JSON line per line,
//!   each ending in `\n`); with `--http-format array`, one JSON array (`application/json`).
//! - A batch is what the queue holds when the output is ready, at most `--http-batch` alerts
//!   (100): a quiet host posts each alert at once, a storm posts full batches.
//! - `X-Open-Forensics-Batch: <n>` numbers batches (per recorder run) and stays the same when a
//!   batch is retried, so a receiver can drop the duplicate of a batch it stored but failed to
//!   acknowledge. Delivery is at least once: a batch whose response never came is sent again.
//! - Any 2xx acknowledges the batch. 408, 429, 5xx, a refused or reset connection and a timeout
//!   (`--http-timeout`, 10 s, for the whole request) are retried with backoff. Other statuses
//!   (400, 401, 404, …) are the receiver refusing these alerts for good: the batch is dropped and
//!   counted, since retrying would only block every alert behind it.
//! - No proxy is used (environment proxy variables are ignored): alerts go where the URL says.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::{Delivery, Fail, HttpFormat, Msg, Sink};
use crate::error::BadInput;

pub(crate) struct Http {
    url: String,
    agent: ureq::Agent,
    batch: usize,
    format: HttpFormat,
    seq: u64,
    timeout: Duration,
    /// When the recorder stops: no request outlives the grace period.
    deadline: Arc<OnceLock<Instant>>,
    /// The number of the batch being retried, and its first line (by address) to know it again.
    retrying: Option<(u64, usize)>,
}

/// Checks an `--alert-http` URL: `http://host[:port]/path`.
pub fn check_url(url: &str) -> Result<(), BadInput> {
    if url.starts_with("https://") {
        return Err(BadInput(format!(
            "--alert-http {url}: HTTPS is not built in (no TLS library); send to a local relay over http:// instead"
        )));
    }
    let ok = url
        .strip_prefix("http://")
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && url.parse::<ureq::http::Uri>().is_ok();
    if !ok {
        return Err(BadInput(format!(
            "--alert-http {url}: expected a URL like http://127.0.0.1:8080/alerts"
        )));
    }
    Ok(())
}

impl Http {
    pub fn new(
        url: &str,
        batch: usize,
        timeout: Duration,
        format: HttpFormat,
        deadline: Arc<OnceLock<Instant>>,
    ) -> anyhow::Result<Http> {
        check_url(url)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .proxy(None)
            .user_agent(concat!("open-forensics/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Http {
            url: url.to_owned(),
            agent,
            batch: batch.max(1),
            format,
            seq: 0,
            timeout,
            deadline,
            retrying: None,
        })
    }

    fn body(&self, batch: &[Msg]) -> (Vec<u8>, &'static str) {
        let mut b = Vec::with_capacity(batch.iter().map(|m| m.line.len() + 1).sum::<usize>() + 2);
        match self.format {
            HttpFormat::Ndjson => {
                for m in batch {
                    b.extend_from_slice(m.line.as_bytes());
                    b.push(b'\n');
                }
                (b, "application/x-ndjson")
            }
            HttpFormat::Array => {
                b.push(b'[');
                for (i, m) in batch.iter().enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    b.extend_from_slice(m.line.as_bytes());
                }
                b.push(b']');
                (b, "application/json")
            }
        }
    }
}

impl Sink for Http {
    fn max_batch(&self) -> usize {
        self.batch
    }

    fn deliver(&mut self, batch: &[Msg]) -> Delivery {
        let first = batch.first().map_or(0, |m| m.line.as_ptr() as usize);
        let n = match self.retrying {
            Some((n, f)) if f == first => n,
            _ => {
                self.seq += 1;
                self.retrying = Some((self.seq, first));
                self.seq
            }
        };
        let (body, ctype) = self.body(batch);
        let timeout = match self.deadline.get() {
            Some(d) => self
                .timeout
                .min(d.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(1)),
            None => self.timeout,
        };
        let res = self
            .agent
            .post(&self.url)
            .header("Content-Type", ctype)
            .header("X-Open-Forensics-Batch", n.to_string())
            .config()
            .timeout_global(Some(timeout))
            .build()
            .send(&body[..]);
        let fail = match res {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                // Read (a bounded amount of) the answer so the connection can be reused.
                let _ = resp.body_mut().with_config().limit(64 << 10).read_to_vec();
                match status {
                    200..=299 => None,
                    408 | 429 | 500..=599 => {
                        Some(Fail::Retry(format!("{} answered {status}", self.url)))
                    }
                    _ => Some(Fail::DropAll(format!(
                        "{} refused alerts with status {status}; those batches are dropped",
                        self.url
                    ))),
                }
            }
            Err(e) => Some(Fail::Retry(format!("POST {}: {e}", self.url))),
        };
        match fail {
            Some(f @ Fail::Retry(_)) => Delivery {
                done: 0,
                fail: Some(f),
            },
            other => {
                self.retrying = None;
                match other {
                    None => Delivery::all(batch.len()),
                    f => Delivery { done: 0, fail: f },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_plain_http_with_a_host() {
        assert!(check_url("http://127.0.0.1:8080/alerts").is_ok());
        assert!(check_url("http://localhost/").is_ok());
        assert!(check_url("https://siem.example/alerts")
            .unwrap_err()
            .0
            .contains("HTTPS is not built in"));
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("http://").is_err());
        assert!(check_url("http:///path").is_err());
    }
}
