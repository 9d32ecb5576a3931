//! The client's input path: a connected session with work in flight (QoS 1 and 2 publishes,
//! a subscription) receives arbitrary broker bytes in arbitrary chunks. It never panics;
//! once it reports a protocol error it has ended the connection (a `Disconnected` event) and
//! sends nothing more; everything it sends before that decodes as valid packets.
//!
//! Input: one byte picking the protocol level and chunk size, then the broker's bytes.
#![no_main]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tern_proto::session::Event;
use tern_proto::{
    ConnAck, ConnectReturnCode, Decoder, Message, MqttString, Packet, ProtocolLevel, QoS, Session,
    SessionConfig, TopicFilter, TopicName,
};

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, input)) = data.split_first() else {
        return;
    };
    let level = if cfg & 1 == 0 { ProtocolLevel::V3_1_1 } else { ProtocolLevel::V3_1 };
    let chunk = usize::from(cfg >> 1).max(1);
    let config = SessionConfig::new(MqttString::new("fuzz").unwrap_or_default())
        .level(level)
        .clean_session(false)
        .keep_alive(Duration::from_secs(30))
        .max_packet_size(64 * 1024);
    let mut session = Session::new(config);
    let now = Instant::now();
    let mut out = BytesMut::new();
    let mut broker = Decoder::new(level, usize::MAX);

    session.connect(now).expect("a fresh session connects");
    let mut connack = BytesMut::new();
    Packet::ConnAck(ConnAck { session_present: false, code: ConnectReturnCode::Accepted })
        .encode(&mut connack)
        .expect("CONNACK encodes");
    session.handle_input(now, &connack).expect("CONNACK is accepted");
    let topic = TopicName::new("fuzz/t").expect("valid topic");
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtLeastOnce] {
        let msg = Message { topic: topic.clone(), payload: Bytes::from_static(b"x"), qos, retain: false, properties: None };
        session.publish(now, msg).expect("queue has room");
    }
    let filter = TopicFilter::new("fuzz/#").expect("valid filter");
    session.subscribe(now, vec![(filter, QoS::ExactlyOnce)]).expect("queue has room");

    let mut ended = false;
    // Bounded by the input length: each step consumes at least one byte.
    for piece in input.chunks(chunk) {
        let sent = session.poll_transmit(&mut out);
        assert!(!(ended && sent > 0), "sent {sent} bytes after the connection ended");
        while let Some(ev) = session.poll_event() {
            if matches!(ev, Event::Disconnected(_)) {
                ended = true;
            }
        }
        let result = session.handle_input(now, piece);
        if result.is_err() {
            while let Some(ev) = session.poll_event() {
                if matches!(ev, Event::Disconnected(_)) {
                    ended = true;
                }
            }
            assert!(ended, "a protocol error must end the connection: {result:?}");
        }
    }
    session.poll_transmit(&mut out);
    // What the client sent is a valid packet stream.
    while let Some(packet) = broker.decode(&mut out).unwrap_or_else(|e| panic!("client sent an invalid packet: {e}")) {
        assert!(!matches!(packet, Packet::ConnAck(_) | Packet::SubAck(_)), "server packet sent by the client");
    }
});
