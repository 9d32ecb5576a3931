//! UNSUBSCRIBE [MQTT-3.10].

use super::PacketId;
use crate::topic::TopicFilter;

/// UNSUBSCRIBE: one or more filters to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet id [MQTT-2.3.1-1].
    pub packet_id: PacketId,
    /// At least one filter [MQTT-3.10.3-2].
    pub filters: Vec<TopicFilter>,
}
