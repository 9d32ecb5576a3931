//! Reconnection: which broker is next, how long to back off, and which phase follows the end
//! of a connection or of an attempt.

use std::time::Duration;

use tokio::time::Instant;

use super::{Driver, Ended, Phase};
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
