//! DISCONNECT at MQTT 5 [MQTT-3.14]: a reason code and properties, in either direction.
//! (Without them it is [`super::Packet::Disconnect`], a Normal disconnection.)

use bytes::{BufMut, Bytes, BytesMut};

use super::property::{self, DisconnectProperties, PropertyBlock, PropertyScope};
use super::read::Reader;
use super::reason::DisconnectReasonCode;
use super::{DecodeError, EncodeError, Packet, PacketType};

/// An MQTT 5 DISCONNECT with a reason other than Normal disconnection, or properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisconnectV5 {
    /// Why the connection ends.
    pub reason: DisconnectReasonCode,
    /// Session Expiry Interval (client only), Reason String, User Properties, Server
    /// Reference.
    pub properties: DisconnectProperties,
}

impl DisconnectV5 {
    /// A DISCONNECT with `reason` and no properties.
    pub fn new(reason: DisconnectReasonCode) -> Self {
        Self {
            reason,
            properties: DisconnectProperties::default(),
        }
    }

    /// Decodes an MQTT 5 DISCONNECT body: nothing (Normal disconnection), a reason code, or
    /// a reason code and properties (§3.14.2.1).
    pub(crate) fn decode(mut r: Reader<Bytes>) -> Result<Packet, DecodeError> {
        if r.is_empty() {
            return Ok(Packet::Disconnect);
        }
        let code = r.u8("reason code")?;
        let reason = DisconnectReasonCode::from_u8(code).ok_or(DecodeError::InvalidReasonCode {
            packet: PacketType::Disconnect,
            code,
        })?;
        let properties = if r.is_empty() {
            DisconnectProperties::default()
        } else {
            property::read(&mut r, PropertyScope::Packet(PacketType::Disconnect))?
        };
        r.finish()?;
        Ok(
            if reason == DisconnectReasonCode::NormalDisconnection && properties.is_empty() {
                Packet::Disconnect
            } else {
                Packet::DisconnectV5(Box::new(Self { reason, properties }))
            },
        )
    }

    /// Refuses bad property values.
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        self.properties
            .check(PropertyScope::Packet(PacketType::Disconnect))
    }

    /// Body length, in the shortest form.
    pub(crate) fn remaining_len(&self) -> usize {
        if self.properties.is_empty() {
            usize::from(self.reason != DisconnectReasonCode::NormalDisconnection)
        } else {
            1usize.saturating_add(self.properties.encoded_len())
        }
    }

    /// Appends the body, in the form [`DisconnectV5::remaining_len`] measured.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        if self.properties.is_empty() {
            if self.reason != DisconnectReasonCode::NormalDisconnection {
                out.put_u8(self.reason as u8);
            }
        } else {
            out.put_u8(self.reason as u8);
            self.properties.write(out);
        }
    }
}
