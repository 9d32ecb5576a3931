//! Encoding and decoding of whole packets: the fixed header plus a dispatch to the per-packet
//! files. The streaming side (buffering, limits) lives in [`super::Decoder`].

use bytes::{BufMut, Bytes, BytesMut};

use super::fixed_header::FixedHeader;
use super::read::Reader;
use super::reason::Code;
use super::write::{put_remaining_length, remaining_length_len};
use super::{
    Ack, Auth, ConnAck, ConnAckV5, Connect, DecodeError, DisconnectV5, EncodeError,
    MAX_REMAINING_LENGTH, Packet, PacketType, ProtocolLevel, Publish, PublishV5, SubAck, SubAckV5,
    Subscribe, SubscribeV5, UnsubAckV5, Unsubscribe, UnsubscribeV5, ack,
};

impl Packet {
    /// Appends this packet, fixed header included, to `out`, in the form of the level it
    /// implies: MQTT 5 when it holds something only MQTT 5 has (a `…V5` variant, AUTH), else
    /// the 3.1.1 form. A CONNECT carries its own level.
    ///
    /// Checks the rules of the protocol first and leaves `out` untouched when one is broken:
    /// DUP at QoS 0, CONNECT client rules (client id, password without user name in 3.1.1,
    /// binary fields of at most 65,535 bytes), empty SUBSCRIBE / UNSUBSCRIBE / SUBACK lists,
    /// session present on a refusing CONNACK, property values, and a remaining length above
    /// 268,435,455. A connection speaking MQTT 5 must use [`Packet::encode_for`]: the
    /// packets both levels share (PUBLISH without properties, SUBSCRIBE, SUBACK, ...) differ
    /// on the wire.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        // The 3.1.1 PUBLISH first, with its level known at compile time.
        if let Self::Publish(p) = self {
            return p.encode(false, out);
        }
        self.encode_checked(None, out)
    }

    /// Like [`Packet::encode`], in the form of `level`: refuses what `level` does not have
    /// (SUBACK failure code 0x80 and CONNACK session present in 3.1; properties, reason
    /// codes and AUTH below 5), and writes the property blocks MQTT 5 requires.
    pub fn encode_for(&self, level: ProtocolLevel, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_checked(Some(level), out)
    }

    /// Size of the encoded packet in bytes, fixed header included, in the form
    /// [`Packet::encode`] writes. Meaningful only for a packet that it accepts.
    pub fn encoded_len(&self) -> usize {
        self.total_len(self.implies_v5())
    }

    /// Size of the packet as [`Packet::encode_for`] writes it at `level`.
    pub fn encoded_len_for(&self, level: ProtocolLevel) -> usize {
        self.total_len(level.is_v5())
    }

    fn total_len(&self, v5: bool) -> usize {
        let remaining = self.remaining_len(v5);
        remaining
            .saturating_add(remaining_length_len(remaining))
            .saturating_add(1)
    }

    /// Whether the packet holds something only MQTT 5 has.
    fn implies_v5(&self) -> bool {
        match self {
            Self::Connect(c) => c.level.is_v5(),
            Self::ConnAckV5(_)
            | Self::PublishV5(_)
            | Self::PubAckV5(_)
            | Self::PubRecV5(_)
            | Self::PubRelV5(_)
            | Self::PubCompV5(_)
            | Self::SubscribeV5(_)
            | Self::SubAckV5(_)
            | Self::UnsubscribeV5(_)
            | Self::UnsubAckV5(_)
            | Self::DisconnectV5(_)
            | Self::Auth(_) => true,
            _ => false,
        }
    }

    #[inline]
    fn encode_checked(
        &self,
        level: Option<ProtocolLevel>,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        // Fast paths for the packets of a publish flow: one match, one reservation, the
        // header written in one piece. The rules they check are the same (acks have none;
        // their two-byte form is valid at every level).
        match self {
            Self::Publish(p) => return p.encode(level.is_some_and(ProtocolLevel::is_v5), out),
            Self::PubAck(id) => return ack::encode(PacketType::PubAck, *id, out),
            Self::PubRec(id) => return ack::encode(PacketType::PubRec, *id, out),
            Self::PubRel(id) => return ack::encode(PacketType::PubRel, *id, out),
            Self::PubComp(id) => return ack::encode(PacketType::PubComp, *id, out),
            Self::UnsubAck(id) if level.is_none_or(|l| !l.is_v5()) => {
                return ack::encode(PacketType::UnsubAck, *id, out);
            }
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
        let implied = self.implies_v5();
        let v5 = match level {
            Some(level) => level.is_v5(),
            None => implied,
        };
        if !v5 && implied && !matches!(self, Self::Connect(_)) {
            return Err(EncodeError::NotInLevel {
                packet: self.packet_type(),
                level: level.unwrap_or_default(),
                what: "reason codes, properties and AUTH are MQTT 5 only",
            });
        }
        self.check(level, v5)?;
        let remaining = self.remaining_len(v5);
        if remaining > MAX_REMAINING_LENGTH {
            return Err(EncodeError::TooLarge { len: remaining });
        }
        out.reserve(1 + remaining_length_len(remaining) + remaining);
        out.put_u8(self.first_byte());
        put_remaining_length(out, remaining);
        match self {
            Self::Connect(p) => p.write(out),
            Self::ConnAck(p) if v5 => p.write_v5(out),
            Self::ConnAck(p) => p.write(out),
            Self::Publish(p) => p.write(v5, out),
            Self::PubAck(id)
            | Self::PubRec(id)
            | Self::PubRel(id)
            | Self::PubComp(id)
            | Self::UnsubAck(id) => ack::write(*id, out),
            Self::Subscribe(p) => p.write(v5, out),
            Self::SubAck(p) => p.write(v5, out),
            Self::Unsubscribe(p) => p.write(v5, out),
            Self::PingReq | Self::PingResp | Self::Disconnect => {}
            Self::ConnAckV5(p) => p.write(out),
            Self::PublishV5(p) => p.write(out),
            Self::PubAckV5(a) | Self::PubRecV5(a) => a.write(out),
            Self::PubRelV5(a) | Self::PubCompV5(a) => a.write(out),
            Self::SubscribeV5(p) => p.write(out),
            Self::SubAckV5(p) => p.write(out),
            Self::UnsubscribeV5(p) => p.write(out),
            Self::UnsubAckV5(p) => p.write(out),
            Self::DisconnectV5(p) => p.write(out),
            Self::Auth(p) => p.write(out),
        }
        Ok(())
    }

    fn check(&self, level: Option<ProtocolLevel>, v5: bool) -> Result<(), EncodeError> {
        match self {
            Self::Connect(p) => p.check(),
            Self::ConnAck(p) if v5 => p.check_v5(),
            Self::ConnAck(p) => {
                if level == Some(ProtocolLevel::V3_1) && p.session_present {
                    return Err(EncodeError::SessionPresentInV31);
                }
                p.check()
            }
            Self::Publish(p) => p.check(),
            Self::PublishV5(p) => p.check(),
            Self::Subscribe(p) => p.check(),
            Self::SubAck(p) => p.check(level),
            Self::Unsubscribe(p) => p.check(),
            Self::UnsubAck(_) if v5 => Err(EncodeError::NotInLevel {
                packet: PacketType::UnsubAck,
                level: ProtocolLevel::V5,
                what: "an UNSUBACK lists a reason code per filter (use UnsubAckV5)",
            }),
            Self::PubAck(_)
            | Self::PubRec(_)
            | Self::PubRel(_)
            | Self::PubComp(_)
            | Self::UnsubAck(_)
            | Self::PingReq
            | Self::PingResp
            | Self::Disconnect => Ok(()),
            Self::ConnAckV5(p) => p.check(),
            Self::PubAckV5(a) => a.check(PacketType::PubAck),
            Self::PubRecV5(a) => a.check(PacketType::PubRec),
            Self::PubRelV5(a) => a.check(PacketType::PubRel),
            Self::PubCompV5(a) => a.check(PacketType::PubComp),
            Self::SubscribeV5(p) => p.check(),
            Self::SubAckV5(p) => p.check(),
            Self::UnsubscribeV5(p) => p.check(),
            Self::UnsubAckV5(p) => p.check(),
            Self::DisconnectV5(p) => p.check(),
            Self::Auth(p) => p.check(),
        }
    }

    /// The first fixed-header byte: type nibble and flags (Table 2.2).
    fn first_byte(&self) -> u8 {
        let packet_type = self.packet_type();
        let flags = match self {
            Self::Publish(p) => p.flags(),
            Self::PublishV5(p) => p.publish.flags(),
            _ => packet_type.required_flags().unwrap_or(0),
        };
        (packet_type as u8) << 4 | flags
    }

    /// Body length (what the remaining-length field announces), in the level-5 form when
    /// `v5`.
    fn remaining_len(&self, v5: bool) -> usize {
        match self {
            Self::Connect(p) => p.remaining_len(),
            Self::ConnAck(p) if v5 => p.remaining_len_v5(),
            Self::ConnAck(_)
            | Self::PubAck(_)
            | Self::PubRec(_)
            | Self::PubRel(_)
            | Self::PubComp(_)
            | Self::UnsubAck(_) => 2,
            Self::Publish(p) => p.remaining_len(v5),
            Self::Subscribe(p) => p.remaining_len(v5),
            Self::SubAck(p) => p.remaining_len(v5),
            Self::Unsubscribe(p) => p.remaining_len(v5),
            Self::PingReq | Self::PingResp | Self::Disconnect => 0,
            Self::ConnAckV5(p) => p.remaining_len(),
            Self::PublishV5(p) => p.remaining_len(),
            Self::PubAckV5(a) | Self::PubRecV5(a) => a.remaining_len(),
            Self::PubRelV5(a) | Self::PubCompV5(a) => a.remaining_len(),
            Self::SubscribeV5(p) => p.remaining_len(),
            Self::SubAckV5(p) => p.remaining_len(),
            Self::UnsubscribeV5(p) => p.remaining_len(),
            Self::UnsubAckV5(p) => p.remaining_len(),
            Self::DisconnectV5(p) => p.remaining_len(),
            Self::Auth(p) => p.remaining_len(),
        }
    }

    /// Decodes the body of a packet whose fields share `body`'s buffer (see
    /// [`FixedHeader::holds_bytes`]): CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, and at level
    /// 5 every packet with properties. Other types are passed on to [`Packet::decode_plain`].
    pub(crate) fn decode_shared(
        header: FixedHeader,
        body: Bytes,
        level: ProtocolLevel,
    ) -> Result<Self, DecodeError> {
        let r = Reader::new(header.packet_type, body);
        if level.is_v5() {
            return Self::decode_v5(header, r);
        }
        Ok(match header.packet_type {
            PacketType::Connect => Self::Connect(Box::new(Connect::decode(r)?)),
            PacketType::Publish => Self::Publish(Publish::decode(header.flags, r)?),
            PacketType::Subscribe => Self::Subscribe(Subscribe::decode(r)?),
            PacketType::Unsubscribe => Self::Unsubscribe(Unsubscribe::decode(r)?),
            _ => return Self::decode_plain(header, &r.rest(), level),
        })
    }

    /// Decodes any MQTT 5 body, returning the shared variant when the packet says no more
    /// than it can.
    fn decode_v5(header: FixedHeader, r: Reader<Bytes>) -> Result<Self, DecodeError> {
        Ok(match header.packet_type {
            PacketType::Connect => Self::Connect(Box::new(Connect::decode(r)?)),
            PacketType::ConnAck => ConnAckV5::decode(r)?,
            PacketType::Publish => PublishV5::decode(header.flags, r)?,
            PacketType::PubAck => decode_ack(r, Self::PubAck, Self::PubAckV5)?,
            PacketType::PubRec => decode_ack(r, Self::PubRec, Self::PubRecV5)?,
            PacketType::PubRel => decode_ack(r, Self::PubRel, Self::PubRelV5)?,
            PacketType::PubComp => decode_ack(r, Self::PubComp, Self::PubCompV5)?,
            PacketType::Subscribe => SubscribeV5::decode(r)?,
            PacketType::SubAck => SubAckV5::decode(r)?,
            PacketType::Unsubscribe => UnsubscribeV5::decode(r)?,
            PacketType::UnsubAck => Self::UnsubAckV5(Box::new(UnsubAckV5::decode(r)?)),
            PacketType::PingReq => {
                r.finish()?;
                Self::PingReq
            }
            PacketType::PingResp => {
                r.finish()?;
                Self::PingResp
            }
            PacketType::Disconnect => DisconnectV5::decode(r)?,
            PacketType::Auth => Self::Auth(Box::new(Auth::decode(r)?)),
        })
    }

    /// Decodes the body of any other packet from a borrowed slice; `level` decides CONNACK's
    /// flags and SUBACK's failure code. The types that keep bytes are copied and passed on to
    /// [`Packet::decode_shared`] (the decoder never sends them here).
    pub(crate) fn decode_plain(
        header: FixedHeader,
        body: &[u8],
        level: ProtocolLevel,
    ) -> Result<Self, DecodeError> {
        if header.holds_bytes(level) {
            return Self::decode_shared(header, Bytes::copy_from_slice(body), level);
        }
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
            | PacketType::Unsubscribe
            | PacketType::Auth => {
                return Self::decode_shared(header, Bytes::copy_from_slice(body), level);
            }
        })
    }
}

/// A level 5 PUBACK / PUBREC / PUBREL / PUBCOMP: the 3.1.1 form (`plain`) when it says
/// nothing more than its packet id (reason Success, no properties), so each packet has one
/// representation; else the level 5 form (`full`).
fn decode_ack<R: Code>(
    r: Reader<Bytes>,
    plain: fn(crate::packet::PacketId) -> Packet,
    full: fn(Ack<R>) -> Packet,
) -> Result<Packet, DecodeError> {
    let a = Ack::<R>::decode(r)?;
    Ok(if a.is_plain() {
        plain(a.packet_id)
    } else {
        full(a)
    })
}
