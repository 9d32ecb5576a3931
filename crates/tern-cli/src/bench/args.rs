//! `tern bench` flags, in emqtt-bench's vocabulary (`-c`, `-R`, `-I`, `-t`, `-s`, `-q`, …),
//! parsed by hand because `-h` is the host, as in emqtt-bench and mosquitto's tools.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tern::{Protocol, QoS};

use crate::mosq::props::Properties;

use super::topic::Template;

/// Which load a run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Publishers (`tern bench pub`).
    Pub,
    /// Subscribers (`tern bench sub`).
    Sub,
    /// Connections only (`tern bench conn`).
    Conn,
}

impl Role {
    /// The word in client ids and messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Pub => "pub",
            Self::Sub => "sub",
            Self::Conn => "conn",
        }
    }
}

/// A bad command line; printed with a pointer to `--help`, exit 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// How fast connections are opened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ConnPace {
    /// `-R`: connections per second.
    PerSecond(f64),
    /// `-i`: milliseconds between two connections (0: all at once).
    Every(Duration),
}

impl ConnPace {
    /// Connections per second; `None` when unpaced.
    pub(crate) fn rate(self) -> Option<f64> {
        match self {
            Self::PerSecond(r) => Some(r),
            Self::Every(d) if d.is_zero() => None,
            Self::Every(d) => Some(1.0 / d.as_secs_f64()),
        }
    }
}

/// Transport of every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transport {
    /// `-S`/`--ssl`: TLS.
    pub(crate) tls: bool,
    /// `--ws`: WebSocket.
    pub(crate) ws: bool,
    /// `--ws-path` (default `/mqtt`).
    pub(crate) ws_path: String,
    /// `--cacertfile`: trust only this CA (PEM); else the system's roots.
    pub(crate) cafile: Option<PathBuf>,
    /// `--certfile` (PEM) for mutual TLS.
    pub(crate) certfile: Option<PathBuf>,
    /// `--keyfile` (PEM) for mutual TLS.
    pub(crate) keyfile: Option<PathBuf>,
    /// `--insecure`: skip certificate verification (self-signed test brokers).
    pub(crate) insecure: bool,
}

/// Everything a `pub`, `sub` or `conn` run is told.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub(crate) role: Role,
    /// `-h`: hosts, connections spread over them round-robin by client index.
    pub(crate) hosts: Vec<String>,
    /// `-p`.
    pub(crate) port: Option<u16>,
    /// `-V 3|4|5`: MQTT 3.1, 3.1.1 or 5.
    pub(crate) protocol: Protocol,
    /// `-x`: MQTT 5 Session Expiry Interval in seconds (`u32::MAX`: never); `None`: see
    /// [`Opts::session_expiry`].
    pub(crate) session_expiry: Option<u32>,
    /// MQTT 5: topic aliases for outgoing publishes, within the broker's Topic Alias
    /// Maximum (`--no-topic-alias`: off).
    pub(crate) topic_alias: bool,
    /// `--prop k=v` (pub, MQTT 5): User Properties every publish carries, in order.
    pub(crate) props: Properties,
    /// `-c`: connections.
    pub(crate) count: u32,
    /// `-n`: the first client index (several processes never share ids).
    pub(crate) start: u64,
    /// `-R` / `-i`.
    pub(crate) conn_pace: ConnPace,
    /// `-t` (pub, sub).
    pub(crate) topic: Option<Template>,
    /// `-q`.
    pub(crate) qos: QoS,
    /// `-r` (pub).
    pub(crate) retain: bool,
    /// `-s` (pub): payload size including the header.
    pub(crate) size: usize,
    /// `--payload-file` (pub): the body after the header.
    pub(crate) payload_file: Option<PathBuf>,
    /// `-I`: milliseconds between two messages of one publisher.
    pub(crate) interval: Duration,
    /// `--rate`: messages per second over all publishers (wins over `-I`).
    pub(crate) rate: Option<f64>,
    /// `--rate max` or `-I 0`: no pacing; each publisher sends as fast as its in-flight
    /// window (QoS 1/2) or its socket (QoS 0) takes, waiting for room (backpressure).
    pub(crate) saturate: bool,
    /// `-L`: messages in all (pub: sent, sub: received); `None`: unlimited.
    pub(crate) limit: Option<u64>,
    /// `--inflight`: QoS 1/2 messages awaiting acknowledgement per connection.
    pub(crate) inflight: u16,
    /// `-u`.
    pub(crate) username: Option<String>,
    /// `-P`.
    pub(crate) password: Option<String>,
    /// `-k` keep alive.
    pub(crate) keep_alive: Duration,
    /// `-C`: clean session.
    pub(crate) clean: bool,
    /// `--prefix`: client id prefix.
    pub(crate) prefix: Option<String>,
    /// `--shortids`: ids are `<prefix><index>`.
    pub(crate) shortids: bool,
    /// `--ifaddr`: local source addresses, used round-robin.
    pub(crate) ifaddr: Vec<IpAddr>,
    /// `--duration`: stop after this long (from the start instant).
    pub(crate) duration: Option<Duration>,
    /// `--start-at`: begin publishing at this wall-clock instant.
    pub(crate) start_at: Option<SystemTime>,
    /// `--churn`: connections closed and reopened per second (conn).
    pub(crate) churn: Option<f64>,
    /// `--json FILE`: one JSON object per counter per second, and the summary (`-`: stdout).
    pub(crate) json: Option<PathBuf>,
    /// `--hdr FILE`: the latency histogram as an HdrHistogram interval log.
    pub(crate) hdr: Option<PathBuf>,
    /// `--state FILE` (sub): sequence accounting kept across runs.
    pub(crate) state: Option<PathBuf>,
    /// `--until-last` (sub): stop once every publisher heard from sent its last message.
    pub(crate) until_last: bool,
    /// `--reconnect N`: reconnect automatically, giving up after N failed attempts in a
    /// row (`None`: never reconnect; `Some(None)`: forever).
    pub(crate) reconnect: Option<Option<u32>>,
    /// `--quiet`: no per-second lines.
    pub(crate) quiet: bool,
    pub(crate) transport: Transport,
}

impl Opts {
    fn new(role: Role) -> Self {
        Self {
            role,
            hosts: vec!["localhost".into()],
            port: None,
            protocol: Protocol::V3_1_1,
            session_expiry: None,
            topic_alias: true,
            props: Properties::default(),
            count: 200,
            start: 0,
            conn_pace: ConnPace::Every(Duration::from_millis(10)),
            topic: None,
            qos: QoS::AtMostOnce,
            retain: false,
            size: 256,
            payload_file: None,
            interval: Duration::from_secs(1),
            rate: None,
            saturate: false,
            limit: None,
            inflight: 100,
            username: None,
            password: None,
            keep_alive: Duration::from_secs(300),
            clean: true,
            prefix: None,
            shortids: false,
            ifaddr: Vec::new(),
            duration: None,
            start_at: None,
            churn: None,
            json: None,
            hdr: None,
            state: None,
            until_last: false,
            reconnect: None,
            quiet: false,
            transport: Transport {
                tls: false,
                ws: false,
                ws_path: "/mqtt".into(),
                cafile: None,
                certfile: None,
                keyfile: None,
                insecure: false,
            },
        }
    }

    /// Messages per second over all publishers.
    pub(crate) fn msg_rate(&self) -> Option<f64> {
        if self.saturate {
            return None;
        }
        Some(self.rate.unwrap_or_else(|| {
            f64::from(self.count) * 1000.0 / (self.interval.as_secs_f64() * 1000.0)
        }))
    }

    /// Whether the connections speak MQTT 5.
    pub(crate) fn v5(&self) -> bool {
        self.protocol == Protocol::V5
    }

    /// The Session Expiry Interval an MQTT 5 connection asks for: `-x`, else 0 with
    /// `-C true` and "never" (`u32::MAX`) with `-C false`. A session that ends with its
    /// connection (emqtt-bench's 0) would lose what a subscriber missed while it was away,
    /// so `-C false` keeps the 3.1.1 meaning.
    pub(crate) fn session_expiry(&self) -> u32 {
        self.session_expiry
            .unwrap_or(if self.clean { 0 } else { u32::MAX })
    }

    /// The client id of connection `index` (absolute: `-n` + position).
    pub(crate) fn client_id(&self, index: u64) -> String {
        let prefix = self.prefix.as_deref().unwrap_or("tern");
        if self.shortids {
            format!("{prefix}{index}")
        } else {
            format!("{prefix}_bench_{}_{index}", self.role.name())
        }
    }
}

/// The host name, as emqtt-bench prefixes its ids.
fn default_prefix() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "tern".into())
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// `--help`.
    Help,
    /// A run.
    Run(Box<Opts>),
}

/// Parses the flags after `tern bench pub|sub|conn`.
pub(crate) fn parse(role: Role, args: &[String]) -> Result<Parsed, UsageError> {
    let mut o = Opts::new(role);
    let mut it = args.iter();
    let mut size_set = false;
    let mut rate_max = false;
    while let Some(flag) = it.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (flag.as_str(), None),
        };
        let mut value = |what: &str| -> Result<String, UsageError> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| usage(format!("{flag} needs {what}")))
        };
        match flag {
            "--help" => return Ok(Parsed::Help),
            "-h" | "--host" => {
                o.hosts = value("a host list")?
                    .split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned)
                    .collect();
                if o.hosts.is_empty() {
                    return Err(usage("-h needs at least one host"));
                }
            }
            "-p" | "--port" => o.port = Some(num(flag, &value("a port")?)?),
            "-V" | "--version" => {
                o.protocol = match value("3, 4 or 5")?.as_str() {
                    "3" | "mqttv31" => Protocol::V3_1,
                    "4" | "mqttv311" => Protocol::V3_1_1,
                    "5" | "mqttv5" => Protocol::V5,
                    v => {
                        return Err(usage(format!(
                            "-V {v}: tern bench speaks 3 (MQTT 3.1), 4 (3.1.1) and 5 (MQTT 5)"
                        )));
                    }
                }
            }
            "-x" | "--session-expiry" => {
                let v = value("seconds or never")?;
                o.session_expiry = Some(match v.as_str() {
                    "never" => u32::MAX,
                    n => num(flag, n)?,
                });
            }
            "--no-topic-alias" => o.topic_alias = false,
            "--prop" => {
                let v = value("a user property k=v")?;
                let Some((k, val)) = v.split_once('=') else {
                    return Err(usage(format!("--prop {v:?}: expected NAME=VALUE")));
                };
                // mosquitto's `-D publish user-property NAME VALUE`, checked the same way.
                let mut words = ["publish", "user-property", k, val]
                    .map(str::to_owned)
                    .into_iter();
                let mut next = || Ok(words.next());
                o.props
                    .add(&mut next)
                    .map_err(|e| usage(format!("--prop {v:?}: {e}")))?;
            }
            "-c" | "--count" => {
                o.count = num(flag, &value("a count")?)?;
                if o.count == 0 {
                    return Err(usage("-c must be at least 1"));
                }
            }
            "-n" | "--startnumber" => o.start = num(flag, &value("a number")?)?,
            "-R" | "--connrate" => {
                let r: f64 = num(flag, &value("connections per second")?)?;
                if !(r > 0.0 && r.is_finite()) {
                    return Err(usage("-R must be a positive rate"));
                }
                o.conn_pace = ConnPace::PerSecond(r);
            }
            "-i" | "--interval" => {
                o.conn_pace =
                    ConnPace::Every(Duration::from_millis(num(flag, &value("milliseconds")?)?))
            }
            "-t" | "--topic" => o.topic = Some(Template::parse(&value("a topic")?).map_err(usage)?),
            "-q" | "--qos" => {
                o.qos = match value("0, 1 or 2")?.as_str() {
                    "0" => QoS::AtMostOnce,
                    "1" => QoS::AtLeastOnce,
                    "2" => QoS::ExactlyOnce,
                    q => return Err(usage(format!("-q {q}: QoS is 0, 1 or 2"))),
                }
            }
            "-r" | "--retain" => o.retain = true,
            "-s" | "--size" => {
                o.size = num(flag, &value("bytes")?)?;
                size_set = true;
            }
            "--payload-file" => o.payload_file = Some(value("a file")?.into()),
            "-I" | "--interval_of_msg" | "--interval-of-msg" => {
                let ms: f64 = num(flag, &value("milliseconds")?)?;
                if !(ms >= 0.0 && ms.is_finite()) {
                    return Err(usage(
                        "-I must be a number of milliseconds (0: as fast as the window takes)",
                    ));
                }
                o.interval = Duration::from_secs_f64(ms / 1000.0);
            }
            "--rate" => {
                let v = value("messages per second, or max")?;
                // The last one given wins.
                rate_max = v == "max";
                o.rate = if rate_max {
                    None
                } else {
                    let r: f64 = num(flag, &v)?;
                    if !(r > 0.0 && r.is_finite()) {
                        return Err(usage(
                            "--rate must be max or a positive number of messages per second",
                        ));
                    }
                    Some(r)
                };
            }
            "-L" | "--limit" => {
                let l: u64 = num(flag, &value("a message count")?)?;
                o.limit = (l > 0).then_some(l);
            }
            "--inflight" => {
                let n: u16 = num(flag, &value("a window")?)?;
                // emqtt-bench's 0 is "no limit": the protocol's largest window.
                o.inflight = if n == 0 { u16::MAX } else { n };
            }
            "-u" | "--username" => o.username = Some(value("a user name")?),
            "-P" | "--password" => o.password = Some(value("a password")?),
            "-k" | "--keepalive" => {
                o.keep_alive = Duration::from_secs(num(flag, &value("seconds")?)?)
            }
            "-C" | "--clean" => {
                o.clean = match value("true or false")?.as_str() {
                    "true" => true,
                    "false" => false,
                    v => return Err(usage(format!("-C {v}: expected true or false"))),
                }
            }
            "--prefix" => o.prefix = Some(value("a prefix")?),
            "--shortids" => o.shortids = true,
            "--ifaddr" => {
                o.ifaddr = value("addresses")?
                    .split(',')
                    .map(|a| {
                        a.trim()
                            .parse::<IpAddr>()
                            .map_err(|_| usage(format!("--ifaddr: {a:?} is not an IP address")))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--duration" => o.duration = Some(duration(&value("seconds")?)?),
            "--start-at" => o.start_at = Some(instant(&value("an instant")?)?),
            "--churn" => {
                let r: f64 = num(flag, &value("connections per second")?)?;
                if !(r > 0.0 && r.is_finite()) {
                    return Err(usage("--churn must be a positive rate"));
                }
                o.churn = Some(r);
            }
            "--json" => o.json = Some(value("a file")?.into()),
            "--hdr" => o.hdr = Some(value("a file")?.into()),
            "--state" => o.state = Some(value("a file")?.into()),
            "--quiet" => o.quiet = true,
            "--until-last" => o.until_last = true,
            "--reconnect" => {
                o.reconnect = match value("a number of attempts or forever")?.as_str() {
                    "forever" => Some(None),
                    n => match num::<u32>(flag, n)? {
                        0 => None,
                        n => Some(Some(n)),
                    },
                }
            }
            "-S" | "--ssl" => o.transport.tls = true,
            "--ws" => o.transport.ws = true,
            "--ws-path" => o.transport.ws_path = value("a path")?,
            "--cacertfile" => o.transport.cafile = Some(value("a file")?.into()),
            "--certfile" => o.transport.certfile = Some(value("a file")?.into()),
            "--keyfile" => o.transport.keyfile = Some(value("a file")?.into()),
            "--insecure" => o.transport.insecure = true,
            other => return Err(usage(format!("unknown option {other:?}"))),
        }
    }
    // `--rate N` wins over `-I`, `--rate max` over both.
    o.saturate = rate_max || (o.rate.is_none() && o.interval.is_zero());
    check(&o, size_set)?;
    if o.prefix.is_none() {
        o.prefix = Some(default_prefix());
    }
    Ok(Parsed::Run(Box::new(o)))
}

/// Cross-flag rules.
fn check(o: &Opts, size_set: bool) -> Result<(), UsageError> {
    let needs_topic = matches!(o.role, Role::Pub | Role::Sub);
    if needs_topic && o.topic.is_none() {
        return Err(usage(format!(
            "tern bench {} needs -t topic",
            o.role.name()
        )));
    }
    if o.role == Role::Pub {
        if let Some(t) = &o.topic {
            t.check_publish().map_err(usage)?;
        }
        if size_set && o.payload_file.is_some() {
            return Err(usage("-s and --payload-file exclude each other"));
        }
        if o.payload_file.is_none() && o.size < super::header::LEN {
            return Err(usage(format!(
                "-s {}: the payload carries a {}-byte header (send time, sequence, publisher), so -s is at least {}",
                o.size,
                super::header::LEN,
                super::header::LEN
            )));
        }
    }
    if o.churn.is_some() && o.role != Role::Conn {
        return Err(usage("--churn is for tern bench conn"));
    }
    if (o.state.is_some() || o.until_last) && o.role != Role::Sub {
        return Err(usage("--state and --until-last are for tern bench sub"));
    }
    if o.hdr.is_some() && o.role == Role::Pub {
        return Err(usage(
            "--hdr records end-to-end latency, measured by tern bench sub (conn: connect latency)",
        ));
    }
    if o.transport.certfile.is_some() != o.transport.keyfile.is_some() {
        return Err(usage("--certfile and --keyfile go together"));
    }
    if o.protocol != Protocol::V5 {
        let v5_only = if o.session_expiry.is_some() {
            Some("-x (session expiry)")
        } else if !o.topic_alias {
            Some("--no-topic-alias")
        } else if o.props.any {
            Some("--prop (user properties)")
        } else {
            None
        };
        if let Some(flag) = v5_only {
            return Err(usage(format!("{flag} is MQTT 5: add -V 5")));
        }
    }
    if o.props.any && o.role != Role::Pub {
        return Err(usage("--prop is for tern bench pub"));
    }
    if o.start.checked_add(u64::from(o.count)).is_none() {
        return Err(usage("-n + -c overflows"));
    }
    Ok(())
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, UsageError> {
    v.trim()
        .parse()
        .map_err(|_| usage(format!("{flag} {v:?}: not a valid number")))
}

/// `10`, `10s`, `1.5s`, `500ms`, `2m`, `1h`.
fn duration(v: &str) -> Result<Duration, UsageError> {
    let bad = || {
        usage(format!(
            "--duration {v:?}: expected e.g. 30, 30s, 500ms, 5m, 1h"
        ))
    };
    let (n, unit) = match v.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: f64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A wall-clock instant: Unix seconds (`1764950400`, `1764950400.5`) or RFC 3339 in UTC
/// (`2026-12-05T16:00:00Z`).
pub(crate) fn instant(v: &str) -> Result<SystemTime, UsageError> {
    let bad = || {
        usage(format!(
            "--start-at {v:?}: expected Unix seconds or YYYY-MM-DDTHH:MM:SS[.fff]Z"
        ))
    };
    let secs: f64 = match v.parse::<f64>() {
        Ok(s) => s,
        Err(_) => rfc3339(v).ok_or_else(bad)?,
    };
    if !(secs >= 0.0 && secs.is_finite()) {
        return Err(bad());
    }
    Ok(UNIX_EPOCH + Duration::from_secs_f64(secs))
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
fn rfc3339(v: &str) -> Option<f64> {
    let v = v.strip_suffix('Z').or_else(|| v.strip_suffix("+00:00"))?;
    let (date, time) = v.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let s: f64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s >= 61.0 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60) as f64 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn opts(role: Role, s: &str) -> Opts {
        match parse(role, &args(s)) {
            Ok(Parsed::Run(o)) => *o,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn emqtt_bench_flags_parse() {
        let o = opts(
            Role::Pub,
            "-h a,b -p 1884 -c 10 -n 100 -R 50 -t t/%i -q 1 -r -s 64 -I 20 -L 1000 --inflight 0 -u u -P p -k 30 -C false --shortids --ifaddr 127.0.0.2,127.0.0.3 --duration 2m --reconnect 5",
        );
        assert_eq!(o.hosts, ["a", "b"]);
        assert_eq!((o.port, o.count, o.start), (Some(1884), 10, 100));
        assert_eq!(o.conn_pace, ConnPace::PerSecond(50.0));
        assert_eq!((o.qos, o.retain, o.size), (QoS::AtLeastOnce, true, 64));
        assert_eq!(o.msg_rate(), Some(500.0));
        assert_eq!((o.limit, o.inflight), (Some(1000), u16::MAX));
        assert!(!o.clean && o.shortids);
        assert_eq!(o.ifaddr.len(), 2);
        assert_eq!(o.duration, Some(Duration::from_secs(120)));
        assert_eq!(o.reconnect, Some(Some(5)));
        assert_eq!(
            opts(Role::Sub, "-t x --reconnect forever").reconnect,
            Some(None)
        );
        assert_eq!(opts(Role::Sub, "-t x --reconnect 0").reconnect, None);
        assert_eq!(o.client_id(105), format!("{}105", default_prefix()));
    }

    #[test]
    fn mqtt5_flags_parse() {
        for v in ["5", "mqttv5"] {
            let o = opts(Role::Pub, &format!("-V {v} -t x"));
            assert!(o.v5(), "-V {v}");
            assert!(o.topic_alias, "topic aliases are on by default");
            assert_eq!(
                o.session_expiry(),
                0,
                "-C true: the session ends with the link"
            );
        }
        assert_eq!(opts(Role::Sub, "-V 3 -t x").protocol, Protocol::V3_1);
        assert_eq!(
            opts(Role::Sub, "-V mqttv311 -t x").protocol,
            Protocol::V3_1_1
        );
        let o = opts(
            Role::Pub,
            "-V 5 -t x -C false --no-topic-alias --prop a=1 --prop b=x=y --prop a=2",
        );
        assert!(!o.topic_alias);
        assert_eq!(o.session_expiry(), u32::MAX, "-C false keeps the session");
        let users: Vec<_> = o
            .props
            .publish
            .user_properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(users, [("a", "1"), ("b", "x=y"), ("a", "2")]);
        assert_eq!(
            opts(Role::Sub, "-V 5 -t x -C false -x 600").session_expiry(),
            600
        );
        assert_eq!(opts(Role::Conn, "-V 5 -x never").session_expiry(), u32::MAX);
        assert_eq!(opts(Role::Conn, "-V 5 -C false -x 0").session_expiry(), 0);
    }

    #[test]
    fn mqtt5_only_flags_need_v5() {
        for (role, bad) in [
            (Role::Pub, "-V 6 -t x"),
            (Role::Pub, "-V 311 -t x"),
            (Role::Pub, "-t x -x 60"),
            (Role::Pub, "-V 4 -t x --no-topic-alias"),
            (Role::Pub, "-t x --prop a=b"),
            (Role::Pub, "-V 5 -t x --prop novalue"),
            (Role::Sub, "-V 5 -t x --prop a=b"),
            (Role::Conn, "-V 5 -x soon"),
            (Role::Conn, "-V 5 -x -1"),
        ] {
            assert!(parse(role, &args(bad)).is_err(), "{bad} was accepted");
        }
        let Err(e) = parse(Role::Pub, &args("-V 6 -t x")) else {
            panic!("-V 6 accepted");
        };
        assert!(e.0.contains("5 (MQTT 5)"), "{e}");
    }

    #[test]
    fn rate_wins_over_interval() {
        let o = opts(Role::Pub, "-c 4 -I 10 --rate 2500 -t x");
        assert_eq!(o.msg_rate(), Some(2500.0));
    }

    #[test]
    fn rate_max_and_interval_zero_saturate() {
        for line in [
            "-t x --rate max",
            "-t x -I 0",
            "-t x -I 10 --rate max",
            "-t x --rate 5 --rate max",
        ] {
            let o = opts(Role::Pub, line);
            assert!(o.saturate, "{line}");
            assert_eq!(o.msg_rate(), None, "{line}");
        }
        for line in ["-t x -I 0 --rate 100", "-t x --rate max --rate 100"] {
            assert_eq!(opts(Role::Pub, line).msg_rate(), Some(100.0), "{line}");
        }
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        for bad in [
            "-t x -q 3",
            "-t x -c 0",
            "-t x -s 8",
            "-c 1",
            "-t x --bogus",
            "-t x -p",
            "-t x --rate -1",
            "-t x --rate maximum",
            "-t x -I -5",
            "-t x --ifaddr nope",
            "-t x --duration soon",
            "-t x/# ",
            "-t x --start-at yesterday",
        ] {
            assert!(parse(Role::Pub, &args(bad)).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn start_at_takes_unix_seconds_and_rfc3339() {
        let a = instant("1764950400").expect("unix");
        let b = instant("2025-12-05T16:00:00Z").expect("rfc3339");
        assert_eq!(a, b);
        assert_eq!(
            instant("2025-12-05T16:00:00.5Z").expect("fraction"),
            b + Duration::from_millis(500)
        );
    }
}
