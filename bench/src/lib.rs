//! The tern-only half of the comparative benchmark: measurement helpers (CPU, memory,
//! statistics), the mosquitto launcher, the result records every client prints, tern's own
//! scenario implementations, and the report (markdown table and SVG chart).
//!
//! The peers (rumqttc, paho-mqtt) are dev-dependencies used only by the `compare` bench
//! target, which is the harness binary; nothing here links them.

pub mod broker;
pub mod measure;
pub mod record;
pub mod report;
pub mod scenario;
pub mod tern_client;

use std::time::Duration;

use hdrhistogram::Histogram;

use measure::Window;
use record::Record;

/// A scenario gives up after this long without progress.
pub const IDLE: Duration = Duration::from_secs(5);

/// Connects in flight at once in the connections scenario, for every library (Paho C
/// deadlocks with more than about 16).
/// `$BENCH_CONNECT_CONCURRENCY` overrides.
pub fn connect_concurrency() -> usize {
    std::env::var("BENCH_CONNECT_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

/// What a throughput run measured.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Messages published.
    pub count: u64,
    /// Payload bytes.
    pub size: usize,
    /// Messages received.
    pub received: u64,
    /// First publish to last receipt.
    pub secs: f64,
    /// Client process CPU seconds in the window.
    pub cpu: f64,
    /// Broker CPU seconds in the window.
    pub broker: Option<f64>,
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
        if self.received < self.count {
            rec.error = Some(format!(
                "lost {} of {}",
                self.count - self.received,
                self.count
            ));
        }
    }
}

/// Round-trip times in nanoseconds, plus the CPU window.
#[derive(Debug)]
pub struct LatencyHist {
    hist: Histogram<u64>,
    win: Window,
    cpu: f64,
    broker: Option<f64>,
    count: u64,
}

impl LatencyHist {
    /// An empty histogram (1 ns .. 60 s, 3 significant digits).
    pub fn new(broker_pid: Option<u32>) -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
            win: Window::start(broker_pid),
            cpu: 0.0,
            broker: None,
            count: 0,
        }
    }

    /// Records one round trip; `measured` is false during warm-up (which restarts the CPU
    /// window so that it covers only measured round trips).
    pub fn record(&mut self, measured: bool, rtt: Duration) {
        if measured {
            let _ = self.hist.record((rtt.as_nanos() as u64).max(1));
        } else {
            self.win = Window::start(self.win_pid());
        }
    }

    fn win_pid(&self) -> Option<u32> {
        self.win.broker_pid()
    }

    /// Closes the CPU window after `count` measured round trips.
    pub fn finish(&mut self, count: u64) {
        let (cpu, broker) = self.win.finish();
        self.cpu = cpu;
        self.broker = broker;
        self.count = count;
    }

    /// Writes the figures into `rec`.
    pub fn fill(&self, rec: &mut Record) {
        let us = |v: u64| v as f64 / 1000.0;
        rec.set("p50_us", us(self.hist.value_at_quantile(0.5)))
            .set("p99_us", us(self.hist.value_at_quantile(0.99)))
            .set("max_us", us(self.hist.max()))
            .set("mean_us", self.hist.mean() / 1000.0)
            .set("client_cpu_us", self.cpu * 1e6 / self.count.max(1) as f64);
        if let Some(b) = self.broker {
            rec.set("broker_cpu_us", b * 1e6 / self.count.max(1) as f64);
        }
    }
}
