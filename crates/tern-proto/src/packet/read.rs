//! Reading primitives: the remaining-length varint and the fields of a packet body (u8, u16,
//! packet id, length-prefixed bytes, strings, topics). Every read is bounds-checked and reports
//! which field of which packet ran short.

use bytes::{Buf, Bytes};

use super::{DecodeError, MAX_REMAINING_LENGTH, PacketId, PacketType};
use crate::text::MqttString;
use crate::topic::{TopicFilter, TopicName};

/// Decodes a remaining-length field from the start of `bytes` [MQTT-2.2.3].
///
/// Returns `Ok(None)` when `bytes` ends inside the field, else the value and how many bytes the
/// field took (1..=4). A fourth byte with its continuation bit set is
/// [`DecodeError::MalformedRemainingLength`], reported as soon as that byte is seen.
///
/// Non-minimal encodings (e.g. `0x80 0x00` for 0) are accepted: MQTT 3.1.1 defines the scheme
/// and the 4-byte cap but does not forbid padding (the minimum-length rule arrived with MQTT 5),
/// so refusing it would be stricter than the level we speak. The 4-byte cap
/// still holds, so padding can never stretch a header past 5 bytes or a length past
/// 268,435,455. The encoder always writes the minimal form.
pub(crate) fn remaining_length(bytes: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().take(4).enumerate() {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 4 {
        return Err(DecodeError::MalformedRemainingLength);
    }
    Ok(None)
}

/// A cursor over one packet's body (the bytes after the fixed header).
///
/// Over [`Bytes`] (packets that keep slices of their body: CONNECT, PUBLISH, SUBSCRIBE,
/// UNSUBSCRIBE), the fields it hands out share the receive buffer and nothing is copied. Over
/// `&[u8]` (the small packets that keep no bytes), no reference count is touched at all.
pub(crate) struct Reader<B> {
    buf: B,
    packet: PacketType,
}

impl<B: Buf> Reader<B> {
    pub(crate) fn new(packet: PacketType, buf: B) -> Self {
        Self { buf, packet }
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.buf.has_remaining()
    }

    fn need(&self, n: usize, field: &'static str) -> Result<(), DecodeError> {
        let have = self.buf.remaining();
        if have < n {
            return Err(DecodeError::Truncated {
                packet: self.packet,
                field,
                needed: n - have,
            });
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.need(1, field)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.need(2, field)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.need(4, field)?;
        Ok(self.buf.get_u32())
    }

    /// A Variable Byte Integer in its minimal form, at most 4 bytes [MQTT-1.5.5-1].
    pub(crate) fn vbi(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for i in 0..4 {
            let b = self.u8(field)?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(DecodeError::NonMinimalVbi {
                        packet: self.packet,
                        field,
                    });
                }
                return Ok(value);
            }
        }
        Err(DecodeError::MalformedVbi {
            packet: self.packet,
            field,
        })
    }

    /// The packet type this reader reports errors for.
    pub(crate) fn packet(&self) -> PacketType {
        self.packet
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.remaining()
    }

    /// A non-zero packet identifier [MQTT-2.3.1-1].
    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        let n = self.u16("packet identifier")?;
        PacketId::new(n).ok_or(DecodeError::ZeroPacketId {
            packet: self.packet,
        })
    }

    /// Everything not read yet (e.g. a PUBLISH payload).
    pub(crate) fn rest(self) -> B {
        self.buf
    }

    /// Refuses bytes left after the last field.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.has_remaining() {
            Err(DecodeError::TrailingBytes {
                packet: self.packet,
                extra: self.buf.remaining(),
            })
        } else {
            Ok(())
        }
    }
}

impl Reader<Bytes> {
    /// The next `len` bytes as a reader of their own (a property block), which must fit in
    /// the packet.
    pub(crate) fn sub(&mut self, len: usize, field: &'static str) -> Result<Self, DecodeError> {
        self.need(len, field)?;
        Ok(Self {
            buf: self.buf.split_to(len),
            packet: self.packet,
        })
    }

    /// A two-byte length, then that many bytes, which must fit in the packet. Zero-copy.
    pub(crate) fn prefixed(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16(field)?);
        self.need(len, field)?;
        Ok(self.buf.split_to(len))
    }

    /// A length-prefixed UTF-8 string [MQTT-1.5.3].
    pub(crate) fn string(&mut self, field: &'static str) -> Result<MqttString, DecodeError> {
        let bytes = self.prefixed(field)?;
        MqttString::from_bytes(bytes).map_err(|source| DecodeError::InvalidString {
            packet: self.packet,
            field,
            source,
        })
    }

    /// A length-prefixed topic name (no wildcards) [MQTT-3.3.2-1], [MQTT-3.3.2-2].
    pub(crate) fn topic_name(&mut self, field: &'static str) -> Result<TopicName, DecodeError> {
        let bytes = self.prefixed(field)?;
        TopicName::from_bytes(bytes).map_err(|source| DecodeError::InvalidTopic {
            packet: self.packet,
            field,
            source,
        })
    }

    /// A length-prefixed topic filter [MQTT-4.7.1].
    pub(crate) fn topic_filter(&mut self, field: &'static str) -> Result<TopicFilter, DecodeError> {
        let bytes = self.prefixed(field)?;
        TopicFilter::from_bytes(bytes).map_err(|source| DecodeError::InvalidTopic {
            packet: self.packet,
            field,
            source,
        })
    }
}

// Four 7-bit groups express exactly the spec's maximum.
const _: () = assert!(MAX_REMAINING_LENGTH == (1 << 28) - 1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_boundaries_decode() {
        let cases: &[(&[u8], usize)] = &[
            (&[0x00], 0),
            (&[0x7f], 127),
            (&[0x80, 0x01], 128),
            (&[0xff, 0x7f], 16_383),
            (&[0x80, 0x80, 0x01], 16_384),
            (&[0xff, 0xff, 0x7f], 2_097_151),
            (&[0x80, 0x80, 0x80, 0x01], 2_097_152),
            (&[0xff, 0xff, 0xff, 0x7f], 268_435_455),
        ];
        for &(bytes, value) in cases {
            assert_eq!(
                remaining_length(bytes),
                Ok(Some((value, bytes.len()))),
                "{bytes:02x?}"
            );
            for cut in 0..bytes.len() {
                assert_eq!(
                    remaining_length(&bytes[..cut]),
                    Ok(None),
                    "{bytes:02x?}[..{cut}]"
                );
            }
        }
    }

    #[test]
    fn a_fifth_length_byte_is_malformed() {
        assert_eq!(
            remaining_length(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::MalformedRemainingLength)
        );
        assert_eq!(
            remaining_length(&[0x80, 0x80, 0x80, 0x80, 0x01]),
            Err(DecodeError::MalformedRemainingLength)
        );
    }

    #[test]
    fn non_minimal_lengths_are_accepted() {
        assert_eq!(remaining_length(&[0x80, 0x00]), Ok(Some((0, 2))));
        assert_eq!(
            remaining_length(&[0xff, 0x80, 0x80, 0x00]),
            Ok(Some((127, 4)))
        );
    }

    #[test]
    fn prefixed_field_must_fit_in_the_packet() {
        let mut r = Reader::new(PacketType::Publish, Bytes::from_static(b"\x00\x05abc"));
        assert_eq!(
            r.string("topic name"),
            Err(DecodeError::Truncated {
                packet: PacketType::Publish,
                field: "topic name",
                needed: 2
            })
        );
    }
}
