//! The packets that carry a packet identifier and, in MQTT 5, a reason code and properties:
//! PUBACK, PUBREC, PUBREL, PUBCOMP [MQTT-3.4] to [MQTT-3.7], and UNSUBACK's 3.1.1 form
//! [MQTT-3.11].

use bytes::{BufMut, Bytes, BytesMut};

use super::property::{self, PropertyBlock, PropertyScope, ReasonProperties};
use super::read::Reader;
use super::reason::Code;
use super::{DecodeError, EncodeError, PacketId, PacketType};

/// An MQTT 5 PUBACK, PUBREC, PUBREL or PUBCOMP: packet id, reason code and properties
/// (§3.4.2 to §3.7.2). `R` is the packet's reason-code table.
///
/// One with reason Success and no properties is the same packet as the shared form
/// ([`super::Packet::PubAck`] etc.); the decoder returns that form for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack<R> {
    /// The id of the PUBLISH (or PUBREL) acknowledged [MQTT-2.2.1-5].
    pub packet_id: PacketId,
    /// The outcome.
    pub reason: R,
    /// Reason String and User Properties.
    pub properties: ReasonProperties,
}

impl<R: Code> Ack<R> {
    /// An acknowledgement of `packet_id` with `reason` and no properties.
    pub fn new(packet_id: PacketId, reason: R) -> Self {
        Self {
            packet_id,
            reason,
            properties: ReasonProperties::default(),
        }
    }

    /// Whether this says no more than the packet id (reason Success, no properties).
    pub(crate) fn is_plain(&self) -> bool {
        self.reason == R::SUCCESS && self.properties.is_empty()
    }

    /// Decodes an MQTT 5 body: the id, then an optional reason code, then optional
    /// properties (Remaining Length 2 means Success without properties, 3 means no
    /// properties, §3.4.2.1).
    pub(crate) fn decode(mut r: Reader<Bytes>) -> Result<Self, DecodeError> {
        let packet = r.packet();
        let packet_id = r.packet_id()?;
        if r.is_empty() {
            return Ok(Self::new(packet_id, R::SUCCESS));
        }
        let code = r.u8("reason code")?;
        let reason = R::from_byte(code).ok_or(DecodeError::InvalidReasonCode { packet, code })?;
        let properties = if r.is_empty() {
            ReasonProperties::default()
        } else {
            property::read(&mut r, PropertyScope::Packet(packet))?
        };
        r.finish()?;
        Ok(Self {
            packet_id,
            reason,
            properties,
        })
    }

    /// Body length, in the shortest form that says everything.
    pub(crate) fn remaining_len(&self) -> usize {
        if self.properties.is_empty() {
            if self.reason == R::SUCCESS { 2 } else { 3 }
        } else {
            3usize.saturating_add(self.properties.encoded_len())
        }
    }

    /// Appends the body, in the form [`Ack::remaining_len`] measured.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        out.put_u16(self.packet_id.get());
        if self.properties.is_empty() {
            if self.reason != R::SUCCESS {
                out.put_u8(self.reason.byte());
            }
        } else {
            out.put_u8(self.reason.byte());
            self.properties.write(out);
        }
    }

    /// Refuses property values a sender must not write.
    pub(crate) fn check(&self, packet: PacketType) -> Result<(), EncodeError> {
        self.properties.check(PropertyScope::Packet(packet))
    }
}

/// Decodes a two-byte body holding a non-zero packet id [MQTT-2.3.1-1]. The fixed header
/// already refused longer bodies.
pub(crate) fn decode(mut r: Reader<&[u8]>) -> Result<PacketId, DecodeError> {
    let id = r.packet_id()?;
    r.finish()?;
    Ok(id)
}

/// Appends the two-byte body.
pub(crate) fn write(id: PacketId, out: &mut BytesMut) {
    out.put_u16(id.get());
}

/// Appends a whole packet of type `packet` (one of the above) carrying `id`: fixed header
/// (Table 2.2 flags, remaining length 2) and body in one piece.
#[inline]
pub(crate) fn encode(
    packet: PacketType,
    id: PacketId,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let flags = packet.required_flags().unwrap_or(0);
    let [hi, lo] = id.get().to_be_bytes();
    out.put_slice(&[(packet as u8) << 4 | flags, 2, hi, lo]);
    Ok(())
}
