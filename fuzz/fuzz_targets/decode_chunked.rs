//! The same bytes fed whole and in chunks give the same packets and the same error.
//!
//! Input: one byte seeding the chunk sizes, then the stream.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_proto::{DecodeError, Decoder, Packet, ProtocolLevel};

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let chunks = chunk(stream, seed);
    for level in [ProtocolLevel::V3_1, ProtocolLevel::V3_1_1, ProtocolLevel::V5] {
        let whole = run(level, [stream]);
        let pieces = run(level, chunks.iter().copied());
        assert_eq!(
            whole,
            pieces,
            "chunks {:?}",
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
        );
    }
});

/// Splits `stream` into chunks whose sizes come from a xorshift generator seeded by `seed`;
/// the low 3 bits cap the size at 1, 2, 4, ... 128 bytes (seed 0: one byte at a time).
fn chunk(stream: &[u8], seed: u8) -> Vec<&[u8]> {
    let max = 1usize << (seed & 7);
    let mut state = u32::from(seed) << 16 | 0x9e37 | 1;
    let mut chunks = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state as usize % max + 1).min(rest.len());
        let (a, b) = rest.split_at(size);
        chunks.push(a);
        rest = b;
    }
    chunks
}

/// Feeds the chunks, draining packets after each; stops at the first error.
fn run<'a>(
    level: ProtocolLevel,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Packet>, Option<DecodeError>, usize) {
    let mut decoder = Decoder::new(level, LIMIT);
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(p)) => packets.push(p),
                Ok(None) => break,
                Err(e) => return (packets, Some(e), 0),
            }
        }
    }
    // Bytes of an incomplete last packet stay buffered, whatever the chunking.
    let left = buf.len();
    (packets, None, left)
}
