//! Losses become records in the store: the kernel's counters as they grow, and the alert lines
//! outputs dropped, each covering the time since the last read.

use anyhow::Context;

use super::supervisor::Counters;
use crate::capture::KernelLosses;
use crate::store::{Loss, Writer, ALERT_DROPPED};

/// Turns counter growth into loss records covering the time since the last read.
pub(super) struct LossTracker {
    src: KernelLosses,
    kernel_seen: Vec<u64>,
    since_ns: i64,
}

impl LossTracker {
    pub(super) fn new(src: KernelLosses, since_ns: i64) -> LossTracker {
        LossTracker {
            kernel_seen: vec![0; src.reasons() as usize],
            src,
            since_ns,
        }
    }

    /// `malformed`: records that did not decode since the last call.
    pub(super) fn poll(
        &mut self,
        writer: &mut Writer,
        counters: &mut Counters,
        malformed: u64,
        now_ns: i64,
    ) -> anyhow::Result<()> {
        let mut grown: Vec<(u64, &'static str)> = Vec::new();
        for code in 0..self.kernel_seen.len() {
            let total = self.src.total(code as u32)?;
            let seen = &mut self.kernel_seen[code];
            if total > *seen {
                grown.push((total - *seen, KernelLosses::reason_name(code as u32)));
                *seen = total;
            }
        }
        if malformed > 0 {
            grown.push((malformed, "malformed"));
        }
        for (count, reason) in grown {
            *counters.lost_by_reason.entry(reason).or_default() += count;
            writer
                .record_loss(Loss {
                    start_ns: self.since_ns,
                    end_ns: now_ns,
                    count,
                    reason: reason.to_owned(),
                })
                .context("record a loss")?;
        }
        self.since_ns = now_ns;
        Ok(())
    }
}

/// Alert lines the outputs dropped since the last call, as loss records (`alert_dropped:NAME`,
/// which queries report apart from lost events).
pub(super) fn record_alert_drops(
    writer: &mut Writer,
    drops: Vec<(String, u64)>,
    since_ns: &mut i64,
    now_ns: i64,
) -> anyhow::Result<()> {
    for (name, count) in drops {
        writer
            .record_loss(Loss {
                start_ns: *since_ns,
                end_ns: now_ns,
                count,
                reason: format!("{ALERT_DROPPED}:{name}"),
            })
            .context("record a loss")?;
    }
    *since_ns = now_ns;
    Ok(())
}
