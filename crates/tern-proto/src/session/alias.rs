//! Topic aliases of one MQTT 5 connection, both directions (§3.3.2.3.4). Both maps live and
//! die with the connection: they are cleared on every new one [MQTT-3.3.2-7], so a re-sent
//! PUBLISH after a reconnect always carries its full topic (stored packets never hold an
//! alias-only topic; the alias is chosen when the packet is encoded).

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU16;

use crate::topic::TopicName;

/// How an outgoing PUBLISH names its topic on the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutAlias {
    /// No alias: the full topic.
    None,
    /// Full topic plus this alias: (re)binds the alias to the topic.
    Establish(NonZeroU16),
    /// Empty topic plus this alias, bound earlier on this connection.
    Use(NonZeroU16),
}

/// Our aliases for the broker: at most the broker's Topic Alias Maximum
/// [MQTT-3.3.2-10], chosen least-recently-used first.
#[derive(Debug, Default)]
pub(super) struct Outgoing {
    /// The broker's Topic Alias Maximum; 0 turns aliases off.
    max: u16,
    /// Topic bound to each alias (index = alias - 1) and when it was last used.
    slots: Vec<(TopicName, u64)>,
    by_topic: HashMap<TopicName, NonZeroU16>,
    /// Aliases by last use, oldest first: the eviction order, O(log n) per use.
    by_use: BTreeMap<u64, NonZeroU16>,
    clock: u64,
}

impl Outgoing {
    /// Empty map for a connection whose broker allows `max` aliases.
    pub(super) fn new(max: u16) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    /// The alias to use for `topic`: `requested` (the caller's choice, if within the
    /// maximum) or an automatic one, least recently used evicted. `None` alias when the
    /// broker allows none.
    pub(super) fn choose(&mut self, topic: &TopicName, requested: Option<NonZeroU16>) -> OutAlias {
        if self.max == 0 || topic.as_str().is_empty() {
            return OutAlias::None;
        }
        self.clock += 1;
        let now = self.clock;
        if let Some(req) = requested {
            if req.get() > self.max {
                return OutAlias::None;
            }
            let i = usize::from(req.get() - 1);
            if self.slots.get(i).is_some_and(|(bound, _)| bound == topic) {
                self.touch(req, now);
                return OutAlias::Use(req);
            }
            self.bind(req, topic, now);
            return OutAlias::Establish(req);
        }
        if let Some(&alias) = self.by_topic.get(topic) {
            self.touch(alias, now);
            return OutAlias::Use(alias);
        }
        let alias = if self.slots.len() < usize::from(self.max) {
            // Alias n + 1 for the n-th slot: at most `max` ≤ u16::MAX.
            NonZeroU16::new(u16::try_from(self.slots.len() + 1).unwrap_or(u16::MAX))
        } else {
            self.by_use.first_key_value().map(|(_, &alias)| alias)
        };
        match alias {
            Some(alias) => {
                self.bind(alias, topic, now);
                OutAlias::Establish(alias)
            }
            None => OutAlias::None,
        }
    }

    /// Marks `alias` used at `now`.
    fn touch(&mut self, alias: NonZeroU16, now: u64) {
        if let Some(slot) = self.slots.get_mut(usize::from(alias.get() - 1)) {
            self.by_use.remove(&slot.1);
            slot.1 = now;
            self.by_use.insert(now, alias);
        }
    }

    fn bind(&mut self, alias: NonZeroU16, topic: &TopicName, now: u64) {
        let i = usize::from(alias.get() - 1);
        if self.slots.len() <= i {
            // A caller-chosen alias beyond the automatic ones: fill the gap with slots no
            // topic maps to (an empty topic never matches a real one) and never used (clock
            // 0, which no use has: they are not in the eviction order).
            self.slots.resize(i + 1, (TopicName::empty_for_alias(), 0));
        }
        let old = std::mem::replace(&mut self.slots[i], (topic.clone(), now));
        if old.1 != 0 {
            self.by_use.remove(&old.1);
        }
        self.by_use.insert(now, alias);
        if self.by_topic.get(&old.0) == Some(&alias) {
            self.by_topic.remove(&old.0);
        }
        self.by_topic.insert(topic.clone(), alias);
    }
}

/// Why an incoming alias was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AliasError {
    /// Above our Topic Alias Maximum [MQTT-3.3.2-9] (0x94).
    AboveMaximum,
    /// An empty topic with an alias never bound on this connection (0x82).
    Unknown,
}

/// The broker's aliases for us, up to our advertised Topic Alias Maximum.
#[derive(Debug, Default)]
pub(super) struct Incoming {
    max: u16,
    topics: HashMap<NonZeroU16, TopicName>,
}

impl Incoming {
    /// Empty map accepting aliases 1..=`max`.
    pub(super) fn new(max: u16) -> Self {
        Self {
            max,
            topics: HashMap::new(),
        }
    }

    /// Resolves a PUBLISH's topic: binds `alias` to a non-empty `topic`, or looks it up for
    /// an empty one.
    pub(super) fn resolve(
        &mut self,
        topic: &TopicName,
        alias: NonZeroU16,
    ) -> Result<TopicName, AliasError> {
        if alias.get() > self.max {
            return Err(AliasError::AboveMaximum);
        }
        if topic.as_str().is_empty() {
            self.topics.get(&alias).cloned().ok_or(AliasError::Unknown)
        } else {
            self.topics.insert(alias, topic.clone());
            Ok(topic.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TopicName {
        TopicName::new(s).unwrap()
    }

    fn a(n: u16) -> NonZeroU16 {
        NonZeroU16::new(n).unwrap()
    }

    #[test]
    fn outgoing_aliases_are_off_at_zero() {
        let mut out = Outgoing::new(0);
        assert_eq!(out.choose(&t("x"), None), OutAlias::None);
        assert_eq!(out.choose(&t("x"), Some(a(1))), OutAlias::None);
    }

    #[test]
    fn outgoing_aliases_evict_the_least_recently_used() {
        let mut out = Outgoing::new(2);
        assert_eq!(out.choose(&t("a"), None), OutAlias::Establish(a(1)));
        assert_eq!(out.choose(&t("b"), None), OutAlias::Establish(a(2)));
        assert_eq!(out.choose(&t("a"), None), OutAlias::Use(a(1)));
        // "b" is the least recently used: "c" takes its alias.
        assert_eq!(out.choose(&t("c"), None), OutAlias::Establish(a(2)));
        assert_eq!(out.choose(&t("b"), None), OutAlias::Establish(a(1)));
        assert_eq!(out.choose(&t("c"), None), OutAlias::Use(a(2)));
    }

    #[test]
    fn caller_aliases_bind_within_the_maximum() {
        let mut out = Outgoing::new(3);
        assert_eq!(out.choose(&t("a"), Some(a(3))), OutAlias::Establish(a(3)));
        assert_eq!(out.choose(&t("a"), Some(a(3))), OutAlias::Use(a(3)));
        assert_eq!(out.choose(&t("a"), None), OutAlias::Use(a(3)));
        assert_eq!(out.choose(&t("b"), Some(a(3))), OutAlias::Establish(a(3)));
        assert_eq!(out.choose(&t("z"), Some(a(4))), OutAlias::None);
    }

    #[test]
    fn incoming_aliases_bind_resolve_and_refuse() {
        let mut inc = Incoming::new(2);
        assert_eq!(
            inc.resolve(&TopicName::empty_for_alias(), a(1)),
            Err(AliasError::Unknown)
        );
        assert_eq!(inc.resolve(&t("x"), a(1)), Ok(t("x")));
        assert_eq!(inc.resolve(&TopicName::empty_for_alias(), a(1)), Ok(t("x")));
        assert_eq!(inc.resolve(&t("y"), a(3)), Err(AliasError::AboveMaximum));
    }
}

#[cfg(test)]
mod lru_tests {
    use super::*;

    /// The eviction order is the use order, over many topics and uses.
    #[test]
    fn evicts_in_least_recent_use_order_at_scale() {
        let t = |n: u32| TopicName::new(&format!("t/{n}")).unwrap();
        let mut out = Outgoing::new(100);
        for n in 0..100 {
            assert!(matches!(out.choose(&t(n), None), OutAlias::Establish(_)));
        }
        // Use the even topics again: the odd ones are now the oldest, in order.
        for n in (0..100).step_by(2) {
            assert!(matches!(out.choose(&t(n), None), OutAlias::Use(_)));
        }
        for (k, n) in (1..100).step_by(2).enumerate() {
            let expected = out.by_topic[&t(n)];
            let got = out.choose(&t(1000 + k as u32), None);
            assert_eq!(got, OutAlias::Establish(expected), "evicting t/{n}");
        }
    }
}
