//! What the other tools' formats (OCSF, ECS, Timesketch) share: text of our bytes, a path cut
//! into name and folder, argv, and our own keys that no field of theirs holds (carried whole,
//! `_b64` keys included, so nothing recorded is lost).

use serde_json::{Map, Value};

use crate::bytes::Str;
use crate::process::Process;

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

/// A process image's argv as text, if recorded.
pub(super) fn args(p: &Process) -> Option<Vec<String>> {
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
