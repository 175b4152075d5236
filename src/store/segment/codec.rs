//! The column codec of `blocks`: LEB128 varints, zigzag for signed values.

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
pub(crate) fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded, so small negative numbers stay small.
#[inline]
pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Reads varints from a column; `None` on a truncated or overlong value.
pub(crate) struct Column<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Column<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Column { bytes, pos: 0 }
    }

    #[inline]
    pub(crate) fn u64(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    #[inline]
    pub(crate) fn i64(&mut self) -> Option<i64> {
        let z = self.u64()?;
        Some(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    pub(crate) fn is_done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_extremes() {
        let vals = [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            1 << 40,
            i64::MAX,
            i64::MIN,
            -2,
            -13,
        ];
        let mut buf = Vec::new();
        for v in vals {
            put_i64(&mut buf, v);
        }
        put_u64(&mut buf, u64::MAX);
        let mut c = Column::new(&buf);
        for v in vals {
            assert_eq!(c.i64(), Some(v));
        }
        assert_eq!(c.u64(), Some(u64::MAX));
        assert!(c.is_done());
        assert_eq!(c.u64(), None);
    }

    #[test]
    fn small_values_take_one_byte() {
        let mut buf = Vec::new();
        put_i64(&mut buf, -2);
        put_u64(&mut buf, 127);
        assert_eq!(buf.len(), 2);
    }

    #[test]
    fn truncated_value_is_none() {
        assert_eq!(Column::new(&[0x80, 0x80]).u64(), None);
    }
}
