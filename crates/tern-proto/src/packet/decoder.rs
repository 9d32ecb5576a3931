//! The streaming decoder: bytes in, whole packets out.

use bytes::{Buf, BytesMut};

use super::fixed_header::FixedHeader;
use super::{DecodeError, Packet, ProtocolLevel};

/// The largest remaining length the 4-byte encoding can express [MQTT-2.2.3].
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// Default limit on the size of one incoming packet: 16 MiB. Generous enough for real
/// payloads (rumqttc's 10 KiB default is a common complaint), small enough that a lying
/// length prefix cannot make us buffer 256 MiB.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 16 * 1024 * 1024;

/// Streaming decoder. Feed it a buffer that grows as bytes arrive; each call to
/// [`Decoder::decode`] takes one whole packet off its front.
#[derive(Debug, Clone)]
pub struct Decoder {
    level: ProtocolLevel,
    max_packet_size: usize,
}

impl Decoder {
    /// A decoder for a connection speaking `level`, refusing packets larger than
    /// `max_packet_size` bytes (fixed header included).
    pub fn new(level: ProtocolLevel, max_packet_size: usize) -> Self {
        Self {
            level,
            max_packet_size,
        }
    }

    /// The protocol level used to interpret CONNACK and SUBACK.
    pub fn level(&self) -> ProtocolLevel {
        self.level
    }

    /// Changes the protocol level (e.g. after falling back from 3.1.1 to 3.1).
    pub fn set_level(&mut self, level: ProtocolLevel) {
        self.level = level;
    }

    /// The packet size limit.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Takes one packet off the front of `buf`.
    ///
    /// `Ok(None)`: `buf` holds no whole packet yet; nothing was consumed. `Ok(Some(p))`: the
    /// packet's bytes were split off `buf` (payloads share them, no copy). `Err(e)`: the
    /// stream is malformed, or the announced length exceeds the limit (checked as soon as
    /// the fixed header is complete, before buffering the body); the connection must close.
    /// After an error the buffer may have lost the offending packet's bytes.
    ///
    /// Checks run as early as the bytes allow, so feeding a stream whole or in pieces gives
    /// the same packets and the same error: the first byte (type, Table 2.2 flags, PUBLISH
    /// QoS and DUP) before the length; the length's encoding, fixed-size bodies and the size
    /// limit once the fixed header is complete; everything else once the body is.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(header) = FixedHeader::parse(buf)? else {
            return Ok(None);
        };
        // At most 5 + 268,435,455: no overflow.
        let len = header.header_len + header.remaining_len;
        if len > self.max_packet_size {
            return Err(DecodeError::TooLarge {
                len,
                max: self.max_packet_size,
            });
        }
        if buf.len() < len {
            return Ok(None);
        }
        if header.holds_bytes() {
            buf.advance(header.header_len);
            let body = buf.split_to(header.remaining_len).freeze();
            Packet::decode_shared(header, body, self.level).map(Some)
        } else {
            // Small packets keeping no bytes: decode in place, then drop the bytes.
            let Some(body) = buf.get(header.header_len..len) else {
                return Ok(None); // unreachable: `buf` holds at least `len` bytes
            };
            let packet = Packet::decode_plain(header, body, self.level);
            buf.advance(len);
            packet.map(Some)
        }
    }
}
