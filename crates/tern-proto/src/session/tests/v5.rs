//! MQTT 5 session rules on the pair harness (simulated broker, simulated time): each test
//! names the statement it holds.

use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::harness::{Pair, config, filter, id, msg, topic};
use crate::packet::{
    Ack, Auth, AuthProperties, AuthReasonCode, ConnAckProperties, ConnAckV5, ConnectProperties,
    ConnectReasonCode, DecodeError, DisconnectProperties, DisconnectReasonCode, DisconnectV5,
    LastWill, Packet, PayloadFormat, ProtocolLevel, PubAckReasonCode, PubRelReasonCode, Publish,
    PublishProperties, PublishV5, QoS, QosPid, ReasonProperties, RetainHandling, SubAckReasonCode,
    SubAckV5, SubscribeProperties, SubscriptionId, SubscriptionOptions, UnsubAckReasonCode,
    UnsubAckV5, WillProperties,
};
use crate::session::{
    ApiMisuse, DisconnectReason, Event, Message, OutgoingFlow, ProtocolError, RequestError,
    SessionConfig, Snapshot,
};
use crate::text::MqttString;

fn v5_config() -> SessionConfig {
    config().level(ProtocolLevel::V5)
}

fn s(x: &str) -> MqttString {
    MqttString::new(x).unwrap()
}

fn connack_v5(session_present: bool, properties: ConnAckProperties) -> Packet {
    Packet::ConnAckV5(Box::new(ConnAckV5 {
        session_present,
        reason: ConnectReasonCode::Success,
        properties,
    }))
}

/// `connect`, checks that CONNECT alone goes out (returned), answers with `connack`, and
/// checks `Connected`.
fn open(pair: &mut Pair, connack: Packet) -> Packet {
    open_events(pair, connack).0
}

/// [`open`], also returning the events other than `Connected` it polled.
fn open_events(pair: &mut Pair, connack: Packet) -> (Packet, Vec<Event>) {
    pair.session.connect(pair.now).unwrap();
    let mut sent = pair.sent();
    assert_eq!(sent.len(), 1, "expected only CONNECT, got {sent:?}");
    let connect = sent.remove(0);
    assert!(matches!(connect, Packet::Connect(_)), "{connect:?}");
    let present = match &connack {
        Packet::ConnAckV5(c) => c.session_present,
        _ => false,
    };
    pair.deliver(connack).unwrap();
    let mut events = pair.events();
    let connected = Event::Connected {
        session_present: present,
    };
    assert!(events.contains(&connected), "no Connected in {events:?}");
    events.retain(|e| *e != connected);
    (connect, events)
}

fn connected_with(config: SessionConfig, caps: ConnAckProperties) -> Pair {
    let mut pair = Pair::new(config);
    open(&mut pair, connack_v5(false, caps));
    pair
}

fn connected() -> Pair {
    connected_with(v5_config(), ConnAckProperties::default())
}

fn with_props(m: Message, p: PublishProperties) -> Message {
    Message {
        properties: Some(Box::new(p)),
        ..m
    }
}

/// The PUBLISH (with or without properties) a packet is, as `(publish, properties)`.
fn as_publish(p: &Packet) -> (&Publish, Option<&PublishProperties>) {
    match p {
        Packet::Publish(p) => (p, None),
        Packet::PublishV5(p) => (&p.publish, Some(&p.properties)),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

fn pid(p: &Packet) -> crate::packet::PacketId {
    as_publish(p).0.packet_id().unwrap()
}

/// Asserts the violation came back as the error, as `Disconnected(Protocol)`, and that the
/// client's last packet is a DISCONNECT with `code` (§4.13.1).
fn assert_v5_violation(
    pair: &mut Pair,
    r: Result<(), ProtocolError>,
    expected: ProtocolError,
    code: DisconnectReasonCode,
) {
    assert_eq!(r, Err(expected.clone()));
    let events = pair.events();
    assert!(
        events.contains(&Event::Disconnected(DisconnectReason::Protocol(expected))),
        "no Disconnected(Protocol) in {events:?}"
    );
    assert!(!pair.session.is_connected());
    let sent = pair.sent();
    match sent.as_slice() {
        [Packet::DisconnectV5(d)] => assert_eq!(d.reason, code),
        other => panic!("expected DISCONNECT {code}, got {other:?}"),
    }
    assert!(
        pair.sent().is_empty(),
        "nothing follows DISCONNECT [MQTT-3.14.4-1]"
    );
}

// --- CONNECT / CONNACK ---------------------------------------------------------------

#[test]
fn connect_carries_the_configured_properties_and_our_maximum_packet_size() {
    let props = ConnectProperties {
        session_expiry_interval: Some(120),
        receive_maximum: NonZeroU16::new(10),
        topic_alias_maximum: Some(5),
        request_response_information: Some(true),
        request_problem_information: Some(false),
        user_properties: vec![(s("k"), s("v")), (s("k"), s("w"))],
        ..Default::default()
    };
    let will = LastWill {
        topic: topic("will/t"),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: WillProperties {
            will_delay_interval: Some(30),
            message_expiry_interval: Some(600),
            content_type: Some(s("text/plain")),
            response_topic: Some(topic("resp")),
            correlation_data: Some(Bytes::from_static(b"c")),
            payload_format_indicator: Some(PayloadFormat::Utf8),
            user_properties: vec![(s("a"), s("b"))],
        },
    };
    let config = v5_config()
        .connect_properties(props.clone())
        .max_packet_size(4096)
        .will(Some(will.clone()));
    let mut pair = Pair::new(config);
    let connect = open(&mut pair, connack_v5(false, ConnAckProperties::default()));
    let Packet::Connect(c) = connect else {
        unreachable!()
    };
    assert_eq!(c.level, ProtocolLevel::V5);
    let mut expected = props;
    // [MQTT-3.1.2-24] our limit is advertised, so the broker never sends more.
    expected.maximum_packet_size = NonZeroU32::new(4096);
    assert_eq!(c.properties, expected);
    // §3.1.3.2 the will's properties in the will block.
    assert_eq!(c.will, Some(will));
    // The configuration is given back intact for the next CONNECT.
    assert_eq!(
        pair.session.config().session_expiry_interval(),
        120,
        "configuration changed by encoding"
    );
}

#[test]
fn a_3_1_1_connect_carries_no_properties() {
    let config = config().connect_properties(ConnectProperties {
        session_expiry_interval: Some(5),
        ..Default::default()
    });
    let mut pair = Pair::new(config);
    pair.session.connect(pair.now).unwrap();
    let sent = pair.sent();
    let [Packet::Connect(c)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(c.properties, ConnectProperties::default());
    pair.deliver(super::harness::connack(
        crate::packet::ConnectReturnCode::Accepted,
        false,
    ))
    .unwrap();
    assert!(pair.session.is_connected());
    assert!(pair.session.server_capabilities().is_none());
    // Nothing of level 5 is allocated for a 3.1.1 connection.
    assert!(pair.session.v5.is_none());
    // Level 5 requests are refused, not silently downgraded.
    let p = PublishProperties {
        content_type: Some(s("x")),
        ..Default::default()
    };
    assert_eq!(
        pair.session
            .publish(pair.now, with_props(msg("a", b"1", QoS::AtMostOnce), p)),
        Err(ApiMisuse::NeedsV5("PUBLISH properties"))
    );
    assert!(matches!(
        pair.session.subscribe_v5(
            pair.now,
            vec![(filter("a"), SubscriptionOptions::qos(QoS::AtMostOnce))],
            Default::default()
        ),
        Err(ApiMisuse::NeedsV5(_))
    ));
    assert!(matches!(
        pair.session.disconnect_v5(
            pair.now,
            DisconnectReasonCode::NormalDisconnection,
            Default::default()
        ),
        Err(ApiMisuse::NeedsV5(_))
    ));
    assert!(pair.sent().is_empty());
}

#[test]
fn connack_properties_are_recorded_as_capabilities() {
    let caps = ConnAckProperties {
        retain_available: Some(false),
        maximum_qos: Some(QoS::AtLeastOnce),
        wildcard_subscription_available: Some(false),
        subscription_identifier_available: Some(false),
        shared_subscription_available: Some(false),
        receive_maximum: NonZeroU16::new(7),
        maximum_packet_size: NonZeroU32::new(1000),
        topic_alias_maximum: Some(3),
        server_keep_alive: Some(10),
        assigned_client_identifier: Some(s("assigned-1")),
        response_information: Some(s("resp/")),
        server_reference: Some(s("other:1883")),
        session_expiry_interval: Some(99),
        ..Default::default()
    };
    let mut pair = Pair::new(SessionConfig::new(MqttString::default()).level(ProtocolLevel::V5));
    open(&mut pair, connack_v5(false, caps));
    let c = pair.session.server_capabilities().unwrap();
    assert!(!c.retain_available);
    assert_eq!(c.maximum_qos, QoS::AtLeastOnce);
    assert!(!c.wildcard_subscription_available);
    assert!(!c.subscription_identifiers_available);
    assert!(!c.shared_subscription_available);
    assert_eq!(c.receive_maximum, 7);
    assert_eq!(c.maximum_packet_size, Some(1000));
    assert_eq!(c.topic_alias_maximum, 3);
    assert_eq!(c.server_keep_alive, Some(10));
    assert_eq!(c.response_information.as_deref(), Some("resp/"));
    assert_eq!(c.server_reference.as_deref(), Some("other:1883"));
    assert_eq!(c.session_expiry_interval, Some(99));
    // [MQTT-3.2.2-16] the assigned identifier is kept for the next CONNECT.
    assert_eq!(pair.session.config().client_id.as_str(), "assigned-1");
}

#[test]
fn server_keep_alive_replaces_ours() {
    // [MQTT-3.2.2-21] ours is 60 s, the broker's 10 s: the probe goes out after 10 s.
    let mut pair = connected_with(
        v5_config(),
        ConnAckProperties {
            server_keep_alive: Some(10),
            ..Default::default()
        },
    );
    pair.advance(Duration::from_secs(9));
    assert!(pair.sent().is_empty());
    pair.advance(Duration::from_secs(1));
    assert_eq!(pair.sent(), vec![Packet::PingReq]);
}

#[test]
fn connack_refusal_reports_reason_code_and_string() {
    let mut pair = Pair::new(v5_config());
    pair.session.connect(pair.now).unwrap();
    pair.sent();
    let refusal = ConnAckV5 {
        session_present: false,
        reason: ConnectReasonCode::BadUserNameOrPassword,
        properties: ConnAckProperties {
            reason_string: Some(s("who are you")),
            ..Default::default()
        },
    };
    pair.deliver(Packet::ConnAckV5(Box::new(refusal.clone())))
        .unwrap();
    let events = pair.events();
    let reason = DisconnectReason::RefusedV5(Box::new(refusal));
    assert!(reason.to_string().contains("who are you"), "{reason}");
    assert!(reason.to_string().contains("0x86"), "{reason}");
    assert_eq!(events, vec![Event::Disconnected(reason)]);
    assert!(!pair.session.is_connected());
}

// --- acknowledgements with reasons ------------------------------------------------------

#[test]
fn puback_failure_reaches_the_request_with_its_reason() {
    let mut pair = connected();
    let req = pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    let sent = pair.sent();
    let mut ack = Ack::new(pid(&sent[0]), PubAckReasonCode::NotAuthorized);
    ack.properties.reason_string = Some(s("no"));
    pair.deliver(Packet::PubAckV5(ack)).unwrap();
    assert_eq!(
        pair.events(),
        vec![Event::Failed {
            id: req,
            error: RequestError::PubAckRefused {
                code: PubAckReasonCode::NotAuthorized,
                reason_string: Some(s("no")),
            },
        }]
    );
    assert_eq!(pair.session.in_flight(), 0);
    // A success code other than 0 (No matching subscribers) completes it.
    let req = pair.publish(msg("a", b"2", QoS::AtLeastOnce));
    let sent = pair.sent();
    pair.deliver(Packet::PubAckV5(Ack::new(
        pid(&sent[0]),
        PubAckReasonCode::NoMatchingSubscribers,
    )))
    .unwrap();
    assert_eq!(pair.events(), vec![Event::Published(req)]);
}

#[test]
fn pubrec_failure_ends_the_qos2_flow_without_pubrel() {
    // [MQTT-4.3.3-4] PUBREL only after a PUBREC below 0x80; the failure reaches the request
    // (rumqttc #877).
    let mut pair = connected();
    let req = pair.publish(msg("a", b"1", QoS::ExactlyOnce));
    let sent = pair.sent();
    let packet_id = pid(&sent[0]);
    pair.deliver(Packet::PubRecV5(Ack::new(
        packet_id,
        PubAckReasonCode::QuotaExceeded,
    )))
    .unwrap();
    assert!(pair.sent().is_empty(), "no PUBREL after a failed PUBREC");
    assert_eq!(
        pair.events(),
        vec![Event::Failed {
            id: req,
            error: RequestError::PubRecRefused {
                code: PubAckReasonCode::QuotaExceeded,
                reason_string: None,
            },
        }]
    );
    assert_eq!(pair.session.in_flight(), 0, "the packet id is free again");
    // A PUBCOMP for it now is a violation: the flow is over.
    let r = pair.deliver(Packet::PubComp(packet_id));
    assert!(r.is_err());
}

#[test]
fn pubrec_success_goes_on_to_pubrel_and_pubcomp_reason_is_reported() {
    let mut pair = connected();
    let req = pair.publish(msg("a", b"1", QoS::ExactlyOnce));
    let sent = pair.sent();
    let packet_id = pid(&sent[0]);
    pair.deliver(Packet::PubRec(packet_id)).unwrap();
    assert_eq!(pair.sent(), vec![Packet::PubRel(packet_id)]);
    pair.deliver(Packet::PubCompV5(Ack::new(
        packet_id,
        PubRelReasonCode::PacketIdentifierNotFound,
    )))
    .unwrap();
    assert_eq!(
        pair.events(),
        vec![Event::Failed {
            id: req,
            error: RequestError::PubCompRefused {
                code: PubRelReasonCode::PacketIdentifierNotFound,
                reason_string: None,
            },
        }]
    );
}

#[test]
fn a_pubrel_for_an_id_we_do_not_hold_gets_pubcomp_0x92() {
    // [MQTT-3.7.2-1] PUBCOMP 0x92 "Packet Identifier not found": at level 5 the answer to a
    // PUBREL whose flow we do not hold (a re-sent PUBREL during recovery, or a mismatch)
    // says so; a known id gets Success.
    let mut pair = connected();
    let id = id(7);
    pair.deliver(Packet::PubRel(id)).unwrap();
    let sent = pair.sent();
    assert!(
        matches!(
            &sent[..],
            [Packet::PubCompV5(Ack { packet_id, reason: PubRelReasonCode::PacketIdentifierNotFound, .. })] if *packet_id == id
        ),
        "{sent:?}"
    );
    // A QoS 2 message, then its PUBREL: Success (the short form).
    pair.deliver(super::harness::publish(
        QosPid::ExactlyOnce(id),
        false,
        b"x",
    ))
    .unwrap();
    pair.events();
    assert_eq!(pair.sent(), vec![Packet::PubRec(id)]);
    pair.deliver(Packet::PubRel(id)).unwrap();
    let sent = pair.sent();
    assert!(
        matches!(
            &sent[..],
            [Packet::PubComp(p)] | [Packet::PubCompV5(Ack { packet_id: p, reason: PubRelReasonCode::Success, .. })] if *p == id
        ),
        "{sent:?}"
    );
}

#[test]
fn suback_and_unsuback_reason_codes_reach_the_request() {
    let mut pair = connected();
    let req = pair
        .session
        .subscribe(
            pair.now,
            vec![
                (filter("a"), QoS::AtLeastOnce),
                (filter("b"), QoS::ExactlyOnce),
            ],
        )
        .unwrap();
    let sent = pair.sent();
    let [Packet::Subscribe(sub)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    let props = ReasonProperties {
        reason_string: Some(s("b is private")),
        ..Default::default()
    };
    pair.deliver(Packet::SubAckV5(Box::new(SubAckV5 {
        packet_id: sub.packet_id,
        reason_codes: vec![
            SubAckReasonCode::GrantedQoS1,
            SubAckReasonCode::NotAuthorized,
        ],
        properties: props.clone(),
    })))
    .unwrap();
    assert_eq!(
        pair.events(),
        vec![Event::SubscribedV5 {
            id: req,
            reasons: vec![
                SubAckReasonCode::GrantedQoS1,
                SubAckReasonCode::NotAuthorized
            ],
            properties: props,
        }]
    );
    let req = pair
        .session
        .unsubscribe(pair.now, vec![filter("a"), filter("zz")])
        .unwrap();
    let sent = pair.sent();
    let [Packet::Unsubscribe(u)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    let reasons = vec![
        UnsubAckReasonCode::Success,
        UnsubAckReasonCode::NoSubscriptionExisted,
    ];
    pair.deliver(Packet::UnsubAckV5(Box::new(UnsubAckV5 {
        packet_id: u.packet_id,
        reason_codes: reasons.clone(),
        properties: ReasonProperties::default(),
    })))
    .unwrap();
    assert_eq!(
        pair.events(),
        vec![Event::UnsubscribedV5 {
            id: req,
            reasons,
            properties: ReasonProperties::default(),
        }]
    );
}

// --- flow control -----------------------------------------------------------------------

#[test]
fn the_brokers_receive_maximum_caps_our_publishes_in_flight() {
    // [MQTT-4.9.0-2], [MQTT-3.3.4-7] at most 2 unacknowledged, though our window is 100.
    let mut pair = connected_with(
        v5_config(),
        ConnAckProperties {
            receive_maximum: NonZeroU16::new(2),
            ..Default::default()
        },
    );
    for body in [b"1", b"2", b"3", b"4"] {
        pair.publish(msg("a", body, QoS::AtLeastOnce));
    }
    pair.publish(msg("a", b"q0", QoS::AtMostOnce));
    let sent = pair.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    // [MQTT-4.9.0-3] other packets still flow: a SUBSCRIBE waits in call order, but acks
    // of the broker's messages are not held back.
    pair.deliver(Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtLeastOnce(id(9)),
        retain: false,
        topic: topic("in"),
        payload: Bytes::from_static(b"x"),
    }))
    .unwrap();
    assert_eq!(pair.sent(), vec![Packet::PubAck(id(9))]);
    pair.deliver(Packet::PubAck(pid(&sent[0]))).unwrap();
    let next = pair.sent();
    assert_eq!(next.len(), 1);
    assert_eq!(as_publish(&next[0]).0.payload, Bytes::from_static(b"3"));
    pair.deliver(Packet::PubAck(pid(&sent[1]))).unwrap();
    let next2 = pair.sent();
    // "4", then the QoS 0 publish queued behind it.
    assert_eq!(next2.len(), 2, "{next2:?}");
    assert_eq!(as_publish(&next2[0]).0.payload, Bytes::from_static(b"4"));
}

fn incoming(qos_pid: QosPid, body: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos_pid,
        retain: false,
        topic: topic("in"),
        payload: Bytes::from_static(body),
    })
}

#[test]
fn our_receive_maximum_is_enforced_with_disconnect_0x93() {
    let config = v5_config().connect_properties(ConnectProperties {
        receive_maximum: NonZeroU16::new(2),
        ..Default::default()
    });
    let mut pair = connected_with(config, ConnAckProperties::default());
    pair.auto_ack = false;
    pair.deliver(incoming(QosPid::AtLeastOnce(id(1)), b"1"))
        .unwrap();
    pair.deliver(incoming(QosPid::ExactlyOnce(id(2)), b"2"))
        .unwrap();
    // QoS 0 does not count.
    pair.deliver(incoming(QosPid::AtMostOnce, b"0")).unwrap();
    // Answering one frees its place: PUBACK handed out.
    let token = pair.unacked.remove(0);
    pair.session.ack(token);
    assert_eq!(pair.sent(), vec![Packet::PubAck(id(1))]);
    pair.deliver(incoming(QosPid::AtLeastOnce(id(3)), b"3"))
        .unwrap();
    // Two unanswered now (2 awaits PUBREL/PUBCOMP, 3 its ack): one more is too many.
    let r = pair.deliver(incoming(QosPid::AtLeastOnce(id(4)), b"4"));
    assert_v5_violation(
        &mut pair,
        r,
        ProtocolError::ReceiveMaximumExceeded { max: 2 },
        DisconnectReasonCode::ReceiveMaximumExceeded,
    );
}

// --- maximum packet size ----------------------------------------------------------------

#[test]
fn nothing_larger_than_the_brokers_maximum_packet_size_is_sent() {
    // [MQTT-3.2.2-15] refused up front once the limit is known ...
    let mut pair = connected_with(
        v5_config(),
        ConnAckProperties {
            maximum_packet_size: NonZeroU32::new(64),
            ..Default::default()
        },
    );
    let big = Message::new(topic("a"), vec![0u8; 100], QoS::AtLeastOnce, false);
    let r = pair.session.publish(pair.now, big.clone());
    assert!(
        matches!(r, Err(ApiMisuse::PacketTooLarge { max: 64, .. })),
        "{r:?}"
    );
    assert!(pair.sent().is_empty());
    // ... and a request queued before the limit was known fails when its turn comes.
    pair.close();
    pair.events();
    let req = pair.publish(big);
    let small = pair.publish(msg("a", b"ok", QoS::AtLeastOnce));
    let (_, mut events) = open_events(
        &mut pair,
        connack_v5(
            false,
            ConnAckProperties {
                maximum_packet_size: NonZeroU32::new(64),
                ..Default::default()
            },
        ),
    );
    let sent = pair.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(as_publish(&sent[0]).0.payload, Bytes::from_static(b"ok"));
    events.extend(pair.events());
    assert!(
        events.iter().any(|e| matches!(e, Event::Failed { id, error: RequestError::PacketTooLarge { max: 64, .. } } if *id == req)),
        "{events:?}"
    );
    pair.deliver(Packet::PubAck(pid(&sent[0]))).unwrap();
    assert_eq!(pair.events(), vec![Event::Published(small)]);
}

#[test]
fn an_incoming_packet_above_our_maximum_is_refused_with_0x95() {
    // Our limit, not the broker's (MQTT.js mixes them up).
    let mut pair = connected_with(
        v5_config().max_packet_size(64),
        ConnAckProperties {
            maximum_packet_size: NonZeroU32::new(1_000_000),
            ..Default::default()
        },
    );
    let mut bytes = BytesMut::new();
    Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: topic("a"),
        payload: Bytes::from(vec![1u8; 100]),
    })
    .encode_for(ProtocolLevel::V5, &mut bytes)
    .unwrap();
    let r = pair.deliver_bytes(&bytes);
    let expected = ProtocolError::Decode(DecodeError::TooLarge {
        len: bytes.len(),
        max: 64,
    });
    assert_v5_violation(&mut pair, r, expected, DisconnectReasonCode::PacketTooLarge);
}

// --- topic aliases ----------------------------------------------------------------------

#[test]
fn outgoing_aliases_are_chosen_and_never_leak_into_resends_after_reconnect() {
    let caps = ConnAckProperties {
        topic_alias_maximum: Some(2),
        ..Default::default()
    };
    let config = v5_config()
        .clean_session(false)
        .connect_properties(ConnectProperties {
            session_expiry_interval: Some(600),
            ..Default::default()
        });
    let mut pair = connected_with(config, caps.clone());
    pair.publish(msg("long/topic/name", b"1", QoS::AtLeastOnce));
    pair.publish(msg("long/topic/name", b"2", QoS::AtLeastOnce));
    let sent = pair.sent();
    let (p1, props1) = as_publish(&sent[0]);
    assert_eq!(p1.topic.as_str(), "long/topic/name");
    let alias = props1.and_then(|p| p.topic_alias).expect("alias bound");
    let (p2, props2) = as_publish(&sent[1]);
    assert_eq!(p2.topic.as_str(), "", "second use: alias only");
    assert_eq!(props2.and_then(|p| p.topic_alias), Some(alias));
    // The connection drops with both unacknowledged; on the next one they are re-sent with
    // their full topic [MQTT-3.3.2-7] (paho.golang sent the alias-only form).
    pair.close();
    pair.events();
    open(&mut pair, connack_v5(true, caps));
    let resent = pair.sent();
    assert_eq!(resent.len(), 2);
    for p in &resent {
        assert!(as_publish(p).0.dup);
    }
    assert_eq!(as_publish(&resent[0]).0.topic.as_str(), "long/topic/name");
    // The second may use the alias the first re-bound on this connection.
    let (r2, r2props) = as_publish(&resent[1]);
    assert!(
        r2.topic.as_str() == "long/topic/name"
            || r2props.and_then(|p| p.topic_alias)
                == as_publish(&resent[0]).1.and_then(|p| p.topic_alias),
    );
}

#[test]
fn no_outgoing_alias_when_the_broker_allows_none_or_auto_is_off() {
    // [MQTT-3.2.2-18] Topic Alias Maximum absent: no alias at all.
    let mut pair = connected();
    pair.publish(msg("t", b"1", QoS::AtMostOnce));
    pair.publish(msg("t", b"2", QoS::AtMostOnce));
    for p in pair.sent() {
        assert_eq!(as_publish(&p).1.and_then(|p| p.topic_alias), None);
        assert_eq!(as_publish(&p).0.topic.as_str(), "t");
    }
    let caps = ConnAckProperties {
        topic_alias_maximum: Some(5),
        ..Default::default()
    };
    let mut pair = connected_with(v5_config().auto_topic_alias(false), caps);
    pair.publish(msg("t", b"1", QoS::AtMostOnce));
    // A caller-chosen alias is still used; above the maximum it is dropped
    // [MQTT-3.3.2-9].
    let alias = |n| PublishProperties {
        topic_alias: NonZeroU16::new(n),
        ..Default::default()
    };
    pair.publish(with_props(msg("t", b"2", QoS::AtMostOnce), alias(4)));
    pair.publish(with_props(msg("t", b"3", QoS::AtMostOnce), alias(4)));
    pair.publish(with_props(msg("u", b"4", QoS::AtMostOnce), alias(9)));
    let sent = pair.sent();
    let forms: Vec<(&str, Option<u16>)> = sent
        .iter()
        .map(|p| {
            let (p, props) = as_publish(p);
            (
                p.topic.as_str(),
                props.and_then(|p| p.topic_alias).map(|a| a.get()),
            )
        })
        .collect();
    assert_eq!(
        forms,
        vec![("t", None), ("t", Some(4)), ("", Some(4)), ("u", None)]
    );
}

fn aliased(t: &str, alias: u16, body: &'static [u8]) -> Packet {
    Packet::PublishV5(Box::new(PublishV5 {
        publish: Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic: if t.is_empty() {
                crate::topic::TopicName::empty_for_alias()
            } else {
                topic(t)
            },
            payload: Bytes::from_static(body),
        },
        properties: PublishProperties {
            topic_alias: NonZeroU16::new(alias),
            ..Default::default()
        },
    }))
}

#[test]
fn incoming_aliases_resolve_and_are_cleared_on_every_new_connection() {
    let config = v5_config().connect_properties(ConnectProperties {
        topic_alias_maximum: Some(2),
        ..Default::default()
    });
    let mut pair = connected_with(config, ConnAckProperties::default());
    pair.deliver(aliased("x/y", 1, b"1")).unwrap();
    pair.deliver(aliased("", 1, b"2")).unwrap();
    let events = pair.events();
    let topics: Vec<(&str, bool)> = events
        .iter()
        .map(|e| match e {
            Event::Message {
                publish,
                properties,
                ..
            } => (publish.topic.as_str(), properties.is_none()),
            other => panic!("{other:?}"),
        })
        .collect();
    // Topic resolved; the alias is not handed on (nothing else: no properties).
    assert_eq!(topics, vec![("x/y", true), ("x/y", true)]);
    // A new connection starts with no aliases (rumqttc kept them): alias-only is unknown.
    pair.close();
    pair.events();
    open(&mut pair, connack_v5(false, ConnAckProperties::default()));
    let r = pair.deliver(aliased("", 1, b"3"));
    assert_v5_violation(
        &mut pair,
        r,
        ProtocolError::UnknownTopicAlias { alias: 1 },
        DisconnectReasonCode::ProtocolError,
    );
}

#[test]
fn an_alias_above_our_maximum_is_refused_with_0x94() {
    // [MQTT-3.3.2-11] / [MQTT-3.1.2-27]: we advertised none.
    let mut pair = connected();
    let r = pair.deliver(aliased("x", 1, b"1"));
    assert_v5_violation(
        &mut pair,
        r,
        ProtocolError::TopicAliasInvalid { alias: 1, max: 0 },
        DisconnectReasonCode::TopicAliasInvalid,
    );
}

// --- session expiry ---------------------------------------------------------------------

#[test]
fn session_expiry_keeps_state_across_a_loss_even_with_clean_start() {
    // [MQTT-3.1.2-23] Clean Start 1 with expiry 60: the state outlives the connection.
    let config = v5_config().connect_properties(ConnectProperties {
        session_expiry_interval: Some(60),
        ..Default::default()
    });
    let mut pair = connected_with(config, ConnAckProperties::default());
    let req = pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    pair.sent();
    pair.close();
    let events = pair.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Failed { .. })),
        "{events:?}"
    );
    assert_eq!(pair.session.in_flight(), 1);
    // The next CONNECT has Clean Start: that discards the session [MQTT-3.1.2-4].
    let (_, events) = open_events(&mut pair, connack_v5(false, ConnAckProperties::default()));
    assert!(pair.sent().is_empty());
    assert_eq!(
        events,
        vec![Event::Failed {
            id: req,
            error: RequestError::SessionLost
        }]
    );
}

#[test]
fn a_session_with_expiry_resumes_and_resends() {
    let config = v5_config()
        .clean_session(false)
        .connect_properties(ConnectProperties {
            session_expiry_interval: Some(60),
            ..Default::default()
        });
    let mut pair = connected_with(config, ConnAckProperties::default());
    let req = pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    pair.sent();
    pair.close();
    pair.events();
    open(&mut pair, connack_v5(true, ConnAckProperties::default()));
    let sent = pair.sent();
    assert_eq!(sent.len(), 1);
    assert!(as_publish(&sent[0]).0.dup);
    pair.deliver(Packet::PubAck(pid(&sent[0]))).unwrap();
    assert_eq!(pair.events(), vec![Event::Published(req)]);
}

#[test]
fn session_present_0_discards_our_state_and_resends_nothing() {
    // [MQTT-3.2.2-5] the broker lost the session (expired, or restarted without
    // persistence): our in-flight publishes are discarded, not re-sent [MQTT-4.4.0-1], and
    // each fails with SessionLost; a publish still queued leaves as a new message.
    let config = v5_config()
        .clean_session(false)
        .max_inflight(1)
        .connect_properties(ConnectProperties {
            session_expiry_interval: Some(60),
            ..Default::default()
        });
    let mut pair = connected_with(config, ConnAckProperties::default());
    let first = pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    let second = pair.publish(msg("a", b"2", QoS::ExactlyOnce));
    assert_eq!(pair.sent().len(), 1, "the window holds one");
    pair.close();
    pair.events();
    let (_, events) = open_events(&mut pair, connack_v5(false, ConnAckProperties::default()));
    assert!(
        events.contains(&Event::Failed {
            id: first,
            error: RequestError::SessionLost
        }),
        "{events:?}"
    );
    let sent = pair.sent();
    assert_eq!(sent.len(), 1, "only the queued publish leaves: {sent:?}");
    let (p, _) = as_publish(&sent[0]);
    assert!(!p.dup, "a new message, not a re-send");
    assert_eq!(&p.payload[..], b"2");
    let id = pid(&sent[0]);
    pair.deliver(Packet::PubRec(id)).unwrap();
    assert_eq!(pair.sent(), vec![Packet::PubRel(id)]);
    pair.deliver(Packet::PubComp(id)).unwrap();
    assert_eq!(pair.events(), vec![Event::Published(second)]);
}

#[test]
fn the_brokers_session_expiry_wins() {
    // We ask for 60 s; the broker grants 0: the state dies with the connection.
    let config = v5_config().connect_properties(ConnectProperties {
        session_expiry_interval: Some(60),
        ..Default::default()
    });
    let mut pair = connected_with(
        config,
        ConnAckProperties {
            session_expiry_interval: Some(0),
            ..Default::default()
        },
    );
    let req = pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    pair.sent();
    pair.close();
    let events = pair.events();
    assert!(
        events.contains(&Event::Failed {
            id: req,
            error: RequestError::SessionLost
        }),
        "{events:?}"
    );
    assert_eq!(pair.session.in_flight(), 0);
}

#[test]
fn expiry_zero_drops_state_like_clean_session() {
    let mut pair = connected_with(
        v5_config().clean_session(false),
        ConnAckProperties::default(),
    );
    let req = pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    pair.sent();
    pair.close();
    assert!(pair.events().contains(&Event::Failed {
        id: req,
        error: RequestError::SessionLost
    }));
}

// --- DISCONNECT -------------------------------------------------------------------------

#[test]
fn server_disconnect_is_reported_with_reason_string_and_reference() {
    let mut pair = connected();
    let mut d = DisconnectV5::new(DisconnectReasonCode::UseAnotherServer);
    d.properties.reason_string = Some(s("maintenance"));
    d.properties.server_reference = Some(s("b2:1883"));
    pair.deliver(Packet::DisconnectV5(Box::new(d.clone())))
        .unwrap();
    let events = pair.events();
    let reason = DisconnectReason::Server(Box::new(d));
    assert_eq!(reason.initiator(), crate::session::Initiator::Remote);
    assert!(reason.to_string().contains("maintenance"), "{reason}");
    assert_eq!(events, vec![Event::Disconnected(reason)]);
    assert!(!pair.session.is_connected());
    assert!(pair.sent().is_empty(), "no answer to a server DISCONNECT");
    // [MQTT-3.14.2-2] a broker's DISCONNECT never carries a Session Expiry Interval.
    let mut pair = connected();
    let mut d = DisconnectV5::new(DisconnectReasonCode::ServerShuttingDown);
    d.properties.session_expiry_interval = Some(1);
    let r = pair.deliver(Packet::DisconnectV5(Box::new(d)));
    assert_v5_violation(
        &mut pair,
        r,
        ProtocolError::SessionExpiryFromServer,
        DisconnectReasonCode::ProtocolError,
    );
}

#[test]
fn client_disconnect_carries_reason_and_session_expiry() {
    let config = v5_config().connect_properties(ConnectProperties {
        session_expiry_interval: Some(60),
        ..Default::default()
    });
    let mut pair = connected_with(config.clone(), ConnAckProperties::default());
    let req = pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    pair.sent();
    let props = DisconnectProperties {
        session_expiry_interval: Some(0),
        ..Default::default()
    };
    pair.session
        .disconnect_v5(
            pair.now,
            DisconnectReasonCode::DisconnectWithWillMessage,
            props.clone(),
        )
        .unwrap();
    let sent = pair.sent();
    assert_eq!(
        sent,
        vec![Packet::DisconnectV5(Box::new(DisconnectV5 {
            reason: DisconnectReasonCode::DisconnectWithWillMessage,
            properties: props,
        }))]
    );
    // Expiry set to 0 on the way out: the session ends with this connection.
    let events = pair.events();
    assert!(
        events.contains(&Event::Failed {
            id: req,
            error: RequestError::Closed
        }),
        "{events:?}"
    );
    // [MQTT-3.14.2-2] a non-zero expiry when CONNECT had 0 is refused.
    let mut pair = connected();
    let r = pair.session.disconnect_v5(
        pair.now,
        DisconnectReasonCode::NormalDisconnection,
        DisconnectProperties {
            session_expiry_interval: Some(5),
            ..Default::default()
        },
    );
    assert_eq!(r, Err(ApiMisuse::ExpiryAfterZero));
    assert!(pair.sent().is_empty());
}

// --- local refusals ---------------------------------------------------------------------

#[test]
fn requests_the_broker_declared_unsupported_fail_locally() {
    let caps = ConnAckProperties {
        retain_available: Some(false),
        maximum_qos: Some(QoS::AtLeastOnce),
        wildcard_subscription_available: Some(false),
        subscription_identifier_available: Some(false),
        shared_subscription_available: Some(false),
        ..Default::default()
    };
    let mut pair = connected_with(v5_config(), caps);
    let retained = Message::new(topic("a"), &b"1"[..], QoS::AtMostOnce, true);
    assert_eq!(
        pair.session.publish(pair.now, retained),
        Err(ApiMisuse::RetainNotSupported)
    );
    assert_eq!(
        pair.session
            .publish(pair.now, msg("a", b"1", QoS::ExactlyOnce)),
        Err(ApiMisuse::QoSNotSupported {
            qos: QoS::ExactlyOnce,
            max: QoS::AtLeastOnce
        })
    );
    assert!(matches!(
        pair.session
            .subscribe(pair.now, vec![(filter("a/+"), QoS::AtMostOnce)]),
        Err(ApiMisuse::WildcardNotSupported { .. })
    ));
    assert!(matches!(
        pair.session
            .subscribe(pair.now, vec![(filter("$share/g/a"), QoS::AtMostOnce)]),
        Err(ApiMisuse::SharedNotSupported { .. })
    ));
    let r = pair.session.subscribe_v5(
        pair.now,
        vec![(filter("a"), SubscriptionOptions::qos(QoS::AtMostOnce))],
        SubscribeProperties {
            subscription_identifier: SubscriptionId::new(1),
            ..Default::default()
        },
    );
    assert_eq!(r, Err(ApiMisuse::SubscriptionIdNotSupported));
    assert!(pair.sent().is_empty(), "nothing refused was sent");
    assert!(pair.events().is_empty());
}

#[test]
fn shared_subscriptions_are_validated() {
    let mut pair = connected();
    let opts = SubscriptionOptions::qos(QoS::AtMostOnce);
    for bad in ["$share//a", "$share/g+/a", "$share/g", "$share/g/"] {
        let Ok(f) = crate::topic::TopicFilter::new(bad) else {
            continue;
        };
        let r = pair
            .session
            .subscribe_v5(pair.now, vec![(f, opts)], Default::default());
        assert!(
            matches!(r, Err(ApiMisuse::InvalidSharedSubscription { .. })),
            "{bad}: {r:?}"
        );
    }
    // [MQTT-3.8.3-4] No Local on a shared subscription.
    let no_local = SubscriptionOptions {
        no_local: true,
        ..opts
    };
    let r = pair.session.subscribe_v5(
        pair.now,
        vec![(filter("$share/g/a"), no_local)],
        Default::default(),
    );
    assert!(
        matches!(r, Err(ApiMisuse::InvalidSharedSubscription { .. })),
        "{r:?}"
    );
    pair.session
        .subscribe_v5(
            pair.now,
            vec![(filter("$share/g/a/#"), opts)],
            Default::default(),
        )
        .unwrap();
    assert_eq!(pair.sent().len(), 1);
    // A subscription identifier in a PUBLISH of ours [MQTT-3.3.4-6].
    let p = PublishProperties {
        subscription_identifiers: vec![SubscriptionId::new(1).unwrap()],
        ..Default::default()
    };
    assert_eq!(
        pair.session
            .publish(pair.now, with_props(msg("a", b"1", QoS::AtMostOnce), p)),
        Err(ApiMisuse::SubscriptionIdInPublish)
    );
}

// --- subscriptions ----------------------------------------------------------------------

#[test]
fn subscription_options_and_identifiers_go_out_and_come_back() {
    let mut pair = connected();
    let opts = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        no_local: true,
        retain_as_published: true,
        retain_handling: RetainHandling::DoNotSend,
    };
    let sid = SubscriptionId::new(42).unwrap();
    let req = pair
        .session
        .subscribe_v5(
            pair.now,
            vec![(filter("s/#"), opts)],
            SubscribeProperties {
                subscription_identifier: Some(sid),
                user_properties: vec![(s("u"), s("1"))],
            },
        )
        .unwrap();
    let sent = pair.sent();
    let [Packet::SubscribeV5(sub)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(sub.filters, vec![(filter("s/#"), opts)]);
    assert_eq!(sub.properties.subscription_identifier, Some(sid));
    pair.deliver(Packet::SubAck(crate::packet::SubAck {
        packet_id: sub.packet_id,
        return_codes: vec![crate::packet::SubscribeReturnCode::Success(
            QoS::AtLeastOnce,
        )],
    }))
    .unwrap();
    assert_eq!(
        pair.events(),
        vec![Event::SubscribedV5 {
            id: req,
            reasons: vec![SubAckReasonCode::GrantedQoS1],
            properties: ReasonProperties::default(),
        }]
    );
    // A message for it carries the identifier back (with its other properties).
    let props = PublishProperties {
        subscription_identifiers: vec![sid],
        content_type: Some(s("application/json")),
        user_properties: vec![(s("k"), s("v"))],
        ..Default::default()
    };
    pair.deliver(Packet::PublishV5(Box::new(PublishV5 {
        publish: Publish {
            dup: false,
            qos_pid: QosPid::AtLeastOnce(id(5)),
            retain: false,
            topic: topic("s/1"),
            payload: Bytes::from_static(b"{}"),
        },
        properties: props.clone(),
    })))
    .unwrap();
    let events = pair.events();
    match events.as_slice() {
        [Event::Message { properties, .. }] => {
            assert_eq!(properties.as_deref(), Some(&props));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pair.sent(), vec![Packet::PubAck(id(5))]);
}

// --- publish properties -----------------------------------------------------------------

#[test]
fn outgoing_publish_properties_are_sent() {
    let mut pair = connected();
    let props = PublishProperties {
        payload_format_indicator: Some(PayloadFormat::Utf8),
        message_expiry_interval: Some(30),
        content_type: Some(s("text/plain")),
        response_topic: Some(topic("reply/here")),
        correlation_data: Some(Bytes::from_static(b"id-1")),
        user_properties: vec![(s("a"), s("1")), (s("a"), s("2"))],
        ..Default::default()
    };
    pair.publish(with_props(msg("a", b"hi", QoS::AtLeastOnce), props.clone()));
    let sent = pair.sent();
    assert_eq!(as_publish(&sent[0]).1, Some(&props));
}

#[test]
fn payload_flagged_utf8_that_is_not_is_refused_with_0x99() {
    let mut pair = connected();
    let r = pair.deliver(Packet::PublishV5(Box::new(PublishV5 {
        publish: Publish {
            dup: false,
            qos_pid: QosPid::AtLeastOnce(id(1)),
            retain: false,
            topic: topic("a"),
            payload: Bytes::from_static(&[0xff, 0xfe]),
        },
        properties: PublishProperties {
            payload_format_indicator: Some(PayloadFormat::Utf8),
            ..Default::default()
        },
    })));
    assert_v5_violation(
        &mut pair,
        r,
        ProtocolError::PayloadFormatInvalid,
        DisconnectReasonCode::PayloadFormatInvalid,
    );
}

#[test]
fn message_expiry_counts_down_while_queued_and_expired_messages_are_not_sent() {
    let mut pair = Pair::new(v5_config());
    let expiry = |n| PublishProperties {
        message_expiry_interval: Some(n),
        ..Default::default()
    };
    let short = pair.publish(with_props(msg("a", b"short", QoS::AtLeastOnce), expiry(3)));
    pair.publish(with_props(msg("a", b"long", QoS::AtLeastOnce), expiry(10)));
    pair.advance(Duration::from_secs(4));
    let (_, mut events) = open_events(&mut pair, connack_v5(false, ConnAckProperties::default()));
    let sent = pair.sent();
    events.extend(pair.events());
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (p, props) = as_publish(&sent[0]);
    assert_eq!(p.payload, Bytes::from_static(b"long"));
    // [MQTT-3.3.2-6] what is left of its lifetime: 10 - 4.
    assert_eq!(props.and_then(|p| p.message_expiry_interval), Some(6));
    assert_eq!(
        events,
        vec![Event::Failed {
            id: short,
            error: RequestError::Expired
        }]
    );
}

#[test]
fn a_resent_publish_carries_what_is_left_of_its_expiry() {
    // [MQTT-3.3.2-6] held in flight across a reconnect, 3.5 s: a QoS 1 re-send carries what
    // is left (rounded up, as for a queued publish); run out meanwhile, it is still re-sent
    // [MQTT-4.4.0-1], with 1 s. A QoS 2 one goes as first sent: no expiry applies to it once
    // sent [MQTT-4.3.3-7].
    let config = v5_config()
        .clean_session(false)
        .connect_properties(ConnectProperties {
            session_expiry_interval: Some(600),
            ..Default::default()
        });
    let mut pair = connected_with(config, ConnAckProperties::default());
    let expiry = |n| PublishProperties {
        message_expiry_interval: Some(n),
        ..Default::default()
    };
    let expiries = |sent: &[Packet]| -> Vec<(Bytes, bool, Option<u32>)> {
        sent.iter()
            .map(|p| {
                let (p, props) = as_publish(p);
                let left = props.and_then(|p| p.message_expiry_interval);
                (p.payload.clone(), p.dup, left)
            })
            .collect()
    };
    let long = pair.publish(with_props(msg("a", b"long", QoS::AtLeastOnce), expiry(10)));
    pair.publish(with_props(msg("a", b"short1", QoS::AtLeastOnce), expiry(2)));
    pair.publish(with_props(msg("a", b"short2", QoS::ExactlyOnce), expiry(2)));
    pair.publish(msg("a", b"none", QoS::AtLeastOnce));
    let b = Bytes::from_static;
    assert_eq!(
        expiries(&pair.sent()),
        [
            (b(b"long"), false, Some(10)),
            (b(b"short1"), false, Some(2)),
            (b(b"short2"), false, Some(2)),
            (b(b"none"), false, None),
        ]
    );
    pair.close();
    pair.events();
    pair.advance(Duration::from_millis(3500));
    let (_, mut events) = open_events(&mut pair, connack_v5(true, ConnAckProperties::default()));
    let sent = pair.sent();
    events.extend(pair.events());
    assert_eq!(
        expiries(&sent),
        [
            (b(b"long"), true, Some(7)),
            (b(b"short1"), true, Some(1)),
            (b(b"short2"), true, Some(2)),
            (b(b"none"), true, None),
        ]
    );
    assert_eq!(events, [], "nothing sent is failed for its expiry");
    // The re-sent ones complete as usual.
    pair.deliver(Packet::PubAck(pid(&sent[0]))).unwrap();
    assert_eq!(pair.events(), [Event::Published(long)]);
}

// --- enhanced authentication ------------------------------------------------------------

fn auth(reason: AuthReasonCode, data: &'static [u8]) -> Packet {
    Packet::Auth(Box::new(Auth {
        reason,
        properties: AuthProperties {
            authentication_method: Some(s("SCRAM-SHA-256")),
            authentication_data: Some(Bytes::from_static(data)),
            ..Default::default()
        },
    }))
}

#[test]
fn auth_continue_and_reauthentication_are_driven_by_the_caller() {
    let config = v5_config().connect_properties(ConnectProperties {
        authentication_method: Some(s("SCRAM-SHA-256")),
        authentication_data: Some(Bytes::from_static(b"client-first")),
        ..Default::default()
    });
    let mut pair = Pair::new(config);
    pair.session.connect(pair.now).unwrap();
    let sent = pair.sent();
    let [Packet::Connect(c)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(
        c.properties.authentication_method.as_deref(),
        Some("SCRAM-SHA-256")
    );
    // The broker's challenge reaches the caller ...
    pair.deliver(auth(
        AuthReasonCode::ContinueAuthentication,
        b"server-first",
    ))
    .unwrap();
    let events = pair.events();
    match events.as_slice() {
        [Event::Auth { reason, properties }] => {
            assert_eq!(*reason, AuthReasonCode::ContinueAuthentication);
            assert_eq!(
                properties.authentication_data.as_deref(),
                Some(&b"server-first"[..])
            );
        }
        other => panic!("{other:?}"),
    }
    // ... who answers [MQTT-4.12.0-3], with the same method [MQTT-4.12.0-5].
    pair.session
        .auth_continue(pair.now, Some(Bytes::from_static(b"client-final")))
        .unwrap();
    let sent = pair.sent();
    assert_eq!(
        sent,
        vec![auth_packet(
            AuthReasonCode::ContinueAuthentication,
            b"client-final"
        )]
    );
    pair.deliver(connack_v5(
        false,
        ConnAckProperties {
            authentication_method: Some(s("SCRAM-SHA-256")),
            ..Default::default()
        },
    ))
    .unwrap();
    assert_eq!(
        pair.events(),
        vec![Event::Connected {
            session_present: false
        }]
    );
    // Re-authentication [MQTT-4.12.1-1]: AUTH 0x19, challenge, answer, Success.
    pair.session
        .reauthenticate(pair.now, Some(Bytes::from_static(b"again")))
        .unwrap();
    assert_eq!(
        pair.sent(),
        vec![auth_packet(AuthReasonCode::ReAuthenticate, b"again")]
    );
    assert_eq!(
        pair.session.reauthenticate(pair.now, None),
        Err(ApiMisuse::NoAuth("step is awaited now"))
    );
    pair.deliver(auth(AuthReasonCode::ContinueAuthentication, b"c2"))
        .unwrap();
    assert_eq!(pair.events().len(), 1);
    pair.session
        .auth_continue(pair.now, Some(Bytes::from_static(b"r2")))
        .unwrap();
    assert_eq!(pair.sent().len(), 1);
    pair.deliver(auth(AuthReasonCode::Success, b"")).unwrap();
    match pair.events().as_slice() {
        [Event::Auth { reason, .. }] => assert_eq!(*reason, AuthReasonCode::Success),
        other => panic!("{other:?}"),
    }
    // Once done, a stray AUTH is a Protocol Error.
    let r = pair.deliver(auth(AuthReasonCode::ContinueAuthentication, b"?"));
    assert!(matches!(r, Err(ProtocolError::UnexpectedAuth(_))), "{r:?}");
}

fn auth_packet(reason: AuthReasonCode, data: &'static [u8]) -> Packet {
    auth(reason, data)
}

#[test]
fn auth_without_a_method_is_a_protocol_error() {
    // [MQTT-4.12.0-6]
    let mut pair = connected();
    let r = pair.deliver(auth(AuthReasonCode::ContinueAuthentication, b"x"));
    assert_v5_violation(
        &mut pair,
        r,
        ProtocolError::UnexpectedAuth("our CONNECT had no Authentication Method"),
        DisconnectReasonCode::ProtocolError,
    );
    let mut pair = connected();
    assert!(matches!(
        pair.session.reauthenticate(pair.now, None),
        Err(ApiMisuse::NoAuth(_))
    ));
}

#[test]
fn resends_after_reconnect_respect_a_smaller_receive_maximum() {
    // [MQTT-4.9.0-2] three in flight from the last connection, the broker now allows one:
    // one re-send at a time, in order, each when the one before is acknowledged.
    let config = v5_config()
        .clean_session(false)
        .connect_properties(ConnectProperties {
            session_expiry_interval: Some(600),
            ..Default::default()
        });
    let mut pair = connected_with(config, ConnAckProperties::default());
    let reqs: Vec<_> = [b"1", b"2", b"3"]
        .into_iter()
        .map(|b| pair.publish(msg("a", b, QoS::AtLeastOnce)))
        .collect();
    assert_eq!(pair.sent().len(), 3);
    pair.close();
    pair.events();
    let caps = ConnAckProperties {
        receive_maximum: NonZeroU16::new(1),
        ..Default::default()
    };
    open(&mut pair, connack_v5(true, caps));
    for (n, body) in [b"1", b"2", b"3"].into_iter().enumerate() {
        let sent = pair.sent();
        assert_eq!(sent.len(), 1, "re-send {n}: {sent:?}");
        let (p, _) = as_publish(&sent[0]);
        assert!(p.dup);
        assert_eq!(p.payload, Bytes::from_static(body));
        // Nothing awaited beyond the one on the wire: a driver may sleep for its 4 bytes.
        assert_eq!(pair.session.owed_bytes(), 4);
        pair.deliver(Packet::PubAck(pid(&sent[0]))).unwrap();
        assert_eq!(pair.events(), vec![Event::Published(reqs[n])]);
    }
    assert!(pair.sent().is_empty());
}

#[test]
fn connack_contradicting_our_connect_is_a_protocol_error() {
    // [MQTT-3.2.2-2] Session Present after Clean Start.
    let mut pair = Pair::new(v5_config());
    pair.session.connect(pair.now).unwrap();
    pair.sent();
    let r = pair.deliver(connack_v5(true, ConnAckProperties::default()));
    assert_eq!(r, Err(ProtocolError::SessionPresentOnCleanStart));
    let events = pair.events();
    assert!(
        events.contains(&Event::Disconnected(DisconnectReason::Protocol(
            ProtocolError::SessionPresentOnCleanStart
        ))),
        "{events:?}"
    );
    assert!(!pair.session.is_connected());
    // [MQTT-4.12.0-6] an Authentication Method we never asked for.
    let mut pair = Pair::new(v5_config());
    pair.session.connect(pair.now).unwrap();
    pair.sent();
    let r = pair.deliver(connack_v5(
        false,
        ConnAckProperties {
            authentication_method: Some(s("X")),
            ..Default::default()
        },
    ));
    assert!(matches!(r, Err(ProtocolError::UnexpectedAuth(_))), "{r:?}");
    assert!(!pair.session.is_connected());
}

#[test]
fn problem_information_we_declined_is_a_protocol_error() {
    // [MQTT-3.1.2-29] Request Problem Information 0: no Reason String on a PUBACK ...
    let config = v5_config().connect_properties(ConnectProperties {
        request_problem_information: Some(false),
        ..Default::default()
    });
    let mut pair = connected_with(config.clone(), ConnAckProperties::default());
    pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    let sent = pair.sent();
    let mut ack = Ack::new(pid(&sent[0]), PubAckReasonCode::Success);
    ack.properties.reason_string = Some(s("fyi"));
    let r = pair.deliver(Packet::PubAckV5(ack));
    assert_v5_violation(
        &mut pair,
        r,
        ProtocolError::UnrequestedProblemInformation(crate::packet::PacketType::PubAck),
        DisconnectReasonCode::ProtocolError,
    );
    // ... while a DISCONNECT may carry one.
    let mut pair = connected_with(config, ConnAckProperties::default());
    let mut d = DisconnectV5::new(DisconnectReasonCode::ServerBusy);
    d.properties.reason_string = Some(s("busy"));
    pair.deliver(Packet::DisconnectV5(Box::new(d.clone())))
        .unwrap();
    assert_eq!(
        pair.events(),
        vec![Event::Disconnected(DisconnectReason::Server(Box::new(d)))]
    );
}

#[test]
fn unsuback_with_the_wrong_number_of_codes_is_a_protocol_error() {
    // [MQTT-3.11.3-1] one reason code per filter.
    let mut pair = connected();
    pair.session
        .unsubscribe(pair.now, vec![filter("a"), filter("b")])
        .unwrap();
    let sent = pair.sent();
    let [Packet::Unsubscribe(u)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    let id = u.packet_id;
    let r = pair.deliver(Packet::UnsubAckV5(Box::new(UnsubAckV5 {
        packet_id: id,
        reason_codes: vec![UnsubAckReasonCode::Success],
        properties: ReasonProperties::default(),
    })));
    assert_v5_violation(
        &mut pair,
        r,
        ProtocolError::UnsubAckCountMismatch {
            id,
            got: 1,
            expected: 2,
        },
        DisconnectReasonCode::ProtocolError,
    );
}

#[test]
fn commands_queued_before_the_connack_are_checked_against_it() {
    // Queued offline, the next broker declares no wildcards and no retain: both fail
    // with the refusal when their turn comes, nothing is sent, the rest goes on.
    let mut pair = Pair::new(v5_config());
    let sub = pair
        .session
        .subscribe(pair.now, vec![(filter("a/+"), QoS::AtMostOnce)])
        .unwrap();
    let retained = pair.publish(Message::new(topic("r"), &b"1"[..], QoS::AtLeastOnce, true));
    let plain = pair.publish(msg("p", b"2", QoS::AtMostOnce));
    let caps = ConnAckProperties {
        wildcard_subscription_available: Some(false),
        retain_available: Some(false),
        ..Default::default()
    };
    let (_, mut events) = open_events(&mut pair, connack_v5(false, caps));
    let sent = pair.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(as_publish(&sent[0]).0.topic.as_str(), "p");
    events.extend(pair.events());
    assert_eq!(
        events,
        vec![
            Event::Failed {
                id: sub,
                error: RequestError::Refused(ApiMisuse::WildcardNotSupported {
                    filter: "a/+".into()
                }),
            },
            Event::Failed {
                id: retained,
                error: RequestError::Refused(ApiMisuse::RetainNotSupported),
            },
            Event::Published(plain),
        ]
    );
}

#[test]
fn a_stored_publish_keeps_its_properties_and_a_restored_one_is_resent_with_them() {
    // The write-ahead record of a level 5 publish carries its properties (never a Topic
    // Alias); restored into a new session after a crash, the PUBLISH is re-sent with them.
    let config = v5_config()
        .clean_session(false)
        .persistence(true)
        .connect_properties(ConnectProperties {
            session_expiry_interval: Some(60),
            ..Default::default()
        });
    let mut pair = connected_with(
        config.clone(),
        ConnAckProperties {
            topic_alias_maximum: Some(4),
            ..Default::default()
        },
    );
    let properties = PublishProperties {
        content_type: Some(s("text/plain")),
        correlation_data: Some(Bytes::from_static(b"c-1")),
        user_properties: vec![(s("k"), s("v1")), (s("k"), s("v2"))],
        ..Default::default()
    };
    pair.publish(with_props(
        msg("store/t", b"1", QoS::AtLeastOnce),
        properties.clone(),
    ));
    let sent = pair.sent();
    assert!(
        as_publish(&sent[0])
            .1
            .is_some_and(|p| p.topic_alias.is_some()),
        "the live PUBLISH uses an alias: {sent:?}"
    );
    let mut snapshot = Snapshot::new();
    for op in pair.ops.clone() {
        snapshot.apply(op);
    }
    let [
        OutgoingFlow::Publish {
            properties: kept,
            publish,
            ..
        },
    ] = snapshot.outgoing()[..]
    else {
        panic!("{:?}", snapshot.outgoing())
    };
    assert_eq!(kept.as_deref(), Some(&properties), "stored whole, no alias");
    assert_eq!(publish.topic.as_str(), "store/t");

    // A new process: restore, reconnect, the re-send carries the properties.
    let mut pair = Pair::new(config);
    pair.session.restore(&snapshot).unwrap();
    open(&mut pair, connack_v5(true, ConnAckProperties::default()));
    let sent = pair.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (p, props) = as_publish(&sent[0]);
    assert!(p.dup);
    assert_eq!(props, Some(&properties));
}
