//! Paced load: event `k` is due at the absolute instant `start + k / rate`, so late wake-ups
//! never accumulate into drift. One [`Pacer`] (one timer) drives every publisher of a run
//! round-robin, instead of one sleep per message per publisher.

use std::ops::Range;
use std::time::Duration;

use tokio::time::Instant;

/// The schedule of a paced stream of events.
#[derive(Debug)]
pub(crate) struct Pacer {
    start: Instant,
    /// Events per second; `None`: all due at once.
    rate: Option<f64>,
    /// The next event not handed out yet.
    next: u64,
    /// Events in all; `None`: unlimited.
    limit: Option<u64>,
}

/// Most events handed out per wake-up, so one late wake-up does not turn into one huge
/// burst that starves the rest of the runtime.
const MAX_BATCH: u64 = 4096;

impl Pacer {
    /// Events at `rate` per second from `start`, `limit` of them at most.
    pub(crate) fn new(start: Instant, rate: Option<f64>, limit: Option<u64>) -> Self {
        Self {
            start,
            rate,
            next: 0,
            limit,
        }
    }

    /// When event `k` is due.
    pub(crate) fn due(&self, k: u64) -> Instant {
        match self.rate {
            // f64 seconds: sub-nanosecond precision for runs of days at millions per second.
            Some(r) => self.start + Duration::from_secs_f64(k as f64 / r),
            None => self.start,
        }
    }

    /// Events due by `now` in all (the next one not due yet).
    fn due_by(&self, now: Instant) -> u64 {
        let Some(r) = self.rate else {
            return u64::MAX;
        };
        if now < self.start {
            return 0;
        }
        let mut n = ((now - self.start).as_secs_f64() * r).floor() as u64 + 1;
        // Floating point at the boundary: never hand out an event before its instant.
        while n > 0 && self.due(n - 1) > now {
            n -= 1;
        }
        n
    }

    /// Whether every event has been handed out.
    pub(crate) fn done(&self) -> bool {
        self.limit.is_some_and(|l| self.next >= l)
    }

    /// Waits until the next event is due and returns the events due now (empty when done).
    pub(crate) async fn tick(&mut self) -> Range<u64> {
        if self.done() {
            return self.next..self.next;
        }
        tokio::time::sleep_until(self.due(self.next)).await;
        self.take(Instant::now())
    }

    /// The events due at `now` not handed out yet.
    pub(crate) fn take(&mut self, now: Instant) -> Range<u64> {
        let mut end = self.due_by(now).min(self.next.saturating_add(MAX_BATCH));
        if let Some(l) = self.limit {
            end = end.min(l);
        }
        let end = end.max(self.next);
        let r = self.next..end;
        self.next = end;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_due_at_absolute_instants() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Some(1000.0), None);
        assert_eq!(p.take(t0), 0..1);
        // A wake-up 10.5 ms late hands out what is due, and the schedule does not shift.
        assert_eq!(p.take(t0 + Duration::from_micros(10_500)), 1..11);
        assert_eq!(p.due(11), t0 + Duration::from_millis(11));
        // Over a simulated minute of irregular wake-ups, exactly rate × time.
        let mut total = 11;
        let mut t = Duration::from_micros(10_500);
        while t < Duration::from_secs(60) {
            t += Duration::from_micros(1_000 + (total % 7) * 300);
            total += p.take(t0 + t).count() as u64;
        }
        let expected = (t.as_secs_f64() * 1000.0).floor() as u64 + 1;
        assert_eq!(total, expected);
    }

    #[test]
    fn limit_stops_the_schedule() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Some(100.0), Some(5));
        assert_eq!(p.take(t0 + Duration::from_secs(10)), 0..5);
        assert!(p.done());
        let mut all = Pacer::new(t0, None, Some(3));
        assert_eq!(all.take(t0), 0..3);
    }
}
