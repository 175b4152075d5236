//! Which line format events and alerts are written in: ours, or another tool's (`ocsf`, `ecs`,
//! `timesketch`; what they share is in `mapping`).

use crate::event::Event;
use crate::rules::Raised;

/// A format alerts and exported events can be written in.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LineFormat {
    /// Our own JSON line (what `import` reads; alerts exactly as before).
    #[default]
    Json,
    /// OCSF 1.3.0: File System Activity (1001) events, Detection Finding (2004) alerts.
    Ocsf,
    /// Elastic Common Schema 8.17.
    Ecs,
    /// Timesketch's JSON lines (`message`, `datetime`, `timestamp_desc`).
    Timesketch,
}

impl LineFormat {
    /// One event, no newline. `host` is the recording host's name.
    pub fn event(self, e: &Event, host: &str) -> String {
        match self {
            LineFormat::Json => e.to_json_line(),
            LineFormat::Ocsf => super::ocsf::event(e, host).to_string(),
            LineFormat::Ecs => super::ecs::event(e, host).to_string(),
            LineFormat::Timesketch => super::timesketch::event(e, host).to_string(),
        }
    }

    /// One alert or summary, no newline.
    pub fn raised(self, r: &Raised) -> String {
        match self {
            LineFormat::Json => r.to_json_line(),
            LineFormat::Ocsf => super::ocsf::raised(r).to_string(),
            LineFormat::Ecs => super::ecs::raised(r).to_string(),
            LineFormat::Timesketch => super::timesketch::raised(r).to_string(),
        }
    }
}
