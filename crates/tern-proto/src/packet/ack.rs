//! The packets that carry only a packet identifier: PUBACK, PUBREC, PUBREL, PUBCOMP
//! [MQTT-3.4] to [MQTT-3.7] and UNSUBACK [MQTT-3.11].

use bytes::{BufMut, BytesMut};

use super::read::Reader;
use super::{DecodeError, PacketId};

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
