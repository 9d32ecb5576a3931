//! The streaming decoder: bytes in, whole packets out.

use bytes::{Buf, BytesMut};

use super::fixed_header::FixedHeader;
use super::publish::{FLAG_DUP, FLAG_RETAIN};
use super::read::remaining_length;
use super::write::remaining_length_len;
use super::{DecodeError, Packet, PacketId, ProtocolLevel, Publish, QosPid};
use crate::topic::TopicName;

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
    /// The limit, clamped to `u32::MAX` (far above the largest packet, 268,435,460 bytes):
    /// 8 bytes of decoder, in every session.
    max_packet_size: u32,
}

impl Decoder {
    /// A decoder for a connection speaking `level`, refusing packets larger than
    /// `max_packet_size` bytes (fixed header included).
    pub fn new(level: ProtocolLevel, max_packet_size: usize) -> Self {
        Self {
            level,
            max_packet_size: u32::try_from(max_packet_size).unwrap_or(u32::MAX),
        }
    }

    /// The protocol level used to interpret the packets (CONNACK and SUBACK codes; at level
    /// 5 properties, reason codes and AUTH).
    pub fn level(&self) -> ProtocolLevel {
        self.level
    }

    /// Changes the protocol level (e.g. after falling back from 3.1.1 to 3.1).
    pub fn set_level(&mut self, level: ProtocolLevel) {
        self.level = level;
    }

    /// The packet size limit (a limit above `u32::MAX` reads as `u32::MAX`: no packet is
    /// that large).
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size as usize
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
    // Always inlined (the fast paths are small; `decode_general` never is): inlined into the
    // caller's loop, the packet is built where the caller keeps it, whereas returned from a
    // call the 72-byte result is copied through memory again, a quarter of a PUBLISH decode.
    #[inline(always)]
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        // One test of the level; each level then runs a fast path compiled for it, so the
        // 3.1 / 3.1.1 one carries no MQTT 5 branch.
        if self.level == ProtocolLevel::V5 {
            return self.decode_v5(buf);
        }
        self.decode_fast::<false>(buf)
    }

    /// [`Decoder::decode`] at level 5 (kept out of line: it is not the 3.1.1 hot path).
    #[inline(never)]
    fn decode_v5(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        self.decode_fast::<true>(buf)
    }

    /// The fast path for one level: `V5` is whether it is level 5.
    #[inline(always)]
    fn decode_fast<const V5: bool>(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Packet>, DecodeError> {
        // Fast path for whole, well-formed PUBLISH and fixed-size packets: parsed straight
        // from the buffer, built without intermediate moves. Anything it does not accept
        // outright (errors, partial packets, other types, unusual topics) goes to
        // `decode_general`, which applies every rule and reports the precise error.
        let bytes: &[u8] = buf;
        let Some((&first, rest)) = bytes.split_first() else {
            return Ok(None);
        };
        let Some((remaining, len_bytes)) = fast_remaining_length(rest) else {
            return self.decode_general(buf);
        };
        let header_len = 1 + len_bytes;
        // At most 5 + 268,435,455: no overflow.
        let len = header_len + remaining;
        if len > self.max_packet_size() {
            return self.decode_general(buf);
        }
        let v5 = V5;
        // MQTT 5 refuses padded lengths [MQTT-1.5.5-1]; the general path reports it.
        if v5 && len_bytes != remaining_length_len(remaining) {
            return self.decode_general(buf);
        }
        let Some(body) = bytes.get(header_len..len) else {
            return self.decode_general(buf); // checks the header, then waits for the body
        };
        match first {
            // PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: a non-zero id, nothing else (at
            // level 5: reason Success, no properties; an UNSUBACK there lists codes).
            0x40 | 0x50 | 0x62 | 0x70 | 0xb0 => {
                if let &[hi, lo] = body
                    && !(v5 && first == 0xb0)
                    && let Some(id) = PacketId::new(u16::from_be_bytes([hi, lo]))
                {
                    buf.advance(len);
                    return Ok(Some(match first {
                        0x40 => Packet::PubAck(id),
                        0x50 => Packet::PubRec(id),
                        0x62 => Packet::PubRel(id),
                        0x70 => Packet::PubComp(id),
                        _ => Packet::UnsubAck(id),
                    }));
                }
            }
            0xc0 | 0xd0 | 0xe0 if body.is_empty() => {
                buf.advance(len);
                return Ok(Some(match first {
                    0xc0 => Packet::PingReq,
                    0xd0 => Packet::PingResp,
                    _ => Packet::Disconnect,
                }));
            }
            0x30..=0x3f => {
                if let Some((qos_pid, topic_len)) = plain_publish(first, body, v5) {
                    // Split the packet off once; topic and payload share it. The topic is a
                    // clone cut short (inlined: one reference-count increment) rather than
                    // `Bytes::slice`, an out-of-line call with range checks already done here.
                    let mut body = buf.split_to(len).freeze();
                    body.advance(header_len + 2);
                    let mut topic = body.clone();
                    topic.truncate(topic_len);
                    let topic = TopicName::from_plain(topic);
                    let id_len = if qos_pid == QosPid::AtMostOnce { 0 } else { 2 };
                    // At level 5, the empty property block `plain_publish` checked.
                    body.advance(topic_len + id_len + usize::from(v5));
                    return Ok(Some(Packet::Publish(Publish {
                        dup: first & FLAG_DUP != 0,
                        qos_pid,
                        retain: first & FLAG_RETAIN != 0,
                        topic,
                        payload: body,
                    })));
                }
            }
            _ => {}
        }
        self.decode_general(buf)
    }

    /// The complete decoder: every packet type, every check, every error, and partial input.
    #[inline(never)]
    pub(super) fn decode_general(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Packet>, DecodeError> {
        let Some(header) = FixedHeader::parse(buf, self.level)? else {
            return Ok(None);
        };
        // At most 5 + 268,435,455: no overflow.
        let len = header.header_len + header.remaining_len;
        if len > self.max_packet_size() {
            return Err(DecodeError::TooLarge {
                len,
                max: self.max_packet_size(),
            });
        }
        if buf.len() < len {
            return Ok(None);
        }
        if header.holds_bytes(self.level) {
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

/// The remaining-length field at the start of `bytes` and how many bytes it takes; `None`
/// when it is incomplete or malformed (left to [`FixedHeader::parse`] to tell which).
#[inline(always)]
fn fast_remaining_length(bytes: &[u8]) -> Option<(usize, usize)> {
    let &b0 = bytes.first()?;
    if b0 & 0x80 == 0 {
        return Some((usize::from(b0), 1));
    }
    // Two and three bytes (up to 2 MiB) inline too; longer ones take the general loop.
    let &b1 = bytes.get(1)?;
    let value = usize::from(b0 & 0x7f) | usize::from(b1 & 0x7f) << 7;
    if b1 & 0x80 == 0 {
        return Some((value, 2));
    }
    let &b2 = bytes.get(2)?;
    if b2 & 0x80 == 0 {
        return Some((value | usize::from(b2) << 14, 3));
    }
    remaining_length(bytes).ok().flatten()
}

/// The QoS with packet id and the topic length of the PUBLISH whose first byte is `first`
/// and body `body`, when it is valid and its topic is plain ASCII (see
/// [`TopicName::is_plain`]), and at level 5 (`v5`) its property block is empty; `None` for
/// anything else.
#[inline(always)]
fn plain_publish(first: u8, body: &[u8], v5: bool) -> Option<(QosPid, usize)> {
    let qos = (first >> 1) & 0b11;
    if qos == 3 || (qos == 0 && first & FLAG_DUP != 0) {
        return None;
    }
    let (&[t0, t1], rest) = body.split_first_chunk::<2>()?;
    let topic_len = usize::from(u16::from_be_bytes([t0, t1]));
    let topic = rest.get(..topic_len)?;
    if !TopicName::is_plain(topic) {
        return None;
    }
    let qos_pid = match qos {
        0 => QosPid::AtMostOnce,
        _ => {
            let (&[p0, p1], _) = rest.get(topic_len..)?.split_first_chunk::<2>()?;
            let id = PacketId::new(u16::from_be_bytes([p0, p1]))?;
            if qos == 1 {
                QosPid::AtLeastOnce(id)
            } else {
                QosPid::ExactlyOnce(id)
            }
        }
    };
    if v5 {
        let id_len = if qos == 0 { 0 } else { 2 };
        if *rest.get(topic_len + id_len)? != 0 {
            return None;
        }
    }
    Some((qos_pid, topic_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inlined forms agree with the general loop on every field of up to four bytes
    /// drawn from the values around each boundary, whole and cut short.
    #[test]
    fn fast_remaining_length_agrees_with_the_general_one() {
        let values = [0x00, 0x01, 0x7e, 0x7f, 0x80, 0x81, 0xfe, 0xff];
        // Every four-byte field over `values`: n's octal digits pick the bytes.
        for n in 0..values.len().pow(4) {
            let field = [0, 1, 2, 3].map(|i| values[(n >> (3 * i)) & 7]);
            for cut in 0..=field.len() {
                let bytes = &field[..cut];
                assert_eq!(
                    fast_remaining_length(bytes),
                    remaining_length(bytes).ok().flatten(),
                    "{bytes:02x?}"
                );
            }
        }
    }
}
