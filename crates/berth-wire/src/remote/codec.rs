//! Byte-level reading and writing shared by the frame layouts: big-endian
//! fixed integers and LEB128 varints, each read checked against the buffer.

use super::DecodeError;

/// A cursor over one message that never reads past its end.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails with `Malformed` unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::Malformed("trailing bytes after the payload"))
        }
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u16_be(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32_be(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An unsigned LEB128 value of at most 5 bytes that fits in a u32.
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.u8(what)?;
            let part = u32::from(b & 0x7F);
            if i == 4 && part > 0x0F {
                return Err(DecodeError::Malformed("varint overflows u32"));
            }
            value |= part << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed("varint longer than 5 bytes"))
    }

    /// A varint that must fit in a u16 (coordinates and sizes).
    pub(crate) fn varint_u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let v = self.varint(what)?;
        u16::try_from(v).map_err(|_| DecodeError::TooLarge {
            what,
            len: u64::from(v),
            max: u64::from(u16::MAX),
        })
    }
}

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_boundaries() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, u32::MAX - 1, u32::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.varint("v").unwrap(), v);
            r.finish().unwrap();
        }
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xAC, 0x02]);
    }

    #[test]
    fn overlong_and_overflowing_varints_are_refused() {
        let mut r = Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x10]);
        assert_eq!(
            r.varint("v"),
            Err(DecodeError::Malformed("varint overflows u32"))
        );
        let mut r = Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF, 0x8F, 0x00]);
        assert_eq!(
            r.varint("v"),
            Err(DecodeError::Malformed("varint longer than 5 bytes"))
        );
        let mut r = Reader::new(&[0x80]);
        assert_eq!(r.varint("v"), Err(DecodeError::Truncated("v")));
    }
}
