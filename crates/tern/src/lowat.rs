//! How many received bytes wake the driver: the socket's receive low-water mark
//! (`SO_RCVLOWAT`).
//!
//! A publisher with a full in-flight window is owed one 4-byte acknowledgement per publish,
//! and the broker sends them one at a time, as it gets to each publish. Woken for every one,
//! the client reads 4 bytes and writes one PUBLISH per wake-up: a system call each way per
//! message, and a wake-up the broker pays for on its side. The session knows how many bytes
//! are owed ([`tern_proto::Session::owed_bytes`]: PUBACK, PUBREC, PUBCOMP, UNSUBACK, SUBACK,
//! and PUBREL for our PUBRECs); they arrive unless the connection ends (which wakes the
//! driver anyway). So while enough is owed, the driver asks the kernel to wake it only once a
//! quarter of them are readable, then reads those acknowledgements in one call and writes the
//! publishes they make room for in one call.
//!
//! A fast one-way stream (a subscription at QoS 0, nothing written back) is the other case:
//! the broker writes each message on its own, so an eager reader is woken once per message.
//! [`StreamWatch`] notices [`STREAM_READS`] reads within one millisecond with nothing written
//! in between, and the driver then waits for [`STREAM_MARK`] units (1,020 bytes) at a time.
//! Nothing guarantees those bytes arrive, so a timer ([`STREAM_PATIENCE`] after the last read)
//! ends the batching, and the kernel then wakes the driver for whatever is there: the last
//! messages of a burst wait up to about 2 ms (the timer's resolution is 1 ms). Anything
//! written ends it too. `ConnectOptions::coalesce_reads(false)` turns it off.
//!
//! Measured with the comparative benchmark (`compare client --scenario …`, the bench's
//! broker, alternating builds, 3–4 runs each; client CPU · broker CPU per message,
//! throughput):
//!
//! | scenario | before | after | rumqttc |
//! |---|---|---|---|
//! | 64 B QoS 0, 200,000 | 9.8–10.4 · 17.4–19.6 µs, 50–57k/s | 1.8–1.9 · 12.3–13.1 µs, 76–79k/s | 10.3–11.3 · 17.2–18.5 µs, 53–57k/s |
//! | 64 B QoS 1, 100,000 | 25.8–28.3 · 32.4–35.5 µs, 28–30k/s | 15.7–18.9 · 29.1–33.9 µs, 29–34k/s | 24.8–29.4 · 30.9–35.9 µs, 27–32k/s |
//! | 64 B QoS 2, 50,000 | 46.5–47.6 · 60.6–61.0 µs, 16.1–16.3k/s | 7.8–21.2 · 55.0–57.0 µs, 16.6–17.3k/s | 48.0–55.4 · 60.6–69.8 µs, 14–16k/s |
//!
//! Pinned ping-pong latency is unchanged: little is owed, and every read is answered.
//!
//! Limits, by design:
//! - Below [`MIN_OWED`] bytes (fewer than 8 acknowledgements awaited, e.g. request/response
//!   traffic) every byte wakes the driver, as without this; so does a QoS 1/2 subscriber
//!   (it writes after every read) unless it is owed PUBRELs.
//! - Anything else the broker sends meanwhile (a message for a subscription on the same
//!   connection) waits until the next quarter of the owed bytes arrives: at the broker's
//!   pace, a fraction of a round trip.
//! - While a PINGREQ awaits its PINGRESP, the session reports nothing owed, so a 2-byte
//!   PINGRESP is never left unread while its timer runs out.
//! - Plain TCP only: TLS records and WebSocket frames are held back until whole, so bytes
//!   read from the socket need not reach the session, and the count would not hold.
//! - A stream of messages larger than 1,020 bytes gains nothing (each read is a batch
//!   already); a stream slower than about 1 KiB per millisecond is batched until the timer,
//!   then read eagerly until it looks fast again.
//! - Linux only (see `transport::set_recv_low_water`).

use std::time::Duration;

use crate::quickack::Ticks;

/// Owed bytes below which every received byte wakes the driver.
pub(crate) const MIN_OWED: usize = 32;

/// Reads within one millisecond tick, nothing written in between, that make a stream.
pub(crate) const STREAM_READS: u8 = 8;

/// The mark while batching a stream, in 4-byte units (1,020 bytes: a dozen small messages).
pub(crate) const STREAM_MARK: u8 = u8::MAX;

/// How long after its last read a batched stream may stay quiet before the driver reads
/// whatever is there.
pub(crate) const STREAM_PATIENCE: Duration = Duration::from_millis(1);

/// Watches incoming data for a fast one-way stream. Sans-IO: time is passed in. Every
/// connection's task holds one, so it is kept to 2 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamWatch {
    /// The low byte of the tick of the reads counted (a read 256 ms later in the same low
    /// byte continues the count: at worst one needless batch, which the timer ends).
    tick: u8,
    /// Reads in `tick` since the last write; [`BATCHING`] once a stream was seen.
    reads: u8,
}

/// `StreamWatch::reads` while batching.
const BATCHING: u8 = u8::MAX;

impl StreamWatch {
    /// A fresh connection: not batching.
    pub(crate) fn new() -> Self {
        Self { tick: 0, reads: 0 }
    }

    /// Bytes were read at `now`. Returns true when this starts batching.
    pub(crate) fn on_read(&mut self, now: Ticks) -> bool {
        if self.batching() {
            return false;
        }
        // Truncation is the wrap.
        #[allow(clippy::cast_possible_truncation)]
        let tick = now.0 as u8;
        if tick == self.tick {
            self.reads += 1;
        } else {
            self.tick = tick;
            self.reads = 1;
        }
        if self.reads >= STREAM_READS {
            self.reads = BATCHING;
        }
        self.batching()
    }

    /// Something is being written (the stream is not one-way), or the stream went quiet for
    /// [`STREAM_PATIENCE`]: back to reading every byte, and counting afresh. Returns whether
    /// it was batching.
    pub(crate) fn stop(&mut self) -> bool {
        let was = self.batching();
        *self = Self::new();
        was
    }

    /// Whether to wait for [`STREAM_MARK`] bytes.
    pub(crate) fn batching(&self) -> bool {
        self.reads == BATCHING
    }
}

/// The receive low-water mark for `owed` bytes owed by the broker, in 4-byte
/// acknowledgements (a byte in every connection's state): a quarter of what is owed, at most
/// 255 acknowledgements, or 1, which stands for every byte, when little is owed. See
/// [`mark_bytes`].
pub(crate) fn recv_low_water(owed: usize) -> u8 {
    if owed < MIN_OWED {
        return 1;
    }
    // owed / 4 bytes = owed / 16 acknowledgements, at least 2 here.
    u8::try_from(owed / 16).unwrap_or(u8::MAX)
}

/// The bytes a mark from [`recv_low_water`] stands for.
pub(crate) fn mark_bytes(mark: u8) -> u16 {
    if mark <= 1 { 1 } else { 4 * u16::from(mark) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(owed: usize) -> usize {
        usize::from(mark_bytes(recv_low_water(owed)))
    }

    #[test]
    fn little_owed_wakes_for_every_byte() {
        for owed in [0, 1, 4, 28, MIN_OWED - 1] {
            assert_eq!(bytes(owed), 1, "owed {owed}");
        }
    }

    #[test]
    fn a_quarter_of_what_is_owed_never_more_than_owed() {
        assert_eq!(bytes(MIN_OWED), 8);
        assert_eq!(bytes(400), 100);
        for owed in MIN_OWED..10_000 {
            let mark = bytes(owed);
            assert!((8..=owed / 4).contains(&mark), "owed {owed}: mark {mark}");
        }
    }

    #[test]
    fn eight_reads_in_one_tick_make_a_stream() {
        let mut w = StreamWatch::new();
        for i in 1..STREAM_READS {
            assert!(!w.on_read(Ticks(7)), "read {i}");
        }
        assert!(w.on_read(Ticks(7)));
        assert!(w.batching());
        assert!(!w.on_read(Ticks(9)), "starts once");
        assert!(w.batching(), "fewer, larger reads keep it going");
        assert!(w.stop());
        assert!(!w.batching());
        assert!(!w.stop());
    }

    #[test]
    fn reads_spread_over_ticks_or_answered_are_no_stream() {
        let mut w = StreamWatch::new();
        for t in 0..100u16 {
            assert!(!w.on_read(Ticks(t)), "one read per tick");
        }
        for i in 0..100 {
            // Request/response: every read is followed by a write.
            assert!(!w.on_read(Ticks(5)), "read {i}");
            w.stop();
        }
        assert!(!w.batching());
    }

    #[test]
    fn capped() {
        assert_eq!(bytes(4 * 65_535), 1020);
        assert_eq!(bytes(usize::MAX), 1020);
    }
}
