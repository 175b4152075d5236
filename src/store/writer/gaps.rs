//! Gaps are named: what a full disk cost (`disk_full`) and the time no recorder ran (`outage`)
//! become loss records in a *gap segment* of their own. A segment without events has no time
//! range, so every reading of the store reads it and reports the records that overlap its window;
//! in a segment with events, a record reaching past them would be missed by a reading of the gap
//! alone.
//!
//! While the disk is full the writer stores nothing: events, process records and loss records
//! are counted in memory (cheaply: the store thread keeps pace with capture, so `--duration` and
//! signals are honoured). Once per tick it names the episode (a part of the reserve given back
//! for a gap segment), and looks for space: when the reserve can be taken whole again with as
//! much to spare, recording resumes after a gap segment with the rest of the count. At the end,
//! still full, the whole reserve is given back for the last gap segment and the seals.

use super::reserve::Reserve;
use super::sealer::remove_active_files;
use super::{is_disk_full, Writer};
use crate::store::segment::{active_name, Loss};
use crate::store::Result;

/// The loss reason of events that could not be stored because the disk was full.
pub const DISK_FULL: &str = "disk_full";
/// The loss reason of a time no recorder ran (from the last event committed before a recorder
/// started to its start); its count is 0: how many opens it missed is unknown.
pub const OUTAGE: &str = "outage";

impl Writer {
    /// The disk is full: stop trying to store until space returns (see the module comment).
    pub(super) fn enter_full(&mut self) {
        if self.full {
            return;
        }
        self.full = true;
        self.gap_named = false;
        self.warn(format!(
            "the disk holding {} is full: events are counted as lost ({DISK_FULL}), not stored, until space returns",
            self.dir.path().display()
        ));
    }

    /// Once per tick while the disk is full: name the episode, or leave it when space returns.
    pub(super) fn tick_full(&mut self) -> Result<()> {
        let Some(r) = self.reserve.as_mut() else {
            // No reserve to measure by: try again (a commit that fails ends it once more).
            self.full = false;
            return self.write_gap();
        };
        if !self.gap_named {
            self.gap_named = true;
            if let Err(e) = r.give_gap(&self.dir) {
                self.warn(format!("cannot give back part of the reserve: {e}"));
            }
            // Written while still full: nothing else is tried meanwhile.
            return self.write_gap();
        }
        match r.take(&self.dir, r.bytes()) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                self.warn(format!("cannot take the reserve back: {e}"));
                return Ok(());
            }
        }
        self.full = false;
        let lost = self.dropped.as_ref().map_or(0, |l| l.count);
        self.write_gap()?;
        self.warn(format!(
            "space returned in {}: recording again ({lost} events and records lost since the gap was named)",
            self.dir.path().display()
        ));
        Ok(())
    }

    /// Seals the active segment, then writes the losses waiting (the disk_full count, the loss
    /// records parked) in a gap segment and queues it for its seal. What cannot be written stays
    /// waiting.
    pub(super) fn write_gap(&mut self) -> Result<()> {
        self.seal_active()?;
        if self.parked.is_empty() && self.dropped.is_none() {
            return Ok(());
        }
        match self.start_segment() {
            Ok(()) => {}
            Err(e) if is_disk_full(&e) => {
                self.unstart_segment();
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let a = self.active.as_mut().expect("just started");
        match a.flush() {
            Ok(_) => {}
            // Its losses go back to waiting as it is abandoned (nothing was committed).
            Err(e) if is_disk_full(&e) => {}
            Err(e) => return Err(e),
        }
        let full = std::mem::replace(&mut self.full, true);
        let sealed = self.seal_active();
        self.full = full;
        sealed
    }

    /// Forgets the active segment, which nothing was committed to: its loss records wait again,
    /// its files go and its number is free.
    pub(super) fn unstart_segment(&mut self) {
        if let Some(mut a) = self.active.take() {
            self.parked.append(&mut a.losses);
            drop(a);
        }
        self.next_seq -= 1;
        let _ = remove_active_files(&self.dir, &active_name(self.next_seq));
    }

    /// At the end: losses still waiting are written in a gap segment, with the whole reserve
    /// given back if the disk is full.
    pub(super) fn finish_gaps(&mut self) -> Result<()> {
        if !self.full && self.parked.is_empty() && self.dropped.is_none() {
            return Ok(());
        }
        if self.full {
            self.release_reserve();
            self.full = false;
        }
        self.write_gap()?;
        // A commit that failed again left the disk full: the seals still get their try.
        self.full = false;
        Ok(())
    }

    /// Takes the reserve at a recording's start (warned about, not fatal, when there is no room).
    pub(super) fn take_reserve(&mut self) {
        let mut r = match Reserve::for_store(&self.dir, self.config.max_bytes) {
            Ok(r) => r,
            Err(e) => {
                self.warn(format!(
                    "cannot measure the filesystem of {}: {e}; no space is reserved",
                    self.dir.path().display()
                ));
                return;
            }
        };
        match r.take(&self.dir, 0) {
            Ok(true) => {}
            Ok(false) => self.warn(format!(
                "no room to reserve {} bytes in {}: a full disk may cost the last loss records and seal",
                r.bytes(),
                self.dir.path().display()
            )),
            Err(e) => self.warn(format!(
                "cannot reserve space in {}: {e}",
                self.dir.path().display()
            )),
        }
        self.reserve = Some(r);
    }

    pub(super) fn release_reserve(&mut self) {
        if let Some(r) = self.reserve.as_mut() {
            if let Err(e) = r.release(&self.dir) {
                let msg = format!("cannot give back the reserve: {e}");
                self.warn(msg);
            }
        }
    }

    /// Names the time no recorder ran, from the newest event a recording committed before this
    /// writer opened the store (of a segment a dead writer left active, or the newest sealed one)
    /// to `until_ns` (when capture started), in a gap segment. Call it before anything else is
    /// stored; nothing is written when the store holds no earlier recording.
    pub fn record_outage(&mut self, until_ns: i64) -> Result<()> {
        let Some(from) = self.last_recorded_ns.take() else {
            return Ok(());
        };
        if from >= until_ns {
            return Ok(());
        }
        self.parked.push(Loss {
            start_ns: from,
            end_ns: until_ns,
            count: 0,
            reason: OUTAGE.into(),
        });
        self.write_gap()
    }

    /// Notes the newest event of a recording found on opening (see [`Writer::record_outage`]).
    pub(super) fn note_recorded(&mut self, recording: &Option<String>, last_ts_ns: Option<i64>) {
        if recording.is_some() {
            if let Some(t) = last_ts_ns {
                self.last_recorded_ns = Some(self.last_recorded_ns.map_or(t, |l| l.max(t)));
            }
        }
    }
}
