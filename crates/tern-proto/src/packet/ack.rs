//! The packets that carry only a packet identifier: PUBACK, PUBREC, PUBREL, PUBCOMP
//! [MQTT-3.4] to [MQTT-3.7] and UNSUBACK [MQTT-3.11].

use bytes::{BufMut, BytesMut};

use super::read::Reader;
use super::{DecodeError, EncodeError, PacketId, PacketType};

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
