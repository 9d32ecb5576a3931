//! Loss and duplicate accounting from the header's sequence numbers: per (subscriber, run,
//! publisher) stream, the next sequence number expected and the ranges never received. A message
//! filling a gap is late, not lost; one seen before is a duplicate. Streams start at 0, so a
//! subscriber that joins late counts what was published before it as lost: the count is
//! always "messages this subscriber never got".

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

/// What one received sequence number was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// In order, or ahead (opening a gap).
    New,
    /// Filled a gap.
    Late,
    /// Received before.
    Duplicate,
}

/// One publisher's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Stream {
    /// The next sequence number expected.
    next: u64,
    /// Gaps: start → end (exclusive).
    missing: BTreeMap<u64, u64>,
    /// The publisher's last message has arrived.
    ended: bool,
}

impl Stream {
    fn on(&mut self, seq: u64) -> Seen {
        if seq >= self.next {
            if seq > self.next {
                self.missing.insert(self.next, seq);
            }
            self.next = seq + 1;
            return Seen::New;
        }
        let Some((&start, &end)) = self.missing.range(..=seq).next_back() else {
            return Seen::Duplicate;
        };
        if seq >= end {
            return Seen::Duplicate;
        }
        self.missing.remove(&start);
        if start < seq {
            self.missing.insert(start, seq);
        }
        if seq + 1 < end {
            self.missing.insert(seq + 1, end);
        }
        Seen::Late
    }

    fn lost(&self) -> u64 {
        self.missing.iter().map(|(s, e)| e - s).sum()
    }
}

/// Every stream a subscriber process has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Streams {
    streams: HashMap<(u64, u64, u64), Stream>,
}

impl Streams {
    /// Accounts one message received by the subscriber with client index `subscriber`;
    /// `last` marks the publisher's last message.
    pub(crate) fn on(
        &mut self,
        subscriber: u64,
        run: u64,
        publisher: u64,
        seq: u64,
        last: bool,
    ) -> Seen {
        let s = self
            .streams
            .entry((subscriber, run, publisher))
            .or_default();
        s.ended |= last;
        s.on(seq)
    }

    /// Whether the stream of (`subscriber`, `run`, `publisher`) has ended.
    #[cfg(test)]
    pub(crate) fn ended(&self, subscriber: u64, run: u64, publisher: u64) -> bool {
        self.streams
            .get(&(subscriber, run, publisher))
            .is_some_and(|s| s.ended)
    }

    /// Messages never received, below the highest seen per stream.
    pub(crate) fn lost(&self) -> u64 {
        self.streams.values().map(Stream::lost).sum()
    }

    /// Publisher streams seen.
    pub(crate) fn len(&self) -> usize {
        self.streams.len()
    }

    /// The accounting as JSON (`--state`).
    pub(crate) fn to_json(&self) -> Value {
        let streams: Vec<Value> = self
            .streams
            .iter()
            .map(|(&(subscriber, run, publisher), s)| {
                let missing: Vec<Value> = s.missing.iter().map(|(a, b)| json!([a, b])).collect();
                json!({"subscriber": subscriber, "run": run, "publisher": publisher, "next": s.next, "ended": s.ended, "missing": missing})
            })
            .collect();
        json!({ "streams": streams })
    }

    /// Reads what [`to_json`](Self::to_json) wrote.
    pub(crate) fn from_json(v: &Value) -> Result<Self, String> {
        let bad = || "not a tern bench --state file".to_owned();
        let mut out = Self::default();
        for s in v.get("streams").and_then(Value::as_array).ok_or_else(bad)? {
            let field = |k: &str| s.get(k).and_then(Value::as_u64).ok_or_else(bad);
            let mut stream = Stream {
                next: field("next")?,
                missing: BTreeMap::new(),
                ended: s.get("ended").and_then(Value::as_bool).unwrap_or(false),
            };
            for gap in s.get("missing").and_then(Value::as_array).ok_or_else(bad)? {
                let a = gap.get(0).and_then(Value::as_u64).ok_or_else(bad)?;
                let b = gap.get(1).and_then(Value::as_u64).ok_or_else(bad)?;
                if a >= b || b > stream.next {
                    return Err(bad());
                }
                stream.missing.insert(a, b);
            }
            out.streams.insert(
                (field("subscriber")?, field("run")?, field("publisher")?),
                stream,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_late_arrivals_and_duplicates_are_counted_exactly() {
        let mut s = Streams::default();
        for seq in [0, 1, 2, 6, 7] {
            assert_eq!(s.on(0, 1, 0, seq, false), Seen::New);
        }
        assert_eq!(s.lost(), 3);
        assert_eq!(s.on(0, 1, 0, 4, false), Seen::Late);
        assert_eq!(s.lost(), 2);
        assert_eq!(s.on(0, 1, 0, 4, false), Seen::Duplicate);
        assert_eq!(s.on(0, 1, 0, 7, false), Seen::Duplicate);
        assert_eq!(s.on(0, 1, 0, 0, false), Seen::Duplicate);
        // Another subscriber's copy is no duplicate.
        assert_eq!(s.on(9, 1, 0, 0, false), Seen::New);
        // Another publisher's stream is separate.
        assert_eq!(s.on(0, 1, 1, 2, true), Seen::New);
        assert!(s.ended(0, 1, 1) && !s.ended(0, 1, 0));
        assert_eq!(s.lost(), 4);
        let back = Streams::from_json(&s.to_json()).expect("round trip");
        assert_eq!(back, s);
    }
}
