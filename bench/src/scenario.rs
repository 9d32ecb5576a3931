//! The scenarios, named by compact ids such as `tp:1:64:100000` that the orchestrator passes
//! to its client children.

use std::fmt;
use std::str::FromStr;

/// One scenario with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// End-to-end throughput: one publisher and one subscriber connection in one process.
    Throughput {
        /// QoS of publish and subscription.
        qos: u8,
        /// Payload bytes.
        size: usize,
        /// Messages.
        count: u64,
    },
    /// Ping-pong: one connection subscribed to its own topic; publish, await the message.
    Latency {
        /// QoS.
        qos: u8,
        /// Round trips measured (after a warm-up of a tenth as many).
        count: u64,
    },
    /// Concurrent idle connections from one process.
    Connections {
        /// How many.
        count: u64,
    },
    /// Whole processes: a `pub -l` process feeding a `sub -C` process.
    Process {
        /// QoS.
        qos: u8,
        /// Lines published.
        count: u64,
    },
}

impl Scenario {
    /// A short human label for tables.
    pub fn label(&self) -> String {
        match *self {
            Self::Throughput { qos, size, count } => {
                format!("QoS {qos}, {}, {count} msgs", size_label(size))
            }
            Self::Latency { qos, count } => format!("ping-pong QoS {qos}, {count} round trips"),
            Self::Connections { count } => format!("{count} idle connections"),
            Self::Process { qos, count } => format!("pub -l | sub -C, QoS {qos}, {count} lines"),
        }
    }

    /// The libraries that run this scenario.
    pub fn libs(&self) -> &'static [&'static str] {
        match self {
            Self::Process { .. } => &["tern-cli", "mosquitto-cli"],
            _ => &["tern", "rumqttc", "paho"],
        }
    }
}

/// `64 B` or `16 KiB`.
pub fn size_label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Throughput { qos, size, count } => write!(f, "tp:{qos}:{size}:{count}"),
            Self::Latency { qos, count } => write!(f, "lat:{qos}:{count}"),
            Self::Connections { count } => write!(f, "conn:{count}"),
            Self::Process { qos, count } => write!(f, "proc:{qos}:{count}"),
        }
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let num = |i: usize| -> Result<u64, String> {
            parts
                .get(i)
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("bad scenario {s:?}"))
        };
        let qos = |i: usize| -> Result<u8, String> {
            let q = num(i)?;
            if q > 2 {
                return Err(format!("bad QoS in {s:?}"));
            }
            Ok(q as u8)
        };
        match parts.first().copied() {
            Some("tp") => Ok(Self::Throughput {
                qos: qos(1)?,
                size: num(2)? as usize,
                count: num(3)?,
            }),
            Some("lat") => Ok(Self::Latency {
                qos: qos(1)?,
                count: num(2)?,
            }),
            Some("conn") => Ok(Self::Connections { count: num(1)? }),
            Some("proc") => Ok(Self::Process {
                qos: qos(1)?,
                count: num(2)?,
            }),
            _ => Err(format!("unknown scenario {s:?}")),
        }
    }
}

/// The full plan, or the `--quick` one with small counts.
pub fn plan(quick: bool) -> Vec<Scenario> {
    let k = |full: u64, q: u64| if quick { q } else { full };
    let mut v = Vec::new();
    for size in [64, 16 * 1024] {
        for (qos, n, nq) in [
            (0, 200_000, 20_000),
            (1, 100_000, 10_000),
            (2, 50_000, 5_000),
        ] {
            v.push(Scenario::Throughput {
                qos,
                size,
                count: k(n, nq),
            });
        }
    }
    for qos in [0, 1] {
        v.push(Scenario::Latency {
            qos,
            count: k(10_000, 2_000),
        });
    }
    v.push(Scenario::Connections {
        count: k(1_000, 200),
    });
    v.push(Scenario::Connections {
        count: k(10_000, 1_000),
    });
    for (qos, n, nq) in [(0, 100_000, 10_000), (1, 50_000, 5_000), (2, 50_000, 5_000)] {
        v.push(Scenario::Process {
            qos,
            count: k(n, nq),
        });
    }
    v
}
