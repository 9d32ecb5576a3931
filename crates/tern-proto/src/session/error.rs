//! Session errors, by whose fault: [`ProtocolError`] (the broker), [`ApiMisuse`] (the
//! caller), [`RequestError`] (a command that can no longer complete).

use crate::packet::{
    DecodeError, DisconnectReasonCode, EncodeError, PacketId, PacketType, PubAckReasonCode,
    PubCompReasonCode, QoS,
};
use crate::text::MqttString;

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
    /// MQTT 5: an UNSUBACK whose number of reason codes differs from the UNSUBSCRIBE's
    /// filters [MQTT-3.11.3-1].
    #[error(
        "UNSUBACK for packet id {id} has {got} reason codes, the UNSUBSCRIBE had {expected} filters [MQTT-3.11.3-1]"
    )]
    UnsubAckCountMismatch {
        /// Packet id.
        id: PacketId,
        /// Codes received.
        got: usize,
        /// Filters sent.
        expected: usize,
    },
    /// MQTT 5: a Reason String or User Property on an acknowledgement after we asked for no
    /// problem information (Request Problem Information 0) [MQTT-3.1.2-29].
    #[error(
        "{0} carries a Reason String or User Property though we asked for none [MQTT-3.1.2-29]"
    )]
    UnrequestedProblemInformation(PacketType),
    /// Input arrived before `connect` or after the session closed.
    #[error("input while no connection is open")]
    NotConnected,
    /// MQTT 5: more QoS 1/2 PUBLISHes unacknowledged than our Receive Maximum allows
    /// [MQTT-3.3.4-9] (DISCONNECT 0x93).
    #[error(
        "broker exceeded our Receive Maximum of {max} unacknowledged QoS 1/2 messages [MQTT-3.3.4-9]"
    )]
    ReceiveMaximumExceeded {
        /// Our advertised Receive Maximum.
        max: u16,
    },
    /// MQTT 5: a Topic Alias above our Topic Alias Maximum [MQTT-3.1.2-26], [MQTT-3.3.2-11]
    /// (DISCONNECT 0x94).
    #[error("Topic Alias {alias} above our Topic Alias Maximum of {max} [MQTT-3.3.2-11]")]
    TopicAliasInvalid {
        /// The alias received.
        alias: u16,
        /// Our advertised maximum.
        max: u16,
    },
    /// MQTT 5: a PUBLISH with an empty topic and an alias not bound on this connection
    /// [MQTT-3.3.2-7] (DISCONNECT 0x82).
    #[error(
        "PUBLISH with empty topic and Topic Alias {alias}, which this connection never bound [MQTT-3.3.2-7]"
    )]
    UnknownTopicAlias {
        /// The alias received.
        alias: u16,
    },
    /// MQTT 5: Payload Format Indicator 1 on a payload that is not UTF-8 (§3.3.2.3.2;
    /// DISCONNECT 0x99).
    #[error("PUBLISH payload flagged UTF-8 (Payload Format Indicator 1) is not valid UTF-8")]
    PayloadFormatInvalid,
    /// MQTT 5: CONNACK with Session Present 1 answering a CONNECT with Clean Start 1
    /// [MQTT-3.2.2-2].
    #[error("CONNACK has Session Present 1 though CONNECT had Clean Start 1 [MQTT-3.2.2-2]")]
    SessionPresentOnCleanStart,
    /// MQTT 5: a DISCONNECT from the broker with a Session Expiry Interval [MQTT-3.14.2-2].
    #[error("DISCONNECT from the broker carries a Session Expiry Interval [MQTT-3.14.2-2]")]
    SessionExpiryFromServer,
    /// MQTT 5: AUTH from a broker whose CONNECT had no Authentication Method, or with
    /// another method [MQTT-4.12.0-5], [MQTT-4.12.0-6] (DISCONNECT 0x82).
    #[error("unexpected AUTH: {0} [MQTT-4.12.0-5]")]
    UnexpectedAuth(&'static str),
}

impl ProtocolError {
    /// The MQTT 5 DISCONNECT reason code that reports this violation to the broker
    /// (§4.13.1): Malformed Packet for undecodable bytes, a specific code where one exists,
    /// Protocol Error otherwise.
    pub fn disconnect_reason(&self) -> DisconnectReasonCode {
        match self {
            Self::Decode(DecodeError::TooLarge { .. }) => DisconnectReasonCode::PacketTooLarge,
            Self::Decode(
                DecodeError::DuplicateProperty { .. }
                | DecodeError::PropertyOutOfRange { .. }
                | DecodeError::NoLocalOnSharedSubscription { .. },
            ) => DisconnectReasonCode::ProtocolError,
            Self::Decode(_) => DisconnectReasonCode::MalformedPacket,
            Self::ReceiveMaximumExceeded { .. } => DisconnectReasonCode::ReceiveMaximumExceeded,
            Self::TopicAliasInvalid { .. } => DisconnectReasonCode::TopicAliasInvalid,
            Self::PayloadFormatInvalid => DisconnectReasonCode::PayloadFormatInvalid,
            _ => DisconnectReasonCode::ProtocolError,
        }
    }
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
    /// MQTT 5: the packet is larger than the broker's Maximum Packet Size; not sent
    /// [MQTT-3.2.2-15].
    #[error(
        "packet of {len} bytes exceeds the broker's Maximum Packet Size of {max} bytes [MQTT-3.2.2-15]"
    )]
    PacketTooLarge {
        /// Encoded size.
        len: usize,
        /// The broker's limit.
        max: usize,
    },
    /// MQTT 5: retained publish while the broker declared Retain Available 0
    /// [MQTT-3.2.2-14].
    #[error("the broker does not support retained messages (Retain Available 0) [MQTT-3.2.2-14]")]
    RetainNotSupported,
    /// MQTT 5: publish above the broker's Maximum QoS [MQTT-3.2.2-11].
    #[error("QoS {qos} is above the broker's Maximum QoS {max} [MQTT-3.2.2-11]")]
    QoSNotSupported {
        /// Requested.
        qos: QoS,
        /// The broker's maximum.
        max: QoS,
    },
    /// MQTT 5: wildcard filter while the broker declared Wildcard Subscription Available 0.
    #[error("the broker does not support wildcard subscriptions ({filter:?})")]
    WildcardNotSupported {
        /// The filter.
        filter: String,
    },
    /// MQTT 5: `$share/` filter while the broker declared Shared Subscription Available 0.
    #[error("the broker does not support shared subscriptions ({filter:?})")]
    SharedNotSupported {
        /// The filter.
        filter: String,
    },
    /// MQTT 5: Subscription Identifier while the broker declared Subscription Identifiers
    /// Available 0.
    #[error("the broker does not support Subscription Identifiers")]
    SubscriptionIdNotSupported,
    /// MQTT 5: an invalid shared subscription filter [MQTT-4.8.2-1], [MQTT-4.8.2-2], or No
    /// Local on one [MQTT-3.8.3-4].
    #[error("invalid shared subscription {filter:?}: {reason}")]
    InvalidSharedSubscription {
        /// The filter.
        filter: String,
        /// The rule broken.
        reason: &'static str,
    },
    /// MQTT 5: a Subscription Identifier on an outgoing PUBLISH [MQTT-3.3.4-6].
    #[error("a client PUBLISH must not carry a Subscription Identifier [MQTT-3.3.4-6]")]
    SubscriptionIdInPublish,
    /// A feature of MQTT 5 requested on a connection of a lower level.
    #[error("{0} needs MQTT 5")]
    NeedsV5(&'static str),
    /// MQTT 5: a non-zero Session Expiry Interval in DISCONNECT after CONNECT had 0
    /// [MQTT-3.14.2-2].
    #[error("DISCONNECT cannot set a Session Expiry Interval when CONNECT had 0 [MQTT-3.14.2-2]")]
    ExpiryAfterZero,
    /// MQTT 5 enhanced authentication step with none in progress (or none configured).
    #[error("no enhanced authentication {0}")]
    NoAuth(&'static str),
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
    /// MQTT 5: the packet exceeds the broker's Maximum Packet Size (learned after it was
    /// queued): never sent [MQTT-3.2.2-15].
    #[error(
        "packet of {len} bytes exceeds the broker's Maximum Packet Size of {max} bytes [MQTT-3.2.2-15]"
    )]
    PacketTooLarge {
        /// Encoded size.
        len: usize,
        /// The broker's limit.
        max: usize,
    },
    /// MQTT 5: the broker refused the publish in PUBACK (reason code >= 0x80).
    #[error("PUBACK refused the publish: {code}{}", suffix(.reason_string))]
    PubAckRefused {
        /// The reason code.
        code: PubAckReasonCode,
        /// The Reason String.
        reason_string: Option<MqttString>,
    },
    /// MQTT 5: the broker refused the QoS 2 publish in PUBREC (reason code >= 0x80); the
    /// flow ended there, without PUBREL [MQTT-4.3.3-4].
    #[error("PUBREC refused the publish: {code}{}", suffix(.reason_string))]
    PubRecRefused {
        /// The reason code.
        code: PubAckReasonCode,
        /// The Reason String.
        reason_string: Option<MqttString>,
    },
    /// MQTT 5: PUBCOMP with Packet Identifier not found: the broker had no record of the
    /// flow (after a lost session); the message may or may not have been delivered.
    #[error("PUBCOMP: {code}{}", suffix(.reason_string))]
    PubCompRefused {
        /// The reason code.
        code: PubCompReasonCode,
        /// The Reason String.
        reason_string: Option<MqttString>,
    },
    /// MQTT 5: the message's Message Expiry Interval ran out while it waited to be sent.
    #[error("message expired while waiting to be sent")]
    Expired,
    /// A refusal of the broker's (not-supported feature) learned after the command was
    /// queued; nothing was sent.
    #[error(transparent)]
    Refused(ApiMisuse),
}

/// `: "reason string"` when there is one.
fn suffix(reason: &Option<MqttString>) -> String {
    reason
        .as_deref()
        .map_or_else(String::new, |r| format!(": {r:?}"))
}
