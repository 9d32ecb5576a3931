//! SUBACK [MQTT-3.9].

use super::{PacketId, QoS};

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
