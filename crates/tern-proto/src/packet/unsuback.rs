//! UNSUBACK at MQTT 5 [MQTT-3.11]: a reason code per filter, and properties. (The 3.1.1
//! form, a bare packet id, is [`super::Packet::UnsubAck`].)

use bytes::{BufMut, Bytes, BytesMut};

use super::property::{self, PropertyBlock, PropertyScope, ReasonProperties};
use super::read::Reader;
use super::reason::UnsubAckReasonCode;
use super::{DecodeError, EncodeError, PacketId, PacketType};

/// An MQTT 5 UNSUBACK (§3.11). Always this variant at level 5: the shared form has no codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAckV5 {
    /// The UNSUBSCRIBE's packet id.
    pub packet_id: PacketId,
    /// One code per filter, in order [MQTT-3.11.3-1].
    pub reason_codes: Vec<UnsubAckReasonCode>,
    /// Reason String and User Properties.
    pub properties: ReasonProperties,
}

impl UnsubAckV5 {
    /// Decodes an MQTT 5 UNSUBACK body: packet id, properties, at least one reason code.
    pub(crate) fn decode(mut r: Reader<Bytes>) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = property::read(&mut r, PropertyScope::Packet(PacketType::UnsubAck))?;
        let body = r.rest();
        if body.is_empty() {
            return Err(DecodeError::NoReasonCodes {
                packet: PacketType::UnsubAck,
            });
        }
        let reason_codes = body
            .iter()
            .map(|&code| {
                UnsubAckReasonCode::from_u8(code).ok_or(DecodeError::InvalidReasonCode {
                    packet: PacketType::UnsubAck,
                    code,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            packet_id,
            reason_codes,
            properties,
        })
    }

    /// Refuses an empty list of codes and bad property values.
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        if self.reason_codes.is_empty() {
            return Err(EncodeError::NoReasonCodes {
                packet: PacketType::UnsubAck,
            });
        }
        self.properties
            .check(PropertyScope::Packet(PacketType::UnsubAck))
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
