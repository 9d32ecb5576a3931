//! The one-line JSON result a client child prints, and the context it runs in.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One measurement: a library running one scenario once.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    /// `tern`, `rumqttc`, `paho`, `floor`, `tern-cli` or `mosquitto-cli`.
    pub lib: String,
    /// The scenario id (see [`crate::scenario::Scenario`]).
    pub scenario: String,
    /// Repetition number, 1-based.
    pub rep: u32,
    /// Set when the run failed; metrics may then be partial.
    pub error: Option<String>,
    /// Named figures: `msgs_per_sec`, `bytes_per_sec`, `lost`, `client_cpu_us`,
    /// `broker_cpu_us`, `max_lag`, `p50_us`, `p99_us`, `max_us`, `round_trips`, `connect_secs`,
    /// `rss_kib_per_conn`, `pub_bytes_out`, `pub_bytes_in` (the publisher connection's TCP
    /// payload bytes per message, see [`crate::Wire`])...
    pub metrics: BTreeMap<String, f64>,
}

impl Record {
    /// An empty record for `lib` running `scenario`.
    pub fn new(lib: &str, scenario: &str) -> Self {
        Self {
            lib: lib.to_owned(),
            scenario: scenario.to_owned(),
            ..Self::default()
        }
    }

    /// Sets a metric.
    pub fn set(&mut self, name: &str, value: f64) -> &mut Self {
        self.metrics.insert(name.to_owned(), value);
        self
    }

    /// A metric, if present.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }
}

/// Where and how a client child runs.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Broker process id, for its CPU time.
    pub broker_pid: Option<u32>,
    /// Unique prefix for client ids and topics of this run.
    pub prefix: String,
    /// The longest a latency run may take (see [`crate::latency_budget`]).
    pub latency_budget: Duration,
    /// The clients' in-flight window (see [`crate::scenario::BrokerCfg::client_window`]).
    pub window: u16,
    /// The broker runs with Nagle's algorithm on (`set_tcp_nodelay false`).
    pub broker_nagle: bool,
}

impl Ctx {
    /// A topic unique to this run.
    pub fn topic(&self, name: &str) -> String {
        format!("bench/{}/{name}", self.prefix)
    }

    /// A client id unique to this run.
    pub fn client_id(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }
}
