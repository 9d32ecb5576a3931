//! SUBSCRIBE [MQTT-3.8].

use super::{PacketId, QoS};
use crate::topic::TopicFilter;

/// SUBSCRIBE: one or more filters, each with the maximum QoS requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet id [MQTT-2.3.1-1].
    pub packet_id: PacketId,
    /// At least one (filter, requested QoS) pair [MQTT-3.8.3-3].
    pub filters: Vec<(TopicFilter, QoS)>,
}
