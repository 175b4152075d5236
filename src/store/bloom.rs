//! A Bloom filter over 64-bit key hashes: the part of a summary that answers "may this segment or
//! block hold value V" without the values. Chosen over a xor/fuse filter (`xorf`: about 9 bits a
//! key for 0.4%) because its bytes come from a hostile directory: a Bloom filter read back is safe
//! whatever its bits (every probe is taken modulo its length), where a fuse filter's parameters
//! would have to be re-derived and checked before a lookup could not index out of bounds.
//!
//! Probes: `k` positions `h + i·(rotl(h, 32) | 1)` modulo the bit count (Kirsch–Mitzenmacher).
//! At 10 bits a key and `k` = 7, about 0.8% false positives; at 8 bits and `k` = 6, about 2%.

/// A Bloom filter: `words` little-endian in its encoding, `k` probes a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bloom {
    k: u8,
    words: Vec<u64>,
}

/// The most probes a key: more buys nothing at the sizes used, and bounds a crafted `k`.
const K_MAX: u8 = 16;

impl Bloom {
    /// A filter sized for `keys` keys at `bits_per_key` bits each (at least one word), holding
    /// at most `max_words` words (beyond that, false positives grow instead of the filter).
    pub fn with_capacity(keys: usize, bits_per_key: usize, k: u8, max_words: usize) -> Bloom {
        let words = (keys * bits_per_key)
            .div_ceil(64)
            .clamp(1, max_words.max(1));
        Bloom {
            k: k.clamp(1, K_MAX),
            words: vec![0; words],
        }
    }

    pub fn insert(&mut self, h: u64) {
        for b in probes(self.k, self.words.len(), h) {
            self.words[b / 64] |= 1 << (b % 64);
        }
    }

    pub fn may_contain(&self, h: u64) -> bool {
        probes(self.k, self.words.len(), h).all(|b| self.words[b / 64] & (1 << (b % 64)) != 0)
    }

    /// Bytes of [`Bloom::encode`].
    pub fn encoded_len(&self) -> usize {
        1 + self.words.len() * 8
    }

    /// `k`, then the words, little-endian.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.k);
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    /// The inverse of `encode`; `None` for bytes no encoding produces.
    pub fn decode(b: &[u8]) -> Option<Bloom> {
        let (&k, rest) = b.split_first()?;
        if !(1..=K_MAX).contains(&k) || rest.is_empty() || rest.len() % 8 != 0 {
            return None;
        }
        let words = rest
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Some(Bloom { k, words })
    }
}

/// The bit positions of key hash `h` in a filter of `words` words.
fn probes(k: u8, words: usize, h: u64) -> impl Iterator<Item = usize> {
    let bits = words as u64 * 64;
    let step = h.rotate_left(32) | 1;
    (0..u64::from(k)).map(move |i| (h.wrapping_add(i.wrapping_mul(step)) % bits) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bloom_has_no_false_negatives_and_few_false_positives() {
        let keys: Vec<u64> = (0..10_000u64)
            .map(|i| twox_hash::XxHash64::oneshot(0, &i.to_le_bytes()))
            .collect();
        let mut b = Bloom::with_capacity(keys.len(), 10, 7, usize::MAX);
        keys.iter().for_each(|&h| b.insert(h));
        assert!(keys.iter().all(|&h| b.may_contain(h)));
        let fp = (10_000..110_000u64)
            .filter(|i| b.may_contain(twox_hash::XxHash64::oneshot(0, &i.to_le_bytes())))
            .count();
        assert!(
            fp < 1_500,
            "{fp} false positives in 100000 (want about 0.8%)"
        );
        let mut enc = Vec::new();
        b.encode(&mut enc);
        assert_eq!(enc.len(), b.encoded_len());
        assert_eq!(Bloom::decode(&enc), Some(b));
    }

    #[test]
    fn crafted_bloom_bytes_are_refused_or_harmless() {
        assert_eq!(Bloom::decode(&[]), None);
        assert_eq!(Bloom::decode(&[7]), None);
        assert_eq!(Bloom::decode(&[0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(Bloom::decode(&[200, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(Bloom::decode(&[7, 1, 2, 3]), None);
        let b = Bloom::decode(&[16, 255, 255, 255, 255, 255, 255, 255, 255]).unwrap();
        assert!(b.may_contain(u64::MAX) && b.may_contain(0));
    }
}
