//! Session tests on virtual time with a scripted broker ([`harness`]); proptest
//! interleavings in [`prop`].

mod harness;
mod persist;
mod prop;
mod v5;

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::packet::{
    ConnectReturnCode, DecodeError, EncodeError, LastWill, Packet, PacketType, ProtocolLevel, QoS,
    QosPid, SubAck, Subscribe, SubscribeReturnCode, Unsubscribe,
};
use crate::session::{ApiMisuse, DisconnectReason, Event, ProtocolError, RequestError, RequestId};
use crate::text::MqttString;

use harness::{Pair, config, connack, filter, id, messages, msg, publish, topic};

fn connected() -> Pair {
    let mut pair = Pair::new(config());
    assert!(pair.connect(false).is_empty());
    pair
}

fn persistent() -> Pair {
    let mut pair = Pair::new(config().clean_session(false));
    assert!(pair.connect(false).is_empty());
    pair
}

/// The packet id of a PUBLISH the client sent.
fn pid(p: &Packet) -> u16 {
    match p {
        Packet::Publish(p) => p.packet_id().map_or(0, |i| i.get()),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

fn is_dup(p: &Packet) -> bool {
    matches!(p, Packet::Publish(p) if p.dup)
}

fn payload(p: &Packet) -> &[u8] {
    match p {
        Packet::Publish(p) => &p.payload,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// Asserts the session reported this violation, both as the error and as the event.
fn assert_violation(pair: &mut Pair, r: Result<(), ProtocolError>, expected: ProtocolError) {
    assert_eq!(r, Err(expected.clone()));
    let events = pair.events();
    assert!(
        events.contains(&Event::Disconnected(DisconnectReason::Protocol(expected))),
        "no Disconnected(Protocol) in {events:?}"
    );
    assert!(!pair.session.is_connected());
    assert!(pair.sent().is_empty(), "the client sent after a violation");
}

// Connection establishment.

#[test]
fn nothing_but_connect_is_sent_before_connack() {
    let mut pair = Pair::new(config());
    pair.session.connect(pair.now).unwrap();
    let p = pair.publish(msg("a", b"x", QoS::AtLeastOnce));
    let s = pair
        .session
        .subscribe(pair.now, vec![(filter("a/#"), QoS::AtMostOnce)])
        .unwrap();
    let sent = pair.sent();
    assert!(matches!(sent.as_slice(), [Packet::Connect(_)]), "{sent:?}");
    assert!(!pair.session.is_connected());

    pair.deliver(connack(ConnectReturnCode::Accepted, false))
        .unwrap();
    assert!(pair.session.is_connected());
    let sent = pair.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Publish(_), Packet::Subscribe(_)]),
        "call order is wire order: {sent:?}"
    );
    assert_eq!(
        pair.events(),
        [Event::Connected {
            session_present: false
        }]
    );
    assert!(p < s, "request ids are monotonic");
}

#[test]
fn connect_carries_the_configuration() {
    let will = LastWill {
        topic: topic("lwt"),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Default::default(),
    };
    let cfg = config()
        .keep_alive(Duration::from_millis(1_500))
        .clean_session(false)
        .will(Some(will.clone()))
        .credentials(
            Some(MqttString::new("user").unwrap()),
            Some(Bytes::from_static(b"pw")),
        );
    let mut pair = Pair::new(cfg);
    pair.session.connect(pair.now).unwrap();
    let sent = pair.sent();
    let [Packet::Connect(c)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(c.level, ProtocolLevel::V3_1_1);
    assert_eq!(c.client_id.as_str(), "tern-test");
    assert_eq!(c.keep_alive, 2, "sub-second keepalive rounds up");
    assert!(!c.clean_session);
    assert_eq!(c.will.as_ref(), Some(&will));
    assert_eq!(c.username.as_deref(), Some("user"));
    assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
}

#[test]
fn keep_alive_is_capped_at_65535_seconds() {
    let mut pair = Pair::new(config().keep_alive(Duration::from_secs(100_000)));
    pair.session.connect(pair.now).unwrap();
    let sent = pair.sent();
    let [Packet::Connect(c)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(c.keep_alive, 65_535);
}

#[test]
fn a_v31_client_id_of_24_characters_is_api_misuse() {
    let cfg =
        crate::session::SessionConfig::new(MqttString::new("abcdefghijklmnopqrstuvwx").unwrap())
            .level(ProtocolLevel::V3_1);
    let mut pair = Pair::new(cfg);
    assert_eq!(
        pair.session.connect(pair.now),
        Err(ApiMisuse::Encode(EncodeError::ClientIdLength { len: 24 }))
    );
    assert!(
        pair.session.poll_timeout().is_none(),
        "no CONNACK timer armed"
    );
    assert!(pair.sent().is_empty());
}

#[test]
fn set_level_switches_the_next_connect_to_mqtt_31() {
    let mut pair = Pair::new(config());
    pair.session.set_level(ProtocolLevel::V3_1);
    pair.session.connect(pair.now).unwrap();
    let sent = pair.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Connect(c)] if c.level == ProtocolLevel::V3_1),
        "{sent:?}"
    );
}

#[test]
fn connack_accepted_reports_session_present() {
    let mut pair = Pair::new(config().clean_session(false));
    pair.connect(true);
    assert!(pair.session.is_connected());
}

#[test]
fn connack_refusals_1_to_5_are_reported_with_their_code() {
    for n in 1..=5 {
        let code = ConnectReturnCode::from_u8(n).unwrap();
        let mut pair = Pair::new(config());
        pair.session.connect(pair.now).unwrap();
        pair.sent();
        pair.deliver(connack(code, false)).unwrap();
        assert_eq!(
            pair.events(),
            [Event::Disconnected(DisconnectReason::Refused(code))]
        );
        assert!(!pair.session.is_connected());
        assert!(pair.session.poll_timeout().is_none());
        assert!(pair.sent().is_empty());
    }
}

#[test]
fn a_first_packet_other_than_connack_is_not_connack() {
    let mut pair = Pair::new(config());
    pair.session.connect(pair.now).unwrap();
    pair.sent();
    let r = pair.deliver(Packet::PubAck(id(1)));
    assert_eq!(r, Err(ProtocolError::UnexpectedPacket(PacketType::PubAck)));
    assert_eq!(
        pair.events(),
        [Event::Disconnected(DisconnectReason::NotConnAck(
            PacketType::PubAck
        ))]
    );
}

#[test]
fn no_connack_within_the_timeout_is_connack_timeout() {
    let mut pair = Pair::new(config().connack_timeout(Duration::from_secs(5)));
    pair.session.connect(pair.now).unwrap();
    pair.sent();
    assert_eq!(
        pair.session.poll_timeout(),
        Some(pair.now + Duration::from_secs(5))
    );
    pair.advance(Duration::from_millis(4_999));
    assert!(pair.events().is_empty());
    pair.advance(Duration::from_millis(1));
    assert_eq!(
        pair.events(),
        [Event::Disconnected(DisconnectReason::ConnAckTimeout(
            Duration::from_secs(5)
        ))]
    );
    assert!(pair.session.poll_timeout().is_none());
}

#[test]
fn connect_while_connecting_or_connected_is_api_misuse() {
    let mut pair = Pair::new(config());
    pair.session.connect(pair.now).unwrap();
    assert_eq!(
        pair.session.connect(pair.now),
        Err(ApiMisuse::AlreadyConnected)
    );
    pair.sent();
    pair.deliver(connack(ConnectReturnCode::Accepted, false))
        .unwrap();
    assert_eq!(
        pair.session.connect(pair.now),
        Err(ApiMisuse::AlreadyConnected)
    );
}

#[test]
fn a_second_connack_is_a_protocol_error() {
    let mut pair = connected();
    let r = pair.deliver(connack(ConnectReturnCode::Accepted, false));
    assert_violation(&mut pair, r, ProtocolError::DuplicateConnAck);
}

#[test]
fn the_session_can_connect_again_after_a_refusal() {
    let mut pair = Pair::new(config());
    pair.session.connect(pair.now).unwrap();
    pair.sent();
    pair.deliver(connack(ConnectReturnCode::ServerUnavailable, false))
        .unwrap();
    pair.events();
    pair.close();
    assert!(pair.events().is_empty(), "no second Disconnected");
    assert!(pair.connect(false).is_empty());
}

// Outgoing publishes.

#[test]
fn qos0_publish_completes_when_its_bytes_are_handed_out() {
    let mut pair = connected();
    let req = pair.publish(msg("a", b"zero", QoS::AtMostOnce));
    assert!(pair.events().is_empty(), "not before poll_transmit");
    let sent = pair.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Publish(p)] if p.qos_pid == QosPid::AtMostOnce && !p.dup),
        "{sent:?}"
    );
    assert_eq!(pair.events(), [Event::Published(req)]);
}

#[test]
fn qos1_publish_completes_at_puback() {
    let mut pair = connected();
    let req = pair.publish(msg("a", b"one", QoS::AtLeastOnce));
    let sent = pair.sent();
    assert_eq!(sent.len(), 1);
    assert!(!is_dup(&sent[0]));
    let n = pid(&sent[0]);
    assert_ne!(n, 0);
    assert!(pair.events().is_empty());
    pair.deliver(Packet::PubAck(id(n))).unwrap();
    assert_eq!(pair.events(), [Event::Published(req)]);
    assert_eq!(pair.session.in_flight(), 0);
}

#[test]
fn owed_bytes_count_the_acknowledgements_of_what_was_handed_out() {
    let mut pair = Pair::new(config().keep_alive(Duration::from_secs(10)));
    pair.session.connect(pair.now).unwrap();
    assert_eq!(pair.session.owed_bytes(), 0, "before CONNACK");
    pair.sent();
    pair.deliver(connack(ConnectReturnCode::Accepted, false))
        .unwrap();
    let reqs: Vec<_> = (0..10)
        .map(|_| pair.publish(msg("a", b"one", QoS::AtLeastOnce)))
        .collect();
    assert_eq!(reqs.len(), 10);
    assert_eq!(pair.session.owed_bytes(), 0, "nothing handed out yet");
    let sent = pair.sent();
    assert_eq!(pair.session.owed_bytes(), 40, "10 PUBACKs");
    // Half a PUBACK buffered: 2 of its bytes are no longer to come.
    let mut ack = BytesMut::new();
    Packet::PubAck(id(pid(&sent[0]))).encode(&mut ack).unwrap();
    pair.deliver_bytes(&ack[..2]).unwrap();
    assert_eq!(pair.session.owed_bytes(), 38);
    pair.deliver_bytes(&ack[2..]).unwrap();
    assert_eq!(pair.session.owed_bytes(), 36);
    // A SUBSCRIBE awaits its SUBACK (at least 4 bytes of it).
    pair.session
        .subscribe(pair.now, vec![(filter("s"), QoS::AtMostOnce)])
        .unwrap();
    assert_eq!(pair.session.owed_bytes(), 36, "SUBSCRIBE not handed out");
    pair.sent();
    assert_eq!(pair.session.owed_bytes(), 40);
    // While a PINGREQ awaits its 2-byte PINGRESP, every byte counts.
    pair.advance(Duration::from_secs(10));
    assert_eq!(pair.sent(), [Packet::PingReq]);
    assert_eq!(pair.session.owed_bytes(), 0, "PINGRESP outstanding");
    pair.deliver(Packet::PingResp).unwrap();
    assert_eq!(pair.session.owed_bytes(), 40);
    pair.close();
    assert_eq!(pair.session.owed_bytes(), 0, "connection gone");
}

#[test]
fn owed_bytes_follow_a_qos2_flow_through_pubrel() {
    let mut pair = connected();
    pair.publish(msg("a", b"two", QoS::ExactlyOnce));
    let n = pid(&pair.sent()[0]);
    assert_eq!(pair.session.owed_bytes(), 4, "PUBREC");
    pair.deliver(Packet::PubRec(id(n))).unwrap();
    assert_eq!(pair.session.owed_bytes(), 0, "PUBREL not handed out yet");
    assert_eq!(pair.sent(), [Packet::PubRel(id(n))]);
    assert_eq!(pair.session.owed_bytes(), 4, "PUBCOMP");
    pair.deliver(Packet::PubComp(id(n))).unwrap();
    assert_eq!(pair.session.owed_bytes(), 0);
}

#[test]
fn owed_bytes_count_the_pubrel_owed_for_each_first_pubrec() {
    let mut pair = connected();
    pair.deliver(publish(QosPid::ExactlyOnce(id(5)), false, b"in"))
        .unwrap();
    assert_eq!(pair.session.owed_bytes(), 0, "PUBREC not handed out yet");
    assert_eq!(pair.sent(), [Packet::PubRec(id(5))]);
    assert_eq!(pair.session.owed_bytes(), 4, "PUBREL");
    // A re-send is answered with PUBREC again, but the broker owes one PUBREL, not two.
    pair.deliver(publish(QosPid::ExactlyOnce(id(5)), true, b"in"))
        .unwrap();
    assert_eq!(pair.sent(), [Packet::PubRec(id(5))]);
    assert_eq!(pair.session.owed_bytes(), 4);
    pair.deliver(Packet::PubRel(id(5))).unwrap();
    assert_eq!(pair.session.owed_bytes(), 0);
    assert_eq!(pair.sent(), [Packet::PubComp(id(5))]);
    // A PUBREL for an id not awaiting one changes nothing.
    pair.deliver(Packet::PubRel(id(6))).unwrap();
    assert_eq!(pair.session.owed_bytes(), 0);
}

#[test]
fn take_sent_other_tells_acknowledgements_from_everything_else() {
    let mut pair = connected();
    pair.session.take_sent_other();
    assert!(!pair.session.take_sent_other(), "nothing handed out");
    pair.deliver(publish(QosPid::AtLeastOnce(id(3)), false, b"1"))
        .unwrap();
    pair.deliver(publish(QosPid::ExactlyOnce(id(4)), false, b"2"))
        .unwrap();
    assert_eq!(pair.sent(), [Packet::PubAck(id(3)), Packet::PubRec(id(4))]);
    assert!(!pair.session.take_sent_other(), "acknowledgements only");
    pair.deliver(Packet::PubRel(id(4))).unwrap();
    assert_eq!(pair.sent(), [Packet::PubComp(id(4))]);
    assert!(
        !pair.session.take_sent_other(),
        "PUBCOMP is an acknowledgement"
    );
    pair.publish(msg("a", b"x", QoS::AtMostOnce));
    pair.sent();
    assert!(pair.session.take_sent_other(), "a PUBLISH");
    assert!(!pair.session.take_sent_other(), "cleared");
}

#[test]
fn qos2_publish_sends_pubrel_at_pubrec_and_completes_at_pubcomp() {
    let mut pair = connected();
    let req = pair.publish(msg("a", b"two", QoS::ExactlyOnce));
    let sent = pair.sent();
    let n = pid(&sent[0]);
    pair.deliver(Packet::PubRec(id(n))).unwrap();
    assert_eq!(pair.sent(), [Packet::PubRel(id(n))]);
    assert!(pair.events().is_empty());
    pair.deliver(Packet::PubComp(id(n))).unwrap();
    assert_eq!(pair.events(), [Event::Published(req)]);
    assert_eq!(pair.session.in_flight(), 0);
}

#[test]
fn a_repeated_pubrec_is_answered_with_pubrel_again() {
    let mut pair = connected();
    pair.publish(msg("a", b"two", QoS::ExactlyOnce));
    let n = pid(&pair.sent()[0]);
    pair.deliver(Packet::PubRec(id(n))).unwrap();
    assert_eq!(pair.sent(), [Packet::PubRel(id(n))]);
    pair.deliver(Packet::PubRec(id(n))).unwrap();
    assert_eq!(pair.sent(), [Packet::PubRel(id(n))]);
}

#[test]
fn publishes_beyond_the_window_wait_and_leave_in_order() {
    let mut pair = Pair::new(config().max_inflight(2));
    pair.connect(false);
    let reqs: Vec<RequestId> = (0..5u8)
        .map(|i| {
            let payload: &'static [u8] = [b"0", b"1", b"2", b"3", b"4"][usize::from(i)];
            pair.publish(msg("a", payload, QoS::AtLeastOnce))
        })
        .collect();
    let q0 = pair.publish(msg("a", b"q0", QoS::AtMostOnce));
    let sent = pair.sent();
    assert_eq!(sent.iter().map(payload).collect::<Vec<_>>(), [b"0", b"1"]);
    assert_eq!(pair.session.queued(), 4, "the QoS 0 publish waits its turn");

    pair.deliver(Packet::PubAck(id(pid(&sent[1])))).unwrap();
    let next = pair.sent();
    assert_eq!(next.iter().map(payload).collect::<Vec<_>>(), [b"2"]);
    pair.deliver(Packet::PubAck(id(pid(&sent[0])))).unwrap();
    pair.deliver(Packet::PubAck(id(pid(&next[0])))).unwrap();
    let rest = pair.sent();
    assert_eq!(
        rest.iter().map(payload).collect::<Vec<_>>(),
        [&b"3"[..], b"4", b"q0"]
    );
    assert_eq!(
        pair.events(),
        [
            Event::Published(reqs[1]),
            Event::Published(reqs[0]),
            Event::Published(reqs[2]),
            Event::Published(q0),
        ]
    );
}

#[test]
fn subscribes_wait_behind_publishes_held_by_the_window() {
    let mut pair = Pair::new(config().max_inflight(1));
    pair.connect(false);
    pair.publish(msg("a", b"0", QoS::AtLeastOnce));
    pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    let s = pair
        .session
        .subscribe(pair.now, vec![(filter("x"), QoS::AtLeastOnce)])
        .unwrap();
    let u = pair
        .session
        .unsubscribe(pair.now, vec![filter("y")])
        .unwrap();
    let sent = pair.sent();
    assert_eq!(
        sent.len(),
        1,
        "only the first publish fits the window: {sent:?}"
    );
    assert_eq!(payload(&sent[0]), b"0");
    pair.deliver(Packet::PubAck(id(pid(&sent[0])))).unwrap();
    let sent = pair.sent();
    // The second publish takes the window; the SUBSCRIBE and UNSUBSCRIBE behind it need
    // no window and follow it, in call order.
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(payload(&sent[0]), b"1");
    let sent = sent[1..].to_vec();
    let Packet::Subscribe(Subscribe { packet_id: sid, .. }) = &sent[0] else {
        panic!("{sent:?}")
    };
    let Packet::Unsubscribe(Unsubscribe { packet_id: uid, .. }) = &sent[1] else {
        panic!("{sent:?}")
    };
    assert_ne!(sid, uid);
    pair.events();
    pair.deliver(Packet::SubAck(SubAck {
        packet_id: *sid,
        return_codes: vec![SubscribeReturnCode::Failure],
    }))
    .unwrap();
    pair.deliver(Packet::UnsubAck(*uid)).unwrap();
    assert_eq!(
        pair.events(),
        [
            Event::Subscribed {
                id: s,
                granted: vec![SubscribeReturnCode::Failure]
            },
            Event::Unsubscribed(u),
        ]
    );
}

#[test]
fn a_full_queue_refuses_commands_with_queue_full() {
    let mut pair = Pair::new(config().max_queued(2));
    pair.publish(msg("a", b"0", QoS::AtMostOnce));
    pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    assert_eq!(
        pair.session
            .publish(pair.now, msg("a", b"2", QoS::AtMostOnce)),
        Err(ApiMisuse::QueueFull { max: 2 })
    );
    assert_eq!(
        pair.session
            .subscribe(pair.now, vec![(filter("a"), QoS::AtMostOnce)]),
        Err(ApiMisuse::QueueFull { max: 2 })
    );
    // Once connected, commands that can leave at once do not count against the queue.
    let sent = pair.connect(false);
    assert_eq!(sent.len(), 2);
    for _ in 0..5 {
        pair.publish(msg("a", b"n", QoS::AtMostOnce));
    }
    assert_eq!(pair.sent().len(), 5);
}

#[test]
fn empty_filter_lists_are_api_misuse() {
    let mut pair = connected();
    assert_eq!(
        pair.session.subscribe(pair.now, vec![]),
        Err(ApiMisuse::NoFilters)
    );
    assert_eq!(
        pair.session.unsubscribe(pair.now, vec![]),
        Err(ApiMisuse::NoFilters)
    );
}

#[test]
fn packet_ids_cycle_through_a_ring_of_four_windows_so_a_busy_connection_stays_small() {
    // A window of 100: ids 1..=1024, sequential, the one still in flight skipped; the
    // in-flight table's index never grows past the ring although the window never empties.
    let mut pair = connected();
    pair.publish(msg("held", b"h", QoS::AtLeastOnce));
    assert_eq!(pid(&pair.sent()[0]), 1);
    let mut seen = Vec::with_capacity(3000);
    for _ in 0..3000 {
        pair.publish(msg("a", b"x", QoS::AtLeastOnce));
        let n = pid(&pair.sent()[0]);
        seen.push(n);
        pair.deliver(Packet::PubAck(id(n))).unwrap();
    }
    assert_eq!(seen[..3], [2, 3, 4]);
    assert_eq!(seen[1022], 1024);
    assert_eq!(seen[1023], 2, "1 is still in flight, so the wrap skips it");
    assert!(seen.iter().all(|&n| (2..=1024).contains(&n)), "{seen:?}");
}

#[test]
fn packet_ids_wrap_after_65535_and_skip_ids_still_in_flight() {
    let mut pair = connected();
    // The whole id space as the ring (a window of 16,384 or more).
    pair.session.ids.set_wrap_after(u16::MAX);
    let held = pair.publish(msg("held", b"h", QoS::AtLeastOnce));
    let first = pair.sent();
    assert_eq!(pid(&first[0]), 1);
    let mut seen = Vec::with_capacity(65_535);
    for _ in 0..65_535 {
        pair.publish(msg("a", b"x", QoS::AtLeastOnce));
        let sent = pair.sent();
        let n = pid(&sent[0]);
        seen.push(n);
        pair.deliver(Packet::PubAck(id(n))).unwrap();
    }
    assert_eq!(seen[0], 2);
    assert_eq!(seen[65_533], 65_535);
    assert_eq!(
        seen[65_534], 2,
        "1 is still in flight, so the wrap skips it"
    );
    assert!(!seen.contains(&1));
    pair.deliver(Packet::PubAck(id(1))).unwrap();
    let events = pair.events();
    assert_eq!(events.len(), 65_536);
    assert_eq!(events.last(), Some(&Event::Published(held)));
}

// Incoming publishes.

#[test]
fn incoming_qos0_and_qos1_are_delivered_and_qos1_is_acknowledged() {
    let mut pair = connected();
    let p0 = publish(QosPid::AtMostOnce, false, b"0");
    let p1 = publish(QosPid::AtLeastOnce(id(9)), false, b"1");
    pair.deliver(p0.clone()).unwrap();
    pair.deliver(p1.clone()).unwrap();
    assert_eq!(pair.sent(), [Packet::PubAck(id(9))]);
    let (Packet::Publish(m0), Packet::Publish(m1)) = (p0, p1) else {
        unreachable!()
    };
    assert_eq!(messages(pair.events()), [m0, m1]);
}

#[test]
fn incoming_qos2_is_delivered_once_even_when_resent_with_dup() {
    let mut pair = connected();
    let first = publish(QosPid::ExactlyOnce(id(7)), false, b"2");
    pair.deliver(first.clone()).unwrap();
    assert_eq!(pair.sent(), [Packet::PubRec(id(7))]);
    pair.deliver(publish(QosPid::ExactlyOnce(id(7)), true, b"2"))
        .unwrap();
    assert_eq!(pair.sent(), [Packet::PubRec(id(7))], "PUBREC again");
    let Packet::Publish(m) = first else {
        unreachable!()
    };
    assert_eq!(messages(pair.events()), [m], "delivered once");

    pair.deliver(Packet::PubRel(id(7))).unwrap();
    assert_eq!(pair.sent(), [Packet::PubComp(id(7))]);
    // After PUBREL the id is free: the same id is a new message.
    pair.deliver(publish(QosPid::ExactlyOnce(id(7)), false, b"new"))
        .unwrap();
    assert_eq!(pair.events().len(), 1);
}

#[test]
fn pubrel_for_an_unknown_id_is_answered_with_pubcomp() {
    let mut pair = connected();
    pair.deliver(Packet::PubRel(id(42))).unwrap();
    assert_eq!(pair.sent(), [Packet::PubComp(id(42))]);
    assert!(pair.events().is_empty());
    assert!(pair.session.is_connected());
}

#[test]
fn acknowledgements_leave_in_the_order_their_triggers_arrived() {
    let mut pair = connected();
    pair.auto_ack = false;
    let mut bytes = BytesMut::new();
    for p in [
        publish(QosPid::ExactlyOnce(id(3)), false, b"a"),
        publish(QosPid::AtLeastOnce(id(1)), false, b"b"),
        publish(QosPid::AtLeastOnce(id(2)), false, b"c"),
    ] {
        p.encode(&mut bytes).unwrap();
    }
    pair.deliver_bytes(&bytes).unwrap();
    assert_eq!(pair.events().len(), 3);
    assert!(
        pair.sent().is_empty(),
        "nothing acknowledged before the application has it"
    );
    let [a, b, c] = pair.unacked[..] else {
        panic!("{:?}", pair.unacked)
    };
    // Acked in reverse: each waits for the ones that arrived before it [MQTT-4.6.0-2].
    pair.session.ack(c);
    pair.session.ack(b);
    assert!(
        pair.sent().is_empty(),
        "PUBACKs left ahead of the earlier PUBREC"
    );
    pair.session.ack(a);
    assert_eq!(
        pair.sent(),
        [
            Packet::PubRec(id(3)),
            Packet::PubAck(id(1)),
            Packet::PubAck(id(2)),
        ]
    );
    // Acking again does nothing.
    pair.session.ack(b);
    assert!(pair.sent().is_empty());
    pair.deliver(Packet::PubRel(id(3))).unwrap();
    assert_eq!(pair.sent(), [Packet::PubComp(id(3))]);
}

#[test]
fn input_split_at_every_byte_is_handled_like_whole_packets() {
    let mut pair = connected();
    let mut bytes = BytesMut::new();
    publish(QosPid::AtLeastOnce(id(5)), false, b"split")
        .encode(&mut bytes)
        .unwrap();
    for b in bytes.iter() {
        pair.deliver_bytes(&[*b]).unwrap();
    }
    assert_eq!(pair.sent(), [Packet::PubAck(id(5))]);
    assert_eq!(pair.events().len(), 1);
}

#[test]
fn incoming_qos2_ids_survive_a_reconnect_without_clean_session() {
    let mut pair = persistent();
    pair.deliver(publish(QosPid::ExactlyOnce(id(4)), false, b"x"))
        .unwrap();
    assert_eq!(pair.events().len(), 1);
    pair.close(); // PUBREC never reached the broker
    pair.events();
    assert!(pair.connect(true).is_empty());
    pair.deliver(publish(QosPid::ExactlyOnce(id(4)), true, b"x"))
        .unwrap();
    assert_eq!(pair.sent(), [Packet::PubRec(id(4))]);
    assert!(pair.events().is_empty(), "not delivered twice");
}

#[test]
fn incoming_qos2_ids_are_forgotten_when_the_broker_lost_the_session() {
    let mut pair = persistent();
    pair.deliver(publish(QosPid::ExactlyOnce(id(4)), false, b"x"))
        .unwrap();
    pair.close();
    pair.events();
    // session present = 0: the broker starts afresh, so id 4 is a new message.
    pair.connect(false);
    pair.deliver(publish(QosPid::ExactlyOnce(id(4)), false, b"y"))
        .unwrap();
    assert_eq!(pair.events().len(), 1, "delivered, not taken for a re-send");
}

#[test]
fn incoming_qos2_ids_are_kept_in_mqtt_31_which_has_no_session_present_bit() {
    let mut pair = Pair::new(config().clean_session(false).level(ProtocolLevel::V3_1));
    pair.connect(false);
    pair.deliver(publish(QosPid::ExactlyOnce(id(4)), false, b"x"))
        .unwrap();
    pair.close();
    pair.events();
    pair.connect(false);
    pair.deliver(publish(QosPid::ExactlyOnce(id(4)), true, b"x"))
        .unwrap();
    assert_eq!(pair.sent(), [Packet::PubRec(id(4))]);
    assert!(pair.events().is_empty(), "not delivered twice");
}

#[test]
fn incoming_qos2_ids_are_dropped_with_a_clean_session() {
    let mut pair = connected();
    pair.deliver(publish(QosPid::ExactlyOnce(id(4)), false, b"x"))
        .unwrap();
    pair.close();
    pair.events();
    pair.connect(false);
    pair.deliver(publish(QosPid::ExactlyOnce(id(4)), false, b"y"))
        .unwrap();
    assert_eq!(pair.events().len(), 1, "a new session: a new message");
}

// Resuming sessions.

#[test]
fn resume_resends_publish_with_dup_and_pubrel_in_original_order() {
    let mut pair = persistent();
    let a = pair.publish(msg("a", b"a", QoS::ExactlyOnce));
    let b = pair.publish(msg("a", b"b", QoS::AtLeastOnce));
    let c = pair.publish(msg("a", b"c", QoS::ExactlyOnce));
    let sent = pair.sent();
    let ids: Vec<u16> = sent.iter().map(pid).collect();
    // a reaches the PUBREL stage; b and c stay unacknowledged.
    pair.deliver(Packet::PubRec(id(ids[0]))).unwrap();
    assert_eq!(pair.sent(), [Packet::PubRel(id(ids[0]))]);
    pair.close();
    assert_eq!(
        pair.events(),
        [Event::Disconnected(DisconnectReason::TransportClosed)]
    );

    let resent = pair.connect(false);
    assert_eq!(resent.len(), 3, "{resent:?}");
    // [MQTT-4.3.3-1] a is never re-sent as PUBLISH once PUBREL went out.
    assert_eq!(resent[0], Packet::PubRel(id(ids[0])));
    assert!(is_dup(&resent[1]) && is_dup(&resent[2]));
    assert_eq!(pid(&resent[1]), ids[1]);
    assert_eq!(pid(&resent[2]), ids[2]);
    assert_eq!(payload(&resent[1]), b"b");

    pair.deliver(Packet::PubComp(id(ids[0]))).unwrap();
    pair.deliver(Packet::PubAck(id(ids[1]))).unwrap();
    pair.deliver(Packet::PubRec(id(ids[2]))).unwrap();
    pair.sent();
    pair.deliver(Packet::PubComp(id(ids[2]))).unwrap();
    assert_eq!(
        pair.events(),
        [
            Event::Published(a),
            Event::Published(b),
            Event::Published(c)
        ]
    );
}

#[test]
fn resend_order_follows_first_send_not_packet_id_order() {
    let mut pair = Pair::new(config().clean_session(false));
    pair.session.ids.set_next(id(65_535));
    pair.connect(false);
    pair.publish(msg("a", b"first", QoS::AtLeastOnce));
    pair.publish(msg("a", b"second", QoS::AtLeastOnce));
    let ids: Vec<u16> = pair.sent().iter().map(pid).collect();
    assert_eq!(ids, [65_535, 1]);
    pair.close();
    let resent = pair.connect(true);
    assert_eq!(resent.iter().map(pid).collect::<Vec<_>>(), [65_535, 1]);
}

#[test]
fn resume_resends_unacknowledged_subscribe_and_unsubscribe_with_their_ids() {
    let mut pair = persistent();
    let s = pair
        .session
        .subscribe(pair.now, vec![(filter("s"), QoS::ExactlyOnce)])
        .unwrap();
    pair.session
        .unsubscribe(pair.now, vec![filter("u")])
        .unwrap();
    let sent = pair.sent();
    pair.close();
    let resent = pair.connect(true);
    assert_eq!(resent, sent);
    let Packet::Subscribe(sub) = &resent[0] else {
        panic!("{resent:?}")
    };
    pair.deliver(Packet::SubAck(SubAck {
        packet_id: sub.packet_id,
        return_codes: vec![SubscribeReturnCode::Success(QoS::AtLeastOnce)],
    }))
    .unwrap();
    assert_eq!(
        pair.events()[1..],
        [Event::Subscribed {
            id: s,
            granted: vec![SubscribeReturnCode::Success(QoS::AtLeastOnce)]
        }]
    );
}

#[test]
fn resume_sends_resends_before_queued_commands() {
    let mut pair = persistent();
    pair.publish(msg("a", b"old", QoS::AtLeastOnce));
    pair.sent();
    pair.close();
    pair.publish(msg("a", b"new", QoS::AtLeastOnce));
    pair.publish(msg("a", b"new0", QoS::AtMostOnce));
    let sent = pair.connect(false);
    assert_eq!(
        sent.iter().map(payload).collect::<Vec<_>>(),
        [&b"old"[..], b"new", b"new0"]
    );
    assert!(is_dup(&sent[0]) && !is_dup(&sent[1]) && !is_dup(&sent[2]));
}

#[test]
fn clean_session_fails_in_flight_publishes_and_requeues_subscribes() {
    let mut pair = Pair::new(config().max_inflight(1));
    pair.connect(false);
    let a = pair.publish(msg("a", b"a", QoS::AtLeastOnce));
    let s = pair
        .session
        .subscribe(pair.now, vec![(filter("s"), QoS::AtMostOnce)])
        .unwrap();
    pair.sent();
    let b = pair.publish(msg("a", b"b", QoS::AtLeastOnce)); // waits for the window
    pair.close();
    let events = pair.events();
    assert_eq!(
        events,
        [
            Event::Disconnected(DisconnectReason::TransportClosed),
            Event::Failed {
                id: a,
                error: RequestError::SessionLost
            },
        ]
    );
    assert_eq!(pair.session.in_flight(), 0);
    // The unacknowledged SUBSCRIBE goes again, ahead of the publish that was waiting.
    let sent = pair.connect(false);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let Packet::Subscribe(Subscribe {
        packet_id: sid,
        filters,
    }) = &sent[0]
    else {
        panic!("{sent:?}")
    };
    assert_eq!(filters, &vec![(filter("s"), QoS::AtMostOnce)]);
    assert_eq!(payload(&sent[1]), b"b");
    assert!(!is_dup(&sent[1]));
    pair.deliver(Packet::SubAck(SubAck {
        packet_id: *sid,
        return_codes: vec![SubscribeReturnCode::Success(QoS::AtMostOnce)],
    }))
    .unwrap();
    pair.deliver(Packet::PubAck(id(pid(&sent[1])))).unwrap();
    assert_eq!(
        pair.events(),
        [
            Event::Subscribed {
                id: s,
                granted: vec![SubscribeReturnCode::Success(QoS::AtMostOnce)]
            },
            Event::Published(b)
        ]
    );
}

#[test]
fn a_local_close_fails_unacknowledged_subscribes() {
    let mut pair = Pair::new(config());
    pair.connect(false);
    let s = pair
        .session
        .subscribe(pair.now, vec![(filter("s"), QoS::AtMostOnce)])
        .unwrap();
    pair.sent();
    pair.session.disconnect(pair.now).unwrap();
    pair.sent();
    pair.close();
    let events = pair.events();
    assert!(
        events.contains(&Event::Failed {
            id: s,
            error: RequestError::Closed
        }),
        "{events:?}"
    );
    assert!(pair.connect(false).is_empty());
}

#[test]
fn commands_not_yet_handed_out_survive_a_clean_session_drop() {
    let mut pair = connected();
    let q1 = pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    let q0 = pair.publish(msg("a", b"0", QoS::AtMostOnce));
    pair.close(); // before poll_transmit
    assert_eq!(
        pair.events(),
        [Event::Disconnected(DisconnectReason::TransportClosed)]
    );
    let sent = pair.connect(false);
    assert_eq!(
        sent.iter().map(payload).collect::<Vec<_>>(),
        [&b"1"[..], b"0"]
    );
    assert!(!is_dup(&sent[0]));
    pair.deliver(Packet::PubAck(id(pid(&sent[0])))).unwrap();
    assert_eq!(pair.events(), [Event::Published(q0), Event::Published(q1)]);
}

#[test]
fn disconnect_with_clean_session_fails_in_flight_as_closed() {
    let mut pair = connected();
    let a = pair.publish(msg("a", b"a", QoS::AtLeastOnce));
    pair.sent();
    pair.session.disconnect(pair.now).unwrap();
    assert_eq!(pair.sent(), [Packet::Disconnect]);
    pair.close();
    assert_eq!(
        pair.events(),
        [
            Event::Disconnected(DisconnectReason::Local),
            Event::Failed {
                id: a,
                error: RequestError::Closed
            }
        ]
    );
}

#[test]
fn disconnect_without_clean_session_keeps_in_flight_for_the_next_connect() {
    let mut pair = persistent();
    let a = pair.publish(msg("a", b"a", QoS::AtLeastOnce));
    let sent = pair.sent();
    pair.session.disconnect(pair.now).unwrap();
    pair.sent();
    pair.close();
    assert_eq!(
        pair.events(),
        [Event::Disconnected(DisconnectReason::Local)]
    );
    let resent = pair.connect(true);
    assert_eq!(pid(&resent[0]), pid(&sent[0]));
    assert!(is_dup(&resent[0]));
    pair.deliver(Packet::PubAck(id(pid(&sent[0])))).unwrap();
    assert_eq!(pair.events(), [Event::Published(a)]);
}

// Disconnect and close.

#[test]
fn disconnect_goes_after_queued_packets_and_nothing_follows_it() {
    let mut pair = connected();
    let q = pair.publish(msg("a", b"before", QoS::AtMostOnce));
    pair.deliver(publish(QosPid::AtLeastOnce(id(3)), false, b"in"))
        .unwrap();
    pair.session.disconnect(pair.now).unwrap();
    let later = pair.publish(msg("a", b"after", QoS::AtMostOnce));
    assert!(
        pair.session.is_connected(),
        "until DISCONNECT is handed out"
    );
    let sent = pair.sent();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[1], Packet::PubAck(id(3)));
    assert_eq!(sent[2], Packet::Disconnect);
    let events = pair.events();
    assert_eq!(events[1], Event::Published(q), "{events:?}");
    assert_eq!(
        events.last(),
        Some(&Event::Disconnected(DisconnectReason::Local))
    );
    assert!(!pair.session.is_connected());
    assert!(pair.sent().is_empty());
    assert!(pair.session.poll_timeout().is_none());
    assert_eq!(pair.session.queued(), 1, "the later publish waits");
    pair.close();
    assert!(pair.events().is_empty(), "one Disconnected per connection");
    pair.connect(false);
    let _ = later;
}

#[test]
fn disconnect_before_connack_ends_the_connection_at_once() {
    let mut pair = Pair::new(config());
    pair.session.connect(pair.now).unwrap();
    pair.session.disconnect(pair.now).unwrap();
    assert!(pair.sent().is_empty(), "not even CONNECT");
    assert_eq!(
        pair.events(),
        [Event::Disconnected(DisconnectReason::Local)]
    );
    assert_eq!(
        pair.session.disconnect(pair.now),
        Err(ApiMisuse::NotConnected)
    );
}

#[test]
fn handle_closed_reports_transport_closed_once() {
    let mut pair = connected();
    pair.close();
    pair.close();
    assert_eq!(
        pair.events(),
        [Event::Disconnected(DisconnectReason::TransportClosed)]
    );
    let mut idle = Pair::new(config());
    idle.close();
    assert!(idle.events().is_empty(), "nothing was open");
}

#[test]
fn input_while_no_connection_is_open_is_refused() {
    let mut pair = Pair::new(config());
    assert_eq!(
        pair.deliver(Packet::PingResp),
        Err(ProtocolError::NotConnected)
    );
    assert!(pair.events().is_empty());
}

// Keepalive.

#[test]
fn pingreq_goes_out_after_keep_alive_without_sending() {
    let mut pair = Pair::new(config().keep_alive(Duration::from_secs(10)));
    pair.connect(false);
    assert_eq!(
        pair.session.poll_timeout(),
        Some(pair.now + Duration::from_secs(10))
    );
    pair.advance(Duration::from_secs(9));
    assert!(pair.sent().is_empty());
    // Receiving alone does not postpone it: it is the send side that must not stay quiet.
    pair.deliver(publish(QosPid::AtMostOnce, false, b"in"))
        .unwrap();
    pair.advance(Duration::from_secs(1));
    assert_eq!(pair.sent(), [Packet::PingReq]);
    pair.deliver(Packet::PingResp).unwrap();
    pair.advance(Duration::from_secs(9));
    assert!(pair.sent().is_empty());
    pair.advance(Duration::from_secs(1));
    assert_eq!(pair.sent(), [Packet::PingReq]);
}

#[test]
fn sending_postpones_the_ping_until_nothing_is_received_for_keep_alive() {
    let mut pair = Pair::new(config().keep_alive(Duration::from_secs(10)));
    pair.connect(false);
    // We keep writing every 4 s, the broker stays silent (a black-holed link).
    for _ in 0..2 {
        pair.advance(Duration::from_secs(4));
        pair.publish(msg("a", b"x", QoS::AtMostOnce));
        assert_eq!(pair.sent().len(), 1);
    }
    pair.advance(Duration::from_secs(2));
    assert_eq!(pair.sent(), [Packet::PingReq], "idle receive for 10 s");
}

#[test]
fn no_pingresp_within_the_ping_timeout_is_ping_timeout() {
    let cfg = config()
        .keep_alive(Duration::from_secs(10))
        .ping_timeout(Duration::from_secs(3));
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    pair.advance(Duration::from_secs(10));
    assert_eq!(pair.sent(), [Packet::PingReq]);
    pair.events();
    pair.advance(Duration::from_secs(2));
    // Only one PINGREQ outstanding, even though we are idle again.
    assert!(pair.sent().is_empty());
    pair.advance(Duration::from_secs(1));
    assert_eq!(
        pair.events(),
        [Event::Disconnected(DisconnectReason::PingTimeout(
            Duration::from_secs(3)
        ))]
    );
    assert!(pair.sent().is_empty());
    assert!(pair.session.poll_timeout().is_none());
}

#[test]
fn default_ping_timeout_is_half_the_keep_alive() {
    let mut pair = Pair::new(config().keep_alive(Duration::from_secs(10)));
    pair.connect(false);
    pair.advance(Duration::from_secs(10));
    pair.sent();
    assert_eq!(
        pair.session.poll_timeout(),
        Some(pair.now + Duration::from_secs(5))
    );
}

#[test]
fn keep_alive_zero_sends_no_pings() {
    let mut pair = Pair::new(config().keep_alive(Duration::ZERO));
    pair.connect(false);
    assert!(pair.session.poll_timeout().is_none());
    pair.advance(Duration::from_secs(100_000));
    assert!(pair.sent().is_empty());
    assert!(pair.events().is_empty());
}

#[test]
fn an_unsolicited_pingresp_is_ignored() {
    let mut pair = connected();
    pair.deliver(Packet::PingResp).unwrap();
    assert!(pair.session.is_connected());
    assert!(pair.events().is_empty());
}

// Protocol violations.

#[test]
fn puback_for_an_unknown_id_is_a_protocol_error() {
    let mut pair = connected();
    let r = pair.deliver(Packet::PubAck(id(77)));
    assert_violation(
        &mut pair,
        r,
        ProtocolError::UnknownPacketId {
            packet: PacketType::PubAck,
            id: id(77),
        },
    );
}

#[test]
fn pubrec_for_an_unknown_id_is_a_protocol_error() {
    let mut pair = connected();
    let r = pair.deliver(Packet::PubRec(id(5)));
    assert_violation(
        &mut pair,
        r,
        ProtocolError::UnknownPacketId {
            packet: PacketType::PubRec,
            id: id(5),
        },
    );
}

#[test]
fn an_ack_of_the_wrong_kind_is_a_protocol_error() {
    let mut pair = connected();
    pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    let n = pid(&pair.sent()[0]);
    let r = pair.deliver(Packet::PubRec(id(n)));
    assert_violation(
        &mut pair,
        r,
        ProtocolError::UnknownPacketId {
            packet: PacketType::PubRec,
            id: id(n),
        },
    );
}

#[test]
fn pubcomp_before_pubrel_is_a_protocol_error() {
    let mut pair = connected();
    pair.publish(msg("a", b"2", QoS::ExactlyOnce));
    let n = pid(&pair.sent()[0]);
    let r = pair.deliver(Packet::PubComp(id(n)));
    assert_violation(
        &mut pair,
        r,
        ProtocolError::UnknownPacketId {
            packet: PacketType::PubComp,
            id: id(n),
        },
    );
}

#[test]
fn an_ack_for_a_packet_not_yet_sent_is_a_protocol_error() {
    let mut pair = connected();
    pair.publish(msg("a", b"1", QoS::AtLeastOnce));
    // The broker guesses id 1 before the PUBLISH was handed out.
    let r = pair.deliver(Packet::PubAck(id(1)));
    assert_violation(
        &mut pair,
        r,
        ProtocolError::UnknownPacketId {
            packet: PacketType::PubAck,
            id: id(1),
        },
    );
}

#[test]
fn suback_with_the_wrong_number_of_codes_is_a_protocol_error() {
    let mut pair = connected();
    pair.session
        .subscribe(
            pair.now,
            vec![
                (filter("a"), QoS::AtMostOnce),
                (filter("b"), QoS::AtMostOnce),
            ],
        )
        .unwrap();
    let sent = pair.sent();
    let Packet::Subscribe(s) = &sent[0] else {
        panic!("{sent:?}")
    };
    let r = pair.deliver(Packet::SubAck(SubAck {
        packet_id: s.packet_id,
        return_codes: vec![SubscribeReturnCode::Success(QoS::AtMostOnce)],
    }));
    assert_violation(
        &mut pair,
        r,
        ProtocolError::SubAckCountMismatch {
            id: s.packet_id,
            got: 1,
            expected: 2,
        },
    );
}

#[test]
fn unsuback_for_an_unknown_id_is_a_protocol_error() {
    let mut pair = connected();
    let r = pair.deliver(Packet::UnsubAck(id(3)));
    assert_violation(
        &mut pair,
        r,
        ProtocolError::UnknownPacketId {
            packet: PacketType::UnsubAck,
            id: id(3),
        },
    );
}

#[test]
fn packets_a_client_never_receives_are_protocol_errors() {
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: id(1),
        filters: vec![(filter("a"), QoS::AtMostOnce)],
    });
    let unsubscribe = Packet::Unsubscribe(Unsubscribe {
        packet_id: id(1),
        filters: vec![filter("a")],
    });
    let connect = Packet::Connect(Box::new(crate::packet::Connect {
        level: ProtocolLevel::V3_1_1,
        client_id: MqttString::new("broker?").unwrap(),
        keep_alive: 0,
        clean_session: true,
        will: None,
        username: None,
        password: None,
        properties: Default::default(),
    }));
    for p in [
        connect,
        subscribe,
        unsubscribe,
        Packet::PingReq,
        Packet::Disconnect,
    ] {
        let t = p.packet_type();
        let mut pair = connected();
        let r = pair.deliver(p);
        assert_violation(&mut pair, r, ProtocolError::UnexpectedPacket(t));
    }
}

#[test]
fn an_oversized_packet_is_a_protocol_error_naming_the_limit() {
    let mut pair = Pair::new(config().max_packet_size(64));
    pair.connect(false);
    let big = Packet::Publish(crate::packet::Publish {
        dup: false,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: topic("a"),
        payload: Bytes::from(vec![0u8; 100]),
    });
    let r = pair.deliver(big);
    let Err(e) = r.clone() else {
        panic!("accepted an oversized packet")
    };
    assert!(
        matches!(
            e,
            ProtocolError::Decode(DecodeError::TooLarge { max: 64, .. })
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("64"), "{e}");
    assert_violation(&mut pair, r, e);
}

#[test]
fn undecodable_bytes_are_a_protocol_error() {
    let mut pair = connected();
    let r = pair.deliver_bytes(&[0xF0, 0x00]);
    let Err(e @ ProtocolError::Decode(_)) = r.clone() else {
        panic!("{r:?}")
    };
    assert_violation(&mut pair, r, e);
}

#[test]
fn bytes_after_a_violation_in_the_same_read_are_ignored() {
    let mut pair = connected();
    let mut bytes = BytesMut::new();
    Packet::PubAck(id(9)).encode(&mut bytes).unwrap();
    publish(QosPid::AtLeastOnce(id(1)), false, b"late")
        .encode(&mut bytes)
        .unwrap();
    let r = pair.deliver_bytes(&bytes);
    assert!(r.is_err());
    let events = pair.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(pair.sent().is_empty());
}

#[test]
fn oversized_publishes_are_refused_up_front() {
    let mut pair = connected();
    let huge = Bytes::from(vec![0u8; crate::packet::MAX_REMAINING_LENGTH]);
    let r = pair.session.publish(
        pair.now,
        crate::session::Message {
            topic: topic("a"),
            payload: huge,
            qos: QoS::AtMostOnce,
            retain: false,
            properties: None,
        },
    );
    assert!(
        matches!(r, Err(ApiMisuse::Encode(EncodeError::TooLarge { .. }))),
        "{r:?}"
    );
}

#[test]
fn poll_transmit_max_stops_at_the_limit_and_keeps_the_rest_in_order() {
    let mut pair = Pair::new(config());
    pair.connect(false);
    for p in [b"one", b"two", b"six"] {
        pair.publish(msg("t", p, QoS::AtLeastOnce));
    }
    let mut out = BytesMut::new();
    assert_eq!(pair.session.poll_transmit_max(&mut out, 0), 0);
    // The packet that crosses the limit is whole; nothing after it.
    let n = pair.session.poll_transmit_max(&mut out, 1);
    assert!(n > 0 && n == out.len());
    let mut decoder = crate::packet::Decoder::new(ProtocolLevel::V3_1_1, 1 << 20);
    let first = decoder.decode(&mut out).unwrap().unwrap();
    assert!(out.is_empty());
    assert_eq!(payload(&first), b"one");
    let rest = pair.sent();
    assert_eq!(
        rest.iter().map(payload).collect::<Vec<_>>(),
        [&b"two"[..], b"six"]
    );
}

// Call order (issue 16, point 2) and acknowledgement after delivery (point 1).

/// The commands of the first script: subscribe, publish "a", unsubscribe, publish
/// "b", all on topic `t`.
fn script_a(pair: &mut Pair) {
    pair.session
        .subscribe(pair.now, vec![(filter("t"), QoS::AtLeastOnce)])
        .unwrap();
    pair.publish(msg("t", b"a", QoS::AtLeastOnce));
    pair.session
        .unsubscribe(pair.now, vec![filter("t")])
        .unwrap();
    pair.publish(msg("t", b"b", QoS::AtLeastOnce));
}

/// The kinds of packets in `sent`, with publish payloads: `S`, `U`, `P:a`.
fn order(sent: &[Packet]) -> Vec<String> {
    sent.iter()
        .map(|p| match p {
            Packet::Subscribe(_) => "S".to_owned(),
            Packet::Unsubscribe(_) => "U".to_owned(),
            Packet::Publish(p) => format!("P:{}", String::from_utf8_lossy(&p.payload)),
            other => format!("{:?}", other.packet_type()),
        })
        .collect()
}

#[test]
fn call_order_is_wire_order_connected_connecting_offline_and_behind_the_window() {
    // Connected, window open.
    let mut pair = connected();
    script_a(&mut pair);
    assert_eq!(order(&pair.sent()), ["S", "P:a", "U", "P:b"]);

    // Before CONNACK.
    let mut pair = Pair::new(config());
    pair.session.connect(pair.now).unwrap();
    script_a(&mut pair);
    assert!(matches!(pair.sent().as_slice(), [Packet::Connect(_)]));
    pair.deliver(connack(ConnectReturnCode::Accepted, false))
        .unwrap();
    assert_eq!(order(&pair.sent()), ["S", "P:a", "U", "P:b"]);

    // Offline: never connected, then connected.
    let mut pair = Pair::new(config());
    script_a(&mut pair);
    assert_eq!(order(&pair.connect(false)), ["S", "P:a", "U", "P:b"]);

    // Offline after a loss, with clean session off: the commands handed to the session but
    // never sent keep their place.
    let mut pair = persistent();
    script_a(&mut pair);
    pair.close();
    assert_eq!(order(&pair.connect(true)), ["S", "P:a", "U", "P:b"]);

    // Behind the window: "b" waits for the window, and a SUBSCRIBE issued after it waits
    // behind it.
    let mut pair = Pair::new(config().max_inflight(1));
    pair.connect(false);
    script_a(&mut pair);
    pair.session
        .subscribe(pair.now, vec![(filter("z"), QoS::AtMostOnce)])
        .unwrap();
    let sent = pair.sent();
    assert_eq!(order(&sent), ["S", "P:a", "U"]);
    pair.deliver(Packet::PubAck(id(pid(&sent[1])))).unwrap();
    assert_eq!(order(&pair.sent()), ["P:b", "S"]);
}

#[test]
fn publish_before_subscribe_leaves_before_the_subscribe() {
    // The second script: publish "before", subscribe, publish "after". The broker
    // gets them in that order, so only "after" comes back.
    let mut pair = Pair::new(config().max_inflight(1));
    pair.session.connect(pair.now).unwrap();
    pair.publish(msg("t", b"before", QoS::AtLeastOnce));
    pair.session
        .subscribe(pair.now, vec![(filter("t"), QoS::AtLeastOnce)])
        .unwrap();
    pair.publish(msg("t", b"after", QoS::AtLeastOnce));
    pair.sent();
    pair.deliver(connack(ConnectReturnCode::Accepted, false))
        .unwrap();
    let sent = pair.sent();
    assert_eq!(order(&sent), ["P:before", "S"]);
    pair.deliver(Packet::PubAck(id(pid(&sent[0])))).unwrap();
    assert_eq!(order(&pair.sent()), ["P:after"]);
}

#[test]
fn a_message_is_acknowledged_only_when_acked_and_never_after_its_connection_ends() {
    let mut pair = persistent();
    pair.auto_ack = false;
    pair.deliver(publish(QosPid::AtLeastOnce(id(5)), false, b"m"))
        .unwrap();
    assert_eq!(pair.events().len(), 1);
    assert!(
        pair.sent().is_empty(),
        "PUBACK before the application has it"
    );
    let stale = pair.unacked.remove(0);
    // The connection ends before the ack: nothing is owed on the next one.
    pair.close();
    pair.events();
    assert!(pair.connect(true).is_empty());
    pair.session.ack(stale);
    assert!(
        pair.sent().is_empty(),
        "a QoS 1 ack from an earlier connection"
    );
    // The broker delivers it again, with a new token.
    pair.deliver(publish(QosPid::AtLeastOnce(id(5)), true, b"m"))
        .unwrap();
    assert_eq!(messages(pair.events()).len(), 1, "QoS 1: delivered again");
    let token = pair.unacked.remove(0);
    assert_ne!(token, stale);
    pair.session.ack(token);
    assert_eq!(pair.sent(), [Packet::PubAck(id(5))]);
}

#[test]
fn an_unacked_qos2_message_is_not_delivered_again_and_its_ack_survives_a_reconnect() {
    let mut pair = persistent();
    pair.auto_ack = false;
    let m = publish(QosPid::ExactlyOnce(id(8)), false, b"once");
    pair.deliver(m.clone()).unwrap();
    assert_eq!(messages(pair.events()).len(), 1);
    // Re-sent on the same connection before the ack: not delivered, not answered yet.
    pair.deliver(publish(QosPid::ExactlyOnce(id(8)), true, b"once"))
        .unwrap();
    assert!(pair.events().is_empty(), "delivered twice");
    assert!(pair.sent().is_empty(), "PUBREC before the ack");
    // The connection ends; the broker re-sends it on the next one.
    pair.close();
    pair.events();
    assert!(pair.connect(true).is_empty());
    pair.deliver(publish(QosPid::ExactlyOnce(id(8)), true, b"once"))
        .unwrap();
    assert!(
        pair.events().is_empty(),
        "delivered again after a reconnect"
    );
    assert!(pair.sent().is_empty(), "PUBREC before the ack");
    // The application acks the delivery of the first connection: PUBREC now.
    let token = pair.unacked.remove(0);
    pair.session.ack(token);
    assert_eq!(pair.sent(), [Packet::PubRec(id(8))]);
    pair.session.ack(token);
    assert!(pair.sent().is_empty(), "acked twice");
    // Held until PUBREL like any acknowledged QoS 2 id.
    pair.deliver(publish(QosPid::ExactlyOnce(id(8)), true, b"once"))
        .unwrap();
    assert!(pair.events().is_empty());
    assert_eq!(pair.sent(), [Packet::PubRec(id(8))]);
    pair.deliver(Packet::PubRel(id(8))).unwrap();
    assert_eq!(pair.sent(), [Packet::PubComp(id(8))]);
}

#[test]
fn a_broker_without_the_session_makes_an_unacked_qos2_id_new_again() {
    let mut pair = persistent();
    pair.auto_ack = false;
    pair.deliver(publish(QosPid::ExactlyOnce(id(8)), false, b"old"))
        .unwrap();
    pair.events();
    let stale = pair.unacked.remove(0);
    pair.close();
    pair.events();
    assert!(pair.connect(false).is_empty());
    pair.deliver(publish(QosPid::ExactlyOnce(id(8)), false, b"new"))
        .unwrap();
    assert_eq!(messages(pair.events()).len(), 1, "a new message");
    // The old delivery's ack must not acknowledge the new message.
    pair.session.ack(stale);
    assert!(pair.sent().is_empty(), "{:?}", pair.unacked);
    let token = pair.unacked.remove(0);
    pair.session.ack(token);
    assert_eq!(pair.sent(), [Packet::PubRec(id(8))]);
}

#[test]
fn a_token_of_another_session_acknowledges_nothing() {
    let mut a = connected();
    let mut b = connected();
    a.auto_ack = false;
    b.auto_ack = false;
    for pair in [&mut a, &mut b] {
        pair.deliver(publish(QosPid::AtLeastOnce(id(1)), false, b"m"))
            .unwrap();
        pair.events();
    }
    let (ta, tb) = (a.unacked[0], b.unacked[0]);
    a.session.ack(tb);
    assert!(a.sent().is_empty(), "b's token acknowledged a's message");
    a.session.ack(ta);
    assert_eq!(a.sent(), [Packet::PubAck(id(1))]);
}
