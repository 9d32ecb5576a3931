//! The load tool side by side (`rate:…` scenarios, see [`crate::scenario::Scenario::Rate`]):
//! what a publisher process reports, how the peers pace their connections, and how
//! `tern bench pub`'s summary is read. The processes themselves are run by the `compare`
//! harness.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What a publisher process reports: messages it completed (QoS 0 written, QoS 1 PUBACK,
/// QoS 2 PUBCOMP), from the start of sending to the last completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    /// Completed messages.
    pub completed: u64,
    /// Publishes that failed or never completed.
    pub failed: u64,
    /// Publishes refused because a connection's queue was full (`tern bench pub` only).
    pub overrun: u64,
    /// Seconds from the start of sending to the last completion.
    pub secs: f64,
}

/// The messages connection `i` of `conns` sends when `total` are sent in all: an even share,
/// the first `total % conns` connections one more.
pub fn share(total: u64, conns: u32, i: u32) -> u64 {
    let conns = u64::from(conns.max(1));
    total / conns + u64::from(u64::from(i) < total % conns)
}

/// When message `k` of a connection sending `rate` msgs/s from `start` is due: an absolute
/// instant, so late wake-ups never accumulate into drift.
pub fn due(start: Instant, k: u64, rate: f64) -> Instant {
    start + Duration::from_secs_f64(k as f64 / rate)
}

/// Reads the summary line of `tern bench pub --json`: `pub` completed, `pub_fail` and
/// `pub_unfinished` failed, `pub_overrun` refused by a full queue, `elapsed` seconds.
pub fn tern_summary(text: &str) -> Option<Sent> {
    let v: serde_json::Value = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("summary").is_some())?;
    let s = &v["summary"];
    let c = |name: &str| s["counters"][name].as_u64().unwrap_or(0);
    Some(Sent {
        completed: c("pub"),
        failed: c("pub_fail") + c("pub_unfinished"),
        overrun: c("pub_overrun"),
        secs: s["elapsed"].as_f64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (total, conns) in [(100_000, 10), (7, 3), (2, 5), (0, 4)] {
            let sum: u64 = (0..conns).map(|i| share(total, conns, i)).sum();
            assert_eq!(sum, total, "{total} over {conns}");
        }
        assert_eq!(share(7, 3, 0), 3);
        assert_eq!(share(7, 3, 2), 2);
    }

    #[test]
    fn due_instants_are_absolute() {
        let t0 = Instant::now();
        assert_eq!(due(t0, 0, 1000.0), t0);
        assert_eq!(due(t0, 1000, 1000.0), t0 + Duration::from_secs(1));
        assert_eq!(due(t0, 5, 2.0), t0 + Duration::from_millis(2500));
    }

    #[test]
    fn reads_tern_bench_summary() {
        let text = "{\"t\":1,\"counter\":\"pub\",\"total\":5,\"count\":5}\n\
                    {\"summary\":{\"elapsed\":10.01,\"counters\":{\"pub\":100000,\"pub_overrun\":3,\
                    \"pub_fail\":0,\"pub_unfinished\":1},\"lost\":null}}\n";
        let s = tern_summary(text).expect("a summary");
        assert_eq!((s.completed, s.overrun, s.failed), (100_000, 3, 1));
        assert!((s.secs - 10.01).abs() < 1e-9);
        assert_eq!(tern_summary("{\"t\":1}\n"), None);
        assert_eq!(tern_summary("not json"), None);
    }

    #[test]
    fn sent_round_trips_as_json() {
        let s = Sent {
            completed: 9,
            failed: 1,
            overrun: 0,
            secs: 2.5,
        };
        let line = serde_json::to_string(&s).expect("serializes");
        assert_eq!(serde_json::from_str::<Sent>(&line).expect("parses"), s);
    }
}
