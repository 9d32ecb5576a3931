//! SUBSCRIBE [MQTT-3.8].

use bytes::{BufMut, Bytes, BytesMut};

use super::read::Reader;
use super::write::{prefixed_len, put_prefixed};
use super::{DecodeError, EncodeError, PacketId, PacketType, QoS};
use crate::topic::TopicFilter;

/// SUBSCRIBE: one or more filters, each with the maximum QoS requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet id [MQTT-2.3.1-1].
    pub packet_id: PacketId,
    /// At least one (filter, requested QoS) pair [MQTT-3.8.3-3].
    pub filters: Vec<(TopicFilter, QoS)>,
}

impl Subscribe {
    /// Decodes a SUBSCRIBE body: packet id, then at least one filter with its requested QoS
    /// byte, whose reserved bits must be 0 and QoS at most 2 [MQTT-3.8.3-3], [MQTT-3.8.3-4].
    pub(crate) fn decode(mut r: Reader<Bytes>) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = r.topic_filter("topic filter")?;
            let byte = r.u8("requested QoS")?;
            let qos = QoS::from_u8(byte).ok_or(DecodeError::InvalidRequestedQoS { byte })?;
            filters.push((filter, qos));
        }
        if filters.is_empty() {
            return Err(DecodeError::NoFilters {
                packet: PacketType::Subscribe,
            });
        }
        Ok(Self { packet_id, filters })
    }

    /// Refuses an empty filter list [MQTT-3.8.3-3].
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoFilters {
                packet: PacketType::Subscribe,
            });
        }
        Ok(())
    }

    /// Body length.
    pub(crate) fn remaining_len(&self) -> usize {
        self.filters.iter().fold(2, |len, (filter, _)| {
            len.saturating_add(prefixed_len(filter.as_str().len()) + 1)
        })
    }

    /// Appends the body.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        out.put_u16(self.packet_id.get());
        for (filter, qos) in &self.filters {
            put_prefixed(out, filter.as_str().as_bytes());
            out.put_u8(*qos as u8);
        }
    }
}
