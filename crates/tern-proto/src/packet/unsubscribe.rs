//! UNSUBSCRIBE [MQTT-3.10].

use bytes::{BufMut, Bytes, BytesMut};

use super::property::{self, PropertyBlock, PropertyScope, UnsubscribeProperties};
use super::read::Reader;
use super::write::{prefixed_len, put_prefixed};
use super::{DecodeError, EncodeError, Packet, PacketId, PacketType};
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
    pub(crate) fn decode(r: Reader<Bytes>) -> Result<Self, DecodeError> {
        let mut r = r;
        let packet_id = r.packet_id()?;
        Self::decode_filters(packet_id, r)
    }

    fn decode_filters(packet_id: PacketId, mut r: Reader<Bytes>) -> Result<Self, DecodeError> {
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

    /// Body length; `v5` adds an empty property block.
    pub(crate) fn remaining_len(&self, v5: bool) -> usize {
        let start = if v5 { 3 } else { 2 };
        self.filters.iter().fold(start, |len, filter| {
            len.saturating_add(prefixed_len(filter.as_str().len()))
        })
    }

    /// Appends the body; `v5` adds an empty property block.
    pub(crate) fn write(&self, v5: bool, out: &mut BytesMut) {
        out.put_u16(self.packet_id.get());
        if v5 {
            out.put_u8(0);
        }
        for filter in &self.filters {
            put_prefixed(out, filter.as_str().as_bytes());
        }
    }
}

/// An MQTT 5 UNSUBSCRIBE with properties (§3.10). Without properties it is
/// [`Packet::Unsubscribe`]; the decoder returns that form for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeV5 {
    /// Packet id [MQTT-2.2.1-3].
    pub packet_id: PacketId,
    /// At least one filter [MQTT-3.10.3-2].
    pub filters: Vec<TopicFilter>,
    /// User Properties.
    pub properties: UnsubscribeProperties,
}

impl UnsubscribeV5 {
    /// Decodes an MQTT 5 UNSUBSCRIBE body: packet id, properties, at least one filter.
    pub(crate) fn decode(mut r: Reader<Bytes>) -> Result<Packet, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties: UnsubscribeProperties =
            property::read(&mut r, PropertyScope::Packet(PacketType::Unsubscribe))?;
        let plain = Unsubscribe::decode_filters(packet_id, r)?;
        Ok(if properties.is_empty() {
            Packet::Unsubscribe(plain)
        } else {
            Packet::UnsubscribeV5(Self {
                packet_id,
                filters: plain.filters,
                properties,
            })
        })
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
        self.filters.iter().fold(
            2usize.saturating_add(self.properties.encoded_len()),
            |len, filter| len.saturating_add(prefixed_len(filter.as_str().len())),
        )
    }

    /// Appends the body.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        out.put_u16(self.packet_id.get());
        self.properties.write(out);
        for filter in &self.filters {
            put_prefixed(out, filter.as_str().as_bytes());
        }
    }
}
