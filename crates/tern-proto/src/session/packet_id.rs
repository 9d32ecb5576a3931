//! Packet identifiers: the allocator for our own ids, and a compact set for the broker's.

use crate::packet::PacketId;

/// Number of distinct packet ids (1..=65535).
pub(super) const ID_SPACE: usize = u16::MAX as usize;

/// The first id handed out; evaluated at compile time, so `1` being non-zero is checked there.
const FIRST_ID: PacketId = match PacketId::new(1) {
    Some(id) => id,
    None => panic!("1 is a valid packet id"),
};

/// The id after `id` on the ring `1..=ring` (an id above the ring wraps to 1 too).
fn successor(id: PacketId, ring: u16) -> PacketId {
    if id.get() >= ring {
        FIRST_ID
    } else {
        id.next()
    }
}

/// Hands out packet ids in increasing order around a ring `1..=ring`, skipping ids still in
/// use [MQTT-2.3.1-2]; only when every id of the ring is in use does one come from above it
/// (the lowest free).
///
/// Sequential rather than lowest-free: an id that was just released is not reused at once
/// (not before `ring - 1` others), so a late or duplicated acknowledgement from a confused
/// broker is unlikely to hit a new packet, and traces are easier to read. A ring rather than
/// the whole id space: the in-flight table is indexed by id, so a busy connection whose
/// window never empties would otherwise grow its index to all 65,535 ids (128 KiB) as the
/// ids advance; with a ring it stays at `2 × ring` bytes. The ring is the caller's (from its
/// window, [`ring_for`](Self::ring_for)), not stored: this sits in every session.
#[derive(Debug, Clone)]
pub(super) struct PacketIdAllocator {
    next: PacketId,
    /// Tests shrink or widen the ring regardless of the window.
    #[cfg(test)]
    ring_override: Option<u16>,
}

impl Default for PacketIdAllocator {
    fn default() -> Self {
        Self {
            next: FIRST_ID,
            #[cfg(test)]
            ring_override: None,
        }
    }
}

impl PacketIdAllocator {
    /// The ring a session with an in-flight window of `max_inflight` uses: four windows, at
    /// least 1,024 ids (2 KiB of index), so that an id comes back only after a thousand
    /// others.
    pub(super) fn ring_for(max_inflight: u16) -> u16 {
        u16::try_from((u32::from(max_inflight) * 4).max(1024)).unwrap_or(u16::MAX)
    }

    /// The next id of the ring `1..=ring` for which `in_use` is false, else the lowest free
    /// one above the ring, or `None` when all 65,535 are taken (`used` is how many are).
    /// Looks at most at 65,535 ids.
    pub(super) fn allocate(
        &mut self,
        ring: u16,
        used: usize,
        in_use: impl Fn(PacketId) -> bool,
    ) -> Option<PacketId> {
        if used >= ID_SPACE {
            return None;
        }
        let ring = self.ring(ring);
        for _ in 0..ring {
            let id = self.next;
            self.next = successor(id, ring);
            if !in_use(id) {
                return Some(id);
            }
        }
        // The whole ring is in use (SUBSCRIBEs beyond the window, say): the lowest free id
        // above it.
        (u32::from(ring) + 1..=u32::from(u16::MAX))
            .filter_map(|n| PacketId::new(u16::try_from(n).ok()?))
            .find(|&id| !in_use(id))
    }

    #[cfg(not(test))]
    #[allow(clippy::unused_self)]
    fn ring(&self, ring: u16) -> u16 {
        ring.max(1)
    }

    #[cfg(test)]
    fn ring(&self, ring: u16) -> u16 {
        self.ring_override.unwrap_or(ring).max(1)
    }

    /// Continues after `id` on `ring`: the next candidate is its successor (restore uses it
    /// so a restarted session does not reuse the ids it just recovered first).
    pub(super) fn resume_after(&mut self, id: PacketId, ring: u16) {
        self.next = successor(id, self.ring(ring));
    }

    /// Wraps to 1 after `last`, whatever the window.
    #[cfg(test)]
    pub(super) fn set_wrap_after(&mut self, last: u16) {
        self.ring_override = Some(last);
    }

    /// Makes `id` the next candidate (tests use it to start near the wrap).
    #[cfg(test)]
    pub(super) fn set_next(&mut self, id: PacketId) {
        self.next = id;
    }
}

/// A set of packet ids as a 65,536-bit bitmap (8 KiB): the broker's QoS 2 ids we have
/// answered with PUBREC and not yet seen PUBREL for.
///
/// Design: a bitmap, not a `HashSet`, because membership is tested on every incoming
/// QoS 2 PUBLISH and PUBREL and the size is bounded by the id space. It is allocated at the
/// first insert, so a client that never receives QoS 2 (and every idle connection) pays
/// nothing for it.
#[derive(Clone, Default)]
pub(super) struct IdSet {
    words: Option<Box<[u64; WORDS]>>,
    /// At most 65,535.
    len: u32,
}

/// 64-bit words in the bitmap: one bit per 16-bit value.
const WORDS: usize = (ID_SPACE + 1) / 64;

impl std::fmt::Debug for IdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdSet").field("len", &self.len).finish()
    }
}

impl IdSet {
    fn slot(id: PacketId) -> (usize, u64) {
        let n = usize::from(id.get());
        (n / 64, 1 << (n % 64))
    }

    /// Adds `id`; false if it was already present.
    pub(super) fn insert(&mut self, id: PacketId) -> bool {
        let words = self.words.get_or_insert_with(|| Box::new([0; WORDS]));
        let (word, bit) = Self::slot(id);
        let fresh = words[word] & bit == 0;
        if fresh {
            words[word] |= bit;
            self.len += 1;
        }
        fresh
    }

    /// Removes `id`; false if it was absent.
    pub(super) fn remove(&mut self, id: PacketId) -> bool {
        let (word, bit) = Self::slot(id);
        let Some(w) = self.words.as_mut().map(|words| &mut words[word]) else {
            return false;
        };
        let present = *w & bit != 0;
        if present {
            *w &= !bit;
            self.len -= 1;
        }
        present
    }

    /// Whether `id` is present.
    pub(super) fn contains(&self, id: PacketId) -> bool {
        let (word, bit) = Self::slot(id);
        self.words.as_ref().is_some_and(|w| w[word] & bit != 0)
    }

    /// Every id present, in order.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = PacketId> + '_ {
        (1..=u16::MAX)
            .filter_map(PacketId::new)
            .filter(|id| self.contains(*id))
    }

    /// Number of ids present.
    pub(super) fn len(&self) -> usize {
        self.len as usize
    }

    /// Frees the bitmap if no id is present (it is allocated again at the next insert).
    pub(super) fn release_if_empty(&mut self) {
        if self.len == 0 {
            self.words = None;
        }
    }

    /// Removes every id; false if there was none.
    pub(super) fn clear(&mut self) -> bool {
        let any = self.len > 0;
        if any {
            if let Some(words) = &mut self.words {
                words.fill(0);
            }
            self.len = 0;
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    #[test]
    fn allocator_wraps_from_65535_to_1() {
        let mut a = PacketIdAllocator::default();
        a.set_next(id(65_535));
        assert_eq!(a.allocate(u16::MAX, 0, |_| false), Some(id(65_535)));
        assert_eq!(a.allocate(u16::MAX, 0, |_| false), Some(id(1)));
    }

    #[test]
    fn a_shrunk_id_space_wraps_early_and_still_skips_ids_in_use() {
        let mut a = PacketIdAllocator::default();
        a.set_wrap_after(3);
        let got: Vec<u16> = (0..4)
            .map(|_| a.allocate(u16::MAX, 1, |i| i.get() == 2).unwrap().get())
            .collect();
        assert_eq!(got, [1, 3, 1, 3]);
    }

    #[test]
    fn a_full_ring_hands_out_the_lowest_free_id_above_it_then_returns_to_the_ring() {
        let mut a = PacketIdAllocator::default();
        assert_eq!(a.allocate(3, 3, |i| i.get() <= 3), Some(id(4)));
        assert_eq!(a.allocate(3, 4, |i| i.get() <= 4), Some(id(5)));
        assert_eq!(a.allocate(3, 4, |i| i.get() != 2), Some(id(2)));
    }

    #[test]
    fn the_ring_is_four_windows_and_at_least_1024() {
        assert_eq!(PacketIdAllocator::ring_for(1), 1024);
        assert_eq!(PacketIdAllocator::ring_for(100), 1024);
        assert_eq!(PacketIdAllocator::ring_for(1000), 4000);
        assert_eq!(PacketIdAllocator::ring_for(u16::MAX), u16::MAX);
    }

    #[test]
    fn allocator_skips_ids_in_use_and_gives_up_when_all_are() {
        let mut a = PacketIdAllocator::default();
        assert_eq!(a.allocate(u16::MAX, 2, |i| i.get() <= 2), Some(id(3)));
        assert_eq!(a.allocate(u16::MAX, ID_SPACE, |_| true), None);
        assert_eq!(a.allocate(u16::MAX, 0, |_| true), None);
    }

    #[test]
    fn id_set_tracks_membership_at_both_ends_of_the_id_space() {
        let mut s = IdSet::default();
        assert!(s.insert(id(1)));
        assert!(s.insert(id(65_535)));
        assert!(!s.insert(id(1)));
        assert_eq!(s.len(), 2);
        assert!(s.contains(id(65_535)));
        assert!(s.remove(id(65_535)));
        assert!(!s.remove(id(65_535)));
        s.clear();
        assert!(!s.contains(id(1)));
        assert_eq!(s.len(), 0);
    }
}
