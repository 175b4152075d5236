//! User names as the recording knew them: each segment stores the uid → name map of its
//! openers (the recorder reads `/etc/passwd` again when it changes), so `--user NAME` and
//! `--auid NAME` mean the uids the recorded maps give NAME, not what this host's passwd says
//! today.

use crate::rules::KnownUsers;
use crate::store::{Reader, TimeRange};

/// Every name in the uid maps of the segments of `range`, with its uids. Segments that cannot
/// be read are skipped here: the scan that follows names them.
pub fn recorded(reader: &Reader, range: &TimeRange) -> KnownUsers {
    let mut known = KnownUsers::new();
    for info in reader.segments_in(range) {
        let Ok(users) = reader.load(info).and_then(|s| s.users()) else {
            continue;
        };
        for (uid, name) in users {
            known
                .entry(name.lossy().into_owned())
                .or_default()
                .insert(uid);
        }
    }
    known
}
