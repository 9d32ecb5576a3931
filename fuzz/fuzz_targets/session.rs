//! A session driven by arbitrary commands and arbitrary broker bytes never panics, leaves
//! no expired timer armed after `handle_timeout`, sends only decodable packets, nothing but
//! CONNECT before CONNACK, and nothing after DISCONNECT.
//!
//! At MQTT 5 also: nothing above the broker's Maximum Packet Size, no Topic Alias above its
//! Topic Alias Maximum, nothing but CONNECT and AUTH before CONNACK, and the DISCONNECT
//! that reports a violation is the last packet.
//!
//! Input: one configuration byte, then a little program: each opcode byte picks an action
//! (connect, broker bytes, a valid CONNACK, publish, subscribe, unsubscribe, disconnect,
//! time passing, transport closed, the application acknowledging one of the messages it was
//! handed, in any order), some followed by an operand byte or a length-prefixed chunk of
//! broker bytes.
#![no_main]

use std::num::{NonZeroU16, NonZeroU32};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tern_proto::packet::{
    ConnAckProperties, ConnAckV5, ConnectProperties, ConnectReasonCode, DisconnectProperties,
    DisconnectReasonCode, PublishProperties, SubscribeProperties, SubscriptionId,
    SubscriptionOptions,
};
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
    } else if cfg & 0x80 != 0 {
        ProtocolLevel::V5
    } else {
        ProtocolLevel::V3_1
    };
    let v5 = level.is_v5();
    let config = SessionConfig::new(MqttString::new("fuzz").unwrap_or_default())
        .connect_properties(ConnectProperties {
            session_expiry_interval: Some(u32::from(cfg & 2) * 30),
            receive_maximum: NonZeroU16::new(2),
            topic_alias_maximum: Some(2),
            ..Default::default()
        })
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
                let b = next(&mut program).unwrap_or(0);
                let code = ConnectReturnCode::from_u8(b % 6).unwrap_or(ConnectReturnCode::Accepted);
                let ack = if v5 {
                    // The broker's limits from the operand: small ones are what matter.
                    Packet::ConnAckV5(Box::new(ConnAckV5 {
                        session_present: b & 0x40 != 0 && b % 6 == 0,
                        reason: if b % 6 == 0 {
                            ConnectReasonCode::Success
                        } else {
                            ConnectReasonCode::NotAuthorized
                        },
                        properties: ConnAckProperties {
                            receive_maximum: NonZeroU16::new(u16::from(b >> 6)),
                            maximum_packet_size: NonZeroU32::new(u32::from(b >> 3 & 7) * 12),
                            topic_alias_maximum: Some(u16::from(b >> 4 & 3)),
                            retain_available: Some(b & 8 == 0),
                            maximum_qos: (b & 0x20 != 0).then_some(QoS::AtLeastOnce),
                            ..Default::default()
                        },
                    }))
                } else {
                    Packet::ConnAck(ConnAck {
                        session_present: false,
                        code,
                    })
                };
                if ack.encode_for(level, &mut bytes).is_ok() {
                    let _ = session.handle_input(now, &bytes);
                }
            }
            3 => {
                let b = next(&mut program).unwrap_or(0);
                let qos = QoS::from_u8(b % 3).unwrap_or_default();
                let topic = if b & 0x40 != 0 { "fuzz/t" } else { "fuzz/u" };
                let msg = Message {
                    topic: TopicName::new(topic).unwrap_or_else(|_| unreachable!()),
                    payload: Bytes::from(vec![b; usize::from(b % 16)]),
                    qos,
                    retain: b & 0x80 != 0,
                    properties: (v5 && b & 0x20 != 0).then(|| {
                        Box::new(PublishProperties {
                            message_expiry_interval: Some(u32::from(b & 7)),
                            topic_alias: NonZeroU16::new(u16::from(b >> 3 & 3)),
                            ..Default::default()
                        })
                    }),
                };
                let _ = session.publish(now, msg);
            }
            4 => {
                if let Ok(f) = TopicFilter::new("fuzz/#") {
                    if v5 {
                        let _ = session.subscribe_v5(
                            now,
                            vec![(f, SubscriptionOptions::qos(QoS::ExactlyOnce))],
                            SubscribeProperties {
                                subscription_identifier: SubscriptionId::new(7),
                                ..Default::default()
                            },
                        );
                    } else {
                        let _ = session.subscribe(now, vec![(f, QoS::ExactlyOnce)]);
                    }
                }
            }
            5 => {
                if let Ok(f) = TopicFilter::new("fuzz/+") {
                    let _ = session.unsubscribe(now, vec![f]);
                }
            }
            6 => {
                if v5 {
                    let _ = session.disconnect_v5(
                        now,
                        DisconnectReasonCode::DisconnectWithWillMessage,
                        DisconnectProperties {
                            session_expiry_interval: Some(0),
                            ..Default::default()
                        },
                    );
                } else {
                    let _ = session.disconnect(now);
                }
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
        let caps = session.server_capabilities().cloned();
        for _ in 0..10_000 {
            let len = wire.len();
            let packet = broker.decode(&mut wire);
            let size = len - wire.len();
            if let (Some(caps), Ok(Some(p))) = (&caps, &packet)
                && !matches!(p, Packet::Connect(_))
            {
                assert!(
                    size <= caps.max_packet_size(),
                    "{size} bytes > the broker's maximum: {p:?}"
                );
                if let Packet::PublishV5(p) = p
                    && let Some(alias) = p.properties.topic_alias
                {
                    assert!(
                        alias.get() <= caps.topic_alias_maximum,
                        "alias {alias} above maximum"
                    );
                }
            }
            match packet {
                Ok(Some(Packet::Connect(_))) => {}
                Ok(Some(Packet::Auth(_))) if v5 => {}
                Ok(Some(Packet::Disconnect | Packet::DisconnectV5(_))) => {
                    assert!(wire.is_empty(), "bytes after DISCONNECT");
                }
                Ok(Some(p)) => assert!(connected, "{p:?} before CONNACK"),
                Ok(None) => break,
                Err(e) => panic!("the session sent an undecodable packet: {e}"),
            }
        }
        for _ in 0..10_000 {
            match session.poll_event() {
                Some(Event::Message {
                    ack: Some(token), ..
                }) => unacked.push(token),
                Some(_) => {}
                None => break,
            }
        }
    }
});
