//! The tern-only half of the comparative benchmark: measurement helpers (CPU, memory,
//! statistics), the mosquitto launcher, the result records every client prints, tern's own
//! scenario implementations, the blocking-socket latency floor, and the report (markdown
//! tables and SVG chart).
//!
//! The peers (rumqttc, paho-mqtt) are dev-dependencies used only by the `compare` bench
//! target, which is the harness binary; nothing here links them.

pub mod broker;
pub mod floor;
pub mod measure;
pub mod rate;
pub mod record;
pub mod report;
pub mod scenario;
pub mod tern_client;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use measure::Window;
use record::Record;

/// A scenario gives up after this long without progress.
pub const IDLE: Duration = Duration::from_secs(5);

/// A throughput run gives up after this long in all (a client that stalls ~40 ms per window
/// behind a broker with Nagle's algorithm on would otherwise take minutes per cell).
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The error of a throughput run that hit [`RUN_LIMIT`].
pub fn over_limit(done: u64, count: u64) -> String {
    format!("did not finish within {RUN_LIMIT:?}: {done} of {count} completed")
}

/// Connects in flight at once in the connections scenario, for every library (Paho C
/// deadlocks with more than about 16).
/// `$BENCH_CONNECT_CONCURRENCY` overrides.
pub fn connect_concurrency() -> usize {
    std::env::var("BENCH_CONNECT_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

/// A throughput run's completions and receipts, shared by its publisher and subscriber:
/// the subscriber's largest lag behind the publisher's completions (a message is complete
/// when written at QoS 0, at PUBACK / PUBCOMP at QoS 1 / 2).
#[derive(Debug, Default)]
pub struct Lag {
    received: AtomicU64,
    max: AtomicU64,
}

impl Lag {
    /// The subscriber got one more message.
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// The publisher has `done` completions: the lag now is `done` less what was received.
    pub fn completed(&self, done: u64) {
        let lag = done.saturating_sub(self.received.load(Ordering::Relaxed));
        self.max.fetch_max(lag, Ordering::Relaxed);
    }

    /// The largest lag seen.
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

/// What a throughput run measured.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Messages published.
    pub count: u64,
    /// Payload bytes.
    pub size: usize,
    /// Messages received (publish-only: completions).
    pub received: u64,
    /// First publish to last receipt (publish-only: to the last completion).
    pub secs: f64,
    /// Client process CPU seconds in the window.
    pub cpu: f64,
    /// Broker CPU seconds in the window.
    pub broker: Option<f64>,
    /// The subscriber's largest lag behind the publisher's completions, in messages (none
    /// in a publish-only run).
    pub max_lag: Option<u64>,
    /// How often the client process and the broker slept in the window.
    pub sleeps: measure::Sleeps,
    /// TCP payload bytes the publisher's connection sent and received in the window (see
    /// [`Wire`]), when the harness found its socket.
    pub wire: Option<(u64, u64)>,
}

/// Bytes on the wire of one connection over a measurement window: `TCP_INFO` of the socket
/// the client opened (found as the one new socket of this process), read at the start and at
/// the end. Exact TCP payload bytes, MQTT framing and all, first transmissions only.
#[derive(Debug, Clone, Copy)]
pub struct Wire {
    fd: i32,
    start: (u64, u64),
}

impl Wire {
    /// Starts counting on `fd`, if it is a TCP socket.
    pub fn start(fd: Option<i32>) -> Option<Self> {
        let fd = fd?;
        Some(Self {
            fd,
            start: measure::tcp_bytes(fd)?,
        })
    }

    /// Bytes sent and received since the start.
    pub fn finish(&self) -> Option<(u64, u64)> {
        let (s, r) = measure::tcp_bytes(self.fd)?;
        Some((
            s.saturating_sub(self.start.0),
            r.saturating_sub(self.start.1),
        ))
    }
}

impl Throughput {
    /// Writes the figures into `rec`.
    pub fn fill(&self, rec: &mut Record) {
        let secs = self.secs.max(1e-9);
        rec.set("msgs_per_sec", self.received as f64 / secs)
            .set(
                "bytes_per_sec",
                (self.received * self.size as u64) as f64 / secs,
            )
            .set("lost", self.count.saturating_sub(self.received) as f64)
            .set("secs", self.secs)
            .set("client_cpu_us", self.cpu * 1e6 / self.count as f64);
        if let Some(b) = self.broker {
            rec.set("broker_cpu_us", b * 1e6 / self.count as f64);
        }
        rec.set(
            "client_sleeps",
            self.sleeps.client as f64 / self.count as f64,
        );
        if let Some(b) = self.sleeps.broker {
            rec.set("broker_sleeps", b as f64 / self.count as f64);
        }
        if let Some(l) = self.max_lag {
            rec.set("max_lag", l as f64);
        }
        if let Some((out, inb)) = self.wire {
            rec.set("pub_bytes_out", out as f64 / self.count as f64)
                .set("pub_bytes_in", inb as f64 / self.count as f64);
        }
        if self.received < self.count {
            rec.error = Some(format!(
                "lost {} of {}",
                self.count - self.received,
                self.count
            ));
        }
    }
}

/// How long a latency run may take at most (warm-up included): a broker with Nagle's
/// algorithm on can make each round trip wait ~40 ms for a delayed ACK, and the run must
/// still end in time. `$BENCH_LATENCY_BUDGET_SECS` overrides.
pub fn latency_budget(quick: bool) -> Duration {
    std::env::var("BENCH_LATENCY_BUDGET_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(
            Duration::from_secs(if quick { 1 } else { 10 }),
            Duration::from_secs_f64,
        )
}

/// Round-trip times in nanoseconds, plus the CPU window. A run warms up for a tenth of its
/// round trips (at most a tenth of its time budget), then measures until it has `count` or
/// its budget is spent.
#[derive(Debug)]
pub struct LatencyHist {
    hist: Histogram<u64>,
    win: Window,
    cpu: f64,
    broker: Option<f64>,
    count: u64,
    warm_up: u64,
    measured: u64,
    start: Instant,
    budget: Duration,
}

impl LatencyHist {
    /// An empty histogram (1 ns .. 60 s, 3 significant digits) for at most `count` measured
    /// round trips within `budget`.
    pub fn new(broker_pid: Option<u32>, count: u64, budget: Duration) -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
            win: Window::start(broker_pid),
            cpu: 0.0,
            broker: None,
            count,
            warm_up: count / 10,
            measured: 0,
            start: Instant::now(),
            budget,
        }
    }

    /// Whether to make another round trip.
    pub fn more(&self) -> bool {
        self.measured < self.count && self.start.elapsed() < self.budget
    }

    /// Round trips so far, warm-up included (for error messages).
    pub fn index(&self) -> u64 {
        self.measured + self.count / 10 - self.warm_up
    }

    /// Records one round trip; during the warm-up the CPU window restarts instead, so that
    /// it covers only measured round trips.
    pub fn record(&mut self, rtt: Duration) {
        if self.warm_up > 0 && self.start.elapsed() < self.budget / 10 {
            self.warm_up -= 1;
            self.win = Window::start(self.win.broker_pid());
        } else {
            self.warm_up = 0;
            let _ = self.hist.record((rtt.as_nanos() as u64).max(1));
            self.measured += 1;
        }
    }

    /// Closes the CPU window.
    pub fn finish(&mut self) {
        let (cpu, broker) = self.win.finish();
        self.cpu = cpu;
        self.broker = broker;
    }

    /// Writes the figures into `rec`.
    pub fn fill(&self, rec: &mut Record) {
        let us = |v: u64| v as f64 / 1000.0;
        let n = self.measured.max(1) as f64;
        rec.set("p50_us", us(self.hist.value_at_quantile(0.5)))
            .set("p99_us", us(self.hist.value_at_quantile(0.99)))
            .set("max_us", us(self.hist.max()))
            .set("mean_us", self.hist.mean() / 1000.0)
            .set("round_trips", self.measured as f64)
            .set("client_cpu_us", self.cpu * 1e6 / n);
        if let Some(b) = self.broker {
            rec.set("broker_cpu_us", b * 1e6 / n);
        }
        if self.measured == 0 {
            rec.error = Some("no round trip measured within the time budget".to_owned());
        }
    }
}
