//! Acknowledgements the session owes the broker for its QoS 1/2 PUBLISHes, held until the
//! application has each message.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::packet::PacketId;

use super::Outgoing;

/// A number for a new delivery, unique in the process: a token can only ever acknowledge
/// the delivery it was made for, even when handed to another session by mistake (and no
/// session carries a counter of its own). Never 0 or `u64::MAX` (2^64 deliveries away).
pub(super) fn next_delivery() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// An acknowledgement the current connection owes the broker for one of its PUBLISHes.
#[derive(Debug)]
pub(super) struct PendingAck {
    /// The delivery it acknowledges (see [`AckToken`](super::AckToken)); `u64::MAX` for a re-sent
    /// QoS 2 PUBLISH whose message was acknowledged before.
    pub(super) delivery: u64,
    /// The packet that acknowledges it (PUBACK or PUBREC).
    pub(super) packet: Outgoing,
    /// The application has the message: it may leave once the ones before it have.
    pub(super) acked: bool,
}

/// What the session tracks of the broker's QoS 1/2 messages between their delivery and
/// their acknowledgement. Boxed in the session and allocated at the first such message: a
/// publish-only client never pays for it.
#[derive(Debug, Default)]
pub(super) struct Acks {
    /// Owed on the current connection, in the order the PUBLISHes arrived; they leave from
    /// the front once acked [MQTT-4.6.0-2], [MQTT-4.6.0-3].
    pub(super) owed: VecDeque<PendingAck>,
    /// The broker's QoS 2 ids delivered and not acknowledged yet, with the delivery that
    /// carried them: a re-sent PUBLISH with one of these ids (on this connection or a later
    /// one) is not delivered again; its PUBREC waits for that delivery's ack. Kept across
    /// connections, not persisted (after a crash the message was never acknowledged, and
    /// the broker delivers it again).
    pub(super) delivered_qos2: BTreeMap<PacketId, u64>,
}

impl Acks {
    /// Nothing owed and no QoS 2 delivery awaiting its ack.
    pub(super) fn is_empty(&self) -> bool {
        self.owed.is_empty() && self.delivered_qos2.is_empty()
    }

    /// Marks the acknowledgement of `delivery` as ready to leave; false if none is owed
    /// (acked before, or owed on a connection that ended).
    pub(super) fn mark(&mut self, delivery: u64) -> bool {
        match self
            .owed
            .iter_mut()
            .find(|a| a.delivery == delivery && !a.acked)
        {
            Some(a) => {
                a.acked = true;
                true
            }
            None => false,
        }
    }

    /// Takes the acknowledgements at the front that may leave, in order.
    pub(super) fn pop_ready(&mut self) -> Option<Outgoing> {
        if self.owed.front().is_some_and(|a| a.acked) {
            self.owed.pop_front().map(|a| a.packet)
        } else {
            None
        }
    }
}
