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

/// Appends an optional signed value: 0 for `None`, else its zigzag form + 1 (up to 65 bits, which
/// LEB128 still holds in 10 bytes), so that every `i64` stays representable.
#[inline]
pub(crate) fn put_opt_i64(out: &mut Vec<u8>, v: Option<i64>) {
    let Some(v) = v else { return out.push(0) };
    let mut z = u128::from(((v << 1) ^ (v >> 63)) as u64) + 1;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends an optional `u32`: 0 for `None`, else the value + 1.
#[inline]
pub(crate) fn put_opt_u32(out: &mut Vec<u8>, v: Option<u32>) {
    put_u64(out, v.map_or(0, |v| u64::from(v) + 1));
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

    /// A value of [`put_opt_i64`]; `None` when truncated or out of range.
    pub(crate) fn opt_i64(&mut self) -> Option<Option<i64>> {
        let mut v = 0u128;
        for shift in (0..70).step_by(7) {
            let b = *self.bytes.get(self.pos)?;
            self.pos += 1;
            v |= u128::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                let Some(z) = v.checked_sub(1) else {
                    return Some(None);
                };
                let z = u64::try_from(z).ok()?;
                return Some(Some(((z >> 1) as i64) ^ -((z & 1) as i64)));
            }
        }
        None
    }

    /// A value of [`put_opt_u32`]; `None` when truncated or out of range.
    pub(crate) fn opt_u32(&mut self) -> Option<Option<u32>> {
        match self.u64()? {
            0 => Some(None),
            v => u32::try_from(v - 1).ok().map(Some),
        }
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
    fn optional_values_round_trip_every_i64_and_u32() {
        let vals = [
            None,
            Some(0i64),
            Some(-1),
            Some(i64::MAX),
            Some(i64::MIN),
            Some(1 << 40),
        ];
        let uids = [None, Some(0u32), Some(u32::MAX), Some(1000)];
        let mut buf = Vec::new();
        for v in vals {
            put_opt_i64(&mut buf, v);
        }
        for v in uids {
            put_opt_u32(&mut buf, v);
        }
        let mut c = Column::new(&buf);
        for v in vals {
            assert_eq!(c.opt_i64(), Some(v));
        }
        for v in uids {
            assert_eq!(c.opt_u32(), Some(v));
        }
        assert!(c.is_done());
        // Beyond 65 bits, or a u32 + 1 that overflows, is corrupt, not wrapped.
        let mut big = Vec::new();
        put_u64(&mut big, u64::MAX);
        assert_eq!(
            Column::new(&[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x04]).opt_i64(),
            None
        );
        put_u64(&mut big, u64::from(u32::MAX) + 2);
        let mut c = Column::new(&big);
        assert_eq!(c.opt_u32(), None);
        assert_eq!(c.opt_u32(), None);
    }

    #[test]
    fn truncated_value_is_none() {
        assert_eq!(Column::new(&[0x80, 0x80]).u64(), None);
    }
}
