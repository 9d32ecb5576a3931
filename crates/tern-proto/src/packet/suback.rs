//! SUBACK [MQTT-3.9].

use bytes::{BufMut, Bytes, BytesMut};

use super::property::{self, PropertyBlock, PropertyScope, ReasonProperties};
use super::read::Reader;
use super::reason::SubAckReasonCode;
use super::{DecodeError, EncodeError, Packet, PacketId, PacketType, ProtocolLevel, QoS};

/// SUBACK: one return code per filter of the SUBSCRIBE it answers, in the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The SUBSCRIBE's packet id.
    pub packet_id: PacketId,
    /// One code per requested filter.
    pub return_codes: Vec<SubscribeReturnCode>,
}

/// Outcome of one filter of a SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscribeReturnCode {
    /// Granted, at this maximum QoS (0x00, 0x01, 0x02).
    Success(QoS),
    /// Refused (0x80; 3.1.1 only).
    Failure,
}

impl SubscribeReturnCode {
    /// The byte on the wire.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Success(qos) => qos as u8,
            Self::Failure => 0x80,
        }
    }
}

impl SubscribeReturnCode {
    /// The code for a SUBACK byte at `level`: 0, 1, 2, and 0x80 in 3.1.1 only [MQTT-3.9.3-2].
    pub(crate) fn from_u8(byte: u8, level: ProtocolLevel) -> Option<Self> {
        match (byte, level) {
            (0x80, ProtocolLevel::V3_1_1 | ProtocolLevel::V5) => Some(Self::Failure),
            _ => QoS::from_u8(byte).map(Self::Success),
        }
    }
}

impl SubAck {
    /// Decodes a SUBACK body: packet id, then at least one return code.
    pub(crate) fn decode(mut r: Reader<&[u8]>, level: ProtocolLevel) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let body = r.rest();
        if body.is_empty() {
            return Err(DecodeError::NoReturnCodes);
        }
        let return_codes = body
            .iter()
            .map(|&code| {
                SubscribeReturnCode::from_u8(code, level)
                    .ok_or(DecodeError::InvalidSubAckCode { code })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            packet_id,
            return_codes,
        })
    }

    /// Refuses an empty list of codes, and 0x80 when speaking 3.1 (`level` given).
    pub(crate) fn check(&self, level: Option<ProtocolLevel>) -> Result<(), EncodeError> {
        if self.return_codes.is_empty() {
            return Err(EncodeError::NoReturnCodes);
        }
        if level == Some(ProtocolLevel::V3_1)
            && self.return_codes.contains(&SubscribeReturnCode::Failure)
        {
            return Err(EncodeError::SubAckFailureInV31);
        }
        Ok(())
    }

    /// Body length; `v5` adds an empty property block.
    pub(crate) fn remaining_len(&self, v5: bool) -> usize {
        let start: usize = if v5 { 3 } else { 2 };
        start.saturating_add(self.return_codes.len())
    }

    /// Appends the body; `v5` adds an empty property block (0x80 is Unspecified error).
    pub(crate) fn write(&self, v5: bool, out: &mut BytesMut) {
        out.put_u16(self.packet_id.get());
        if v5 {
            out.put_u8(0);
        }
        for code in &self.return_codes {
            out.put_u8(code.to_u8());
        }
    }
}

/// An MQTT 5 SUBACK: a reason code per filter and properties (§3.9).
///
/// One whose codes are all granted QoS or 0x80 and that has no properties is
/// [`Packet::SubAck`]; the decoder returns that form for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAckV5 {
    /// The SUBSCRIBE's packet id.
    pub packet_id: PacketId,
    /// One code per requested filter, in order [MQTT-3.9.3-1].
    pub reason_codes: Vec<SubAckReasonCode>,
    /// Reason String and User Properties.
    pub properties: ReasonProperties,
}

impl SubAckV5 {
    /// Decodes an MQTT 5 SUBACK body: packet id, properties, at least one reason code.
    pub(crate) fn decode(mut r: Reader<Bytes>) -> Result<Packet, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties: ReasonProperties =
            property::read(&mut r, PropertyScope::Packet(PacketType::SubAck))?;
        let body = r.rest();
        if body.is_empty() {
            return Err(DecodeError::NoReasonCodes {
                packet: PacketType::SubAck,
            });
        }
        let reason_codes = body
            .iter()
            .map(|&code| {
                SubAckReasonCode::from_u8(code).ok_or(DecodeError::InvalidReasonCode {
                    packet: PacketType::SubAck,
                    code,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let plain = |c: &SubAckReasonCode| {
            c.granted_qos().is_some() || *c == SubAckReasonCode::UnspecifiedError
        };
        if properties.is_empty() && reason_codes.iter().all(plain) {
            let return_codes = reason_codes
                .iter()
                .map(|c| match c.granted_qos() {
                    Some(qos) => SubscribeReturnCode::Success(qos),
                    None => SubscribeReturnCode::Failure,
                })
                .collect();
            return Ok(Packet::SubAck(SubAck {
                packet_id,
                return_codes,
            }));
        }
        Ok(Packet::SubAckV5(Box::new(Self {
            packet_id,
            reason_codes,
            properties,
        })))
    }

    /// Refuses an empty list of codes and bad property values.
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        if self.reason_codes.is_empty() {
            return Err(EncodeError::NoReasonCodes {
                packet: PacketType::SubAck,
            });
        }
        self.properties
            .check(PropertyScope::Packet(PacketType::SubAck))
    }

    /// Body length.
    pub(crate) fn remaining_len(&self) -> usize {
        2usize
            .saturating_add(self.properties.encoded_len())
            .saturating_add(self.reason_codes.len())
    }

    /// Appends the body.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        out.put_u16(self.packet_id.get());
        self.properties.write(out);
        for code in &self.reason_codes {
            out.put_u8(*code as u8);
        }
    }
}
