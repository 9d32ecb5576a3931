//! Encoding and decoding of whole packets: the fixed header plus a dispatch to the per-packet
//! files. The streaming side (buffering, limits) lives in [`super::Decoder`].

use bytes::{BufMut, Bytes, BytesMut};

use super::fixed_header::FixedHeader;
use super::read::Reader;
use super::write::{put_remaining_length, remaining_length_len};
use super::{
    ConnAck, Connect, DecodeError, EncodeError, MAX_REMAINING_LENGTH, Packet, PacketType,
    ProtocolLevel, Publish, SubAck, Subscribe, Unsubscribe, ack,
};

impl Packet {
    /// Appends this packet, fixed header included, to `out`.
    ///
    /// Checks the rules of the protocol first and leaves `out` untouched when one is broken:
    /// DUP at QoS 0, CONNECT client rules (client id, password without user name in 3.1.1,
    /// binary fields of at most 65,535 bytes), empty SUBSCRIBE / UNSUBSCRIBE / SUBACK lists,
    /// session present on a refusing CONNACK, and a remaining length above 268,435,455.
    /// CONNECT carries its own level; for the level-specific rules of packets a server sends
    /// (CONNACK, SUBACK) use [`Packet::encode_for`].
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_checked(None, out)
    }

    /// Like [`Packet::encode`], also refusing what `level` does not have: SUBACK failure
    /// code 0x80 and CONNACK session present in 3.1.
    pub fn encode_for(&self, level: ProtocolLevel, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_checked(Some(level), out)
    }

    /// Size of the encoded packet in bytes, fixed header included. Meaningful only for a
    /// packet that [`Packet::encode`] accepts.
    pub fn encoded_len(&self) -> usize {
        let remaining = self.remaining_len();
        remaining
            .saturating_add(remaining_length_len(remaining))
            .saturating_add(1)
    }

    #[inline]
    fn encode_checked(
        &self,
        level: Option<ProtocolLevel>,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        // Fast paths for the packets of a publish flow: one match, one reservation, the
        // header written in one piece. The rules they check are the same (acks have none).
        match self {
            Self::Publish(p) => return p.encode(out),
            Self::PubAck(id) => return ack::encode(PacketType::PubAck, *id, out),
            Self::PubRec(id) => return ack::encode(PacketType::PubRec, *id, out),
            Self::PubRel(id) => return ack::encode(PacketType::PubRel, *id, out),
            Self::PubComp(id) => return ack::encode(PacketType::PubComp, *id, out),
            Self::UnsubAck(id) => return ack::encode(PacketType::UnsubAck, *id, out),
            _ => {}
        }
        self.encode_general(level, out)
    }

    /// Every packet type, every rule.
    #[inline(never)]
    fn encode_general(
        &self,
        level: Option<ProtocolLevel>,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.check(level)?;
        let remaining = self.remaining_len();
        if remaining > MAX_REMAINING_LENGTH {
            return Err(EncodeError::TooLarge { len: remaining });
        }
        out.reserve(1 + remaining_length_len(remaining) + remaining);
        out.put_u8(self.first_byte());
        put_remaining_length(out, remaining);
        match self {
            Self::Connect(p) => p.write(out),
            Self::ConnAck(p) => p.write(out),
            Self::Publish(p) => p.write(out),
            Self::PubAck(id)
            | Self::PubRec(id)
            | Self::PubRel(id)
            | Self::PubComp(id)
            | Self::UnsubAck(id) => ack::write(*id, out),
            Self::Subscribe(p) => p.write(out),
            Self::SubAck(p) => p.write(out),
            Self::Unsubscribe(p) => p.write(out),
            Self::PingReq | Self::PingResp | Self::Disconnect => {}
        }
        Ok(())
    }

    fn check(&self, level: Option<ProtocolLevel>) -> Result<(), EncodeError> {
        match self {
            Self::Connect(p) => p.check(),
            Self::ConnAck(p) => {
                if level == Some(ProtocolLevel::V3_1) && p.session_present {
                    return Err(EncodeError::SessionPresentInV31);
                }
                p.check()
            }
            Self::Publish(p) => p.check(),
            Self::Subscribe(p) => p.check(),
            Self::SubAck(p) => p.check(level),
            Self::Unsubscribe(p) => p.check(),
            Self::PubAck(_)
            | Self::PubRec(_)
            | Self::PubRel(_)
            | Self::PubComp(_)
            | Self::UnsubAck(_)
            | Self::PingReq
            | Self::PingResp
            | Self::Disconnect => Ok(()),
        }
    }

    /// The first fixed-header byte: type nibble and flags (Table 2.2).
    fn first_byte(&self) -> u8 {
        let packet_type = self.packet_type();
        let flags = match self {
            Self::Publish(p) => p.flags(),
            _ => packet_type.required_flags().unwrap_or(0),
        };
        (packet_type as u8) << 4 | flags
    }

    /// Body length (what the remaining-length field announces).
    fn remaining_len(&self) -> usize {
        match self {
            Self::Connect(p) => p.remaining_len(),
            Self::ConnAck(_)
            | Self::PubAck(_)
            | Self::PubRec(_)
            | Self::PubRel(_)
            | Self::PubComp(_)
            | Self::UnsubAck(_) => 2,
            Self::Publish(p) => p.remaining_len(),
            Self::Subscribe(p) => p.remaining_len(),
            Self::SubAck(p) => p.remaining_len(),
            Self::Unsubscribe(p) => p.remaining_len(),
            Self::PingReq | Self::PingResp | Self::Disconnect => 0,
        }
    }

    /// Decodes the body of a CONNECT, PUBLISH, SUBSCRIBE or UNSUBSCRIBE (see
    /// [`FixedHeader::holds_bytes`]); their fields share `body`'s buffer. Other types are
    /// passed on to [`Packet::decode_plain`].
    pub(crate) fn decode_shared(
        header: FixedHeader,
        body: Bytes,
        level: ProtocolLevel,
    ) -> Result<Self, DecodeError> {
        let r = Reader::new(header.packet_type, body);
        Ok(match header.packet_type {
            PacketType::Connect => Self::Connect(Box::new(Connect::decode(r)?)),
            PacketType::Publish => Self::Publish(Publish::decode(header.flags, r)?),
            PacketType::Subscribe => Self::Subscribe(Subscribe::decode(r)?),
            PacketType::Unsubscribe => Self::Unsubscribe(Unsubscribe::decode(r)?),
            _ => return Self::decode_plain(header, &r.rest(), level),
        })
    }

    /// Decodes the body of any other packet from a borrowed slice; `level` decides CONNACK's
    /// flags and SUBACK's failure code. The four types that keep bytes are copied and passed
    /// on to [`Packet::decode_shared`] (the decoder never sends them here).
    pub(crate) fn decode_plain(
        header: FixedHeader,
        body: &[u8],
        level: ProtocolLevel,
    ) -> Result<Self, DecodeError> {
        let r = Reader::new(header.packet_type, body);
        Ok(match header.packet_type {
            PacketType::ConnAck => Self::ConnAck(ConnAck::decode(r, level)?),
            PacketType::PubAck => Self::PubAck(ack::decode(r)?),
            PacketType::PubRec => Self::PubRec(ack::decode(r)?),
            PacketType::PubRel => Self::PubRel(ack::decode(r)?),
            PacketType::PubComp => Self::PubComp(ack::decode(r)?),
            PacketType::SubAck => Self::SubAck(SubAck::decode(r, level)?),
            PacketType::UnsubAck => Self::UnsubAck(ack::decode(r)?),
            PacketType::PingReq => {
                r.finish()?;
                Self::PingReq
            }
            PacketType::PingResp => {
                r.finish()?;
                Self::PingResp
            }
            PacketType::Disconnect => {
                r.finish()?;
                Self::Disconnect
            }
            PacketType::Connect
            | PacketType::Publish
            | PacketType::Subscribe
            | PacketType::Unsubscribe => {
                return Self::decode_shared(header, Bytes::copy_from_slice(body), level);
            }
        })
    }
}
