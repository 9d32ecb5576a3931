//! When to ACK at once what was read but is not answered with data.
//!
//! Linux holds back the TCP ACK of received data for up to 40 ms once a connection looks
//! interactive (data was sent soon after data arrived), expecting to send it with the next
//! data. A broker that leaves Nagle's algorithm on, as mosquitto does by default, holds its
//! next small packet until that ACK arrives. mosquitto answers a PUBLISH with two writes (the
//! message to subscribers, then the PUBACK), so a client that reads the first alone, answers
//! nothing, and waits for the second, waits for its own delayed ACK: a QoS 1 request/response
//! over such a broker took 22 ms per round trip, a QoS 2 one 44 ms.
//!
//! `TCP_QUICKACK` sends the ACK now, but costs a system call and an ACK segment, which on a
//! broker with Nagle off (where nothing waits for the ACK) made a pinned QoS 1 ping-pong
//! 5% slower. So [`AckPolicy`] starts deferred: a read left unanswered for [`DEFER`] gets its
//! quick ACK then. If a read follows such a quick ACK within [`EVIDENCE`], the broker was
//! waiting for it, and from then on the connection ACKs unanswered reads at once.
//!
//! Only reads after we sent data since the last quick ACK count: on a one-way stream the
//! kernel ACKs promptly by itself.

use std::time::{Duration, Instant};

/// How long a read may stay unanswered before its quick ACK, while deferred.
pub(crate) const DEFER: Duration = Duration::from_millis(1);

/// A read this soon after a deferred quick ACK shows that the broker was waiting for it.
pub(crate) const EVIDENCE: Duration = Duration::from_millis(5);

/// What the driver should do about ACKs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckAction {
    /// Nothing is owed.
    Idle,
    /// Set `TCP_QUICKACK` now (then report it with [`AckPolicy::quickacked`]).
    QuickAck,
    /// Look again at this time.
    WaitUntil(Instant),
}

/// Per-connection state for the quick-ACK decision. Sans-IO: time is passed in.
#[derive(Debug, Default)]
pub(crate) struct AckPolicy {
    /// The broker was seen waiting for our ACK: quick-ACK every unanswered read.
    immediate: bool,
    /// Data was written since the last quick ACK (the kernel may be delaying ACKs).
    sent: bool,
    /// The oldest read not yet ACKed by data or a quick ACK.
    unanswered_since: Option<Instant>,
    /// When the last deferred quick ACK was sent, until the next read or write.
    deferred_ack_at: Option<Instant>,
}

impl AckPolicy {
    /// A fresh connection.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Bytes were read at `now`. Returns true when this switched the policy to immediate.
    pub(crate) fn on_read(&mut self, now: Instant) -> bool {
        let switched = !self.immediate
            && self
                .deferred_ack_at
                .take()
                .is_some_and(|at| now.saturating_duration_since(at) <= EVIDENCE);
        self.immediate |= switched;
        self.unanswered_since.get_or_insert(now);
        switched
    }

    /// Data is being written: it carries the ACK of everything read so far.
    pub(crate) fn on_write(&mut self) {
        self.sent = true;
        self.unanswered_since = None;
        self.deferred_ack_at = None;
    }

    /// What to do at `now`, with nothing queued to write.
    pub(crate) fn poll(&self, now: Instant) -> AckAction {
        match self.unanswered_since {
            Some(since) if self.sent => {
                if self.immediate {
                    return AckAction::QuickAck;
                }
                let due = since + DEFER;
                if now >= due {
                    AckAction::QuickAck
                } else {
                    AckAction::WaitUntil(due)
                }
            }
            _ => AckAction::Idle,
        }
    }

    /// The quick ACK asked for by [`poll`](Self::poll) was sent at `now`.
    pub(crate) fn quickacked(&mut self, now: Instant) {
        self.sent = false;
        self.unanswered_since = None;
        if !self.immediate {
            self.deferred_ack_at = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nothing_is_owed_before_data_was_sent() {
        let t = Instant::now();
        let mut p = AckPolicy::new();
        p.on_read(t);
        assert_eq!(p.poll(t + ms(100)), AckAction::Idle, "one-way stream");
    }

    #[test]
    fn an_unanswered_read_after_a_write_is_acked_after_the_deferral() {
        let t = Instant::now();
        let mut p = AckPolicy::new();
        p.on_write();
        p.on_read(t);
        assert_eq!(p.poll(t), AckAction::WaitUntil(t + DEFER));
        // A later read does not move the deadline of the first.
        p.on_read(t + ms(0) + Duration::from_micros(300));
        assert_eq!(p.poll(t + DEFER), AckAction::QuickAck);
        p.quickacked(t + DEFER);
        assert_eq!(
            p.poll(t + ms(50)),
            AckAction::Idle,
            "ACKed, nothing sent since"
        );
    }

    #[test]
    fn a_write_answers_the_read() {
        let t = Instant::now();
        let mut p = AckPolicy::new();
        p.on_write();
        p.on_read(t);
        p.on_write();
        assert_eq!(p.poll(t + ms(10)), AckAction::Idle);
    }

    #[test]
    fn a_read_soon_after_a_deferred_quickack_switches_to_immediate() {
        let t = Instant::now();
        let mut p = AckPolicy::new();
        p.on_write();
        p.on_read(t);
        p.quickacked(t + DEFER);
        assert!(p.on_read(t + DEFER + Duration::from_micros(50)));
        assert!(p.immediate);
        // Immediate: no deferral any more, but still only after data was sent.
        p.quickacked(t + ms(2));
        p.on_read(t + ms(3));
        assert_eq!(p.poll(t + ms(3)), AckAction::Idle);
        p.on_write();
        p.on_read(t + ms(4));
        assert_eq!(p.poll(t + ms(4)), AckAction::QuickAck);
        assert!(!p.on_read(t + ms(4)), "switches once");
    }

    #[test]
    fn a_read_long_after_a_deferred_quickack_or_after_a_write_is_no_evidence() {
        let t = Instant::now();
        let mut p = AckPolicy::new();
        p.on_write();
        p.on_read(t);
        p.quickacked(t + DEFER);
        assert!(!p.on_read(t + DEFER + EVIDENCE + ms(1)));
        assert!(!p.immediate);

        let mut p = AckPolicy::new();
        p.on_write();
        p.on_read(t);
        p.quickacked(t + DEFER);
        p.on_write(); // our own request: what comes next is its answer
        assert!(!p.on_read(t + DEFER + Duration::from_micros(50)));
        assert!(!p.immediate);
    }
}
