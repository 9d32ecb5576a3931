//! The scenarios, named by compact ids such as `tp:1:64:20000:ct:win20:nagle:sub` that the
//! orchestrator passes to its client children.
//!
//! An id is `:`-separated tokens: the kind and its numbers first, then the runtime (`ct`
//! current-thread, `mt` multi-thread), the broker's configuration (`win20` for
//! `max_inflight_messages 20`, `nagle` or `nodelay` for `set_tcp_nodelay false`/`true`) and
//! whether a subscriber takes part (`sub`, `nosub`). [`Filter`] selects scenarios by them.
//!
//! The load tool side by side (`rate:QOS:SIZE:RATE:CONNS:SECS:win20:nagle`) is the exception:
//! whole publisher processes, always with a subscriber, so no runtime or subscriber token.

use std::fmt;
use std::str::FromStr;

/// The tokio runtime a library client runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rt {
    /// `new_current_thread()`: what `tern run`, the CLI and most small clients use.
    Current,
    /// `new_multi_thread()` with a worker per CPU.
    Multi,
}

impl Rt {
    /// `ct` or `mt`.
    pub fn token(self) -> &'static str {
        match self {
            Self::Current => "ct",
            Self::Multi => "mt",
        }
    }

    /// A label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Current => "current-thread",
            Self::Multi => "multi-thread",
        }
    }
}

/// The MQTT revision of a throughput scenario, and at level 5 whether the publisher uses
/// Topic Aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Proto {
    /// MQTT 3.1.1 (no token in the id).
    #[default]
    V311,
    /// MQTT 5 without Topic Aliases (`v5`): every PUBLISH carries its topic.
    V5,
    /// MQTT 5 with Topic Aliases (`v5alias`): the first PUBLISH carries the topic and an
    /// alias, the rest the alias alone.
    V5Alias,
}

impl Proto {
    /// The id token: none for 3.1.1, `v5`, `v5alias`.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Self::V311 => None,
            Self::V5 => Some("v5"),
            Self::V5Alias => Some("v5alias"),
        }
    }

    /// Whether this is MQTT 5.
    pub fn is_v5(self) -> bool {
        self != Self::V311
    }

    /// Whether the publisher uses Topic Aliases.
    pub fn aliases(self) -> bool {
        self == Self::V5Alias
    }

    /// A label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::V311 => "MQTT 3.1.1",
            Self::V5 => "MQTT 5",
            Self::V5Alias => "MQTT 5, topic aliases",
        }
    }
}

/// The settings of the private mosquitto that vary between cells; everything else is fixed
/// (see [`crate::broker::config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BrokerCfg {
    /// `max_inflight_messages`: QoS 1/2 messages the broker has in flight towards one client
    /// (20 is mosquitto's default; 0 means unlimited).
    pub inflight: u16,
    /// `set_tcp_nodelay`: false (Nagle's algorithm on) is mosquitto's default.
    pub nodelay: bool,
}

impl BrokerCfg {
    /// mosquitto's own defaults: a window of 20 and Nagle's algorithm on.
    pub const DEFAULT: Self = Self {
        inflight: 20,
        nodelay: false,
    };

    /// The order of the matrix's rows: mosquitto's defaults first.
    pub fn rank(self) -> (u8, bool) {
        let w = match self.inflight {
            20 => 0,
            100 => 1,
            0 => 2,
            _ => 3,
        };
        (w, self.nodelay)
    }

    /// The clients' in-flight window against this broker: the broker's own (100 when it
    /// has none). mosquitto also caps what a client may have in flight towards it at QoS 2
    /// by its `max_inflight_messages`, and drops a 3.1.1 client that sends more: every
    /// client, `mosquitto_pub -M 100` included, loses its connection at QoS 2 with a window of
    /// 100 against mosquitto's default of 20.
    pub fn client_window(self) -> u16 {
        if self.inflight == 0 {
            100
        } else {
            self.inflight
        }
    }

    /// `win20:nagle`.
    pub fn tokens(self) -> String {
        format!(
            "win{}:{}",
            self.inflight,
            if self.nodelay { "nodelay" } else { "nagle" }
        )
    }

    /// `window 20, Nagle on`.
    pub fn label(self) -> String {
        let w = if self.inflight == 0 {
            "unlimited".to_owned()
        } else {
            self.inflight.to_string()
        };
        format!(
            "window {w}, {}",
            if self.nodelay { "nodelay" } else { "Nagle" }
        )
    }
}

/// One scenario with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// Throughput: a publisher connection and (with `sub`) a subscriber connection in one
    /// process, on one runtime.
    Throughput {
        /// QoS of publish and subscription.
        qos: u8,
        /// Payload bytes.
        size: usize,
        /// Messages.
        count: u64,
        /// The runtime (paho runs on its own threads and takes part in `ct` cells only).
        rt: Rt,
        /// The broker.
        broker: BrokerCfg,
        /// Whether a subscriber receives the messages (else: publish-only, measured to the
        /// last completion).
        sub: bool,
        /// The MQTT revision (and Topic Aliases at level 5).
        proto: Proto,
    },
    /// Ping-pong: one connection subscribed to its own topic; publish, await the message.
    Latency {
        /// QoS.
        qos: u8,
        /// Round trips measured at most (after a warm-up of a tenth as many); a time budget
        /// may end the run earlier (the record says how many were measured).
        count: u64,
        /// The runtime (paho and the blocking floor client: `ct` cells only).
        rt: Rt,
        /// The broker.
        broker: BrokerCfg,
    },
    /// Concurrent idle connections from one process.
    Connections {
        /// How many.
        count: u64,
    },
    /// The load tool side by side: a whole publisher process (`tern bench pub`, or this
    /// harness's rumqttc or paho publisher) with `conns` connections sending `rate` msgs/s in
    /// all for `secs` seconds, and a subscriber outside it counting what arrives.
    Rate {
        /// QoS of the publishes and of the subscription.
        qos: u8,
        /// Payload bytes.
        size: usize,
        /// The asked total rate, msgs/s; `None`: saturation (`max`), as fast as the
        /// in-flight window lets each connection go.
        rate: Option<u64>,
        /// Publisher connections (the same for every client).
        conns: u32,
        /// Seconds of sending.
        secs: u32,
        /// The broker.
        broker: BrokerCfg,
    },
    /// Whole processes: a `pub -l` process, feeding a `sub -C` process (with `sub`).
    Process {
        /// QoS.
        qos: u8,
        /// Lines published.
        count: u64,
        /// The broker.
        broker: BrokerCfg,
        /// Whether a subscriber process receives the lines.
        sub: bool,
    },
}

impl Scenario {
    /// A short human label for tables.
    pub fn label(&self) -> String {
        match *self {
            Self::Throughput {
                qos,
                size,
                count,
                rt,
                broker,
                sub,
                proto,
            } => format!(
                "{}QoS {qos}, {}, {count} msgs, {}, {}, {}",
                if proto.is_v5() {
                    format!("{}, ", proto.label())
                } else {
                    String::new()
                },
                size_label(size),
                rt.label(),
                broker.label(),
                if sub { "subscriber" } else { "publish-only" }
            ),
            Self::Latency {
                qos,
                count,
                rt,
                broker,
            } => format!(
                "ping-pong QoS {qos}, {count} round trips, {}, {}",
                rt.label(),
                broker.label()
            ),
            Self::Connections { count } => format!("{count} idle connections"),
            Self::Rate {
                qos,
                size,
                rate,
                conns,
                secs,
                broker,
            } => format!(
                "{}, QoS {qos}, {}, {conns} connections, {secs} s, {}",
                rate_label(rate),
                size_label(size),
                broker.label()
            ),
            Self::Process {
                qos,
                count,
                broker,
                sub,
            } => format!(
                "pub -l{}, QoS {qos}, {count} lines, {}",
                if sub { " | sub -C" } else { " (no subscriber)" },
                broker.label()
            ),
        }
    }

    /// The broker this scenario runs against.
    pub fn broker(&self) -> BrokerCfg {
        match *self {
            Self::Throughput { broker, .. }
            | Self::Latency { broker, .. }
            | Self::Process { broker, .. }
            | Self::Rate { broker, .. } => broker,
            Self::Connections { .. } => BrokerCfg::DEFAULT,
        }
    }

    /// The runtime, for library scenarios.
    pub fn rt(&self) -> Rt {
        match *self {
            Self::Throughput { rt, .. } | Self::Latency { rt, .. } => rt,
            _ => Rt::Current,
        }
    }

    /// The libraries that run this scenario.
    pub fn libs(&self) -> &'static [&'static str] {
        match self {
            Self::Process { .. } => &["tern-cli", "mosquitto-cli"],
            Self::Rate { .. } => &["tern-bench", "rumqttc", "paho"],
            Self::Latency {
                rt: Rt::Current, ..
            } => &["tern", "rumqttc", "paho", "floor"],
            // paho's MQTT 5 is not wired into the harness: tern against rumqttc's `v5`.
            Self::Throughput { proto, .. } if proto.is_v5() => &["tern", "rumqttc"],
            Self::Throughput {
                rt: Rt::Current, ..
            }
            | Self::Connections { .. } => &["tern", "rumqttc", "paho"],
            _ => &["tern", "rumqttc"],
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

/// `10000 msgs/s` or `saturation`.
pub fn rate_label(rate: Option<u64>) -> String {
    rate.map_or_else(|| "saturation".to_owned(), |r| format!("{r} msgs/s"))
}

fn sub_token(sub: bool) -> &'static str {
    if sub { "sub" } else { "nosub" }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Throughput {
                qos,
                size,
                count,
                rt,
                broker,
                sub,
                proto,
            } => {
                write!(
                    f,
                    "tp:{qos}:{size}:{count}:{}:{}:{}",
                    rt.token(),
                    broker.tokens(),
                    sub_token(sub)
                )?;
                match proto.token() {
                    Some(t) => write!(f, ":{t}"),
                    None => Ok(()),
                }
            }
            Self::Latency {
                qos,
                count,
                rt,
                broker,
            } => write!(f, "lat:{qos}:{count}:{}:{}", rt.token(), broker.tokens()),
            Self::Connections { count } => write!(f, "conn:{count}"),
            Self::Rate {
                qos,
                size,
                rate,
                conns,
                secs,
                broker,
            } => {
                write!(f, "rate:{qos}:{size}:")?;
                match rate {
                    Some(r) => write!(f, "{r}")?,
                    None => f.write_str("max")?,
                }
                write!(f, ":{conns}:{secs}:{}", broker.tokens())
            }
            Self::Process {
                qos,
                count,
                broker,
                sub,
            } => write!(
                f,
                "proc:{qos}:{count}:{}:{}",
                broker.tokens(),
                sub_token(sub)
            ),
        }
    }
}

/// The tokens after the numbers: runtime, broker, subscriber, protocol. Missing ones take
/// the defaults (current-thread, mosquitto's defaults, with a subscriber, MQTT 3.1.1).
fn options(s: &str, rest: &[&str]) -> Result<(Rt, BrokerCfg, bool, Proto), String> {
    let (mut rt, mut broker, mut sub) = (Rt::Current, BrokerCfg::DEFAULT, true);
    let mut proto = Proto::V311;
    for t in rest {
        match *t {
            "v5" => proto = Proto::V5,
            "v5alias" => proto = Proto::V5Alias,
            "ct" => rt = Rt::Current,
            "mt" => rt = Rt::Multi,
            "nagle" => broker.nodelay = false,
            "nodelay" => broker.nodelay = true,
            "sub" => sub = true,
            "nosub" => sub = false,
            w if w.starts_with("win") => {
                broker.inflight = w[3..].parse().map_err(|_| format!("bad window in {s:?}"))?;
            }
            other => return Err(format!("unknown token {other:?} in {s:?}")),
        }
    }
    Ok((rt, broker, sub, proto))
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
        let rest = |i: usize| options(s, parts.get(i..).unwrap_or(&[]));
        match parts.first().copied() {
            Some("tp") => {
                let (rt, broker, sub, proto) = rest(4)?;
                Ok(Self::Throughput {
                    qos: qos(1)?,
                    size: num(2)? as usize,
                    count: num(3)?,
                    rt,
                    broker,
                    sub,
                    proto,
                })
            }
            Some("lat") => {
                let (rt, broker, _, proto) = rest(3)?;
                if proto.is_v5() {
                    return Err(format!("MQTT 5 is a throughput option, in {s:?}"));
                }
                Ok(Self::Latency {
                    qos: qos(1)?,
                    count: num(2)?,
                    rt,
                    broker,
                })
            }
            Some("conn") => Ok(Self::Connections { count: num(1)? }),
            Some("rate") => {
                let rest_tokens = parts.get(6..).unwrap_or(&[]);
                if rest_tokens.iter().any(|t| matches!(*t, "ct" | "mt")) {
                    return Err(format!(
                        "a rate scenario runs whole processes, no runtime token, in {s:?}"
                    ));
                }
                let (_, broker, sub, proto) = rest(6)?;
                if proto.is_v5() {
                    return Err(format!("MQTT 5 is a throughput option, in {s:?}"));
                }
                if !sub {
                    return Err(format!("a rate scenario always has a subscriber, in {s:?}"));
                }
                let rate = match parts.get(3).copied() {
                    Some("max") => None,
                    _ => Some(num(3)?),
                };
                let positive = |v: u64, what: &str| {
                    if v == 0 {
                        Err(format!("{what} must be positive, in {s:?}"))
                    } else {
                        Ok(v)
                    }
                };
                if let Some(r) = rate {
                    positive(r, "the rate")?;
                }
                let int = |i: usize, what: &str| -> Result<u32, String> {
                    u32::try_from(positive(num(i)?, what)?)
                        .map_err(|_| format!("{what} too large, in {s:?}"))
                };
                Ok(Self::Rate {
                    qos: qos(1)?,
                    size: num(2)? as usize,
                    rate,
                    conns: int(4, "connections")?,
                    secs: int(5, "seconds")?,
                    broker,
                })
            }
            Some("proc") => {
                let (_, broker, sub, proto) = rest(3)?;
                if proto.is_v5() {
                    return Err(format!("MQTT 5 is a throughput option, in {s:?}"));
                }
                Ok(Self::Process {
                    qos: qos(1)?,
                    count: num(2)?,
                    broker,
                    sub,
                })
            }
            _ => Err(format!("unknown scenario {s:?}")),
        }
    }
}

/// Selects scenarios: alternatives separated by commas on the command line, each a
/// `+`-joined list of terms that must all hold. A term with a `:` is a prefix of the id
/// (`tp:2`, `lat:0`); any other term must be one of the id's tokens (`mt`, `win0`,
/// `nodelay`, `nosub`, `tp`). `tp:2+ct+win0+nodelay+sub` is the measurement.
#[derive(Debug, Clone)]
pub struct Filter(Vec<Vec<String>>);

impl Filter {
    /// A filter from `--only` values; none selects everything.
    pub fn new(alternatives: &[String]) -> Self {
        Self(
            alternatives
                .iter()
                .map(|a| a.split('+').map(str::to_owned).collect())
                .collect(),
        )
    }

    /// Whether `s` is selected.
    pub fn matches(&self, s: &Scenario) -> bool {
        let id = s.to_string();
        let tokens: Vec<&str> = id.split(':').collect();
        self.0.is_empty()
            || self.0.iter().any(|terms| {
                terms.iter().all(|t| {
                    if t.contains(':') {
                        id.starts_with(t.as_str())
                    } else {
                        tokens.contains(&t.as_str())
                    }
                })
            })
    }
}

/// The asked rates of the load tool side by side: 10k and 50k msgs/s, then saturation.
pub const RATES: [Option<u64>; 3] = [Some(10_000), Some(50_000), None];

/// The windows of the matrix, mosquitto's default first.
pub const WINDOWS: [u16; 3] = [20, 100, 0];

/// Every broker configuration of the matrix, mosquitto's defaults first.
pub fn broker_cfgs() -> Vec<BrokerCfg> {
    let mut v = Vec::new();
    for inflight in WINDOWS {
        for nodelay in [false, true] {
            v.push(BrokerCfg { inflight, nodelay });
        }
    }
    v
}

/// The full plan, or the `--quick` one with small counts: the throughput matrix (QoS ×
/// runtime × broker window × broker Nagle × subscriber or not; the window only matters at
/// QoS 1 and 2, so QoS 0 runs with the default window alone), 16 KiB throughput at the
/// defaults, latency (QoS 0 and 1 × runtime × Nagle), idle connections, and whole processes
/// (`pub -l` with and without `sub -C`, × Nagle).
pub fn plan(quick: bool) -> Vec<Scenario> {
    let k = |full: u64, q: u64| if quick { q } else { full };
    let mut v = Vec::new();
    for (qos, n, nq) in [(0, 100_000, 5_000), (1, 50_000, 2_000), (2, 50_000, 1_000)] {
        for broker in broker_cfgs() {
            if qos == 0 && broker.inflight != BrokerCfg::DEFAULT.inflight {
                continue;
            }
            for rt in [Rt::Current, Rt::Multi] {
                for sub in [true, false] {
                    v.push(Scenario::Throughput {
                        qos,
                        size: 64,
                        count: k(n, nq),
                        rt,
                        broker,
                        sub,
                        proto: Proto::V311,
                    });
                }
            }
        }
    }
    for (qos, n, nq) in [(0, 20_000, 500), (1, 20_000, 500), (2, 10_000, 300)] {
        v.push(Scenario::Throughput {
            qos,
            size: 16 * 1024,
            count: k(n, nq),
            rt: Rt::Current,
            broker: BrokerCfg::DEFAULT,
            sub: true,
            proto: Proto::V311,
        });
    }
    // MQTT 5 against rumqttc's `v5` client, with and without Topic Aliases: 64 B, a
    // subscriber, current-thread, mosquitto's defaults.
    for (qos, n, nq) in [(0, 100_000, 5_000), (1, 50_000, 2_000), (2, 50_000, 1_000)] {
        for proto in [Proto::V5, Proto::V5Alias] {
            v.push(Scenario::Throughput {
                qos,
                size: 64,
                count: k(n, nq),
                rt: Rt::Current,
                broker: BrokerCfg::DEFAULT,
                sub: true,
                proto,
            });
        }
    }
    for qos in [0, 1] {
        for nodelay in [false, true] {
            for rt in [Rt::Current, Rt::Multi] {
                v.push(Scenario::Latency {
                    qos,
                    count: k(10_000, 500),
                    rt,
                    broker: BrokerCfg {
                        inflight: 20,
                        nodelay,
                    },
                });
            }
        }
    }
    v.push(Scenario::Connections {
        count: k(1_000, 100),
    });
    v.push(Scenario::Connections {
        count: k(10_000, 500),
    });
    // The load tool side by side: 10 publisher connections at 10k and 50k msgs/s and at
    // saturation, QoS 1, 64 B, mosquitto's defaults.
    for rate in RATES {
        v.push(Scenario::Rate {
            qos: 1,
            size: 64,
            rate,
            conns: 10,
            secs: k(10, 2) as u32,
            broker: BrokerCfg::DEFAULT,
        });
    }
    for (qos, n, nq) in [(0, 100_000, 5_000), (1, 50_000, 2_000), (2, 50_000, 1_000)] {
        for nodelay in [false, true] {
            for sub in [true, false] {
                v.push(Scenario::Process {
                    qos,
                    count: k(n, nq),
                    broker: BrokerCfg {
                        inflight: 20,
                        nodelay,
                    },
                    sub,
                });
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for s in plan(false).into_iter().chain(plan(true)) {
            let id = s.to_string();
            assert_eq!(id.parse::<Scenario>(), Ok(s), "{id}");
        }
    }

    #[test]
    fn filter_terms() {
        let s: Scenario = "tp:2:64:50000:ct:win0:nodelay:sub".parse().expect("valid");
        let f = |x: &str| Filter::new(&[x.to_owned()]).matches(&s);
        assert!(f("tp:2+ct+win0+nodelay+sub"));
        assert!(f("tp"));
        assert!(!f("win20"));
        assert!(!f("tp:1"));
        assert!(!f("nosub"));
        assert!(Filter::new(&[]).matches(&s));
        assert!(!f("v5"));
    }

    #[test]
    fn v5_tokens() {
        let s: Scenario = "tp:1:64:50000:ct:win20:nagle:sub:v5alias"
            .parse()
            .expect("valid");
        assert!(matches!(
            s,
            Scenario::Throughput {
                proto: Proto::V5Alias,
                ..
            }
        ));
        assert_eq!(s.libs(), &["tern", "rumqttc"]);
        assert!(Filter::new(&["v5alias".to_owned()]).matches(&s));
        assert!(!Filter::new(&["v5".to_owned()]).matches(&s));
        let old: Scenario = "tp:1:64:50000:ct:win20:nagle:sub".parse().expect("valid");
        assert!(matches!(
            old,
            Scenario::Throughput {
                proto: Proto::V311,
                ..
            }
        ));
        assert!("lat:0:500:ct:win20:nagle:v5".parse::<Scenario>().is_err());
        assert!(plan(false).contains(&s));
    }

    #[test]
    fn rate_ids() {
        let s: Scenario = "rate:1:64:10000:10:10:win20:nagle".parse().expect("valid");
        assert_eq!(
            s,
            Scenario::Rate {
                qos: 1,
                size: 64,
                rate: Some(10_000),
                conns: 10,
                secs: 10,
                broker: BrokerCfg::DEFAULT,
            }
        );
        assert_eq!(s.libs(), &["tern-bench", "rumqttc", "paho"]);
        assert!(plan(false).contains(&s));
        let max: Scenario = "rate:1:64:max:10:10:win20:nagle".parse().expect("valid");
        assert!(matches!(max, Scenario::Rate { rate: None, .. }));
        assert_eq!(max.to_string(), "rate:1:64:max:10:10:win20:nagle");
        // Missing broker tokens take mosquitto's defaults.
        let short: Scenario = "rate:0:64:500:2:3".parse().expect("valid");
        assert_eq!(short.broker(), BrokerCfg::DEFAULT);
        assert_eq!(short.to_string(), "rate:0:64:500:2:3:win20:nagle");
        let f = |x: &str| Filter::new(&[x.to_owned()]).matches(&max);
        assert!(f("rate"));
        assert!(f("rate:1:64:max"));
        assert!(f("rate+win20+nagle"));
        assert!(!f("rate:1:64:10000"));
        assert!(!f("tp"));
        for bad in [
            "rate:1:64:0:10:10",
            "rate:1:64:fast:10:10",
            "rate:1:64:10000:0:10",
            "rate:1:64:10000:10:0",
            "rate:1:64:10000:10",
            "rate:3:64:10000:10:10",
            "rate:1:64:10000:10:10:win20:nagle:v5",
            "rate:1:64:10000:10:10:win20:nagle:nosub",
            "rate:1:64:10000:10:10:mt",
            "rate:1:64:10000:99999999999:10",
        ] {
            assert!(bad.parse::<Scenario>().is_err(), "{bad} accepted");
        }
        // The quick plan runs the same rates, shorter.
        let quick: Vec<Scenario> = plan(true)
            .into_iter()
            .filter(|s| matches!(s, Scenario::Rate { .. }))
            .collect();
        assert_eq!(quick.len(), RATES.len());
        assert!(
            quick
                .iter()
                .all(|s| matches!(s, Scenario::Rate { secs: 2, .. }))
        );
    }
}
