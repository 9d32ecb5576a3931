//! Codec errors: what was wrong with bytes received, or with a packet to be sent.

use super::property::{PropertyId, PropertyScope};
use super::{PacketType, ProtocolLevel};
use crate::text::StringError;
use crate::topic::TopicError;

/// The peer sent bytes that are not a valid MQTT packet. The connection must be closed
/// [MQTT-4.8.0-1].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Type nibble 0 or 15.
    #[error("reserved packet type {nibble} [MQTT-2.2.1]")]
    ReservedPacketType {
        /// The nibble.
        nibble: u8,
    },
    /// Fixed-header flags differ from Table 2.2.
    #[error("invalid fixed-header flags {flags:#06b} on {packet} [MQTT-2.2.2-2]")]
    ReservedFlags {
        /// The packet type.
        packet: PacketType,
        /// The flags received.
        flags: u8,
    },
    /// A fifth remaining-length byte, i.e. a length beyond 268,435,455.
    #[error("remaining length uses more than 4 bytes [MQTT-2.2.3]")]
    MalformedRemainingLength,
    /// The packet is larger than the configured limit.
    #[error("incoming packet of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Whole packet size (fixed header included).
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// QoS bits of a PUBLISH are 3.
    #[error("PUBLISH with QoS 3 [MQTT-3.3.1-4]")]
    InvalidQoS,
    /// DUP set on a QoS 0 PUBLISH.
    #[error("PUBLISH with DUP set at QoS 0 [MQTT-3.3.1-2]")]
    DupAtQoS0,
    /// A packet id of zero.
    #[error("{packet} with packet identifier 0 [MQTT-2.3.1-1]")]
    ZeroPacketId {
        /// The packet type.
        packet: PacketType,
    },
    /// The packet ended before a field it must contain.
    #[error("{packet} truncated: {field} needs {needed} more bytes than the packet holds")]
    Truncated {
        /// The packet type.
        packet: PacketType,
        /// The field being read.
        field: &'static str,
        /// How many bytes were missing.
        needed: usize,
    },
    /// Bytes left over after the last field of a fixed-size packet.
    #[error("{packet} has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// The packet type.
        packet: PacketType,
        /// How many.
        extra: usize,
    },
    /// A string field is not a valid MQTT string.
    #[error("{packet} {field}: {source}")]
    InvalidString {
        /// The packet type.
        packet: PacketType,
        /// The field.
        field: &'static str,
        /// What was wrong.
        source: StringError,
    },
    /// A topic name or filter field is invalid.
    #[error("{packet} {field}: {source}")]
    InvalidTopic {
        /// The packet type.
        packet: PacketType,
        /// The field.
        field: &'static str,
        /// What was wrong.
        source: TopicError,
    },
    /// CONNECT protocol name/level pair is neither `MQIsdp`/3 nor `MQTT`/4.
    #[error("unsupported protocol {name:?} level {level} [MQTT-3.1.2-1]")]
    UnsupportedProtocol {
        /// Protocol name received.
        name: String,
        /// Level byte received.
        level: u8,
    },
    /// A CONNECT flag combination the spec forbids.
    #[error("invalid CONNECT flags {flags:#010b}: {reason}")]
    InvalidConnectFlags {
        /// The flags byte.
        flags: u8,
        /// The rule broken, with its statement id.
        reason: &'static str,
    },
    /// CONNACK acknowledge flags with reserved bits set.
    #[error("CONNACK acknowledge flags {flags:#010b} have reserved bits set [MQTT-3.2.2-1]")]
    InvalidConnAckFlags {
        /// The flags byte.
        flags: u8,
    },
    /// A CONNACK return code outside 0..=5.
    #[error("CONNACK return code {code} is reserved [MQTT-3.2.2.3]")]
    InvalidConnectReturnCode {
        /// The code.
        code: u8,
    },
    /// A SUBACK return code other than 0, 1, 2 (or 0x80 in 3.1.1).
    #[error("SUBACK return code {code:#04x} is invalid [MQTT-3.9.3-2]")]
    InvalidSubAckCode {
        /// The code.
        code: u8,
    },
    /// A SUBSCRIBE requested QoS byte with reserved bits or QoS 3.
    #[error("SUBSCRIBE requested QoS byte {byte:#04x} is invalid [MQTT-3.8.3-4]")]
    InvalidRequestedQoS {
        /// The byte.
        byte: u8,
    },
    /// SUBSCRIBE or UNSUBSCRIBE without any topic filter.
    #[error("{packet} carries no topic filter [{rule}]", rule = no_filter_rule(*.packet))]
    NoFilters {
        /// The packet type.
        packet: PacketType,
    },
    /// SUBACK without any return code (the SUBSCRIBE it answers had at least one filter).
    #[error("SUBACK carries no return code [MQTT-3.9.3]")]
    NoReturnCodes,
    /// A refusing CONNACK (non-zero code) with session present set.
    #[error("CONNACK refusing with code {code} has session present set [MQTT-3.2.2-4]")]
    SessionPresentOnRefusal {
        /// The return code.
        code: u8,
    },
    /// A Variable Byte Integer (other than the remaining length) with a fifth byte.
    #[error("{packet} {field}: variable byte integer longer than 4 bytes [MQTT-1.5.5-1]")]
    MalformedVbi {
        /// The packet type.
        packet: PacketType,
        /// The field.
        field: &'static str,
    },
    /// A Variable Byte Integer not in its shortest form (MQTT 5 only).
    #[error("{packet} {field}: variable byte integer not in its shortest form [MQTT-1.5.5-1]")]
    NonMinimalVbi {
        /// The packet type.
        packet: PacketType,
        /// The field.
        field: &'static str,
    },
    /// A property identifier the standard does not define (Malformed Packet).
    #[error("{scope}: unknown property identifier {id:#04x} (Malformed Packet, §2.2.2.2)")]
    UnknownProperty {
        /// The property block.
        scope: PropertyScope,
        /// The identifier received.
        id: u32,
    },
    /// A property this packet may not carry (Malformed Packet).
    #[error("{scope} may not carry {property} (Malformed Packet, §2.2.2.2)")]
    PropertyNotAllowed {
        /// The property block.
        scope: PropertyScope,
        /// The property.
        property: PropertyId,
    },
    /// A property other than User Property (or a PUBLISH's Subscription Identifier) given
    /// twice (Protocol Error).
    #[error("{scope} carries {property} more than once (Protocol Error, §2.2.2.2)")]
    DuplicateProperty {
        /// The property block.
        scope: PropertyScope,
        /// The property.
        property: PropertyId,
    },
    /// A property value outside its range (Protocol Error).
    #[error("{scope} {property} = {value}: {rule} (Protocol Error)")]
    PropertyOutOfRange {
        /// The property block.
        scope: PropertyScope,
        /// The property.
        property: PropertyId,
        /// The value received.
        value: u32,
        /// The rule broken, with its section.
        rule: &'static str,
    },
    /// Authentication Data without Authentication Method (Protocol Error).
    #[error(
        "{scope} carries Authentication Data without Authentication Method (Protocol Error, §3.1.2.11.10)"
    )]
    AuthenticationDataWithoutMethod {
        /// The property block.
        scope: PropertyScope,
    },
    /// A reason code the packet's table does not list.
    #[error("{packet} reason code {code:#04x} is not one of its reason codes [{rule}]", rule = reason_rule(*.packet))]
    InvalidReasonCode {
        /// The packet type.
        packet: PacketType,
        /// The code.
        code: u8,
    },
    /// A SUBSCRIBE subscription options byte that breaks a rule (MQTT 5).
    #[error("SUBSCRIBE subscription options {byte:#010b}: {reason}")]
    InvalidSubscriptionOptions {
        /// The byte.
        byte: u8,
        /// The rule broken, with its statement id.
        reason: &'static str,
    },
    /// No Local on a shared subscription (Protocol Error).
    #[error("SUBSCRIBE sets No Local on shared subscription {filter:?} [MQTT-3.8.3-4]")]
    NoLocalOnSharedSubscription {
        /// The filter.
        filter: String,
    },
    /// A PUBLISH with an empty topic name and no Topic Alias (Protocol Error).
    #[error("PUBLISH with an empty topic name and no Topic Alias [MQTT-3.3.2-1]")]
    EmptyTopicWithoutAlias,
    /// An MQTT 5 SUBACK or UNSUBACK without any reason code.
    #[error("{packet} carries no reason code [{rule}]", rule = reason_rule(*.packet))]
    NoReasonCodes {
        /// The packet type.
        packet: PacketType,
    },
}

/// A packet that cannot be sent because it breaks a rule of the protocol.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The packet would exceed 268,435,455 bytes of remaining length.
    #[error("packet remaining length {len} exceeds 268435455 bytes [MQTT-2.2.3]")]
    TooLarge {
        /// The remaining length it would have.
        len: usize,
    },
    /// DUP set on a QoS 0 PUBLISH.
    #[error("DUP must be 0 on a QoS 0 PUBLISH [MQTT-3.3.1-2]")]
    DupAtQoS0,
    /// A 3.1 client id that is empty or longer than 23 characters.
    #[error("MQTT 3.1 client id must be 1 to 23 characters, got {len}")]
    ClientIdLength {
        /// Its length in characters.
        len: usize,
    },
    /// An empty 3.1.1 client id without clean session.
    #[error("an empty client id requires clean session [MQTT-3.1.3-7]")]
    EmptyClientIdWithoutCleanSession,
    /// A password without a user name.
    #[error("a password requires a user name [MQTT-3.1.2-22]")]
    PasswordWithoutUsername,
    /// A binary field (will payload, password) longer than 65,535 bytes.
    #[error("{field} of {len} bytes exceeds the 65535-byte limit")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// SUBSCRIBE or UNSUBSCRIBE without any filter.
    #[error("{packet} needs at least one topic filter [{rule}]", rule = no_filter_rule(*.packet))]
    NoFilters {
        /// The packet type.
        packet: PacketType,
    },
    /// SUBACK without any return code.
    #[error("SUBACK needs at least one return code [MQTT-3.9.3]")]
    NoReturnCodes,
    /// A refusing CONNACK (non-zero code) with session present set.
    #[error("a CONNACK refusing with code {code} must not set session present [MQTT-3.2.2-4]")]
    SessionPresentOnRefusal {
        /// The return code.
        code: u8,
    },
    /// Session present in a 3.1 CONNACK, where the acknowledge-flags byte is reserved.
    #[error("session present does not exist in MQTT 3.1 (CONNACK byte 1 is reserved)")]
    SessionPresentInV31,
    /// SUBACK failure code in a 3.1 session (no such code in 3.1).
    #[error("SUBACK failure code 0x80 does not exist in MQTT 3.1")]
    SubAckFailureInV31,
    /// Something the packet holds does not exist at the protocol level it is encoded for
    /// (properties, reason codes, AUTH below MQTT 5; an UNSUBACK without codes in MQTT 5).
    #[error("{packet} cannot be encoded for {level}: {what}")]
    NotInLevel {
        /// The packet type.
        packet: PacketType,
        /// The level asked for.
        level: ProtocolLevel,
        /// What does not fit.
        what: &'static str,
    },
    /// A property value a sender must not write.
    #[error("{scope} {property} = {value}: {rule}")]
    PropertyOutOfRange {
        /// The property block.
        scope: PropertyScope,
        /// The property.
        property: PropertyId,
        /// The value.
        value: u32,
        /// The rule, with its section.
        rule: &'static str,
    },
    /// Authentication Data without Authentication Method.
    #[error("{scope}: Authentication Data requires an Authentication Method (§3.1.2.11.10)")]
    AuthenticationDataWithoutMethod {
        /// The property block.
        scope: PropertyScope,
    },
    /// No Local on a shared subscription.
    #[error("No Local must not be set on shared subscription {filter:?} [MQTT-3.8.3-4]")]
    NoLocalOnSharedSubscription {
        /// The filter.
        filter: String,
    },
    /// A PUBLISH with an empty topic name and no Topic Alias.
    #[error("a PUBLISH with an empty topic name needs a Topic Alias [MQTT-3.3.2-1]")]
    EmptyTopicWithoutAlias,
    /// An MQTT 5 SUBACK or UNSUBACK without any reason code.
    #[error("{packet} needs at least one reason code [{rule}]", rule = reason_rule(*.packet))]
    NoReasonCodes {
        /// The packet type.
        packet: PacketType,
    },
}

/// The statement listing the reason codes `packet` may carry.
fn reason_rule(packet: PacketType) -> &'static str {
    match packet {
        PacketType::ConnAck => "MQTT-3.2.2-8",
        PacketType::PubAck => "MQTT-3.4.2-1",
        PacketType::PubRec => "MQTT-3.5.2-1",
        PacketType::PubRel => "MQTT-3.6.2-1",
        PacketType::PubComp => "MQTT-3.7.2-1",
        PacketType::SubAck => "MQTT-3.9.3-2",
        PacketType::UnsubAck => "MQTT-3.11.3-2",
        PacketType::Disconnect => "MQTT-3.14.2-1",
        PacketType::Auth => "MQTT-3.15.2-1",
        _ => "MQTT-2.4",
    }
}

/// The statement requiring at least one filter in `packet`.
fn no_filter_rule(packet: PacketType) -> &'static str {
    match packet {
        PacketType::Unsubscribe => "MQTT-3.10.3-2",
        _ => "MQTT-3.8.3-3",
    }
}
