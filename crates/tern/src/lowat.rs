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
//! A fast one-way stream (a subscription, nothing written back but acknowledgements) is the
//! other case: the broker writes each message on its own, so an eager reader is woken once
//! per message. [`StreamWatch`] notices [`STREAM_READS`] reads within one millisecond with
//! nothing but PUBACK, PUBREC or PUBCOMP written in between
//! ([`tern_proto::Session::take_sent_other`]), and the driver then waits for [`STREAM_MARK`]
//! units (1,020 bytes) at a time. Nothing guarantees those bytes arrive, so a timer
//! ([`STREAM_PATIENCE`] after the last read) ends the batching, and the kernel then wakes the
//! driver for whatever is there: the last messages of a burst wait up to about 2 ms (the
//! timer's resolution is 1 ms). Anything else written ends it too (a request/response
//! exchange never batches). `ConnectOptions::coalesce_reads(false)` turns it off.
//!
//! At QoS 1 and 2 the broker may hold messages until it gets acknowledgements: its in-flight
//! window toward the client (mosquitto's `max_inflight_messages`, 20 by default) may be
//! smaller than a batch. Then every batch would end by the timer. A batch of an acknowledged
//! stream that times out with bytes waiting (`FIONREAD`; fewer than a batch: a whole batch
//! only means its wake-up raced the timer, and just restarts the count), twice with no batch
//! filled in between, is
//! halved for the rest of the connection, and batching stops altogether once it would be
//! a byte: at most 14 such stalls of 1–2 ms each.
//!
//! Measured with the comparative benchmark (`compare client --scenario …`, the bench's
//! broker, alternating builds, 3–4 runs each; client CPU · broker CPU per message,
//! throughput):
//!
//! | scenario | before | after | rumqttc |
//! |---|---|---|---|
//! | 64 B QoS 0, 200,000 | 9.8–10.4 · 17.4–19.6 µs, 50–57k/s | 1.8–1.9 · 12.3–13.1 µs, 76–79k/s | 10.3–11.3 · 17.2–18.5 µs, 53–57k/s |
//! | 64 B QoS 1, 100,000 | 25.8–28.3 · 32.4–35.5 µs, 28–30k/s | 7.2–8.1 · 29.7–31.0 µs, 32–33k/s | 27.0–28.9 · 32.3–32.9 µs, 30k/s |
//! | 64 B QoS 2, 50,000 | 46.5–47.6 · 60.6–61.0 µs, 16.1–16.3k/s | 7.8–21.2 · 55.0–57.0 µs, 16.6–17.3k/s | 48.0–55.4 · 60.6–69.8 µs, 14–16k/s |
//!
//! (QoS 1: the publisher's acknowledgement mark and the subscriber's batches; QoS 2: the
//! publisher's mark and the subscriber's owed PUBRELs.) Through a broker with a window of
//! one message, 20,000 QoS 1 messages: 17.0–18.7k/s against 17.9–20.8k/s without the
//! subscriber's batches (rumqttc 19.9–23.7k/s). Pinned ping-pong latency is unchanged: little
//! is owed, and every read is answered with a PUBLISH.
//!
//! Limits, by design:
//! - Below [`MIN_OWED`] bytes (fewer than 8 acknowledgements awaited, e.g. request/response
//!   traffic) every byte wakes the driver, as without this.
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

/// The first mark while batching a stream, in 4-byte units (1,020 bytes: a dozen small
/// messages).
pub(crate) const STREAM_MARK: u8 = u8::MAX;

/// How long after its last read a batched stream may stay quiet before the driver reads
/// whatever is there.
pub(crate) const STREAM_PATIENCE: Duration = Duration::from_millis(1);

/// Watches incoming data for a fast one-way stream. Sans-IO: time is passed in. Every
/// connection's task holds one, so it is kept to 5 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamWatch {
    /// The low byte of the tick of the reads counted (a read 256 ms later in the same low
    /// byte continues the count: at worst one needless batch, which the timer ends).
    tick: u8,
    /// Reads in `tick` since the last write; [`BATCHING`] once a stream was seen.
    reads: u8,
    /// The batch, in 4-byte units: [`STREAM_MARK`] at first, halved whenever a batch of an
    /// acknowledged stream timed out with bytes waiting (see [`Self::timed_out`]); 1 or less
    /// turns batching off for the connection.
    mark: u8,
    /// Acknowledgements were written while batching.
    acked: bool,
    /// The last batch of an acknowledged stream timed out with bytes waiting, and no batch
    /// has filled since.
    stalled: bool,
}

/// `StreamWatch::reads` while batching.
const BATCHING: u8 = u8::MAX;

impl StreamWatch {
    /// A fresh connection: not batching.
    pub(crate) fn new() -> Self {
        Self {
            tick: 0,
            reads: 0,
            mark: STREAM_MARK,
            acked: false,
            stalled: false,
        }
    }

    /// Bytes were read at `now`. Returns true when this starts batching.
    pub(crate) fn on_read(&mut self, now: Ticks) -> bool {
        if self.batching() {
            // A batch filled: the broker keeps up with it.
            self.stalled = false;
            return false;
        }
        if self.mark <= 1 {
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

    /// Acknowledgements of what was read are being written (the stream is still one-way).
    pub(crate) fn on_ack(&mut self) {
        if self.batching() {
            self.acked = true;
        }
    }

    /// Something other than acknowledgements is being written (the stream is not one-way):
    /// back to reading every byte, and counting afresh. Returns whether it was batching.
    pub(crate) fn stop(&mut self) -> bool {
        let was = self.batching();
        *self = Self {
            mark: self.mark,
            stalled: self.stalled,
            ..Self::new()
        };
        was
    }

    /// The stream went quiet for [`STREAM_PATIENCE`] while batching: back to reading every
    /// byte. `waiting`: bytes were readable, fewer than a batch. That happens at the end of a
    /// burst; but if the stream was acknowledged and it happens twice with no batch filled in
    /// between, the broker is likely holding the rest until it gets acknowledgements (its
    /// in-flight window toward us is smaller than a batch), and the batch is halved, for good.
    /// Returns the new mark when it was halved.
    pub(crate) fn timed_out(&mut self, waiting: bool) -> Option<u8> {
        let stall = self.batching() && self.acked && waiting;
        let halve = stall && self.stalled;
        self.stop();
        self.stalled = stall && !halve;
        if halve {
            self.mark /= 2;
            return Some(self.mark);
        }
        None
    }

    /// The last batch timed out with bytes waiting and the next such timeout halves the
    /// batch (see [`Self::timed_out`]).
    pub(crate) fn stalled(&self) -> bool {
        self.stalled
    }

    /// The batch to wait for, in 4-byte units (see [`mark_bytes`]).
    pub(crate) fn mark(&self) -> u8 {
        self.mark
    }

    /// Whether to wait for a batch ([`Self::mark`]).
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
    fn acknowledgements_keep_the_stream_and_a_stalled_batch_is_halved() {
        let mut w = StreamWatch::new();
        for _ in 0..STREAM_READS {
            w.on_read(Ticks(3));
        }
        assert!(w.batching());
        w.on_ack();
        assert!(w.batching(), "acknowledging does not end it");
        assert_eq!(w.timed_out(true), None, "a burst may have ended");
        assert!(w.stalled());
        assert!(!w.batching());
        for _ in 0..STREAM_READS {
            w.on_read(Ticks(3));
        }
        w.on_ack();
        assert_eq!(
            w.timed_out(true),
            Some(STREAM_MARK / 2),
            "stalled twice in a row"
        );
        // Quiet with nothing waiting (the burst ended), or never acknowledged (QoS 0): the
        // batch stays.
        for waiting in [false, true] {
            for _ in 0..STREAM_READS {
                w.on_read(Ticks(4));
            }
            if waiting {
                assert_eq!(w.timed_out(true), None, "not acknowledged");
            } else {
                w.on_ack();
                assert_eq!(w.timed_out(false), None, "nothing waiting");
            }
        }
        assert_eq!(w.mark(), STREAM_MARK / 2);
        // A batch that fills clears a stall.
        for _ in 0..STREAM_READS {
            w.on_read(Ticks(5));
        }
        w.on_ack();
        assert_eq!(w.timed_out(true), None);
        for _ in 0..STREAM_READS {
            w.on_read(Ticks(6));
        }
        w.on_read(Ticks(6));
        w.on_ack();
        assert_eq!(w.timed_out(true), None, "a batch filled in between");
        assert_eq!(w.mark(), STREAM_MARK / 2);
    }

    #[test]
    fn a_window_smaller_than_any_batch_turns_batching_off_in_fourteen_stalls() {
        let mut w = StreamWatch::new();
        let mut stalls = 0;
        for t in 0..100u16 {
            let mut started = false;
            for _ in 0..STREAM_READS {
                started |= w.on_read(Ticks(t));
            }
            if !started {
                break;
            }
            w.on_ack();
            w.timed_out(true);
            stalls += 1;
        }
        assert_eq!(stalls, 14, "255 halved to 1 in 7 steps, every second stall");
        assert!(w.mark() <= 1);
        for _ in 0..100 {
            assert!(!w.on_read(Ticks(200)), "off for good");
        }
    }

    #[test]
    fn capped() {
        assert_eq!(bytes(4 * 65_535), 1020);
        assert_eq!(bytes(usize::MAX), 1020);
    }
}
