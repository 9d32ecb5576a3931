//! PUBLISH [MQTT-3.3].

use bytes::{BufMut, Bytes, BytesMut};

use super::property::{self, PropertyBlock, PropertyScope, PublishProperties};
use super::read::Reader;
use super::write::{prefixed_len, put_prefixed, put_remaining_length, remaining_length_len};
use super::{
    DecodeError, EncodeError, MAX_REMAINING_LENGTH, PacketId, PacketType, ProtocolLevel, QoS,
};
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
    /// Topic name (no wildcards) [MQTT-3.3.2-2]. Empty only in an MQTT 5 PUBLISH that
    /// carries a Topic Alias [MQTT-3.3.2-1] (the session resolves it).
    pub topic: TopicName,
    /// Payload: a slice of the receive buffer when decoded.
    pub payload: Bytes,
    /// MQTT 5 properties; `None` when there are none (always at the other levels), so a
    /// 3.1.1 PUBLISH allocates nothing for them.
    pub properties: Option<Box<PublishProperties>>,
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

pub(super) const FLAG_RETAIN: u8 = 0b0001;
pub(super) const FLAG_DUP: u8 = 0b1000;

impl Publish {
    /// Decodes a PUBLISH body; `flags` passed the fixed-header checks (QoS 0..=2, no DUP at
    /// QoS 0). The payload is the rest of the body, shared with the receive buffer.
    ///
    /// At level 5 the properties follow the packet id, and the topic may be empty when a
    /// Topic Alias stands for it [MQTT-3.3.2-1] (empty without one is
    /// [`DecodeError::EmptyTopicWithoutAlias`]).
    pub(crate) fn decode(
        flags: u8,
        mut r: Reader<Bytes>,
        level: ProtocolLevel,
    ) -> Result<Self, DecodeError> {
        let v5 = level.is_v5();
        let topic = if v5 {
            let bytes = r.prefixed("topic name")?;
            if bytes.is_empty() {
                TopicName::empty_for_alias()
            } else {
                TopicName::from_bytes(bytes).map_err(|source| DecodeError::InvalidTopic {
                    packet: PacketType::Publish,
                    field: "topic name",
                    source,
                })?
            }
        } else {
            r.topic_name("topic name")?
        };
        let qos_pid = match (flags >> 1) & 0b11 {
            0 => QosPid::AtMostOnce,
            1 => QosPid::AtLeastOnce(r.packet_id()?),
            2 => QosPid::ExactlyOnce(r.packet_id()?),
            _ => return Err(DecodeError::InvalidQoS),
        };
        let properties = if v5 {
            let p: PublishProperties =
                property::read(&mut r, PropertyScope::Packet(PacketType::Publish))?;
            if topic.as_str().is_empty() && p.topic_alias.is_none() {
                return Err(DecodeError::EmptyTopicWithoutAlias);
            }
            (!p.is_empty()).then(|| Box::new(p))
        } else {
            None
        };
        Ok(Self {
            dup: flags & FLAG_DUP != 0,
            qos_pid,
            retain: flags & FLAG_RETAIN != 0,
            topic,
            payload: r.rest(),
            properties,
        })
    }

    /// Refuses DUP at QoS 0 [MQTT-3.3.1-2], properties below level 5, an empty topic
    /// without a Topic Alias [MQTT-3.3.2-1], and bad property values.
    pub(crate) fn check(&self, v5: bool) -> Result<(), EncodeError> {
        if self.dup && self.qos_pid == QosPid::AtMostOnce {
            return Err(EncodeError::DupAtQoS0);
        }
        if let Some(p) = &self.properties {
            if !v5 {
                return Err(EncodeError::NotInLevel {
                    packet: PacketType::Publish,
                    level: ProtocolLevel::V3_1_1,
                    what: "properties",
                });
            }
            p.check(PropertyScope::Packet(PacketType::Publish))?;
        }
        if self.topic.as_str().is_empty()
            && self
                .properties
                .as_ref()
                .is_none_or(|p| p.topic_alias.is_none())
        {
            return Err(EncodeError::EmptyTopicWithoutAlias);
        }
        Ok(())
    }

    /// The fixed-header flags: DUP, QoS, RETAIN.
    pub(crate) fn flags(&self) -> u8 {
        let mut flags = (self.qos() as u8) << 1;
        if self.dup {
            flags |= FLAG_DUP;
        }
        if self.retain {
            flags |= FLAG_RETAIN;
        }
        flags
    }

    /// Appends the whole packet, fixed header included (what [`super::Packet::encode`] does
    /// for a PUBLISH without properties, in one pass), in the level-5 form when `v5`: refuses what
    /// [`Publish::check`] refuses and a remaining length above 268,435,455, leaving `out`
    /// untouched.
    #[inline]
    pub(crate) fn encode(&self, v5: bool, out: &mut BytesMut) -> Result<(), EncodeError> {
        if v5 {
            return self.encode_v5(out);
        }
        self.check(false)?;
        let topic = self.topic.as_str().as_bytes();
        let id = self.packet_id();
        let remaining = self.remaining_len(false);
        if remaining > MAX_REMAINING_LENGTH {
            return Err(EncodeError::TooLarge { len: remaining });
        }
        // Total size: first byte, remaining length, body.
        out.reserve(1 + remaining_length_len(remaining) + remaining);
        // The fixed-size parts as single-byte and u16 stores, the variable ones as copies.
        out.put_u8((PacketType::Publish as u8) << 4 | self.flags());
        put_remaining_length(out, remaining);
        // The topic is a valid MQTT string: at most 65,535 bytes.
        out.put_u16(topic.len() as u16);
        out.put_slice(topic);
        if let Some(id) = id {
            out.put_u16(id.get());
        }
        out.put_slice(&self.payload);
        Ok(())
    }

    /// The level-5 path of [`Publish::encode`].
    #[inline(never)]
    fn encode_v5(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.check(true)?;
        let remaining = self.remaining_len(true);
        if remaining > MAX_REMAINING_LENGTH {
            return Err(EncodeError::TooLarge { len: remaining });
        }
        out.reserve(1 + remaining_length_len(remaining) + remaining);
        out.put_u8((PacketType::Publish as u8) << 4 | self.flags());
        put_remaining_length(out, remaining);
        self.write(true, out);
        Ok(())
    }

    /// Body length; `v5` adds the properties.
    pub(crate) fn remaining_len(&self, v5: bool) -> usize {
        let id = if self.packet_id().is_some() { 2 } else { 0 };
        let len = prefixed_len(self.topic.as_str().len()) + id + self.payload.len();
        if v5 {
            let props = self.properties.as_ref().map_or(1, |p| p.encoded_len());
            len.saturating_add(props)
        } else {
            len
        }
    }

    /// Appends the body; `v5` adds the properties.
    pub(crate) fn write(&self, v5: bool, out: &mut BytesMut) {
        put_prefixed(out, self.topic.as_str().as_bytes());
        if let Some(id) = self.packet_id() {
            out.put_u16(id.get());
        }
        if v5 {
            match &self.properties {
                Some(p) => p.write(out),
                None => out.put_u8(0),
            }
        }
        out.put_slice(&self.payload);
    }
}
