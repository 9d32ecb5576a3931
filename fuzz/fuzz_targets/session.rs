//! A session driven by arbitrary commands and arbitrary broker bytes never panics, leaves
//! no expired timer armed after `handle_timeout`, sends only decodable packets, nothing but
//! CONNECT before CONNACK, and nothing after DISCONNECT.
//!
//! Input: one configuration byte, then a little program: each opcode byte picks an action
//! (connect, broker bytes, a valid CONNACK, publish, subscribe, unsubscribe, disconnect,
//! time passing, transport closed, the application acknowledging one of the messages it was
//! handed, in any order), some followed by an operand byte or a length-prefixed chunk of
//! broker bytes.
#![no_main]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tern_proto::session::{AckToken, Event};
use tern_proto::{
    ConnAck, ConnectReturnCode, Decoder, Message, MqttString, Packet, ProtocolLevel, QoS, Session,
    SessionConfig, TopicFilter, TopicName,
};

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, mut program)) = data.split_first() else {
        return;
    };
    let level = if cfg & 1 == 0 {
        ProtocolLevel::V3_1_1
    } else {
        ProtocolLevel::V3_1
    };
    let config = SessionConfig::new(MqttString::new("fuzz").unwrap_or_default())
        .level(level)
        .clean_session(cfg & 2 == 0)
        .keep_alive(Duration::from_secs(u64::from(cfg >> 4)))
        .max_inflight(u16::from(cfg >> 2 & 3) + 1)
        .max_queued(64)
        .max_packet_size(4096);
    let mut session = Session::new(config);
    let mut now = Instant::now();
    // What the client sent on the current connection, decoded as a broker would.
    let mut wire = BytesMut::new();
    let mut broker = Decoder::new(level, usize::MAX);
    // QoS 1/2 messages handed to the "application" and not acknowledged yet.
    let mut unacked: Vec<AckToken> = Vec::new();

    let next = |program: &mut &[u8]| -> Option<u8> {
        let (&b, rest) = program.split_first()?;
        *program = rest;
        Some(b)
    };
    // Bounded by the input: every step consumes at least one byte.
    while let Some(op) = next(&mut program) {
        match op % 11 {
            0 => {
                if session.connect(now).is_ok() {
                    wire.clear();
                    broker = Decoder::new(level, usize::MAX);
                }
            }
            1 => {
                let len = usize::from(next(&mut program).unwrap_or(0));
                let len = len.min(program.len());
                let (chunk, rest) = program.split_at(len);
                program = rest;
                let _ = session.handle_input(now, chunk);
            }
            2 => {
                let mut bytes = BytesMut::new();
                let code = ConnectReturnCode::from_u8(next(&mut program).unwrap_or(0) % 6)
                    .unwrap_or(ConnectReturnCode::Accepted);
                let ack = Packet::ConnAck(ConnAck {
                    session_present: false,
                    code,
                });
                if ack.encode(&mut bytes).is_ok() {
                    let _ = session.handle_input(now, &bytes);
                }
            }
            3 => {
                let b = next(&mut program).unwrap_or(0);
                let qos = QoS::from_u8(b % 3).unwrap_or_default();
                let msg = Message {
                    topic: TopicName::new("fuzz/t").unwrap_or_else(|_| unreachable!()),
                    payload: Bytes::from(vec![b; usize::from(b % 16)]),
                    qos,
                    retain: b & 0x80 != 0,
                    properties: None,
                };
                let _ = session.publish(now, msg);
            }
            4 => {
                if let Ok(f) = TopicFilter::new("fuzz/#") {
                    let _ = session.subscribe(now, vec![(f, QoS::ExactlyOnce)]);
                }
            }
            5 => {
                if let Ok(f) = TopicFilter::new("fuzz/+") {
                    let _ = session.unsubscribe(now, vec![f]);
                }
            }
            6 => {
                let _ = session.disconnect(now);
            }
            7 => {
                let secs = next(&mut program).unwrap_or(0);
                now += Duration::from_millis(u64::from(secs) * 250);
                if session.poll_timeout().is_some_and(|at| at <= now) {
                    session.handle_timeout(now);
                }
                if let Some(at) = session.poll_timeout() {
                    assert!(at > now, "an expired timer is still armed");
                }
            }
            8 => session.handle_closed(now),
            10 => {
                let i = usize::from(next(&mut program).unwrap_or(0));
                if !unacked.is_empty() {
                    let token = unacked.remove(i % unacked.len());
                    session.ack(token);
                }
            }
            _ => {
                if let Some(at) = session.poll_timeout() {
                    now = now.max(at);
                    session.handle_timeout(now);
                    if let Some(at) = session.poll_timeout() {
                        assert!(at > now, "an expired timer is still armed");
                    }
                }
            }
        }

        // Drain in the documented order and check what went out: only CONNECT before
        // CONNACK accepted the connection [MQTT-3.1.0-1].
        let connected = session.is_connected();
        let before = wire.len();
        let n = session.poll_transmit(&mut wire);
        assert_eq!(wire.len() - before, n);
        for _ in 0..10_000 {
            match broker.decode(&mut wire) {
                Ok(Some(Packet::Connect(_))) => {}
                Ok(Some(Packet::Disconnect)) => {
                    assert!(wire.is_empty(), "bytes after DISCONNECT");
                }
                Ok(Some(p)) => assert!(connected, "{p:?} before CONNACK"),
                Ok(None) => break,
                Err(e) => panic!("the session sent an undecodable packet: {e}"),
            }
        }
        for _ in 0..10_000 {
            match session.poll_event() {
                Some(Event::Message { ack: Some(token), .. }) => unacked.push(token),
                Some(_) => {}
                None => break,
            }
        }
    }
});
