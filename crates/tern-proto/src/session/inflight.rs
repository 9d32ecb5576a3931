//! Our packets awaiting acknowledgement, indexed by packet id.

use std::time::Instant;

use crate::packet::{Packet, PacketId};

use super::RequestId;

/// One packet of ours awaiting its acknowledgement.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    /// Its packet id (also inside `packet`).
    pub(super) id: PacketId,
    /// The command it belongs to.
    pub(super) req: RequestId,
    /// Order in which the command first left the queue; re-sends on resume follow it
    /// [MQTT-4.6.0-1].
    pub(super) seq: u64,
    /// Handed to `poll_transmit` on the current connection. An acknowledgement for a packet
    /// not sent on this connection is a protocol violation.
    pub(super) sent: bool,
    /// Handed to `poll_transmit` on any connection.
    pub(super) ever_sent: bool,
    /// MQTT 5: when a PUBLISH with a Message Expiry Interval expires (the interval it left
    /// the queue with, from then): a re-send carries what is left [MQTT-3.3.2-6]. `None`
    /// without an interval, and for a publish restored from a store (the records hold no
    /// time).
    pub(super) expires_at: Option<Instant>,
    /// What to (re)send: PUBLISH (QoS 1 awaiting PUBACK, QoS 2 awaiting PUBREC), PUBREL
    /// (QoS 2 awaiting PUBCOMP; the PUBLISH is gone and can never be re-sent
    /// [MQTT-4.3.3-1]), SUBSCRIBE or UNSUBSCRIBE. Kept as a `Packet` so transmitting encodes
    /// it by reference, without cloning.
    pub(super) packet: Packet,
}

impl Slot {
    /// An outgoing QoS 1/2 publish (still PUBLISH, or at the PUBREL stage): what the
    /// in-flight window counts.
    pub(super) fn is_publish(&self) -> bool {
        matches!(
            self.packet,
            Packet::Publish(_) | Packet::PublishV5(_) | Packet::PubRel(_)
        )
    }
}

/// Every packet of ours in flight.
///
/// Design: a table indexed by packet id (`index[id]` is the slot's position + 1 in a dense
/// `slots` vector, 0 when free). Every acknowledgement names an id, so lookup and removal are
/// O(1) without hashing; the allocator asks "is this id in use?" for each candidate, also
/// O(1); and the storage stays proportional to what is in flight (the index is 2 bytes per
/// id, grown on demand up to the allocator's ring: 2 KiB for a window of up to 256), not to
/// the id space, while `slots` stays contiguous
/// for the rare full walks (resume, clean-session failure). A map keyed by id would hash on
/// the hot path; rumqttc's `Vec<Option<Publish>>` sized by the window ties ids to window
/// positions, which breaks when SUBSCRIBEs, outside the window, need ids too.
#[derive(Debug, Default)]
pub(super) struct Inflight {
    index: Vec<u16>,
    slots: Vec<Slot>,
    publishes: usize,
}

impl Inflight {
    /// Whether `id` is in flight.
    pub(super) fn contains(&self, id: PacketId) -> bool {
        self.position(id).is_some()
    }

    fn position(&self, id: PacketId) -> Option<usize> {
        match self.index.get(usize::from(id.get())) {
            Some(&p) if p > 0 => Some(usize::from(p) - 1),
            _ => None,
        }
    }

    /// The slot for `id`.
    pub(super) fn get(&self, id: PacketId) -> Option<&Slot> {
        self.position(id).map(|p| &self.slots[p])
    }

    /// The slot for `id`, mutably.
    pub(super) fn get_mut(&mut self, id: PacketId) -> Option<&mut Slot> {
        self.position(id).map(|p| &mut self.slots[p])
    }

    /// Adds a slot; its id must be free (the allocator guarantees it).
    pub(super) fn insert(&mut self, slot: Slot) {
        let i = usize::from(slot.id.get());
        debug_assert!(!self.contains(slot.id), "packet id {} in use", slot.id);
        if self.index.len() <= i {
            self.index.resize(i + 1, 0);
        }
        if slot.is_publish() {
            self.publishes += 1;
        }
        self.slots.push(slot);
        // At most 65,535 slots (one per non-zero id), so position + 1 fits in u16.
        self.index[i] = u16::try_from(self.slots.len()).unwrap_or(u16::MAX);
    }

    /// Removes and returns the slot for `id`.
    pub(super) fn remove(&mut self, id: PacketId) -> Option<Slot> {
        let p = self.position(id)?;
        self.index[usize::from(id.get())] = 0;
        let slot = self.slots.swap_remove(p);
        if let Some(moved) = self.slots.get(p) {
            // p < slots.len() <= 65,534 here, so p + 1 fits in u16.
            self.index[usize::from(moved.id.get())] = u16::try_from(p + 1).unwrap_or(u16::MAX);
        }
        if slot.is_publish() {
            self.publishes -= 1;
        }
        Some(slot)
    }

    /// Frees the table's storage if nothing is in flight.
    pub(super) fn release_if_empty(&mut self) {
        if self.slots.is_empty() {
            self.slots = Vec::new();
            self.index = Vec::new();
        }
    }

    /// Number of packets in flight (of every kind).
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Number of outgoing QoS 1/2 publishes in flight (PUBLISH or PUBREL stage).
    pub(super) fn publishes(&self) -> usize {
        self.publishes
    }

    /// Every id in flight, in the order the commands first left the queue.
    pub(super) fn ids_in_order(&self) -> Vec<PacketId> {
        let mut by_seq: Vec<(u64, PacketId)> = self.slots.iter().map(|s| (s.seq, s.id)).collect();
        by_seq.sort_unstable();
        by_seq.into_iter().map(|(_, id)| id).collect()
    }

    /// Marks every slot as not sent on the (new) current connection.
    pub(super) fn mark_unsent(&mut self) {
        for s in &mut self.slots {
            s.sent = false;
        }
    }

    /// Removes every slot, returning them in the order their commands left the queue.
    pub(super) fn drain_in_order(&mut self) -> Vec<Slot> {
        let mut slots = std::mem::take(&mut self.slots);
        slots.sort_unstable_by_key(|s| s.seq);
        self.index.fill(0);
        self.publishes = 0;
        slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(n: u16, seq: u64) -> Slot {
        let id = PacketId::new(n).unwrap();
        Slot {
            id,
            req: RequestId(seq),
            seq,
            sent: false,
            ever_sent: false,
            expires_at: None,
            packet: Packet::PubRel(id),
        }
    }

    #[test]
    fn removal_keeps_the_index_of_the_moved_slot_right() {
        let mut t = Inflight::default();
        t.insert(slot(7, 0));
        t.insert(slot(65_535, 1));
        t.insert(slot(3, 2));
        assert_eq!(t.publishes(), 3);
        assert_eq!(t.remove(PacketId::new(7).unwrap()).unwrap().seq, 0);
        assert_eq!(t.get(PacketId::new(3).unwrap()).unwrap().seq, 2);
        assert_eq!(t.get(PacketId::new(65_535).unwrap()).unwrap().seq, 1);
        assert!(!t.contains(PacketId::new(7).unwrap()));
        assert!(t.remove(PacketId::new(7).unwrap()).is_none());
        assert_eq!(t.len(), 2);
        assert_eq!(t.publishes(), 2);
    }

    #[test]
    fn ids_come_back_in_first_send_order_not_id_order() {
        let mut t = Inflight::default();
        t.insert(slot(65_535, 0));
        t.insert(slot(1, 1));
        t.insert(slot(2, 2));
        let ids: Vec<u16> = t.ids_in_order().iter().map(|i| i.get()).collect();
        assert_eq!(ids, [65_535, 1, 2]);
        let drained: Vec<u64> = t.drain_in_order().iter().map(|s| s.seq).collect();
        assert_eq!(drained, [0, 1, 2]);
        assert_eq!(t.len(), 0);
        assert!(!t.contains(PacketId::new(1).unwrap()));
    }
}
