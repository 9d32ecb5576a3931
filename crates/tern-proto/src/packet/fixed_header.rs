//! The fixed header: packet type, flags and remaining length [MQTT-2.2].
//!
//! Everything that can be judged from the header alone is judged here, before the body is
//! buffered: reserved types, Table 2.2 flags, PUBLISH QoS 3 and DUP at QoS 0, the length
//! encoding, and packets of fixed size that announce a longer body.

use super::read::remaining_length;
use super::write::remaining_length_len;
use super::{DecodeError, PacketType, ProtocolLevel};

/// A parsed fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FixedHeader {
    /// Packet type (high nibble).
    pub(crate) packet_type: PacketType,
    /// Flags (low nibble); only PUBLISH's carry information.
    pub(crate) flags: u8,
    /// Body length announced by the remaining-length field.
    pub(crate) remaining_len: usize,
    /// Bytes the fixed header itself takes (2..=5).
    pub(crate) header_len: usize,
}

impl FixedHeader {
    /// Parses the fixed header at the start of `bytes`; `Ok(None)` if it is not complete yet.
    ///
    /// Checks on the first byte run as soon as it is present, so a bad first byte is reported
    /// without waiting for the length. Type 15 (AUTH) exists at level 5 only; at level 5 the
    /// remaining length must also be minimal [MQTT-1.5.5-1], and only PINGREQ and PINGRESP
    /// keep a fixed size.
    pub(crate) fn parse(bytes: &[u8], level: ProtocolLevel) -> Result<Option<Self>, DecodeError> {
        let Some((&first, rest)) = bytes.split_first() else {
            return Ok(None);
        };
        let nibble = first >> 4;
        let flags = first & 0x0f;
        let packet_type = match PacketType::from_nibble(nibble) {
            Some(PacketType::Auth) if !level.is_v5() => None,
            t => t,
        }
        .ok_or(DecodeError::ReservedPacketType { nibble })?;
        check_flags(packet_type, flags)?;
        let Some((remaining_len, len_bytes)) = remaining_length(rest)? else {
            return Ok(None);
        };
        if level.is_v5() && len_bytes != remaining_length_len(remaining_len) {
            return Err(DecodeError::NonMinimalVbi {
                packet: packet_type,
                field: "remaining length",
            });
        }
        if let Some(size) = fixed_body_size(packet_type, level)
            && remaining_len > size
        {
            return Err(DecodeError::TrailingBytes {
                packet: packet_type,
                extra: remaining_len - size,
            });
        }
        Ok(Some(Self {
            packet_type,
            flags,
            remaining_len,
            header_len: 1 + len_bytes,
        }))
    }
}

impl FixedHeader {
    /// Whether the decoded packet keeps slices of its body (CONNECT, PUBLISH, SUBSCRIBE,
    /// UNSUBSCRIBE; at level 5 every packet but the pings, the two-byte acks and an empty
    /// DISCONNECT), so the body must become shared [`bytes::Bytes`]; the others decode from a
    /// borrowed slice.
    pub(crate) fn holds_bytes(&self, level: ProtocolLevel) -> bool {
        match self.packet_type {
            PacketType::Connect
            | PacketType::Publish
            | PacketType::Subscribe
            | PacketType::Unsubscribe
            | PacketType::Auth => true,
            _ if !level.is_v5() => false,
            PacketType::PingReq | PacketType::PingResp => false,
            PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
                self.remaining_len != 2
            }
            PacketType::Disconnect => self.remaining_len != 0,
            PacketType::ConnAck | PacketType::SubAck | PacketType::UnsubAck => true,
        }
    }
}

/// Table 2.2 flags [MQTT-2.2.2-1], [MQTT-2.2.2-2]; for PUBLISH, QoS and DUP consistency.
fn check_flags(packet: PacketType, flags: u8) -> Result<(), DecodeError> {
    match packet.required_flags() {
        Some(required) if flags != required => Err(DecodeError::ReservedFlags { packet, flags }),
        Some(_) => Ok(()),
        None => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                Err(DecodeError::InvalidQoS)
            } else if qos == 0 && flags & 0b1000 != 0 {
                Err(DecodeError::DupAtQoS0)
            } else {
                Ok(())
            }
        }
    }
}

/// Body size of the packets whose size is fixed by the spec at `level`.
const fn fixed_body_size(packet: PacketType, level: ProtocolLevel) -> Option<usize> {
    if level.is_v5() {
        return match packet {
            PacketType::PingReq | PacketType::PingResp => Some(0),
            _ => None,
        };
    }
    match packet {
        PacketType::ConnAck
        | PacketType::PubAck
        | PacketType::PubRec
        | PacketType::PubRel
        | PacketType::PubComp
        | PacketType::UnsubAck => Some(2),
        PacketType::PingReq | PacketType::PingResp | PacketType::Disconnect => Some(0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_first_byte_is_reported_before_the_length() {
        assert_eq!(
            FixedHeader::parse(&[0x00], ProtocolLevel::V3_1_1),
            Err(DecodeError::ReservedPacketType { nibble: 0 })
        );
        assert_eq!(
            FixedHeader::parse(&[0xf0], ProtocolLevel::V3_1_1),
            Err(DecodeError::ReservedPacketType { nibble: 15 })
        );
        assert!(matches!(
            FixedHeader::parse(&[0xf0, 0], ProtocolLevel::V5),
            Ok(Some(FixedHeader {
                packet_type: PacketType::Auth,
                ..
            }))
        ));
        assert_eq!(
            FixedHeader::parse(&[0xf1], ProtocolLevel::V5),
            Err(DecodeError::ReservedFlags {
                packet: PacketType::Auth,
                flags: 1
            })
        );
        assert_eq!(
            FixedHeader::parse(&[0x60], ProtocolLevel::V3_1_1),
            Err(DecodeError::ReservedFlags {
                packet: PacketType::PubRel,
                flags: 0
            })
        );
        assert_eq!(
            FixedHeader::parse(&[0x36], ProtocolLevel::V3_1_1),
            Err(DecodeError::InvalidQoS)
        );
        assert_eq!(
            FixedHeader::parse(&[0x38], ProtocolLevel::V3_1_1),
            Err(DecodeError::DupAtQoS0)
        );
    }

    #[test]
    fn every_type_checks_its_table_2_2_flags() {
        for nibble in 1..=15u8 {
            let packet = PacketType::from_nibble(nibble).unwrap();
            for flags in 0..16u8 {
                let res = FixedHeader::parse(&[nibble << 4 | flags, 0], ProtocolLevel::V5);
                match packet.required_flags() {
                    Some(req) if req == flags => assert!(res.is_ok(), "{packet} {flags:04b}"),
                    Some(_) => assert_eq!(
                        res,
                        Err(DecodeError::ReservedFlags { packet, flags }),
                        "{packet} {flags:04b}"
                    ),
                    None => {}
                }
            }
        }
    }

    #[test]
    fn fixed_size_packets_announcing_more_are_refused_from_the_header() {
        assert_eq!(
            FixedHeader::parse(&[0xd0, 0x80, 0x80, 0x80, 0x01], ProtocolLevel::V3_1_1),
            Err(DecodeError::TrailingBytes {
                packet: PacketType::PingResp,
                extra: 2_097_152
            })
        );
        assert_eq!(
            FixedHeader::parse(&[0x40, 0x03], ProtocolLevel::V3_1_1),
            Err(DecodeError::TrailingBytes {
                packet: PacketType::PubAck,
                extra: 1
            })
        );
    }

    #[test]
    fn level_5_refuses_padded_lengths_and_lets_acks_grow() {
        assert_eq!(
            FixedHeader::parse(&[0x40, 0x82, 0x00], ProtocolLevel::V5),
            Err(DecodeError::NonMinimalVbi {
                packet: PacketType::PubAck,
                field: "remaining length"
            })
        );
        assert!(matches!(
            FixedHeader::parse(&[0x40, 0x03], ProtocolLevel::V5),
            Ok(Some(FixedHeader {
                remaining_len: 3,
                ..
            }))
        ));
        assert!(FixedHeader::parse(&[0xd0, 0x01], ProtocolLevel::V5).is_err());
    }
}
