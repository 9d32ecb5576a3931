//! MQTT 3.1, 3.1.1 and 5.0 control packets: the types, and their encoding and decoding.
//!
//! One code tree serves every protocol level; [`ProtocolLevel`] picks `MQIsdp`/3, `MQTT`/4 or
//! `MQTT`/5 where they differ. Encode with [`Packet::encode_for`] (or [`Packet::encode`]);
//! decode a stream with [`Decoder`].
//!
//! # MQTT 5
//!
//! The variants of [`Packet`] that 3.1.1 has keep their shapes and mean the same packet at
//! level 5: a PUBLISH is one without properties, a PUBACK carrying only its packet id is a
//! PUBACK with reason Success and no properties, a DISCONNECT without a body is a Normal
//! disconnection, a SUBSCRIBE whose options are only a QoS has no properties. What only
//! level 5 can say lives in [`Connect::properties`], [`LastWill::properties`] (CONNECT is
//! boxed and rare) and in the `…V5` variants (properties, reason codes, subscription
//! options) plus [`Packet::Auth`].
//! The decoder at level 5 returns the shared variant whenever the packet carries nothing
//! more, and the `…V5` variant otherwise, so each packet has one representation (except
//! UNSUBACK, which at level 5 always lists a reason code per filter and always decodes to
//! [`Packet::UnsubAckV5`]). A 3.1.1 connection pays nothing for this: no property parsing,
//! no allocation, a `Packet` no larger than before, and a decode fast path compiled for its
//! level (the decoder tests the level once per packet).
//!
//! Encoding: [`Packet::encode`] writes the form the packet implies (MQTT 5 for a `…V5`
//! variant or AUTH, else 3.1.1); a connection speaking MQTT 5 encodes with
//! [`Packet::encode_for`]`(ProtocolLevel::V5, …)`, since the shared variants differ on the
//! wire at level 5 (a PUBLISH carries an empty property block there).
//!
//! ## MQTT 5 codec: checklist coverage
//!
//! The codec statements of `mqtt5-client-checklist.md` and the tests that hold them
//! (`tests_v5` unless named otherwise; `v5/…` and `malformed_v5/…` are files in `testdata/`,
//! each decoded whole and byte by byte). Session rules (flow control, aliases, expiry,
//! enhanced authentication) are the session's, not the codec's.
//!
//! | Statement | Rule | Tested by |
//! |---|---|---|
//! | [MQTT-1.5.4-1], [MQTT-1.5.4-2], [MQTT-1.5.7-1] | property strings and User Property pairs are valid UTF-8 without U+0000 | `malformed_v5/publish_user_property_invalid_utf8` |
//! | [MQTT-1.5.5-1] | VBIs minimal and at most 4 bytes (property lengths, identifiers, Subscription Identifiers, remaining length) | `malformed_v5/publish_property_length_5_bytes`, `…/publish_property_id_padded`, `…/pingreq_padded_length`, `fixed_header::level_5_refuses_padded_lengths_and_lets_acks_grow` |
//! | [MQTT-2.1.3-1] | Table 2.2 flags, AUTH `0000` | `malformed_v5/auth_flags_0001`, `fixed_header::every_type_checks_its_table_2_2_flags` |
//! | [MQTT-2.2.2-1] | Property Length 0 written when there are no properties | `v5/publish_qos0`, `v5/subscribe_plain`, `v5/connect_minimal`, `the_shared_forms_differ_on_the_wire_at_level_5` |
//! | §2.2.2.2 | identifier not valid for the packet: Malformed; unknown identifier: Malformed | `every_property_is_accepted_where_the_table_allows_it_and_refused_elsewhere` (27 × 14 blocks), `unknown_property_identifiers_are_malformed_in_every_block`, `malformed_v5/connect_will_delay_in_connect`, `…/connect_will_topic_alias`, `…/publish_reason_string`, `…/disconnect_topic_alias`, `…/connect_unknown_property` |
//! | §2.2.2.2 | a property twice (other than User Property, and Subscription Identifier in PUBLISH): Protocol Error | the same table test, `malformed_v5/connect_duplicate_session_expiry`, `…/puback_duplicate_reason_string`, `…/subscribe_duplicate_subscription_id` |
//! | §3.1.2.11, §3.2.2.3, §3.3.2.3, §3.8.2.1 | values in range: 0/1 bytes, Receive Maximum, Maximum Packet Size, Topic Alias and Subscription Identifier non-zero, Maximum QoS 0/1 | `malformed_v5/connect_receive_maximum_0`, `…/connack_maximum_qos_2`, `…/connack_retain_available_2`, `…/publish_topic_alias_0`, `…/publish_subscription_id_0`, `…/publish_payload_format_2`, `encoder_refusals_at_level_5` |
//! | §3.1.2.11.10 | Authentication Data only with a method | `malformed_v5/connect_auth_data_without_method`, `encoder_refusals_at_level_5` |
//! | (§2.2.2.2 type) | User Properties repeat, order kept | `user_properties_keep_their_order_and_repeats`, `v5/connack_properties`, `v5/publish_properties` |
//! | [MQTT-3.1.2-1], [MQTT-3.1.2-2] | CONNECT `MQTT` level 5; properties after Keep Alive | `v5/connect_minimal`, `v5/connect_full` |
//! | §3.1.2.9, §3.1.3.1 | password without user name, empty client id without Clean Start: legal in 5 | `v5/connect_password_without_username`, `v5/connect_empty_client_id` |
//! | §3.1.3.2 | Will Properties in the will block, not in CONNECT properties | `v5/connect_full`, `malformed_v5/connect_will_topic_alias`, `…/connect_will_delay_in_connect` |
//! | [MQTT-3.2.2-1] | CONNACK flag bits 7..1 zero | `tests::malformed_files_give_their_named_errors` (same rule at level 5) |
//! | [MQTT-3.2.2-6] | no session present with a failure code | `malformed_v5/connack_session_present_on_refusal`, `encoder_refusals_at_level_5` |
//! | [MQTT-3.2.2-8] | CONNACK reason codes only | `every_byte_is_a_listed_reason_code_or_a_named_error_in_every_packet`, `malformed_v5/connack_reason_0x04` |
//! | (§4 of the checklist) | a 3.1.1 server's CONNACK to a 5 CONNECT reads as "unacceptable protocol version" | `v5/connack_from_v311_server` |
//! | [MQTT-3.3.2-1] | empty topic only with a Topic Alias | `v5/publish_alias_only`, `malformed_v5/publish_empty_topic_without_alias`, `encoder_refusals_at_level_5` |
//! | [MQTT-3.3.2-8] | Topic Alias 0 refused | `malformed_v5/publish_topic_alias_0` |
//! | [MQTT-3.3.2-13], [MQTT-3.3.2-14] | Response Topic UTF-8, no wildcards | `malformed_v5/publish_response_topic_wildcard` |
//! | [MQTT-3.3.4-2..5] | several (even repeated) Subscription Identifiers accepted in PUBLISH | `v5/publish_properties`, `every_property_…` (twice in PUBLISH) |
//! | [MQTT-3.4.2-1], [MQTT-3.5.2-1], [MQTT-3.6.2-1], [MQTT-3.7.2-1] | ack reason codes per packet | `every_byte_is_a_listed_reason_code_…`, `malformed_v5/puback_reason_0x92`, `…/pubrel_reason_0x10` |
//! | §3.4.2.1 | Remaining Length 2 (Success), 3 (no properties) and longer all accepted | `v311/puback` … `v311/pubcomp` at level 5, `v5/puback_reason`, `v5/puback_success_long_form`, `malformed_v5/puback_trailing_byte` |
//! | [MQTT-3.8.3-4] | No Local never on a shared subscription | `malformed_v5/subscribe_no_local_shared`, `encoder_refusals_at_level_5` |
//! | [MQTT-3.8.3-5], §3.8.3.1 | options reserved bits 0 (Malformed); QoS 3 and Retain Handling 3 refused | `malformed_v5/subscribe_options_reserved_bits`, `…/subscribe_retain_handling_3`, `v5/subscribe_options` |
//! | §3.8.2.1.2 | at most one Subscription Identifier in SUBSCRIBE | `malformed_v5/subscribe_duplicate_subscription_id` |
//! | [MQTT-3.9.3-2], [MQTT-3.11.3-2] | SUBACK / UNSUBACK reason codes, at least one | `every_byte_is_a_listed_reason_code_…`, `v5/suback_reasons`, `v5/unsuback_reasons`, `malformed_v5/suback_reason_0x03`, `…/unsuback_no_codes`, `…/unsuback_short` |
//! | [MQTT-3.14.2-1], §3.14.2.1 | DISCONNECT reason codes; Remaining Length 0 is a Normal disconnection | `every_byte_is_a_listed_reason_code_…`, `v311/disconnect` at level 5, `v5/disconnect_*`, `malformed_v5/disconnect_reason_0x01` |
//! | [MQTT-3.15.1-1], [MQTT-3.15.2-1], §3.15.2.1 | AUTH flags, reason codes, Remaining Length 0 = Success; AUTH does not exist below 5 | `malformed_v5/auth_flags_0001`, `…/auth_reason_0x01`, `…/auth_at_level_4`, `v5/auth_success`, `v5/auth_continue` |
//! | (levels 3, 4) | nothing of 5 leaks into 3.1 / 3.1.1 | `level_5_content_is_refused_below_level_5`, `a_3_1_1_session_pays_nothing_for_properties`, every 3.1.1 test unchanged |
//! | (§2 of the checklist) | encode then decode is the identity; any chunking gives the same packets | `every_v5_packet_round_trips`, `tests::any_packet_round_trips`, `tests::a_stream_split_at_every_point_yields_the_same_packets`, `tests::a_stream_in_random_chunks_yields_the_same_packets`, `tests::the_fast_path_agrees_with_the_general_path_on_damaged_packets` (all levels), fuzz `decode` and `decode_chunked` |

mod ack;
mod auth;
mod codec;
mod connack;
mod connect;
mod decoder;
mod disconnect;
mod error;
mod fixed_header;
pub mod property;
mod publish;
mod read;
pub mod reason;
mod suback;
mod subscribe;
mod unsuback;
mod unsubscribe;
mod write;

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_v5;

use std::fmt;
use std::num::NonZeroU16;

pub use ack::Ack;
pub use auth::Auth;
pub use connack::{ConnAck, ConnAckV5, ConnectReturnCode};
pub use connect::{Connect, LastWill};
pub use decoder::{DEFAULT_MAX_PACKET_SIZE, Decoder, MAX_REMAINING_LENGTH};
pub use disconnect::DisconnectV5;
pub use error::{DecodeError, EncodeError};
pub use property::{
    AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties, PayloadFormat,
    PropertyId, PropertyScope, PublishProperties, ReasonProperties, SubscribeProperties,
    SubscriptionId, UnsubscribeProperties, UserProperty, WillProperties,
};
pub use publish::{Publish, PublishV5, QosPid};
pub use reason::{
    AuthReasonCode, ConnectReasonCode, DisconnectReasonCode, PubAckReasonCode, PubCompReasonCode,
    PubRecReasonCode, PubRelReasonCode, SubAckReasonCode, UnsubAckReasonCode,
};
pub use suback::{SubAck, SubAckV5, SubscribeReturnCode};
pub use subscribe::{RetainHandling, Subscribe, SubscribeV5, SubscriptionOptions};
pub use unsuback::UnsubAckV5;
pub use unsubscribe::{Unsubscribe, UnsubscribeV5};

/// An MQTT control packet, in type-code order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (1): client to server.
    Connect(Box<Connect>),
    /// CONNACK (2): server to client.
    ConnAck(ConnAck),
    /// PUBLISH (3): both directions.
    Publish(Publish),
    /// PUBACK (4): QoS 1 acknowledgement.
    PubAck(PacketId),
    /// PUBREC (5): QoS 2, part 1.
    PubRec(PacketId),
    /// PUBREL (6): QoS 2, part 2.
    PubRel(PacketId),
    /// PUBCOMP (7): QoS 2, part 3.
    PubComp(PacketId),
    /// SUBSCRIBE (8): client to server.
    Subscribe(Subscribe),
    /// SUBACK (9): server to client.
    SubAck(SubAck),
    /// UNSUBSCRIBE (10): client to server.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK (11): server to client.
    UnsubAck(PacketId),
    /// PINGREQ (12): client to server.
    PingReq,
    /// PINGRESP (13): server to client.
    PingResp,
    /// DISCONNECT (14): client to server (and, in MQTT 5, a Normal disconnection without
    /// properties either way).
    Disconnect,
    /// MQTT 5 CONNACK: reason code and properties.
    ConnAckV5(Box<ConnAckV5>),
    /// MQTT 5 PUBLISH with properties.
    PublishV5(Box<PublishV5>),
    /// MQTT 5 PUBACK with a reason code other than Success, or properties.
    PubAckV5(Ack<PubAckReasonCode>),
    /// MQTT 5 PUBREC with a reason code other than Success, or properties.
    PubRecV5(Ack<PubRecReasonCode>),
    /// MQTT 5 PUBREL with a reason code other than Success, or properties.
    PubRelV5(Ack<PubRelReasonCode>),
    /// MQTT 5 PUBCOMP with a reason code other than Success, or properties.
    PubCompV5(Ack<PubCompReasonCode>),
    /// MQTT 5 SUBSCRIBE with subscription options beyond a QoS, or properties.
    SubscribeV5(SubscribeV5),
    /// MQTT 5 SUBACK with reason codes 3.1.1 cannot express, or properties.
    SubAckV5(Box<SubAckV5>),
    /// MQTT 5 UNSUBSCRIBE with properties.
    UnsubscribeV5(UnsubscribeV5),
    /// MQTT 5 UNSUBACK: a reason code per filter.
    UnsubAckV5(Box<UnsubAckV5>),
    /// MQTT 5 DISCONNECT with a reason code other than Normal disconnection, or properties;
    /// either direction.
    DisconnectV5(Box<DisconnectV5>),
    /// AUTH (15, MQTT 5 only): enhanced authentication.
    Auth(Box<Auth>),
}

/// The control packet type, the high nibble of the first fixed-header byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// CONNECT
    Connect = 1,
    /// CONNACK
    ConnAck = 2,
    /// PUBLISH
    Publish = 3,
    /// PUBACK
    PubAck = 4,
    /// PUBREC
    PubRec = 5,
    /// PUBREL
    PubRel = 6,
    /// PUBCOMP
    PubComp = 7,
    /// SUBSCRIBE
    Subscribe = 8,
    /// SUBACK
    SubAck = 9,
    /// UNSUBSCRIBE
    Unsubscribe = 10,
    /// UNSUBACK
    UnsubAck = 11,
    /// PINGREQ
    PingReq = 12,
    /// PINGRESP
    PingResp = 13,
    /// DISCONNECT
    Disconnect = 14,
    /// AUTH (MQTT 5 only; type 15 is reserved in 3.1.1)
    Auth = 15,
}

impl PacketType {
    /// The type for a fixed-header type nibble; `None` for the reserved value 0 (and for
    /// anything above 15). 15 is AUTH, which only MQTT 5 has: the decoder refuses it at the
    /// lower levels.
    pub fn from_nibble(nibble: u8) -> Option<Self> {
        Some(match nibble {
            1 => Self::Connect,
            2 => Self::ConnAck,
            3 => Self::Publish,
            4 => Self::PubAck,
            5 => Self::PubRec,
            6 => Self::PubRel,
            7 => Self::PubComp,
            8 => Self::Subscribe,
            9 => Self::SubAck,
            10 => Self::Unsubscribe,
            11 => Self::UnsubAck,
            12 => Self::PingReq,
            13 => Self::PingResp,
            14 => Self::Disconnect,
            15 => Self::Auth,
            _ => return None,
        })
    }

    /// The fixed-header flag bits this type must carry (Table 2.2 [MQTT-2.2.2-1]); `None` for
    /// PUBLISH, whose flags are DUP, QoS and RETAIN.
    pub fn required_flags(self) -> Option<u8> {
        match self {
            Self::Publish => None,
            Self::PubRel | Self::Subscribe | Self::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Connect => "CONNECT",
            Self::ConnAck => "CONNACK",
            Self::Publish => "PUBLISH",
            Self::PubAck => "PUBACK",
            Self::PubRec => "PUBREC",
            Self::PubRel => "PUBREL",
            Self::PubComp => "PUBCOMP",
            Self::Subscribe => "SUBSCRIBE",
            Self::SubAck => "SUBACK",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::UnsubAck => "UNSUBACK",
            Self::PingReq => "PINGREQ",
            Self::PingResp => "PINGRESP",
            Self::Disconnect => "DISCONNECT",
            Self::Auth => "AUTH",
        };
        f.write_str(name)
    }
}

impl Packet {
    /// This packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect => PacketType::Disconnect,
            Self::ConnAckV5(_) => PacketType::ConnAck,
            Self::PublishV5(_) => PacketType::Publish,
            Self::PubAckV5(_) => PacketType::PubAck,
            Self::PubRecV5(_) => PacketType::PubRec,
            Self::PubRelV5(_) => PacketType::PubRel,
            Self::PubCompV5(_) => PacketType::PubComp,
            Self::SubscribeV5(_) => PacketType::Subscribe,
            Self::SubAckV5(_) => PacketType::SubAck,
            Self::UnsubscribeV5(_) => PacketType::Unsubscribe,
            Self::UnsubAckV5(_) => PacketType::UnsubAck,
            Self::DisconnectV5(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }
}

/// A packet identifier: never zero [MQTT-2.3.1-1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// The id for `n`; `None` for 0.
    pub const fn new(n: u16) -> Option<Self> {
        match NonZeroU16::new(n) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }

    /// The id as a number (1..=65535).
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The next id after this one, wrapping from 65535 to 1.
    pub const fn next(self) -> Self {
        match NonZeroU16::new(self.0.get().wrapping_add(1)) {
            Some(n) => Self(n),
            None => Self(NonZeroU16::MIN),
        }
    }
}

impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Quality of service of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum QoS {
    /// At most once (QoS 0): fire and forget.
    #[default]
    AtMostOnce = 0,
    /// At least once (QoS 1): PUBLISH, PUBACK.
    AtLeastOnce = 1,
    /// Exactly once (QoS 2): PUBLISH, PUBREC, PUBREL, PUBCOMP.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a number; `None` for 3 and above [MQTT-3.3.1-4].
    pub const fn from_u8(n: u8) -> Option<Self> {
        match n {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }
}

impl fmt::Display for QoS {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&(*self as u8), f)
    }
}

/// The protocol revision a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProtocolLevel {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V3_1,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    #[default]
    V3_1_1,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5,
}

impl ProtocolLevel {
    /// The protocol name carried in CONNECT [MQTT-3.1.2-1].
    pub const fn name(self) -> &'static str {
        match self {
            Self::V3_1 => "MQIsdp",
            Self::V3_1_1 | Self::V5 => "MQTT",
        }
    }

    /// The protocol level byte carried in CONNECT [MQTT-3.1.2-2].
    pub const fn level(self) -> u8 {
        match self {
            Self::V3_1 => 3,
            Self::V3_1_1 => 4,
            Self::V5 => 5,
        }
    }

    /// Whether this is MQTT 5 (properties, reason codes, AUTH).
    pub const fn is_v5(self) -> bool {
        matches!(self, Self::V5)
    }
}

impl fmt::Display for ProtocolLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V3_1 => "MQTT 3.1",
            Self::V3_1_1 => "MQTT 3.1.1",
            Self::V5 => "MQTT 5.0",
        })
    }
}
