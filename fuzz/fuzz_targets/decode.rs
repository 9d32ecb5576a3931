//! Random bytes through the decoder at every protocol level (3.1, 3.1.1, 5.0): never panic; every packet that
//! decodes re-encodes to bytes that decode to the same packet.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_proto::{Decoder, EncodeError, Packet, ProtocolLevel};

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    for level in [ProtocolLevel::V3_1, ProtocolLevel::V3_1_1, ProtocolLevel::V5] {
        let mut decoder = Decoder::new(level, LIMIT);
        let mut buf = BytesMut::from(data);
        while let Ok(Some(packet)) = decoder.decode(&mut buf) {
            check_reencode(level, &packet);
        }
    }
});

fn check_reencode(level: ProtocolLevel, packet: &Packet) {
    let mut out = BytesMut::new();
    match packet.encode_for(level, &mut out) {
        Ok(()) => {}
        // Client-side CONNECT rules a server answers with CONNACK 2 instead of closing, so the
        // decoder accepts what the encoder refuses.
        Err(EncodeError::ClientIdLength { .. } | EncodeError::EmptyClientIdWithoutCleanSession)
            if matches!(packet, Packet::Connect(_)) =>
        {
            return;
        }
        Err(e) => panic!("decoded {packet:?} but encoding it fails: {e}"),
    }
    assert_eq!(out.len(), packet.encoded_len_for(level), "encoded_len_for of {packet:?}");
    let mut decoder = Decoder::new(level, usize::MAX);
    match decoder.decode(&mut out) {
        Ok(Some(again)) => assert_eq!(&again, packet, "re-decoded packet differs"),
        other => panic!("re-encoded {packet:?} decodes to {other:?}"),
    }
    assert!(out.is_empty(), "bytes left after re-decoding {packet:?}");
}
