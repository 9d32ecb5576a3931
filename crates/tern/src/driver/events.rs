//! What the driver hands the application: the session's events turned into client events and
//! completions, the backlog behind a full event channel, and the acknowledgement of QoS 1/2
//! messages once the application has taken them.

use std::collections::VecDeque;

use std::sync::Arc;

use tern_proto::packet::ProtocolLevel;
use tern_proto::session::{AckToken, Event as SessionEvent, RequestId};
use tern_proto::{SubAckReasonCode, SubscribeReturnCode, UnsubAckReasonCode};

use super::requests::{Waiter, plain, published, reason_codes, return_codes, unsubscribed};
use super::{Driver, Link, Stage};
use crate::chan;
use crate::client::{Event, Message, Outcome};
use crate::options::Protocol;
use crate::v5::{SubAck, UnsubAck};

/// QoS 1/2 messages emitted and not yet taken by the application, oldest first, by their
/// position in the event stream (counted from 1). `None` when empty (boxed: 8 bytes in every
/// driver's future instead of 32, for a queue that is empty unless messages are arriving).
#[allow(clippy::box_collection)]
pub(super) type Unacked = Option<Box<VecDeque<(u64, AckToken)>>>;

/// Whether `ev` carries a message from the broker: a [`Event::Message`], or the response
/// of a callback-API request (an [`Outcome::Response`] completion). Such events are never
/// dropped behind a full event channel and count towards pausing the socket's reads.
fn holds_message(ev: &Event) -> bool {
    matches!(
        ev,
        Event::Message(_)
            | Event::Completed {
                result: Ok(Outcome::Response(_)),
                ..
            }
    )
}

/// The position of the oldest message in `unacked` (0: none). A function of the field, not
/// of the driver: the `select!` branch that waits for it borrows only this field.
pub(super) fn awaiting_take(unacked: &Unacked) -> u64 {
    unacked
        .as_deref()
        .and_then(VecDeque::front)
        .map_or(0, |&(position, _)| position)
}

/// Events waiting for room in the event channel, oldest first: allocated only while the
/// application lags (8 bytes in every driver's future instead of 40).
#[derive(Default)]
pub(super) struct Backlog(Option<Box<BacklogQueue>>);

#[derive(Default)]
pub(super) struct BacklogQueue {
    events: VecDeque<Event>,
    /// How many of `events` are [`Event::Message`]s.
    messages: usize,
}

impl Backlog {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub(super) fn len(&self) -> usize {
        self.0.as_deref().map_or(0, |q| q.events.len())
    }

    /// How many waiting events are messages.
    pub(super) fn messages(&self) -> usize {
        self.0.as_deref().map_or(0, |q| q.messages)
    }

    fn push_back(&mut self, ev: Event) {
        let queue = self.0.get_or_insert_default();
        queue.messages += usize::from(holds_message(&ev));
        queue.events.push_back(ev);
    }

    fn push_front(&mut self, ev: Event) {
        let queue = self.0.get_or_insert_default();
        queue.messages += usize::from(holds_message(&ev));
        queue.events.push_front(ev);
    }

    pub(super) fn pop_front(&mut self) -> Option<Event> {
        let queue = self.0.as_deref_mut()?;
        let ev = queue.events.pop_front();
        if ev.as_ref().is_some_and(holds_message) {
            queue.messages -= 1;
        }
        if queue.events.is_empty() {
            self.0 = None;
        }
        ev
    }

    /// Removes the oldest event that is not a message; its index in the backlog.
    fn remove_oldest_status(&mut self) -> Option<usize> {
        let queue = self.0.as_deref_mut()?;
        let index = queue.events.iter().position(|ev| !holds_message(ev))?;
        queue.events.remove(index);
        if queue.events.is_empty() {
            self.0 = None;
        }
        Some(index)
    }

    fn clear(&mut self) {
        self.0 = None;
    }
}

impl Driver {
    /// Hands `ev` to the application (or queues it in `pending`); false when nobody will
    /// read it (the `Events` is gone).
    pub(super) fn emit(&mut self, ev: Event) -> bool {
        self.woke_app = true;
        self.turn_events = self.turn_events.saturating_add(1);
        if self.pending.is_empty() {
            match self.events.try_send(ev) {
                Ok(()) => true,
                Err(chan::TrySendError::Closed(_)) => false,
                Err(chan::TrySendError::Full(ev)) => {
                    self.queue_event(ev);
                    true
                }
            }
        } else {
            self.queue_event(ev);
            true
        }
    }

    /// Queues `ev` behind a full event channel, under the policy documented on
    /// [`ConnectOptions::event_capacity`](crate::ConnectOptions::event_capacity): messages
    /// always wait (and reading from the socket pauses while `event_capacity` of them do);
    /// other events wait up to `event_capacity` of them, beyond which the oldest non-message
    /// event is dropped and counted ([`Events::dropped`](crate::Events::dropped)), so a
    /// client whose application never reads `Events` neither stalls nor grows.
    fn queue_event(&mut self, ev: Event) {
        let is_message = holds_message(&ev);
        if !is_message
            && self.pending.len() - self.pending.messages() >= self.options.event_capacity
            && let Some(index) = self.pending.remove_oldest_status()
        {
            // Messages queued behind the dropped event moved up one place: their positions
            // (for acknowledging once taken) too.
            let position = self.events.sent() + index as u64 + 1;
            if let Some(unacked) = self.unacked.as_deref_mut() {
                for (p, _) in unacked.iter_mut().filter(|(p, _)| *p > position) {
                    *p -= 1;
                }
            }
            self.events.note_dropped();
            tracing::debug!(
                target: super::TARGET,
                "event channel full: dropped the oldest non-message event"
            );
        }
        self.pending.push_back(ev);
    }

    /// Acknowledges, in order, every QoS 1/2 message the application has taken from the
    /// event channel since the last call: a message is acknowledged only once the
    /// application has it.
    pub(super) fn ack_taken(&mut self) {
        let Some(unacked) = self.unacked.as_deref_mut() else {
            return;
        };
        let taken = self.events.taken();
        // Bounded: each iteration removes one entry.
        while let Some(&(position, token)) = unacked.front()
            && position <= taken
        {
            unacked.pop_front();
            self.session.ack(token);
        }
        if unacked.is_empty() {
            self.unacked = None;
        }
    }

    /// Moves waiting events into the channel: the first with `permit` (`None`: the
    /// application dropped its `Events`), the rest while there is room.
    pub(super) fn send_pending(&mut self, permit: Option<chan::Permit<'_, Event>>) {
        let Some(permit) = permit else {
            // The application dropped its Events: nobody will read them.
            self.pending.clear();
            return;
        };
        if let Some(ev) = self.pending.pop_front() {
            permit.send(ev);
        }
        while let Some(ev) = self.pending.pop_front() {
            match self.events.try_send(ev) {
                Ok(()) => {}
                Err(chan::TrySendError::Full(ev)) => {
                    self.pending.push_front(ev);
                    break;
                }
                Err(chan::TrySendError::Closed(_)) => {
                    self.pending.clear();
                    break;
                }
            }
        }
    }

    /// SUBACK for request `id`: completes its waiter and records what was granted.
    fn subscribed(
        &mut self,
        id: RequestId,
        granted: Vec<SubscribeReturnCode>,
        reasons: Vec<SubAckReasonCode>,
        reason_string: Option<String>,
    ) {
        match self.waiters.remove(&id) {
            Some(Waiter::Subscribe(reply, filters)) => {
                self.record_subscriptions(&plain(&filters), &reasons, None);
                self.complete(reply, Ok(granted), Outcome::Subscribed);
            }
            Some(Waiter::SubscribeV5(reply, filters, subscription_id)) => {
                self.record_subscriptions(&filters, &reasons, subscription_id);
                for ((filter, _), reason) in filters.iter().zip(&reasons) {
                    if reason.is_error() {
                        self.remove_route(subscription_id, filter);
                    }
                }
                let ack = SubAck {
                    reasons,
                    reason_string,
                    subscription_id,
                };
                self.complete(reply, Ok(ack), |a| Outcome::SubscribedV5(Box::new(a)));
            }
            Some(Waiter::Resubscribe(filters, subscription_id)) => {
                self.record_subscriptions(&filters, &reasons, subscription_id);
            }
            _ => {}
        }
    }

    /// UNSUBACK for request `id` (`v5`: its reason codes and Reason String).
    fn unsubscribed(
        &mut self,
        id: RequestId,
        v5: Option<(Vec<UnsubAckReasonCode>, Option<String>)>,
    ) {
        let filters = match self.waiters.remove(&id) {
            Some(Waiter::Unsubscribe(reply, filters)) => {
                self.complete(reply, Ok(()), unsubscribed);
                filters
            }
            Some(Waiter::UnsubscribeV5(reply, filters)) => {
                let (reasons, reason_string) =
                    v5.unwrap_or_else(|| (vec![UnsubAckReasonCode::Success; filters.len()], None));
                let ack = UnsubAck {
                    reasons,
                    reason_string,
                };
                self.complete(reply, Ok(ack), |a| Outcome::UnsubscribedV5(Box::new(a)));
                filters
            }
            _ => return,
        };
        for f in &filters {
            self.subscriptions.remove(f);
        }
    }

    /// Converts session events into client events and completions, and notes on `link`
    /// what they say about the connection (CONNACK accepted, the end). Returns whether
    /// there were any.
    pub(super) fn drain_session_events(&mut self, link: &mut Link<'_>) -> bool {
        // Write-ahead: a QoS 2 message is delivered only once its id is durably held. Ops
        // still in the session hold its events back by themselves; ops pulled into the store
        // but not yet durable (a failed write) must hold them back here.
        if !self.durable() {
            return false;
        }
        let mut any = false;
        while let Some(ev) = self.session.poll_event() {
            any = true;
            match ev {
                SessionEvent::Connected { session_present } => {
                    // Enhanced authentication: the broker's final data must verify, or the
                    // attempt fails (DISCONNECT 0x87 goes out; the connection never counts
                    // as established).
                    if !self.auth_connected(link) {
                        continue;
                    }
                    link.stage = Stage::Connected;
                    let reconnected = self.reconnect.on_connected();
                    if let Some(reply) = self.connect_reply.take() {
                        let _ = reply.send(Ok(session_present));
                    }
                    if reconnected && !session_present {
                        self.resubscribe();
                    }
                    self.rr_connected(session_present, reconnected);
                    let capabilities = self.session.server_capabilities().cloned().map(Arc::new);
                    let protocol = match self.session.config().level {
                        ProtocolLevel::V3_1 => Protocol::V3_1,
                        ProtocolLevel::V3_1_1 => Protocol::V3_1_1,
                        ProtocolLevel::V5 => Protocol::V5,
                    };
                    self.emit(Event::Connected {
                        session_present,
                        reconnected,
                        broker: link.broker.clone(),
                        protocol,
                        capabilities,
                    });
                }
                SessionEvent::Published(id) => {
                    if let Some(Waiter::Publish(reply)) = self.waiters.remove(&id) {
                        self.complete(reply, Ok(()), published);
                    }
                }
                SessionEvent::Subscribed { id, granted } => {
                    let reasons = reason_codes(&granted);
                    self.subscribed(id, granted, reasons, None);
                }
                SessionEvent::SubscribedV5 {
                    id,
                    reasons,
                    properties,
                } => {
                    let granted = return_codes(&reasons);
                    let reason_string = properties.reason_string.map(|r| r.as_str().to_owned());
                    self.subscribed(id, granted, reasons, reason_string);
                }
                SessionEvent::Unsubscribed(id) => self.unsubscribed(id, None),
                SessionEvent::UnsubscribedV5 {
                    id,
                    reasons,
                    properties,
                } => {
                    let reason_string = properties.reason_string.map(|r| r.as_str().to_owned());
                    self.unsubscribed(id, Some((reasons, reason_string)));
                }
                SessionEvent::Failed { id, error } => match self.waiters.remove(&id) {
                    Some(Waiter::Publish(reply)) => {
                        self.complete(reply, Err(error.into()), published);
                    }
                    Some(Waiter::Subscribe(reply, _)) => {
                        self.complete(reply, Err(error.into()), Outcome::Subscribed);
                    }
                    Some(Waiter::Unsubscribe(reply, _)) => {
                        self.complete(reply, Err(error.into()), unsubscribed);
                    }
                    Some(Waiter::SubscribeV5(reply, filters, id)) => {
                        for (filter, _) in &filters {
                            self.remove_route(id, filter);
                        }
                        self.complete(reply, Err(error.into()), |a| {
                            Outcome::SubscribedV5(Box::new(a))
                        });
                    }
                    Some(Waiter::UnsubscribeV5(reply, _)) => {
                        self.complete(reply, Err(error.into()), |a| {
                            Outcome::UnsubscribedV5(Box::new(a))
                        });
                    }
                    Some(Waiter::Request(corr)) => self.rr_failed(&corr, error.into()),
                    Some(Waiter::Resubscribe(..)) | None => {}
                },
                SessionEvent::Message {
                    publish: p,
                    properties,
                    ack,
                } => {
                    let (qos, packet_id) = (p.qos(), p.packet_id());
                    let manual = self.options.manual_ack;
                    let msg = Message {
                        topic: p.topic,
                        payload: p.payload,
                        qos,
                        retain: p.retain,
                        dup: p.dup,
                        packet_id,
                        properties,
                        ack: ack.filter(|_| manual),
                    };
                    // A response to a request: handed to it (which owns it), acknowledged.
                    let msg = match self.rr_deliver(msg, ack) {
                        Ok(()) => continue,
                        Err(msg) => msg,
                    };
                    // A message of a per-subscription stream: acknowledged once taken from
                    // it (by the stream), or by the application with manual acknowledgement.
                    let msg = match self.route(msg, ack.filter(|_| !manual)) {
                        Ok(()) => continue,
                        Err(msg) => msg,
                    };
                    let kept = self.emit(Event::Message(msg));
                    // Acknowledged once taken (never, if nobody reads the events). Its
                    // position: behind everything in the channel and in `pending`.
                    if let Some(token) = ack
                        && kept
                        && !manual
                    {
                        let position = self.events.sent() + self.pending.len() as u64;
                        self.unacked
                            .get_or_insert_default()
                            .push_back((position, token));
                    }
                }
                SessionEvent::Auth { reason, properties } => {
                    self.on_auth(link, reason, &properties);
                }
                SessionEvent::Disconnected(reason) => {
                    link.ended.get_or_insert(reason);
                }
                _ => {}
            }
        }
        any
    }
}
