//! [`MqttString`]: a UTF-8 string as MQTT allows it on the wire, backed by shared [`Bytes`].

use std::fmt;

use bytes::Bytes;

/// Longest string an MQTT two-byte length prefix can carry.
pub const MAX_STRING_LEN: usize = u16::MAX as usize;

/// A string valid for MQTT: well-formed UTF-8 without surrogates [MQTT-1.5.3-1], no U+0000
/// [MQTT-1.5.3-2], at most 65,535 bytes. A BOM is kept as is [MQTT-1.5.3-3].
///
/// Backed by [`Bytes`] so a decoded string is a slice of the receive buffer, not a copy.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MqttString(Bytes);

/// Why bytes or a `str` are not a valid [`MqttString`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StringError {
    /// Longer than a two-byte length prefix allows.
    #[error("string of {len} bytes exceeds the 65535-byte limit [MQTT-1.5.3]")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// Not well-formed UTF-8.
    #[error("string is not well-formed UTF-8 (at byte {valid_up_to}) [MQTT-1.5.3-1]")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        valid_up_to: usize,
    },
    /// Contains the null character U+0000.
    #[error("string contains U+0000 at byte {at} [MQTT-1.5.3-2]")]
    NullCharacter {
        /// Offset of the null byte.
        at: usize,
    },
}

impl MqttString {
    /// Validates `bytes` and wraps them without copying.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, StringError> {
        check(&bytes)?;
        Ok(Self(bytes))
    }

    /// Validates `s` and copies it into a new string.
    pub fn new(s: &str) -> Result<Self, StringError> {
        Self::from_bytes(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// A `&'static str`, validated, without copying.
    pub fn from_static(s: &'static str) -> Result<Self, StringError> {
        Self::from_bytes(Bytes::from_static(s.as_bytes()))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor runs `check`, which proves the bytes are valid UTF-8, and
        // the bytes are never mutated afterwards.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The backing buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl MqttString {
    /// Wraps bytes that [`check`] (or an equivalent fast path) has accepted.
    #[inline]
    pub(crate) fn from_checked(bytes: Bytes) -> Self {
        debug_assert!(check(&bytes).is_ok());
        Self(bytes)
    }
}

/// Fast path for the common case: true when `bytes` is within the length limit, plain
/// ASCII without U+0000, and free of `a` and `b` (pass 0 when not needed). Branch-free
/// blocks the compiler vectorises; false means "take the precise path", not "invalid".
#[inline(always)]
pub(crate) fn plain_ascii_without(bytes: &[u8], a: u8, b: u8) -> bool {
    if bytes.len() > MAX_STRING_LEN {
        return false;
    }
    // Whole blocks from the start, then the last block again, overlapping the one before:
    // a handful of vector instructions per block and no byte-by-byte tail.
    if let Some(last) = bytes.last_chunk::<16>() {
        if !plain_block(last, a, b) {
            return false;
        }
        let (blocks, _) = bytes.as_chunks::<16>();
        for block in blocks {
            if !plain_block(block, a, b) {
                return false;
            }
        }
        return true;
    }
    // 8 to 15 bytes: two overlapping halves.
    if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        return plain_block(first, a, b) & plain_block(last, a, b);
    }
    bytes.iter().fold(true, |ok, &c| ok & plain_byte(c, a, b))
}

/// [`plain_ascii_without`] on one block: a fixed-size loop the compiler turns into a few
/// vector compares.
#[inline(always)]
fn plain_block<const N: usize>(block: &[u8; N], a: u8, b: u8) -> bool {
    let mut bad = 0u8;
    for &c in block {
        bad |= u8::from(!plain_byte(c, a, b));
    }
    bad == 0
}

/// One byte of [`plain_ascii_without`]: 1..=0x7f (ASCII, not NUL), and neither `a` nor `b`.
#[inline(always)]
fn plain_byte(c: u8, a: u8, b: u8) -> bool {
    (c.wrapping_sub(1) < 0x7f) & (c != a) & (c != b)
}

fn check(bytes: &[u8]) -> Result<(), StringError> {
    if plain_ascii_without(bytes, 0, 0) {
        return Ok(());
    }
    if bytes.len() > MAX_STRING_LEN {
        return Err(StringError::TooLong { len: bytes.len() });
    }
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(StringError::NullCharacter { at });
    }
    std::str::from_utf8(bytes).map_err(|e| StringError::InvalidUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    Ok(())
}

impl fmt::Debug for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::ops::Deref for MqttString {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl TryFrom<&str> for MqttString {
    type Error = StringError;
    fn try_from(s: &str) -> Result<Self, StringError> {
        Self::new(s)
    }
}

impl TryFrom<String> for MqttString {
    type Error = StringError;
    fn try_from(s: String) -> Result<Self, StringError> {
        Self::from_bytes(Bytes::from(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_character_is_refused() {
        assert_eq!(
            MqttString::new("a\0b"),
            Err(StringError::NullCharacter { at: 1 })
        );
    }

    #[test]
    fn surrogate_encoding_is_refused() {
        // U+D800 encoded as if it were a scalar value: ED A0 80.
        let err = MqttString::from_bytes(Bytes::from_static(b"\xED\xA0\x80")).unwrap_err();
        assert_eq!(err, StringError::InvalidUtf8 { valid_up_to: 0 });
    }

    #[test]
    fn bom_is_kept() {
        let s = MqttString::from_bytes(Bytes::from_static(b"\xEF\xBB\xBFx")).unwrap();
        assert_eq!(s.as_bytes(), b"\xEF\xBB\xBFx");
    }

    #[test]
    fn plain_ascii_check_matches_the_bytewise_rule_at_every_length_and_position() {
        let naive = |bytes: &[u8], a: u8, b: u8| {
            bytes.len() <= MAX_STRING_LEN
                && bytes
                    .iter()
                    .all(|&c| (1..=0x7f).contains(&c) && c != a && c != b)
        };
        for len in 0..=50 {
            let good = vec![b'a'; len];
            assert!(plain_ascii_without(&good, b'+', b'#'), "len {len}");
            for at in 0..len {
                for bad in [0x00, 0x80, 0xff, b'+', b'#', 0x7f, 0x01, b'/'] {
                    let mut bytes = good.clone();
                    bytes[at] = bad;
                    for (a, b) in [(b'+', b'#'), (0, 0)] {
                        assert_eq!(
                            plain_ascii_without(&bytes, a, b),
                            naive(&bytes, a, b),
                            "len {len}, byte {bad:#04x} at {at}, without {a:#04x} {b:#04x}"
                        );
                    }
                }
            }
        }
        assert!(plain_ascii_without(&[b'a'; MAX_STRING_LEN], 0, 0));
        assert!(!plain_ascii_without(&[b'a'; MAX_STRING_LEN + 1], 0, 0));
    }

    #[test]
    fn length_limit_is_65535_bytes() {
        assert!(MqttString::new(&"a".repeat(65_535)).is_ok());
        assert_eq!(
            MqttString::new(&"a".repeat(65_536)),
            Err(StringError::TooLong { len: 65_536 })
        );
    }
}
