//! The mosquitto_pub / mosquitto_sub command lines, parsed by hand: getopt-style, one flag per
//! argument, every value taken verbatim (so `-m -1` publishes "-1"), `-h` the host.
//!
//! A hand parser rather than clap because the contract is mosquitto's: its flag spellings,
//! values that start with `-`, byte payloads from `OsString`, and its error sentences
//! ("Error: Invalid QoS given: 3"). Which flags exist, and whether each takes a value, is the
//! table in [`super::flags`]; help, completions and man pages come from the same table.
//!
//! Before the command line, mosquitto's per-user defaults are read as mosquitto reads them
//! ([`with_defaults`]), and `-o file` inserts a file's options where it stands.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tern::QoS;
use tern::broker::Proxy;
use tern::tls::TlsVersion;
use tern_proto::{TopicFilter, TopicName};

use super::flags::{self, Cmd};
use super::props::Properties;

/// `-V`: the MQTT version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// `-V 31` / `mqttv31`.
    V31,
    /// `-V 311` / `mqttv311`: the default of `tern pub` and `tern sub`.
    V311,
    /// `-V 5` / `mqttv5`, also chosen by any `-D`: the default of `tern rr`.
    V5,
}

impl Version {
    /// The `-V` spelling, for messages.
    pub(crate) fn flag(self) -> &'static str {
        match self {
            Self::V31 => "31",
            Self::V311 => "311",
            Self::V5 => "5",
        }
    }
}

/// A command line that cannot be run; printed as `Error: {0}` plus a pointer to `--help`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageError(pub(crate) String);

impl UsageError {
    fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

type Result<T> = std::result::Result<T, UsageError>;

/// Flags shared by `tern pub` and `tern sub`: where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Common {
    /// `-h`; `None` means `localhost` (or the `-L` host).
    pub(crate) host: Option<String>,
    /// `-p`; `None` means 1883, 8883 with TLS (or the `-L` port).
    pub(crate) port: Option<u16>,
    /// `-t`, in order (plus the `-L` path).
    pub(crate) topics: Vec<String>,
    /// `-q`: publish QoS for pub, requested QoS for sub.
    pub(crate) qos: QoS,
    /// `-i`.
    pub(crate) client_id: Option<String>,
    /// `-I`: the id becomes prefix + process id.
    pub(crate) id_prefix: Option<String>,
    /// `-k`, seconds; 0 turns keepalive off.
    pub(crate) keepalive: u16,
    /// `-u`.
    pub(crate) username: Option<String>,
    /// `-P`, bytes as given.
    pub(crate) password: Option<Vec<u8>>,
    /// Not `-c`.
    pub(crate) clean_session: bool,
    /// `-V` (and `-D`, which selects 5).
    pub(crate) version: Version,
    /// `-D`: MQTT v5 properties by packet; `-x` ends up in `props.connect`.
    pub(crate) props: Properties,
    /// `-x`: session expiry interval in seconds (`u32::MAX`: never), MQTT v5 only.
    pub(crate) session_expiry: Option<u32>,
    /// `--will-topic`.
    pub(crate) will_topic: Option<String>,
    /// `--will-payload`.
    pub(crate) will_payload: Option<Vec<u8>>,
    /// `--will-qos`.
    pub(crate) will_qos: QoS,
    /// `--will-retain`.
    pub(crate) will_retain: bool,
    /// `--cafile`.
    pub(crate) cafile: Option<PathBuf>,
    /// `--capath`.
    pub(crate) capath: Option<PathBuf>,
    /// `--cert`.
    pub(crate) cert: Option<PathBuf>,
    /// `--key`.
    pub(crate) key: Option<PathBuf>,
    /// `--insecure`: skip the host-name check, keep chain verification (as mosquitto).
    pub(crate) insecure: bool,
    /// `--tls-use-os-certs`.
    pub(crate) os_certs: bool,
    /// `-L`, split into its parts.
    pub(crate) url: Option<UrlParts>,
    /// `-d`.
    pub(crate) debug: bool,
    /// `--quiet`.
    pub(crate) quiet: bool,
    /// `-M`: outgoing QoS 1/2 messages in flight.
    pub(crate) max_inflight: Option<u16>,
    /// `--unix`: the broker's Unix domain socket.
    pub(crate) unix: Option<String>,
    /// `--proxy`.
    pub(crate) proxy: Option<Proxy>,
    /// `-A`: local address to connect from.
    pub(crate) bind: Option<std::net::IpAddr>,
    /// `--connect-timeout`.
    pub(crate) connect_timeout: Option<Duration>,
    /// `--tls-version`.
    pub(crate) tls_version: Option<TlsVersion>,
    /// `--tls-alpn`, in order.
    pub(crate) alpn: Vec<String>,
}

impl Default for Common {
    fn default() -> Self {
        Self {
            host: None,
            port: None,
            topics: Vec::new(),
            qos: QoS::AtMostOnce,
            client_id: None,
            id_prefix: None,
            keepalive: 60,
            username: None,
            password: None,
            clean_session: true,
            version: Version::V311,
            props: Properties::default(),
            session_expiry: None,
            will_topic: None,
            will_payload: None,
            will_qos: QoS::AtMostOnce,
            will_retain: false,
            cafile: None,
            capath: None,
            cert: None,
            key: None,
            insecure: false,
            os_certs: false,
            url: None,
            debug: false,
            quiet: false,
            max_inflight: None,
            unix: None,
            proxy: None,
            bind: None,
            connect_timeout: None,
            tls_version: None,
            alpn: Vec::new(),
        }
    }
}

/// `-L mqtt://user:pass@host:port/topic`: the broker part goes to `tern::Broker::parse`, the
/// path after the authority is the topic (mosquitto takes it verbatim, no percent-decoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts {
    /// `scheme://[user[:pass]@]host[:port]`.
    pub(crate) broker: String,
    /// Everything after the first `/` past the authority; `None` when empty.
    pub(crate) topic: Option<String>,
}

/// Where `tern pub` takes its message from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `-m`.
    Message(Vec<u8>),
    /// `-f`.
    File(PathBuf),
    /// `-s`: all of standard input, one message.
    Stdin,
    /// `-l`: one message per line of standard input, newline removed.
    Lines,
    /// `-n`: zero-length payload.
    Null,
    /// `--payload-size`: this many random bytes, new for each message.
    Random(usize),
}

/// `tern pub`'s flags.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PubArgs {
    pub(crate) common: Common,
    /// Exactly one of `-m -f -s -l -n`.
    pub(crate) source: Source,
    /// `-r`.
    pub(crate) retain: bool,
    /// `--repeat`: publish the single message this many times (ignored with `-l`).
    pub(crate) repeat: u32,
    /// `--repeat-delay`, between repeats.
    pub(crate) repeat_delay: Duration,
}

/// `tern sub`'s flags.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SubArgs {
    pub(crate) common: Common,
    /// `-C`: exit after this many messages printed.
    pub(crate) count: Option<u64>,
    /// `-W`: exit with the timeout code after this long.
    pub(crate) timeout: Option<Duration>,
    /// `-R`: skip messages with the retain flag (stale ones).
    pub(crate) no_retain: bool,
    /// `--retained-only`: print retained messages, exit at the first live one.
    pub(crate) retained_only: bool,
    /// `-v`: `topic payload`.
    pub(crate) verbose: bool,
    /// `-N`: no newline after each message.
    pub(crate) no_eol: bool,
    /// `-F`: the format string as given.
    pub(crate) format: Option<Vec<u8>>,
    /// `-T`: topics (filters) whose messages are not printed.
    pub(crate) filter_out: Vec<TopicFilter>,
    /// `-U`: filters to unsubscribe from after subscribing.
    pub(crate) unsubscribe: Vec<String>,
    /// `-E`: exit once the subscriptions are acknowledged.
    pub(crate) exit_after_sub: bool,
    /// `--remove-retained`: clear each retained message received.
    pub(crate) remove_retained: bool,
    /// `--random-filter`: print a message with this probability (0.001..=1).
    pub(crate) random_filter: Option<f64>,
    /// `--pretty`: indented JSON for `%j` / `%J`.
    pub(crate) pretty: bool,
    /// `--retain-as-published` (MQTT v5 subscription option).
    pub(crate) retain_as_published: bool,
}

/// `tern rr`'s flags (mosquitto_rr's).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RrArgs {
    /// `-t` is the request topic; `props.publish` carries the response topic and
    /// correlation data at level 5.
    pub(crate) common: Common,
    /// The request: one of `-m -f -s -n`, or `-l` for one request per line.
    pub(crate) source: Source,
    /// `-e`: where the response is awaited.
    pub(crate) response_topic: String,
    /// `-W`: give up waiting after this long.
    pub(crate) timeout: Option<Duration>,
    /// `-R`: ignore retained messages on the response topic.
    pub(crate) no_retain: bool,
    /// `-v`.
    pub(crate) verbose: bool,
    /// `-N`.
    pub(crate) no_eol: bool,
    /// `-F`.
    pub(crate) format: Option<Vec<u8>>,
    /// `--pretty`.
    pub(crate) pretty: bool,
    /// At MQTT v5 under `-l`: no `-D publish correlation-data` was given, so each request
    /// gets fresh random correlation data (a late answer to one line is not taken for the
    /// next's). A single request carries none, as mosquitto_rr's.
    pub(crate) generated_correlation: bool,
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed<T> {
    /// `--help`.
    Help,
    /// `--version`.
    Version,
    /// Run with these flags.
    Run(T),
}

/// A cursor over the arguments that hands out flag values.
struct Cursor {
    args: VecDeque<OsString>,
    /// `-o` files being read, to refuse one that includes itself.
    depth: usize,
}

impl Cursor {
    fn new(args: Vec<OsString>) -> Self {
        Self {
            args: args.into(),
            depth: 0,
        }
    }

    fn next(&mut self) -> Option<OsString> {
        self.args.pop_front()
    }

    /// Inserts `-o file`'s options where it stood.
    fn include(&mut self, path: &Path) -> Result<()> {
        self.depth += 1;
        if self.depth > 8 {
            return Err(UsageError::new(format!(
                "Options file {} includes options files 8 deep; is it including itself?",
                path.display()
            )));
        }
        let text = std::fs::read(path).map_err(|e| {
            UsageError::new(format!("Cannot read options file {}: {e}", path.display()))
        })?;
        for arg in options_file_args(&text).into_iter().rev() {
            self.args.push_front(arg);
        }
        Ok(())
    }

    fn value(&mut self, flag: &str) -> Result<OsString> {
        self.next().ok_or_else(|| missing_value(flag))
    }

    fn string(&mut self, flag: &str) -> Result<String> {
        let v = self.value(flag)?;
        v.into_string()
            .map_err(|v| UsageError::new(format!("{flag} value {v:?} is not valid UTF-8.")))
    }

    fn bytes(&mut self, flag: &str) -> Result<Vec<u8>> {
        Ok(os_bytes(self.value(flag)?))
    }

    fn path(&mut self, flag: &str) -> Result<PathBuf> {
        Ok(PathBuf::from(self.value(flag)?))
    }

    fn number<T: std::str::FromStr>(&mut self, flag: &str, what: &str) -> Result<T> {
        let s = self.string(flag)?;
        s.trim()
            .parse()
            .map_err(|_| UsageError::new(format!("Invalid {what} given: {s}")))
    }

    /// `-W`: seconds, fractions allowed (beyond mosquitto); what is not a positive number
    /// is refused in mosquitto's words, with the value its atoi(3) read.
    fn timeout(&mut self, flag: &str) -> Result<Duration> {
        let s = self.string(flag)?;
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| UsageError::new(format!("Invalid timeout \"{}\".\n", atoi(&s))))
    }

    fn qos(&mut self, flag: &str) -> Result<QoS> {
        let s = self.string(flag)?;
        s.trim()
            .parse::<u8>()
            .ok()
            .and_then(QoS::from_u8)
            .ok_or_else(|| UsageError::new(format!("Invalid QoS given: {s}")))
    }

    fn seconds(&mut self, flag: &str, what: &str) -> Result<Duration> {
        let s = self.string(flag)?;
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| UsageError::new(format!("Invalid {what} given: {s}")))
    }
}

/// A flag at the end of the command line without its value: mosquitto's sentence (naming
/// the flag as mosquitto does, and what it wanted) where mosquitto has the flag.
fn missing_value(flag: &str) -> UsageError {
    let (shown, what) = match flag {
        "-A" => ("-A", "address"),
        "-C" => ("-C", "count"),
        "-e" => ("-e", "response topic"),
        "-F" => ("-F", "format"),
        "-f" | "--cafile" | "--cert" | "--key" => (flag, "file"),
        "-h" => ("-h", "host"),
        "-i" => ("-i", "id"),
        "-I" => ("-I", "id prefix"),
        "-k" => ("-k", "keepalive"),
        "-L" => ("-L", "URL"),
        "-m" => ("-m", "message"),
        "-p" => ("-p", "port"),
        "-P" => ("-P", "password"),
        "-q" => ("-q", "QoS"),
        "-t" => ("-t", "topic"),
        "-T" => ("-T", "topic filter"),
        "-u" => ("-u", "username"),
        "-U" => ("-U", "unsubscribe topic"),
        "-V" => ("--protocol-version", "version"),
        "-W" => ("-W", "timeout"),
        "-x" => ("-x", "session expiry interval"),
        "--capath" => (flag, "directory"),
        "--ciphers" => (flag, "ciphers"),
        "--keyform" => (flag, "keyform"),
        "--psk" => (flag, "key"),
        "--psk-identity" => (flag, "identity"),
        "--proxy" => (flag, "proxy url"),
        "--random-filter" => (flag, "chance"),
        "--repeat" => (flag, "count"),
        "--repeat-delay" => (flag, "time"),
        "--tls-alpn" => (flag, "protocol"),
        "--tls-engine" => (flag, "engine_id"),
        "--tls-engine-kpass-sha1" => (flag, "kpass sha1"),
        "--tls-version" => (flag, "version"),
        "--unix" => (flag, "socket path"),
        "--will-payload" => (flag, "will payload"),
        "--will-qos" => (flag, "will QoS"),
        "--will-topic" => (flag, "will topic"),
        _ => {
            return UsageError::new(format!("{flag} argument given but no value specified."));
        }
    };
    UsageError::new(format!("{shown} argument given but no {what} specified.\n"))
}

/// C's atoi(3), as mosquitto reads counts: leading blanks, a sign, the digits that follow
/// (0 when there are none), saturating where atoi's result would be undefined.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |n, d| {
            n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    if neg { -n } else { n }
}

#[cfg(unix)]
fn os_bytes(s: OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStringExt;
    s.into_vec()
}

#[cfg(not(unix))]
fn os_bytes(s: OsString) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

/// The arguments of an options file (`-o`, and mosquitto's per-user defaults files) as
/// mosquitto's `client_config_load` reads them: one option per line, the flag up to the
/// first space and the rest of the line its value; blank lines and lines starting with `#`
/// skipped.
pub(crate) fn options_file_args(text: &[u8]) -> Vec<OsString> {
    let mut args = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.trim_ascii_start();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        match line.iter().position(|&b| b == b' ') {
            Some(i) => {
                args.push(bytes_os(&line[..i]));
                args.push(bytes_os(&line[i + 1..]));
            }
            None => args.push(bytes_os(line.trim_ascii_end())),
        }
    }
    args
}

#[cfg(unix)]
fn bytes_os(b: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(b).to_owned()
}

#[cfg(not(unix))]
fn bytes_os(b: &[u8]) -> OsString {
    String::from_utf8_lossy(b).into_owned().into()
}

/// The per-user defaults file for `cmd`: `tern_pub` / `tern_sub` when it exists, otherwise
/// mosquitto's `mosquitto_pub` / `mosquitto_sub`, in `$XDG_CONFIG_HOME` or else
/// `$HOME/.config`.
pub(crate) fn defaults_file(cmd: Cmd) -> Option<PathBuf> {
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let (tern, mosquitto) = match cmd {
        Cmd::Pub => ("tern_pub", "mosquitto_pub"),
        Cmd::Sub => ("tern_sub", "mosquitto_sub"),
        Cmd::Rr => ("tern_rr", "mosquitto_rr"),
    };
    [tern, mosquitto]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// The command line with the per-user defaults file's options in front (so the command
/// line wins), as mosquitto_pub / mosquitto_sub do.
pub(crate) fn with_defaults(cmd: Cmd, args: Vec<OsString>) -> Result<Vec<OsString>> {
    let Some(path) = defaults_file(cmd) else {
        return Ok(args);
    };
    let text = std::fs::read(&path).map_err(|e| {
        UsageError::new(format!("Cannot read defaults file {}: {e}", path.display()))
    })?;
    let mut all = options_file_args(&text);
    all.extend(args);
    Ok(all)
}

/// Parses one flag shared by both commands (by its canonical spelling); `Ok(false)` when
/// `flag` is not one of them.
/// The payload flags `pub` and `rr` share (`-m`, `-f`, `-s`, `-l`, `-n`); `None` for any
/// other flag.
fn source_flag(flag: &str, cur: &mut Cursor) -> Result<Option<Source>> {
    Ok(Some(match flag {
        "-m" => Source::Message(cur.bytes(flag)?),
        "-f" => Source::File(cur.path(flag)?),
        "-s" => Source::Stdin,
        "-l" => Source::Lines,
        "-n" => Source::Null,
        _ => return Ok(None),
    }))
}

fn common_flag(c: &mut Common, flag: &str, cur: &mut Cursor) -> Result<bool> {
    match flag {
        "-h" => c.host = Some(cur.string(flag)?),
        "-p" => {
            let p: u16 = cur.number(flag, "port")?;
            if p == 0 {
                return Err(UsageError::new("Invalid port given: 0"));
            }
            c.port = Some(p);
        }
        "-t" => c.topics.push(cur.string(flag)?),
        "-q" => c.qos = cur.qos(flag)?,
        "-i" => c.client_id = Some(cur.string(flag)?),
        "-I" => c.id_prefix = Some(cur.string(flag)?),
        "-k" => {
            // As mosquitto: atoi(3), 5 to 65535.
            c.keepalive = u16::try_from(atoi(&cur.string(flag)?))
                .ok()
                .filter(|k| *k >= 5)
                .ok_or_else(|| {
                    UsageError::new(
                        "Invalid keepalive given, it must be between 5 and 65535 inclusive.\n",
                    )
                })?;
        }
        "-u" => c.username = Some(cur.string(flag)?),
        "-P" => c.password = Some(cur.bytes(flag)?),
        "-c" => c.clean_session = false,
        "-V" => {
            let v = cur.string(flag)?;
            c.version = match v.as_str() {
                "31" | "mqttv31" => Version::V31,
                "311" | "mqttv311" => Version::V311,
                "5" | "mqttv5" => Version::V5,
                _ => {
                    // mosquitto's words; `--help` lists the versions.
                    return Err(UsageError::new(
                        "Invalid protocol version argument given.\n",
                    ));
                }
            };
        }
        "-D" => {
            let mut next = || match cur.next() {
                None => Ok(None),
                Some(w) => w
                    .into_string()
                    .map(Some)
                    .map_err(|w| format!("--property value {w:?} is not valid UTF-8.")),
            };
            // mosquitto ends its -D sentences with a blank line of their own (not its
            // "Error in PUBLISH properties: ..." checks of the values).
            c.props.add(&mut next).map_err(|e| {
                UsageError(if e.is_empty() || e.starts_with("Error in ") {
                    e
                } else {
                    format!("{e}\n")
                })
            })?;
            // As mosquitto: a property makes the connection MQTT v5 (a later -V overrides).
            c.version = Version::V5;
        }
        "-x" => {
            let v = cur.string(flag)?;
            let n: i64 = match v.trim() {
                "∞" => -1,
                t => t
                    .parse()
                    .map_err(|_| UsageError::new("session-expiry-interval not a number.\n"))?,
            };
            c.session_expiry = Some(match n {
                -1 => u32::MAX,
                n => u32::try_from(n)
                    .map_err(|_| UsageError::new("session-expiry-interval out of range.\n"))?,
            });
        }
        "--will-topic" => c.will_topic = Some(cur.string(flag)?),
        "--will-payload" => c.will_payload = Some(cur.bytes(flag)?),
        "--will-qos" => {
            let n = atoi(&cur.string(flag)?);
            c.will_qos = u8::try_from(n)
                .ok()
                .and_then(QoS::from_u8)
                .ok_or_else(|| UsageError::new(format!("Invalid will QoS {n}.\n")))?;
        }
        "--will-retain" => c.will_retain = true,
        "--cafile" => c.cafile = Some(cur.path(flag)?),
        "--capath" => c.capath = Some(cur.path(flag)?),
        "--cert" => c.cert = Some(cur.path(flag)?),
        "--key" => c.key = Some(cur.path(flag)?),
        "--insecure" => c.insecure = true,
        "--tls-use-os-certs" => c.os_certs = true,
        "-L" => c.url = Some(split_url(&cur.string(flag)?)?),
        "-d" => c.debug = true,
        "--quiet" => c.quiet = true,
        "-M" => {
            let n: u16 = cur.number(flag, "max inflight")?;
            if n == 0 {
                return Err(UsageError::new("Invalid max inflight given: 0"));
            }
            c.max_inflight = Some(n);
        }
        "--unix" => c.unix = Some(cur.string(flag)?),
        "--proxy" => {
            let url = cur.string(flag)?;
            // mosquitto's words (tern also takes socks5://).
            c.proxy = Some(Proxy::parse(&url).map_err(|_| {
                let lower = url.to_ascii_lowercase();
                UsageError::new(
                    if lower.starts_with("socks5h://") || lower.starts_with("socks5://") {
                        "Invalid proxy.".to_owned()
                    } else {
                        format!("Unsupported proxy protocol: {url}")
                    },
                )
            })?);
        }
        "-A" => {
            let a = cur.string(flag)?;
            c.bind = Some(a.trim().parse().map_err(|_| {
                UsageError::new(format!(
                    "Invalid bind address given: {a} (an IPv4 or IPv6 address of this machine)"
                ))
            })?);
        }
        "--connect-timeout" => {
            let d = cur.seconds(flag, "connect timeout")?;
            if d.is_zero() {
                return Err(UsageError::new("Invalid connect timeout given: 0"));
            }
            c.connect_timeout = Some(d);
        }
        "--nodelay" => {}
        "--tls-version" => {
            let v = cur.string(flag)?;
            c.tls_version = Some(match v.as_str() {
                "tlsv1.3" => TlsVersion::Tls13,
                "tlsv1.2" => TlsVersion::Tls12,
                "tlsv1.1" | "tlsv1" => {
                    return Err(UsageError::new(format!(
                        "TLS version {v} is not supported: rustls (tern's TLS) speaks only \
                         tlsv1.2 and tlsv1.3, the versions without known weaknesses."
                    )));
                }
                _ => {
                    return Err(UsageError::new(format!(
                        "Invalid TLS version given: {v} (tlsv1.3 or tlsv1.2)"
                    )));
                }
            });
        }
        "--tls-alpn" => c.alpn.push(cur.string(flag)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// Checks the shared flags once all are read, and folds the `-L` topic into `topics`.
fn finish_common(c: &mut Common) -> Result<()> {
    if c.will_topic.is_none() {
        if c.will_payload.is_some() {
            return Err(UsageError::new(
                "Will payload given, but no will topic given.",
            ));
        }
        if c.will_retain {
            return Err(UsageError::new(
                "Will retain given, but no will topic given.",
            ));
        }
    }
    if let Some(t) = &c.will_topic {
        TopicName::new(t).map_err(|e| {
            UsageError::new(format!(
                "Invalid will topic '{t}', does it contain '+' or '#'? ({e})"
            ))
        })?;
    }
    if c.password.is_some() && c.username.is_none() && c.url.is_none() {
        return Err(UsageError::new(
            "You must provide a username (-u) with a password (-P).",
        ));
    }
    match (&c.cert, &c.key) {
        (Some(_), None) | (None, Some(_)) => {
            return Err(UsageError::new(
                "Both certfile and keyfile must be provided if one of them is set.",
            ));
        }
        _ => {}
    }
    if c.client_id.is_some() && c.id_prefix.is_some() {
        return Err(UsageError::new(
            "-i and -I argument cannot be used together.\n",
        ));
    }
    finish_v5(c)?;
    // As mosquitto, -I is not a client id for -c.
    if !c.clean_session && c.client_id.is_none() {
        return Err(UsageError::new(
            "You must provide a client id if you are using the -c option.",
        ));
    }
    if !c.clean_session && c.client_id.as_deref() == Some("") {
        return Err(UsageError::new(
            "An empty client id cannot be used with -c: the broker keeps a persistent session \
             under the client id, so give one with -i or -I.",
        ));
    }
    if c.unix.is_some() && (c.host.is_some() || c.url.is_some() || c.port.is_some()) {
        return Err(UsageError::new(
            "--unix names the broker by its socket: it cannot be combined with -h, -p or -L.",
        ));
    }
    if c.unix.is_some() && c.proxy.is_some() {
        return Err(UsageError::new(
            "--unix and --proxy cannot be combined: a SOCKS proxy reaches TCP ports only.",
        ));
    }
    if let Some(topic) = c.url.as_ref().and_then(|u| u.topic.clone()) {
        c.topics.insert(0, topic);
    }
    Ok(())
}

/// The MQTT v5 flags once all are read: properties need level 5, `-x` becomes the CONNECT's
/// Session Expiry Interval, and `-c` without `-x` a session that never expires (as
/// mosquitto).
fn finish_v5(c: &mut Common) -> Result<()> {
    c.props.check().map_err(UsageError)?;
    if c.version != Version::V5 {
        if c.props.any {
            return Err(UsageError::new(format!(
                "-D properties are MQTT v5, but -V {} was given after them: use -V 5 or \
                 drop the -D.",
                c.version.flag()
            )));
        }
        if c.session_expiry.is_some() {
            return Err(UsageError::new(format!(
                "-x (session expiry interval) is MQTT v5 only, but -V {} was given: use -V 5.",
                c.version.flag()
            )));
        }
        return Ok(());
    }
    if c.will_topic.is_none() && c.props.will != Default::default() {
        return Err(UsageError::new(
            "Will properties given, but no will topic given.",
        ));
    }
    let expiry = match c.session_expiry {
        Some(n) => Some(n),
        None if !c.clean_session => Some(u32::MAX),
        None => None,
    };
    if let Some(n) = expiry.filter(|n| *n > 0) {
        if n == u32::MAX && (c.id_prefix.is_some() || c.client_id.is_none()) {
            return Err(UsageError::new(
                "You must provide a client id if you are using an infinite session expiry \
                 interval.",
            ));
        }
        if c.props.connect.session_expiry_interval.replace(n).is_some() {
            // mosquitto's words: -x is the same property.
            return Err(UsageError::new(
                "Error in CONNECT properties: Duplicate property in property list",
            ));
        }
    }
    Ok(())
}

/// Splits `-L` into broker URI and topic path; checks the scheme here so the error is a
/// usage error.
fn split_url(url: &str) -> Result<UrlParts> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(UsageError::new("unsupported URL scheme.\n"));
    };
    if !matches!(
        scheme.to_ascii_lowercase().as_str(),
        "mqtt" | "mqtts" | "ws" | "wss"
    ) {
        // mosquitto's words (tern also takes ws:// and wss://).
        return Err(UsageError::new("unsupported URL scheme.\n"));
    }
    // mosquitto refuses a URL without a path (an empty one is taken).
    let Some((authority, topic)) = rest.split_once('/') else {
        return Err(UsageError::new(
            "Invalid URL for -L argument specified - topic missing.",
        ));
    };
    let topic = (!topic.is_empty()).then(|| topic.to_owned());
    let broker = format!("{scheme}://{authority}");
    tern::Broker::parse(&broker)
        .map_err(|e| UsageError::new(format!("Invalid URL {url:?}: {e}")))?;
    Ok(UrlParts { broker, topic })
}

/// The table entry `arg` names for `cmd`: its canonical spelling. A flag the table lists
/// as refused (TLS-PSK, OpenSSL engines, MQTT v5) is a usage error saying why.
fn flag_id(cmd: Cmd, arg: &OsStr) -> Result<&'static str> {
    let s = arg
        .to_str()
        .ok_or_else(|| UsageError::new(format!("Unknown option {arg:?}.")))?;
    let flag =
        flags::lookup(cmd, s).ok_or_else(|| UsageError::new(format!("Unknown option '{s}'.")))?;
    if flag.group == flags::Group::Unsupported {
        // Refused whether or not its value follows.
        let _ = flag.value.takes_value();
        let why = flag.help.split_once(": ").map_or(flag.help, |(_, why)| why);
        return Err(UsageError::new(format!("{s} is not supported: {why}.")));
    }
    Ok(flag.id())
}

/// Parses `tern pub`'s arguments (without the `pub`).
pub(crate) fn parse_pub(args: Vec<OsString>) -> Result<Parsed<PubArgs>> {
    let mut common = Common::default();
    let mut sources = Vec::new();
    let mut retain = false;
    let mut repeat = 1;
    let mut repeat_delay = Duration::ZERO;
    let mut cur = Cursor::new(args);
    while let Some(arg) = cur.next() {
        let flag = flag_id(Cmd::Pub, &arg)?;
        if common_flag(&mut common, flag, &mut cur)? {
            continue;
        }
        if let Some(source) = source_flag(flag, &mut cur)? {
            sources.push(source);
            continue;
        }
        match flag {
            "--help" => return Ok(Parsed::Help),
            "--version" => return Ok(Parsed::Version),
            "-o" => {
                let path = cur.path(flag)?;
                cur.include(&path)?;
            }
            "--payload-size" => {
                let n: usize = cur.number(flag, "payload size")?;
                if n > tern_proto::packet::MAX_REMAINING_LENGTH {
                    return Err(UsageError::new(format!(
                        "Invalid payload size given: {n} (at most 268435455 bytes)"
                    )));
                }
                sources.push(Source::Random(n));
            }
            "-r" => retain = true,
            "--repeat" => {
                // As mosquitto_pub: atoi(3), below 1 refused in its words.
                repeat = u32::try_from(atoi(&cur.string(flag)?))
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| UsageError::new("--repeat argument must be >0.\n"))?;
            }
            "--repeat-delay" => {
                let s = cur.string(flag)?;
                let d = s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v < 1e9)
                    .ok_or_else(|| UsageError::new(format!("Invalid repeat delay given: {s}")))?;
                if d < 0.0 {
                    // mosquitto_pub's words.
                    return Err(UsageError::new("--repeat-delay argument must be >=0.0.\n"));
                }
                repeat_delay = Duration::from_secs_f64(d);
            }
            other => return Err(UsageError::new(format!("Unknown option '{other}'."))),
        }
    }
    finish_common(&mut common)?;
    if sources.len() > 1 {
        return Err(UsageError::new(
            "Only one type of message can be sent at once.\n",
        ));
    }
    let (Some(source), Some(topic)) = (sources.pop(), common.topics.first()) else {
        return Err(UsageError::new("Both topic and message must be supplied."));
    };
    if common.topics.len() > 1 {
        return Err(UsageError::new(
            "Only one topic can be published to at once.",
        ));
    }
    TopicName::new(topic).map_err(|_| {
        UsageError::new(format!(
            "Invalid publish topic '{topic}', does it contain '+' or '#'?"
        ))
    })?;
    Ok(Parsed::Run(PubArgs {
        common,
        source,
        retain,
        repeat,
        repeat_delay,
    }))
}

/// Parses `tern rr`'s arguments (without the `rr`). MQTT v5 is the default, as in
/// mosquitto_rr; there the request carries the response topic, and correlation data when
/// `-D publish correlation-data` gives it (as mosquitto_rr) or, under `-l` (beyond
/// mosquitto_rr), fresh for each line.
pub(crate) fn parse_rr(args: Vec<OsString>) -> Result<Parsed<RrArgs>> {
    let mut common = Common {
        version: Version::V5,
        ..Common::default()
    };
    let mut sources = Vec::new();
    let mut response_topic = None;
    let mut rr = RrArgs {
        common: Common::default(),
        source: Source::Null,
        response_topic: String::new(),
        timeout: None,
        no_retain: false,
        verbose: false,
        no_eol: false,
        format: None,
        pretty: false,
        generated_correlation: false,
    };
    let mut cur = Cursor::new(args);
    while let Some(arg) = cur.next() {
        let flag = flag_id(Cmd::Rr, &arg)?;
        if common_flag(&mut common, flag, &mut cur)? {
            continue;
        }
        if let Some(source) = source_flag(flag, &mut cur)? {
            sources.push(source);
            continue;
        }
        match flag {
            "--help" => return Ok(Parsed::Help),
            "--version" => return Ok(Parsed::Version),
            "-o" => {
                let path = cur.path(flag)?;
                cur.include(&path)?;
            }
            "-e" => {
                let t = cur.string(flag)?;
                TopicName::new(&t).map_err(|_| {
                    UsageError::new(format!(
                        "Invalid response topic '{t}', does it contain '+' or '#'?"
                    ))
                })?;
                response_topic = Some(t);
            }
            "-W" => rr.timeout = Some(cur.timeout(flag)?),
            "-R" => rr.no_retain = true,
            "-v" => rr.verbose = true,
            "-N" => rr.no_eol = true,
            "-F" => rr.format = Some(cur.bytes(flag)?),
            "--pretty" => rr.pretty = true,
            other => return Err(UsageError::new(format!("Unknown option '{other}'."))),
        }
    }
    finish_common(&mut common)?;
    if sources.len() > 1 {
        return Err(UsageError::new(
            "Only one type of message can be sent at once.\n",
        ));
    }
    let (Some(source), Some(topic), Some(response)) =
        (sources.pop(), common.topics.first(), response_topic)
    else {
        return Err(UsageError::new(
            "All of topic, message, and response topic must be supplied.",
        ));
    };
    if common.topics.len() > 1 {
        return Err(UsageError::new(
            "Only one topic can be published to at once.",
        ));
    }
    TopicName::new(topic).map_err(|_| {
        UsageError::new(format!(
            "Invalid publish topic '{topic}', does it contain '+' or '#'?"
        ))
    })?;
    if matches!(source, Source::Random(_)) {
        return Err(UsageError::new("--payload-size is not a tern rr option."));
    }
    if common.version == Version::V5 {
        let publish = &mut common.props.publish;
        let name = TopicName::new(&response)
            .map_err(|e| UsageError::new(format!("Invalid response topic '{response}': {e}")))?;
        if publish.response_topic.replace(name).is_some() {
            return Err(UsageError::new(
                "Error in PUBLISH properties: Duplicate response topic.",
            ));
        }
        rr.generated_correlation =
            publish.correlation_data.is_none() && matches!(source, Source::Lines);
    }
    rr.common = common;
    rr.source = source;
    rr.response_topic = response;
    Ok(Parsed::Run(rr))
}

/// Parses `tern sub`'s arguments (without the `sub`).
pub(crate) fn parse_sub(args: Vec<OsString>) -> Result<Parsed<SubArgs>> {
    let mut sub = SubArgs {
        common: Common::default(),
        count: None,
        timeout: None,
        no_retain: false,
        retained_only: false,
        verbose: false,
        no_eol: false,
        format: None,
        filter_out: Vec::new(),
        unsubscribe: Vec::new(),
        exit_after_sub: false,
        remove_retained: false,
        random_filter: None,
        pretty: false,
        retain_as_published: false,
    };
    let mut cur = Cursor::new(args);
    while let Some(arg) = cur.next() {
        let flag = flag_id(Cmd::Sub, &arg)?;
        if common_flag(&mut sub.common, flag, &mut cur)? {
            continue;
        }
        match flag {
            "--help" => return Ok(Parsed::Help),
            "--version" => return Ok(Parsed::Version),
            "-o" => {
                let path = cur.path(flag)?;
                cur.include(&path)?;
            }
            "--remove-retained" => sub.remove_retained = true,
            "--pretty" => sub.pretty = true,
            "--random-filter" => {
                let s = cur.string(flag)?;
                // mosquitto_sub's bounds and words (it takes up to 1000, all above 100
                // meaning every message).
                let pct = s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.1..=1000.0).contains(p))
                    .ok_or_else(|| {
                        UsageError::new("--random-filter chance must be between 0.1-100.0\n")
                    })?;
                sub.random_filter = Some((pct / 100.0).min(1.0));
            }
            "-C" => {
                // As mosquitto_sub: atoi(3), and anything below 1 refused in its words.
                let s = cur.string(flag)?;
                let n = atoi(&s);
                sub.count =
                    Some(u64::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                        UsageError::new(format!("Invalid message count \"{n}\".\n"))
                    })?);
            }
            "-W" => sub.timeout = Some(cur.timeout(flag)?),
            "-R" => sub.no_retain = true,
            "--retain-as-published" => sub.retain_as_published = true,
            "--retained-only" => sub.retained_only = true,
            "-v" => sub.verbose = true,
            "-N" => sub.no_eol = true,
            "-F" => sub.format = Some(cur.bytes(flag)?),
            "-T" => {
                let t = cur.string(flag)?;
                let f = TopicFilter::new(&t).map_err(|_| {
                    UsageError::new(format!(
                        "Invalid filter topic '{t}', are all '+' and '#' wildcards correct?"
                    ))
                })?;
                sub.filter_out.push(f);
            }
            "-U" => sub.unsubscribe.push(cur.string(flag)?),
            "-E" => sub.exit_after_sub = true,
            other => return Err(UsageError::new(format!("Unknown option '{other}'."))),
        }
    }
    finish_common(&mut sub.common)?;
    if sub.retain_as_published && sub.common.version != Version::V5 {
        return Err(UsageError::new(format!(
            "--retain-as-published is an MQTT v5 subscription option, but -V {} was given: \
             use -V 5.",
            sub.common.version.flag()
        )));
    }
    if sub.no_retain && sub.retained_only {
        return Err(UsageError::new(
            "Combining '-R' and '--retained-only' makes no sense.",
        ));
    }
    if sub.common.topics.is_empty() && sub.unsubscribe.is_empty() {
        return Err(UsageError::new("You must specify a topic to subscribe to."));
    }
    let topics = sub.common.topics.iter().map(|t| ("subscription", t));
    for (what, t) in topics.chain(sub.unsubscribe.iter().map(|t| ("unsubscribe", t))) {
        TopicFilter::new(t).map_err(|_| {
            UsageError::new(format!(
                "Invalid {what} topic '{t}', are all '+' and '#' wildcards correct?"
            ))
        })?;
    }
    Ok(Parsed::Run(sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    fn pub_ok(s: &[&str]) -> PubArgs {
        match parse_pub(args(s)) {
            Ok(Parsed::Run(a)) => a,
            other => panic!("{s:?} parsed to {other:?}"),
        }
    }

    fn sub_ok(s: &[&str]) -> SubArgs {
        match parse_sub(args(s)) {
            Ok(Parsed::Run(a)) => a,
            other => panic!("{s:?} parsed to {other:?}"),
        }
    }

    fn pub_err(s: &[&str]) -> String {
        match parse_pub(args(s)) {
            Err(UsageError(m)) => m,
            other => panic!("{s:?} parsed to {other:?}"),
        }
    }

    fn sub_err(s: &[&str]) -> String {
        match parse_sub(args(s)) {
            Err(UsageError(m)) => m,
            other => panic!("{s:?} parsed to {other:?}"),
        }
    }

    #[test]
    fn dash_h_is_the_host_and_help_is_long_only() {
        let a = pub_ok(&["-h", "broker", "-p", "1884", "-t", "a/b", "-m", "x"]);
        assert_eq!(a.common.host.as_deref(), Some("broker"));
        assert_eq!(a.common.port, Some(1884));
        assert_eq!(parse_pub(args(&["--help"])), Ok(Parsed::Help));
        assert_eq!(parse_sub(args(&["-t", "x", "--help"])), Ok(Parsed::Help));
    }

    #[test]
    fn values_may_start_with_a_dash() {
        let a = pub_ok(&["-t", "t", "-m", "-1"]);
        assert_eq!(a.source, Source::Message(b"-1".to_vec()));
    }

    #[test]
    fn exactly_one_message_source_is_required() {
        assert_eq!(
            pub_err(&["-t", "t", "-m", "x", "-n"]),
            "Only one type of message can be sent at once.\n"
        );
        assert_eq!(
            pub_err(&["-t", "t"]),
            "Both topic and message must be supplied."
        );
        assert_eq!(
            pub_err(&["-m", "x"]),
            "Both topic and message must be supplied."
        );
        assert_eq!(pub_ok(&["-t", "t", "-l"]).source, Source::Lines);
        assert_eq!(pub_ok(&["-t", "t", "-s"]).source, Source::Stdin);
        assert_eq!(pub_ok(&["-t", "t", "-n"]).source, Source::Null);
    }

    #[test]
    fn qos_protocol_and_numbers_are_checked() {
        assert_eq!(
            pub_err(&["-t", "t", "-m", "x", "-q", "3"]),
            "Invalid QoS given: 3"
        );
        assert_eq!(
            pub_ok(&["-t", "t", "-n", "-q", "2"]).common.qos,
            QoS::ExactlyOnce
        );
        for v in ["31", "mqttv31"] {
            assert_eq!(
                pub_ok(&["-t", "t", "-n", "-V", v]).common.version,
                Version::V31
            );
        }
        for v in ["311", "mqttv311"] {
            assert_eq!(
                pub_ok(&["-t", "t", "-n", "-V", v]).common.version,
                Version::V311
            );
        }
        for v in ["5", "mqttv5"] {
            assert_eq!(
                pub_ok(&["-t", "t", "-n", "-V", v]).common.version,
                Version::V5
            );
        }
        assert!(pub_err(&["-t", "t", "-n", "-V", "32"]).contains("Invalid protocol version"));
        assert_eq!(
            pub_err(&["-t", "t", "-n", "-p", "x"]),
            "Invalid port given: x"
        );
        assert_eq!(
            pub_err(&["-t", "t", "-n", "-k", "70000"]),
            "Invalid keepalive given, it must be between 5 and 65535 inclusive.\n"
        );
        assert!(pub_err(&["-t", "t", "-n", "-k", "4"]).starts_with("Invalid keepalive"));
        assert_eq!(
            pub_err(&["-t", "t", "-n", "-q"]),
            "-q argument given but no QoS specified.\n"
        );
        assert_eq!(
            pub_err(&["-t", "t", "-n", "-V"]),
            "--protocol-version argument given but no version specified.\n"
        );
        assert_eq!(
            pub_err(&["-t", "t", "-n", "-i", "a", "-I", "b"]),
            "-i and -I argument cannot be used together.\n"
        );
        assert_eq!(
            pub_err(&["-t", "t", "-n", "--will-topic", "w", "--will-qos", "3"]),
            "Invalid will QoS 3.\n"
        );
        assert_eq!(pub_err(&["-t", "t", "-n", "-z"]), "Unknown option '-z'.");
    }

    #[test]
    fn v5_flags_select_level_5_as_mosquitto() {
        let a = pub_ok(&[
            "-t",
            "t",
            "-n",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
            "-D",
            "connect",
            "receive-maximum",
            "5",
        ]);
        assert_eq!(a.common.version, Version::V5, "-D selects MQTT v5");
        assert_eq!(a.common.props.publish.user_properties.len(), 1);
        assert!(
            pub_err(&[
                "-t",
                "t",
                "-n",
                "-D",
                "publish",
                "content-type",
                "x",
                "-V",
                "311"
            ])
            .contains("-V 311 was given after them")
        );
        assert!(pub_err(&["-t", "t", "-n", "-x", "60"]).contains("MQTT v5 only"));
        let a = sub_ok(&["-t", "t", "-V", "mqttv5", "-x", "60"]);
        assert_eq!(a.common.props.connect.session_expiry_interval, Some(60));
        let a = sub_ok(&["-t", "t", "-V", "5", "-c", "-i", "me"]);
        assert_eq!(
            a.common.props.connect.session_expiry_interval,
            Some(u32::MAX),
            "-c at level 5 keeps the session for ever"
        );
        for never in ["-1", "∞", "4294967295"] {
            let a = sub_ok(&["-t", "t", "-V", "5", "-x", never, "-i", "me"]);
            assert_eq!(
                a.common.props.connect.session_expiry_interval,
                Some(u32::MAX)
            );
        }
        assert!(sub_err(&["-t", "t", "-V", "5", "-x", "-1"]).contains("infinite session expiry"));
        assert_eq!(
            sub_err(&["-t", "t", "-V", "5", "-x", "4294967296"]),
            "session-expiry-interval out of range.\n"
        );
        assert_eq!(
            sub_err(&["-t", "t", "-V", "5", "-x", "soon"]),
            "session-expiry-interval not a number.\n"
        );
        assert!(
            sub_err(&[
                "-t",
                "t",
                "-V",
                "5",
                "-x",
                "9",
                "-D",
                "connect",
                "session-expiry-interval",
                "9"
            ])
            .contains("Duplicate property in property list")
        );
        assert_eq!(
            pub_err(&["-t", "t", "-n", "-D", "will", "content-type", "x"]),
            "Will properties given, but no will topic given."
        );
        assert_eq!(
            pub_err(&["-t", "t", "-n", "-D", "connect", "topic-alias", "1"]),
            "topic-alias property not allowed for connect in --property argument.\n"
        );
    }

    fn rr_ok(s: &[&str]) -> RrArgs {
        match parse_rr(args(s)) {
            Ok(Parsed::Run(a)) => a,
            other => panic!("{s:?} parsed to {other:?}"),
        }
    }

    #[test]
    fn rr_takes_mosquitto_rrs_flags_and_defaults_to_v5() {
        let a = rr_ok(&["-t", "req", "-e", "resp", "-m", "ping", "-W", "2"]);
        assert_eq!(a.common.version, Version::V5);
        assert_eq!(a.response_topic, "resp");
        assert_eq!(a.timeout, Some(Duration::from_secs(2)));
        let p = &a.common.props.publish;
        assert_eq!(
            p.response_topic.as_ref().map(TopicName::as_str),
            Some("resp")
        );
        // As mosquitto_rr, a single request carries no correlation data of its own...
        assert_eq!(p.correlation_data, None);
        assert!(!a.generated_correlation);
        // ... while each line of -l gets a fresh one.
        assert!(rr_ok(&["-t", "req", "-e", "resp", "-l"]).generated_correlation);
        let a = rr_ok(&[
            "-t",
            "req",
            "-e",
            "resp",
            "-n",
            "-D",
            "publish",
            "correlation-data",
            "id-1",
        ]);
        assert_eq!(
            a.common.props.publish.correlation_data.as_deref(),
            Some(&b"id-1"[..]),
            "a given correlation data is kept"
        );
        let a = rr_ok(&["-t", "req", "-e", "resp", "-n", "-V", "311"]);
        assert_eq!(
            a.common.props.publish,
            Default::default(),
            "no properties at 3.1.1"
        );
        let err = |s: &[&str]| match parse_rr(args(s)) {
            Err(UsageError(m)) => m,
            other => panic!("{s:?} parsed to {other:?}"),
        };
        assert_eq!(
            err(&["-t", "req", "-m", "x"]),
            "All of topic, message, and response topic must be supplied."
        );
        assert!(err(&["-t", "req", "-e", "r/#", "-m", "x"]).starts_with("Invalid response topic"));
        assert!(
            err(&[
                "-t",
                "req",
                "-e",
                "r",
                "-m",
                "x",
                "-D",
                "publish",
                "response-topic",
                "z"
            ])
            .contains("Duplicate response topic")
        );
        assert_eq!(
            err(&["-t", "req", "-e", "r", "-m", "x", "-r"]),
            "Unknown option '-r'."
        );
        assert_eq!(
            err(&["-t", "t", "-e", "r", "-n", "-C", "1"]),
            "Unknown option '-C'."
        );
    }

    #[test]
    fn topics_are_validated_per_command() {
        assert!(pub_err(&["-t", "a/#", "-m", "x"]).starts_with("Invalid publish topic 'a/#'"));
        assert!(sub_err(&["-t", "a/#/b"]).starts_with("Invalid subscription topic 'a/#/b'"));
        assert_eq!(
            sub_err(&["-v"]),
            "You must specify a topic to subscribe to."
        );
        assert_eq!(
            pub_err(&["-t", "a", "-t", "b", "-n"]),
            "Only one topic can be published to at once."
        );
        let s = sub_ok(&["-t", "a/+", "-t", "b/#", "-T", "b/x"]);
        assert_eq!(s.common.topics, ["a/+", "b/#"]);
        assert_eq!(s.filter_out.len(), 1);
    }

    #[test]
    fn will_and_session_flags_need_their_companions() {
        assert_eq!(
            pub_err(&["-t", "t", "-n", "--will-payload", "x"]),
            "Will payload given, but no will topic given."
        );
        assert_eq!(
            pub_err(&["-t", "t", "-n", "-c"]),
            "You must provide a client id if you are using the -c option."
        );
        let a = pub_ok(&["-t", "t", "-n", "-c", "-i", "me"]);
        assert!(!a.common.clean_session);
        assert!(pub_err(&["-t", "t", "-n", "--cert", "c.pem"]).starts_with("Both certfile"));
    }

    #[test]
    fn url_supplies_broker_and_topic() {
        let s = sub_ok(&["-L", "mqtt://u:p@127.0.0.1:1999/a/b", "-v"]);
        let url = s.common.url.clone().unwrap();
        assert_eq!(url.broker, "mqtt://u:p@127.0.0.1:1999");
        assert_eq!(s.common.topics, ["a/b"]);
        let p = pub_ok(&["-L", "wss://h/x", "-m", "hi"]);
        assert_eq!(p.common.topics, ["x"]);
        assert_eq!(
            pub_err(&["-L", "http://h/x", "-m", "hi"]),
            "unsupported URL scheme.\n"
        );
        assert_eq!(
            pub_err(&["-L", "mqtt://h", "-m", "hi"]),
            "Invalid URL for -L argument specified - topic missing."
        );
        assert_eq!(
            pub_err(&["-L", "mqtt://h/", "-m", "hi"]),
            "Both topic and message must be supplied."
        );
    }

    #[test]
    fn sub_counts_timeouts_and_formats_are_read() {
        let s = sub_ok(&[
            "-t", "x", "-C", "3", "-W", "0.5", "-F", "%t %p", "-R", "-N", "-v",
        ]);
        assert_eq!(s.count, Some(3));
        assert_eq!(s.timeout, Some(Duration::from_millis(500)));
        assert_eq!(s.format.as_deref(), Some(&b"%t %p"[..]));
        assert!(s.no_retain && s.no_eol && s.verbose);
        assert_eq!(
            sub_err(&["-t", "x", "-C", "0"]),
            "Invalid message count \"0\".\n"
        );
        assert_eq!(
            sub_err(&["-t", "x", "-C", "x2"]),
            "Invalid message count \"0\".\n"
        );
        assert_eq!(
            sub_err(&["-t", "x", "-W", "-3s"]),
            "Invalid timeout \"-3\".\n"
        );
        assert!(sub_err(&["-t", "x", "-R", "--retained-only"]).contains("makes no sense"));
    }

    /// The table and the parser agree: every flag the table gives a command parses there
    /// (with a value exactly when the table says it takes one), or is refused with a reason.
    #[test]
    fn every_flag_in_the_table_parses() {
        let sample = |f: &flags::Flag| match f.value {
            flags::Value::Choice(_, words) => words[0].to_owned(),
            _ => match f.id() {
                "-p" | "-k" | "-M" | "-C" | "-x" | "--repeat" | "--payload-size" => "3".into(),
                "-W" | "--repeat-delay" | "--connect-timeout" | "--random-filter" => "1.5".into(),
                "-A" => "127.0.0.1".into(),
                "--proxy" => "socks5h://127.0.0.1:1080".into(),
                "-L" => "mqtt://h/x".into(),
                "-o" => "/dev/null".into(),
                "-F" => "%t".into(),
                _ => "v".into(),
            },
        };
        for cmd in Cmd::ALL {
            for f in flags::FLAGS.iter().filter(|f| f.is_for(cmd)) {
                for name in f.names {
                    let mut argv = vec![(*name).to_owned()];
                    if *name == "-D" || *name == "--property" {
                        argv.extend(["publish", "content-type", "v"].map(String::from));
                    } else if f.value.takes_value() {
                        argv.push(sample(f));
                    }
                    let base: &[&str] = match cmd {
                        Cmd::Pub => &["-t", "t", "-i", "id"],
                        Cmd::Sub => &["-t", "t", "-i", "id"],
                        Cmd::Rr => &["-t", "t", "-i", "id", "-e", "r"],
                    };
                    argv.extend(base.iter().map(|s| (*s).to_owned()));
                    if cmd != Cmd::Sub && f.group != flags::Group::Message {
                        argv.push("-n".into());
                    }
                    if *name == "--unix" {
                        argv.retain(|a| a != "-h");
                    }
                    let os: Vec<OsString> = argv.iter().map(OsString::from).collect();
                    let r = match cmd {
                        Cmd::Pub => parse_pub(os).map(|_| ()),
                        Cmd::Sub => parse_sub(os).map(|_| ()),
                        Cmd::Rr => parse_rr(os).map(|_| ()),
                    };
                    match (r, f.group) {
                        (Err(UsageError(m)), flags::Group::Unsupported) => {
                            assert!(m.contains("not supported: "), "{argv:?}: {m}");
                        }
                        (Err(UsageError(m)), _) => {
                            assert!(!m.contains("Unknown option"), "{argv:?}: {m}");
                            assert!(!m.contains("argument given but no "), "{argv:?}: {m}");
                        }
                        (Ok(()), g) => assert_ne!(g, flags::Group::Unsupported, "{argv:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn new_connection_flags_are_read() {
        let a = sub_ok(&[
            "--unix",
            "/run/m.sock",
            "--connect-timeout",
            "2.5",
            "-t",
            "x",
            "--remove-retained",
            "--random-filter",
            "50",
            "--pretty",
            "--tls-version",
            "tlsv1.3",
            "--tls-alpn",
            "mqtt",
            "--nodelay",
        ]);
        assert_eq!(a.common.unix.as_deref(), Some("/run/m.sock"));
        assert_eq!(a.common.connect_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(a.random_filter, Some(0.5));
        assert!(a.remove_retained && a.pretty);
        assert_eq!(a.common.tls_version, Some(TlsVersion::Tls13));
        assert_eq!(a.common.alpn, ["mqtt"]);
        let p = pub_ok(&["--proxy", "socks5h://u:p@127.0.0.1:9", "-t", "t", "-n"]);
        let proxy = p.common.proxy.unwrap();
        assert!(proxy.remote_dns);
        assert_eq!(proxy.port, 9);
        assert_eq!(
            pub_err(&["--proxy", "http://h", "-t", "t", "-n"]),
            "Unsupported proxy protocol: http://h"
        );
        assert_eq!(
            pub_err(&["--proxy", "socks5h://", "-t", "t", "-n"]),
            "Invalid proxy."
        );
        assert!(
            pub_err(&["--tls-version", "tlsv1.1", "-t", "t", "-n"]).contains("tlsv1.2 and tlsv1.3")
        );
        assert!(pub_err(&["--unix", "/s", "-h", "h", "-t", "t", "-n"]).contains("--unix"));
        assert_eq!(
            pub_ok(&["-t", "t", "--payload-size", "10"]).source,
            Source::Random(10)
        );
        assert!(sub_err(&["-t", "t", "--random-filter", "0"]).contains("between 0.1-100.0"));
    }

    #[test]
    fn options_files_read_as_mosquitto_reads_them() {
        let args = options_file_args(b"# comment\n-h broker.example\n\n-m hello world\r\n-r\n");
        assert_eq!(
            args,
            ["-h", "broker.example", "-m", "hello world", "-r"].map(OsString::from)
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("opts");
        std::fs::write(&file, "-t from/file\n-q 1\n").unwrap();
        let a = pub_ok(&["-o", file.to_str().unwrap(), "-q", "2", "-n"]);
        assert_eq!(a.common.topics, ["from/file"]);
        assert_eq!(a.common.qos, QoS::ExactlyOnce, "later flags win");
        let looped = dir.path().join("loop");
        std::fs::write(&looped, format!("-o {}\n", looped.display())).unwrap();
        assert!(pub_err(&["-o", looped.to_str().unwrap()]).contains("including itself"));
    }

    #[cfg(unix)]
    #[test]
    fn message_bytes_need_not_be_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let raw = vec![0xff, 0x00, b'a'];
        let argv = vec![
            OsString::from("-t"),
            OsString::from("t"),
            OsString::from("-m"),
            OsString::from_vec(raw.clone()),
        ];
        match parse_pub(argv) {
            Ok(Parsed::Run(a)) => assert_eq!(a.source, Source::Message(raw)),
            other => panic!("{other:?}"),
        }
    }
}
