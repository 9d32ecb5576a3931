//! UNSUBSCRIBE [MQTT-3.10].

use bytes::{BufMut, Bytes, BytesMut};

use super::read::Reader;
use super::write::{prefixed_len, put_prefixed};
use super::{DecodeError, EncodeError, PacketId, PacketType};
use crate::topic::TopicFilter;

/// UNSUBSCRIBE: one or more filters to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet id [MQTT-2.3.1-1].
    pub packet_id: PacketId,
    /// At least one filter [MQTT-3.10.3-2].
    pub filters: Vec<TopicFilter>,
}

impl Unsubscribe {
    /// Decodes an UNSUBSCRIBE body: packet id, then at least one filter [MQTT-3.10.3-2].
    pub(crate) fn decode(mut r: Reader<Bytes>) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let mut filters = Vec::new();
        while !r.is_empty() {
            filters.push(r.topic_filter("topic filter")?);
        }
        if filters.is_empty() {
            return Err(DecodeError::NoFilters {
                packet: PacketType::Unsubscribe,
            });
        }
        Ok(Self { packet_id, filters })
    }

    /// Refuses an empty filter list [MQTT-3.10.3-2].
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoFilters {
                packet: PacketType::Unsubscribe,
            });
        }
        Ok(())
    }

    /// Body length.
    pub(crate) fn remaining_len(&self) -> usize {
        self.filters.iter().fold(2, |len, filter| {
            len.saturating_add(prefixed_len(filter.as_str().len()))
        })
    }

    /// Appends the body.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        out.put_u16(self.packet_id.get());
        for filter in &self.filters {
            put_prefixed(out, filter.as_str().as_bytes());
        }
    }
}
