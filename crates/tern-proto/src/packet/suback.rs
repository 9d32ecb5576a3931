//! SUBACK [MQTT-3.9].

use bytes::{BufMut, BytesMut};

use super::read::Reader;
use super::{DecodeError, EncodeError, PacketId, ProtocolLevel, QoS};

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
            (0x80, ProtocolLevel::V3_1_1) => Some(Self::Failure),
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

    /// Body length.
    pub(crate) fn remaining_len(&self) -> usize {
        2usize.saturating_add(self.return_codes.len())
    }

    /// Appends the body.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        out.put_u16(self.packet_id.get());
        for code in &self.return_codes {
            out.put_u8(code.to_u8());
        }
    }
}
