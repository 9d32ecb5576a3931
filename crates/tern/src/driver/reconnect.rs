//! Reconnection: which broker is next, how long to back off, and which phase follows the end
//! of a connection or of an attempt.

use std::time::Duration;

use tokio::time::Instant;

use super::{Driver, Ended, Phase, redirect};
use crate::broker::Broker;
use crate::client::Event;
use crate::error::ConnectionError;

/// Where the driver is in the broker list of the last `connect()`, and how it has fared.
#[derive(Default)]
pub(super) struct Reconnect {
    /// The brokers of the last `connect()` (never empty once one was accepted); a boxed
    /// slice, 8 bytes smaller than a `Vec` in every driver's future.
    brokers: Box<[Broker]>,
    /// Index of the broker to try next.
    next: usize,
    /// Failed automatic attempts in a row.
    attempt: u32,
    /// A connection succeeded since the last `connect()` (the seed: no automatic
    /// reconnection if the very first attempt fails).
    connected_once: bool,
}

impl Reconnect {
    /// A `connect()` command: its brokers, from the first, with no history.
    pub(super) fn start(&mut self, brokers: Vec<Broker>) {
        *self = Self {
            brokers: brokers.into_boxed_slice(),
            ..Self::default()
        };
    }

    /// The broker to try now (`start` was called with at least one).
    pub(super) fn broker(&self) -> &Broker {
        &self.brokers[self.next % self.brokers.len()]
    }

    /// CONNACK accepted; returns whether this is a reconnection.
    pub(super) fn on_connected(&mut self) -> bool {
        self.attempt = 0;
        std::mem::replace(&mut self.connected_once, true)
    }

    fn advance(&mut self) {
        self.next = (self.next + 1) % self.brokers.len();
    }
}

impl Driver {
    /// The phase that follows `ended`, after telling the application (events, the replies of
    /// `connect()` and `close()`).
    pub(super) fn after(&mut self, ended: Ended) -> Phase {
        // Online until now: nothing asked to close while the connection lasted.
        let wanted = matches!(self.phase, Phase::Online { .. });
        let idle = if matches!(self.phase, Phase::Stopped) {
            Phase::Stopped
        } else {
            Phase::Idle
        };
        match ended {
            Ended::Shutdown => Phase::Stopped,
            // MQTT 5 redirection, when followed: at once, to the referenced broker.
            Ended::ConnectFailed(error)
                if wanted && self.redirect(redirect::from_connect_error(&error)) =>
            {
                self.emit(Event::ConnectFailed {
                    error,
                    will_retry: true,
                });
                Phase::Online { open_store: false }
            }
            Ended::Lost(error)
                if wanted && self.redirect(redirect::from_connection_error(&error)) =>
            {
                self.emit(Event::Disconnected {
                    error,
                    will_reconnect: true,
                });
                Phase::Online { open_store: false }
            }
            // Retry the same broker at once, at the fallback protocol level.
            Ended::Fallback(_) if wanted => Phase::Online { open_store: false },
            Ended::ConnectFailed(error) | Ended::Fallback(error) => {
                self.reconnect.advance();
                let r = &self.reconnect;
                // A connect() command tries each broker of its list once.
                let list_left = !r.connected_once && r.next != 0;
                let retry = wanted && (list_left || (r.connected_once && self.may_retry()));
                if !retry && let Some(reply) = self.connect_reply.take() {
                    let _ = reply.send(Err(error.clone()));
                }
                self.emit(Event::ConnectFailed {
                    error,
                    will_retry: retry,
                });
                if !retry {
                    return idle;
                }
                let until = if list_left {
                    Instant::now()
                } else {
                    self.reconnect.attempt += 1;
                    Instant::now() + self.backoff()
                };
                Phase::Backoff { until }
            }
            Ended::Lost(error) => {
                let local = matches!(error, ConnectionError::Local);
                let retry = !local && wanted && self.may_retry();
                self.emit(Event::Disconnected {
                    error,
                    will_reconnect: retry,
                });
                self.finish_close_replies();
                if !retry {
                    return idle;
                }
                self.reconnect.attempt = 1;
                self.reconnect.advance();
                Phase::Backoff {
                    until: Instant::now() + self.backoff(),
                }
            }
        }
    }

    /// Follows a Server Reference, if the options allow another hop and it parses.
    fn redirect(&mut self, reference: Option<&str>) -> bool {
        let max = self.options.v5.max_redirects;
        let Some(reference) = reference.filter(|_| max > 0) else {
            return false;
        };
        if self.v5.as_deref().is_some_and(|v| v.hops >= max) {
            tracing::debug!(target: super::TARGET, reference, "redirection not followed: hop limit reached");
            return false;
        }
        let Some(next) = redirect::resolve(self.reconnect.broker(), reference) else {
            tracing::debug!(target: super::TARGET, reference, "unusable Server Reference");
            return false;
        };
        tracing::debug!(target: super::TARGET, reference, "following the Server Reference");
        let v5 = self.v5.get_or_insert_default();
        v5.hops += 1;
        v5.redirect = Some(next);
        true
    }

    fn may_retry(&self) -> bool {
        match &self.options.reconnect {
            Some(policy) => policy
                .max_attempts
                .is_none_or(|max| self.reconnect.attempt < max),
            None => false,
        }
    }

    fn backoff(&self) -> Duration {
        self.options
            .reconnect
            .as_ref()
            .map_or(Duration::ZERO, |p| p.delay(self.reconnect.attempt.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;
    use tokio::time::Instant;

    use super::super::{Driver, Ended, Phase};
    use crate::chan;
    use crate::client::Event;
    use crate::error::{ConnectError, ConnectionError};
    use crate::{Broker, ConnectOptions, ReconnectPolicy};

    fn driver(options: ConnectOptions, brokers: usize) -> (Driver, chan::Receiver<Event>) {
        let (events, rx) = chan::channel(16);
        let mut d = Driver::new(Box::new(options), events);
        d.reconnect.start(
            (0..brokers)
                .map(|i| Broker::tcp("127.0.0.1", 1 + i as u16))
                .collect(),
        );
        d.phase = Phase::Online { open_store: false };
        (d, rx)
    }

    fn retrying() -> ConnectOptions {
        ConnectOptions::new("r").reconnect(ReconnectPolicy {
            initial_delay: Duration::from_secs(60),
            ..ReconnectPolicy::default()
        })
    }

    fn refused() -> ConnectError {
        ConnectError::ClosedBeforeConnAck
    }

    #[test]
    fn a_failed_first_attempt_goes_idle_and_answers_connect() {
        let (mut d, mut rx) = driver(retrying(), 1);
        let (tx, mut reply) = oneshot::channel();
        d.connect_reply = Some(tx);
        assert_eq!(d.after(Ended::ConnectFailed(refused())), Phase::Idle);
        assert!(matches!(reply.try_recv(), Ok(Err(_))), "connect() answered");
        assert!(matches!(
            rx.try_recv(),
            Ok(Event::ConnectFailed {
                will_retry: false,
                ..
            })
        ));
    }

    #[test]
    fn a_connect_list_tries_the_next_broker_at_once() {
        let (mut d, _rx) = driver(ConnectOptions::new("l"), 3);
        let before = Instant::now();
        let Phase::Backoff { until } = d.after(Ended::ConnectFailed(refused())) else {
            panic!("the list has brokers left: Backoff (ending at once) expected");
        };
        assert!(until <= Instant::now() && until >= before, "no delay");
        assert_eq!(d.reconnect.broker().port, 2);
        d.phase = Phase::Online { open_store: false };
        assert!(matches!(
            d.after(Ended::ConnectFailed(refused())),
            Phase::Backoff { .. }
        ));
        d.phase = Phase::Online { open_store: false };
        assert_eq!(
            d.after(Ended::ConnectFailed(refused())),
            Phase::Idle,
            "each broker of the list once"
        );
    }

    #[test]
    fn a_lost_connection_backs_off_with_the_policy_and_a_closed_one_does_not() {
        let (mut d, mut rx) = driver(retrying(), 1);
        d.reconnect.on_connected();
        let before = Instant::now();
        let Phase::Backoff { until } = d.after(Ended::Lost(ConnectionError::Closed)) else {
            panic!("a policy with attempts left retries");
        };
        // The policy's first delay: random up to `initial_delay` (capped by `max_delay`, 30 s),
        // at least 10 ms.
        let delay = until.duration_since(before);
        assert!(
            delay >= Duration::from_millis(10) && delay <= Duration::from_secs(31),
            "the policy's delay: {delay:?}"
        );
        assert!(matches!(
            rx.try_recv(),
            Ok(Event::Disconnected {
                will_reconnect: true,
                ..
            })
        ));
        // close() during the connection: the phase says so, whatever the policy.
        d.phase = Phase::Idle;
        let (tx, mut closed) = oneshot::channel();
        d.add_close_reply(Some(tx));
        assert_eq!(d.after(Ended::Lost(ConnectionError::Local)), Phase::Idle);
        assert!(matches!(closed.try_recv(), Ok(Ok(()))), "close() answered");
    }

    #[test]
    fn without_handles_the_driver_stops_whatever_ended() {
        let (mut d, _rx) = driver(retrying(), 1);
        d.reconnect.on_connected();
        d.phase = Phase::Stopped;
        assert_eq!(
            d.after(Ended::Lost(ConnectionError::Closed)),
            Phase::Stopped
        );
        assert_eq!(d.after(Ended::Shutdown), Phase::Stopped);
    }

    #[test]
    fn the_protocol_fallback_retries_the_same_broker_unless_closed() {
        let (mut d, mut rx) = driver(ConnectOptions::new("f"), 2);
        let e = ConnectError::ClosedBeforeConnAck;
        assert_eq!(
            d.after(Ended::Fallback(e.clone())),
            Phase::Online { open_store: false }
        );
        assert_eq!(d.reconnect.broker().port, 1, "the same broker");
        assert!(rx.try_recv().is_err(), "no event for the fallback");
        d.phase = Phase::Idle;
        assert_eq!(d.after(Ended::Fallback(e)), Phase::Idle);
        assert!(matches!(rx.try_recv(), Ok(Event::ConnectFailed { .. })));
    }
}
