//! Read tuning: when to ACK at once what was read but is not answered with data.
//!
//! Linux holds back the TCP ACK of received data for 40 ms or more once a connection looks
//! interactive (data was sent soon after data arrived), expecting to send it with the next
//! data. A broker that leaves Nagle's algorithm on, as mosquitto does by default, holds its
//! next small packet until that ACK arrives. mosquitto answers a PUBLISH with two writes (the
//! message to subscribers, then the PUBACK), so a client that reads the first alone, answers
//! nothing, and waits for the second, waits for its own delayed ACK: a QoS 1 request/response
//! over such a broker took 22 ms per round trip on average, a QoS 2 one 44 ms.
//!
//! `TCP_QUICKACK` sends the ACK now, but costs a system call and an ACK segment, which on a
//! broker with Nagle off (where nothing waits for the ACK) made a pinned QoS 1 ping-pong
//! 5% slower; so does anything that runs per read, like a timer to defer it (3–5%). So
//! [`AckPolicy`] starts passive and only watches: a read that comes [`STALL_MIN`] to
//! [`STALL_MAX`] after the last read, when nothing answered that one and nothing was written
//! in between, looks like a delayed ACK releasing the broker's held packet. From then on the
//! connection quick-ACKs every read that nothing answers. The first stall is paid once; a
//! quiet connection may switch without need, which costs a system call per unanswered read.
//!
//! Only reads after we sent data since the last quick ACK count: on a one-way stream the
//! kernel ACKs promptly by itself.
//!
//! # The rules for read tuning
//!
//! - **It never waits.** No read-side tuning may wait on bytes whose arrival depends on our
//!   own next ACK or write; every wait it could add would have to be bounded by something
//!   other than the broker, and the only tuning left (quick-ACK) adds none: it only makes
//!   the ACK leave sooner. Two tunings that did wait were removed for breaking the rule: a
//!   receive low-water mark (`SO_RCVLOWAT`) of a quarter of the acknowledgements owed (with
//!   keep-alive 0 nothing bounded its wait at all), and batched reads of a fast one-way
//!   stream (a 1 KiB mark ended by a 1 ms timer). Through a broker with Nagle's algorithm
//!   on, the bytes they waited for were held by the broker until our kernel ACKed the first
//!   segment, and with nothing read the kernel ACKed only after its 40 ms delayed-ACK timer:
//!   a publish-only QoS 1 client stalled ~43 ms per in-flight window, 30× slower than
//!   `mosquitto_pub` against a stock mosquitto. They paid only through a broker with Nagle
//!   off.
//! - **One switch.** [`ConnectOptions::read_tuning`](crate::ConnectOptions::read_tuning)
//!   off leaves a connection's [`ReadTuning`] empty: it watches nothing and sets no
//!   socket option.
//! - **One clock.** It reads no clock of its own: the time of a read is the driver's one
//!   reading for it (tokio's clock, which the session's timers run on too), passed down.
//!
//! Its decisions are `tracing` events with a `read_tuning` field on the `tern::driver`
//! target (`"quick_acks"` when a connection switches, `"quickack"` for each quick ACK), for
//! tests and diagnosis.
//!
//! Every connection's task holds one, so it is kept to 4 bytes: times are [`Ticks`] of a
//! millisecond on a wrapping 16-bit clock (65 s).

use std::sync::OnceLock;

use tokio::time::Instant;

use crate::transport::{self, Stream};

/// A point on a wrapping clock of millisecond ticks (it wraps every 65.5 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticks(pub(super) u16);

impl Ticks {
    /// `now` on the driver's clock, counted from the first call in this process.
    pub(super) fn at(now: Instant) -> Self {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        let millis = now
            .saturating_duration_since(*EPOCH.get_or_init(|| now))
            .as_millis();
        // Truncation is the wrap.
        #[allow(clippy::cast_possible_truncation)]
        Self(millis as u16)
    }

    /// Ticks from `earlier` to `self`.
    pub(super) fn since(self, earlier: Self) -> u16 {
        self.0.wrapping_sub(earlier.0)
    }
}

/// The shortest gap (ms) that looks like our delayed ACK releasing the broker's packet:
/// Linux delays ACKs by 40 ms at least.
pub(super) const STALL_MIN: u16 = 30;

/// The longest such gap (ms): Linux delays ACKs by 200 ms at most.
pub(super) const STALL_MAX: u16 = 250;

/// Per-connection state for the quick-ACK decision. Sans-IO: time is passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckPolicy {
    /// The broker has not been seen waiting for our ACKs: leave them to the kernel.
    Watching(Watch),
    /// It has: every read that nothing answers is quick-ACKed at once.
    Immediate(Owed),
}

/// What the connection did last, while watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Watch {
    /// Nothing was sent yet.
    Quiet,
    /// Data was sent, and everything read since was answered.
    Sent,
    /// Data was sent, then bytes were read and nothing answered them yet; the last read was
    /// at this time.
    Unanswered(Ticks),
}

/// What is owed, in immediate mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owed {
    /// No data was sent since the last quick ACK.
    Quiet,
    /// Data was sent since, and everything read since was answered.
    Sent,
    /// Data was sent, then bytes were read that nothing answered yet.
    Unanswered,
}

impl AckPolicy {
    /// A fresh connection.
    pub(super) fn new() -> Self {
        Self::Watching(Watch::Quiet)
    }

    /// Bytes were read at `now`. Returns true when this switched the policy to immediate.
    pub(super) fn on_read(&mut self, now: Ticks) -> bool {
        match *self {
            Self::Watching(Watch::Sent) => *self = Self::Watching(Watch::Unanswered(now)),
            Self::Watching(Watch::Unanswered(last)) => {
                if (STALL_MIN..=STALL_MAX).contains(&now.since(last)) {
                    // This read may be answered by nothing too.
                    *self = Self::Immediate(Owed::Unanswered);
                    return true;
                }
                *self = Self::Watching(Watch::Unanswered(now));
            }
            Self::Immediate(Owed::Sent) => *self = Self::Immediate(Owed::Unanswered),
            Self::Watching(Watch::Quiet) | Self::Immediate(Owed::Quiet | Owed::Unanswered) => {}
        }
        false
    }

    /// Data is being written: it carries the ACK of everything read so far.
    pub(super) fn on_write(&mut self) {
        *self = match self {
            Self::Watching(_) => Self::Watching(Watch::Sent),
            Self::Immediate(_) => Self::Immediate(Owed::Sent),
        };
    }

    /// Whether to set `TCP_QUICKACK` now, with nothing queued to write; if so, the caller
    /// does and the read counts as ACKed.
    pub(super) fn take_quickack(&mut self) -> bool {
        if *self == Self::Immediate(Owed::Unanswered) {
            *self = Self::Immediate(Owed::Quiet);
            true
        } else {
            false
        }
    }
}

/// The read tuning of one connection: `None` when
/// [`ConnectOptions::read_tuning`](crate::ConnectOptions::read_tuning) is off.
pub(super) struct ReadTuning(Option<AckPolicy>);

impl ReadTuning {
    /// A fresh connection's, with the tuning on or off.
    pub(super) fn new(on: bool) -> Self {
        Self(on.then(AckPolicy::new))
    }

    /// Bytes were read at `at` (the driver's clock reading for that read).
    pub(super) fn on_read(&mut self, at: Instant) {
        if let Some(policy) = &mut self.0
            && policy.on_read(Ticks::at(at))
        {
            tracing::debug!(
                target: super::TARGET, read_tuning = "quick_acks",
                "the broker waited for our delayed ACK (Nagle's algorithm): quick ACKs from now on"
            );
        }
    }

    /// The driver is about to wait on the socket with `writing` bytes queued: what leaves
    /// carries the ACK; otherwise an unanswered read may be quick-ACKed now.
    pub(super) fn before_wait(&mut self, writing: bool, stream: &dyn Stream) {
        let Some(policy) = &mut self.0 else {
            return;
        };
        if writing {
            policy.on_write();
        } else if policy.take_quickack() {
            tracing::trace!(target: super::TARGET, read_tuning = "quickack", "TCP_QUICKACK");
            transport::quickack(stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u16) -> Ticks {
        Ticks(ms)
    }

    fn is_immediate(p: &AckPolicy) -> bool {
        matches!(p, AckPolicy::Immediate(_))
    }

    #[test]
    fn it_stays_small() {
        assert!(size_of::<AckPolicy>() <= 4, "{}", size_of::<AckPolicy>());
        assert!(size_of::<ReadTuning>() <= 4, "{}", size_of::<ReadTuning>());
    }

    #[test]
    fn off_is_inert() {
        let mut t = ReadTuning::new(false);
        assert!(t.0.is_none());
        t.on_read(Instant::now());
        assert!(t.0.is_none());
    }

    #[test]
    fn a_watching_connection_never_quickacks() {
        let mut p = AckPolicy::new();
        p.on_write();
        p.on_read(at(0));
        assert!(!p.take_quickack());
        p.on_read(at(5));
        assert!(!p.take_quickack());
        assert!(!is_immediate(&p));
    }

    #[test]
    fn a_stall_after_an_unanswered_read_switches_to_immediate() {
        let mut p = AckPolicy::new();
        p.on_write();
        p.on_read(at(100));
        // The broker's held packet, released by our delayed ACK 40 ms later.
        assert!(p.on_read(at(140)));
        assert!(is_immediate(&p));
        assert!(
            p.take_quickack(),
            "the releasing read may be unanswered too"
        );
        assert!(!p.take_quickack(), "once per read");
        // Only reads after data was sent.
        p.on_read(at(150));
        assert!(!p.take_quickack());
        p.on_write();
        p.on_read(at(160));
        assert!(p.take_quickack());
        assert!(!p.on_read(at(300)), "switches once");
    }

    #[test]
    fn gaps_outside_the_delayed_ack_range_or_with_a_write_between_are_no_evidence() {
        for gap in [STALL_MIN - 1, STALL_MAX + 1, 10_000] {
            let mut p = AckPolicy::new();
            p.on_write();
            p.on_read(at(0));
            assert!(!p.on_read(at(gap)), "gap {gap}");
        }
        let mut p = AckPolicy::new();
        p.on_write();
        p.on_read(at(0));
        p.on_write(); // our own request: what comes next is its answer
        p.on_read(at(40));
        assert!(!is_immediate(&p));
        // Reads before anything was sent: a one-way stream.
        let mut p = AckPolicy::new();
        p.on_read(at(0));
        assert!(!p.on_read(at(40)));
    }

    #[test]
    fn a_steady_stream_after_a_write_is_no_evidence() {
        let mut p = AckPolicy::new();
        p.on_write();
        for t in (0..1_000).step_by(5) {
            assert!(!p.on_read(at(t)), "read at {t} ms");
        }
        assert!(!is_immediate(&p));
        // A pause of a stall's length after the stream is.
        assert!(p.on_read(at(1_040)));
    }

    #[test]
    fn the_clock_may_wrap() {
        let mut p = AckPolicy::new();
        p.on_write();
        p.on_read(at(u16::MAX - 9));
        assert!(p.on_read(at(30)));
    }
}
