//! Hand-made MQTT bytes: framing of received packets without the codec, and builders for the
//! packets (valid or deliberately broken) a scripted broker sends.
//!
//! Everything here is independent of `tern_proto`'s codec on purpose: misbehaviour tests need
//! bytes the codec would refuse to produce.

use bytes::{Bytes, BytesMut};
use tern_proto::packet::{Decoder, MAX_REMAINING_LENGTH};
use tern_proto::{DecodeError, Packet, PacketType, ProtocolLevel};

/// One whole packet as received: fixed header plus body, undecoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPacket {
    bytes: Bytes,
    header_len: usize,
}

impl RawPacket {
    /// The whole packet, fixed header included.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The first byte: type nibble and flags.
    pub fn first_byte(&self) -> u8 {
        self.bytes[0]
    }

    /// The packet type; `None` for the reserved nibbles 0 and 15.
    pub fn packet_type(&self) -> Option<PacketType> {
        PacketType::from_nibble(self.first_byte() >> 4)
    }

    /// The low nibble of the first byte.
    pub fn flags(&self) -> u8 {
        self.first_byte() & 0x0f
    }

    /// Everything after the fixed header (`remaining length` bytes).
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.header_len..]
    }

    /// The packet identifier, for packets that carry one: PUBLISH with QoS 1 or 2, the four
    /// acknowledgements, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK. `None` otherwise or when the
    /// body is too short.
    pub fn packet_id(&self) -> Option<u16> {
        let body = self.body();
        let at = match self.packet_type()? {
            PacketType::Publish => {
                if (self.flags() >> 1) & 0b11 == 0 {
                    return None;
                }
                2 + usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]))
            }
            PacketType::PubAck
            | PacketType::PubRec
            | PacketType::PubRel
            | PacketType::PubComp
            | PacketType::Subscribe
            | PacketType::SubAck
            | PacketType::Unsubscribe
            | PacketType::UnsubAck => 0,
            _ => return None,
        };
        Some(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]))
    }

    /// The number of topic filters in a SUBSCRIBE or UNSUBSCRIBE (0 for other packets or a
    /// malformed body).
    pub fn filter_count(&self) -> usize {
        let per_filter_tail = match self.packet_type() {
            Some(PacketType::Subscribe) => 1,
            Some(PacketType::Unsubscribe) => 0,
            _ => return 0,
        };
        let mut rest = self.body().get(2..).unwrap_or_default();
        let mut n = 0;
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let Some(next) = rest.get(2 + len + per_filter_tail..) else {
                break;
            };
            rest = next;
            n += 1;
        }
        n
    }

    /// Decodes with `tern_proto`'s codec, for tests that want typed fields.
    pub fn decode(&self, level: ProtocolLevel) -> Result<Packet, DecodeError> {
        let mut buf = BytesMut::from(&self.bytes[..]);
        match Decoder::new(level, MAX_REMAINING_LENGTH + 5).decode(&mut buf)? {
            Some(p) => Ok(p),
            // Infallible in practice: a RawPacket holds exactly one whole frame.
            None => panic!("the codec wants more bytes for a complete frame: {self:?}"),
        }
    }
}

/// The peer sent a fixed header no MQTT decoder can frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The remaining length had a continuation bit on its fourth byte [MQTT-2.2.3].
    #[error("remaining length longer than 4 bytes [MQTT-2.2.3]")]
    RemainingLengthTooLong,
}

/// Takes one whole packet off the front of `buf`, by framing only (no validation beyond the
/// remaining-length encoding). `Ok(None)`: not complete yet, nothing consumed.
pub fn split_packet(buf: &mut BytesMut) -> Result<Option<RawPacket>, FrameError> {
    let mut len: usize = 0;
    let mut i = 1;
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        len |= usize::from(b & 0x7f) << (7 * (i - 1));
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        if i == 5 {
            return Err(FrameError::RemainingLengthTooLong);
        }
    }
    if buf.len() < i + len {
        return Ok(None);
    }
    let bytes = buf.split_to(i + len).freeze();
    Ok(Some(RawPacket {
        bytes,
        header_len: i,
    }))
}

/// The variable-length encoding of `n` [MQTT-2.2.3]; panics above 268 435 455 (use
/// hand-made bytes for impossible lengths).
pub fn remaining_length(mut n: usize) -> Vec<u8> {
    assert!(
        n <= MAX_REMAINING_LENGTH,
        "remaining length {n} cannot be encoded"
    );
    let mut out = Vec::with_capacity(4);
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return out;
        }
    }
}

/// A packet with first byte `first` and body `body`, with a correct remaining length.
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    out.extend(remaining_length(body.len()));
    out.extend_from_slice(body);
    out
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    let len = u16::try_from(s.len()).unwrap_or_else(|_| panic!("string of {} bytes", s.len()));
    out.extend(len.to_be_bytes());
    out.extend_from_slice(s);
}

/// A 3.1.1 CONNECT with no will, user name or password.
///
/// `connect("", 60, true)` is `10 0c 00 04 'M' 'Q' 'T' 'T' 04 02 00 3c 00 00`.
pub fn connect(client_id: &str, keep_alive: u16, clean_session: bool) -> Vec<u8> {
    let mut body = Vec::new();
    string(&mut body, b"MQTT");
    body.push(4);
    body.push(if clean_session { 0x02 } else { 0 });
    body.extend(keep_alive.to_be_bytes());
    string(&mut body, client_id.as_bytes());
    packet(0x10, &body)
}

/// CONNACK with any return code, including unknown ones (6..=255).
pub fn connack(code: u8, session_present: bool) -> Vec<u8> {
    vec![0x20, 0x02, u8::from(session_present), code]
}

/// PUBLISH; the packet id is written only for QoS 1 and 2. QoS above 2 is written as given
/// (malformed on purpose).
pub fn publish(topic: &str, payload: &[u8], qos: u8, packet_id: u16, retain: bool) -> Vec<u8> {
    let mut body = Vec::new();
    string(&mut body, topic.as_bytes());
    if qos > 0 {
        body.extend(packet_id.to_be_bytes());
    }
    body.extend_from_slice(payload);
    packet(0x30 | (qos << 1) | u8::from(retain), &body)
}

/// An acknowledgement carrying only a packet id: PUBACK, PUBREC, PUBREL (with its required
/// flags `0010`), PUBCOMP or UNSUBACK. Panics for other types.
pub fn ack(kind: PacketType, packet_id: u16) -> Vec<u8> {
    let first = match kind {
        PacketType::PubAck => 0x40,
        PacketType::PubRec => 0x50,
        PacketType::PubRel => 0x62,
        PacketType::PubComp => 0x70,
        PacketType::UnsubAck => 0xb0,
        other => panic!("{other} is not an id-only acknowledgement"),
    };
    let [hi, lo] = packet_id.to_be_bytes();
    vec![first, 0x02, hi, lo]
}

/// PUBACK.
pub fn puback(packet_id: u16) -> Vec<u8> {
    ack(PacketType::PubAck, packet_id)
}

/// PUBREC.
pub fn pubrec(packet_id: u16) -> Vec<u8> {
    ack(PacketType::PubRec, packet_id)
}

/// PUBREL.
pub fn pubrel(packet_id: u16) -> Vec<u8> {
    ack(PacketType::PubRel, packet_id)
}

/// PUBCOMP.
pub fn pubcomp(packet_id: u16) -> Vec<u8> {
    ack(PacketType::PubComp, packet_id)
}

/// UNSUBACK.
pub fn unsuback(packet_id: u16) -> Vec<u8> {
    ack(PacketType::UnsubAck, packet_id)
}

/// SUBSCRIBE (flags `0010`) for `(filter, qos)` pairs.
pub fn subscribe(packet_id: u16, filters: &[(&str, u8)]) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    for (f, q) in filters {
        string(&mut body, f.as_bytes());
        body.push(*q);
    }
    packet(0x82, &body)
}

/// SUBACK with the given return codes as bytes (0x80 is failure; others are written as given).
pub fn suback(packet_id: u16, codes: &[u8]) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    body.extend_from_slice(codes);
    packet(0x90, &body)
}

/// PINGREQ.
pub fn pingreq() -> Vec<u8> {
    vec![0xc0, 0x00]
}

/// PINGRESP.
pub fn pingresp() -> Vec<u8> {
    vec![0xd0, 0x00]
}

/// DISCONNECT.
pub fn disconnect() -> Vec<u8> {
    vec![0xe0, 0x00]
}

/// A PUBLISH header whose remaining length has a fifth byte: four bytes with the continuation
/// bit, then one more. Malformed [MQTT-2.2.3]; a decoder must fail after the fourth.
pub fn malformed_remaining_length() -> Vec<u8> {
    vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01]
}

/// The first 6 bytes of a PUBLISH announcing 20: a truncated packet (send, then close).
pub fn truncated_publish() -> Vec<u8> {
    let mut p = publish("a/b", b"0123456789abcd", 0, 0, false);
    assert_eq!(p[1], 19, "the truncated packet's announced length");
    p.truncate(6);
    p
}

/// Bytes no MQTT decoder accepts: a packet of the reserved type 15 followed by junk.
pub fn garbage() -> Vec<u8> {
    vec![0xf0, 0x04, 0xde, 0xad, 0xbe, 0xef]
}

/// The start of a PUBLISH claiming the largest encodable remaining length (268 435 455 bytes,
/// 256 MiB less one) followed by a topic: a client must refuse it by its limit, not buffer it.
pub fn huge_publish_header() -> Vec<u8> {
    vec![0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x03, b'a', b'/', b'b']
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_matches_the_hand_made_bytes() {
        assert_eq!(
            connect("", 60, true),
            [
                0x10, 0x0c, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 0x3c, 0, 0
            ]
        );
    }

    #[test]
    fn remaining_length_boundaries() {
        assert_eq!(remaining_length(0), [0]);
        assert_eq!(remaining_length(127), [0x7f]);
        assert_eq!(remaining_length(128), [0x80, 0x01]);
        assert_eq!(remaining_length(16_383), [0xff, 0x7f]);
        assert_eq!(remaining_length(16_384), [0x80, 0x80, 0x01]);
        assert_eq!(
            remaining_length(MAX_REMAINING_LENGTH),
            [0xff, 0xff, 0xff, 0x7f]
        );
    }

    #[test]
    fn split_packet_frames_and_waits_for_more() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&publish("t", b"xy", 1, 7, false));
        buf.extend_from_slice(&pingreq()[..1]);
        let p = split_packet(&mut buf).unwrap().unwrap();
        assert_eq!(p.packet_type(), Some(PacketType::Publish));
        assert_eq!(p.packet_id(), Some(7));
        assert_eq!(split_packet(&mut buf), Ok(None));
        buf.extend_from_slice(&[0]);
        let p = split_packet(&mut buf).unwrap().unwrap();
        assert_eq!(p.packet_type(), Some(PacketType::PingReq));
        assert!(buf.is_empty());
    }

    #[test]
    fn split_packet_rejects_a_fifth_length_byte() {
        let mut buf = BytesMut::from(&malformed_remaining_length()[..]);
        assert_eq!(
            split_packet(&mut buf),
            Err(FrameError::RemainingLengthTooLong)
        );
    }

    #[test]
    fn subscribe_filters_are_counted() {
        let mut buf = BytesMut::from(&subscribe(3, &[("a", 0), ("b/#", 1)])[..]);
        let p = split_packet(&mut buf).unwrap().unwrap();
        assert_eq!(p.flags(), 0b0010);
        assert_eq!(p.packet_id(), Some(3));
        assert_eq!(p.filter_count(), 2);
    }
}
