//! PUBLISH [MQTT-3.3].

use bytes::{BufMut, Bytes, BytesMut};

use super::property::{self, PropertyBlock, PropertyScope, PublishProperties};
use super::read::Reader;
use super::write::{prefixed_len, put_prefixed, put_remaining_length, remaining_length_len};
use super::{DecodeError, EncodeError, MAX_REMAINING_LENGTH, Packet, PacketId, PacketType, QoS};
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
    /// Topic name (no wildcards) [MQTT-3.3.2-2]. Empty only inside a [`PublishV5`] that
    /// carries a Topic Alias [MQTT-3.3.2-1] (the session resolves it).
    pub topic: TopicName,
    /// Payload: a slice of the receive buffer when decoded.
    pub payload: Bytes,
}

/// An MQTT 5 PUBLISH with properties (§3.3.2.3). Without properties an MQTT 5 PUBLISH is
/// [`super::Packet::Publish`] (the decoder returns that form for it), so a PUBLISH of any
/// level without properties costs nothing more than a 3.1.1 one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishV5 {
    /// Flags, topic, packet id and payload.
    pub publish: Publish,
    /// The properties.
    pub properties: PublishProperties,
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
    /// Decodes a 3.1 / 3.1.1 PUBLISH body; `flags` passed the fixed-header checks (QoS 0..=2,
    /// no DUP at QoS 0). The payload is the rest of the body, shared with the receive buffer.
    pub(crate) fn decode(flags: u8, mut r: Reader<Bytes>) -> Result<Self, DecodeError> {
        let topic = r.topic_name("topic name")?;
        let qos_pid = read_qos_pid(flags, &mut r)?;
        Ok(Self {
            dup: flags & FLAG_DUP != 0,
            qos_pid,
            retain: flags & FLAG_RETAIN != 0,
            topic,
            payload: r.rest(),
        })
    }

    /// Refuses DUP at QoS 0 [MQTT-3.3.1-2], and an empty topic (which only a [`PublishV5`]
    /// with a Topic Alias may have) [MQTT-3.3.2-1].
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        if self.dup && self.qos_pid == QosPid::AtMostOnce {
            return Err(EncodeError::DupAtQoS0);
        }
        if self.topic.as_str().is_empty() {
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
    /// for a PUBLISH, in one pass), with the empty property block of level 5 when `v5`:
    /// refuses what [`Publish::check`] refuses and a remaining length above 268,435,455,
    /// leaving `out` untouched.
    #[inline]
    pub(crate) fn encode(&self, v5: bool, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.check()?;
        let topic = self.topic.as_str().as_bytes();
        let id = self.packet_id();
        let remaining = self.remaining_len(v5);
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
        if v5 {
            out.put_u8(0);
        }
        out.put_slice(&self.payload);
        Ok(())
    }

    /// Body length; `v5` adds the empty property block.
    pub(crate) fn remaining_len(&self, v5: bool) -> usize {
        self.len_with(usize::from(v5))
    }

    /// Body length with `props` bytes of property block.
    fn len_with(&self, props: usize) -> usize {
        let id = if self.packet_id().is_some() { 2 } else { 0 };
        // Each part is bounded (a 65,535-byte topic, a payload in memory): no overflow.
        prefixed_len(self.topic.as_str().len()) + id + self.payload.len() + props
    }

    /// Appends the body; `v5` adds the empty property block.
    pub(crate) fn write(&self, v5: bool, out: &mut BytesMut) {
        self.write_with(out, |out| {
            if v5 {
                out.put_u8(0);
            }
        });
    }

    /// Appends the body, calling `props` between packet id and payload.
    fn write_with(&self, out: &mut BytesMut, props: impl FnOnce(&mut BytesMut)) {
        put_prefixed(out, self.topic.as_str().as_bytes());
        if let Some(id) = self.packet_id() {
            out.put_u16(id.get());
        }
        props(out);
        out.put_slice(&self.payload);
    }
}

/// The QoS bits of `flags` with the packet id QoS 1 and 2 carry.
fn read_qos_pid<B: bytes::Buf>(flags: u8, r: &mut Reader<B>) -> Result<QosPid, DecodeError> {
    Ok(match (flags >> 1) & 0b11 {
        0 => QosPid::AtMostOnce,
        1 => QosPid::AtLeastOnce(r.packet_id()?),
        2 => QosPid::ExactlyOnce(r.packet_id()?),
        _ => return Err(DecodeError::InvalidQoS),
    })
}

impl PublishV5 {
    /// Decodes an MQTT 5 PUBLISH body: topic (empty only with a Topic Alias
    /// [MQTT-3.3.2-1], else [`DecodeError::EmptyTopicWithoutAlias`]), packet id, properties,
    /// payload. Without properties it is a [`Packet::Publish`].
    pub(crate) fn decode(flags: u8, mut r: Reader<Bytes>) -> Result<Packet, DecodeError> {
        let bytes = r.prefixed("topic name")?;
        let topic = if bytes.is_empty() {
            TopicName::empty_for_alias()
        } else {
            TopicName::from_bytes(bytes).map_err(|source| DecodeError::InvalidTopic {
                packet: PacketType::Publish,
                field: "topic name",
                source,
            })?
        };
        let qos_pid = read_qos_pid(flags, &mut r)?;
        let properties: PublishProperties =
            property::read(&mut r, PropertyScope::Packet(PacketType::Publish))?;
        if topic.as_str().is_empty() && properties.topic_alias.is_none() {
            return Err(DecodeError::EmptyTopicWithoutAlias);
        }
        let publish = Publish {
            dup: flags & FLAG_DUP != 0,
            qos_pid,
            retain: flags & FLAG_RETAIN != 0,
            topic,
            payload: r.rest(),
        };
        Ok(if properties.is_empty() {
            Packet::Publish(publish)
        } else {
            Packet::PublishV5(Box::new(Self {
                publish,
                properties,
            }))
        })
    }

    /// Refuses DUP at QoS 0 [MQTT-3.3.1-2], an empty topic without a Topic Alias
    /// [MQTT-3.3.2-1], and bad property values.
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        let p = &self.publish;
        if p.dup && p.qos_pid == QosPid::AtMostOnce {
            return Err(EncodeError::DupAtQoS0);
        }
        if p.topic.as_str().is_empty() && self.properties.topic_alias.is_none() {
            return Err(EncodeError::EmptyTopicWithoutAlias);
        }
        self.properties
            .check(PropertyScope::Packet(PacketType::Publish))
    }

    /// Body length.
    pub(crate) fn remaining_len(&self) -> usize {
        self.publish.len_with(self.properties.encoded_len())
    }

    /// Appends the body.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        self.publish
            .write_with(out, |out| self.properties.write(out));
    }
}
