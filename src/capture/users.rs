//! uid → user name, from the host's `/etc/passwd`, for the events the recorder stores (each
//! segment keeps the names of its openers). The file is read again when an opener's uid has no
//! name and the file has changed since (looked at no more than once a second): an account made
//! while recording is named from its first opens on, not missing until the next recording.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::bytes::Str;

/// How often a uid without a name may make the recorder look at the file again.
const RECHECK: Duration = Duration::from_secs(1);

/// What tells one version of the file from another: device, inode, size, change time.
type Stamp = (u64, u64, u64, i64, i64);

pub struct Users {
    names: FxHashMap<u32, Str>,
    /// The file to read again; `None`: the names are fixed.
    passwd: Option<PathBuf>,
    stamp: Option<Stamp>,
    checked: Instant,
}

impl Users {
    /// Names that never change (tests, benches, replays).
    pub fn fixed(names: HashMap<u32, Str>) -> Users {
        Users {
            names: names.into_iter().collect(),
            passwd: None,
            stamp: None,
            checked: Instant::now(),
        }
    }

    /// The names in `passwd` now, read again as it changes.
    pub fn from_passwd(passwd: &Path) -> Users {
        Users {
            names: read_users(passwd).into_iter().collect(),
            passwd: Some(passwd.to_owned()),
            stamp: stamp(passwd),
            checked: Instant::now(),
        }
    }

    /// The name of `uid`, reading the file again first if `uid` has none and the file changed.
    pub fn get(&mut self, uid: u32) -> Option<&Str> {
        if !self.names.contains_key(&uid) {
            self.recheck();
        }
        self.names.get(&uid)
    }

    fn recheck(&mut self) {
        let Some(path) = &self.passwd else {
            return;
        };
        if self.checked.elapsed() < RECHECK {
            return;
        }
        self.checked = Instant::now();
        let now = stamp(path);
        if now != self.stamp {
            self.stamp = now;
            // Names already given stay (events already stored carry them); new ones are added.
            for (uid, name) in read_users(path) {
                self.names.entry(uid).or_insert(name);
            }
        }
    }
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.ctime(), m.ctime_nsec()))
}

/// uid → name from a passwd file (stored with each segment's events).
pub fn read_users(passwd: &Path) -> HashMap<u32, Str> {
    let text = fs::read(passwd).unwrap_or_default();
    let mut users = HashMap::new();
    for line in text.split(|&b| b == b'\n') {
        let mut f = line.split(|&b| b == b':');
        let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Some(uid) = std::str::from_utf8(uid).ok().and_then(|u| u.parse().ok()) else {
            continue;
        };
        if !name.is_empty() {
            users.entry(uid).or_insert_with(|| Str::new(name));
        }
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_names() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("passwd");
        fs::write(
            &f,
            "root:x:0:0::/root:/bin/sh\n#junk\nbob:x:1000:1000::/h:/bin/sh\n",
        )
        .unwrap();
        let u = read_users(&f);
        assert_eq!(u.get(&0).unwrap().as_bytes(), b"root");
        assert_eq!(u.get(&1000).unwrap().as_bytes(), b"bob");
        assert_eq!(u.len(), 2);
    }

    /// Issue #25 item 6: an account made while recording had no name in any segment, so
    /// `query --user mallory` found nothing.
    #[test]
    fn query_user_created_while_recording_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("passwd");
        fs::write(&f, "root:x:0:0::/root:/bin/sh\n").unwrap();
        let mut u = Users::from_passwd(&f);
        assert!(u.get(1001).is_none());
        let mut text = fs::read_to_string(&f).unwrap();
        text.push_str("mallory:x:1001:1001::/home/mallory:/bin/sh\n");
        fs::write(&f, text).unwrap();
        // Within a second of the last look, a miss costs no system call.
        assert!(u.get(1001).is_none());
        u.checked -= RECHECK;
        assert_eq!(u.get(1001).unwrap().as_bytes(), b"mallory");
        assert_eq!(u.get(0).unwrap().as_bytes(), b"root");
        // Fixed names never look at a file.
        let mut fixed = Users::fixed(HashMap::from([(0, Str::from("root"))]));
        fixed.checked -= RECHECK;
        assert!(fixed.get(1001).is_none());
    }
}
