//! What a run counts, and how it is told: one line per counter per second
//! (`3s recv total=6000 rate=2000/sec`, emqtt-bench's shape), `--json` lines, an `--hdr`
//! interval log, a progress bar on a terminal, and the final summary.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use serde_json::{Value, json};

use super::streams::{Seen, Streams};

/// The counters, in print order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    /// CONNACK accepted.
    ConnectSucc,
    /// Connection attempts that failed.
    ConnectFail,
    /// Established connections that ended unasked.
    Disconnect,
    /// Connections re-established by `--reconnect`.
    Reconnect,
    /// SUBACKs granting every filter.
    Sub,
    /// Subscriptions refused.
    SubFail,
    /// Publishes completed (QoS 0 written, 1 PUBACK, 2 PUBCOMP).
    Pub,
    /// Publishes that failed.
    PubFail,
    /// Publishes the client could not queue because the asked rate outran it.
    PubOverrun,
    /// Publishes queued but never completed: their connection was gone for good, or the
    /// last acknowledgements did not come in time.
    PubUnfinished,
    /// Messages received.
    Recv,
    /// Messages received twice (from the sequence numbers).
    Dup,
}

const ALL: [Counter; 12] = [
    Counter::ConnectSucc,
    Counter::ConnectFail,
    Counter::Disconnect,
    Counter::Reconnect,
    Counter::Sub,
    Counter::SubFail,
    Counter::Pub,
    Counter::PubFail,
    Counter::PubOverrun,
    Counter::PubUnfinished,
    Counter::Recv,
    Counter::Dup,
];

impl Counter {
    /// The name in output lines and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::ConnectSucc => "connect_succ",
            Self::ConnectFail => "connect_fail",
            Self::Disconnect => "disconnect",
            Self::Reconnect => "reconnect",
            Self::Sub => "sub",
            Self::SubFail => "sub_fail",
            Self::Pub => "pub",
            Self::PubFail => "pub_fail",
            Self::PubOverrun => "pub_overrun",
            Self::PubUnfinished => "pub_unfinished",
            Self::Recv => "recv",
            Self::Dup => "dup",
        }
    }
}

/// Where a failure counted by reason code happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// Connecting: no CONNACK, or a CONNACK refusing.
    Connect,
    /// PUBACK or PUBREC refusing (reason code >= 0x80, MQTT 5), PUBCOMP's 0x92.
    Publish,
    /// A SUBACK refusing a filter (3.1.1's 0x80, MQTT 5's reason codes).
    Subscribe,
    /// MQTT 5: the broker ended a connection with DISCONNECT and a reason code.
    Disconnect,
}

const STAGES: [Stage; 4] = [
    Stage::Connect,
    Stage::Publish,
    Stage::Subscribe,
    Stage::Disconnect,
];

impl Stage {
    /// The word in the summary and the `--json` key (`connect_failures`, …).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Publish => "publish",
            Self::Subscribe => "subscribe",
            Self::Disconnect => "disconnect",
        }
    }
}

/// The reason code of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reason {
    /// The seed's code of a 3.1.1 connect failure: -5..=-1 the network or a timeout, 1..=5
    /// the CONNACK return code (printed as a number: `5`).
    Seed(i32),
    /// A reason code the broker sent (MQTT 5 CONNACK, PUBACK, PUBREC, SUBACK, DISCONNECT;
    /// 3.1.1's SUBACK 0x80), printed in hex: `0x87`.
    Code(u8),
}

impl Reason {
    /// The number in `--json`'s `code`.
    pub(crate) fn number(self) -> i32 {
        match self {
            Self::Seed(c) => c,
            Self::Code(b) => i32::from(b),
        }
    }

    /// Whether the broker refused (a CONNACK code, not a network failure).
    pub(crate) fn is_refusal(self) -> bool {
        match self {
            Self::Seed(c) => (1..=5).contains(&c),
            Self::Code(_) => true,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Seed(c) => write!(f, "{c}"),
            Self::Code(b) => write!(f, "{b:#04x}"),
        }
    }
}

/// Failures by stage and reason code: how many, and the first one's message.
pub(crate) type Failures = Vec<(Stage, Reason, u64, String)>;

/// Latency histograms are in microseconds, 1 µs to 1 hour, 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

/// The histogram for a run and for the current second.
struct Latency {
    total: Histogram<u64>,
    interval: Histogram<u64>,
}

/// Everything a run counts; shared by its tasks.
pub(crate) struct Stats {
    counters: [AtomicU64; ALL.len()],
    latency: Mutex<Latency>,
    /// Failures by stage and reason code: count and one message.
    failures: Mutex<BTreeMap<(Stage, Reason), (u64, String)>>,
    streams: Mutex<Streams>,
    /// Connections established now.
    established: std::sync::atomic::AtomicI64,
    /// What the latency histogram measures: `latency` (end to end) or `connect`.
    pub(crate) latency_tag: &'static str,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Stats {
    /// Empty counters; `streams` from a `--state` file.
    pub(crate) fn new(latency_tag: &'static str, streams: Streams) -> Self {
        Self {
            counters: Default::default(),
            latency: Mutex::new(Latency {
                total: new_histogram(),
                interval: new_histogram(),
            }),
            failures: Mutex::new(BTreeMap::new()),
            streams: Mutex::new(streams),
            established: Default::default(),
            latency_tag,
        }
    }

    /// Adds one to `c`.
    pub(crate) fn inc(&self, c: Counter) {
        self.add(c, 1);
    }

    /// Adds `n` to `c`.
    pub(crate) fn add(&self, c: Counter, n: u64) {
        self.counters[c as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// A connection came up (`true`) or went down.
    pub(crate) fn link(&self, up: bool) {
        self.established
            .fetch_add(if up { 1 } else { -1 }, Ordering::Relaxed);
    }

    /// Connections established now.
    pub(crate) fn established(&self) -> u64 {
        u64::try_from(self.established.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// `c` so far.
    pub(crate) fn get(&self, c: Counter) -> u64 {
        self.counters[c as usize].load(Ordering::Relaxed)
    }

    /// Records a latency.
    pub(crate) fn latency(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut l = lock(&self.latency);
        l.total.saturating_record(us);
        l.interval.saturating_record(us);
    }

    /// A connection attempt failed with `reason`.
    pub(crate) fn connect_failed(&self, reason: Reason, message: String) {
        self.inc(Counter::ConnectFail);
        self.failed(Stage::Connect, reason, message);
    }

    /// Counts a failure under its stage and reason code (the counters are the caller's).
    pub(crate) fn failed(&self, stage: Stage, reason: Reason, message: String) {
        lock(&self.failures)
            .entry((stage, reason))
            .or_insert((0, message))
            .0 += 1;
    }

    /// Accounts a received header; counts duplicates.
    pub(crate) fn sequence(&self, subscriber: u64, h: &super::header::Header) {
        let seen = lock(&self.streams).on(subscriber, h.run, h.publisher, h.seq, h.last);
        if seen == Seen::Duplicate {
            self.inc(Counter::Dup);
        }
    }

    /// The sequence accounting, for `--state`.
    pub(crate) fn streams_json(&self) -> Value {
        lock(&self.streams).to_json()
    }

    /// Failures by stage and reason code, in that order: (stage, code, count, one message).
    pub(crate) fn failures(&self) -> Failures {
        lock(&self.failures)
            .iter()
            .map(|(&(s, c), (n, m))| (s, c, *n, m.clone()))
            .collect()
    }

    fn take_interval(&self) -> Histogram<u64> {
        let mut l = lock(&self.latency);
        let h = l.interval.clone();
        l.interval.reset();
        h
    }

    /// The final summary.
    pub(crate) fn summary(&self, elapsed: Duration) -> Summary {
        let l = lock(&self.latency);
        let streams = lock(&self.streams);
        Summary {
            elapsed,
            counters: ALL.iter().map(|&c| (c.name(), self.get(c))).collect(),
            latency_tag: self.latency_tag,
            latency: (!l.total.is_empty()).then(|| l.total.clone()),
            lost: (streams.len() > 0).then(|| streams.lost()),
            failures: self.failures(),
        }
    }
}

/// The outcome of a run.
pub(crate) struct Summary {
    pub(crate) elapsed: Duration,
    pub(crate) counters: Vec<(&'static str, u64)>,
    pub(crate) latency_tag: &'static str,
    pub(crate) latency: Option<Histogram<u64>>,
    /// `None` when no message carried a header.
    pub(crate) lost: Option<u64>,
    pub(crate) failures: Failures,
}

/// p50, p90, p99, p99.9 and max, in milliseconds.
pub(crate) fn percentiles(h: &Histogram<u64>) -> [(&'static str, f64); 6] {
    let ms = |us: u64| us as f64 / 1000.0;
    [
        ("p50", ms(h.value_at_quantile(0.5))),
        ("p90", ms(h.value_at_quantile(0.9))),
        ("p99", ms(h.value_at_quantile(0.99))),
        ("p99.9", ms(h.value_at_quantile(0.999))),
        ("max", ms(h.max())),
        ("mean", h.mean() / 1000.0),
    ]
}

impl Summary {
    /// The summary as text lines.
    pub(crate) fn text(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut s = format!("summary: {:.3}s\n", self.elapsed.as_secs_f64());
        for (name, n) in &self.counters {
            if *n > 0 {
                s += &format!("  {name:<13} {n:>12}  {:>12.1}/sec\n", *n as f64 / secs);
            }
        }
        if let Some(lost) = self.lost {
            s += &format!("  {:<13} {lost:>12}\n", "lost");
        }
        if let Some(h) = &self.latency {
            s += &format!("  {} ms ({} samples):", self.latency_tag, h.len());
            for (name, v) in percentiles(h) {
                s += &format!(" {name}={v:.3}");
            }
            s.push('\n');
        }
        for (stage, code, n, msg) in &self.failures {
            s += &format!(
                "  {} failures, reason code {code}: {n} ({msg})\n",
                stage.name()
            );
        }
        s
    }

    /// The summary as one JSON object.
    pub(crate) fn json(&self) -> Value {
        let counters: serde_json::Map<String, Value> = self
            .counters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let latency = self.latency.as_ref().map(|h| {
            let mut m: serde_json::Map<String, Value> = percentiles(h)
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect();
            m.insert("count".into(), json!(h.len()));
            Value::Object(m)
        });
        let mut summary = json!({
            "elapsed": self.elapsed.as_secs_f64(),
            "counters": counters,
            "lost": self.lost,
            self.latency_tag: latency,
        });
        // `connect_failures`, `publish_failures`, …: `code` a number (135), `reason` as
        // printed (`0x87`; the seed's codes as numbers, `-5`).
        for stage in STAGES {
            let list: Vec<Value> = self
                .failures
                .iter()
                .filter(|f| f.0 == stage)
                .map(|(_, c, n, m)| {
                    json!({"code": c.number(), "reason": c.to_string(), "count": n, "error": m})
                })
                .collect();
            summary[format!("{}_failures", stage.name())] = Value::Array(list);
        }
        json!({ "summary": summary })
    }
}

/// Where a run's per-second output goes.
pub(crate) struct Reporter {
    json: Option<Box<dyn Write + Send>>,
    /// Report the `established` gauge each second (`conn`).
    established: bool,
    /// `--json -`: stdout is the JSON's, the text goes to stderr.
    text_to_stderr: bool,
    hdr: Option<File>,
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
    last: [u64; ALL.len()],
    start_unix: f64,
    interval_start: f64,
    /// The wall-clock second the interval in progress ends at.
    next_second: u64,
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Reporter {
    /// Opens `--json` and `--hdr` outputs; a bar of `bar_len` steps (0: a spinner) when
    /// stderr is a terminal.
    pub(crate) fn new(
        json: Option<&Path>,
        hdr: Option<&Path>,
        quiet: bool,
        bar_len: Option<u64>,
        tag: &str,
    ) -> io::Result<Self> {
        let text_to_stderr = json == Some(Path::new("-"));
        let json: Option<Box<dyn Write + Send>> = match json {
            Some(p) if p == Path::new("-") => Some(Box::new(io::stdout())),
            Some(p) => Some(Box::new(io::BufWriter::new(File::create(p)?))),
            None => None,
        };
        let start_unix = unix_now();
        let hdr = match hdr {
            Some(p) => {
                let mut f = File::create(p)?;
                let mut ser = V2DeflateSerializer::new();
                let start = UNIX_EPOCH + Duration::from_secs_f64(start_unix);
                IntervalLogWriterBuilder::new()
                    .add_comment(&format!("tern bench: {tag} in microseconds"))
                    .with_start_time(start)
                    .with_base_time(UNIX_EPOCH)
                    .begin_log_with(&mut f, &mut ser)?;
                Some(f)
            }
            None => None,
        };
        let bar = io::stderr().is_terminal().then(|| match bar_len {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        });
        Ok(Self {
            json,
            established: false,
            text_to_stderr,
            hdr,
            quiet,
            bar,
            last: [0; ALL.len()],
            start_unix,
            interval_start: start_unix,
            next_second: start_unix.floor() as u64 + 1,
        })
    }

    /// Reports the established connections each second too.
    pub(crate) fn with_established(mut self, on: bool) -> Self {
        self.established = on;
        self
    }

    /// The next whole wall-clock second, as a tokio instant: intervals are wall-clock
    /// seconds, so runs of several processes add up second by second.
    pub(crate) fn next_tick(&self) -> tokio::time::Instant {
        let wait = (self.next_second as f64 - unix_now()).max(0.0);
        tokio::time::Instant::now() + Duration::from_secs_f64(wait)
    }

    /// Reports the interval ending now; `progress` moves the bar.
    pub(crate) fn tick(&mut self, stats: &Stats, progress: u64) -> io::Result<()> {
        let now = unix_now();
        // The interval is labelled with the wall-clock second it ends in (the last one
        // with the second in progress).
        let second = self.next_second;
        self.next_second = (second + 1).max(now.floor() as u64 + 1);
        let elapsed = (now - self.start_unix).round() as u64;
        let mut lines = String::new();
        for (i, c) in ALL.iter().enumerate() {
            let total = stats.get(*c);
            let delta = total - self.last[i];
            self.last[i] = total;
            // Only what moved: a counter at rest adds nothing to a line or a merge.
            if delta == 0 {
                continue;
            }
            if !self.quiet {
                lines += &format!("{elapsed}s {} total={total} rate={delta}/sec\n", c.name());
            }
            if let Some(j) = &mut self.json {
                let v = json!({"t": second, "elapsed": elapsed, "counter": c.name(), "total": total, "count": delta});
                writeln!(j, "{v}")?;
            }
        }
        if self.established {
            // A gauge: merged runs add it per second (connections held across processes).
            let n = stats.established();
            if !self.quiet {
                lines += &format!("{elapsed}s established={n}\n");
            }
            if let Some(j) = &mut self.json {
                writeln!(
                    j,
                    "{}",
                    json!({"t": second, "elapsed": elapsed, "gauge": "established", "value": n})
                )?;
            }
        }
        let h = stats.take_interval();
        if let Some(f) = &mut self.hdr {
            let mut ser = V2DeflateSerializer::new();
            let mut w = IntervalLogWriterBuilder::new().begin_log_with(f, &mut ser)?;
            w.write_histogram(
                &h,
                Duration::from_secs_f64(self.interval_start),
                Duration::from_secs_f64((now - self.interval_start).max(0.0)),
                Tag::new(stats.latency_tag),
            )
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        }
        self.interval_start = now;
        if let Some(j) = &mut self.json {
            j.flush()?;
        }
        match &self.bar {
            Some(bar) => {
                bar.suspend(|| self.text(&lines));
                bar.set_position(progress);
            }
            None => self.text(&lines),
        }
        Ok(())
    }

    /// Human-readable output: stdout, or stderr when stdout carries the JSON.
    fn text(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.text_to_stderr {
            let _ = io::stderr().lock().write_all(text.as_bytes());
        } else {
            crate::mosq::out(text);
        }
    }

    /// Reports the last partial interval and the summary.
    pub(crate) fn finish(
        &mut self,
        stats: &Stats,
        summary: &Summary,
        progress: u64,
    ) -> io::Result<()> {
        self.tick(stats, progress)?;
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.text(&summary.text());
        if let Some(j) = &mut self.json {
            writeln!(j, "{}", summary.json())?;
            j.flush()?;
        }
        if let Some(f) = &mut self.hdr {
            f.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_by_stage_and_reason_code() {
        let s = Stats::new("latency", Streams::default());
        s.connect_failed(Reason::Seed(-5), "nothing listening".into());
        s.connect_failed(Reason::Code(0x87), "Not authorized (0x87)".into());
        s.connect_failed(Reason::Code(0x87), "another".into());
        s.failed(Stage::Publish, Reason::Code(0x87), "PUBACK refused".into());
        s.failed(
            Stage::Subscribe,
            Reason::Code(0x80),
            "SUBACK refused".into(),
        );
        assert_eq!(s.get(Counter::ConnectFail), 3);
        let summary = s.summary(Duration::from_secs(1));
        let text = summary.text();
        for line in [
            "  connect failures, reason code -5: 1 (nothing listening)\n",
            "  connect failures, reason code 0x87: 2 (Not authorized (0x87))\n",
            "  publish failures, reason code 0x87: 1 (PUBACK refused)\n",
            "  subscribe failures, reason code 0x80: 1 (SUBACK refused)\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        let j = &summary.json()["summary"];
        assert_eq!(
            j["connect_failures"],
            json!([
                {"code": -5, "reason": "-5", "count": 1, "error": "nothing listening"},
                {"code": 135, "reason": "0x87", "count": 2, "error": "Not authorized (0x87)"},
            ])
        );
        assert_eq!(j["publish_failures"][0]["reason"], "0x87");
        assert_eq!(j["subscribe_failures"][0]["code"], 0x80);
        assert_eq!(j["disconnect_failures"], json!([]));
    }

    #[test]
    fn only_connack_codes_are_refusals() {
        assert!(Reason::Seed(5).is_refusal() && Reason::Code(0x86).is_refusal());
        assert!(!Reason::Seed(-5).is_refusal() && !Reason::Seed(-2).is_refusal());
    }
}
