//! Codec tests: the vectors in `testdata/` (both levels), malformed inputs with their named
//! errors, remaining-length boundaries, encoder refusals, and proptest properties (round trip,
//! streams split anywhere, strict prefixes).

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::text::{MqttString, StringError};
use crate::topic::{TopicError, TopicFilter, TopicName};

use ProtocolLevel::{V3_1, V3_1_1};

const BOTH: &[ProtocolLevel] = &[V3_1, V3_1_1];
const ONLY_V311: &[ProtocolLevel] = &[V3_1_1];
const ONLY_V31: &[ProtocolLevel] = &[V3_1];
/// The short forms MQTT 5 shares (acks without a reason, pings, an empty DISCONNECT).
const ALL_LEVELS: &[ProtocolLevel] = &[V3_1, V3_1_1, ProtocolLevel::V5];

/// Parses the hex text of a `testdata` file: pairs of hex digits, whitespace ignored, `#`
/// starts a comment running to the end of the line.
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| line.bytes().filter(|b| !b.is_ascii_whitespace()))
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// `(name, hex text)` of `testdata/NAME.hex`, embedded at compile time.
macro_rules! testdata {
    ($file:literal) => {
        (
            $file,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../testdata/",
                $file,
                ".hex"
            )),
        )
    };
}
pub(super) use testdata;

pub(super) fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}
pub(super) fn s(text: &str) -> MqttString {
    MqttString::new(text).unwrap()
}
pub(super) fn name(text: &str) -> TopicName {
    TopicName::new(text).unwrap()
}
pub(super) fn filter(text: &str) -> TopicFilter {
    TopicFilter::new(text).unwrap()
}
pub(super) fn b(bytes: &'static [u8]) -> Bytes {
    Bytes::from_static(bytes)
}

fn decoder(level: ProtocolLevel) -> Decoder {
    Decoder::new(level, DEFAULT_MAX_PACKET_SIZE)
}

fn encode(packet: &Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    packet.encode(&mut out).unwrap();
    out.to_vec()
}

fn connect_minimal(level: ProtocolLevel) -> Packet {
    Packet::Connect(Box::new(Connect {
        level,
        client_id: s("tern"),
        keep_alive: 60,
        clean_session: true,
        will: None,
        username: None,
        password: None,
        properties: Default::default(),
    }))
}

/// A valid vector: file, the levels it is valid at, the packet, and whether encoding the
/// packet gives back exactly the file's bytes.
struct Vector {
    file: (&'static str, &'static str),
    levels: &'static [ProtocolLevel],
    packet: Packet,
    canonical: bool,
}

fn vectors() -> Vec<Vector> {
    let v = |file, levels, packet| Vector {
        file,
        levels,
        packet,
        canonical: true,
    };
    vec![
        v(
            testdata!("v311/connect_minimal"),
            BOTH,
            connect_minimal(V3_1_1),
        ),
        v(
            testdata!("v311/connect_full"),
            BOTH,
            Packet::Connect(Box::new(Connect {
                level: V3_1_1,
                client_id: s("c1"),
                keep_alive: 10,
                clean_session: true,
                will: Some(LastWill {
                    topic: name("will/t"),
                    payload: b(b"bye"),
                    qos: QoS::AtLeastOnce,
                    retain: false,
                    properties: Default::default(),
                }),
                username: Some(s("user")),
                password: Some(b(b"\x00\xff\x01")),
                properties: Default::default(),
            })),
        ),
        v(
            testdata!("v311/connect_empty_client_id"),
            BOTH,
            Packet::Connect(Box::new(Connect {
                level: V3_1_1,
                client_id: s(""),
                keep_alive: 0,
                clean_session: true,
                will: None,
                username: None,
                password: None,
                properties: Default::default(),
            })),
        ),
        v(
            testdata!("v311/connack_accepted"),
            BOTH,
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: ConnectReturnCode::Accepted,
            }),
        ),
        v(
            testdata!("v311/connack_session_present"),
            ONLY_V311,
            Packet::ConnAck(ConnAck {
                session_present: true,
                code: ConnectReturnCode::Accepted,
            }),
        ),
        v(
            testdata!("v311/connack_not_authorized"),
            BOTH,
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: ConnectReturnCode::NotAuthorized,
            }),
        ),
        v(
            testdata!("v311/publish_qos0"),
            BOTH,
            Packet::Publish(Publish {
                dup: false,
                qos_pid: QosPid::AtMostOnce,
                retain: false,
                topic: name("a/b"),
                payload: b(b"hi"),
            }),
        ),
        v(
            testdata!("v311/publish_qos1"),
            BOTH,
            Packet::Publish(Publish {
                dup: false,
                qos_pid: QosPid::AtLeastOnce(id(10)),
                retain: false,
                topic: name("a/b"),
                payload: b(b"hello"),
            }),
        ),
        v(
            testdata!("v311/publish_qos2_dup_retain"),
            BOTH,
            Packet::Publish(Publish {
                dup: true,
                qos_pid: QosPid::ExactlyOnce(id(65535)),
                retain: true,
                topic: name("a/b"),
                payload: Bytes::new(),
            }),
        ),
        v(testdata!("v311/puback"), ALL_LEVELS, Packet::PubAck(id(10))),
        v(testdata!("v311/pubrec"), ALL_LEVELS, Packet::PubRec(id(10))),
        v(testdata!("v311/pubrel"), ALL_LEVELS, Packet::PubRel(id(10))),
        v(
            testdata!("v311/pubcomp"),
            ALL_LEVELS,
            Packet::PubComp(id(10)),
        ),
        v(
            testdata!("v311/subscribe"),
            BOTH,
            Packet::Subscribe(Subscribe {
                packet_id: id(10),
                filters: vec![
                    (filter("a/b"), QoS::AtLeastOnce),
                    (filter("c/d"), QoS::ExactlyOnce),
                ],
            }),
        ),
        v(
            testdata!("v311/subscribe_wildcards"),
            BOTH,
            Packet::Subscribe(Subscribe {
                packet_id: id(1),
                filters: vec![
                    (filter("sport/+/player1"), QoS::AtMostOnce),
                    (filter("#"), QoS::AtLeastOnce),
                ],
            }),
        ),
        v(
            testdata!("v311/suback_with_failure"),
            ONLY_V311,
            Packet::SubAck(SubAck {
                packet_id: id(10),
                return_codes: vec![
                    SubscribeReturnCode::Success(QoS::AtMostOnce),
                    SubscribeReturnCode::Success(QoS::AtLeastOnce),
                    SubscribeReturnCode::Success(QoS::ExactlyOnce),
                    SubscribeReturnCode::Failure,
                ],
            }),
        ),
        v(
            testdata!("v311/suback_granted"),
            BOTH,
            Packet::SubAck(SubAck {
                packet_id: id(10),
                return_codes: vec![SubscribeReturnCode::Success(QoS::AtLeastOnce)],
            }),
        ),
        v(
            testdata!("v311/unsubscribe"),
            BOTH,
            Packet::Unsubscribe(Unsubscribe {
                packet_id: id(10),
                filters: vec![filter("a/b"), filter("c/d")],
            }),
        ),
        v(testdata!("v311/unsuback"), BOTH, Packet::UnsubAck(id(10))),
        v(testdata!("v311/pingreq"), ALL_LEVELS, Packet::PingReq),
        v(testdata!("v311/pingresp"), ALL_LEVELS, Packet::PingResp),
        v(testdata!("v311/disconnect"), ALL_LEVELS, Packet::Disconnect),
        v(
            testdata!("v31/connect_minimal"),
            BOTH,
            connect_minimal(V3_1),
        ),
        v(
            testdata!("v31/connect_full"),
            BOTH,
            Packet::Connect(Box::new(Connect {
                level: V3_1,
                client_id: s("tern"),
                keep_alive: 60,
                clean_session: true,
                will: Some(LastWill {
                    topic: name("t/w"),
                    payload: b(b"gone"),
                    qos: QoS::ExactlyOnce,
                    retain: true,
                    properties: Default::default(),
                }),
                username: Some(s("u")),
                password: Some(b(b"p")),
                properties: Default::default(),
            })),
        ),
        v(
            testdata!("v31/connect_password_without_username"),
            BOTH,
            Packet::Connect(Box::new(Connect {
                level: V3_1,
                client_id: s("tern"),
                keep_alive: 60,
                clean_session: true,
                will: None,
                username: None,
                password: Some(b(b"pw")),
                properties: Default::default(),
            })),
        ),
        v(
            testdata!("v31/connack_accepted"),
            BOTH,
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: ConnectReturnCode::Accepted,
            }),
        ),
        Vector {
            canonical: false,
            ..v(
                testdata!("v31/connack_reserved_byte"),
                ONLY_V31,
                Packet::ConnAck(ConnAck {
                    session_present: false,
                    code: ConnectReturnCode::Accepted,
                }),
            )
        },
        v(
            testdata!("v31/connack_identifier_rejected"),
            BOTH,
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: ConnectReturnCode::IdentifierRejected,
            }),
        ),
        v(
            testdata!("v31/suback"),
            BOTH,
            Packet::SubAck(SubAck {
                packet_id: id(10),
                return_codes: vec![
                    SubscribeReturnCode::Success(QoS::AtMostOnce),
                    SubscribeReturnCode::Success(QoS::AtLeastOnce),
                    SubscribeReturnCode::Success(QoS::ExactlyOnce),
                ],
            }),
        ),
    ]
}

fn flags_err(flags: u8, reason: &'static str) -> DecodeError {
    DecodeError::InvalidConnectFlags { flags, reason }
}

/// Malformed files, the level they are read at, and the error they must give.
fn malformed() -> Vec<((&'static str, &'static str), ProtocolLevel, DecodeError)> {
    use DecodeError as E;
    use PacketType as T;
    let topic = |packet, field, source| E::InvalidTopic {
        packet,
        field,
        source,
    };
    let truncated = |packet, field, needed| E::Truncated {
        packet,
        field,
        needed,
    };
    vec![
        (
            testdata!("malformed/reserved_type_0"),
            V3_1_1,
            E::ReservedPacketType { nibble: 0 },
        ),
        (
            testdata!("malformed/reserved_type_15"),
            V3_1_1,
            E::ReservedPacketType { nibble: 15 },
        ),
        (
            testdata!("malformed/pubrel_flags_0000"),
            V3_1_1,
            E::ReservedFlags {
                packet: T::PubRel,
                flags: 0,
            },
        ),
        (
            testdata!("malformed/subscribe_flags_0000"),
            V3_1_1,
            E::ReservedFlags {
                packet: T::Subscribe,
                flags: 0,
            },
        ),
        (
            testdata!("malformed/unsubscribe_flags_0000"),
            V3_1_1,
            E::ReservedFlags {
                packet: T::Unsubscribe,
                flags: 0,
            },
        ),
        (
            testdata!("malformed/puback_flags_0001"),
            V3_1,
            E::ReservedFlags {
                packet: T::PubAck,
                flags: 1,
            },
        ),
        (
            testdata!("malformed/pingresp_flags_1000"),
            V3_1_1,
            E::ReservedFlags {
                packet: T::PingResp,
                flags: 8,
            },
        ),
        (testdata!("malformed/publish_qos3"), V3_1_1, E::InvalidQoS),
        (testdata!("malformed/publish_dup_qos0"), V3_1, E::DupAtQoS0),
        (
            testdata!("malformed/publish_packet_id_0"),
            V3_1_1,
            E::ZeroPacketId { packet: T::Publish },
        ),
        (
            testdata!("malformed/puback_packet_id_0"),
            V3_1_1,
            E::ZeroPacketId { packet: T::PubAck },
        ),
        (
            testdata!("malformed/subscribe_packet_id_0"),
            V3_1_1,
            E::ZeroPacketId {
                packet: T::Subscribe,
            },
        ),
        (
            testdata!("malformed/remaining_length_5_bytes"),
            V3_1_1,
            E::MalformedRemainingLength,
        ),
        (
            testdata!("malformed/publish_topic_wildcard"),
            V3_1_1,
            topic(
                T::Publish,
                "topic name",
                TopicError::WildcardInName {
                    wildcard: '#',
                    at: 2,
                },
            ),
        ),
        (
            testdata!("malformed/publish_topic_empty"),
            V3_1_1,
            topic(T::Publish, "topic name", TopicError::Empty),
        ),
        (
            testdata!("malformed/publish_topic_invalid_utf8"),
            V3_1_1,
            topic(
                T::Publish,
                "topic name",
                TopicError::String(StringError::InvalidUtf8 { valid_up_to: 0 }),
            ),
        ),
        (
            testdata!("malformed/publish_topic_surrogate"),
            V3_1,
            topic(
                T::Publish,
                "topic name",
                TopicError::String(StringError::InvalidUtf8 { valid_up_to: 0 }),
            ),
        ),
        (
            testdata!("malformed/publish_topic_null"),
            V3_1_1,
            topic(
                T::Publish,
                "topic name",
                TopicError::String(StringError::NullCharacter { at: 1 }),
            ),
        ),
        (
            testdata!("malformed/publish_topic_length_overflows"),
            V3_1_1,
            truncated(T::Publish, "topic name", 4),
        ),
        (
            testdata!("malformed/publish_qos1_short_packet_id"),
            V3_1_1,
            truncated(T::Publish, "packet identifier", 1),
        ),
        (
            testdata!("malformed/connack_trailing_byte"),
            V3_1_1,
            E::TrailingBytes {
                packet: T::ConnAck,
                extra: 1,
            },
        ),
        (
            testdata!("malformed/connack_short"),
            V3_1_1,
            truncated(T::ConnAck, "return code", 1),
        ),
        (
            testdata!("malformed/connack_code_6"),
            V3_1,
            E::InvalidConnectReturnCode { code: 6 },
        ),
        (
            testdata!("malformed/connack_reserved_flags"),
            V3_1_1,
            E::InvalidConnAckFlags { flags: 2 },
        ),
        (
            testdata!("malformed/connack_session_present_on_refusal"),
            V3_1_1,
            E::SessionPresentOnRefusal { code: 5 },
        ),
        (
            testdata!("malformed/pingresp_trailing_byte"),
            V3_1_1,
            E::TrailingBytes {
                packet: T::PingResp,
                extra: 1,
            },
        ),
        (
            testdata!("malformed/disconnect_trailing_byte"),
            V3_1_1,
            E::TrailingBytes {
                packet: T::Disconnect,
                extra: 1,
            },
        ),
        (
            testdata!("malformed/puback_trailing_byte"),
            V3_1_1,
            E::TrailingBytes {
                packet: T::PubAck,
                extra: 1,
            },
        ),
        (
            testdata!("malformed/puback_short"),
            V3_1_1,
            truncated(T::PubAck, "packet identifier", 1),
        ),
        (
            testdata!("malformed/subscribe_no_filters"),
            V3_1_1,
            E::NoFilters {
                packet: T::Subscribe,
            },
        ),
        (
            testdata!("malformed/subscribe_qos3"),
            V3_1_1,
            E::InvalidRequestedQoS { byte: 3 },
        ),
        (
            testdata!("malformed/subscribe_reserved_qos_bits"),
            V3_1_1,
            E::InvalidRequestedQoS { byte: 0x41 },
        ),
        (
            testdata!("malformed/subscribe_missing_qos"),
            V3_1_1,
            truncated(T::Subscribe, "requested QoS", 1),
        ),
        (
            testdata!("malformed/subscribe_bad_filter"),
            V3_1_1,
            topic(
                T::Subscribe,
                "topic filter",
                TopicError::MisplacedMultiLevel { at: 1 },
            ),
        ),
        (
            testdata!("malformed/unsubscribe_no_filters"),
            V3_1,
            E::NoFilters {
                packet: T::Unsubscribe,
            },
        ),
        (
            testdata!("malformed/suback_code_3"),
            V3_1_1,
            E::InvalidSubAckCode { code: 3 },
        ),
        (
            testdata!("malformed/suback_failure_in_v31"),
            V3_1,
            E::InvalidSubAckCode { code: 0x80 },
        ),
        (
            testdata!("malformed/suback_no_codes"),
            V3_1_1,
            E::NoReturnCodes,
        ),
        (
            testdata!("malformed/connect_mqtt_level_3"),
            V3_1_1,
            E::UnsupportedProtocol {
                name: "MQTT".into(),
                level: 3,
            },
        ),
        (
            testdata!("malformed/connect_mqisdp_level_4"),
            V3_1,
            E::UnsupportedProtocol {
                name: "MQIsdp".into(),
                level: 4,
            },
        ),
        (
            testdata!("malformed/connect_reserved_flag"),
            V3_1_1,
            flags_err(0x03, "reserved bit 0 is set [MQTT-3.1.2-3]"),
        ),
        (
            testdata!("malformed/connect_will_qos_without_will"),
            V3_1_1,
            flags_err(0x0a, "will QoS set without the will flag [MQTT-3.1.2-13]"),
        ),
        (
            testdata!("malformed/connect_will_retain_without_will"),
            V3_1_1,
            flags_err(
                0x22,
                "will retain set without the will flag [MQTT-3.1.2-15]",
            ),
        ),
        (
            testdata!("malformed/connect_will_qos3"),
            V3_1_1,
            flags_err(0x1e, "will QoS 3 [MQTT-3.1.2-14]"),
        ),
        (
            testdata!("malformed/connect_password_without_username"),
            V3_1_1,
            flags_err(
                0x42,
                "password flag set without the user name flag [MQTT-3.1.2-22]",
            ),
        ),
        (
            testdata!("malformed/connect_trailing_byte"),
            V3_1_1,
            E::TrailingBytes {
                packet: T::Connect,
                extra: 1,
            },
        ),
        (
            testdata!("malformed/connect_will_topic_wildcard"),
            V3_1_1,
            topic(
                T::Connect,
                "will topic",
                TopicError::WildcardInName {
                    wildcard: '+',
                    at: 2,
                },
            ),
        ),
        (
            testdata!("malformed/connect_missing_client_id"),
            V3_1_1,
            truncated(T::Connect, "client identifier", 2),
        ),
    ]
}

#[test]
fn vectors_decode_to_their_packets_at_each_level() {
    for v in vectors() {
        let bytes = hex(v.file.1);
        for &level in v.levels {
            let mut buf = BytesMut::from(&bytes[..]);
            let got = decoder(level).decode(&mut buf);
            assert_eq!(got, Ok(Some(v.packet.clone())), "{} at {level}", v.file.0);
            assert!(buf.is_empty(), "{} at {level}: bytes left", v.file.0);
        }
    }
}

#[test]
fn vectors_encode_to_their_bytes() {
    for v in vectors().into_iter().filter(|v| v.canonical) {
        let bytes = hex(v.file.1);
        assert_eq!(encode(&v.packet), bytes, "{}", v.file.0);
        assert_eq!(v.packet.encoded_len(), bytes.len(), "{}", v.file.0);
        for &level in v.levels {
            let mut out = BytesMut::new();
            v.packet.encode_for(level, &mut out).unwrap();
            assert_eq!(&out[..], &bytes[..], "{} at {level}", v.file.0);
        }
    }
}

#[test]
fn session_present_decodes_as_false_in_3_1() {
    let bytes = hex(testdata!("v311/connack_session_present").1);
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(
        decoder(V3_1).decode(&mut buf),
        Ok(Some(Packet::ConnAck(ConnAck {
            session_present: false,
            code: ConnectReturnCode::Accepted
        })))
    );
}

#[test]
fn every_strict_prefix_of_a_vector_needs_more() {
    for v in vectors() {
        let bytes = hex(v.file.1);
        for &level in v.levels {
            for cut in 0..bytes.len() {
                let mut buf = BytesMut::from(&bytes[..cut]);
                assert_eq!(
                    decoder(level).decode(&mut buf),
                    Ok(None),
                    "{}[..{cut}]",
                    v.file.0
                );
                assert_eq!(&buf[..], &bytes[..cut], "{}[..{cut}] consumed", v.file.0);
            }
        }
    }
}

#[test]
fn trailing_bytes_after_a_packet_are_left_untouched() {
    let tail: &[u8] = &[0x40, 0x02, 0x00, 0x01, 0xff, 0x00, 0x13];
    for v in vectors() {
        let mut buf = BytesMut::from(&hex(v.file.1)[..]);
        buf.extend_from_slice(tail);
        let got = decoder(v.levels[0]).decode(&mut buf).unwrap();
        assert_eq!(got, Some(v.packet), "{}", v.file.0);
        assert_eq!(&buf[..], tail, "{}", v.file.0);
    }
}

/// Each malformed file gives its named error, whole and fed one byte at a time (the same
/// error, nothing decoded before it).
pub(super) fn check_malformed(
    files: Vec<((&'static str, &'static str), ProtocolLevel, DecodeError)>,
) {
    for (file, level, expected) in files {
        let bytes = hex(file.1);
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(
            decoder(level).decode(&mut buf),
            Err(expected.clone()),
            "{}",
            file.0
        );
        let mut dec = decoder(level);
        let mut buf = BytesMut::new();
        let mut result = Ok(None);
        for &byte in &bytes {
            buf.extend_from_slice(&[byte]);
            result = dec.decode(&mut buf);
            if result != Ok(None) {
                break;
            }
        }
        assert_eq!(result, Err(expected), "{} byte by byte", file.0);
    }
}

/// Every `.hex` file in `dirs` (below `testdata/`) is one of `listed` (`dir/stem`).
pub(super) fn check_every_file_listed(dirs: &[&str], listed: &[String]) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");
    for dir in dirs {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_str().unwrap();
            let key = format!("{dir}/{stem}");
            assert!(
                listed.contains(&key),
                "{key}.hex is not checked by any test"
            );
        }
    }
}

#[test]
fn malformed_files_give_their_named_errors() {
    check_malformed(malformed());
}

#[test]
fn every_testdata_file_is_checked() {
    // `v5/` and `malformed_v5/` are checked by `tests_v5`.
    let mut listed: Vec<String> = vectors().iter().map(|v| v.file.0.to_owned()).collect();
    listed.extend(malformed().iter().map(|m| m.0.0.to_owned()));
    check_every_file_listed(&["v311", "v31", "malformed"], &listed);
}

// ---- remaining length

fn publish_with_remaining_len(remaining: usize) -> Packet {
    // Topic "t" takes 3 bytes; QoS 0 has no packet id.
    Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: name("t"),
        payload: Bytes::from(vec![0xa5; remaining - 3]),
    })
}

#[test]
fn remaining_length_boundaries_round_trip_through_whole_packets() {
    let cases: &[(usize, &[u8])] = &[
        (127, &[0x7f]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xff, 0x7f]),
        (16_384, &[0x80, 0x80, 0x01]),
        (2_097_151, &[0xff, 0xff, 0x7f]),
        (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
    ];
    for &(remaining, length_bytes) in cases {
        let packet = publish_with_remaining_len(remaining);
        let bytes = encode(&packet);
        assert_eq!(bytes.len(), 1 + length_bytes.len() + remaining);
        assert_eq!(packet.encoded_len(), bytes.len());
        assert_eq!(&bytes[1..=length_bytes.len()], length_bytes, "{remaining}");
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(
            decoder(V3_1_1).decode(&mut buf),
            Ok(Some(packet)),
            "{remaining}"
        );
        let mut short = BytesMut::from(&bytes[..bytes.len() - 1]);
        assert_eq!(decoder(V3_1_1).decode(&mut short), Ok(None), "{remaining}");
    }
    // Remaining length 0.
    assert_eq!(encode(&Packet::PingReq), [0xc0, 0x00]);
}

#[test]
fn the_largest_remaining_length_is_checked_against_the_limit_before_buffering() {
    let header = [0x30, 0xff, 0xff, 0xff, 0x7f];
    let mut buf = BytesMut::from(&header[..]);
    assert_eq!(
        decoder(V3_1_1).decode(&mut buf),
        Err(DecodeError::TooLarge {
            len: 268_435_460,
            max: DEFAULT_MAX_PACKET_SIZE
        })
    );
    let mut buf = BytesMut::from(&header[..]);
    assert_eq!(Decoder::new(V3_1_1, usize::MAX).decode(&mut buf), Ok(None));
    assert_eq!(&buf[..], &header[..]);
}

#[test]
fn too_large_names_the_limit_and_counts_the_fixed_header() {
    // PUBLISH announcing 20 bytes; only the fixed header has arrived.
    let mut buf = BytesMut::from(&[0x30, 20][..]);
    assert_eq!(
        Decoder::new(V3_1_1, 21).decode(&mut buf),
        Err(DecodeError::TooLarge { len: 22, max: 21 })
    );
    let mut buf = BytesMut::from(&[0x30, 20][..]);
    assert_eq!(Decoder::new(V3_1_1, 22).decode(&mut buf), Ok(None));
    assert_eq!(
        DecodeError::TooLarge { len: 22, max: 21 }.to_string(),
        "incoming packet of 22 bytes exceeds the limit of 21 bytes"
    );
}

#[test]
fn non_minimal_remaining_lengths_are_accepted_up_to_four_bytes() {
    for bytes in [&[0xc0, 0x80, 0x00][..], &[0xc0, 0x80, 0x80, 0x80, 0x00]] {
        let mut buf = BytesMut::from(bytes);
        assert_eq!(decoder(V3_1_1).decode(&mut buf), Ok(Some(Packet::PingReq)));
        assert!(buf.is_empty());
    }
    let mut buf = BytesMut::from(&[0xc0, 0x80, 0x80, 0x80, 0x80, 0x00][..]);
    assert_eq!(
        decoder(V3_1_1).decode(&mut buf),
        Err(DecodeError::MalformedRemainingLength)
    );
    // PUBACK with its length padded to two bytes.
    let mut buf = BytesMut::from(&[0x40, 0x82, 0x00, 0x00, 0x07][..]);
    assert_eq!(
        decoder(V3_1).decode(&mut buf),
        Ok(Some(Packet::PubAck(id(7))))
    );
}

#[test]
fn encoding_refuses_a_remaining_length_over_the_maximum() {
    // Lazily zeroed allocation: nothing is written, so this stays cheap.
    let packet = publish_with_remaining_len(MAX_REMAINING_LENGTH + 1);
    let mut out = BytesMut::new();
    assert_eq!(
        packet.encode(&mut out),
        Err(EncodeError::TooLarge {
            len: MAX_REMAINING_LENGTH + 1
        })
    );
    assert!(out.is_empty());
    assert_eq!(
        publish_with_remaining_len(MAX_REMAINING_LENGTH).encoded_len(),
        MAX_REMAINING_LENGTH + 5
    );
}

// ---- encoder refusals

fn refuses(packet: &Packet, level: Option<ProtocolLevel>, expected: EncodeError) {
    let mut out = BytesMut::from(&b"kept"[..]);
    let got = match level {
        Some(level) => packet.encode_for(level, &mut out),
        None => packet.encode(&mut out),
    };
    assert_eq!(got, Err(expected), "{packet:?}");
    assert_eq!(&out[..], b"kept", "output touched");
}

fn connect_with(level: ProtocolLevel, f: impl FnOnce(&mut Connect)) -> Packet {
    let Packet::Connect(mut c) = connect_minimal(level) else {
        unreachable!()
    };
    f(&mut c);
    Packet::Connect(c)
}

#[test]
fn encoding_refuses_dup_at_qos_0() {
    let packet = Packet::Publish(Publish {
        dup: true,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: name("a"),
        payload: Bytes::new(),
    });
    refuses(&packet, None, EncodeError::DupAtQoS0);
}

#[test]
fn encoding_a_3_1_connect_needs_a_client_id_of_1_to_23_characters() {
    refuses(
        &connect_with(V3_1, |c| c.client_id = s("")),
        None,
        EncodeError::ClientIdLength { len: 0 },
    );
    refuses(
        &connect_with(V3_1, |c| c.client_id = s(&"é".repeat(24))),
        None,
        EncodeError::ClientIdLength { len: 24 },
    );
    // 23 characters of two bytes each: counted in characters, not bytes.
    let ok = connect_with(V3_1, |c| c.client_id = s(&"é".repeat(23)));
    assert_eq!(encode(&ok).len(), ok.encoded_len());
}

#[test]
fn encoding_an_empty_3_1_1_client_id_needs_clean_session() {
    refuses(
        &connect_with(V3_1_1, |c| {
            c.client_id = s("");
            c.clean_session = false;
        }),
        None,
        EncodeError::EmptyClientIdWithoutCleanSession,
    );
}

#[test]
fn encoding_a_password_without_user_name_is_refused_in_3_1_1_only() {
    refuses(
        &connect_with(V3_1_1, |c| c.password = Some(b(b"pw"))),
        None,
        EncodeError::PasswordWithoutUsername,
    );
    let v31 = connect_with(V3_1, |c| c.password = Some(b(b"pw")));
    assert_eq!(
        encode(&v31),
        hex(testdata!("v31/connect_password_without_username").1)
    );
}

#[test]
fn encoding_refuses_binary_fields_over_65535_bytes() {
    let big = Bytes::from(vec![0; 65_536]);
    refuses(
        &connect_with(V3_1_1, |c| {
            c.username = Some(s("u"));
            c.password = Some(big.clone());
        }),
        None,
        EncodeError::FieldTooLong {
            field: "password",
            len: 65_536,
        },
    );
    refuses(
        &connect_with(V3_1_1, |c| {
            c.will = Some(LastWill {
                topic: name("w"),
                payload: big.clone(),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Default::default(),
            });
        }),
        None,
        EncodeError::FieldTooLong {
            field: "will message",
            len: 65_536,
        },
    );
    let max = connect_with(V3_1_1, |c| {
        c.username = Some(s("u"));
        c.password = Some(big.slice(1..));
    });
    assert_eq!(encode(&max).len(), max.encoded_len());
}

#[test]
fn encoding_refuses_empty_lists() {
    refuses(
        &Packet::Subscribe(Subscribe {
            packet_id: id(1),
            filters: vec![],
        }),
        None,
        EncodeError::NoFilters {
            packet: PacketType::Subscribe,
        },
    );
    refuses(
        &Packet::Unsubscribe(Unsubscribe {
            packet_id: id(1),
            filters: vec![],
        }),
        None,
        EncodeError::NoFilters {
            packet: PacketType::Unsubscribe,
        },
    );
    refuses(
        &Packet::SubAck(SubAck {
            packet_id: id(1),
            return_codes: vec![],
        }),
        None,
        EncodeError::NoReturnCodes,
    );
    assert!(
        EncodeError::NoFilters {
            packet: PacketType::Unsubscribe
        }
        .to_string()
        .ends_with("[MQTT-3.10.3-2]")
    );
}

#[test]
fn encoding_for_3_1_refuses_what_3_1_does_not_have() {
    let suback = Packet::SubAck(SubAck {
        packet_id: id(1),
        return_codes: vec![SubscribeReturnCode::Failure],
    });
    refuses(&suback, Some(V3_1), EncodeError::SubAckFailureInV31);
    assert!(suback.encode_for(V3_1_1, &mut BytesMut::new()).is_ok());
    let connack = Packet::ConnAck(ConnAck {
        session_present: true,
        code: ConnectReturnCode::Accepted,
    });
    refuses(&connack, Some(V3_1), EncodeError::SessionPresentInV31);
    assert!(connack.encode_for(V3_1_1, &mut BytesMut::new()).is_ok());
}

#[test]
fn encoding_refuses_session_present_on_a_refusal() {
    refuses(
        &Packet::ConnAck(ConnAck {
            session_present: true,
            code: ConnectReturnCode::ServerUnavailable,
        }),
        None,
        EncodeError::SessionPresentOnRefusal { code: 3 },
    );
}

#[test]
fn decoded_payloads_share_the_receive_buffer() {
    let bytes = hex(testdata!("v311/publish_qos1").1);
    let mut buf = BytesMut::from(&bytes[..]);
    let start = buf.as_ptr() as usize;
    let Ok(Some(Packet::Publish(p))) = decoder(V3_1_1).decode(&mut buf) else {
        panic!("not a PUBLISH")
    };
    // Topic at offset 4, payload at offset 9 of the original buffer: no copy was made.
    assert_eq!(p.topic.as_str().as_ptr() as usize, start + 4);
    assert_eq!(p.payload.as_ptr() as usize, start + 9);
}

// ---- properties

/// Proptest strategies producing every valid packet of a protocol level (valid: what
/// [`Packet::encode_for`] accepts at that level).
pub(crate) mod strategy {
    use super::*;

    pub(crate) fn packet_id() -> impl Strategy<Value = PacketId> {
        (1..=u16::MAX).prop_map(|n| PacketId::new(n).unwrap())
    }

    pub(crate) fn qos() -> impl Strategy<Value = QoS> {
        prop_oneof![
            Just(QoS::AtMostOnce),
            Just(QoS::AtLeastOnce),
            Just(QoS::ExactlyOnce)
        ]
    }

    pub(crate) fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
        prop::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
    }

    pub(crate) fn string(regex: &'static str) -> impl Strategy<Value = MqttString> {
        regex.prop_map(|s: String| MqttString::try_from(s).unwrap())
    }

    pub(crate) fn topic_name() -> impl Strategy<Value = TopicName> {
        "[^\\x00+#]{1,16}".prop_map(|s: String| TopicName::try_from(s).unwrap())
    }

    pub(crate) fn topic_filter() -> impl Strategy<Value = TopicFilter> {
        let level = prop_oneof![3 => "[^\\x00+#/]{0,6}", 1 => Just("+".to_owned())];
        (prop::collection::vec(level, 1..5), any::<bool>()).prop_filter_map(
            "empty filter",
            |(mut levels, hash)| {
                if hash {
                    levels.push("#".to_owned());
                }
                TopicFilter::try_from(levels.join("/")).ok()
            },
        )
    }

    pub(crate) fn qos_pid() -> impl Strategy<Value = QosPid> {
        prop_oneof![
            Just(QosPid::AtMostOnce),
            packet_id().prop_map(QosPid::AtLeastOnce),
            packet_id().prop_map(QosPid::ExactlyOnce),
        ]
    }

    pub(crate) fn publish() -> impl Strategy<Value = Publish> {
        (
            any::<bool>(),
            qos_pid(),
            any::<bool>(),
            topic_name(),
            bytes(64),
        )
            .prop_map(|(dup, qos_pid, retain, topic, payload)| Publish {
                dup: dup && qos_pid != QosPid::AtMostOnce,
                qos_pid,
                retain,
                topic,
                payload,
            })
    }

    pub(crate) fn connect(level: ProtocolLevel) -> impl Strategy<Value = Connect> {
        let client_id = match level {
            V3_1 => string("[^\\x00]{1,23}"),
            V3_1_1 | ProtocolLevel::V5 => string("[^\\x00]{0,23}"),
        };
        let will = (topic_name(), bytes(32), qos(), any::<bool>()).prop_map(
            |(topic, payload, qos, retain)| LastWill {
                topic,
                payload,
                qos,
                retain,
                properties: Default::default(),
            },
        );
        (
            client_id,
            any::<u16>(),
            any::<bool>(),
            prop::option::of(will),
            prop::option::of(string("[^\\x00]{0,12}")),
            prop::option::of(bytes(12)),
        )
            .prop_map(
                move |(client_id, keep_alive, clean, will, username, mut password)| {
                    if level == V3_1_1 && username.is_none() {
                        password = None;
                    }
                    Connect {
                        level,
                        clean_session: clean || client_id.is_empty(),
                        client_id,
                        keep_alive,
                        will,
                        username,
                        password,
                        properties: Default::default(),
                    }
                },
            )
    }

    pub(crate) fn connack(level: ProtocolLevel) -> impl Strategy<Value = ConnAck> {
        (0..=5u8, any::<bool>()).prop_map(move |(code, session_present)| {
            let code = ConnectReturnCode::from_u8(code).unwrap();
            ConnAck {
                session_present: session_present
                    && level == V3_1_1
                    && code == ConnectReturnCode::Accepted,
                code,
            }
        })
    }

    pub(crate) fn suback(level: ProtocolLevel) -> impl Strategy<Value = SubAck> {
        let code = prop_oneof![
            3 => qos().prop_map(SubscribeReturnCode::Success),
            1 => Just(SubscribeReturnCode::Failure),
        ];
        (packet_id(), prop::collection::vec(code, 1..8)).prop_map(move |(packet_id, codes)| {
            let return_codes = codes
                .into_iter()
                .map(|c| match (c, level) {
                    (SubscribeReturnCode::Failure, V3_1) => {
                        SubscribeReturnCode::Success(QoS::AtMostOnce)
                    }
                    (c, _) => c,
                })
                .collect();
            SubAck {
                packet_id,
                return_codes,
            }
        })
    }

    pub(crate) fn subscribe() -> impl Strategy<Value = Subscribe> {
        (
            packet_id(),
            prop::collection::vec((topic_filter(), qos()), 1..6),
        )
            .prop_map(|(packet_id, filters)| Subscribe { packet_id, filters })
    }

    pub(crate) fn unsubscribe() -> impl Strategy<Value = Unsubscribe> {
        (packet_id(), prop::collection::vec(topic_filter(), 1..6))
            .prop_map(|(packet_id, filters)| Unsubscribe { packet_id, filters })
    }

    /// Any valid packet at `level`, every type equally likely.
    pub(crate) fn packet(level: ProtocolLevel) -> BoxedStrategy<Packet> {
        if level.is_v5() {
            return v5::packet().boxed();
        }
        prop_oneof![
            connect(level).prop_map(|c| Packet::Connect(Box::new(c))),
            connack(level).prop_map(Packet::ConnAck),
            publish().prop_map(Packet::Publish),
            packet_id().prop_map(Packet::PubAck),
            packet_id().prop_map(Packet::PubRec),
            packet_id().prop_map(Packet::PubRel),
            packet_id().prop_map(Packet::PubComp),
            subscribe().prop_map(Packet::Subscribe),
            suback(level).prop_map(Packet::SubAck),
            unsubscribe().prop_map(Packet::Unsubscribe),
            packet_id().prop_map(Packet::UnsubAck),
            Just(Packet::PingReq),
            Just(Packet::PingResp),
            Just(Packet::Disconnect),
        ]
        .boxed()
    }

    /// Strategies for MQTT 5 packets with arbitrary properties, each in the one form the
    /// decoder returns for it (the shared variant when it says no more).
    pub(crate) mod v5 {
        use std::num::{NonZeroU16, NonZeroU32};

        use std::fmt;

        use super::super::property::MAX_VBI;
        use super::connect as connect_v3;
        use super::*;

        fn text() -> impl Strategy<Value = MqttString> {
            string("[^\\x00]{0,6}")
        }

        fn users() -> impl Strategy<Value = Vec<UserProperty>> {
            prop::collection::vec((text(), text()), 0..3)
        }

        fn nz16() -> impl Strategy<Value = NonZeroU16> {
            (1..=u16::MAX).prop_map(|n| NonZeroU16::new(n).unwrap())
        }

        fn nz32() -> impl Strategy<Value = NonZeroU32> {
            (1..=u32::MAX).prop_map(|n| NonZeroU32::new(n).unwrap())
        }

        fn sub_id() -> impl Strategy<Value = SubscriptionId> {
            prop_oneof![1..=200u32, 1..=MAX_VBI].prop_map(|n| SubscriptionId::new(n).unwrap())
        }

        fn format() -> impl Strategy<Value = PayloadFormat> {
            prop_oneof![Just(PayloadFormat::Unspecified), Just(PayloadFormat::Utf8)]
        }

        fn o<T: fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
            prop::option::of(s)
        }

        fn auth(
            method: Option<MqttString>,
            data: Option<Bytes>,
        ) -> (Option<MqttString>, Option<Bytes>) {
            let data = if method.is_some() { data } else { None };
            (method, data)
        }

        pub(crate) fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
            (
                o(any::<u32>()),
                o(nz16()),
                o(nz32()),
                o(any::<u16>()),
                o(any::<bool>()),
                o(any::<bool>()),
                users(),
                o(text()),
                o(bytes(6)),
            )
                .prop_map(|(sei, rm, mps, tam, rri, rpi, user_properties, m, d)| {
                    let (authentication_method, authentication_data) = auth(m, d);
                    ConnectProperties {
                        session_expiry_interval: sei,
                        receive_maximum: rm,
                        maximum_packet_size: mps,
                        topic_alias_maximum: tam,
                        request_response_information: rri,
                        request_problem_information: rpi,
                        user_properties,
                        authentication_method,
                        authentication_data,
                    }
                })
        }

        pub(crate) fn will_properties() -> impl Strategy<Value = WillProperties> {
            (
                o(format()),
                o(any::<u32>()),
                o(text()),
                o(topic_name()),
                o(bytes(6)),
                o(any::<u32>()),
                users(),
            )
                .prop_map(|(pfi, mei, ct, rt, cd, wdi, user_properties)| {
                    WillProperties {
                        payload_format_indicator: pfi,
                        message_expiry_interval: mei,
                        content_type: ct,
                        response_topic: rt,
                        correlation_data: cd,
                        will_delay_interval: wdi,
                        user_properties,
                    }
                })
        }

        pub(crate) fn publish_properties() -> impl Strategy<Value = PublishProperties> {
            (
                o(format()),
                o(any::<u32>()),
                o(text()),
                o(topic_name()),
                o(bytes(6)),
                prop::collection::vec(sub_id(), 0..3),
                o(nz16()),
                users(),
            )
                .prop_map(|(pfi, mei, ct, rt, cd, ids, ta, user_properties)| {
                    PublishProperties {
                        payload_format_indicator: pfi,
                        message_expiry_interval: mei,
                        content_type: ct,
                        response_topic: rt,
                        correlation_data: cd,
                        subscription_identifiers: ids,
                        topic_alias: ta,
                        user_properties,
                    }
                })
        }

        pub(crate) fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
            (
                (
                    o(any::<u32>()),
                    o(text()),
                    o(any::<u16>()),
                    o(text()),
                    o(bytes(6)),
                    o(text()),
                    o(text()),
                    o(text()),
                ),
                (
                    o(nz16()),
                    o(any::<u16>()),
                    o(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
                    o(any::<bool>()),
                    users(),
                    o(nz32()),
                    o(any::<bool>()),
                    o(any::<bool>()),
                    o(any::<bool>()),
                ),
            )
                .prop_map(
                    |((sei, aci, ska, m, d, ri, sr, rs), (rm, tam, mq, ra, up, mps, w, si, sh))| {
                        let (authentication_method, authentication_data) = auth(m, d);
                        ConnAckProperties {
                            session_expiry_interval: sei,
                            assigned_client_identifier: aci,
                            server_keep_alive: ska,
                            authentication_method,
                            authentication_data,
                            response_information: ri,
                            server_reference: sr,
                            reason_string: rs,
                            receive_maximum: rm,
                            topic_alias_maximum: tam,
                            maximum_qos: mq,
                            retain_available: ra,
                            user_properties: up,
                            maximum_packet_size: mps,
                            wildcard_subscription_available: w,
                            subscription_identifier_available: si,
                            shared_subscription_available: sh,
                        }
                    },
                )
        }

        pub(crate) fn reason_properties() -> impl Strategy<Value = ReasonProperties> {
            (o(text()), users()).prop_map(|(reason_string, user_properties)| ReasonProperties {
                reason_string,
                user_properties,
            })
        }

        fn connect() -> impl Strategy<Value = Packet> {
            (
                connect_v3(V3_1_1),
                connect_properties(),
                will_properties(),
                o(bytes(4)),
            )
                .prop_map(|(mut c, properties, will_properties, password)| {
                    c.level = ProtocolLevel::V5;
                    c.properties = properties;
                    if let Some(will) = &mut c.will {
                        will.properties = will_properties;
                    }
                    // MQTT 5 allows a password without a user name.
                    if c.username.is_none() {
                        c.password = password;
                    }
                    Packet::Connect(Box::new(c))
                })
        }

        fn connack() -> impl Strategy<Value = Packet> {
            (
                any::<bool>(),
                prop::sample::select(ConnectReasonCode::ALL),
                connack_properties(),
            )
                .prop_map(|(session_present, reason, properties)| {
                    let session_present = session_present && !reason.is_error();
                    if reason == ConnectReasonCode::Success && properties == Default::default() {
                        Packet::ConnAck(ConnAck {
                            session_present,
                            code: ConnectReturnCode::Accepted,
                        })
                    } else {
                        Packet::ConnAckV5(Box::new(ConnAckV5 {
                            session_present,
                            reason,
                            properties,
                        }))
                    }
                })
        }

        fn publish() -> impl Strategy<Value = Packet> {
            (super::publish(), publish_properties(), any::<bool>()).prop_map(
                |(mut publish, properties, alias_only)| {
                    if alias_only && properties.topic_alias.is_some() {
                        publish.topic = TopicName::empty_for_alias();
                    }
                    if properties == PublishProperties::default() {
                        Packet::Publish(publish)
                    } else {
                        Packet::PublishV5(Box::new(PublishV5 {
                            publish,
                            properties,
                        }))
                    }
                },
            )
        }

        fn ack<R: Copy + PartialEq + fmt::Debug + 'static>(
            all: &'static [R],
            success: R,
            shared: fn(PacketId) -> Packet,
            long: fn(Ack<R>) -> Packet,
        ) -> impl Strategy<Value = Packet> {
            (packet_id(), prop::sample::select(all), reason_properties()).prop_map(
                move |(packet_id, reason, properties)| {
                    if reason == success && properties == ReasonProperties::default() {
                        shared(packet_id)
                    } else {
                        long(Ack {
                            packet_id,
                            reason,
                            properties,
                        })
                    }
                },
            )
        }

        fn options() -> impl Strategy<Value = SubscriptionOptions> {
            (
                qos(),
                any::<bool>(),
                any::<bool>(),
                prop_oneof![
                    Just(RetainHandling::SendAtSubscribe),
                    Just(RetainHandling::SendIfNew),
                    Just(RetainHandling::DoNotSend)
                ],
            )
                .prop_map(|(qos, no_local, rap, rh)| SubscriptionOptions {
                    qos,
                    no_local,
                    retain_as_published: rap,
                    retain_handling: rh,
                })
        }

        fn shared_or_plain_filter() -> impl Strategy<Value = TopicFilter> {
            prop_oneof![
                3 => topic_filter(),
                1 => ("[a-z]{1,4}", topic_filter()).prop_map(|(group, f)| {
                    TopicFilter::try_from(format!("$share/{group}/{f}")).unwrap()
                }),
            ]
        }

        fn subscribe() -> impl Strategy<Value = Packet> {
            (
                packet_id(),
                prop::collection::vec((shared_or_plain_filter(), options()), 1..4),
                o(sub_id()),
                users(),
            )
                .prop_map(
                    |(packet_id, mut filters, subscription_identifier, user_properties)| {
                        for (f, o) in &mut filters {
                            if f.as_str().starts_with("$share/") {
                                o.no_local = false;
                            }
                        }
                        let properties = SubscribeProperties {
                            subscription_identifier,
                            user_properties,
                        };
                        if properties == SubscribeProperties::default()
                            && filters.iter().all(|(_, o)| o.is_plain())
                        {
                            Packet::Subscribe(Subscribe {
                                packet_id,
                                filters: filters.into_iter().map(|(f, o)| (f, o.qos)).collect(),
                            })
                        } else {
                            Packet::SubscribeV5(SubscribeV5 {
                                packet_id,
                                filters,
                                properties,
                            })
                        }
                    },
                )
        }

        fn suback() -> impl Strategy<Value = Packet> {
            (
                packet_id(),
                prop::collection::vec(prop::sample::select(SubAckReasonCode::ALL), 1..6),
                reason_properties(),
            )
                .prop_map(|(packet_id, reason_codes, properties)| {
                    let plain = reason_codes.iter().all(|c| {
                        c.granted_qos().is_some() || *c == SubAckReasonCode::UnspecifiedError
                    });
                    if plain && properties == ReasonProperties::default() {
                        Packet::SubAck(SubAck {
                            packet_id,
                            return_codes: reason_codes
                                .iter()
                                .map(|c| match c.granted_qos() {
                                    Some(q) => SubscribeReturnCode::Success(q),
                                    None => SubscribeReturnCode::Failure,
                                })
                                .collect(),
                        })
                    } else {
                        Packet::SubAckV5(Box::new(SubAckV5 {
                            packet_id,
                            reason_codes,
                            properties,
                        }))
                    }
                })
        }

        fn unsubscribe() -> impl Strategy<Value = Packet> {
            (
                packet_id(),
                prop::collection::vec(shared_or_plain_filter(), 1..4),
                users(),
            )
                .prop_map(|(packet_id, filters, user_properties)| {
                    if user_properties.is_empty() {
                        Packet::Unsubscribe(Unsubscribe { packet_id, filters })
                    } else {
                        Packet::UnsubscribeV5(UnsubscribeV5 {
                            packet_id,
                            filters,
                            properties: UnsubscribeProperties { user_properties },
                        })
                    }
                })
        }

        fn unsuback() -> impl Strategy<Value = Packet> {
            (
                packet_id(),
                prop::collection::vec(prop::sample::select(UnsubAckReasonCode::ALL), 1..6),
                reason_properties(),
            )
                .prop_map(|(packet_id, reason_codes, properties)| {
                    Packet::UnsubAckV5(Box::new(UnsubAckV5 {
                        packet_id,
                        reason_codes,
                        properties,
                    }))
                })
        }

        fn disconnect() -> impl Strategy<Value = Packet> {
            (
                prop::sample::select(DisconnectReasonCode::ALL),
                o(any::<u32>()),
                o(text()),
                o(text()),
                users(),
            )
                .prop_map(|(reason, sei, sr, rs, user_properties)| {
                    let properties = DisconnectProperties {
                        session_expiry_interval: sei,
                        server_reference: sr,
                        reason_string: rs,
                        user_properties,
                    };
                    if reason == DisconnectReasonCode::NormalDisconnection
                        && properties == DisconnectProperties::default()
                    {
                        Packet::Disconnect
                    } else {
                        Packet::DisconnectV5(Box::new(DisconnectV5 { reason, properties }))
                    }
                })
        }

        fn auth_packet() -> impl Strategy<Value = Packet> {
            (
                prop::sample::select(AuthReasonCode::ALL),
                o(text()),
                o(bytes(6)),
                o(text()),
                users(),
            )
                .prop_map(|(reason, m, d, reason_string, user_properties)| {
                    let (authentication_method, authentication_data) = auth(m, d);
                    Packet::Auth(Box::new(Auth {
                        reason,
                        properties: AuthProperties {
                            authentication_method,
                            authentication_data,
                            reason_string,
                            user_properties,
                        },
                    }))
                })
        }

        /// Any MQTT 5 packet, every type equally likely.
        pub(crate) fn packet() -> impl Strategy<Value = Packet> {
            prop_oneof![
                connect(),
                connack(),
                publish(),
                ack(
                    PubAckReasonCode::ALL,
                    PubAckReasonCode::Success,
                    Packet::PubAck,
                    Packet::PubAckV5
                ),
                ack(
                    PubRecReasonCode::ALL,
                    PubRecReasonCode::Success,
                    Packet::PubRec,
                    Packet::PubRecV5
                ),
                ack(
                    PubRelReasonCode::ALL,
                    PubRelReasonCode::Success,
                    Packet::PubRel,
                    Packet::PubRelV5
                ),
                ack(
                    PubCompReasonCode::ALL,
                    PubCompReasonCode::Success,
                    Packet::PubComp,
                    Packet::PubCompV5
                ),
                subscribe(),
                suback(),
                unsubscribe(),
                unsuback(),
                Just(Packet::PingReq),
                Just(Packet::PingResp),
                disconnect(),
                auth_packet(),
            ]
        }
    }

    pub(crate) fn level() -> impl Strategy<Value = ProtocolLevel> {
        prop_oneof![Just(V3_1), Just(V3_1_1)]
    }

    /// Any level, MQTT 5 included.
    pub(crate) fn any_level() -> impl Strategy<Value = ProtocolLevel> {
        prop_oneof![Just(V3_1), Just(V3_1_1), Just(ProtocolLevel::V5)]
    }

    /// A level (MQTT 5 included) and a packet valid at it.
    pub(crate) fn leveled_packet() -> impl Strategy<Value = (ProtocolLevel, Packet)> {
        any_level().prop_flat_map(|level| (Just(level), packet(level)))
    }

    /// A level (MQTT 5 included) and a few packets valid at it.
    pub(crate) fn leveled_packets() -> impl Strategy<Value = (ProtocolLevel, Vec<Packet>)> {
        any_level().prop_flat_map(|level| (Just(level), prop::collection::vec(packet(level), 1..8)))
    }
}

/// Encodes at `level`, checks `encoded_len`, decodes, and checks the packet comes back whole
/// with nothing left over; every strict prefix must need more.
fn assert_round_trip(level: ProtocolLevel, packet: &Packet) -> Result<(), TestCaseError> {
    let mut out = BytesMut::new();
    packet.encode_for(level, &mut out).unwrap();
    prop_assert_eq!(out.len(), packet.encoded_len_for(level));
    let bytes = out.to_vec();
    let got = decoder(level).decode(&mut out);
    prop_assert_eq!(got, Ok(Some(packet.clone())));
    prop_assert!(out.is_empty());
    for cut in 0..bytes.len() {
        let mut buf = BytesMut::from(&bytes[..cut]);
        prop_assert_eq!(decoder(level).decode(&mut buf), Ok(None));
    }
    Ok(())
}

macro_rules! round_trip {
    ($($test:ident: $strategy:expr;)*) => {
        proptest! {
            $(
                #[test]
                fn $test((level, packet) in $strategy) {
                    assert_round_trip(level, &packet)?;
                }
            )*
        }
    };
}

round_trip! {
    connect_round_trips: strategy::level()
        .prop_flat_map(|l| (Just(l), strategy::connect(l).prop_map(|c| Packet::Connect(Box::new(c)))));
    connack_round_trips: strategy::level()
        .prop_flat_map(|l| (Just(l), strategy::connack(l).prop_map(Packet::ConnAck)));
    publish_round_trips: (strategy::level(), strategy::publish().prop_map(Packet::Publish));
    puback_round_trips: (strategy::level(), strategy::packet_id().prop_map(Packet::PubAck));
    pubrec_round_trips: (strategy::level(), strategy::packet_id().prop_map(Packet::PubRec));
    pubrel_round_trips: (strategy::level(), strategy::packet_id().prop_map(Packet::PubRel));
    pubcomp_round_trips: (strategy::level(), strategy::packet_id().prop_map(Packet::PubComp));
    subscribe_round_trips: (strategy::level(), strategy::subscribe().prop_map(Packet::Subscribe));
    suback_round_trips: strategy::level()
        .prop_flat_map(|l| (Just(l), strategy::suback(l).prop_map(Packet::SubAck)));
    unsubscribe_round_trips:
        (strategy::level(), strategy::unsubscribe().prop_map(Packet::Unsubscribe));
    unsuback_round_trips: (strategy::level(), strategy::packet_id().prop_map(Packet::UnsubAck));
    ping_and_disconnect_round_trip: (
        strategy::level(),
        prop_oneof![Just(Packet::PingReq), Just(Packet::PingResp), Just(Packet::Disconnect)],
    );
    any_packet_round_trips: strategy::leveled_packet();
}

fn encode_all(level: ProtocolLevel, packets: &[Packet]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for p in packets {
        p.encode_for(level, &mut out).unwrap();
    }
    out.to_vec()
}

/// Feeds `chunks` one after another, draining whole packets after each.
fn decode_chunks<'a>(
    level: ProtocolLevel,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Packet>, DecodeError> {
    let mut dec = decoder(level);
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(p) = dec.decode(&mut buf)? {
            packets.push(p);
        }
    }
    assert!(buf.is_empty(), "bytes left after the last packet");
    Ok(packets)
}

proptest! {
    #[test]
    fn a_stream_split_at_every_point_yields_the_same_packets(
        (level, packets) in strategy::leveled_packets()
    ) {
        let stream = encode_all(level, &packets);
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            prop_assert_eq!(decode_chunks(level, [a, b]), Ok(packets.clone()));
        }
        prop_assert_eq!(decode_chunks(level, stream.chunks(1)), Ok(packets.clone()));
    }

    #[test]
    fn a_stream_in_random_chunks_yields_the_same_packets(
        (level, packets) in strategy::leveled_packets(),
        sizes in prop::collection::vec(1..40usize, 1..20),
    ) {
        let stream = encode_all(level, &packets);
        let mut chunks = Vec::new();
        let mut rest = &stream[..];
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at((*size).min(rest.len()));
            chunks.push(a);
            rest = b;
        }
        prop_assert_eq!(decode_chunks(level, chunks), Ok(packets));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_chunking_does_not_change_the_outcome(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        level in strategy::any_level(),
    ) {
        let whole = collect_until_error(level, [&bytes[..]]);
        let one_by_one = collect_until_error(level, bytes.chunks(1));
        prop_assert_eq!(whole, one_by_one);
    }
}

/// Decodes `bytes` until an error or lack of input with `Decoder::decode` (fast paths on)
/// and with the general path alone; both must give the same packets, the same error and
/// leave the same bytes.
fn fast_and_general_agree(
    level: ProtocolLevel,
    max: usize,
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    let mut fast = Decoder::new(level, max);
    let mut general = Decoder::new(level, max);
    let mut a = BytesMut::from(bytes);
    let mut b = BytesMut::from(bytes);
    loop {
        let x = fast.decode(&mut a);
        let y = general.decode_general(&mut b);
        prop_assert_eq!(&x, &y);
        prop_assert_eq!(&a, &b);
        if !matches!(x, Ok(Some(_))) {
            return Ok(());
        }
    }
}

#[test]
fn fast_path_edge_cases_match_the_general_path() {
    let cases: &[&[u8]] = &[
        b"\x40\x02\x00\x00",                 // PUBACK id 0
        b"\x40\x02\x00",                     // PUBACK incomplete
        b"\x40\x01\x00",                     // PUBACK too short
        b"\x40\x82\x00\x00\x07",             // PUBACK, non-minimal length
        b"\x62\x02\x00\x07\x70\x02\x00\x07", // PUBREL then PUBCOMP
        b"\x60\x02\x00\x07",                 // PUBREL without its flag
        b"\xd0\x00\xc0\x00\xe0\x00",         // PINGRESP, PINGREQ, DISCONNECT
        b"\xd0\x01\x00",                     // PINGRESP with a body
        b"\x30\x03\x00\x01a",                // QoS 0
        b"\x30\x02\x00\x00",                 // empty topic
        b"\x30\x03\x00\x01+",                // wildcard
        b"\x30\x03\x00\x01#",                // wildcard
        b"\x30\x03\x00\x01\x00",             // U+0000
        b"\x30\x04\x00\x02\xc3\xa9",         // non-ASCII topic
        b"\x30\x04\x00\x02\xc3\x28",         // invalid UTF-8
        b"\x30\x03\x00\x02a",                // topic longer than the packet
        b"\x32\x03\x00\x01a",                // QoS 1 without an id
        b"\x32\x05\x00\x01a\x00\x00",        // QoS 1, id 0
        b"\x34\x06\x00\x01a\x00\x01x",       // QoS 2
        b"\x3d\x06\x00\x01a\x00\x01x",       // QoS 2, DUP, RETAIN
        b"\x36\x06\x00\x01a\x00\x01x",       // QoS 3
        b"\x38\x03\x00\x01a",                // DUP at QoS 0
        b"\x30\x83\x00\x00\x01a",            // non-minimal length
        b"\x30\xff\xff\xff\xff\x01",         // five length bytes
        b"\x30\xff\xff\xff\x7f",             // too large for the limit
        // Topics checked in 8- and 16-byte blocks: a bad byte in each part of them.
        b"\x30\x0b\x00\x09sensors/#",         // 9 bytes, wildcard last
        b"\x30\x10\x00\x0e\x00ensors/temp/a", // 14 bytes, U+0000 first
        b"\x30\x13\x00\x11a/b/c/d/e/f/g/h/i", // 17 bytes, plain
        b"\x30\x13\x00\x11a/b/c/d/e/f/g/h/+", // 17 bytes, wildcard last
        b"\x30\x13\x00\x11a/b/c/d/e/f/gh\xc3\xa9i", // 17 bytes, non-ASCII mid
        b"\x32\x24\x00\x1fbench/sensors/device-0042/tem#p\x00\x01x", // 31 bytes
    ];
    for &case in cases {
        for level in [V3_1, V3_1_1] {
            for max in [3, 4, 5, DEFAULT_MAX_PACKET_SIZE] {
                fast_and_general_agree(level, max, case)
                    .unwrap_or_else(|e| panic!("{case:02x?} {level} {max}: {e}"));
            }
        }
    }
}

proptest! {
    #[test]
    fn the_fast_path_agrees_with_the_general_path_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        level in strategy::any_level(),
    ) {
        fast_and_general_agree(level, DEFAULT_MAX_PACKET_SIZE, &bytes)?;
    }

    #[test]
    fn the_fast_path_agrees_with_the_general_path_on_damaged_packets(
        (level, packets) in strategy::leveled_packets(),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        max in prop_oneof![Just(DEFAULT_MAX_PACKET_SIZE), 1..200usize],
    ) {
        let mut stream = encode_all(level, &packets);
        if !stream.is_empty() {
            for (at, byte) in damage {
                let at = at.index(stream.len());
                stream[at] = byte;
            }
        }
        fast_and_general_agree(level, max, &stream)?;
    }
}

/// Packets decoded, then the error if one came.
fn collect_until_error<'a>(
    level: ProtocolLevel,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Packet>, Option<DecodeError>) {
    let mut dec = decoder(level);
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(p)) => packets.push(p),
                Ok(None) => break,
                Err(e) => return (packets, Some(e)),
            }
        }
    }
    (packets, None)
}
