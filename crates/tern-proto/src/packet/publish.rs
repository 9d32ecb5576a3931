//! PUBLISH [MQTT-3.3].

use bytes::Bytes;

use super::{PacketId, QoS};
use crate::topic::TopicName;

/// PUBLISH: an application message, in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP: this is a re-delivery [MQTT-3.3.1-1]; never set at QoS 0 [MQTT-3.3.1-2].
    pub dup: bool,
    /// QoS, with the packet id that QoS 1 and 2 require and QoS 0 forbids.
    pub qos_pid: QosPid,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name (no wildcards) [MQTT-3.3.2-2].
    pub topic: TopicName,
    /// Payload: a slice of the receive buffer when decoded.
    pub payload: Bytes,
}

/// QoS and packet id together, so that a QoS 0 packet with an id, or a QoS 1/2 packet
/// without one, cannot be built [MQTT-2.3.1-1], [MQTT-2.3.1-5].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QosPid {
    /// QoS 0: no packet id.
    AtMostOnce,
    /// QoS 1 with its packet id.
    AtLeastOnce(PacketId),
    /// QoS 2 with its packet id.
    ExactlyOnce(PacketId),
}

impl QosPid {
    /// The QoS.
    pub const fn qos(self) -> QoS {
        match self {
            Self::AtMostOnce => QoS::AtMostOnce,
            Self::AtLeastOnce(_) => QoS::AtLeastOnce,
            Self::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet id, `None` at QoS 0.
    pub const fn packet_id(self) -> Option<PacketId> {
        match self {
            Self::AtMostOnce => None,
            Self::AtLeastOnce(id) | Self::ExactlyOnce(id) => Some(id),
        }
    }
}

impl Publish {
    /// The QoS.
    pub fn qos(&self) -> QoS {
        self.qos_pid.qos()
    }

    /// The packet id, `None` at QoS 0.
    pub fn packet_id(&self) -> Option<PacketId> {
        self.qos_pid.packet_id()
    }
}
