//! Session micro-benchmarks: QoS 1 publish → PUBLISH bytes → PUBACK → `Published` cycles,
//! and QoS 0 publish → bytes → `Published`, through one connected [`Session`]. Reports
//! messages/s; no IO, so this is the ceiling the protocol core puts on a driver.

// Setup talks to a session whose behaviour the unit tests pin down: any failure here is a
// bug to abort on.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tern_proto::{
    ConnAck, ConnectReturnCode, Event, Message, MqttString, Packet, QoS, Session, SessionConfig,
    TopicName,
};

/// Messages per measured batch (and the in-flight window, so a batch goes out at once).
const BATCH: u16 = 1_000;

/// The benchmark's only clock reading; sessions get instants, never read clocks.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// A session that has sent CONNECT and accepted CONNACK.
fn connected(now: Instant) -> Session {
    let config = SessionConfig::new(MqttString::new("bench").unwrap()).max_inflight(BATCH);
    let mut session = Session::new(config);
    session.connect(now).unwrap();
    let mut out = BytesMut::new();
    session.poll_transmit(&mut out);
    let mut connack = BytesMut::new();
    Packet::ConnAck(ConnAck {
        session_present: false,
        code: ConnectReturnCode::Accepted,
    })
    .encode(&mut connack)
    .unwrap();
    session.handle_input(now, &connack).unwrap();
    while session.poll_event().is_some() {}
    session
}

fn message(qos: QoS) -> Message {
    Message {
        topic: TopicName::new("bench/topic").unwrap(),
        payload: Bytes::from_static(&[0x5a; 64]),
        qos,
        retain: false,
        properties: None,
    }
}

fn bench_qos1(c: &mut Criterion) {
    let now = now();
    let mut session = connected(now);
    let mut out = BytesMut::with_capacity(1 << 20);
    let mut acks = BytesMut::with_capacity(4 * usize::from(BATCH));
    // Ids are handed out sequentially (1, 2, ..., 65535, 1, ...) and every batch is fully
    // acknowledged, so the ids of a batch are known without decoding what was sent.
    let mut next_id: u16 = 1;
    let msg = message(QoS::AtLeastOnce);

    let mut group = c.benchmark_group("session");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    group.bench_function("qos1_publish_puback_cycle", |b| {
        b.iter(|| {
            acks.clear();
            for _ in 0..BATCH {
                session.publish(now, msg.clone()).unwrap();
                // PUBACK: type 4, remaining length 2, packet id.
                acks.extend_from_slice(&[0x40, 0x02]);
                acks.extend_from_slice(&next_id.to_be_bytes());
                next_id = if next_id == u16::MAX { 1 } else { next_id + 1 };
            }
            out.clear();
            black_box(session.poll_transmit(&mut out));
            session.handle_input(now, &acks).unwrap();
            let mut published = 0u16;
            while let Some(event) = session.poll_event() {
                if matches!(event, Event::Published(_)) {
                    published += 1;
                }
            }
            assert_eq!(published, BATCH);
        });
    });

    let mut session = connected(now);
    let msg = message(QoS::AtMostOnce);
    group.bench_function("qos0_publish", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                session.publish(now, msg.clone()).unwrap();
            }
            out.clear();
            black_box(session.poll_transmit(&mut out));
            while session.poll_event().is_some() {}
        });
    });
    group.finish();
}

criterion_group!(benches, bench_qos1);
criterion_main!(benches);
