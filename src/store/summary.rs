//! Summaries: what a sealed segment, or one block of events, may hold — the operations and results
//! exactly (bitmasks), and paths, executables, pids, uids and container ids as a Bloom filter of
//! their keys ([`Key`]). A reading whose [`Need`] a summary rules out skips the segment (never
//! decompressed) or the block (never decoded). Written at seal (segment) and per committed block
//! (`blocks.summary`, schema 6); checked by `verify` against what the segment holds.
//!
//! Encoding (`blocks.summary`; base64 in the metadata frame's `summary`): a version byte (1), the
//! op bitmask (u32 LE, bit `Op::code()`), the result bits (1: some event succeeded, 2: some failed),
//! then the Bloom filter (`bloom`: `k`, then its words, u64 LE).

use twox_hash::XxHash64;

use super::bloom::Bloom;
use crate::need::{Key, Need, Term};

const VERSION: u8 = 1;
pub(crate) const RESULT_OK: u8 = 1;
pub(crate) const RESULT_FAILED: u8 = 2;

/// Bloom filter sizes: (bits a key, probes, most words). A segment's filter is read for every
/// segment a reading lists, so it gets the lower false-positive rate (~0.8%, at most 512 KiB); a
/// block's false positive costs one block decoded (~2%, at most 64 KiB).
pub(crate) const SEGMENT_BLOOM: (usize, u8, usize) = (10, 7, 1 << 16);
pub(crate) const BLOCK_BLOOM: (usize, u8, usize) = (8, 6, 1 << 13);

/// What a segment or block may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Bits `1 << Op::code()` of the operations of its events.
    ops: u32,
    /// [`RESULT_OK`] | [`RESULT_FAILED`] of its events.
    results: u8,
    keys: Bloom,
}

/// The 64-bit hash of a key, as filters store it: XXH64 (seed 0) of a tag byte and the value.
pub(crate) fn key_hash(key: &Key) -> u64 {
    let (tag, bytes): (u8, &[u8]) = match key {
        Key::Path(v) => (b'p', v),
        Key::PathDir(v) => (b'd', v),
        Key::Exe(v) => (b'e', v),
        Key::ExeDir(v) => (b'x', v),
        Key::Container(v) => (b'c', v),
        Key::Pid(n) => return tagged_hash(b'i', &n.to_le_bytes()),
        Key::Uid(n) => return tagged_hash(b'u', &n.to_le_bytes()),
    };
    tagged_hash(tag, bytes)
}

pub(crate) fn tagged_hash(tag: u8, bytes: &[u8]) -> u64 {
    let mut h = XxHash64::with_seed(0);
    std::hash::Hasher::write(&mut h, &[tag]);
    std::hash::Hasher::write(&mut h, bytes);
    std::hash::Hasher::finish(&h)
}

impl Summary {
    /// A summary of events with these operation and result bits, and these key hashes
    /// (duplicates allowed), sized by `(bits a key, probes, most words)`.
    pub(crate) fn build(
        ops: u32,
        results: u8,
        hashes: &[u64],
        (bits, k, max_words): (usize, u8, usize),
    ) -> Summary {
        let mut keys = Bloom::with_capacity(hashes.len(), bits, k, max_words);
        hashes.iter().for_each(|&h| keys.insert(h));
        Summary { ops, results, keys }
    }

    /// Whether some event summarized here may satisfy `need` (always, for [`Need::all`]).
    pub fn may_match(&self, need: &Need) -> bool {
        let Some(alts) = need.alternatives() else {
            return true;
        };
        alts.iter()
            .any(|terms| terms.iter().all(|t| self.may_hold(t)))
    }

    fn may_hold(&self, term: &Term) -> bool {
        match term {
            Term::Ops(mask) => self.ops & mask != 0,
            Term::Result { ok, failed } => {
                (*ok && self.results & RESULT_OK != 0)
                    || (*failed && self.results & RESULT_FAILED != 0)
            }
            Term::AnyKey(keys) => keys.iter().any(|k| self.may_contain(k)),
        }
    }

    /// Whether a key may be among the summarized events' (false positives, never negatives).
    pub fn may_contain(&self, key: &Key) -> bool {
        self.keys.may_contain(key_hash(key))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.keys.encoded_len());
        out.push(VERSION);
        out.extend_from_slice(&self.ops.to_le_bytes());
        out.push(self.results);
        self.keys.encode(&mut out);
        out
    }

    /// The inverse of `encode`; `None` for bytes it does not produce (an unknown version too:
    /// such a summary is not used, the segment or block is read).
    pub fn decode(b: &[u8]) -> Option<Summary> {
        let (&v, rest) = b.split_first()?;
        if v != VERSION || rest.len() < 5 {
            return None;
        }
        let ops = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        Some(Summary {
            ops,
            results: rest[4],
            keys: Bloom::decode(&rest[5..])?,
        })
    }

    /// The base64 form the metadata frame holds.
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.encode())
    }

    pub fn from_base64(s: &str) -> Option<Summary> {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
        Summary::decode(&b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(terms: Vec<Term>) -> Need {
        Need::any_of(vec![terms])
    }

    #[test]
    fn summaries_rule_out_what_they_never_saw() {
        let hashes = [
            key_hash(&Key::Path(b"/etc/hosts"[..].into())),
            key_hash(&Key::PathDir(b"/etc/"[..].into())),
            key_hash(&Key::Pid(42)),
        ];
        let s = Summary::build(1 << 1, RESULT_OK, &hashes, BLOCK_BLOOM);
        let back = Summary::decode(&s.encode()).unwrap();
        assert_eq!(back, s);
        assert_eq!(Summary::from_base64(&s.to_base64()), Some(s.clone()));
        let path = |p: &[u8]| Term::AnyKey(vec![Key::Path(p.into())]);
        assert!(s.may_match(&Need::all()));
        assert!(s.may_match(&need(vec![path(b"/etc/hosts")])));
        assert!(!s.may_match(&need(vec![path(b"/etc/shadow")])));
        assert!(!s.may_match(&need(vec![Term::AnyKey(vec![Key::Pid(43)])])));
        assert!(s.may_match(&need(vec![Term::AnyKey(vec![Key::Pid(43), Key::Pid(42)])])));
        assert!(!s.may_match(&need(vec![path(b"/etc/hosts"), Term::Ops(1 << 2)])));
        assert!(!s.may_match(&need(vec![Term::Result {
            ok: false,
            failed: true
        }])));
        assert!(s.may_match(&Need::any_of(vec![
            vec![path(b"/etc/shadow")],
            vec![Term::AnyKey(vec![Key::path_prefix(b"/etc/sh").unwrap()])],
        ])));
        // A key of another kind with the same bytes is another key.
        assert!(!s.may_match(&need(vec![Term::AnyKey(vec![Key::Exe(
            b"/etc/hosts"[..].into()
        )])])));
        assert_eq!(
            Summary::decode(&[2, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]),
            None
        );
    }
}
