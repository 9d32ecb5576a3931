//! Codec micro-benchmarks: tern-proto's `Decoder`/`Packet::encode` against rumqttc's
//! `mqttbytes::v4` on the same bytes. Every input is encoded once by tern and checked to
//! decode to the same packet in both libraries before timing.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rumqttc::mqttbytes::v4 as rq;
use tern_proto::packet::DEFAULT_MAX_PACKET_SIZE;
use tern_proto::{Decoder, Packet, PacketId, ProtocolLevel, Publish, QosPid, TopicName};

const TOPIC: &str = "bench/sensors/device-0042/temperature";

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

fn tern_publish(q: u8, size: usize) -> Packet {
    let qos_pid = match q {
        0 => QosPid::AtMostOnce,
        1 => QosPid::AtLeastOnce(pid(4242)),
        _ => QosPid::ExactlyOnce(pid(4242)),
    };
    Packet::Publish(Publish {
        dup: false,
        qos_pid,
        retain: false,
        topic: TopicName::new(TOPIC).expect("valid topic"),
        payload: Bytes::from(vec![b'x'; size]),
    })
}

fn rq_publish(q: u8, size: usize) -> rq::Packet {
    let qos = match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    };
    let mut p = rq::Publish::from_bytes(TOPIC, qos, Bytes::from(vec![b'x'; size]));
    if q > 0 {
        p.pkid = 4242;
    }
    rq::Packet::Publish(p)
}

fn bytes_of(packets: &[Packet]) -> BytesMut {
    let mut b = BytesMut::new();
    for p in packets {
        p.encode(&mut b).expect("encodes");
    }
    b
}

fn decode_tern(buf: &mut BytesMut) -> usize {
    let mut d = Decoder::new(ProtocolLevel::V3_1_1, DEFAULT_MAX_PACKET_SIZE);
    let mut n = 0;
    while let Some(p) = d.decode(buf).expect("valid") {
        black_box(&p);
        n += 1;
    }
    n
}

fn decode_rq(buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while !buf.is_empty() {
        let p = rq::Packet::read(buf, DEFAULT_MAX_PACKET_SIZE).expect("valid");
        black_box(&p);
        n += 1;
    }
    n
}

fn decode_case(c: &mut Criterion, name: &str, packets: &[Packet]) {
    let src = bytes_of(packets);
    assert_eq!(decode_tern(&mut src.clone()), packets.len());
    assert_eq!(decode_rq(&mut src.clone()), packets.len());
    let mut g = c.benchmark_group(name);
    g.bench_function("tern", |b| {
        b.iter_batched_ref(|| src.clone(), decode_tern, BatchSize::SmallInput)
    });
    g.bench_function("rumqttc", |b| {
        b.iter_batched_ref(|| src.clone(), decode_rq, BatchSize::SmallInput)
    });
    g.finish();
}

fn encode_case(c: &mut Criterion, name: &str, t: Packet, r: rq::Packet) {
    let mut a = BytesMut::new();
    t.encode(&mut a).expect("encodes");
    let mut b = BytesMut::new();
    r.write(&mut b, DEFAULT_MAX_PACKET_SIZE).expect("encodes");
    assert_eq!(a, b, "{name}: both libraries produce the same bytes");
    let mut g = c.benchmark_group(name);
    let mut out = BytesMut::with_capacity(64 * 1024);
    g.bench_function("tern", |bch| {
        bch.iter(|| {
            out.clear();
            black_box(&t).encode(&mut out).expect("encodes");
            black_box(out.len())
        })
    });
    g.bench_function("rumqttc", |bch| {
        bch.iter(|| {
            out.clear();
            black_box(&r)
                .write(&mut out, DEFAULT_MAX_PACKET_SIZE)
                .expect("encodes");
            black_box(out.len())
        })
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    decode_case(c, "decode_publish_q0_64B", &[tern_publish(0, 64)]);
    decode_case(c, "decode_publish_q1_64B", &[tern_publish(1, 64)]);
    decode_case(c, "decode_publish_q1_16KiB", &[tern_publish(1, 16 * 1024)]);
    decode_case(c, "decode_puback", &[Packet::PubAck(pid(7))]);
    // A receive buffer as a QoS 1 publisher and subscriber see it: 50 PUBLISH, 50 PUBACK.
    let mixed: Vec<Packet> = (0..100u16)
        .map(|i| {
            if i % 2 == 0 {
                tern_publish(1, 64)
            } else {
                Packet::PubAck(pid(i + 1))
            }
        })
        .collect();
    decode_case(c, "decode_stream_100_mixed", &mixed);
    encode_case(
        c,
        "encode_publish_q1_64B",
        tern_publish(1, 64),
        rq_publish(1, 64),
    );
    encode_case(
        c,
        "encode_publish_q1_16KiB",
        tern_publish(1, 16 * 1024),
        rq_publish(1, 16 * 1024),
    );
    encode_case(
        c,
        "encode_puback",
        Packet::PubAck(pid(7)),
        rq::Packet::PubAck(rq::PubAck::new(7)),
    );
}

criterion_group!(benches, codec);
criterion_main!(benches);
