//! Deadlines of a session: one optional instant per [`Timer`] (quinn's `TimerTable` idea).

use std::time::Instant;

/// The deadlines a session keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// CONNACK must arrive before this.
    ConnAck = 0,
    /// Nothing sent or nothing received for the keepalive interval: send PINGREQ
    /// [MQTT-3.1.2-23].
    KeepAlive = 1,
    /// PINGRESP must arrive before this, or the link is presumed dead.
    PingResp = 2,
}

impl Timer {
    /// Every timer, in discriminant order.
    pub(super) const ALL: [Self; 3] = [Self::ConnAck, Self::KeepAlive, Self::PingResp];
    /// Table size, taken from `ALL` rather than counted by hand; the exhaustive match in the
    /// test below stops compiling when a variant is added, as a reminder to extend `ALL`.
    const COUNT: usize = Self::ALL.len();
}

/// One `Option<Instant>` per [`Timer`].
#[derive(Debug, Clone, Default)]
pub(super) struct TimerTable {
    deadlines: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    /// Arms (or re-arms) `timer`.
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = Some(at);
    }

    /// The deadline of `timer`, if armed.
    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    /// Disarms `timer`.
    pub(super) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    /// Disarms every timer.
    pub(super) fn stop_all(&mut self) {
        self.deadlines = [None; Timer::COUNT];
    }

    /// Whether `timer` is armed and its deadline is at or before `now`.
    pub(super) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }

    /// The earliest armed deadline.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_exhaustive_and_in_discriminant_order() {
        for (i, t) in Timer::ALL.iter().enumerate() {
            // Adding a variant makes this match non-exhaustive until `ALL` is updated.
            let n = match t {
                Timer::ConnAck | Timer::KeepAlive | Timer::PingResp => *t as usize,
            };
            assert_eq!(n, i);
        }
    }
}
