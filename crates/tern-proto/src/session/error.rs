//! Session errors, by whose fault: [`ProtocolError`] (the broker), [`ApiMisuse`] (the
//! caller), [`RequestError`] (a command that can no longer complete).

use crate::packet::{DecodeError, EncodeError, PacketId, PacketType};

/// The broker broke the protocol. The session has already emitted
/// [`Event::Disconnected`](super::Event::Disconnected); the driver must close the transport.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The bytes were not a valid packet.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A packet a client never receives (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ,
    /// DISCONNECT).
    #[error("unexpected {0} from the broker")]
    UnexpectedPacket(PacketType),
    /// A second CONNACK on one connection.
    #[error("second CONNACK on one connection")]
    DuplicateConnAck,
    /// An acknowledgement for a packet id that has nothing in flight of that kind.
    #[error("{packet} for packet id {id} which has nothing in flight of that kind")]
    UnknownPacketId {
        /// The acknowledgement type.
        packet: PacketType,
        /// Its id.
        id: PacketId,
    },
    /// A SUBACK whose number of codes differs from the SUBSCRIBE's filters.
    #[error(
        "SUBACK for packet id {id} has {got} return codes, the SUBSCRIBE had {expected} filters [MQTT-3.8.4-5]"
    )]
    SubAckCountMismatch {
        /// Packet id.
        id: PacketId,
        /// Codes received.
        got: usize,
        /// Filters sent.
        expected: usize,
    },
    /// Input arrived before `connect` or after the session closed.
    #[error("input while no connection is open")]
    NotConnected,
}

/// The caller used the API wrongly; nothing was changed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiMisuse {
    /// The command queue is full ([`SessionConfig::max_queued`](super::SessionConfig)).
    #[error("command queue full ({max} commands waiting)")]
    QueueFull {
        /// The configured limit.
        max: usize,
    },
    /// The waiting publishes hold
    /// [`SessionConfig::max_queued_bytes`](super::SessionConfig) bytes already.
    #[error("command queue full ({max} bytes of messages waiting)")]
    QueueBytesFull {
        /// The configured limit.
        max: usize,
    },
    /// `connect` while a connection is already open or being opened.
    #[error("already connected or connecting")]
    AlreadyConnected,
    /// `disconnect` with no connection open.
    #[error("not connected")]
    NotConnected,
    /// SUBSCRIBE or UNSUBSCRIBE with no filter [MQTT-3.8.3-3].
    #[error("at least one topic filter is required [MQTT-3.8.3-3]")]
    NoFilters,
    /// `restore` after the session has connected or already holds flows in flight: a
    /// snapshot replaces nothing, it only seeds a fresh session.
    #[error("a session can only be restored before its first connect")]
    RestoreAfterStart,
    /// The configuration or a command would produce an invalid packet.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Why a command will never complete.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The connection was lost with clean session = true, so the broker discards the
    /// session: the command's outcome is unknown and it will not be retried.
    #[error("connection lost with clean session: the command was discarded with the session")]
    SessionLost,
    /// The session was closed by the application before the command completed.
    #[error("session closed before the command completed")]
    Closed,
    /// The command could not be encoded when its turn came to be sent (a check the command
    /// methods run up front should have caught this; it is reported rather than dropped).
    #[error("command could not be encoded: {0}")]
    Encode(EncodeError),
}
