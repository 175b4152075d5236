//! Byte strings as the kernel hands them over (paths, comms: bytes, not text), optionally
//! interned. The ground floor: events, processes and every part that reads them share it.

use std::fmt;
use std::sync::Arc;

/// A byte string that may have been interned by whoever produced the event.
///
/// Linux paths and comms are bytes, not text. `key` is the string's index in the producer's string
/// table (a segment's `strings` table on replay, the writer's interner live), valid while
/// `Event::table` stays the same; the rule engine caches verdicts by it so that a predicate runs once
/// per distinct string, not once per event.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Str {
    pub bytes: Arc<[u8]>,
    pub key: u32,
}

impl Str {
    /// Key of a string no table knows.
    pub const NO_KEY: u32 = u32::MAX;

    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Self {
        Str {
            bytes: bytes.into(),
            key: Self::NO_KEY,
        }
    }

    pub fn keyed(bytes: Arc<[u8]>, key: u32) -> Self {
        Str { bytes, key }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The text, with U+FFFD for bytes that are not UTF-8 (for humans; JSON adds the exact bytes).
    pub fn lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.lossy())
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Str::new(s.as_bytes())
    }
}

impl From<&[u8]> for Str {
    fn from(s: &[u8]) -> Self {
        Str::new(s)
    }
}
