//! The client session state machine.
//!
//! A [`Session`] owns everything MQTT requires a client to remember: packet ids in flight,
//! QoS 1/2 flows in both directions, the command queue, keepalive and CONNACK deadlines.
//! It performs no IO and reads no clock: the driver passes `now` in and moves bytes.
//!
//! Polling order: after every `handle_*` call or command, drain [`Session::poll_transmit`],
//! then [`Session::poll_event`], then read [`Session::poll_timeout`] and call
//! [`Session::handle_timeout`] when that instant is reached. With
//! [`SessionConfig::persistence`] on, drain [`Session::poll_persist`] first and make its ops
//! durable: until it is empty, nothing is transmitted and no event is handed out.
//!
//! Acknowledging the broker's messages: a QoS 1/2 [`Event::Message`] carries an
//! [`AckToken`]; its PUBACK / PUBREC leaves only once the driver passes the token to
//! [`Session::ack`] (when the application has the message), so a message the application
//! never got is never acknowledged and the broker delivers it again. Acknowledgements leave
//! in the order the PUBLISHes arrived [MQTT-4.6.0-2], [MQTT-4.6.0-3]: one acked early waits
//! for the ones before it.

mod acks;
mod config;
mod error;
mod event;
mod inflight;
mod packet_id;
mod persist;
mod queue;
mod state;
mod timer;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::BytesMut;

pub use config::SessionConfig;
pub use error::{ApiMisuse, ProtocolError, RequestError};
pub use event::{AckToken, DisconnectReason, Event, Initiator, Message, RequestId};
pub use persist::{OutgoingFlow, PersistOp, Snapshot};

use crate::packet::{
    ConnAck, Connect, ConnectReturnCode, Decoder, EncodeError, MAX_REMAINING_LENGTH, Packet,
    PacketId, PacketType, ProtocolLevel, Publish, QoS, QosPid, SubAck, Subscribe, Unsubscribe,
};
use crate::topic::TopicFilter;

use acks::{Acks, PendingAck};
use inflight::{Inflight, Slot};
use packet_id::{ID_SPACE, IdSet, PacketIdAllocator};
use queue::{CommandQueue, Control, Queued, QueuedControl, QueuedPublish};
use state::State;
use timer::{Timer, TimerTable};

/// Largest keepalive CONNECT can carry, in seconds.
const MAX_KEEP_ALIVE_SECS: u64 = u16::MAX as u64;

/// Entries a drained queue (outbox, events, command queue) keeps room for: a steady stream
/// refills it between two driver turns without reallocating, while the larger buffer of an
/// unusual burst is given back.
const KEPT_CAPACITY: usize = 64;

/// Gives back `queue`'s buffer when it is empty and either the connection looks idle (the
/// caller knows why) or the buffer is larger than [`KEPT_CAPACITY`]. An idle session then
/// holds no queue memory at all.
fn release_if_drained<T>(queue: &mut VecDeque<T>, idle: bool) {
    if queue.is_empty() && queue.capacity() > 0 && (idle || queue.capacity() > KEPT_CAPACITY) {
        *queue = VecDeque::new();
    }
}

/// A packet waiting in the outbox for [`Session::poll_transmit`].
///
/// Small and allocation-free: packets of ours awaiting acknowledgement are referred to by
/// packet id and encoded straight from the in-flight table.
#[derive(Debug)]
enum Outgoing {
    /// The CONNECT of the current connection (validated by `connect`, encoded from the
    /// configuration when handed out, so nothing is kept for it meanwhile).
    Connect,
    /// A QoS 0 publish; [`Event::Published`] when it is handed out.
    Publish0 { req: RequestId, publish: Publish },
    /// The packet held by the in-flight slot with this id (PUBLISH, PUBREL, SUBSCRIBE,
    /// UNSUBSCRIBE). Skipped if the slot is gone or already sent on this connection.
    Slot(PacketId),
    /// QoS 1 receiver acknowledgement.
    PubAck(PacketId),
    /// QoS 2 receiver, step 1. `first`: the first PUBREC for this id since its PUBLISH
    /// arrived on this connection (not an answer to a re-send), which the broker answers with
    /// PUBREL (see [`Session::owed_bytes`]).
    PubRec { id: PacketId, first: bool },
    /// QoS 2 receiver, step 2.
    PubComp(PacketId),
    /// Keepalive probe.
    PingReq,
    /// The last packet of a connection [MQTT-3.14.4-1].
    Disconnect,
}

/// A client session: see the [module docs](self).
///
/// Methods, in the order a driver uses them: (A) getters, (B) `handle_*` inputs,
/// (C) commands, (D) `poll_*` outputs.
///
/// One `Session` serves many connections in turn: `connect` → ... → `Event::Disconnected` /
/// `handle_closed` → `connect` again. Commands leave in the order they were issued, while
/// connecting, offline and behind the in-flight window alike. With clean session off it
/// keeps, across connections, every packet of ours sent and not yet acknowledged (re-sent
/// after the next CONNACK, PUBLISH with DUP=1, in original order [MQTT-4.4.0-1],
/// [MQTT-4.6.0-1]) and the broker's QoS 2 ids awaiting PUBREL; commands never sent go back
/// to the queue in their place. Commands issued while no connection is up are queued and
/// sent after CONNACK.
///
/// Handling of acknowledgements the broker should not send, per [MQTT-4.8.0-1]:
/// - PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK for an id with nothing of that kind in flight
///   (unknown id, wrong kind, or not yet sent on this connection) is a protocol violation;
/// - a second PUBREC for a QoS 2 publish already at the PUBREL stage is answered with PUBREL
///   again (the broker may repeat PUBREC; sending PUBREL twice is harmless);
/// - PUBREL for an unknown id is answered with PUBCOMP (the broker may be completing a flow
///   whose PUBCOMP it never got);
/// - PINGRESP without an outstanding PINGREQ is ignored.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    /// The latest `now` passed in; `poll_transmit` has no `now` and uses it as send time.
    now: Option<Instant>,
    /// Splits the receive buffer into packets; rebuilt by `connect` (level may change).
    decoder: Decoder,
    /// Received bytes not yet forming a whole packet.
    inbuf: BytesMut,
    /// Packets ready to send on the current connection, in wire order. Acknowledgements go
    /// through here too, so they leave in the order their triggers arrived [MQTT-4.6.0-2..4].
    outbox: VecDeque<Outgoing>,
    /// Our packets awaiting acknowledgement; owns their packet ids.
    inflight: Inflight,
    ids: PacketIdAllocator,
    /// The broker's QoS 2 ids we sent PUBREC for and have not seen PUBREL for: a PUBLISH
    /// with one of these ids is a re-send, not delivered again [MQTT-4.3.3-2].
    incoming_qos2: IdSet,
    /// Acknowledgements owed and QoS 2 deliveries awaiting their ack (see [`Acks`]); `None`
    /// until the first QoS 1/2 message, and again once idle with nothing owed.
    acks: Option<Box<Acks>>,
    /// Commands not yet on the wire.
    queue: CommandQueue,
    events: VecDeque<Event>,
    timers: TimerTable,
    next_request: u64,
    /// Counter ordering in-flight slots by when their command left the queue.
    next_seq: u64,
    /// A PINGREQ is queued or sent and its PINGRESP has not arrived.
    ping_outstanding: bool,
    /// `poll_transmit` handed out something other than an acknowledgement of the broker's
    /// packets since [`take_sent_other`](Self::take_sent_other) was last called.
    sent_other: bool,
    /// PUBRECs handed out on this connection, each the first for its id, less PUBRELs
    /// received: at most the PUBRELs the broker owes (see [`Session::owed_bytes`]).
    pubrels_owed: u16,
    /// When the current connection last sent / received something (keepalive).
    last_sent: Option<Instant>,
    last_received: Option<Instant>,
    /// Ops for the session store not yet pulled by `poll_persist`; always `None` unless
    /// `config.persistence`, and `None` again once drained (boxed: most sessions never
    /// persist, and every session carries the field). While `Some`, `poll_transmit` and
    /// `poll_event` hand out nothing (the write-ahead rule).
    // Boxed on purpose: 8 bytes inline instead of 32, in every session's (and every client
    // task's) state, for a queue that is empty unless a store is in use.
    #[allow(clippy::box_collection)]
    persist: Option<Box<VecDeque<PersistOp>>>,
}

impl Session {
    /// A new, unconnected session.
    pub fn new(config: SessionConfig) -> Self {
        let decoder = Decoder::new(config.level, config.max_packet_size);
        Self {
            config,
            state: State::Idle,
            now: None,
            decoder,
            inbuf: BytesMut::new(),
            outbox: VecDeque::new(),
            inflight: Inflight::default(),
            ids: PacketIdAllocator::default(),
            incoming_qos2: IdSet::default(),
            acks: None,
            queue: CommandQueue::default(),
            events: VecDeque::new(),
            timers: TimerTable::default(),
            next_request: 0,
            next_seq: 0,
            ping_outstanding: false,
            pubrels_owed: 0,
            sent_other: false,
            last_sent: None,
            last_received: None,
            persist: None,
        }
    }

    // (A) getters

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// True once CONNACK accepted the current connection, until it ends (also while a
    /// requested DISCONNECT waits to be handed out).
    pub fn is_connected(&self) -> bool {
        self.state.is_connected()
    }

    /// Replaces the user name and password sent in the next CONNECT (used for credentials
    /// that come with a broker address).
    pub fn set_credentials(
        &mut self,
        username: Option<crate::MqttString>,
        password: Option<bytes::Bytes>,
    ) {
        self.config.username = username;
        self.config.password = password;
    }

    /// Changes the protocol level for the next `connect` (used for 3.1.1 → 3.1 fallback).
    pub fn set_level(&mut self, level: ProtocolLevel) {
        self.config.level = level;
    }

    /// Number of our packets awaiting acknowledgement (QoS 1/2 publishes, PUBRELs,
    /// SUBSCRIBEs, UNSUBSCRIBEs), i.e. packet ids in use.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// The fewest bytes still to arrive that the broker owes the current connection for
    /// packets already handed out by [`poll_transmit`](Self::poll_transmit): 4 for each
    /// answer awaited (PUBACK, PUBREC, PUBCOMP, UNSUBACK, and PUBREL for our PUBRECs; a
    /// SUBACK is longer), less what of them is already buffered as a partial packet. They
    /// arrive unless the connection ends, so a driver may sleep until that many bytes are
    /// readable (`SO_RCVLOWAT`) without missing a packet. 0 before CONNACK, after DISCONNECT,
    /// and while a PINGREQ awaits its 2-byte PINGRESP: the session's timers then depend on
    /// every byte.
    pub fn owed_bytes(&self) -> usize {
        if !self.state.is_sending() || self.ping_outstanding {
            return 0;
        }
        // While connected, every slot not yet handed out has an entry in the outbox, so
        // this never counts one of them (other entries only make it smaller).
        let awaited =
            self.inflight.len().saturating_sub(self.outbox.len()) + usize::from(self.pubrels_owed);
        (4 * awaited).saturating_sub(self.inbuf.len())
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) handed out anything but acknowledgements
    /// of the broker's packets (PUBACK, PUBREC, PUBCOMP) since the last call; clears the flag.
    /// A driver tells a one-way stream, which it only acknowledges, from an exchange.
    pub fn take_sent_other(&mut self) -> bool {
        std::mem::take(&mut self.sent_other)
    }

    /// Number of commands waiting in the queue (not yet given a packet id or sent).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    // (B) inputs

    /// Seeds a new session with what a session store recovered after a restart: our QoS 1/2
    /// publishes in flight (re-sent after the next CONNACK in their original order, PUBLISH
    /// with DUP set, or PUBREL for QoS 2 flows past PUBREC [MQTT-4.4.0-1], [MQTT-4.6.0-1])
    /// and the broker's QoS 2 ids awaiting PUBREL (a re-sent PUBLISH with one of them is
    /// acknowledged, not delivered [MQTT-4.3.3-2]).
    ///
    /// Returns the request ids given to the restored publishes, in their original order:
    /// their completion is reported as for any publish. Emits no [`PersistOp`] (the store
    /// already holds all this). With `clean_session` the next `connect` discards it all, as
    /// it would any session [MQTT-3.1.2-6].
    ///
    /// Fails with [`ApiMisuse::RestoreAfterStart`] once the session has connected or holds
    /// anything in flight.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<Vec<RequestId>, ApiMisuse> {
        if self.state != State::Idle || self.inflight.len() > 0 {
            return Err(ApiMisuse::RestoreAfterStart);
        }
        let mut reqs = Vec::new();
        let mut last = None;
        for flow in snapshot.outgoing() {
            let (seq, id, packet) = match flow {
                OutgoingFlow::Publish { seq, publish } => {
                    let Some(id) = publish.packet_id() else {
                        // A snapshot never holds QoS 0 (`Snapshot::apply` drops it).
                        continue;
                    };
                    let mut publish = publish.clone();
                    // Sent or not before the crash, nobody knows: re-delivery is the safe
                    // reading [MQTT-3.3.1-1].
                    publish.dup = true;
                    (*seq, id, Packet::Publish(publish))
                }
                OutgoingFlow::PubRel { seq, id } => (*seq, *id, Packet::PubRel(*id)),
            };
            let req = self.next_request_id();
            self.inflight.insert(Slot {
                id,
                req,
                seq,
                sent: false,
                ever_sent: true,
                packet,
            });
            self.next_seq = self.next_seq.max(seq.saturating_add(1));
            reqs.push(req);
            last = Some(id);
        }
        if let Some(id) = last {
            self.ids.resume_after(id);
        }
        for id in snapshot.incoming() {
            self.incoming_qos2.insert(id);
        }
        Ok(reqs)
    }

    /// Starts a connection on a fresh transport: queues CONNECT ahead of everything and arms
    /// the CONNACK timer. Nothing else is sent before CONNACK accepts the connection
    /// [MQTT-3.1.0-1].
    ///
    /// Fails with [`ApiMisuse::AlreadyConnected`] while a connection is open, and with
    /// [`ApiMisuse::Encode`] when the configuration cannot make a valid CONNECT (e.g. a 3.1
    /// client id longer than 23 characters).
    pub fn connect(&mut self, now: Instant) -> Result<(), ApiMisuse> {
        self.now = Some(now);
        if self.state.is_open() {
            return Err(ApiMisuse::AlreadyConnected);
        }
        // Validated now, so a configuration that cannot make a valid CONNECT fails here;
        // encoded again (once) when handed out.
        self.encode_connect(&mut BytesMut::new())?;

        if self.config.clean_session {
            // Normally already empty: the previous connection's end discarded it.
            self.discard_session(RequestError::SessionLost);
        }
        self.decoder = Decoder::new(self.config.level, self.config.max_packet_size);
        self.inbuf.clear();
        self.outbox.clear();
        self.outbox.push_back(Outgoing::Connect);
        self.inflight.mark_unsent();
        self.timers.stop_all();
        if let Some(at) = now.checked_add(self.config.connack_timeout) {
            self.timers.set(Timer::ConnAck, at);
        }
        self.ping_outstanding = false;
        self.last_sent = Some(now);
        self.last_received = Some(now);
        self.state = State::AwaitConnAck;
        Ok(())
    }

    /// Feeds bytes received from the transport.
    ///
    /// A protocol violation by the broker (undecodable bytes, a packet a client never
    /// receives, a second CONNACK, an acknowledgement for nothing in flight, a SUBACK with
    /// the wrong number of codes, a packet above `max_packet_size`) returns the error and
    /// emits [`Event::Disconnected`] with [`DisconnectReason::Protocol`]; the driver must
    /// close the transport [MQTT-4.8.0-1]. A first packet other than CONNACK returns
    /// [`ProtocolError::UnexpectedPacket`] and emits [`DisconnectReason::NotConnAck`]
    /// instead. Input while no connection is open returns [`ProtocolError::NotConnected`]
    /// and changes nothing.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.now = Some(now);
        if !self.state.is_open() {
            return Err(ProtocolError::NotConnected);
        }
        self.inbuf.extend_from_slice(bytes);
        // Bounded: each iteration takes a whole packet (at least 2 bytes) off `inbuf`, or
        // leaves the loop.
        while self.state.is_open() {
            let packet = match self.decoder.decode(&mut self.inbuf) {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(e) => return self.violation(ProtocolError::Decode(e)),
            };
            self.last_received = Some(now);
            if let Err(e) = self.handle_packet(packet) {
                if self.state.is_open() {
                    return self.violation(e);
                }
                // The handler already ended the connection with a more precise reason.
                return Err(e);
            }
        }
        if self.inbuf.is_empty() {
            // Nothing partial is kept: give the buffer back (what was decoded from it lives
            // on in the packets), so an idle connection holds none.
            self.inbuf = BytesMut::new();
        }
        self.arm_keepalive();
        self.pump();
        Ok(())
    }

    /// Reports that `now` reached [`poll_timeout`](Self::poll_timeout): CONNACK timeout,
    /// PINGRESP timeout (both end the connection), or keepalive (queues PINGREQ).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        if self.state == State::AwaitConnAck && self.timers.is_expired(Timer::ConnAck, now) {
            self.end_connection(DisconnectReason::ConnAckTimeout(
                self.config.connack_timeout,
            ));
            return;
        }
        if self.state.is_open() && self.timers.is_expired(Timer::PingResp, now) {
            let timeout = self.config.effective_ping_timeout();
            self.end_connection(DisconnectReason::PingTimeout(timeout));
            return;
        }
        if self.timers.is_expired(Timer::KeepAlive, now) {
            self.timers.stop(Timer::KeepAlive);
            // Nothing sent or nothing received for the keepalive interval: give back what
            // the last burst of traffic left allocated.
            self.release_idle();
            if self.state.is_sending() && !self.ping_outstanding {
                // [MQTT-3.1.2-23] nothing sent (or nothing received) for keep_alive: probe.
                self.outbox.push_back(Outgoing::PingReq);
                self.ping_outstanding = true;
                if let Some(at) = now.checked_add(self.config.effective_ping_timeout()) {
                    self.timers.set(Timer::PingResp, at);
                }
            }
        }
        // Never leave an expired timer armed: the driver would spin on it.
        for timer in Timer::ALL {
            if self.timers.is_expired(timer, now) {
                self.timers.stop(timer);
            }
        }
    }

    /// Reports that the transport closed or failed. Emits
    /// [`DisconnectReason::TransportClosed`] if a connection was open (and no
    /// `Event::Disconnected` was emitted for it yet), then applies the clean-session rules:
    /// with clean session, every publish sent but not completed fails with
    /// [`RequestError::SessionLost`] ([`RequestError::Closed`] after `disconnect`), in send
    /// order, after the `Disconnected` event; commands never handed out stay queued, and so
    /// do unacknowledged SUBSCRIBEs and UNSUBSCRIBEs unless the close was local.
    pub fn handle_closed(&mut self, now: Instant) {
        self.now = Some(now);
        if self.state.is_open() {
            self.end_connection(DisconnectReason::TransportClosed);
        }
    }

    // (C) commands

    /// Queues a publish; its completion is [`Event::Published`] with the returned id.
    ///
    /// QoS 1/2 publishes beyond [`SessionConfig::max_inflight`] unacknowledged ones wait in
    /// order; so do publishes issued while not connected. Fails with
    /// [`ApiMisuse::QueueFull`] when the publish would wait and
    /// [`SessionConfig::max_queued`] commands already do.
    pub fn publish(&mut self, now: Instant, msg: Message) -> Result<RequestId, ApiMisuse> {
        self.now = Some(now);
        let id_len = if msg.qos == QoS::AtMostOnce { 0 } else { 2 };
        let len = (2 + msg.topic.as_str().len() + id_len).saturating_add(msg.payload.len());
        if len > MAX_REMAINING_LENGTH {
            return Err(EncodeError::TooLarge { len }.into());
        }
        let goes_now = self.state.is_sending()
            && self.queue.is_empty()
            && (msg.qos == QoS::AtMostOnce || self.window_open());
        if !goes_now && self.queue.len() >= self.config.max_queued {
            return Err(ApiMisuse::QueueFull {
                max: self.config.max_queued,
            });
        }
        let bytes = self
            .queue
            .publish_bytes()
            .saturating_add(queue::weight(&msg));
        if !goes_now && bytes > self.config.max_queued_bytes {
            return Err(ApiMisuse::QueueBytesFull {
                max: self.config.max_queued_bytes,
            });
        }
        let req = self.next_request_id();
        self.queue.push(Queued::Publish(QueuedPublish { req, msg }));
        self.pump();
        Ok(req)
    }

    /// Queues one SUBSCRIBE carrying every `(filter, qos)` pair; its completion is
    /// [`Event::Subscribed`]. Leaves in call order: behind every command issued before it,
    /// including publishes waiting for the in-flight window.
    pub fn subscribe(
        &mut self,
        now: Instant,
        filters: Vec<(TopicFilter, QoS)>,
    ) -> Result<RequestId, ApiMisuse> {
        self.now = Some(now);
        if filters.is_empty() {
            return Err(ApiMisuse::NoFilters);
        }
        let len = filters.iter().fold(2usize, |len, (f, _)| {
            len.saturating_add(2 + f.as_str().len() + 1)
        });
        self.queue_control(len, Control::Subscribe(filters))
    }

    /// Queues one UNSUBSCRIBE carrying every filter; its completion is
    /// [`Event::Unsubscribed`]. Leaves in call order, as [`subscribe`](Self::subscribe).
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        filters: Vec<TopicFilter>,
    ) -> Result<RequestId, ApiMisuse> {
        self.now = Some(now);
        if filters.is_empty() {
            return Err(ApiMisuse::NoFilters);
        }
        let len = filters
            .iter()
            .fold(2usize, |len, f| len.saturating_add(2 + f.as_str().len()));
        self.queue_control(len, Control::Unsubscribe(filters))
    }

    /// Queues DISCONNECT behind everything already queued for sending. Once
    /// [`poll_transmit`](Self::poll_transmit) hands it out, the session emits
    /// [`DisconnectReason::Local`] and sends nothing more [MQTT-3.14.4-1]; commands issued
    /// meanwhile wait for the next connection.
    ///
    /// Before CONNACK, no DISCONNECT can be sent [MQTT-3.1.0-1]: the connection ends at
    /// once with [`DisconnectReason::Local`]. Calling it again while DISCONNECT waits does
    /// nothing; with no connection open it fails with [`ApiMisuse::NotConnected`].
    pub fn disconnect(&mut self, now: Instant) -> Result<(), ApiMisuse> {
        self.now = Some(now);
        match self.state {
            State::Idle | State::Closed => Err(ApiMisuse::NotConnected),
            State::AwaitConnAck => {
                self.end_connection(DisconnectReason::Local);
                Ok(())
            }
            State::Connected => {
                self.outbox.push_back(Outgoing::Disconnect);
                self.state = State::Disconnecting;
                self.timers.stop(Timer::KeepAlive);
                Ok(())
            }
            State::Disconnecting => Ok(()),
        }
    }

    /// Acknowledges a delivered QoS 1/2 message (its [`Event::Message`] token): the
    /// application has it. Its PUBACK / PUBREC leaves once every message that arrived before
    /// it on this connection is acknowledged too [MQTT-4.6.0-2], [MQTT-4.6.0-3]; for QoS 2,
    /// its id is held (and, with persistence, recorded) until PUBREL from now on.
    ///
    /// Acking twice does nothing. A QoS 1 token from an earlier connection does nothing (the
    /// broker sends the message again, with a new token). A QoS 2 token stays good across
    /// connections while the broker keeps the session: the re-sent PUBLISH, which is not
    /// delivered again, is answered with PUBREC once the token is acked.
    pub fn ack(&mut self, token: AckToken) {
        let Some(acks) = self.acks.as_deref_mut() else {
            return;
        };
        if token.qos2 && acks.delivered_qos2.get(&token.id) == Some(&token.delivery) {
            acks.delivered_qos2.remove(&token.id);
            // [MQTT-4.3.3-2] from now on a PUBLISH with this id is a re-send, until PUBREL.
            self.incoming_qos2.insert(token.id);
            self.persist(|| PersistOp::Received(token.id));
        }
        if self
            .acks
            .as_deref_mut()
            .is_some_and(|a| a.mark(token.delivery))
        {
            self.flush_acks();
        }
    }

    // (D) outputs

    /// Appends every packet ready to send to `out` (many packets per call, so the driver
    /// needs few writes); returns the number of bytes appended. QoS 0 publishes complete
    /// here ([`Event::Published`]).
    ///
    /// With persistence on, hands out nothing while [`poll_persist`](Self::poll_persist)
    /// has ops (they protect what would be sent).
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> usize {
        self.poll_transmit_max(out, usize::MAX)
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but stops once `max` bytes were appended
    /// (the packet that crosses the limit is still appended whole; `max = 0` appends
    /// nothing). What is left goes out at the next call, in order. A driver uses it to keep
    /// its send buffer small while a large backlog (e.g. 1,000 queued 16 KiB publishes)
    /// drains.
    pub fn poll_transmit_max(&mut self, out: &mut BytesMut, max: usize) -> usize {
        let start = out.len();
        if self.persist.is_some() {
            return 0;
        }
        // Handed out a packet that only a quiet connection sends (CONNECT, PINGREQ,
        // DISCONNECT): nothing streams, so a drained outbox keeps no buffer.
        let mut idle = false;
        // Bounded: each iteration removes one entry; entries are only added by `pump`
        // (queued commands, finite) after an encoding failure.
        while out.len() - start < max
            && let Some(next) = self.outbox.pop_front()
        {
            if !matches!(
                next,
                Outgoing::PubAck(_) | Outgoing::PubRec { .. } | Outgoing::PubComp(_)
            ) {
                self.sent_other = true;
            }
            match next {
                Outgoing::Connect => {
                    idle = true;
                    // `connect` validated it: encoding cannot fail now.
                    let result = self.encode_connect(out);
                    debug_assert!(result.is_ok(), "CONNECT failed to encode: {result:?}");
                }
                Outgoing::Publish0 { req, publish } => match Packet::Publish(publish).encode(out) {
                    Ok(()) => self.events.push_back(Event::Published(req)),
                    Err(error) => self.events.push_back(Event::Failed {
                        id: req,
                        error: RequestError::Encode(error),
                    }),
                },
                Outgoing::Slot(id) => {
                    if !self.transmit_slot(id, out) && self.persist.is_some() {
                        // An encoding failure freed the slot and let queued publishes into
                        // flight: their records must be durable before they leave.
                        break;
                    }
                }
                Outgoing::PubAck(id) => encode_fixed(&Packet::PubAck(id), out),
                Outgoing::PubRec { id, first } => {
                    encode_fixed(&Packet::PubRec(id), out);
                    if first {
                        self.pubrels_owed = self.pubrels_owed.saturating_add(1);
                    }
                }
                Outgoing::PubComp(id) => encode_fixed(&Packet::PubComp(id), out),
                Outgoing::PingReq => {
                    idle = true;
                    encode_fixed(&Packet::PingReq, out);
                }
                Outgoing::Disconnect => {
                    idle = true;
                    encode_fixed(&Packet::Disconnect, out);
                    // [MQTT-3.14.4-1] nothing after DISCONNECT.
                    self.end_connection(DisconnectReason::Local);
                    break;
                }
            }
        }
        release_if_drained(&mut self.outbox, idle);
        let written = out.len() - start;
        if written > 0 {
            self.last_sent = self.now;
            self.arm_keepalive();
        }
        written
    }

    /// The next event, if any; none while [`poll_persist`](Self::poll_persist) has ops (a
    /// message must not reach the application before its QoS 2 id is durably held).
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.persist.is_some() {
            return None;
        }
        let event = self.events.pop_front();
        // A connection's start and end are followed by quiet more often than not.
        let idle = matches!(
            event,
            Some(Event::Connected { .. } | Event::Disconnected(_))
        );
        release_if_drained(&mut self.events, idle);
        event
    }

    /// The next op for the session store, in the order the session made them; always
    /// `None` unless [`SessionConfig::persistence`]. Drain it after every input or command
    /// and make the ops durable (one batch, one fsync) before polling transmit and events.
    pub fn poll_persist(&mut self) -> Option<PersistOp> {
        let ops = self.persist.as_mut()?;
        let op = ops.pop_front();
        if ops.is_empty() {
            // Ops come in batches, each followed by an fsync: nothing to keep room for.
            self.persist = None;
        }
        op
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    // Internals: incoming packets.

    /// Handles one decoded packet. An `Err` is a violation the caller reports, unless the
    /// handler already ended the connection itself (NotConnAck).
    fn handle_packet(&mut self, packet: Packet) -> Result<(), ProtocolError> {
        if self.state.is_awaiting_connack() {
            return match packet {
                Packet::ConnAck(ack) => {
                    self.on_connack(ack);
                    Ok(())
                }
                other => {
                    // [MQTT-3.2.0-1] the broker's first packet must be CONNACK.
                    let packet_type = other.packet_type();
                    self.end_connection(DisconnectReason::NotConnAck(packet_type));
                    Err(ProtocolError::UnexpectedPacket(packet_type))
                }
            };
        }
        match packet {
            Packet::ConnAck(_) => Err(ProtocolError::DuplicateConnAck),
            Packet::Publish(publish) => {
                self.on_publish(publish);
                Ok(())
            }
            Packet::PubAck(id) => self.on_puback(id),
            Packet::PubRec(id) => self.on_pubrec(id),
            Packet::PubRel(id) => {
                // [MQTT-4.3.3-2] PUBCOMP, known id or not; the id may be reused afterwards.
                if self.incoming_qos2.remove(id) {
                    self.persist(|| PersistOp::Released(id));
                    // Maybe one counted on an earlier connection: then this undercounts,
                    // which is safe.
                    self.pubrels_owed = self.pubrels_owed.saturating_sub(1);
                }
                self.outbox.push_back(Outgoing::PubComp(id));
                Ok(())
            }
            Packet::PubComp(id) => self.on_pubcomp(id),
            Packet::SubAck(ack) => self.on_suback(ack),
            Packet::UnsubAck(id) => self.on_unsuback(id),
            Packet::PingResp => {
                if self.ping_outstanding {
                    self.ping_outstanding = false;
                    self.timers.stop(Timer::PingResp);
                }
                Ok(())
            }
            // The MQTT 5 forms never come out of a 3.1 / 3.1.1 decoder.
            other @ (Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq
            | Packet::Disconnect
            | Packet::ConnAckV5(_)
            | Packet::PublishV5(_)
            | Packet::PubAckV5(_)
            | Packet::PubRecV5(_)
            | Packet::PubRelV5(_)
            | Packet::PubCompV5(_)
            | Packet::SubscribeV5(_)
            | Packet::SubAckV5(_)
            | Packet::UnsubscribeV5(_)
            | Packet::UnsubAckV5(_)
            | Packet::DisconnectV5(_)
            | Packet::Auth(_)) => Err(ProtocolError::UnexpectedPacket(other.packet_type())),
        }
    }

    fn on_connack(&mut self, ack: ConnAck) {
        self.timers.stop(Timer::ConnAck);
        if ack.code != ConnectReturnCode::Accepted {
            self.end_connection(DisconnectReason::Refused(ack.code));
            return;
        }
        self.state = State::Connected;
        self.events.push_back(Event::Connected {
            session_present: ack.session_present,
        });
        if !ack.session_present && self.config.level == ProtocolLevel::V3_1_1 {
            // The broker has no session: its next PUBLISH with a remembered id is a new
            // message, not a re-send. (3.1 has no session-present bit, so ids are kept.)
            if self.incoming_qos2.clear() {
                self.persist(|| PersistOp::ForgetIncoming);
            }
            if let Some(acks) = self.acks.as_deref_mut() {
                acks.delivered_qos2.clear();
            }
        }
        // [MQTT-4.4.0-1], [MQTT-4.6.0-1] re-send everything unacknowledged, in original
        // order, whatever session present says: a broker without the session treats them as
        // new and answers a PUBREL for an unknown id with PUBCOMP.
        for id in self.inflight.ids_in_order() {
            self.outbox.push_back(Outgoing::Slot(id));
        }
    }

    fn on_publish(&mut self, publish: Publish) {
        match publish.qos_pid {
            QosPid::AtMostOnce => self.events.push_back(Event::Message { publish, ack: None }),
            QosPid::AtLeastOnce(id) => {
                let ack = self.owe_ack(id, Outgoing::PubAck(id), false);
                self.events.push_back(Event::Message {
                    publish,
                    ack: Some(ack),
                });
            }
            QosPid::ExactlyOnce(id) => {
                let acks = self.acks.get_or_insert_default();
                if self.incoming_qos2.contains(id) {
                    // [MQTT-4.3.3-2] acknowledged before, awaiting PUBREL: a re-send gets
                    // PUBREC again (in its turn), and is not delivered again.
                    acks.owed.push_back(PendingAck {
                        delivery: u64::MAX,
                        packet: Outgoing::PubRec { id, first: false },
                        acked: true,
                    });
                    self.flush_acks();
                } else if let Some(&delivery) = acks.delivered_qos2.get(&id) {
                    // Delivered, not acknowledged yet (on this connection or an earlier
                    // one): not delivered again; the PUBREC follows the application's ack.
                    if !acks.owed.iter().any(|a| a.delivery == delivery) {
                        acks.owed.push_back(PendingAck {
                            delivery,
                            packet: Outgoing::PubRec { id, first: true },
                            acked: false,
                        });
                    }
                } else {
                    let ack = self.owe_ack(id, Outgoing::PubRec { id, first: true }, true);
                    self.acks
                        .get_or_insert_default()
                        .delivered_qos2
                        .insert(id, ack.delivery);
                    self.events.push_back(Event::Message {
                        publish,
                        ack: Some(ack),
                    });
                }
            }
        }
    }

    /// Records the acknowledgement owed for a new delivery and returns its token.
    fn owe_ack(&mut self, id: PacketId, packet: Outgoing, qos2: bool) -> AckToken {
        let delivery = acks::next_delivery();
        self.acks
            .get_or_insert_default()
            .owed
            .push_back(PendingAck {
                delivery,
                packet,
                acked: false,
            });
        AckToken { id, delivery, qos2 }
    }

    /// Moves the acknowledgements at the front of the queue that may leave to the outbox
    /// [MQTT-4.6.0-2], [MQTT-4.6.0-3].
    fn flush_acks(&mut self) {
        let Some(acks) = self.acks.as_deref_mut() else {
            return;
        };
        // Bounded: each iteration removes one entry.
        while let Some(packet) = acks.pop_ready() {
            self.outbox.push_back(packet);
        }
        release_if_drained(&mut acks.owed, false);
    }

    fn on_puback(&mut self, id: PacketId) -> Result<(), ProtocolError> {
        let expected = self.inflight.get(id).is_some_and(|s| {
            s.sent && matches!(&s.packet, Packet::Publish(p) if p.qos() == QoS::AtLeastOnce)
        });
        self.complete(id, expected, PacketType::PubAck).map(|slot| {
            self.persist(|| PersistOp::Done(id));
            self.events.push_back(Event::Published(slot.req));
        })
    }

    fn on_pubrec(&mut self, id: PacketId) -> Result<(), ProtocolError> {
        let unknown = ProtocolError::UnknownPacketId {
            packet: PacketType::PubRec,
            id,
        };
        let slot = self.inflight.get_mut(id).ok_or_else(|| unknown.clone())?;
        match &slot.packet {
            Packet::Publish(p) if slot.sent && p.qos() == QoS::ExactlyOnce => {
                // [MQTT-4.3.3-1] from now on PUBREL, never the PUBLISH again.
                slot.packet = Packet::PubRel(id);
                slot.sent = false;
                let seq = slot.seq;
                self.outbox.push_back(Outgoing::Slot(id));
                self.persist(|| PersistOp::PubRel { seq, id });
                Ok(())
            }
            Packet::PubRel(_) => {
                // A repeated PUBREC: repeat PUBREL (unless it is queued already).
                if slot.sent {
                    slot.sent = false;
                    self.outbox.push_back(Outgoing::Slot(id));
                }
                Ok(())
            }
            _ => Err(unknown),
        }
    }

    fn on_pubcomp(&mut self, id: PacketId) -> Result<(), ProtocolError> {
        let expected = self
            .inflight
            .get(id)
            .is_some_and(|s| s.sent && matches!(s.packet, Packet::PubRel(_)));
        self.complete(id, expected, PacketType::PubComp)
            .map(|slot| {
                self.persist(|| PersistOp::Done(id));
                self.events.push_back(Event::Published(slot.req));
            })
    }

    fn on_suback(&mut self, ack: SubAck) -> Result<(), ProtocolError> {
        let id = ack.packet_id;
        let filters = match self.inflight.get(id) {
            Some(Slot {
                sent: true,
                packet: Packet::Subscribe(s),
                ..
            }) => Some(s.filters.len()),
            _ => None,
        };
        if let Some(expected) = filters
            && expected != ack.return_codes.len()
        {
            return Err(ProtocolError::SubAckCountMismatch {
                id,
                got: ack.return_codes.len(),
                expected,
            });
        }
        let slot = self.complete(id, filters.is_some(), PacketType::SubAck)?;
        self.events.push_back(Event::Subscribed {
            id: slot.req,
            granted: ack.return_codes,
        });
        Ok(())
    }

    fn on_unsuback(&mut self, id: PacketId) -> Result<(), ProtocolError> {
        let expected = self
            .inflight
            .get(id)
            .is_some_and(|s| s.sent && matches!(s.packet, Packet::Unsubscribe(_)));
        self.complete(id, expected, PacketType::UnsubAck)
            .map(|slot| self.events.push_back(Event::Unsubscribed(slot.req)))
    }

    /// Removes the slot for `id` if `expected`, freeing the id; else the violation.
    fn complete(
        &mut self,
        id: PacketId,
        expected: bool,
        packet: PacketType,
    ) -> Result<Slot, ProtocolError> {
        let unknown = ProtocolError::UnknownPacketId { packet, id };
        if !expected {
            return Err(unknown);
        }
        self.inflight.remove(id).ok_or(unknown)
    }

    /// Queues a store op, built only when persistence is on (the hot path pays a branch).
    #[inline(always)]
    fn persist(&mut self, op: impl FnOnce() -> PersistOp) {
        if self.config.persistence {
            self.push_persist(op);
        }
    }

    /// The persistence path, kept out of line so the hot paths stay small without it.
    #[cold]
    #[inline(never)]
    fn push_persist(&mut self, op: impl FnOnce() -> PersistOp) {
        self.persist.get_or_insert_default().push_back(op());
    }

    /// Frees the buffers of whatever is empty (events, command queue, in-flight table, the
    /// broker's QoS 2 ids): called when the connection has been quiet for the
    /// keepalive interval, so an idle session holds no memory for past traffic.
    fn release_idle(&mut self) {
        release_if_drained(&mut self.events, true);
        self.queue.release_if_drained();
        self.inflight.release_if_empty();
        self.incoming_qos2.release_if_empty();
        if self.acks.as_deref().is_some_and(Acks::is_empty) {
            self.acks = None;
        }
    }

    /// Encodes the CONNECT for the configuration into `out`.
    ///
    /// The configuration's client id, will and credentials are moved into the packet for the
    /// encoding and moved back afterwards, not cloned: cloning a `Bytes` made from a `Vec`
    /// allocates a shared header that would then live as long as the session.
    fn encode_connect(&mut self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let (keep_alive, _) = self.keep_alive();
        let config = &mut self.config;
        let packet = Packet::Connect(Box::new(Connect {
            level: config.level,
            client_id: std::mem::take(&mut config.client_id),
            keep_alive,
            clean_session: config.clean_session,
            will: config.will.take().map(|w| *w),
            username: config.username.take(),
            password: config.password.take(),
            properties: Default::default(),
        }));
        out.reserve(packet.encoded_len());
        let result = packet.encode(out);
        if let Packet::Connect(connect) = packet {
            let Connect {
                client_id,
                will,
                username,
                password,
                ..
            } = *connect;
            config.client_id = client_id;
            config.will = will.map(Box::new);
            config.username = username;
            config.password = password;
        }
        result
    }

    // Internals: sending.

    /// Encodes the slot's packet unless it is gone or already sent; false when encoding
    /// failed (the slot is dropped and its command failed).
    fn transmit_slot(&mut self, id: PacketId, out: &mut BytesMut) -> bool {
        let Some(slot) = self.inflight.get_mut(id) else {
            return true;
        };
        if slot.sent {
            return true;
        }
        match slot.packet.encode(out) {
            Ok(()) => {
                slot.sent = true;
                slot.ever_sent = true;
                if let Packet::Publish(p) = &mut slot.packet {
                    // [MQTT-3.3.1-1] any later transmission is a re-delivery.
                    p.dup = true;
                }
                true
            }
            Err(error) => {
                let req = slot.req;
                if let Some(slot) = self.inflight.remove(id)
                    && slot.is_publish()
                {
                    self.persist(|| PersistOp::Done(id));
                }
                self.events.push_back(Event::Failed {
                    id: req,
                    error: RequestError::Encode(error),
                });
                self.pump();
                false
            }
        }
    }

    /// Moves queued commands to the outbox while connected, in call order: the oldest
    /// first, each SUBSCRIBE/UNSUBSCRIBE when a packet id is free, each QoS 1/2 publish when
    /// the in-flight window has room too. A command that cannot go holds back every later
    /// one (call order is wire order). Packet ids are allocated here.
    fn pump(&mut self) {
        if !self.state.is_sending() {
            return;
        }
        // Bounded: each iteration removes a queued command, or leaves.
        while let Some(front) = self.queue.front() {
            let id = match front {
                Queued::Publish(p) if p.msg.qos == QoS::AtMostOnce => None,
                Queued::Publish(_) if !self.window_open() => return,
                _ => match self.allocate_id() {
                    Some(id) => Some(id),
                    None => return,
                },
            };
            let Some(command) = self.queue.pop() else {
                return;
            };
            let (req, msg) = match command {
                Queued::Control(QueuedControl { req, control }) => {
                    let Some(id) = id else { return };
                    let packet = match control {
                        Control::Subscribe(filters) => Packet::Subscribe(Subscribe {
                            packet_id: id,
                            filters,
                        }),
                        Control::Unsubscribe(filters) => Packet::Unsubscribe(Unsubscribe {
                            packet_id: id,
                            filters,
                        }),
                    };
                    self.start_flight(id, req, packet);
                    continue;
                }
                Queued::Publish(QueuedPublish { req, msg }) => (req, msg),
            };
            let qos_pid = match (msg.qos, id) {
                (QoS::AtLeastOnce, Some(id)) => QosPid::AtLeastOnce(id),
                (QoS::ExactlyOnce, Some(id)) => QosPid::ExactlyOnce(id),
                _ => QosPid::AtMostOnce,
            };
            let publish = Publish {
                dup: false,
                qos_pid,
                retain: msg.retain,
                topic: msg.topic,
                payload: msg.payload,
            };
            match id {
                Some(id) => {
                    // Write-ahead: recorded before the PUBLISH can be handed out, with the
                    // order `start_flight` gives it.
                    let seq = self.next_seq;
                    self.persist(|| PersistOp::Publish {
                        seq,
                        publish: publish.clone(),
                    });
                    self.start_flight(id, req, Packet::Publish(publish));
                }
                None => self.outbox.push_back(Outgoing::Publish0 { req, publish }),
            }
        }
    }

    fn start_flight(&mut self, id: PacketId, req: RequestId, packet: Packet) {
        let seq = self.next_seq;
        self.next_seq += 1;

        self.inflight.insert(Slot {
            id,
            req,
            seq,
            sent: false,
            ever_sent: false,
            packet,
        });
        self.outbox.push_back(Outgoing::Slot(id));
    }

    /// A packet id not in flight [MQTT-2.3.1-2]; `None` when all 65,535 are.
    fn allocate_id(&mut self) -> Option<PacketId> {
        let inflight = &self.inflight;
        self.ids
            .allocate(inflight.len(), |id| inflight.contains(id))
    }

    /// What the store should hold now, built from the live state (tests compare it with the
    /// snapshot the emitted ops add up to). Publishes are stored as first sent: DUP clear.
    #[cfg(test)]
    pub(super) fn durable_state(&self) -> Snapshot {
        let mut snapshot = Snapshot::new();
        for id in self.inflight.ids_in_order() {
            let Some(slot) = self.inflight.get(id) else {
                continue;
            };
            let seq = slot.seq;
            match &slot.packet {
                Packet::Publish(p) => {
                    let mut publish = p.clone();
                    publish.dup = false;
                    snapshot.apply(PersistOp::Publish { seq, publish });
                }
                Packet::PubRel(_) => snapshot.apply(PersistOp::PubRel { seq, id }),
                _ => {}
            }
        }
        for id in self.incoming_qos2.iter() {
            snapshot.apply(PersistOp::Received(id));
        }
        snapshot
    }

    /// Whether one more QoS 1/2 publish may go in flight.
    fn window_open(&self) -> bool {
        self.inflight.publishes() < usize::from(self.config.max_inflight.max(1))
            && self.inflight.len() < ID_SPACE
    }

    fn queue_control(&mut self, len: usize, control: Control) -> Result<RequestId, ApiMisuse> {
        if len > MAX_REMAINING_LENGTH {
            return Err(EncodeError::TooLarge { len }.into());
        }
        let goes_now =
            self.state.is_sending() && self.queue.is_empty() && self.inflight.len() < ID_SPACE;
        if !goes_now && self.queue.len() >= self.config.max_queued {
            return Err(ApiMisuse::QueueFull {
                max: self.config.max_queued,
            });
        }
        let req = self.next_request_id();
        self.queue
            .push(Queued::Control(QueuedControl { req, control }));
        self.pump();
        Ok(req)
    }

    fn next_request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        id
    }

    // Internals: time.

    /// Keepalive as sent in CONNECT (whole seconds, rounded up, at most 65,535) and as used
    /// locally (the configured interval, at most 65,535 s, so never longer than announced).
    fn keep_alive(&self) -> (u16, Duration) {
        let ka = self
            .config
            .keep_alive
            .min(Duration::from_secs(MAX_KEEP_ALIVE_SECS));
        let secs = ka.as_secs() + u64::from(ka.subsec_nanos() > 0);
        (u16::try_from(secs).unwrap_or(u16::MAX), ka)
    }

    /// Re-arms the keepalive timer from the last send and receive [MQTT-3.1.2-23]: a probe
    /// goes out when either has been quiet for the interval, so a link that swallows our
    /// writes is noticed too.
    fn arm_keepalive(&mut self) {
        let (_, ka) = self.keep_alive();
        let deadline = match (self.last_sent, self.last_received) {
            (Some(sent), Some(received))
                if self.state.is_sending() && !ka.is_zero() && !self.ping_outstanding =>
            {
                sent.min(received).checked_add(ka)
            }
            _ => None,
        };
        match deadline {
            Some(at) => self.timers.set(Timer::KeepAlive, at),
            None => self.timers.stop(Timer::KeepAlive),
        }
    }

    // Internals: connection end.

    /// Ends the connection for a protocol violation and reports it.
    fn violation(&mut self, error: ProtocolError) -> Result<(), ProtocolError> {
        // [MQTT-4.8.0-1] close the connection.
        self.end_connection(DisconnectReason::Protocol(error.clone()));
        Err(error)
    }

    /// Emits `Disconnected(reason)` and resets per-connection state; with clean session,
    /// fails what was sent and not completed.
    fn end_connection(&mut self, reason: DisconnectReason) {
        let local = self.state == State::Disconnecting || reason == DisconnectReason::Local;
        self.state = State::Closed;
        self.events.push_back(Event::Disconnected(reason));
        self.timers.stop_all();
        self.ping_outstanding = false;
        self.pubrels_owed = 0;
        self.inbuf.clear();
        // Owed on the connection that ended: the broker sends what was not acknowledged
        // again (QoS 2 deliveries keep their token, see `ack`).
        if let Some(acks) = self.acks.as_deref_mut() {
            acks.owed = VecDeque::new();
        }
        if self.acks.as_deref().is_some_and(Acks::is_empty) {
            self.acks = None;
        }

        let clean = self.config.clean_session;
        let mut outbox = std::mem::take(&mut self.outbox);
        // Commands going back to the queue, in call order: SUBSCRIBE/UNSUBSCRIBE already
        // handed out (they left before anything still in the outbox), then the outbox's
        // unsent commands in outbox order (which is call order).
        let mut requeued = Vec::new();
        if clean && !local {
            // A SUBSCRIBE/UNSUBSCRIBE sent but not acknowledged when the connection broke is
            // harmless to repeat and the broker's new session will not have it: it goes back
            // to the queue (ahead of later commands) instead of failing, so a subscription
            // made just before a loss is still made.
            for id in self.inflight.ids_in_order() {
                let sent_control = self
                    .inflight
                    .get(id)
                    .is_some_and(|s| s.ever_sent && !s.is_publish());
                if sent_control
                    && let Some(slot) = self.inflight.remove(id)
                    && let Some(control) = queued_control(slot.req, slot.packet)
                {
                    requeued.push(Queued::Control(control));
                }
            }
        }
        for next in outbox.drain(..) {
            match next {
                // Never handed out: still just a queued command.
                Outgoing::Publish0 { req, publish } => {
                    requeued.push(Queued::Publish(QueuedPublish {
                        req,
                        msg: Message {
                            qos: QoS::AtMostOnce,
                            retain: publish.retain,
                            topic: publish.topic,
                            payload: publish.payload,
                        },
                    }))
                }
                // A command that never reached the wire (on any connection) goes back to the
                // queue, ahead of later commands: it keeps its place in call order (with
                // clean session its id would not survive anyway). It loses its packet id and,
                // like every queued command, its store record.
                Outgoing::Slot(id) if self.inflight.get(id).is_some_and(|s| !s.ever_sent) => {
                    let Some(slot) = self.inflight.remove(id) else {
                        continue;
                    };
                    if slot.is_publish() {
                        // Back to a plain queued command, which the store does not keep.
                        self.persist(|| PersistOp::Done(id));
                    }
                    let req = slot.req;
                    match slot.packet {
                        Packet::Publish(p) => requeued.push(Queued::Publish(QueuedPublish {
                            req,
                            msg: Message {
                                qos: p.qos(),
                                retain: p.retain,
                                topic: p.topic,
                                payload: p.payload,
                            },
                        })),
                        packet => match queued_control(req, packet) {
                            Some(control) => requeued.push(Queued::Control(control)),
                            None => self.events.push_back(Event::Failed {
                                id: req,
                                error: RequestError::SessionLost,
                            }),
                        },
                    }
                }
                _ => {}
            }
        }
        // The outbox stays as `take` left it: empty and unallocated until the next CONNECT.
        drop(outbox);
        self.queue.requeue_front(requeued);
        self.inflight.mark_unsent();
        if clean {
            // [MQTT-3.1.2-6] the broker discards the session: so do we.
            self.discard_session(if local {
                RequestError::Closed
            } else {
                RequestError::SessionLost
            });
        }
    }

    /// Fails everything in flight (freeing the ids) and forgets the broker's QoS 2 ids.
    fn discard_session(&mut self, error: RequestError) {
        if self.inflight.len() > 0 || self.incoming_qos2.len() > 0 {
            self.persist(|| PersistOp::Clear);
        }
        for slot in self.inflight.drain_in_order() {
            self.events.push_back(Event::Failed {
                id: slot.req,
                error: error.clone(),
            });
        }
        self.incoming_qos2.clear();
        self.acks = None;
    }
}

/// A SUBSCRIBE or UNSUBSCRIBE taken out of flight, as the queued command it came from.
fn queued_control(req: RequestId, packet: Packet) -> Option<QueuedControl> {
    let control = match packet {
        Packet::Subscribe(s) => Control::Subscribe(s.filters),
        Packet::Unsubscribe(u) => Control::Unsubscribe(u.filters),
        _ => return None,
    };
    Some(QueuedControl { req, control })
}

/// Encodes a fixed-size packet (ack, PINGREQ, DISCONNECT): nothing in it can break a rule,
/// so encoding cannot fail.
fn encode_fixed(packet: &Packet, out: &mut BytesMut) {
    let result = packet.encode(out);
    debug_assert!(result.is_ok(), "{packet:?} failed to encode: {result:?}");
}
