//! What the other tools' formats (OCSF, ECS, Timesketch) share: which one, how an event or an
//! alert becomes its line, a path cut into name and folder, and our own keys that no field of
//! theirs holds (carried whole, `_b64` keys included, so nothing recorded is lost).

use serde_json::{Map, Value};

use crate::bytes::Str;
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

/// Text for a field of theirs (they take text, not bytes); the exact bytes stay in `rest`'s
/// `<key>_b64`.
pub(super) fn text(s: &Str) -> String {
    s.lossy().into_owned()
}

/// A path's last component and the folder it is in (`/` for a top-level name).
pub(super) fn split_path(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => (name, "/"),
        Some((dir, name)) => (name, dir),
        None => (path, ""),
    }
}

/// The keys of our own line (event or alert) that `mapped` does not name: what their schema has
/// no field for.
pub(super) fn rest(line: &str, mapped: &[&str]) -> Map<String, Value> {
    let mut m: Map<String, Value> = serde_json::from_str(line).expect("our lines are JSON objects");
    m.retain(|k, _| !mapped.contains(&k.as_str()));
    m
}

/// The argv of the event's process as text, if recorded.
pub(super) fn args(e: &Event) -> Option<Vec<String>> {
    let p = e.process.as_ref()?;
    p.argv.as_ref()?;
    Some(
        p.args()
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_name_and_folder() {
        assert_eq!(split_path("/etc/shadow"), ("shadow", "/etc"));
        assert_eq!(split_path("/etc"), ("etc", "/"));
        assert_eq!(split_path("/a/b/c"), ("c", "/a/b"));
        assert_eq!(split_path("rel"), ("rel", ""));
    }

    #[test]
    fn rest_keeps_only_unmapped_keys_in_order() {
        let m = rest(r#"{"a":1,"b_b64":"AA==","c":[1]}"#, &["a"]);
        assert_eq!(Value::Object(m).to_string(), r#"{"b_b64":"AA==","c":[1]}"#);
    }
}
