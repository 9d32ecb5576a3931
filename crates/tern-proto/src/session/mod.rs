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
//!
//! # MQTT 5
//!
//! With [`SessionConfig::level`] at [`ProtocolLevel::V5`] the session sends the CONNECT
//! properties of [`SessionConfig::connect_properties`] (and our Maximum Packet Size),
//! records the broker's CONNACK in [`ServerCapabilities`]
//! ([`Session::server_capabilities`]) and obeys it; publishes carry
//! [`Message::properties`], messages arrive with theirs ([`Event::Message`]), acks and
//! SUBACK / UNSUBACK report their reason codes ([`RequestError::PubAckRefused`],
//! [`Event::SubscribedV5`], ...), [`Session::subscribe_v5`] takes subscription options and
//! a Subscription Identifier, [`Session::disconnect_v5`] a reason, and enhanced
//! authentication runs through [`Event::Auth`], [`Session::auth_continue`] and
//! [`Session::reauthenticate`]. A violation by the broker at level 5 queues a DISCONNECT
//! with its reason code before the connection ends: drain `poll_transmit` before closing.
//! The per-connection level 5 state (capabilities, alias maps, receive quota) is one boxed
//! value, absent below level 5. A session store keeps publishes without their properties.
//!
//! ## MQTT 5 session: checklist coverage
//!
//! The session statements of `mqtt5-client-checklist.md` and the tests that hold them
//! (`session::tests::v5` unless named otherwise).
//!
//! | Statement | Rule | Tested by |
//! |---|---|---|
//! | [MQTT-3.1.2-11] ff., §3.1.2.11 | CONNECT properties from the configuration; none below level 5 | `connect_carries_the_configured_properties_and_our_maximum_packet_size`, `a_3_1_1_connect_carries_no_properties` |
//! | §3.1.3.2 | Will Properties (Will Delay, Message Expiry, Content Type, Response Topic, Correlation Data, Payload Format, User Properties) | `connect_carries_the_configured_properties_and_our_maximum_packet_size` |
//! | [MQTT-3.1.2-23] | Session Expiry > 0 keeps state after the connection; 0 drops it; Clean Start discards it | `session_expiry_keeps_state_across_a_loss_even_with_clean_start`, `a_session_with_expiry_resumes_and_resends`, `expiry_zero_drops_state_like_clean_session` |
//! | [MQTT-3.2.2-5], [MQTT-4.4.0-1] | Session Present 0 while we hold state: it is discarded (in-flight publishes fail with `SessionLost`), nothing re-sent; queued publishes leave as new messages | `session_present_0_discards_our_state_and_resends_nothing` |
//! | [MQTT-3.2.2-4] | Session Present 1 is consistent only after Clean Start 0 (a client resuming a session holds its state, possibly empty); after Clean Start 1 it is a Protocol Error | `connack_contradicting_our_connect_is_a_protocol_error` |
//! | §3.2.2.3.2 | the broker's Session Expiry Interval wins | `the_brokers_session_expiry_wins` |
//! | [MQTT-3.1.2-24], [MQTT-3.1.2-25] | our Maximum Packet Size advertised; a larger incoming packet: DISCONNECT 0x95 | `an_incoming_packet_above_our_maximum_is_refused_with_0x95` |
//! | [MQTT-3.2.2-15] | nothing above the broker's Maximum Packet Size: refused up front, or failed when it leaves | `nothing_larger_than_the_brokers_maximum_packet_size_is_sent`, fuzz `session` |
//! | §3.2.2.3 | CONNACK properties recorded with their defaults; Assigned Client Identifier kept [MQTT-3.2.2-16] | `connack_properties_are_recorded_as_capabilities`, `caps::tests` |
//! | [MQTT-4.13.2-1] | CONNACK >= 0x80: refused with reason code and Reason String | `connack_refusal_reports_reason_code_and_string` |
//! | [MQTT-3.2.2-2], [MQTT-4.12.0-6] | a CONNACK contradicting our CONNECT (Session Present after Clean Start, a method we did not send) is a Protocol Error | `connack_contradicting_our_connect_is_a_protocol_error` |
//! | [MQTT-3.2.2-21] | Server Keep Alive replaces ours | `server_keep_alive_replaces_ours` |
//! | [MQTT-3.2.2-11], [MQTT-3.2.2-14] | no QoS above Maximum QoS, no retain without Retain Available: local error, nothing sent | `requests_the_broker_declared_unsupported_fail_locally` |
//! | §3.2.2.3.12..14 | no wildcard / shared / Subscription Identifier the broker declared unavailable | `requests_the_broker_declared_unsupported_fail_locally`, `commands_queued_before_the_connack_are_checked_against_it` |
//! | [MQTT-4.9.0-2], [MQTT-3.3.4-7], [MQTT-4.9.0-3] | the broker's Receive Maximum caps our QoS 1/2 in flight, re-sends after a reconnect included; other packets still flow | `the_brokers_receive_maximum_caps_our_publishes_in_flight`, `resends_after_reconnect_respect_a_smaller_receive_maximum` |
//! | [MQTT-3.3.4-9] | our Receive Maximum enforced: DISCONNECT 0x93 | `our_receive_maximum_is_enforced_with_disconnect_0x93` |
//! | [MQTT-3.3.2-7], [MQTT-3.3.2-9], [MQTT-3.2.2-17], [MQTT-3.2.2-18] | outgoing aliases (LRU or caller-set) within the broker's maximum, none at 0; re-sends after reconnect carry the full topic | `outgoing_aliases_are_chosen_and_never_leak_into_resends_after_reconnect`, `no_outgoing_alias_when_the_broker_allows_none_or_auto_is_off`, `alias::tests`, fuzz `session` |
//! | [MQTT-3.3.2-7], [MQTT-3.3.2-10] | incoming aliases resolved, cleared on every connection; unknown alias: DISCONNECT 0x82 | `incoming_aliases_resolve_and_are_cleared_on_every_new_connection` |
//! | [MQTT-3.3.2-11], [MQTT-3.1.2-27] | incoming alias above our maximum: DISCONNECT 0x94 | `an_alias_above_our_maximum_is_refused_with_0x94` |
//! | §3.3.2.3 | outgoing PUBLISH properties sent; incoming delivered with the message | `outgoing_publish_properties_are_sent`, `subscription_options_and_identifiers_go_out_and_come_back` |
//! | [MQTT-3.3.4-6] | no Subscription Identifier in our PUBLISH | `shared_subscriptions_are_validated` |
//! | §3.3.2.3.2 | Payload Format Indicator 1 with a non-UTF-8 payload: DISCONNECT 0x99 | `payload_flagged_utf8_that_is_not_is_refused_with_0x99` |
//! | [MQTT-3.3.2-5], [MQTT-3.3.2-6] | Message Expiry counts down while queued; expired: not sent | `message_expiry_counts_down_while_queued_and_expired_messages_are_not_sent` |
//! | [MQTT-3.3.2-6], [MQTT-4.4.0-1], [MQTT-4.3.3-7] | a re-sent QoS 1 PUBLISH carries what is left of its interval (run out: 1 s, still re-sent); a QoS 2 one goes as first sent | `a_resent_publish_carries_what_is_left_of_its_expiry` |
//! | [MQTT-3.4.2-1], [MQTT-3.5.2-1], [MQTT-3.7.2-1] | PUBACK / PUBREC / PUBCOMP reason codes reach the request | `puback_failure_reaches_the_request_with_its_reason`, `pubrec_success_goes_on_to_pubrel_and_pubcomp_reason_is_reported` |
//! | [MQTT-3.7.2-1] | a PUBREL for an id we do not hold: PUBCOMP 0x92 Packet Identifier not found (Success for a held one) | `a_pubrel_for_an_id_we_do_not_hold_gets_pubcomp_0x92` |
//! | [MQTT-4.3.3-4] | a PUBREC >= 0x80 ends the QoS 2 flow: no PUBREL, id freed, request failed | `pubrec_failure_ends_the_qos2_flow_without_pubrel` |
//! | [MQTT-3.9.3-1], [MQTT-3.11.3-1] | SUBACK / UNSUBACK reason code per filter reach the request; a wrong count is a Protocol Error | `suback_and_unsuback_reason_codes_reach_the_request`, `unsuback_with_the_wrong_number_of_codes_is_a_protocol_error` |
//! | [MQTT-3.1.2-29] | Request Problem Information 0: a Reason String / User Property on an ack is a Protocol Error (DISCONNECT may carry one) | `problem_information_we_declined_is_a_protocol_error` |
//! | §3.8.3.1 | No Local, Retain As Published, Retain Handling; Subscription Identifier sent and returned | `subscription_options_and_identifiers_go_out_and_come_back` |
//! | [MQTT-4.8.2-1], [MQTT-4.8.2-2], [MQTT-3.8.3-4] | `$share/{ShareName}/{filter}` validated; No Local on it refused | `shared_subscriptions_are_validated` |
//! | [MQTT-4.13.2-1], §3.14 | server DISCONNECT reported with reason, Reason String, Server Reference | `server_disconnect_is_reported_with_reason_string_and_reference` |
//! | [MQTT-3.14.2-1], [MQTT-3.14.2-2], [MQTT-3.14.4-3] | our DISCONNECT with a reason (0x04 keeps the will) and Session Expiry; non-zero after 0 refused | `client_disconnect_carries_reason_and_session_expiry` |
//! | §4.13.1 | a violation is answered with DISCONNECT and its reason code, then nothing [MQTT-3.14.4-1] | every `assert_v5_violation` test, fuzz `session` |
//! | [MQTT-4.12.0-1..7], [MQTT-4.12.1-1] | enhanced authentication: Continue answered by the caller, same method, re-authentication; AUTH without a method refused | `auth_continue_and_reauthentication_are_driven_by_the_caller`, `auth_without_a_method_is_a_protocol_error` |
//! | [MQTT-4.3.2-*], [MQTT-4.3.3-*], [MQTT-4.4.0-1], [MQTT-4.6.0-*] | the QoS 1/2 guarantees of 3.1.1 hold at level 5 under random interleavings, drops and id reuse | `prop::every_publish_completes_once_and_qos2_reaches_the_broker_exactly_once_at_level_5`, `prop::drops_between_every_step_of_a_qos2_flow_still_deliver_exactly_once` |
//! | (levels 3, 4) | nothing of level 5 changes 3.1 / 3.1.1 | every other `session::tests` test unchanged |

mod acks;
mod alias;
mod caps;
mod config;
mod error;
mod event;
mod inflight;
mod packet_id;
mod persist;
mod queue;
mod state;
mod timer;
mod v5;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::BytesMut;

pub use caps::ServerCapabilities;
pub use config::SessionConfig;
pub use error::{ApiMisuse, ProtocolError, RequestError};
pub use event::{AckToken, DisconnectReason, Event, Initiator, Message, RequestId};
pub use persist::{OutgoingFlow, PersistOp, Snapshot};

use crate::packet::{
    Ack, Auth, AuthProperties, AuthReasonCode, ConnAck, ConnAckV5, Connect, ConnectReasonCode,
    ConnectReturnCode, Decoder, DisconnectProperties, DisconnectReasonCode, DisconnectV5,
    EncodeError, MAX_REMAINING_LENGTH, Packet, PacketId, PacketType, PayloadFormat, ProtocolLevel,
    PubAckReasonCode, PubCompReasonCode, Publish, PublishProperties, PublishV5, QoS, QosPid,
    ReasonProperties, SubAck, SubAckReasonCode, SubAckV5, Subscribe, SubscribeProperties,
    SubscribeReturnCode, SubscribeV5, SubscriptionOptions, UnsubAckV5, Unsubscribe,
};
use crate::topic::TopicFilter;

use acks::{Acks, PendingAck};
use inflight::{Inflight, Slot};
use packet_id::{ID_SPACE, IdSet, PacketIdAllocator};
use queue::{CommandQueue, Control, Queued, QueuedControl, QueuedPublish};
use state::State;
use timer::{Timer, TimerTable};
use v5::{AuthPhase, SendError, V5State};

/// A packet id for measuring packets (every id is 2 bytes).
const ANY_ID: PacketId = match PacketId::new(1) {
    Some(id) => id,
    None => panic!("1 is a valid packet id"),
};

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
    /// A QoS 0 publish with MQTT 5 properties (boxed: the outbox entry stays small).
    Publish0V5 {
        req: RequestId,
        publish: Box<PublishV5>,
    },
    /// The packet held by the in-flight slot with this id (PUBLISH, PUBREL, SUBSCRIBE,
    /// UNSUBSCRIBE). Skipped if the slot is gone or already sent on this connection.
    Slot(PacketId),
    /// QoS 1 receiver acknowledgement.
    PubAck(PacketId),
    /// QoS 2 receiver, step 1. `first`: the first PUBREC for this id since its PUBLISH
    /// arrived on this connection (not an answer to a re-send), which the broker answers with
    /// PUBREL (see [`Session::owed_bytes`]).
    PubRec { id: PacketId, first: bool },
    /// QoS 2 receiver, step 2; `false`: the PUBREL's id was not one we hold (at level 5 the
    /// PUBCOMP says so: 0x92 Packet Identifier not found).
    PubComp(PacketId, bool),
    /// Keepalive probe.
    PingReq,
    /// The last packet of a connection [MQTT-3.14.4-1]; MQTT 5 reason and properties boxed.
    Disconnect(Option<Box<DisconnectV5>>),
    /// MQTT 5: the DISCONNECT telling the broker why we end the connection for its
    /// violation (§4.13.1); queued after the connection ended, sent, then nothing more.
    Farewell(DisconnectReasonCode),
    /// MQTT 5: an AUTH packet of the enhanced authentication exchange.
    Auth(Box<Auth>),
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
    /// MQTT 5 state (mostly per connection); `None` below level 5.
    v5: Option<Box<V5State>>,
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
            v5: None,
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

    /// MQTT 5 enhanced authentication: the Authentication Data of the next CONNECT (each
    /// connection starts a fresh exchange). Does nothing without connect properties.
    pub fn set_authentication_data(&mut self, data: Option<bytes::Bytes>) {
        if let Some(p) = self.config.connect_properties.as_deref_mut() {
            p.authentication_data = data;
        }
    }

    /// Changes the protocol level for the next `connect` (used for 3.1.1 → 3.1 fallback).
    pub fn set_level(&mut self, level: ProtocolLevel) {
        self.config.level = level;
    }

    /// MQTT 5: what the broker declared in the CONNACK of the current (or last) connection;
    /// `None` below MQTT 5 and before the first CONNACK.
    pub fn server_capabilities(&self) -> Option<&ServerCapabilities> {
        self.v5.as_deref().filter(|v| v.caps_known).map(|v| &v.caps)
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
        // MQTT 5 re-sends held back by the Receive Maximum are not awaited either.
        let held = self.v5.as_deref().map_or(0, |v| v.held.len());
        let awaited = self.inflight.len().saturating_sub(self.outbox.len() + held)
            + usize::from(self.pubrels_owed);
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
                OutgoingFlow::Publish {
                    seq,
                    publish,
                    properties,
                } => {
                    let Some(id) = publish.packet_id() else {
                        // A snapshot never holds QoS 0 (`Snapshot::apply` drops it).
                        continue;
                    };
                    let mut publish = publish.clone();
                    // Sent or not before the crash, nobody knows: re-delivery is the safe
                    // reading [MQTT-3.3.1-1].
                    publish.dup = true;
                    let packet = match properties {
                        // The MQTT 5 properties come back with it (a 3.1.1 session restoring
                        // a level 5 store sends the PUBLISH alone: it cannot carry them).
                        Some(p) if self.config.level.is_v5() => {
                            Packet::PublishV5(Box::new(PublishV5 {
                                publish,
                                properties: (**p).clone(),
                            }))
                        }
                        _ => Packet::Publish(publish),
                    };
                    (*seq, id, packet)
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
                expires_at: None,
                packet,
            });
            self.next_seq = self.next_seq.max(seq.saturating_add(1));
            reqs.push(req);
            last = Some(id);
        }
        if let Some(id) = last {
            self.ids
                .resume_after(id, PacketIdAllocator::ring_for(self.config.max_inflight));
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
        // [MQTT-3.3.2-7] aliases, quota and capabilities are per connection.
        if self.config.level.is_v5() {
            let fresh = V5State::new(&self.config);
            match self.v5.as_deref_mut() {
                Some(v5) => v5.new_connection(fresh),
                None => self.v5 = Some(Box::new(fresh)),
            }
        } else {
            self.v5 = None;
        }
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
    /// close the transport [MQTT-4.8.0-1] (at MQTT 5 after sending what `poll_transmit`
    /// hands out: a DISCONNECT with the violation's reason code, §4.13.1). A first packet
    /// other than CONNACK (or, at MQTT 5, AUTH) returns [`ProtocolError::UnexpectedPacket`]
    /// and emits [`DisconnectReason::NotConnAck`] instead. Input while no connection is open
    /// returns [`ProtocolError::NotConnected`] and changes nothing.
    ///
    /// At MQTT 5 the broker's DISCONNECT ends the connection with
    /// [`DisconnectReason::Server`] (not an error), and a refusing CONNACK with
    /// [`DisconnectReason::RefusedV5`].
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
    ///
    /// MQTT 5: the message's properties go with it. Refused up front: a Subscription
    /// Identifier [MQTT-3.3.4-6], invalid property values, and, once the broker's CONNACK
    /// declared them, retain without Retain Available [MQTT-3.2.2-14], QoS above its
    /// Maximum QoS [MQTT-3.2.2-11], a packet above its Maximum Packet Size
    /// [MQTT-3.2.2-15]. Properties below MQTT 5 are refused with [`ApiMisuse::NeedsV5`].
    pub fn publish(&mut self, now: Instant, msg: Message) -> Result<RequestId, ApiMisuse> {
        self.now = Some(now);
        let id_len = if msg.qos == QoS::AtMostOnce { 0 } else { 2 };
        let len = (2 + msg.topic.as_str().len() + id_len).saturating_add(msg.payload.len());
        if len > MAX_REMAINING_LENGTH {
            return Err(EncodeError::TooLarge { len }.into());
        }
        let mut expiring = false;
        if let Some(props) = msg.properties.as_deref() {
            if self.v5.is_none() && !self.config.level.is_v5() {
                return Err(ApiMisuse::NeedsV5("PUBLISH properties"));
            }
            if !props.subscription_identifiers.is_empty() {
                return Err(ApiMisuse::SubscriptionIdInPublish);
            }
            expiring = props.message_expiry_interval.is_some();
            // Property values checked now, wherever the broker is.
            if let Packet::PublishV5(p) = publish_packet(&msg, None) {
                p.check()?;
            }
        }
        // The broker's limits are checked here while connected to it; a command queued
        // offline is checked when it leaves (the next broker may differ).
        if let Some(v5) = self.v5.as_deref().filter(|_| self.state.is_connected()) {
            v5.check_publish(&msg)?;
            if v5.caps_known {
                let packet = publish_packet(&msg, None);
                let len = packet.encoded_len_for(ProtocolLevel::V5);
                let max = v5.caps.max_packet_size();
                if len > max {
                    return Err(ApiMisuse::PacketTooLarge { len, max });
                }
            }
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
        if expiring {
            let config = &self.config;
            self.v5
                .get_or_insert_with(|| Box::new(V5State::new(config)))
                .expiry_clocks
                .insert(req, now);
        }
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
        if let Some(v5) = self.v5.as_deref() {
            let connected = self.state.is_connected();
            for (f, qos) in &filters {
                v5::check_shared(f, &SubscriptionOptions::qos(*qos))?;
            }
            if connected {
                v5.check_subscribe(filters.iter().map(|(f, _)| f), false)?;
            }
        }
        self.queue_control(len, Control::Subscribe(filters))
    }

    /// MQTT 5: queues one SUBSCRIBE with subscription options (No Local, Retain As
    /// Published, Retain Handling) and properties (a Subscription Identifier, User
    /// Properties); its completion is [`Event::SubscribedV5`], one reason code per filter.
    ///
    /// Refused up front: below MQTT 5 ([`ApiMisuse::NeedsV5`]); a `$share/` filter breaking
    /// [MQTT-4.8.2-1] / [MQTT-4.8.2-2] or with No Local [MQTT-3.8.3-4]; and, once the
    /// broker declared it, a wildcard, shared subscription or Subscription Identifier it
    /// does not support.
    pub fn subscribe_v5(
        &mut self,
        now: Instant,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
    ) -> Result<RequestId, ApiMisuse> {
        self.now = Some(now);
        if !self.config.level.is_v5() {
            return Err(ApiMisuse::NeedsV5("subscription options and properties"));
        }
        if filters.is_empty() {
            return Err(ApiMisuse::NoFilters);
        }
        for (f, options) in &filters {
            v5::check_shared(f, options)?;
        }
        if let Some(v5) = self.v5.as_deref().filter(|_| self.state.is_connected()) {
            v5.check_subscribe(
                filters.iter().map(|(f, _)| f),
                properties.subscription_identifier.is_some(),
            )?;
        }
        // Its size, as the packet it becomes (any id: ids are all 2 bytes).
        let packet = Packet::SubscribeV5(SubscribeV5 {
            packet_id: ANY_ID,
            filters,
            properties,
        });
        let len = packet.encoded_len_for(ProtocolLevel::V5);
        let Packet::SubscribeV5(SubscribeV5 {
            filters,
            properties,
            ..
        }) = packet
        else {
            return Err(ApiMisuse::NoFilters);
        };
        self.queue_control(len, Control::SubscribeV5(Box::new((filters, properties))))
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
        self.disconnect_inner(now, None)
    }

    /// MQTT 5: like [`disconnect`](Self::disconnect), with a reason code (Normal
    /// disconnection 0x00 deletes the Will, Disconnect with Will Message 0x04 has the broker
    /// publish it [MQTT-3.14.4-3]) and properties: a Session Expiry Interval replaces the
    /// negotiated one (and decides whether this session keeps its state), refused when
    /// CONNECT had 0 and this is not 0 [MQTT-3.14.2-2]; a Reason String; User Properties.
    pub fn disconnect_v5(
        &mut self,
        now: Instant,
        reason: DisconnectReasonCode,
        properties: DisconnectProperties,
    ) -> Result<(), ApiMisuse> {
        let Some(v5) = self.v5.as_deref_mut() else {
            return Err(ApiMisuse::NeedsV5("DISCONNECT with a reason"));
        };
        if let Some(expiry) = properties.session_expiry_interval {
            if self.config.session_expiry_interval() == 0 && expiry != 0 {
                return Err(ApiMisuse::ExpiryAfterZero);
            }
            if self.state == State::Connected {
                v5.expiry_on_disconnect = Some(expiry);
            }
        }
        let d = DisconnectV5 { reason, properties };
        self.disconnect_inner(now, Some(Box::new(d)))
    }

    fn disconnect_inner(
        &mut self,
        now: Instant,
        v5: Option<Box<DisconnectV5>>,
    ) -> Result<(), ApiMisuse> {
        self.now = Some(now);
        match self.state {
            State::Idle | State::Closed => Err(ApiMisuse::NotConnected),
            State::AwaitConnAck => {
                self.end_connection(DisconnectReason::Local);
                Ok(())
            }
            State::Connected => {
                self.outbox.push_back(Outgoing::Disconnect(v5));
                self.state = State::Disconnecting;
                self.timers.stop(Timer::KeepAlive);
                Ok(())
            }
            State::Disconnecting => Ok(()),
        }
    }

    /// MQTT 5 enhanced authentication: answers the broker's AUTH Continue
    /// ([`Event::Auth`]) with the next Authentication Data [MQTT-4.12.0-3]. The method is
    /// the CONNECT's, added here [MQTT-4.12.0-5]. Fails with [`ApiMisuse::NoAuth`] when no
    /// exchange awaits an answer.
    pub fn auth_continue(
        &mut self,
        now: Instant,
        data: Option<bytes::Bytes>,
    ) -> Result<(), ApiMisuse> {
        self.send_auth(now, AuthReasonCode::ContinueAuthentication, data)
    }

    /// MQTT 5 enhanced authentication: starts a re-authentication (AUTH 0x19 with the
    /// CONNECT's method [MQTT-4.12.1-1]); the broker answers with AUTH ([`Event::Auth`]):
    /// Continue (answer with [`auth_continue`](Self::auth_continue)) or Success. Only while
    /// connected, after a CONNECT with an Authentication Method [MQTT-4.12.0-7].
    pub fn reauthenticate(
        &mut self,
        now: Instant,
        data: Option<bytes::Bytes>,
    ) -> Result<(), ApiMisuse> {
        self.send_auth(now, AuthReasonCode::ReAuthenticate, data)
    }

    fn send_auth(
        &mut self,
        now: Instant,
        reason: AuthReasonCode,
        data: Option<bytes::Bytes>,
    ) -> Result<(), ApiMisuse> {
        self.now = Some(now);
        let method = self
            .config
            .connect_properties
            .as_ref()
            .and_then(|p| p.authentication_method.clone());
        let (Some(v5), Some(method)) = (self.v5.as_deref_mut(), method) else {
            return Err(ApiMisuse::NoAuth(
                "configured (no Authentication Method in CONNECT)",
            ));
        };
        let allowed = match reason {
            AuthReasonCode::ReAuthenticate => {
                self.state == State::Connected && v5.auth == AuthPhase::Done
            }
            _ => {
                self.state.is_open()
                    && matches!(v5.auth, AuthPhase::Connecting | AuthPhase::ReAuthenticating)
            }
        };
        if !allowed {
            return Err(ApiMisuse::NoAuth("step is awaited now"));
        }
        if reason == AuthReasonCode::ReAuthenticate {
            v5.auth = AuthPhase::ReAuthenticating;
        }
        let auth = Auth {
            reason,
            properties: AuthProperties {
                authentication_method: Some(method),
                authentication_data: data,
                ..AuthProperties::default()
            },
        };
        self.outbox.push_back(Outgoing::Auth(Box::new(auth)));
        Ok(())
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
                Outgoing::PubAck(_) | Outgoing::PubRec { .. } | Outgoing::PubComp(..)
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
                Outgoing::Publish0 { req, publish } => {
                    let packet = Packet::Publish(publish);
                    let result = match self.v5.as_deref_mut() {
                        None => packet.encode(out).map_err(RequestError::Encode),
                        Some(v5) => v5::encode(v5, &packet, self.config.auto_topic_alias, out)
                            .map_err(send_error),
                    };
                    match result {
                        Ok(()) => self.events.push_back(Event::Published(req)),
                        Err(error) => self.events.push_back(Event::Failed { id: req, error }),
                    }
                }
                Outgoing::Publish0V5 { req, publish } => {
                    let packet = Packet::PublishV5(publish);
                    let result = match self.v5.as_deref_mut() {
                        Some(v5) => v5::encode(v5, &packet, self.config.auto_topic_alias, out)
                            .map_err(send_error),
                        None => packet.encode(out).map_err(RequestError::Encode),
                    };
                    match result {
                        Ok(()) => self.events.push_back(Event::Published(req)),
                        Err(error) => self.events.push_back(Event::Failed { id: req, error }),
                    }
                }
                Outgoing::Slot(id) => {
                    if !self.transmit_slot(id, out) && self.persist.is_some() {
                        // An encoding failure freed the slot and let queued publishes into
                        // flight: their records must be durable before they leave.
                        break;
                    }
                }
                Outgoing::PubAck(id) => {
                    encode_fixed(&Packet::PubAck(id), out);
                    self.release_quota();
                }
                Outgoing::PubRec { id, first } => {
                    encode_fixed(&Packet::PubRec(id), out);
                    if first {
                        self.pubrels_owed = self.pubrels_owed.saturating_add(1);
                    }
                }
                Outgoing::PubComp(id, found) => {
                    if !found && self.v5.is_some() {
                        // [MQTT-3.7.2-1] the flow is unknown here: say so.
                        let ack = Ack::new(id, PubCompReasonCode::PacketIdentifierNotFound);
                        encode_fixed(&Packet::PubCompV5(ack), out);
                    } else {
                        encode_fixed(&Packet::PubComp(id), out);
                    }
                    self.release_quota();
                }
                Outgoing::PingReq => {
                    idle = true;
                    encode_fixed(&Packet::PingReq, out);
                }
                Outgoing::Disconnect(v5) => {
                    idle = true;
                    match v5 {
                        Some(d) => encode_fixed(&Packet::DisconnectV5(d), out),
                        None => encode_fixed(&Packet::Disconnect, out),
                    }
                    // [MQTT-3.14.4-1] nothing after DISCONNECT.
                    self.end_connection(DisconnectReason::Local);
                    break;
                }
                Outgoing::Farewell(reason) => {
                    idle = true;
                    encode_fixed(
                        &Packet::DisconnectV5(Box::new(DisconnectV5::new(reason))),
                        out,
                    );
                    // [MQTT-3.14.4-1] nothing after DISCONNECT (the connection has ended).
                    self.outbox.clear();
                    break;
                }
                Outgoing::Auth(auth) => {
                    encode_fixed(&Packet::Auth(auth), out);
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
                // The short form of an accepting MQTT 5 CONNACK: no properties, every
                // capability at its default. (A refusal in this form comes from a 3.1.1
                // broker answering our level 5 CONNECT: reported as the 3.1.1 refusal.)
                Packet::ConnAck(ack)
                    if self.v5.is_some() && ack.code == ConnectReturnCode::Accepted =>
                {
                    self.on_connack_v5(Box::new(ConnAckV5 {
                        session_present: ack.session_present,
                        reason: ConnectReasonCode::Success,
                        properties: Default::default(),
                    }))
                }
                Packet::ConnAck(ack) => {
                    self.on_connack(ack);
                    Ok(())
                }
                Packet::ConnAckV5(ack) if self.v5.is_some() => self.on_connack_v5(ack),
                // [MQTT-3.2.0-1] only AUTH may come before CONNACK, in an enhanced
                // authentication.
                Packet::Auth(auth) if self.v5.is_some() => self.on_auth(*auth),
                other => {
                    // [MQTT-3.2.0-1] the broker's first packet must be CONNACK.
                    let packet_type = other.packet_type();
                    self.end_connection(DisconnectReason::NotConnAck(packet_type));
                    Err(ProtocolError::UnexpectedPacket(packet_type))
                }
            };
        }
        match packet {
            Packet::ConnAck(_) | Packet::ConnAckV5(_) => Err(ProtocolError::DuplicateConnAck),
            Packet::Publish(publish) => self.on_publish(publish, None),
            Packet::PubAck(id) => self.on_puback(id, None),
            Packet::PubRec(id) => self.on_pubrec(id, None),
            Packet::PubRelV5(Ack { properties, .. })
                if self
                    .check_problem_info(PacketType::PubRel, &properties)
                    .is_err() =>
            {
                Err(ProtocolError::UnrequestedProblemInformation(
                    PacketType::PubRel,
                ))
            }
            Packet::PubRel(id) | Packet::PubRelV5(Ack { packet_id: id, .. }) => {
                // [MQTT-4.3.3-2] PUBCOMP, known id or not; the id may be reused afterwards.
                // (At level 5 a PUBREL 0x92 reports a flow the broker lost: PUBCOMP ends it.)
                let found = self.incoming_qos2.remove(id);
                if found {
                    self.persist(|| PersistOp::Released(id));
                    // Maybe one counted on an earlier connection: then this undercounts,
                    // which is safe.
                    self.pubrels_owed = self.pubrels_owed.saturating_sub(1);
                }
                self.outbox.push_back(Outgoing::PubComp(id, found));
                Ok(())
            }
            Packet::PubComp(id) => self.on_pubcomp(id, None),
            Packet::SubAck(ack) => self.on_suback(ack),
            Packet::UnsubAck(id) => self.on_unsuback(id, None),
            Packet::PingResp => {
                if self.ping_outstanding {
                    self.ping_outstanding = false;
                    self.timers.stop(Timer::PingResp);
                }
                Ok(())
            }
            // The MQTT 5 forms only come out of a level 5 decoder.
            Packet::PublishV5(p) if self.v5.is_some() => {
                let PublishV5 {
                    publish,
                    properties,
                } = *p;
                self.on_publish(publish, Some(Box::new(properties)))
            }
            Packet::PubAckV5(ack) if self.v5.is_some() => {
                self.check_problem_info(PacketType::PubAck, &ack.properties)?;
                self.on_puback(ack.packet_id, Some(ack))
            }
            Packet::PubRecV5(ack) if self.v5.is_some() => {
                self.check_problem_info(PacketType::PubRec, &ack.properties)?;
                self.on_pubrec(ack.packet_id, Some(ack))
            }
            Packet::PubCompV5(ack) if self.v5.is_some() => {
                self.check_problem_info(PacketType::PubComp, &ack.properties)?;
                self.on_pubcomp(ack.packet_id, Some(ack))
            }
            Packet::SubAckV5(ack) if self.v5.is_some() => {
                self.check_problem_info(PacketType::SubAck, &ack.properties)?;
                self.on_suback_v5(*ack)
            }
            Packet::UnsubAckV5(ack) if self.v5.is_some() => {
                self.check_problem_info(PacketType::UnsubAck, &ack.properties)?;
                let UnsubAckV5 {
                    packet_id,
                    reason_codes,
                    properties,
                } = *ack;
                self.on_unsuback(packet_id, Some((reason_codes, properties)))
            }
            Packet::Disconnect if self.v5.is_some() => {
                self.on_server_disconnect(Box::new(DisconnectV5::new(
                    DisconnectReasonCode::NormalDisconnection,
                )));
                Ok(())
            }
            Packet::DisconnectV5(d) if self.v5.is_some() => {
                if d.properties.session_expiry_interval.is_some() {
                    // [MQTT-3.14.2-2] the broker never sends a Session Expiry Interval.
                    return Err(ProtocolError::SessionExpiryFromServer);
                }
                self.on_server_disconnect(d);
                Ok(())
            }
            Packet::Auth(auth) if self.v5.is_some() => self.on_auth(*auth),
            other @ (Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq
            | Packet::Disconnect
            | Packet::PublishV5(_)
            | Packet::PubAckV5(_)
            | Packet::PubRecV5(_)
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
        self.accepted(ack.session_present);
    }

    /// MQTT 5: with Request Problem Information 0, the broker sends no Reason String or User
    /// Property except on PUBLISH, CONNACK and DISCONNECT [MQTT-3.1.2-29].
    fn check_problem_info(
        &self,
        packet: PacketType,
        properties: &ReasonProperties,
    ) -> Result<(), ProtocolError> {
        let refused = self
            .config
            .connect_properties
            .as_ref()
            .is_some_and(|p| p.request_problem_information == Some(false));
        if refused && (properties.reason_string.is_some() || !properties.user_properties.is_empty())
        {
            return Err(ProtocolError::UnrequestedProblemInformation(packet));
        }
        Ok(())
    }

    /// MQTT 5 CONNACK: a refusal ends the connection with its reason [MQTT-4.13.2-1]; an
    /// acceptance records the broker's capabilities first.
    fn on_connack_v5(&mut self, ack: Box<ConnAckV5>) -> Result<(), ProtocolError> {
        self.timers.stop(Timer::ConnAck);
        if ack.reason.is_error() {
            self.end_connection(DisconnectReason::RefusedV5(ack));
            return Ok(());
        }
        if ack.session_present && self.config.clean_session {
            // [MQTT-3.2.2-2] Clean Start 1 is always answered with Session Present 0.
            return Err(ProtocolError::SessionPresentOnCleanStart);
        }
        let ours = self
            .config
            .connect_properties
            .as_ref()
            .and_then(|p| p.authentication_method.as_ref());
        if ack.properties.authentication_method.as_ref() != ours {
            // [MQTT-4.12.0-5], [MQTT-4.12.0-6] the CONNECT's method, or none.
            return Err(ProtocolError::UnexpectedAuth(
                "CONNACK's Authentication Method differs from our CONNECT's",
            ));
        }
        let ConnAckV5 {
            session_present,
            properties,
            ..
        } = *ack;
        let caps = ServerCapabilities::from_properties(properties);
        if self.config.client_id.is_empty()
            && let Some(assigned) = &caps.assigned_client_identifier
        {
            // [MQTT-3.2.2-16] the broker named us: resume under that name next time.
            self.config.client_id = assigned.clone();
        }
        if let Some(v5) = self.v5.as_deref_mut() {
            v5.out_alias = alias::Outgoing::new(caps.topic_alias_maximum);
            v5.caps = caps;
            v5.caps_known = true;
            if v5.auth == AuthPhase::Connecting {
                v5.auth = AuthPhase::Done;
            }
        }
        self.accepted(session_present);
        Ok(())
    }

    /// CONNACK accepted the connection.
    fn accepted(&mut self, session_present: bool) {
        self.state = State::Connected;
        self.events.push_back(Event::Connected { session_present });
        if !session_present && self.config.level != ProtocolLevel::V3_1 {
            // The broker has no session: its next PUBLISH with a remembered id is a new
            // message, not a re-send. (3.1 has no session-present bit, so ids are kept.)
            if self.incoming_qos2.clear() {
                self.persist(|| PersistOp::ForgetIncoming);
            }
            if let Some(acks) = self.acks.as_deref_mut() {
                acks.delivered_qos2.clear();
            }
        }
        if !session_present && self.config.level == ProtocolLevel::V5 {
            // MQTT 5: the broker has no session, so ours is discarded [MQTT-3.2.2-5], and
            // nothing is re-sent: a re-send is allowed only with Session Present 1
            // [MQTT-4.4.0-1]. The publishes it held fail with `SessionLost` (the application
            // decides whether to publish them again); nothing is dropped silently.
            if let Some(v5) = self.v5.as_deref_mut() {
                v5.held.clear();
            }
            self.discard_session(RequestError::SessionLost);
            return;
        }
        // [MQTT-4.4.0-1], [MQTT-4.6.0-1] re-send everything unacknowledged, in original
        // order, whatever session present says (3.1.1 ties the re-send to Clean Session 0,
        // not to Session Present): a broker without the session treats them as new and
        // answers a PUBREL for an unknown id with PUBCOMP.
        // At level 5 at most the broker's Receive Maximum of them at once [MQTT-4.9.0-2]:
        // the rest keep their ids and wait, in order, for acknowledgements.
        let limit = self
            .v5
            .as_deref()
            .map_or(usize::MAX, |v| usize::from(v.caps.receive_maximum.max(1)));
        let mut publishes = 0;
        for id in self.inflight.ids_in_order() {
            let publish = self.inflight.get(id).is_some_and(Slot::is_publish);
            if publish
                && publishes >= limit
                && let Some(v5) = self.v5.as_deref_mut()
            {
                v5.held.push_back(id);
                continue;
            }
            publishes += usize::from(publish);
            self.outbox.push_back(Outgoing::Slot(id));
        }
    }

    /// MQTT 5: re-sends held back by the broker's Receive Maximum after a reconnect go out as
    /// acknowledgements make room, in their order.
    fn release_held(&mut self) {
        let Some(v5) = self.v5.as_deref_mut() else {
            return;
        };
        let limit = usize::from(v5.caps.receive_maximum.max(1));
        // Bounded: each iteration removes one held id.
        while let Some(&id) = v5.held.front() {
            let on_wire = self.inflight.publishes().saturating_sub(v5.held.len());
            if on_wire >= limit {
                return;
            }
            v5.held.pop_front();
            if self.inflight.contains(id) {
                self.outbox.push_back(Outgoing::Slot(id));
            }
        }
    }

    /// MQTT 5: the broker ended the connection with DISCONNECT (reason, Reason String,
    /// Server Reference): reported as such [MQTT-4.13.2-1].
    fn on_server_disconnect(&mut self, d: Box<DisconnectV5>) {
        self.end_connection(DisconnectReason::Server(d));
    }

    /// MQTT 5 AUTH from the broker [MQTT-4.12.0-2..7]: Continue is handed to the caller
    /// ([`Event::Auth`]); Success ends a re-authentication.
    fn on_auth(&mut self, auth: Auth) -> Result<(), ProtocolError> {
        let Some(v5) = self.v5.as_deref_mut() else {
            return Err(ProtocolError::UnexpectedPacket(PacketType::Auth));
        };
        let ours = self
            .config
            .connect_properties
            .as_ref()
            .and_then(|p| p.authentication_method.as_ref());
        let Some(method) = ours else {
            // [MQTT-4.12.0-6] no AUTH for a CONNECT without a method.
            return Err(ProtocolError::UnexpectedAuth(
                "our CONNECT had no Authentication Method",
            ));
        };
        if auth.properties.authentication_method.as_ref() != Some(method) {
            return Err(ProtocolError::UnexpectedAuth(
                "its Authentication Method differs from ours",
            ));
        }
        match (auth.reason, v5.auth) {
            (
                AuthReasonCode::ContinueAuthentication,
                AuthPhase::Connecting | AuthPhase::ReAuthenticating,
            ) => {}
            (AuthReasonCode::Success, AuthPhase::ReAuthenticating) => v5.auth = AuthPhase::Done,
            _ => {
                return Err(ProtocolError::UnexpectedAuth(
                    "no authentication step of ours awaits it",
                ));
            }
        }
        let Auth { reason, properties } = auth;
        self.events.push_back(Event::Auth {
            reason,
            properties: Box::new(properties),
        });
        Ok(())
    }

    fn on_publish(
        &mut self,
        mut publish: Publish,
        mut properties: Option<Box<PublishProperties>>,
    ) -> Result<(), ProtocolError> {
        if let Some(v5) = self.v5.as_deref_mut() {
            if let Some(props) = properties.as_deref_mut() {
                if let Some(alias) = props.topic_alias.take() {
                    publish.topic =
                        v5.in_alias
                            .resolve(&publish.topic, alias)
                            .map_err(|e| match e {
                                alias::AliasError::AboveMaximum => {
                                    ProtocolError::TopicAliasInvalid {
                                        alias: alias.get(),
                                        max: self.config.topic_alias_maximum(),
                                    }
                                }
                                alias::AliasError::Unknown => {
                                    ProtocolError::UnknownTopicAlias { alias: alias.get() }
                                }
                            })?;
                }
                if props.payload_format_indicator == Some(PayloadFormat::Utf8)
                    && std::str::from_utf8(&publish.payload).is_err()
                {
                    return Err(ProtocolError::PayloadFormatInvalid);
                }
                if *props == PublishProperties::default() {
                    properties = None;
                }
            }
            let resend = matches!(publish.qos_pid, QosPid::ExactlyOnce(id) if self.incoming_qos2.contains(id)
                || self.acks.as_deref().is_some_and(|a| a.delivered_qos2.contains_key(&id)));
            if v5::is_quota(publish.qos()) && !resend {
                let max = self.config.receive_maximum();
                if v5.quota_used >= max {
                    return Err(ProtocolError::ReceiveMaximumExceeded { max });
                }
                v5.quota_used += 1;
            }
        }
        match publish.qos_pid {
            QosPid::AtMostOnce => self.events.push_back(Event::Message {
                publish,
                properties,
                ack: None,
            }),
            QosPid::AtLeastOnce(id) => {
                let ack = self.owe_ack(id, Outgoing::PubAck(id), false);
                self.events.push_back(Event::Message {
                    publish,
                    properties,
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
                        properties,
                        ack: Some(ack),
                    });
                }
            }
        }
        Ok(())
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

    fn on_puback(
        &mut self,
        id: PacketId,
        v5: Option<Ack<PubAckReasonCode>>,
    ) -> Result<(), ProtocolError> {
        let expected = self.inflight.get(id).is_some_and(|s| {
            s.sent && slot_publish(&s.packet).is_some_and(|p| p.qos() == QoS::AtLeastOnce)
        });
        let slot = self.complete(id, expected, PacketType::PubAck)?;
        self.persist(|| PersistOp::Done(id));
        let event = match v5 {
            // A refusal reaches the request (rumqttc #877: not only a log line).
            Some(ack) if ack.reason.is_error() => Event::Failed {
                id: slot.req,
                error: RequestError::PubAckRefused {
                    code: ack.reason,
                    reason_string: ack.properties.reason_string,
                },
            },
            _ => Event::Published(slot.req),
        };
        self.events.push_back(event);
        Ok(())
    }

    fn on_pubrec(
        &mut self,
        id: PacketId,
        v5: Option<Ack<PubAckReasonCode>>,
    ) -> Result<(), ProtocolError> {
        let unknown = ProtocolError::UnknownPacketId {
            packet: PacketType::PubRec,
            id,
        };
        let slot = self.inflight.get_mut(id).ok_or_else(|| unknown.clone())?;
        let is_qos2_publish =
            slot_publish(&slot.packet).is_some_and(|p| p.qos() == QoS::ExactlyOnce);
        if is_qos2_publish && slot.sent {
            if let Some(ack) = v5.filter(|a| a.reason.is_error()) {
                // [MQTT-4.3.3-4] a PUBREC >= 0x80 ends the flow: no PUBREL; the id is free
                // and the refusal reaches the request.
                if let Some(slot) = self.inflight.remove(id) {
                    self.persist(|| PersistOp::Done(id));
                    self.events.push_back(Event::Failed {
                        id: slot.req,
                        error: RequestError::PubRecRefused {
                            code: ack.reason,
                            reason_string: ack.properties.reason_string,
                        },
                    });
                }
                return Ok(());
            }
            // [MQTT-4.3.3-1] from now on PUBREL, never the PUBLISH again.
            slot.packet = Packet::PubRel(id);
            slot.sent = false;
            let seq = slot.seq;
            self.outbox.push_back(Outgoing::Slot(id));
            self.persist(|| PersistOp::PubRel { seq, id });
            return Ok(());
        }
        match &slot.packet {
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

    fn on_pubcomp(
        &mut self,
        id: PacketId,
        v5: Option<Ack<PubCompReasonCode>>,
    ) -> Result<(), ProtocolError> {
        let expected = self
            .inflight
            .get(id)
            .is_some_and(|s| s.sent && matches!(s.packet, Packet::PubRel(_)));
        let slot = self.complete(id, expected, PacketType::PubComp)?;
        self.persist(|| PersistOp::Done(id));
        let event = match v5 {
            Some(ack) if ack.reason.is_error() => Event::Failed {
                id: slot.req,
                error: RequestError::PubCompRefused {
                    code: ack.reason,
                    reason_string: ack.properties.reason_string,
                },
            },
            _ => Event::Published(slot.req),
        };
        self.events.push_back(event);
        Ok(())
    }

    /// The number of filters of the SUBSCRIBE in flight under `id`, if one was sent.
    fn sent_subscribe_filters(&self, id: PacketId) -> Option<usize> {
        match self.inflight.get(id) {
            Some(Slot {
                sent: true,
                packet: Packet::Subscribe(s),
                ..
            }) => Some(s.filters.len()),
            Some(Slot {
                sent: true,
                packet: Packet::SubscribeV5(s),
                ..
            }) => Some(s.filters.len()),
            _ => None,
        }
    }

    fn on_suback(&mut self, ack: SubAck) -> Result<(), ProtocolError> {
        if self.v5.is_some() {
            // The short form of an MQTT 5 SUBACK: report it as one.
            let reason_codes = ack
                .return_codes
                .iter()
                .map(|c| match c {
                    SubscribeReturnCode::Success(QoS::AtMostOnce) => SubAckReasonCode::GrantedQoS0,
                    SubscribeReturnCode::Success(QoS::AtLeastOnce) => SubAckReasonCode::GrantedQoS1,
                    SubscribeReturnCode::Success(QoS::ExactlyOnce) => SubAckReasonCode::GrantedQoS2,
                    SubscribeReturnCode::Failure => SubAckReasonCode::UnspecifiedError,
                })
                .collect();
            return self.on_suback_v5(SubAckV5 {
                packet_id: ack.packet_id,
                reason_codes,
                properties: ReasonProperties::default(),
            });
        }
        let slot = self.complete_suback(ack.packet_id, ack.return_codes.len())?;
        self.events.push_back(Event::Subscribed {
            id: slot.req,
            granted: ack.return_codes,
        });
        Ok(())
    }

    /// Completes the SUBSCRIBE that SUBACK `id` answers with `got` codes: one per filter of
    /// the SUBSCRIBE sent [MQTT-3.9.3-1], else a protocol error.
    fn complete_suback(&mut self, id: PacketId, got: usize) -> Result<Slot, ProtocolError> {
        let filters = self.sent_subscribe_filters(id);
        if let Some(expected) = filters
            && expected != got
        {
            return Err(ProtocolError::SubAckCountMismatch { id, got, expected });
        }
        self.complete(id, filters.is_some(), PacketType::SubAck)
    }

    /// MQTT 5 SUBACK: a reason code per filter reaches the request [MQTT-3.9.3-1].
    fn on_suback_v5(&mut self, ack: SubAckV5) -> Result<(), ProtocolError> {
        let slot = self.complete_suback(ack.packet_id, ack.reason_codes.len())?;
        self.events.push_back(Event::SubscribedV5 {
            id: slot.req,
            reasons: ack.reason_codes,
            properties: ack.properties,
        });
        Ok(())
    }

    fn on_unsuback(
        &mut self,
        id: PacketId,
        v5: Option<(Vec<crate::packet::UnsubAckReasonCode>, ReasonProperties)>,
    ) -> Result<(), ProtocolError> {
        let filters = match self.inflight.get(id) {
            Some(Slot {
                sent: true,
                packet: Packet::Unsubscribe(u),
                ..
            }) => Some(u.filters.len()),
            _ => None,
        };
        if let (Some(expected), Some((codes, _))) = (filters, &v5)
            && expected != codes.len()
        {
            // [MQTT-3.11.3-1] one reason code per filter.
            return Err(ProtocolError::UnsubAckCountMismatch {
                id,
                got: codes.len(),
                expected,
            });
        }
        let slot = self.complete(id, filters.is_some(), PacketType::UnsubAck)?;
        self.events.push_back(match v5 {
            Some((reasons, properties)) => Event::UnsubscribedV5 {
                id: slot.req,
                reasons,
                properties,
            },
            None => Event::Unsubscribed(slot.req),
        });
        Ok(())
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

    /// MQTT 5: a publish whose Message Expiry Interval was already reduced by its wait goes
    /// back to the queue: its clock starts again now.
    fn restart_expiry(&mut self, req: RequestId, properties: &PublishProperties) {
        if properties.message_expiry_interval.is_some()
            && let Some(now) = self.now
            && let Some(v5) = self.v5.as_deref_mut()
        {
            v5.expiry_clocks.insert(req, now);
        }
    }

    /// MQTT 5: one of the broker's QoS 1/2 PUBLISHes answered (PUBACK or PUBCOMP handed
    /// out): its place in our Receive Maximum is free again.
    fn release_quota(&mut self) {
        if let Some(v5) = self.v5.as_deref_mut() {
            v5.quota_used = v5.quota_used.saturating_sub(1);
        }
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
        let (keep_alive, _) = self.keep_alive_configured();
        let config = &mut self.config;
        let v5 = config.level.is_v5();
        let mut properties = if v5 {
            config
                .connect_properties
                .take()
                .map(|p| *p)
                .unwrap_or_default()
        } else {
            Default::default()
        };
        // Will Properties exist only at level 5 (a 3.1.1 fallback of a level 5
        // configuration leaves them out, and keeps them for the next level 5 CONNECT).
        let will_properties = if v5 {
            None
        } else {
            config
                .will
                .as_deref_mut()
                .map(|w| std::mem::take(&mut w.properties))
        };
        if v5 {
            // Our own limit, advertised so the broker never sends more [MQTT-3.1.2-24].
            properties.maximum_packet_size = u32::try_from(config.max_packet_size)
                .ok()
                .and_then(std::num::NonZeroU32::new);
        }
        let packet = Packet::Connect(Box::new(Connect {
            level: config.level,
            client_id: std::mem::take(&mut config.client_id),
            keep_alive,
            clean_session: config.clean_session,
            will: config.will.take().map(|w| *w),
            username: config.username.take(),
            password: config.password.take(),
            properties,
        }));
        out.reserve(packet.encoded_len());
        let result = packet.encode(out);
        if let Packet::Connect(connect) = packet {
            let Connect {
                client_id,
                will,
                username,
                password,
                mut properties,
                ..
            } = *connect;
            config.client_id = client_id;
            config.will = will.map(Box::new);
            if let (Some(p), Some(w)) = (will_properties, config.will.as_deref_mut()) {
                w.properties = p;
            }
            config.username = username;
            config.password = password;
            if v5 {
                properties.maximum_packet_size = None;
                config.connect_properties =
                    (properties != Default::default()).then(|| Box::new(properties));
            }
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
        if slot.ever_sent
            && let (Some(expires_at), Some(now)) = (slot.expires_at, self.now)
            && let Packet::PublishV5(p) = &mut slot.packet
            && p.publish.qos() == QoS::AtLeastOnce
        {
            // A QoS 1 re-send (after a reconnect) carries what is left of the interval
            // [MQTT-3.3.2-6], rounded up as a queued publish's is. Run out, it still goes,
            // with the shortest interval: an unacknowledged PUBLISH is always re-sent
            // [MQTT-4.4.0-1]. A QoS 2 one goes as first sent: no expiry applies to it once
            // sent [MQTT-4.3.3-7].
            let left = expires_at.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            p.properties.message_expiry_interval =
                Some(u32::try_from(secs.max(1)).unwrap_or(u32::MAX));
        }
        let result = match self.v5.as_deref_mut() {
            None => slot.packet.encode(out).map_err(RequestError::Encode),
            Some(v5) => {
                v5::encode(v5, &slot.packet, self.config.auto_topic_alias, out).map_err(send_error)
            }
        };
        match result {
            Ok(()) => {
                slot.sent = true;
                slot.ever_sent = true;
                match &mut slot.packet {
                    // [MQTT-3.3.1-1] any later transmission is a re-delivery.
                    Packet::Publish(p) => p.dup = true,
                    Packet::PublishV5(p) => p.publish.dup = true,
                    _ => {}
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
                self.events.push_back(Event::Failed { id: req, error });
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
        if self.v5.as_deref().is_some_and(|v| !v.held.is_empty()) {
            self.release_held();
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
            let (req, mut msg) = match command {
                Queued::Control(QueuedControl { req, control }) => {
                    let Some(id) = id else { return };
                    if let Some(v5) = self.v5.as_deref() {
                        // Queued before this broker declared what it supports.
                        let checked = match &control {
                            Control::Subscribe(f) => {
                                v5.check_subscribe(f.iter().map(|(f, _)| f), false)
                            }
                            Control::SubscribeV5(sub) => v5.check_subscribe(
                                sub.0.iter().map(|(f, _)| f),
                                sub.1.subscription_identifier.is_some(),
                            ),
                            Control::Unsubscribe(_) => Ok(()),
                        };
                        if let Err(e) = checked {
                            self.events.push_back(Event::Failed {
                                id: req,
                                error: RequestError::Refused(e),
                            });
                            continue;
                        }
                    }
                    let packet = match control {
                        Control::Subscribe(filters) => Packet::Subscribe(Subscribe {
                            packet_id: id,
                            filters,
                        }),
                        Control::SubscribeV5(sub) => {
                            let (filters, properties) = *sub;
                            Packet::SubscribeV5(SubscribeV5 {
                                packet_id: id,
                                filters,
                                properties,
                            })
                        }
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
            if self.v5.is_some()
                && let Err(error) = self.ready_v5(req, &mut msg)
            {
                // Never sent: its id (if any) was not taken yet.
                self.events.push_back(Event::Failed { id: req, error });
                continue;
            }
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
                    // order `start_flight` gives it; at MQTT 5 with its properties, never
                    // with a Topic Alias (the stored topic is whole).
                    let seq = self.next_seq;
                    self.persist(|| PersistOp::Publish {
                        seq,
                        publish: publish.clone(),
                        properties: stored_properties(msg.properties.as_deref()),
                    });
                    let packet = match msg.properties {
                        Some(properties) => Packet::PublishV5(Box::new(PublishV5 {
                            publish,
                            properties: *properties,
                        })),
                        None => Packet::Publish(publish),
                    };
                    self.start_flight(id, req, packet);
                }
                None => self.outbox.push_back(match msg.properties {
                    Some(properties) => Outgoing::Publish0V5 {
                        req,
                        publish: Box::new(PublishV5 {
                            publish,
                            properties: *properties,
                        }),
                    },
                    None => Outgoing::Publish0 { req, publish },
                }),
            }
        }
    }

    /// MQTT 5: what a publish leaving the queue must pass: the broker's declared limits
    /// (learned after it was queued), and its Message Expiry Interval, less the time it
    /// waited (expired: never sent).
    fn ready_v5(&mut self, req: RequestId, msg: &mut Message) -> Result<(), RequestError> {
        let queued_at = self.v5.as_deref_mut().and_then(|v5| {
            if v5.expiry_clocks.is_empty() {
                None
            } else {
                v5.expiry_clocks.remove(&req)
            }
        });
        if let Some(v5) = self.v5.as_deref() {
            v5.check_publish(msg).map_err(RequestError::Refused)?;
        }
        if let (Some(at), Some(now), Some(props)) =
            (queued_at, self.now, msg.properties.as_deref_mut())
            && let Some(expiry) = props.message_expiry_interval
        {
            let waited = now.saturating_duration_since(at).as_secs();
            let left = u64::from(expiry).saturating_sub(waited);
            if left == 0 {
                return Err(RequestError::Expired);
            }
            props.message_expiry_interval = Some(u32::try_from(left).unwrap_or(expiry));
        }
        Ok(())
    }

    fn start_flight(&mut self, id: PacketId, req: RequestId, packet: Packet) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let expires_at = match &packet {
            Packet::PublishV5(p) => p
                .properties
                .message_expiry_interval
                .zip(self.now)
                .map(|(secs, now)| now + Duration::from_secs(secs.into())),
            _ => None,
        };
        self.inflight.insert(Slot {
            id,
            req,
            seq,
            sent: false,
            ever_sent: false,
            expires_at,
            packet,
        });
        self.outbox.push_back(Outgoing::Slot(id));
    }

    /// A packet id not in flight [MQTT-2.3.1-2]; `None` when all 65,535 are.
    fn allocate_id(&mut self) -> Option<PacketId> {
        let inflight = &self.inflight;
        let ring = PacketIdAllocator::ring_for(self.config.max_inflight);
        self.ids
            .allocate(ring, inflight.len(), |id| inflight.contains(id))
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
                Packet::Publish(_) | Packet::PublishV5(_) => {
                    let Some(p) = slot_publish(&slot.packet) else {
                        continue;
                    };
                    let mut publish = p.clone();
                    publish.dup = false;
                    let properties = match &slot.packet {
                        Packet::PublishV5(p) => stored_properties(Some(&p.properties)),
                        _ => None,
                    };
                    snapshot.apply(PersistOp::Publish {
                        seq,
                        publish,
                        properties,
                    });
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

    /// Whether one more QoS 1/2 publish may go in flight: within our window and, at MQTT 5,
    /// the broker's Receive Maximum [MQTT-4.9.0-2], [MQTT-3.3.4-7].
    fn window_open(&self) -> bool {
        let mut window = self.config.max_inflight.max(1);
        if let Some(v5) = self.v5.as_deref() {
            window = window.min(v5.caps.receive_maximum.max(1));
        }
        self.inflight.publishes() < usize::from(window) && self.inflight.len() < ID_SPACE
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
    fn keep_alive_configured(&self) -> (u16, Duration) {
        let ka = self
            .config
            .keep_alive
            .min(Duration::from_secs(MAX_KEEP_ALIVE_SECS));
        let secs = ka.as_secs() + u64::from(ka.subsec_nanos() > 0);
        (u16::try_from(secs).unwrap_or(u16::MAX), ka)
    }

    /// The keepalive in use: the broker's Server Keep Alive when its CONNACK had one
    /// [MQTT-3.2.2-21], else ours.
    fn keep_alive(&self) -> Duration {
        let (_, ours) = self.keep_alive_configured();
        match self.v5.as_deref() {
            Some(v5) if v5.caps_known => v5.caps.keep_alive(ours),
            _ => ours,
        }
    }

    /// Re-arms the keepalive timer from the last send and receive [MQTT-3.1.2-23]: a probe
    /// goes out when either has been quiet for the interval, so a link that swallows our
    /// writes is noticed too.
    fn arm_keepalive(&mut self) {
        let ka = self.keep_alive();
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
    ///
    /// At MQTT 5 a DISCONNECT with the reason code for the violation (0x81, 0x82, 0x93,
    /// 0x94, 0x95, 0x99 ...) is queued first (§4.13.1): the driver sends what
    /// `poll_transmit` hands out before it closes the transport.
    fn violation(&mut self, error: ProtocolError) -> Result<(), ProtocolError> {
        let connected = self.state.is_connected();
        // [MQTT-4.8.0-1] close the connection.
        self.end_connection(DisconnectReason::Protocol(error.clone()));
        if self.v5.is_some() && connected {
            self.outbox
                .push_back(Outgoing::Farewell(error.disconnect_reason()));
        }
        Err(error)
    }

    /// Whether the session state ends with the connection: clean session in 3.1 / 3.1.1;
    /// at MQTT 5 a Session Expiry Interval of 0 [MQTT-3.1.2-23] (the value our DISCONNECT
    /// set, else the broker's CONNACK value, else ours).
    fn session_ends_with_connection(&self) -> bool {
        match self.v5.as_deref() {
            Some(v5) => v5.session_expiry(&self.config) == 0,
            None => self.config.clean_session,
        }
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

        let clean = self.session_ends_with_connection();
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
                            properties: None,
                        },
                    }))
                }
                Outgoing::Publish0V5 { req, publish } => {
                    let PublishV5 {
                        publish,
                        properties,
                    } = *publish;
                    self.restart_expiry(req, &properties);
                    requeued.push(Queued::Publish(QueuedPublish {
                        req,
                        msg: Message {
                            qos: QoS::AtMostOnce,
                            retain: publish.retain,
                            topic: publish.topic,
                            payload: publish.payload,
                            properties: Some(Box::new(properties)),
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
                    let (publish, properties) = match slot.packet {
                        Packet::Publish(p) => (Some(p), None),
                        Packet::PublishV5(p) => {
                            let PublishV5 {
                                publish,
                                properties,
                            } = *p;
                            self.restart_expiry(req, &properties);
                            (Some(publish), Some(Box::new(properties)))
                        }
                        packet => {
                            match queued_control(req, packet) {
                                Some(control) => requeued.push(Queued::Control(control)),
                                None => self.events.push_back(Event::Failed {
                                    id: req,
                                    error: RequestError::SessionLost,
                                }),
                            }
                            (None, None)
                        }
                    };
                    if let Some(p) = publish {
                        requeued.push(Queued::Publish(QueuedPublish {
                            req,
                            msg: Message {
                                qos: p.qos(),
                                retain: p.retain,
                                topic: p.topic,
                                payload: p.payload,
                                properties,
                            },
                        }));
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

/// The request error for a packet of ours that could not be sent.
fn send_error(e: SendError) -> RequestError {
    match e {
        SendError::Encode(e) => RequestError::Encode(e),
        SendError::TooLarge { len, max } => RequestError::PacketTooLarge { len, max },
    }
}

/// The PUBLISH packet for a message (MQTT 5 form when it has properties).
fn publish_packet(msg: &Message, id: Option<PacketId>) -> Packet {
    let qos_pid = match (msg.qos, id) {
        (QoS::AtLeastOnce, Some(id)) => QosPid::AtLeastOnce(id),
        (QoS::ExactlyOnce, Some(id)) => QosPid::ExactlyOnce(id),
        (QoS::AtLeastOnce, None) => QosPid::AtLeastOnce(ANY_ID),
        (QoS::ExactlyOnce, None) => QosPid::ExactlyOnce(ANY_ID),
        _ => QosPid::AtMostOnce,
    };
    let publish = Publish {
        dup: false,
        qos_pid,
        retain: msg.retain,
        topic: msg.topic.clone(),
        payload: msg.payload.clone(),
    };
    match &msg.properties {
        Some(p) => Packet::PublishV5(Box::new(PublishV5 {
            publish,
            properties: (**p).clone(),
        })),
        None => Packet::Publish(publish),
    }
}

/// The PUBLISH held by an in-flight packet, with or without MQTT 5 properties.
fn slot_publish(packet: &Packet) -> Option<&Publish> {
    match packet {
        Packet::Publish(p) => Some(p),
        Packet::PublishV5(p) => Some(&p.publish),
        _ => None,
    }
}

/// A SUBSCRIBE or UNSUBSCRIBE taken out of flight, as the queued command it came from.
fn queued_control(req: RequestId, packet: Packet) -> Option<QueuedControl> {
    let control = match packet {
        Packet::Subscribe(s) => Control::Subscribe(s.filters),
        Packet::SubscribeV5(s) => Control::SubscribeV5(Box::new((s.filters, s.properties))),
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

/// A publish's MQTT 5 properties as the store keeps them: without a Topic Alias (the stored
/// topic is whole, and an alias means nothing on the next connection).
fn stored_properties(properties: Option<&PublishProperties>) -> Option<Box<PublishProperties>> {
    properties.map(|p| {
        let mut p = p.clone();
        p.topic_alias = None;
        Box::new(p)
    })
}
