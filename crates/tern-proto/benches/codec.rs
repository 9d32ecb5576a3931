//! Codec micro-benchmarks: decode and encode of PUBLISH at three payload sizes, and of a
//! mixed stream of what a client receives (built from the `testdata/` vectors), at level 4;
//! then the same at level 5 (`v5/…`: PUBLISH without and with properties, a stream of the
//! MQTT 5 vectors). Each case reports packets/s and bytes/s.

// Inputs are fixed vectors known to be valid: any failure is a bug to abort on.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tern_proto::packet::DEFAULT_MAX_PACKET_SIZE;
use tern_proto::{
    Decoder, MqttString, Packet, PacketId, ProtocolLevel, Publish, PublishProperties, PublishV5,
    QosPid, TopicName,
};

/// Hex text of a `testdata` file to bytes (`#` comments, whitespace ignored).
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| line.bytes().filter(|b| !b.is_ascii_whitespace()))
        .collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

macro_rules! testdata {
    ($file:literal) => {
        hex(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/",
            $file,
            ".hex"
        )))
    };
}

/// What a client typically receives, one of each: CONNACK, SUBACK, PUBLISH at QoS 0, 1 and 2,
/// the four acks, PINGRESP.
fn mixed_vectors() -> Vec<u8> {
    [
        testdata!("v311/connack_accepted"),
        testdata!("v311/suback_granted"),
        testdata!("v311/publish_qos0"),
        testdata!("v311/publish_qos1"),
        testdata!("v311/publish_qos2_dup_retain"),
        testdata!("v311/puback"),
        testdata!("v311/pubrec"),
        testdata!("v311/pubrel"),
        testdata!("v311/pubcomp"),
        testdata!("v311/pingresp"),
    ]
    .concat()
}

/// What an MQTT 5 client typically receives: the level-5 vectors of the same kinds.
fn mixed_vectors_v5() -> Vec<u8> {
    [
        testdata!("v5/connack_properties"),
        testdata!("v5/suback_reasons"),
        testdata!("v5/publish_qos0"),
        testdata!("v5/publish_properties"),
        testdata!("v5/publish_alias_only"),
        testdata!("v311/puback"),
        testdata!("v5/puback_reason"),
        testdata!("v5/pubrec_error"),
        testdata!("v5/pubrel_not_found"),
        testdata!("v5/pubcomp_reason_string"),
        testdata!("v311/pingresp"),
    ]
    .concat()
}

fn decode_all(level: ProtocolLevel, stream: &[u8]) -> Vec<Packet> {
    let mut dec = Decoder::new(level, DEFAULT_MAX_PACKET_SIZE);
    let mut buf = BytesMut::from(stream);
    let mut packets = Vec::new();
    while let Some(p) = dec.decode(&mut buf).unwrap() {
        packets.push(p);
    }
    assert!(buf.is_empty());
    packets
}

/// Encodes at `level`; level 4 through [`Packet::encode`], as the session does.
fn encode_at(level: ProtocolLevel, p: &Packet, out: &mut BytesMut) {
    if level == ProtocolLevel::V3_1_1 {
        p.encode(out).unwrap();
    } else {
        p.encode_for(level, out).unwrap();
    }
}

fn encode_all(level: ProtocolLevel, packets: &[Packet]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for p in packets {
        encode_at(level, p, &mut out);
    }
    out.to_vec()
}

fn publish(payload_len: usize, n: u16) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtLeastOnce(PacketId::new(n).unwrap()),
        retain: false,
        topic: TopicName::new("sensors/building-7/floor-3/temperature").unwrap(),
        payload: Bytes::from(vec![0x5a; payload_len]),
    })
}

/// A PUBLISH like [`publish`] with the properties an MQTT 5 sensor might add.
fn publish_v5_properties(payload_len: usize, n: u16) -> Packet {
    let Packet::Publish(publish) = publish(payload_len, n) else {
        unreachable!()
    };
    Packet::PublishV5(Box::new(PublishV5 {
        publish,
        properties: PublishProperties {
            message_expiry_interval: Some(60),
            content_type: Some(MqttString::new("application/octet-stream").unwrap()),
            user_properties: vec![(
                MqttString::new("unit").unwrap(),
                MqttString::new("celsius").unwrap(),
            )],
            ..PublishProperties::default()
        },
    }))
}

/// One benchmark pair (decode, encode) over `packets`, encoded as one stream at `level`.
fn bench_stream(c: &mut Criterion, name: &str, level: ProtocolLevel, packets: &[Packet]) {
    let stream = encode_all(level, packets);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::ElementsAndBytes {
        elements: packets.len() as u64,
        bytes: stream.len() as u64,
    });
    group.bench_function("decode", |b| {
        let mut dec = Decoder::new(level, DEFAULT_MAX_PACKET_SIZE);
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| {
                while let Some(p) = dec.decode(buf).unwrap() {
                    black_box(p);
                }
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("encode", |b| {
        let mut out = BytesMut::with_capacity(stream.len());
        b.iter(|| {
            out.clear();
            for p in black_box(packets) {
                encode_at(level, p, &mut out);
            }
            black_box(&out);
        });
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    for (name, payload_len, count) in [
        ("publish_16B", 16, 1000),
        ("publish_1KiB", 1024, 256),
        ("publish_64KiB", 64 * 1024, 16),
    ] {
        let packets: Vec<Packet> = (1..=count).map(|n| publish(payload_len, n)).collect();
        bench_stream(c, name, ProtocolLevel::V3_1_1, &packets);
    }
    let one_round = decode_all(ProtocolLevel::V3_1_1, &mixed_vectors());
    let mixed: Vec<Packet> = one_round.iter().cycle().take(1000).cloned().collect();
    bench_stream(c, "mixed_stream", ProtocolLevel::V3_1_1, &mixed);

    let v5 = ProtocolLevel::V5;
    let plain: Vec<Packet> = (1..=1000).map(|n| publish(16, n)).collect();
    bench_stream(c, "v5/publish_16B", v5, &plain);
    let with_properties: Vec<Packet> = (1..=1000).map(|n| publish_v5_properties(16, n)).collect();
    bench_stream(c, "v5/publish_16B_properties", v5, &with_properties);
    let one_round = decode_all(v5, &mixed_vectors_v5());
    let mixed: Vec<Packet> = one_round.iter().cycle().take(1000).cloned().collect();
    bench_stream(c, "v5/mixed_stream", v5, &mixed);
}

criterion_group!(benches, codec);
criterion_main!(benches);
