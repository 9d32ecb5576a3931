//! The client session state machine.
//!
//! A [`Session`] owns everything MQTT requires a client to remember: packet ids in flight,
//! QoS 1/2 flows in both directions, the command queue, keepalive and CONNACK deadlines.
//! It performs no IO and reads no clock: the driver passes `now` in and moves bytes.
//!
//! Polling order: after every `handle_*` call or command, drain [`Session::poll_transmit`],
//! then [`Session::poll_event`], then read [`Session::poll_timeout`] and call
//! [`Session::handle_timeout`] when that instant is reached.

mod config;
mod error;
mod event;

use std::time::Instant;

use bytes::BytesMut;

pub use config::SessionConfig;
pub use error::{ApiMisuse, ProtocolError, RequestError};
pub use event::{DisconnectReason, Event, Initiator, Message, RequestId};

use crate::packet::{ProtocolLevel, QoS};
use crate::topic::TopicFilter;

/// A client session: see the [module docs](self).
///
/// Methods, in the order a driver uses them: (A) getters, (B) `handle_*` inputs,
/// (C) commands, (D) `poll_*` outputs.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
}

impl Session {
    /// A new, unconnected session.
    pub fn new(config: SessionConfig) -> Self {
        Self { config }
    }

    // (A) getters

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// True once CONNACK accepted the current connection, until it ends.
    pub fn is_connected(&self) -> bool {
        unimplemented!("session: filled in by the session work")
    }

    /// Changes the protocol level for the next `connect` (used for 3.1.1 → 3.1 fallback).
    pub fn set_level(&mut self, level: ProtocolLevel) {
        self.config.level = level;
    }

    // (B) inputs

    /// Starts a connection on a fresh transport: queues CONNECT and arms the CONNACK timer.
    pub fn connect(&mut self, now: Instant) -> Result<(), ApiMisuse> {
        let _ = now;
        unimplemented!("session: filled in by the session work")
    }

    /// Feeds bytes received from the transport.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
        let _ = (now, bytes);
        unimplemented!("session: filled in by the session work")
    }

    /// Reports that `now` reached [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        unimplemented!("session: filled in by the session work")
    }

    /// Reports that the transport closed or failed.
    pub fn handle_closed(&mut self, now: Instant) {
        let _ = now;
        unimplemented!("session: filled in by the session work")
    }

    // (C) commands

    /// Queues a publish; its completion is [`Event::Published`] with the returned id.
    pub fn publish(&mut self, now: Instant, msg: Message) -> Result<RequestId, ApiMisuse> {
        let _ = (now, msg);
        unimplemented!("session: filled in by the session work")
    }

    /// Queues one SUBSCRIBE carrying every `(filter, qos)` pair.
    pub fn subscribe(
        &mut self,
        now: Instant,
        filters: Vec<(TopicFilter, QoS)>,
    ) -> Result<RequestId, ApiMisuse> {
        let _ = (now, filters);
        unimplemented!("session: filled in by the session work")
    }

    /// Queues one UNSUBSCRIBE carrying every filter.
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        filters: Vec<TopicFilter>,
    ) -> Result<RequestId, ApiMisuse> {
        let _ = (now, filters);
        unimplemented!("session: filled in by the session work")
    }

    /// Queues DISCONNECT behind everything already queued for sending.
    pub fn disconnect(&mut self, now: Instant) -> Result<(), ApiMisuse> {
        let _ = now;
        unimplemented!("session: filled in by the session work")
    }

    // (D) outputs

    /// Appends every packet ready to send to `out`; returns the number of bytes appended.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> usize {
        let _ = out;
        unimplemented!("session: filled in by the session work")
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        unimplemented!("session: filled in by the session work")
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        unimplemented!("session: filled in by the session work")
    }
}
