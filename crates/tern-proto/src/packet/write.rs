//! Writing primitives: the remaining-length varint, u16, and length-prefixed fields. Callers
//! validate lengths first (see [`super::EncodeError`]); these functions only append bytes.

use bytes::{BufMut, BytesMut};

/// How many bytes the remaining-length field takes for `len` (1..=4; 4 for anything larger,
/// which the encoder refuses before writing).
pub(crate) const fn remaining_length_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends `len` as a remaining-length varint, always in its minimal form [MQTT-2.2.3].
/// `len` must be at most 268,435,455 (checked by the caller).
#[inline]
pub(crate) fn put_remaining_length(out: &mut BytesMut, mut len: usize) {
    loop {
        // Truncation to the low 7 bits is the encoding.
        let mut byte = (len & 0x7f) as u8;
        len >>= 7;
        if len > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if len == 0 {
            break;
        }
    }
}

/// How many bytes a Variable Byte Integer takes for `value` (MQTT 5 name of the same
/// encoding as the remaining length).
pub(crate) const fn vbi_len(value: usize) -> usize {
    remaining_length_len(value)
}

/// Appends a Variable Byte Integer in its minimal form [MQTT-1.5.5-1].
pub(crate) fn put_vbi(out: &mut BytesMut, value: usize) {
    put_remaining_length(out, value);
}

/// Appends `bytes` with its two-byte length prefix; `bytes` is at most 65,535 bytes long
/// (checked by the caller).
pub(crate) fn put_prefixed(out: &mut BytesMut, bytes: &[u8]) {
    debug_assert!(bytes.len() <= usize::from(u16::MAX));
    out.put_u16(bytes.len() as u16);
    out.put_slice(bytes);
}

/// Size of a length-prefixed field holding `len` bytes.
pub(crate) const fn prefixed_len(len: usize) -> usize {
    2 + len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::read::remaining_length;

    #[test]
    fn remaining_length_boundaries_encode_minimally() {
        let cases: &[(usize, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xff, 0xff, 0x7f]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xff, 0xff, 0xff, 0x7f]),
        ];
        for &(value, bytes) in cases {
            let mut out = BytesMut::new();
            put_remaining_length(&mut out, value);
            assert_eq!(&out[..], bytes, "{value}");
            assert_eq!(remaining_length_len(value), bytes.len());
            assert_eq!(remaining_length(&out), Ok(Some((value, bytes.len()))));
        }
    }
}
