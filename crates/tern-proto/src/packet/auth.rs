//! AUTH [MQTT-3.15]: enhanced authentication, MQTT 5 only.

use bytes::{BufMut, Bytes, BytesMut};

use super::property::{self, AuthProperties, PropertyBlock, PropertyScope};
use super::read::Reader;
use super::reason::AuthReasonCode;
use super::{DecodeError, EncodeError, PacketType};

/// AUTH: one step of an enhanced authentication exchange, or a re-authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Success, Continue authentication or Re-authenticate [MQTT-3.15.2-1].
    pub reason: AuthReasonCode,
    /// Authentication Method and Data, Reason String, User Properties.
    pub properties: AuthProperties,
}

impl Auth {
    /// Decodes an AUTH body: nothing (Success without properties, §3.15.2.1), or a reason
    /// code and properties.
    pub(crate) fn decode(mut r: Reader<Bytes>) -> Result<Self, DecodeError> {
        if r.is_empty() {
            return Ok(Self {
                reason: AuthReasonCode::Success,
                properties: AuthProperties::default(),
            });
        }
        let code = r.u8("reason code")?;
        let reason = AuthReasonCode::from_u8(code).ok_or(DecodeError::InvalidReasonCode {
            packet: PacketType::Auth,
            code,
        })?;
        let properties = if r.is_empty() {
            AuthProperties::default()
        } else {
            property::read(&mut r, PropertyScope::Packet(PacketType::Auth))?
        };
        r.finish()?;
        Ok(Self { reason, properties })
    }

    /// Refuses bad property values.
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        self.properties
            .check(PropertyScope::Packet(PacketType::Auth))
    }

    /// Body length, in the shortest form.
    pub(crate) fn remaining_len(&self) -> usize {
        if self.properties.is_empty() {
            usize::from(self.reason != AuthReasonCode::Success)
        } else {
            1usize.saturating_add(self.properties.encoded_len())
        }
    }

    /// Appends the body, in the form [`Auth::remaining_len`] measured.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        if self.properties.is_empty() {
            if self.reason != AuthReasonCode::Success {
                out.put_u8(self.reason as u8);
            }
        } else {
            out.put_u8(self.reason as u8);
            self.properties.write(out);
        }
    }
}
