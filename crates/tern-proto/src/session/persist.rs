//! What of a session must outlive the process: [`PersistOp`] records, pulled with
//! [`Session::poll_persist`](super::Session::poll_persist), and the [`Snapshot`] they add up
//! to, given back to [`Session::restore`](super::Session::restore) after a restart.
//!
//! Only the flows whose loss or repetition the protocol cannot repair are kept: our QoS 1/2
//! publishes not yet completed (so they are re-sent, never lost), the stage of our QoS 2
//! publishes (so a PUBLISH is never re-sent after PUBREC [MQTT-4.3.3-1]), and the broker's
//! QoS 2 ids awaiting PUBREL (so a re-sent PUBLISH is not delivered twice [MQTT-4.3.3-2]).
//! SUBSCRIBE/UNSUBSCRIBE in flight, QoS 0 and commands still queued are not kept.

use std::collections::{BTreeMap, BTreeSet};

use crate::packet::{PacketId, Publish, PublishProperties};

/// A change to the durable part of a session, in the order the session made it.
///
/// The write-ahead rule: while any op is pending, [`Session::poll_transmit`] hands out no
/// packet and [`Session::poll_event`] no event, so a driver that makes every op it pulled
/// durable before polling those can never send a packet, or tell the application something,
/// that a crash would make the store contradict.
///
/// [`Session::poll_transmit`]: super::Session::poll_transmit
/// [`Session::poll_event`]: super::Session::poll_event
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistOp {
    /// An outgoing QoS 1/2 PUBLISH took its packet id (inside `publish`) and is about to be
    /// sent for the first time. `seq` orders re-sends [MQTT-4.6.0-1].
    Publish {
        /// Order in which the publish left the command queue.
        seq: u64,
        /// The packet, DUP clear, never with a Topic Alias: the topic is always whole.
        publish: Publish,
        /// Its MQTT 5 properties (none below level 5), without a Topic Alias; a restored
        /// publish is re-sent with them.
        properties: Option<Box<PublishProperties>>,
    },
    /// The broker sent PUBREC for our QoS 2 publish `id`: from now on PUBREL is (re)sent,
    /// never the PUBLISH [MQTT-4.3.3-1].
    PubRel {
        /// The flow's original order.
        seq: u64,
        /// Its packet id.
        id: PacketId,
    },
    /// Our publish `id` completed (PUBACK, PUBCOMP) or was abandoned; the id is free.
    Done(PacketId),
    /// The broker's QoS 2 PUBLISH `id` was accepted and is about to be delivered: until
    /// PUBREL, a PUBLISH with this id is a re-send [MQTT-4.3.3-2].
    Received(PacketId),
    /// PUBREL arrived for the broker's QoS 2 id: the id may carry a new message next.
    Released(PacketId),
    /// The broker reported no session: every broker QoS 2 id is forgotten.
    ForgetIncoming,
    /// The session was discarded (clean session): nothing is kept.
    Clear,
}

/// One of our QoS 1/2 publishes in flight, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutgoingFlow {
    /// Awaiting PUBACK (QoS 1) or PUBREC (QoS 2): the PUBLISH is re-sent with DUP set.
    Publish {
        /// Original order.
        seq: u64,
        /// The packet.
        publish: Publish,
        /// Its MQTT 5 properties, if any.
        properties: Option<Box<PublishProperties>>,
    },
    /// QoS 2 awaiting PUBCOMP: PUBREL is re-sent.
    PubRel {
        /// Original order.
        seq: u64,
        /// Packet id.
        id: PacketId,
    },
}

impl OutgoingFlow {
    /// The flow's original order.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Publish { seq, .. } | Self::PubRel { seq, .. } => *seq,
        }
    }

    /// The flow's packet id (`None` only for a QoS 0 publish, which a snapshot never
    /// holds).
    pub fn id(&self) -> Option<PacketId> {
        match self {
            Self::Publish { publish, .. } => publish.packet_id(),
            Self::PubRel { id, .. } => Some(*id),
        }
    }
}

/// The durable part of a session: what [`PersistOp`]s add up to.
///
/// A store keeps one, applies every op it makes durable, and rewrites it as ops
/// ([`Snapshot::ops`]) when it compacts; after a restart it replays its records into a new
/// one and hands it to [`Session::restore`](super::Session::restore).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// By packet id: every op names one, so replay is a map update.
    outgoing: BTreeMap<PacketId, OutgoingFlow>,
    incoming: BTreeSet<PacketId>,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one op. Ops are idempotent and order-sensitive, like the log they come from:
    /// a later op for an id overrides an earlier one. A `Publish` at QoS 0 (which no session
    /// emits) is ignored.
    pub fn apply(&mut self, op: PersistOp) {
        match op {
            PersistOp::Publish {
                seq,
                publish,
                properties,
            } => {
                if let Some(id) = publish.packet_id() {
                    self.outgoing.insert(
                        id,
                        OutgoingFlow::Publish {
                            seq,
                            publish,
                            properties,
                        },
                    );
                }
            }
            PersistOp::PubRel { seq, id } => {
                self.outgoing.insert(id, OutgoingFlow::PubRel { seq, id });
            }
            PersistOp::Done(id) => {
                self.outgoing.remove(&id);
            }
            PersistOp::Received(id) => {
                self.incoming.insert(id);
            }
            PersistOp::Released(id) => {
                self.incoming.remove(&id);
            }
            PersistOp::ForgetIncoming => self.incoming.clear(),
            PersistOp::Clear => {
                self.outgoing.clear();
                self.incoming.clear();
            }
        }
    }

    /// Nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.outgoing.is_empty() && self.incoming.is_empty()
    }

    /// Our flows in flight, in their original order.
    pub fn outgoing(&self) -> Vec<&OutgoingFlow> {
        let mut flows: Vec<&OutgoingFlow> = self.outgoing.values().collect();
        flows.sort_by_key(|f| f.seq());
        flows
    }

    /// The broker's QoS 2 ids awaiting PUBREL, in id order.
    pub fn incoming(&self) -> impl Iterator<Item = PacketId> + '_ {
        self.incoming.iter().copied()
    }

    /// The ops that rebuild this snapshot from an empty one (what a compacted log holds):
    /// our flows in original order, then the broker's ids.
    pub fn ops(&self) -> Vec<PersistOp> {
        let outgoing = self.outgoing().into_iter().map(|flow| match flow {
            OutgoingFlow::Publish {
                seq,
                publish,
                properties,
            } => PersistOp::Publish {
                seq: *seq,
                publish: publish.clone(),
                properties: properties.clone(),
            },
            OutgoingFlow::PubRel { seq, id } => PersistOp::PubRel { seq: *seq, id: *id },
        });
        outgoing
            .chain(self.incoming().map(PersistOp::Received))
            .collect()
    }
}
