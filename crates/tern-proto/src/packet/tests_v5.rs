//! MQTT 5 codec tests: the vectors in `testdata/v5/` and `testdata/malformed_v5/`, every
//! reason code of every packet, every property in every property block (allowed, refused,
//! repeated), encoder refusals, and proptest properties (round trip with arbitrary
//! properties; streams split anywhere are covered with the other levels in `tests.rs`).

use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::property::{MAX_VBI, PropertyKind};
use super::tests::{
    b, check_every_file_listed, check_malformed, filter, hex, id, name, s, strategy, testdata,
};
use super::*;
use crate::text::StringError;
use crate::topic::{TopicError, TopicName};

use ProtocolLevel::V5;

fn pair(k: &str, v: &str) -> UserProperty {
    (s(k), s(v))
}
fn nz16(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}
fn nz32(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}
fn sub_id(n: u32) -> SubscriptionId {
    SubscriptionId::new(n).unwrap()
}

fn decoder() -> Decoder {
    Decoder::new(V5, DEFAULT_MAX_PACKET_SIZE)
}

fn decode_one(bytes: &[u8]) -> Result<Option<Packet>, DecodeError> {
    decoder().decode(&mut BytesMut::from(bytes))
}

fn encode_v5(packet: &Packet) -> Result<Vec<u8>, EncodeError> {
    let mut out = BytesMut::new();
    packet.encode_for(V5, &mut out)?;
    Ok(out.to_vec())
}

fn reason_only(reason_string: &str) -> ReasonProperties {
    ReasonProperties {
        reason_string: Some(s(reason_string)),
        user_properties: vec![],
    }
}

/// Valid MQTT 5 files, the packet each decodes to, and whether encoding that packet at level
/// 5 gives back exactly the file's bytes.
fn vectors() -> Vec<((&'static str, &'static str), Packet, bool)> {
    vec![
        (
            testdata!("v5/connect_minimal"),
            Packet::Connect(Box::new(Connect {
                level: V5,
                client_id: s("tern"),
                keep_alive: 60,
                clean_session: true,
                will: None,
                username: None,
                password: None,
                properties: ConnectProperties::default(),
            })),
            true,
        ),
        (
            testdata!("v5/connect_full"),
            Packet::Connect(Box::new(Connect {
                level: V5,
                client_id: s("c1"),
                keep_alive: 10,
                clean_session: true,
                will: Some(LastWill {
                    topic: name("will/t"),
                    payload: b(b"bye"),
                    qos: QoS::AtLeastOnce,
                    retain: false,
                    properties: WillProperties {
                        payload_format_indicator: Some(PayloadFormat::Utf8),
                        message_expiry_interval: Some(60),
                        content_type: Some(s("text/plain")),
                        response_topic: Some(name("r/t")),
                        correlation_data: Some(b(b"c1")),
                        will_delay_interval: Some(5),
                        user_properties: vec![pair("a", "b")],
                    },
                }),
                username: Some(s("user")),
                password: Some(b(b"\x00\xff\x01")),
                properties: ConnectProperties {
                    session_expiry_interval: Some(3600),
                    receive_maximum: Some(nz16(20)),
                    maximum_packet_size: Some(nz32(1 << 20)),
                    topic_alias_maximum: Some(10),
                    request_response_information: Some(true),
                    request_problem_information: Some(false),
                    user_properties: vec![pair("k", "v")],
                    authentication_method: Some(s("SCRAM-SHA-256")),
                    authentication_data: Some(b(b"\x01\x02\x03")),
                },
            })),
            true,
        ),
        (
            testdata!("v5/connect_password_without_username"),
            Packet::Connect(Box::new(Connect {
                level: V5,
                client_id: s("tern"),
                keep_alive: 0,
                clean_session: true,
                will: None,
                username: None,
                password: Some(b(b"pw")),
                properties: ConnectProperties::default(),
            })),
            true,
        ),
        (
            testdata!("v5/connect_empty_client_id"),
            Packet::Connect(Box::new(Connect {
                level: V5,
                client_id: s(""),
                keep_alive: 30,
                clean_session: false,
                will: None,
                username: None,
                password: None,
                properties: ConnectProperties::default(),
            })),
            true,
        ),
        (
            testdata!("v5/connack_success"),
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: ConnectReturnCode::Accepted,
            }),
            true,
        ),
        (
            testdata!("v5/connack_properties"),
            Packet::ConnAckV5(Box::new(ConnAckV5 {
                session_present: true,
                reason: ConnectReasonCode::Success,
                properties: ConnAckProperties {
                    session_expiry_interval: Some(u32::MAX),
                    assigned_client_identifier: Some(s("auto-1")),
                    server_keep_alive: Some(30),
                    authentication_method: Some(s("SCRAM-SHA-256")),
                    authentication_data: Some(b(b"\xaa")),
                    response_information: Some(s("resp/")),
                    server_reference: Some(s("other:1883")),
                    reason_string: Some(s("welcome")),
                    receive_maximum: Some(nz16(100)),
                    topic_alias_maximum: Some(5),
                    maximum_qos: Some(QoS::AtLeastOnce),
                    retain_available: Some(false),
                    user_properties: vec![pair("x", "1"), pair("x", "2")],
                    maximum_packet_size: Some(nz32(65536)),
                    wildcard_subscription_available: Some(false),
                    subscription_identifier_available: Some(false),
                    shared_subscription_available: Some(true),
                },
            })),
            true,
        ),
        (
            testdata!("v5/connack_refused"),
            Packet::ConnAckV5(Box::new(ConnAckV5 {
                session_present: false,
                reason: ConnectReasonCode::NotAuthorized,
                properties: ConnAckProperties {
                    reason_string: Some(s("no")),
                    ..ConnAckProperties::default()
                },
            })),
            true,
        ),
        (
            testdata!("v5/connack_from_v311_server"),
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: ConnectReturnCode::UnacceptableProtocolVersion,
            }),
            true,
        ),
        (
            testdata!("v5/publish_qos0"),
            Packet::Publish(Publish {
                dup: false,
                qos_pid: QosPid::AtMostOnce,
                retain: false,
                topic: name("a/b"),
                payload: b(b"hi"),
            }),
            true,
        ),
        (
            testdata!("v5/publish_properties"),
            Packet::PublishV5(Box::new(PublishV5 {
                publish: Publish {
                    dup: false,
                    qos_pid: QosPid::AtLeastOnce(id(10)),
                    retain: false,
                    topic: name("a/b"),
                    payload: b(b"{}"),
                },
                properties: PublishProperties {
                    payload_format_indicator: Some(PayloadFormat::Utf8),
                    message_expiry_interval: Some(120),
                    content_type: Some(s("application/json")),
                    response_topic: Some(name("reply/here")),
                    correlation_data: Some(b(b"\x00\x01")),
                    subscription_identifiers: vec![sub_id(1), sub_id(MAX_VBI)],
                    topic_alias: Some(nz16(3)),
                    user_properties: vec![pair("k", "1"), pair("k", "2")],
                },
            })),
            true,
        ),
        (
            testdata!("v5/publish_alias_only"),
            Packet::PublishV5(Box::new(PublishV5 {
                publish: Publish {
                    dup: false,
                    qos_pid: QosPid::AtMostOnce,
                    retain: false,
                    topic: TopicName::empty_for_alias(),
                    payload: b(b"x"),
                },
                properties: PublishProperties {
                    topic_alias: Some(nz16(3)),
                    ..PublishProperties::default()
                },
            })),
            true,
        ),
        (
            testdata!("v5/puback_reason"),
            Packet::PubAckV5(Ack::new(id(10), PubAckReasonCode::NoMatchingSubscribers)),
            true,
        ),
        (
            testdata!("v5/puback_properties"),
            Packet::PubAckV5(Ack {
                packet_id: id(10),
                reason: PubAckReasonCode::NotAuthorized,
                properties: ReasonProperties {
                    reason_string: Some(s("denied")),
                    user_properties: vec![pair("a", "b")],
                },
            }),
            true,
        ),
        (
            testdata!("v5/puback_success_long_form"),
            Packet::PubAck(id(10)),
            false,
        ),
        (
            testdata!("v5/pubrec_error"),
            Packet::PubRecV5(Ack::new(id(11), PubRecReasonCode::UnspecifiedError)),
            true,
        ),
        (
            testdata!("v5/pubrel_not_found"),
            Packet::PubRelV5(Ack::new(id(12), PubRelReasonCode::PacketIdentifierNotFound)),
            true,
        ),
        (
            testdata!("v5/pubcomp_reason_string"),
            Packet::PubCompV5(Ack {
                packet_id: id(12),
                reason: PubCompReasonCode::Success,
                properties: reason_only("ok"),
            }),
            true,
        ),
        (
            testdata!("v5/subscribe_options"),
            Packet::SubscribeV5(SubscribeV5 {
                packet_id: id(1),
                filters: vec![
                    (
                        filter("a/+"),
                        SubscriptionOptions {
                            qos: QoS::AtLeastOnce,
                            no_local: true,
                            retain_as_published: true,
                            retain_handling: RetainHandling::DoNotSend,
                        },
                    ),
                    (
                        filter("$share/g/t"),
                        SubscriptionOptions::qos(QoS::ExactlyOnce),
                    ),
                ],
                properties: SubscribeProperties {
                    subscription_identifier: Some(sub_id(7)),
                    user_properties: vec![pair("u", "v")],
                },
            }),
            true,
        ),
        (
            testdata!("v5/subscribe_plain"),
            Packet::Subscribe(Subscribe {
                packet_id: id(10),
                filters: vec![(filter("a/b"), QoS::AtLeastOnce)],
            }),
            true,
        ),
        (
            testdata!("v5/suback_reasons"),
            Packet::SubAckV5(Box::new(SubAckV5 {
                packet_id: id(1),
                reason_codes: SubAckReasonCode::ALL.to_vec(),
                properties: reason_only("partial"),
            })),
            true,
        ),
        (
            testdata!("v5/suback_plain"),
            Packet::SubAck(SubAck {
                packet_id: id(10),
                return_codes: vec![SubscribeReturnCode::Success(QoS::AtLeastOnce)],
            }),
            true,
        ),
        (
            testdata!("v5/unsubscribe_properties"),
            Packet::UnsubscribeV5(UnsubscribeV5 {
                packet_id: id(11),
                filters: vec![filter("a/b")],
                properties: UnsubscribeProperties {
                    user_properties: vec![pair("u", "v")],
                },
            }),
            true,
        ),
        (
            testdata!("v5/unsubscribe_plain"),
            Packet::Unsubscribe(Unsubscribe {
                packet_id: id(11),
                filters: vec![filter("a/b"), filter("c/d")],
            }),
            true,
        ),
        (
            testdata!("v5/unsuback_reasons"),
            Packet::UnsubAckV5(Box::new(UnsubAckV5 {
                packet_id: id(11),
                reason_codes: UnsubAckReasonCode::ALL.to_vec(),
                properties: ReasonProperties::default(),
            })),
            true,
        ),
        (
            testdata!("v5/disconnect_with_will"),
            Packet::DisconnectV5(Box::new(DisconnectV5::new(
                DisconnectReasonCode::DisconnectWithWillMessage,
            ))),
            true,
        ),
        (
            testdata!("v5/disconnect_server_moved"),
            Packet::DisconnectV5(Box::new(DisconnectV5 {
                reason: DisconnectReasonCode::UseAnotherServer,
                properties: DisconnectProperties {
                    session_expiry_interval: None,
                    server_reference: Some(s("other:1883")),
                    reason_string: Some(s("move")),
                    user_properties: vec![pair("a", "b")],
                },
            })),
            true,
        ),
        (
            testdata!("v5/disconnect_session_expiry"),
            Packet::DisconnectV5(Box::new(DisconnectV5 {
                reason: DisconnectReasonCode::NormalDisconnection,
                properties: DisconnectProperties {
                    session_expiry_interval: Some(0),
                    ..DisconnectProperties::default()
                },
            })),
            true,
        ),
        (
            testdata!("v5/disconnect_normal_long_form"),
            Packet::Disconnect,
            false,
        ),
        (
            testdata!("v5/auth_continue"),
            Packet::Auth(Box::new(Auth {
                reason: AuthReasonCode::ContinueAuthentication,
                properties: AuthProperties {
                    authentication_method: Some(s("SCRAM-SHA-256")),
                    authentication_data: Some(b(b"r=abc")),
                    reason_string: Some(s("step")),
                    user_properties: vec![],
                },
            })),
            true,
        ),
        (
            testdata!("v5/auth_success"),
            Packet::Auth(Box::new(Auth {
                reason: AuthReasonCode::Success,
                properties: AuthProperties::default(),
            })),
            true,
        ),
    ]
}

/// Malformed MQTT 5 files, the level they are read at, and the error they must give.
fn malformed() -> Vec<((&'static str, &'static str), ProtocolLevel, DecodeError)> {
    use DecodeError as E;
    use PacketType as T;
    use PropertyId as P;
    let scope = PropertyScope::Packet;
    let range = |packet, property, value, rule| E::PropertyOutOfRange {
        scope: scope(packet),
        property,
        value,
        rule,
    };
    vec![
        (
            testdata!("malformed_v5/connect_unknown_property"),
            V5,
            E::UnknownProperty {
                scope: scope(T::Connect),
                id: 4,
            },
        ),
        (
            testdata!("malformed_v5/connect_will_delay_in_connect"),
            V5,
            E::PropertyNotAllowed {
                scope: scope(T::Connect),
                property: P::WillDelayInterval,
            },
        ),
        (
            testdata!("malformed_v5/connect_duplicate_session_expiry"),
            V5,
            E::DuplicateProperty {
                scope: scope(T::Connect),
                property: P::SessionExpiryInterval,
            },
        ),
        (
            testdata!("malformed_v5/connect_receive_maximum_0"),
            V5,
            range(
                T::Connect,
                P::ReceiveMaximum,
                0,
                "must not be 0 (§3.1.2.11.3)",
            ),
        ),
        (
            testdata!("malformed_v5/connect_auth_data_without_method"),
            V5,
            E::AuthenticationDataWithoutMethod {
                scope: scope(T::Connect),
            },
        ),
        (
            testdata!("malformed_v5/connect_will_topic_alias"),
            V5,
            E::PropertyNotAllowed {
                scope: PropertyScope::Will,
                property: P::TopicAlias,
            },
        ),
        (
            testdata!("malformed_v5/connack_maximum_qos_2"),
            V5,
            range(T::ConnAck, P::MaximumQoS, 2, "must be 0 or 1 (§3.2.2.3.4)"),
        ),
        (
            testdata!("malformed_v5/connack_reason_0x04"),
            V5,
            E::InvalidReasonCode {
                packet: T::ConnAck,
                code: 4,
            },
        ),
        (
            testdata!("malformed_v5/connack_session_present_on_refusal"),
            V5,
            E::SessionPresentOnRefusal { code: 0x80 },
        ),
        (
            testdata!("malformed_v5/connack_missing_property_length"),
            V5,
            E::Truncated {
                packet: T::ConnAck,
                field: "property length",
                needed: 1,
            },
        ),
        (
            testdata!("malformed_v5/connack_retain_available_2"),
            V5,
            range(
                T::ConnAck,
                P::RetainAvailable,
                2,
                "must be 0 or 1 (§3.2.2.3.5)",
            ),
        ),
        (
            testdata!("malformed_v5/publish_empty_topic_without_alias"),
            V5,
            E::EmptyTopicWithoutAlias,
        ),
        (
            testdata!("malformed_v5/publish_topic_alias_0"),
            V5,
            range(T::Publish, P::TopicAlias, 0, "must not be 0 [MQTT-3.3.2-8]"),
        ),
        (
            testdata!("malformed_v5/publish_reason_string"),
            V5,
            E::PropertyNotAllowed {
                scope: scope(T::Publish),
                property: P::ReasonString,
            },
        ),
        (
            testdata!("malformed_v5/publish_subscription_id_0"),
            V5,
            range(
                T::Publish,
                P::SubscriptionIdentifier,
                0,
                "must not be 0 (§3.8.2.1.2)",
            ),
        ),
        (
            testdata!("malformed_v5/publish_payload_format_2"),
            V5,
            range(
                T::Publish,
                P::PayloadFormatIndicator,
                2,
                "must be 0 or 1 (§3.3.2.3.2)",
            ),
        ),
        (
            testdata!("malformed_v5/publish_response_topic_wildcard"),
            V5,
            E::InvalidTopic {
                packet: T::Publish,
                field: "Response Topic",
                source: TopicError::WildcardInName {
                    wildcard: '#',
                    at: 2,
                },
            },
        ),
        (
            testdata!("malformed_v5/publish_property_length_overflows"),
            V5,
            E::Truncated {
                packet: T::Publish,
                field: "properties",
                needed: 6,
            },
        ),
        (
            testdata!("malformed_v5/publish_property_length_5_bytes"),
            V5,
            E::MalformedVbi {
                packet: T::Publish,
                field: "property length",
            },
        ),
        (
            testdata!("malformed_v5/publish_property_id_padded"),
            V5,
            E::NonMinimalVbi {
                packet: T::Publish,
                field: "property identifier",
            },
        ),
        (
            testdata!("malformed_v5/publish_user_property_invalid_utf8"),
            V5,
            E::InvalidString {
                packet: T::Publish,
                field: "User Property name",
                source: StringError::InvalidUtf8 { valid_up_to: 0 },
            },
        ),
        (
            testdata!("malformed_v5/puback_reason_0x92"),
            V5,
            E::InvalidReasonCode {
                packet: T::PubAck,
                code: 0x92,
            },
        ),
        (
            testdata!("malformed_v5/pubrel_reason_0x10"),
            V5,
            E::InvalidReasonCode {
                packet: T::PubRel,
                code: 0x10,
            },
        ),
        (
            testdata!("malformed_v5/puback_trailing_byte"),
            V5,
            E::TrailingBytes {
                packet: T::PubAck,
                extra: 1,
            },
        ),
        (
            testdata!("malformed_v5/puback_duplicate_reason_string"),
            V5,
            E::DuplicateProperty {
                scope: scope(T::PubAck),
                property: P::ReasonString,
            },
        ),
        (
            testdata!("malformed_v5/subscribe_options_reserved_bits"),
            V5,
            E::InvalidSubscriptionOptions {
                byte: 0x41,
                reason: "reserved bits 6-7 set [MQTT-3.8.3-5]",
            },
        ),
        (
            testdata!("malformed_v5/subscribe_retain_handling_3"),
            V5,
            E::InvalidSubscriptionOptions {
                byte: 0x30,
                reason: "Retain Handling 3 (§3.8.3.1)",
            },
        ),
        (
            testdata!("malformed_v5/subscribe_no_local_shared"),
            V5,
            E::NoLocalOnSharedSubscription {
                filter: "$share/g/a".into(),
            },
        ),
        (
            testdata!("malformed_v5/subscribe_duplicate_subscription_id"),
            V5,
            E::DuplicateProperty {
                scope: scope(T::Subscribe),
                property: P::SubscriptionIdentifier,
            },
        ),
        (
            testdata!("malformed_v5/suback_reason_0x03"),
            V5,
            E::InvalidReasonCode {
                packet: T::SubAck,
                code: 3,
            },
        ),
        (
            testdata!("malformed_v5/unsuback_no_codes"),
            V5,
            E::NoReasonCodes {
                packet: T::UnsubAck,
            },
        ),
        (
            testdata!("malformed_v5/unsuback_short"),
            V5,
            E::Truncated {
                packet: T::UnsubAck,
                field: "property length",
                needed: 1,
            },
        ),
        (
            testdata!("malformed_v5/disconnect_reason_0x01"),
            V5,
            E::InvalidReasonCode {
                packet: T::Disconnect,
                code: 1,
            },
        ),
        (
            testdata!("malformed_v5/disconnect_topic_alias"),
            V5,
            E::PropertyNotAllowed {
                scope: scope(T::Disconnect),
                property: P::TopicAlias,
            },
        ),
        (
            testdata!("malformed_v5/auth_reason_0x01"),
            V5,
            E::InvalidReasonCode {
                packet: T::Auth,
                code: 1,
            },
        ),
        (
            testdata!("malformed_v5/auth_flags_0001"),
            V5,
            E::ReservedFlags {
                packet: T::Auth,
                flags: 1,
            },
        ),
        (
            testdata!("malformed_v5/auth_at_level_4"),
            ProtocolLevel::V3_1_1,
            E::ReservedPacketType { nibble: 15 },
        ),
        (
            testdata!("malformed_v5/pingreq_padded_length"),
            V5,
            E::NonMinimalVbi {
                packet: T::PingReq,
                field: "remaining length",
            },
        ),
    ]
}

#[test]
fn v5_vectors_decode_to_their_packets() {
    for (file, packet, _) in vectors() {
        let bytes = hex(file.1);
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(decoder().decode(&mut buf), Ok(Some(packet)), "{}", file.0);
        assert!(buf.is_empty(), "{}: bytes left", file.0);
        for cut in 0..bytes.len() {
            assert_eq!(decode_one(&bytes[..cut]), Ok(None), "{}[..{cut}]", file.0);
        }
    }
}

#[test]
fn v5_vectors_encode_to_their_bytes() {
    for (file, packet, canonical) in vectors() {
        let bytes = hex(file.1);
        let out = encode_v5(&packet).unwrap_or_else(|e| panic!("{}: {e}", file.0));
        assert_eq!(out.len(), packet.encoded_len_for(V5), "{}", file.0);
        if canonical {
            assert_eq!(out, bytes, "{}", file.0);
        }
        // Either way the bytes written decode to the same packet.
        assert_eq!(decode_one(&out), Ok(Some(packet)), "{} re-decoded", file.0);
    }
}

#[test]
fn v5_malformed_files_give_their_named_errors() {
    check_malformed(malformed());
}

#[test]
fn every_v5_testdata_file_is_checked() {
    let mut listed: Vec<String> = vectors().iter().map(|v| v.0.0.to_owned()).collect();
    listed.extend(malformed().iter().map(|m| m.0.0.to_owned()));
    check_every_file_listed(&["v5", "malformed_v5"], &listed);
}

#[test]
fn errors_name_the_property_and_the_rule() {
    let e = DecodeError::DuplicateProperty {
        scope: PropertyScope::Packet(PacketType::Connect),
        property: PropertyId::SessionExpiryInterval,
    };
    assert_eq!(
        e.to_string(),
        "CONNECT carries Session Expiry Interval (0x11) more than once (Protocol Error, §2.2.2.2)"
    );
    let e = DecodeError::PropertyNotAllowed {
        scope: PropertyScope::Will,
        property: PropertyId::TopicAlias,
    };
    assert_eq!(
        e.to_string(),
        "CONNECT Will Properties may not carry Topic Alias (0x23) (Malformed Packet, §2.2.2.2)"
    );
    let e = DecodeError::InvalidReasonCode {
        packet: PacketType::PubAck,
        code: 0x92,
    };
    assert_eq!(
        e.to_string(),
        "PUBACK reason code 0x92 is not one of its reason codes [MQTT-3.4.2-1]"
    );
}

// ---- every reason code of every packet

/// Bytes of a packet of type `first` whose body is `body`.
fn framed(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.extend_from_slice(&[first]);
    write::put_vbi(&mut out, body.len());
    out.extend_from_slice(body);
    out.to_vec()
}

/// The reason code a decoded packet carries, as a byte, for the packets that carry one.
fn reason_of(packet: &Packet) -> Option<Vec<u8>> {
    Some(match packet {
        Packet::ConnAck(c) if c.code == ConnectReturnCode::Accepted => vec![0],
        Packet::ConnAckV5(c) => vec![c.reason as u8],
        Packet::PubAck(_)
        | Packet::PubRec(_)
        | Packet::PubRel(_)
        | Packet::PubComp(_)
        | Packet::Disconnect => vec![0],
        Packet::PubAckV5(a) | Packet::PubRecV5(a) => vec![a.reason as u8],
        Packet::PubRelV5(a) | Packet::PubCompV5(a) => vec![a.reason as u8],
        Packet::SubAck(a) => a.return_codes.iter().map(|c| c.to_u8()).collect(),
        Packet::SubAckV5(a) => a.reason_codes.iter().map(|c| *c as u8).collect(),
        Packet::UnsubAckV5(a) => a.reason_codes.iter().map(|c| *c as u8).collect(),
        Packet::DisconnectV5(d) => vec![d.reason as u8],
        Packet::Auth(a) => vec![a.reason as u8],
        _ => return None,
    })
}

#[test]
fn every_byte_is_a_listed_reason_code_or_a_named_error_in_every_packet() {
    /// Packet type, first byte, a body with the code at index `at`, `at`, the table's bytes.
    type Case = (PacketType, u8, Vec<u8>, usize, Vec<u8>);
    let cases: Vec<Case> = vec![
        (
            PacketType::ConnAck,
            0x20,
            vec![0, 0xff, 0],
            1,
            ConnectReasonCode::ALL.iter().map(|c| *c as u8).collect(),
        ),
        (
            PacketType::PubAck,
            0x40,
            vec![0, 1, 0xff],
            2,
            PubAckReasonCode::ALL.iter().map(|c| *c as u8).collect(),
        ),
        (
            PacketType::PubRec,
            0x50,
            vec![0, 1, 0xff],
            2,
            PubRecReasonCode::ALL.iter().map(|c| *c as u8).collect(),
        ),
        (
            PacketType::PubRel,
            0x62,
            vec![0, 1, 0xff],
            2,
            PubRelReasonCode::ALL.iter().map(|c| *c as u8).collect(),
        ),
        (
            PacketType::PubComp,
            0x70,
            vec![0, 1, 0xff],
            2,
            PubCompReasonCode::ALL.iter().map(|c| *c as u8).collect(),
        ),
        (
            PacketType::SubAck,
            0x90,
            vec![0, 1, 0, 0xff],
            3,
            SubAckReasonCode::ALL.iter().map(|c| *c as u8).collect(),
        ),
        (
            PacketType::UnsubAck,
            0xb0,
            vec![0, 1, 0, 0xff],
            3,
            UnsubAckReasonCode::ALL.iter().map(|c| *c as u8).collect(),
        ),
        (
            PacketType::Disconnect,
            0xe0,
            vec![0xff],
            0,
            DisconnectReasonCode::ALL.iter().map(|c| *c as u8).collect(),
        ),
        (
            PacketType::Auth,
            0xf0,
            vec![0xff, 0],
            0,
            AuthReasonCode::ALL.iter().map(|c| *c as u8).collect(),
        ),
    ];
    for (packet, first, mut body, at, table) in cases {
        for byte in 0..=u8::MAX {
            body[at] = byte;
            let bytes = framed(first, &body);
            let got = decode_one(&bytes);
            if table.contains(&byte) {
                let decoded = got
                    .unwrap_or_else(|e| panic!("{packet} code {byte:#04x}: {e}"))
                    .unwrap();
                assert_eq!(decoded.packet_type(), packet);
                assert_eq!(
                    reason_of(&decoded),
                    Some(vec![byte]),
                    "{packet} {byte:#04x}"
                );
                // And back: the packet encodes to bytes that decode to it again.
                let again = encode_v5(&decoded).unwrap();
                assert_eq!(
                    decode_one(&again),
                    Ok(Some(decoded)),
                    "{packet} {byte:#04x}"
                );
            } else {
                assert_eq!(
                    got,
                    Err(DecodeError::InvalidReasonCode { packet, code: byte }),
                    "{packet} {byte:#04x}"
                );
            }
        }
    }
}

#[test]
fn every_reason_code_has_its_standard_name() {
    assert_eq!(
        ConnectReasonCode::QoSNotSupported.name(),
        "QoS not supported"
    );
    assert_eq!(
        SubAckReasonCode::WildcardSubscriptionsNotSupported.name(),
        "Wildcard Subscriptions not supported"
    );
    assert_eq!(AuthReasonCode::ReAuthenticate.name(), "Re-authenticate");
    for code in DisconnectReasonCode::ALL {
        assert!(!code.name().is_empty());
        assert_eq!(code.is_error(), (*code as u8) >= 0x80);
    }
}

// ---- every property in every block

/// A valid value for a property of `kind`, encoded (identifier not included).
fn sample_value(kind: PropertyKind) -> Vec<u8> {
    match kind {
        PropertyKind::Byte => vec![1],
        PropertyKind::TwoByteInteger => vec![0, 5],
        PropertyKind::FourByteInteger => vec![0, 0, 0, 5],
        PropertyKind::VariableByteInteger => vec![5],
        PropertyKind::Utf8 => b"\x00\x01r".to_vec(),
        PropertyKind::Binary => b"\x00\x01\xff".to_vec(),
        PropertyKind::StringPair => b"\x00\x01k\x00\x01v".to_vec(),
    }
}

/// Every property block, and a packet holding `props` (Property Length included) in it.
fn packet_with(scope: PropertyScope, props: &[u8]) -> Vec<u8> {
    let cat = |parts: &[&[u8]]| parts.concat();
    let connect_head: &[u8] = b"\x00\x04MQTT\x05";
    match scope {
        PropertyScope::Will => framed(
            0x10,
            &cat(&[
                connect_head,
                b"\x06\x00\x3c\x00\x00\x01c",
                props,
                b"\x00\x01t\x00\x00",
            ]),
        ),
        PropertyScope::Packet(p) => match p {
            PacketType::Connect => framed(
                0x10,
                &cat(&[connect_head, b"\x02\x00\x3c", props, b"\x00\x01c"]),
            ),
            PacketType::ConnAck => framed(0x20, &cat(&[b"\x00\x00", props])),
            PacketType::Publish => framed(0x30, &cat(&[b"\x00\x01a", props])),
            PacketType::PubAck => framed(0x40, &cat(&[b"\x00\x01\x00", props])),
            PacketType::PubRec => framed(0x50, &cat(&[b"\x00\x01\x00", props])),
            PacketType::PubRel => framed(0x62, &cat(&[b"\x00\x01\x00", props])),
            PacketType::PubComp => framed(0x70, &cat(&[b"\x00\x01\x00", props])),
            PacketType::Subscribe => framed(0x82, &cat(&[b"\x00\x01", props, b"\x00\x01a\x00"])),
            PacketType::SubAck => framed(0x90, &cat(&[b"\x00\x01", props, b"\x00"])),
            PacketType::Unsubscribe => framed(0xa2, &cat(&[b"\x00\x01", props, b"\x00\x01a"])),
            PacketType::UnsubAck => framed(0xb0, &cat(&[b"\x00\x01", props, b"\x00"])),
            PacketType::Disconnect => framed(0xe0, &cat(&[b"\x00", props])),
            PacketType::Auth => framed(0xf0, &cat(&[b"\x18", props])),
            PacketType::PingReq | PacketType::PingResp => unreachable!("no properties"),
        },
    }
}

const SCOPES: &[PropertyScope] = &[
    PropertyScope::Packet(PacketType::Connect),
    PropertyScope::Will,
    PropertyScope::Packet(PacketType::ConnAck),
    PropertyScope::Packet(PacketType::Publish),
    PropertyScope::Packet(PacketType::PubAck),
    PropertyScope::Packet(PacketType::PubRec),
    PropertyScope::Packet(PacketType::PubRel),
    PropertyScope::Packet(PacketType::PubComp),
    PropertyScope::Packet(PacketType::Subscribe),
    PropertyScope::Packet(PacketType::SubAck),
    PropertyScope::Packet(PacketType::Unsubscribe),
    PropertyScope::Packet(PacketType::UnsubAck),
    PropertyScope::Packet(PacketType::Disconnect),
    PropertyScope::Packet(PacketType::Auth),
];

fn block(entries: &[Vec<u8>]) -> Vec<u8> {
    let body = entries.concat();
    let mut out = BytesMut::new();
    write::put_vbi(&mut out, body.len());
    out.extend_from_slice(&body);
    out.to_vec()
}

#[test]
fn every_property_is_accepted_where_the_table_allows_it_and_refused_elsewhere() {
    let mut accepted = 0;
    for &property in PropertyId::ALL {
        let mut entry = vec![property as u8];
        entry.extend(sample_value(property.kind()));
        // Authentication Data is only valid with a method beside it.
        let method = [&[PropertyId::AuthenticationMethod as u8][..], b"\x00\x01m"].concat();
        let needs_method = property == PropertyId::AuthenticationData;
        for &scope in SCOPES {
            let mut once = vec![entry.clone()];
            if needs_method && property.allowed_in(scope) {
                once.push(method.clone());
            }
            let got = decode_one(&packet_with(scope, &block(&once)));
            if property.allowed_in(scope) {
                let packet = got
                    .unwrap_or_else(|e| panic!("{property} in {scope}: {e}"))
                    .unwrap();
                let again = encode_v5(&packet).unwrap();
                assert_eq!(
                    decode_one(&again),
                    Ok(Some(packet)),
                    "{property} in {scope}"
                );
                accepted += 1;
                // Twice: fine for the repeatable ones, a Protocol Error for the others.
                let mut twice = once.clone();
                twice.push(entry.clone());
                let got = decode_one(&packet_with(scope, &block(&twice)));
                if property.repeatable_in(scope) {
                    assert!(
                        matches!(got, Ok(Some(_))),
                        "{property} twice in {scope}: {got:?}"
                    );
                } else {
                    assert_eq!(
                        got,
                        Err(DecodeError::DuplicateProperty { scope, property }),
                        "{property} twice in {scope}"
                    );
                }
            } else {
                assert_eq!(
                    got,
                    Err(DecodeError::PropertyNotAllowed { scope, property }),
                    "{property} in {scope}"
                );
            }
        }
    }
    // The table's cells: 64 (property, block) pairs.
    assert_eq!(accepted, 64);
}

#[test]
fn unknown_property_identifiers_are_malformed_in_every_block() {
    for &scope in SCOPES {
        for id in [0x00u8, 0x04, 0x0a, 0x2b, 0x7f] {
            let got = decode_one(&packet_with(scope, &block(&[vec![id, 0]])));
            assert_eq!(
                got,
                Err(DecodeError::UnknownProperty {
                    scope,
                    id: u32::from(id)
                }),
                "{id:#04x} in {scope}"
            );
        }
    }
}

#[test]
fn user_properties_keep_their_order_and_repeats() {
    let entries: Vec<Vec<u8>> = [("b", "1"), ("a", "2"), ("b", "3")]
        .iter()
        .map(|(k, v)| [&[0x26u8][..], &[0, 1], k.as_bytes(), &[0, 1], v.as_bytes()].concat())
        .collect();
    let got = decode_one(&packet_with(
        PropertyScope::Packet(PacketType::Disconnect),
        &block(&entries),
    ));
    let Ok(Some(Packet::DisconnectV5(d))) = got else {
        panic!("{got:?}")
    };
    assert_eq!(
        d.properties.user_properties,
        vec![pair("b", "1"), pair("a", "2"), pair("b", "3")]
    );
}

// ---- levels 3 and 4 are untouched

#[test]
fn level_5_content_is_refused_below_level_5() {
    let v5_only = [
        Packet::PubAckV5(Ack::new(id(1), PubAckReasonCode::QuotaExceeded)),
        Packet::Auth(Box::new(Auth {
            reason: AuthReasonCode::ReAuthenticate,
            properties: AuthProperties::default(),
        })),
        Packet::PublishV5(Box::new(PublishV5 {
            publish: Publish {
                dup: false,
                qos_pid: QosPid::AtMostOnce,
                retain: false,
                topic: name("t"),
                payload: Bytes::new(),
            },
            properties: PublishProperties {
                message_expiry_interval: Some(1),
                ..PublishProperties::default()
            },
        })),
    ];
    for packet in v5_only {
        for level in [ProtocolLevel::V3_1, ProtocolLevel::V3_1_1] {
            let mut out = BytesMut::new();
            let got = packet.encode_for(level, &mut out);
            assert!(
                matches!(got, Err(EncodeError::NotInLevel { .. })),
                "{packet:?} at {level}: {got:?}"
            );
            assert!(out.is_empty());
        }
    }
    // A 3.1.1 CONNECT with properties cannot be sent.
    let connect = Packet::Connect(Box::new(Connect {
        level: ProtocolLevel::V3_1_1,
        client_id: s("c"),
        keep_alive: 0,
        clean_session: true,
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties {
            session_expiry_interval: Some(1),
            ..ConnectProperties::default()
        },
    }));
    assert!(matches!(
        encode_v5(&connect),
        Err(EncodeError::NotInLevel { .. })
    ));
}

#[test]
fn the_shared_forms_differ_on_the_wire_at_level_5() {
    let publish = Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtLeastOnce(id(7)),
        retain: false,
        topic: name("a"),
        payload: b(b"p"),
    });
    let mut v4 = BytesMut::new();
    publish.encode_for(ProtocolLevel::V3_1_1, &mut v4).unwrap();
    assert_eq!(&v4[..], b"\x32\x06\x00\x01a\x00\x07p");
    assert_eq!(
        encode_v5(&publish).unwrap(),
        b"\x32\x07\x00\x01a\x00\x07\x00p"
    );
    // What a level-4 decoder makes of level-5 bytes is not the same packet.
    let mut buf = BytesMut::from(&encode_v5(&publish).unwrap()[..]);
    let got = Decoder::new(ProtocolLevel::V3_1_1, 1024).decode(&mut buf);
    assert_ne!(got, Ok(Some(publish)));
    // UNSUBACK has no level-5 form without codes.
    assert!(matches!(
        encode_v5(&Packet::UnsubAck(id(1))),
        Err(EncodeError::NotInLevel { .. })
    ));
}

#[test]
fn encoder_refusals_at_level_5() {
    let shared = Packet::SubscribeV5(SubscribeV5 {
        packet_id: id(1),
        filters: vec![(
            filter("$share/g/t"),
            SubscriptionOptions {
                no_local: true,
                ..SubscriptionOptions::default()
            },
        )],
        properties: SubscribeProperties::default(),
    });
    assert_eq!(
        encode_v5(&shared),
        Err(EncodeError::NoLocalOnSharedSubscription {
            filter: "$share/g/t".into()
        })
    );
    let alias_less = Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: TopicName::empty_for_alias(),
        payload: Bytes::new(),
    });
    assert_eq!(
        encode_v5(&alias_less),
        Err(EncodeError::EmptyTopicWithoutAlias)
    );
    let alias_less = Packet::PublishV5(Box::new(PublishV5 {
        publish: Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic: TopicName::empty_for_alias(),
            payload: Bytes::new(),
        },
        properties: PublishProperties {
            content_type: Some(s("text/plain")),
            ..PublishProperties::default()
        },
    }));
    assert_eq!(
        encode_v5(&alias_less),
        Err(EncodeError::EmptyTopicWithoutAlias)
    );
    let max_qos_2 = Packet::ConnAckV5(Box::new(ConnAckV5 {
        session_present: false,
        reason: ConnectReasonCode::Success,
        properties: ConnAckProperties {
            maximum_qos: Some(QoS::ExactlyOnce),
            ..ConnAckProperties::default()
        },
    }));
    assert!(matches!(
        encode_v5(&max_qos_2),
        Err(EncodeError::PropertyOutOfRange {
            property: PropertyId::MaximumQoS,
            ..
        })
    ));
    let data_only = Packet::Auth(Box::new(Auth {
        reason: AuthReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_data: Some(b(b"x")),
            ..AuthProperties::default()
        },
    }));
    assert_eq!(
        encode_v5(&data_only),
        Err(EncodeError::AuthenticationDataWithoutMethod {
            scope: PropertyScope::Packet(PacketType::Auth)
        })
    );
    let refused = Packet::ConnAckV5(Box::new(ConnAckV5 {
        session_present: true,
        reason: ConnectReasonCode::Banned,
        properties: ConnAckProperties::default(),
    }));
    assert_eq!(
        encode_v5(&refused),
        Err(EncodeError::SessionPresentOnRefusal { code: 0x8a })
    );
    let empty = Packet::SubAckV5(Box::new(SubAckV5 {
        packet_id: id(1),
        reason_codes: vec![],
        properties: ReasonProperties::default(),
    }));
    assert_eq!(
        encode_v5(&empty),
        Err(EncodeError::NoReasonCodes {
            packet: PacketType::SubAck
        })
    );
}

#[test]
fn a_3_1_1_session_pays_nothing_for_properties() {
    // A PUBLISH without properties is the same packet at both levels: no property block
    // in memory, and the packet enum is no larger than a PUBLISH.
    let v4 = b"\x32\x06\x00\x01a\x00\x07p";
    let v5 = b"\x32\x07\x00\x01a\x00\x07\x00p";
    let mut buf = BytesMut::from(&v4[..]);
    let at_4 = Decoder::new(ProtocolLevel::V3_1_1, 64).decode(&mut buf);
    assert!(matches!(at_4, Ok(Some(Packet::Publish(_)))));
    assert_eq!(decode_one(v5), at_4);
    assert_eq!(size_of::<Packet>(), size_of::<Publish>());
}

// ---- proptest: every v5 packet with arbitrary properties survives encode -> decode

proptest! {
    #[test]
    fn every_v5_packet_round_trips(packet in strategy::v5::packet()) {
        let mut out = BytesMut::new();
        packet.encode_for(V5, &mut out).unwrap();
        prop_assert_eq!(out.len(), packet.encoded_len_for(V5));
        let bytes = out.to_vec();
        prop_assert_eq!(decoder().decode(&mut out), Ok(Some(packet.clone())));
        prop_assert!(out.is_empty());
        for cut in 0..bytes.len() {
            prop_assert_eq!(decode_one(&bytes[..cut]), Ok(None));
        }
    }
}
