//! The payload header every `tern bench pub` message starts with, so subscribers measure
//! end-to-end latency, gaps and duplicates:
//!
//! | bytes | field                                                        |
//! |-------|--------------------------------------------------------------|
//! | 0..4  | magic `TBH1`                                                 |
//! | 4..12 | run: a random id per publisher process (big-endian)          |
//! | 12..20| publisher: its client index (`-n` + position)                |
//! | 20..28| sequence number of the message for that publisher, from 0   |
//! | 28..36| send time, nanoseconds since the Unix epoch                  |
//! | 36..40| flags: bit 0 set on a publisher's last message of the run     |
//!
//! Latency across machines is only as good as their clock synchronisation (NTP/PTP).

use std::time::{SystemTime, UNIX_EPOCH};

/// Header length; `-s` is at least this.
pub(crate) const LEN: usize = 40;

const LAST: u32 = 1;

const MAGIC: &[u8; 4] = b"TBH1";

/// One message's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The publishing process's random run id.
    pub(crate) run: u64,
    /// The publisher's client index.
    pub(crate) publisher: u64,
    /// Sequence number per (run, publisher), from 0.
    pub(crate) seq: u64,
    /// Send time, nanoseconds since the Unix epoch.
    pub(crate) sent_ns: u64,
    /// The publisher's last message of the run.
    pub(crate) last: bool,
}

impl Header {
    /// Writes the header over the first [`LEN`] bytes of `buf`.
    pub(crate) fn write(&self, buf: &mut [u8]) {
        buf[..4].copy_from_slice(MAGIC);
        buf[4..12].copy_from_slice(&self.run.to_be_bytes());
        buf[12..20].copy_from_slice(&self.publisher.to_be_bytes());
        buf[20..28].copy_from_slice(&self.seq.to_be_bytes());
        buf[28..36].copy_from_slice(&self.sent_ns.to_be_bytes());
        buf[36..40].copy_from_slice(&(if self.last { LAST } else { 0 }).to_be_bytes());
    }

    /// The header at the start of `payload`, if it carries one.
    pub(crate) fn read(payload: &[u8]) -> Option<Self> {
        let h = payload.get(..LEN)?;
        if &h[..4] != MAGIC {
            return None;
        }
        let u = |r: std::ops::Range<usize>| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[r]);
            u64::from_be_bytes(b)
        };
        Some(Self {
            run: u(4..12),
            publisher: u(12..20),
            seq: u(20..28),
            sent_ns: u(28..36),
            last: h[39] & (LAST as u8) != 0,
        })
    }
}

/// Now, in nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_foreign_payloads_have_none() {
        let h = Header {
            run: 0xdead_beef,
            publisher: 42,
            seq: 7,
            sent_ns: now_ns(),
            last: true,
        };
        let mut buf = vec![0u8; 64];
        h.write(&mut buf);
        assert_eq!(Header::read(&buf), Some(h));
        assert_eq!(Header::read(&buf[..LEN - 1]), None);
        assert_eq!(
            Header::read(b"hello, this is not a bench payload at all"),
            None
        );
    }
}
