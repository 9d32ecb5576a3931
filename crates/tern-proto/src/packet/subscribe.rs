//! SUBSCRIBE [MQTT-3.8].

use bytes::{BufMut, Bytes, BytesMut};

use super::property::{self, PropertyBlock, PropertyScope, SubscribeProperties};
use super::read::Reader;
use super::write::{prefixed_len, put_prefixed};
use super::{DecodeError, EncodeError, Packet, PacketId, PacketType, QoS};
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

    /// Body length; `v5` adds an empty property block.
    pub(crate) fn remaining_len(&self, v5: bool) -> usize {
        let start = if v5 { 3 } else { 2 };
        self.filters.iter().fold(start, |len, (filter, _)| {
            len.saturating_add(prefixed_len(filter.as_str().len()) + 1)
        })
    }

    /// Appends the body; `v5` adds an empty property block (the QoS byte is a valid MQTT 5
    /// options byte).
    pub(crate) fn write(&self, v5: bool, out: &mut BytesMut) {
        out.put_u16(self.packet_id.get());
        if v5 {
            out.put_u8(0);
        }
        for (filter, qos) in &self.filters {
            put_prefixed(out, filter.as_str().as_bytes());
            out.put_u8(*qos as u8);
        }
    }
}

/// What a client asks for a filter in an MQTT 5 SUBSCRIBE (§3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS of deliveries.
    pub qos: QoS,
    /// Do not send the client's own publications back [MQTT-3.8.3-3]; never on a shared
    /// subscription [MQTT-3.8.3-4].
    pub no_local: bool,
    /// Keep the publisher's RETAIN flag on deliveries [MQTT-3.3.1-12], [MQTT-3.3.1-13].
    pub retain_as_published: bool,
    /// When retained messages are sent.
    pub retain_handling: RetainHandling,
}

/// When the server sends retained messages for a new subscription (§3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum RetainHandling {
    /// 0: at subscribe time.
    #[default]
    SendAtSubscribe = 0,
    /// 1: at subscribe time, only if the subscription did not exist.
    SendIfNew = 1,
    /// 2: never.
    DoNotSend = 2,
}

const OPT_NO_LOCAL: u8 = 0b0000_0100;
const OPT_RETAIN_AS_PUBLISHED: u8 = 0b0000_1000;
const OPT_RETAIN_HANDLING_SHIFT: u8 = 4;
const OPT_RESERVED: u8 = 0b1100_0000;

impl SubscriptionOptions {
    /// Options that only set the maximum QoS.
    pub const fn qos(qos: QoS) -> Self {
        Self {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }

    /// Whether the options say no more than a QoS (what 3.1.1 can say).
    pub fn is_plain(&self) -> bool {
        *self == Self::qos(self.qos)
    }

    /// The options byte.
    pub const fn to_u8(self) -> u8 {
        let mut byte = self.qos as u8 | (self.retain_handling as u8) << OPT_RETAIN_HANDLING_SHIFT;
        if self.no_local {
            byte |= OPT_NO_LOCAL;
        }
        if self.retain_as_published {
            byte |= OPT_RETAIN_AS_PUBLISHED;
        }
        byte
    }

    /// Parses an options byte: reserved bits 6-7 are Malformed [MQTT-3.8.3-5], QoS 3 and
    /// Retain Handling 3 are Protocol Errors (§3.8.3.1).
    pub fn from_u8(byte: u8) -> Result<Self, DecodeError> {
        let bad = |reason| Err(DecodeError::InvalidSubscriptionOptions { byte, reason });
        if byte & OPT_RESERVED != 0 {
            return bad("reserved bits 6-7 set [MQTT-3.8.3-5]");
        }
        let Some(qos) = QoS::from_u8(byte & 0b11) else {
            return bad("maximum QoS 3 (§3.8.3.1)");
        };
        let retain_handling = match (byte >> OPT_RETAIN_HANDLING_SHIFT) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return bad("Retain Handling 3 (§3.8.3.1)"),
        };
        Ok(Self {
            qos,
            no_local: byte & OPT_NO_LOCAL != 0,
            retain_as_published: byte & OPT_RETAIN_AS_PUBLISHED != 0,
            retain_handling,
        })
    }
}

impl From<QoS> for SubscriptionOptions {
    fn from(qos: QoS) -> Self {
        Self::qos(qos)
    }
}

/// An MQTT 5 SUBSCRIBE: filters with their subscription options, and properties (§3.8).
///
/// One whose options are all plain QoS and that has no properties is [`Packet::Subscribe`];
/// the decoder returns that form for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeV5 {
    /// Packet id [MQTT-2.2.1-3].
    pub packet_id: PacketId,
    /// At least one (filter, options) pair [MQTT-3.8.3-2].
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
    /// Subscription Identifier and User Properties.
    pub properties: SubscribeProperties,
}

/// Whether `filter` is a shared subscription (`$share/ShareName/filter`, §4.8.2).
fn is_shared(filter: &TopicFilter) -> bool {
    filter.as_str().starts_with("$share/")
}

impl SubscribeV5 {
    /// Decodes an MQTT 5 SUBSCRIBE body: packet id, properties, then at least one filter
    /// with its options byte; No Local on a shared subscription is refused [MQTT-3.8.3-4].
    pub(crate) fn decode(mut r: Reader<Bytes>) -> Result<Packet, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties: SubscribeProperties =
            property::read(&mut r, PropertyScope::Packet(PacketType::Subscribe))?;
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = r.topic_filter("topic filter")?;
            let options = SubscriptionOptions::from_u8(r.u8("subscription options")?)?;
            if options.no_local && is_shared(&filter) {
                return Err(DecodeError::NoLocalOnSharedSubscription {
                    filter: filter.as_str().to_owned(),
                });
            }
            filters.push((filter, options));
        }
        if filters.is_empty() {
            return Err(DecodeError::NoFilters {
                packet: PacketType::Subscribe,
            });
        }
        if properties.is_empty() && filters.iter().all(|(_, o)| o.is_plain()) {
            return Ok(Packet::Subscribe(Subscribe {
                packet_id,
                filters: filters.into_iter().map(|(f, o)| (f, o.qos)).collect(),
            }));
        }
        Ok(Packet::SubscribeV5(Self {
            packet_id,
            filters,
            properties,
        }))
    }

    /// Refuses an empty filter list [MQTT-3.8.3-2], No Local on a shared subscription
    /// [MQTT-3.8.3-4], and bad property values.
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoFilters {
                packet: PacketType::Subscribe,
            });
        }
        if let Some((filter, _)) = self
            .filters
            .iter()
            .find(|(f, o)| o.no_local && is_shared(f))
        {
            return Err(EncodeError::NoLocalOnSharedSubscription {
                filter: filter.as_str().to_owned(),
            });
        }
        self.properties
            .check(PropertyScope::Packet(PacketType::Subscribe))
    }

    /// Body length.
    pub(crate) fn remaining_len(&self) -> usize {
        self.filters.iter().fold(
            2usize.saturating_add(self.properties.encoded_len()),
            |len, (filter, _)| len.saturating_add(prefixed_len(filter.as_str().len()) + 1),
        )
    }

    /// Appends the body.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        out.put_u16(self.packet_id.get());
        self.properties.write(out);
        for (filter, options) in &self.filters {
            put_prefixed(out, filter.as_str().as_bytes());
            out.put_u8(options.to_u8());
        }
    }
}
