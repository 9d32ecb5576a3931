//! Where to connect: [`Broker`] addresses, parsed from `host`/`port` pairs or URIs
//! (`mqtt://`, `mqtts://`, `ws://`, `wss://`, `unix://`, with optional `user:password@`),
//! and the SOCKS5 [`Proxy`] to reach them through.
//!
//! ```
//! use tern::{Broker, Scheme};
//!
//! let b = Broker::parse("mqtts://alice:s3cret@broker.example:8884")?;
//! assert_eq!((b.scheme, b.host.as_str(), b.port), (Scheme::Mqtts, "broker.example", 8884));
//! assert_eq!(b.username.as_deref(), Some("alice"));
//! // Display never shows the credentials.
//! assert_eq!(b.to_string(), "mqtts://broker.example:8884");
//!
//! let local = Broker::parse("unix:///run/mosquitto/mqtt.sock")?;
//! assert_eq!((local.scheme, local.host.as_str()), (Scheme::Unix, "/run/mosquitto/mqtt.sock"));
//! # Ok::<(), tern::broker::BrokerParseError>(())
//! ```

use std::fmt;

/// A user name and password taken from a broker URI.
pub(crate) type UriCredentials = (Option<tern_proto::MqttString>, Option<bytes::Bytes>);

/// The transport a broker address asks for.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain TCP (`mqtt://`, `tcp://`), default port 1883.
    Mqtt,
    /// TLS over TCP (`mqtts://`, `ssl://`, `tls://`), default port 8883.
    Mqtts,
    /// WebSocket (`ws://`), default port 80, default path `/mqtt`.
    Ws,
    /// WebSocket over TLS (`wss://`), default port 443, default path `/mqtt`.
    Wss,
    /// A Unix domain socket (`unix:///path/to/socket`): [`Broker::host`] is the socket's
    /// path and the port is unused (0). Unix-like systems only.
    Unix,
}

impl Scheme {
    /// The port used when an address names none.
    pub const fn default_port(self) -> u16 {
        match self {
            Self::Mqtt => 1883,
            Self::Mqtts => 8883,
            Self::Ws => 80,
            Self::Wss => 443,
            Self::Unix => 0,
        }
    }

    /// True for the schemes that run over TLS.
    pub const fn is_tls(self) -> bool {
        matches!(self, Self::Mqtts | Self::Wss)
    }

    /// True for the WebSocket schemes.
    pub const fn is_websocket(self) -> bool {
        matches!(self, Self::Ws | Self::Wss)
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Mqtts => "mqtts",
            Self::Ws => "ws",
            Self::Wss => "wss",
            Self::Unix => "unix",
        }
    }
}

/// One broker address.
///
/// Credentials in a URI (`mqtt://user:password@host`) are used for the connection when
/// [`ConnectOptions`](crate::ConnectOptions) sets no user name; explicit options win.
/// `Debug` and `Display` never show them.
///
/// ```
/// use tern::{Broker, Scheme};
///
/// let a = Broker::tcp("127.0.0.1", 1883);
/// let b = Broker::new(Scheme::Wss, "broker.example", 443);
/// let c: Broker = "ws://broker.example:8080/mqtt".parse()?;
/// assert_eq!(a.to_string(), "mqtt://127.0.0.1:1883");
/// assert_eq!(b.to_string(), "wss://broker.example:443/mqtt");
/// assert_eq!(c.port, 8080);
/// # Ok::<(), tern::broker::BrokerParseError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub struct Broker {
    /// Transport.
    pub scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets); the socket path for
    /// [`Scheme::Unix`].
    pub host: String,
    /// TCP port (0 for [`Scheme::Unix`]).
    pub port: u16,
    /// HTTP path for WebSocket schemes (default `/mqtt`); ignored otherwise.
    pub path: String,
    /// User name from the URI's `user:password@` part, if any.
    pub username: Option<String>,
    /// Password from the URI's `user:password@` part, if any.
    pub password: Option<String>,
}

/// A broker address that could not be parsed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerParseError {
    /// The URI scheme is not one tern speaks.
    #[error("unsupported URI scheme {0:?} (expected mqtt, mqtts, ws or wss)")]
    UnknownScheme(String),
    /// The port is not a number in 1..=65535.
    #[error("invalid port {0:?}")]
    InvalidPort(String),
    /// The host part is empty.
    #[error("broker address {0:?} names no host")]
    EmptyHost(String),
    /// A `unix://` URI without an absolute socket path.
    #[error("unix socket address {0:?} needs an absolute path: unix:///path/to/socket")]
    UnixPath(String),
    /// A proxy URI that is not `socks5://` or `socks5h://`.
    #[error(
        "unsupported proxy {0:?}: expected socks5://[user:password@]host:port or socks5h://..."
    )]
    UnknownProxy(String),
}

impl Broker {
    /// `host:port`, as connect errors name the broker (the path for a Unix socket).
    pub(crate) fn host_port(&self) -> String {
        if self.scheme == Scheme::Unix {
            return self.host.clone();
        }
        format!("{}:{}", self.host, self.port)
    }

    /// The user name and password the next CONNECT sends for this broker, when they come
    /// from the URI: `None` when `options` sets a user name (explicit options win),
    /// otherwise this address's credentials (none when it has none).
    pub(crate) fn uri_credentials(
        &self,
        options: &crate::ConnectOptions,
    ) -> Result<Option<UriCredentials>, crate::ConnectError> {
        if options.username.is_some() {
            return Ok(None);
        }
        let user = match self.username.as_deref().map(tern_proto::MqttString::new) {
            None => None,
            Some(Ok(u)) => Some(u),
            Some(Err(e)) => {
                return Err(crate::ConnectError::InvalidOptions(format!(
                    "user name in the broker address: {e}"
                )));
            }
        };
        let password = options
            .password
            .clone()
            .or_else(|| self.password.clone().map(bytes::Bytes::from));
        Ok(Some((user, password)))
    }

    /// A Unix domain socket address (mosquitto: `listener 0 /path/to/socket`).
    pub fn unix(path: impl Into<String>) -> Self {
        Self::new(Scheme::Unix, path, 0)
    }

    /// A plain TCP address.
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Self::new(Scheme::Mqtt, host, port)
    }

    /// An address with the given scheme and the default path.
    pub fn new(scheme: Scheme, host: impl Into<String>, port: u16) -> Self {
        Self {
            scheme,
            host: host.into(),
            port,
            path: "/mqtt".to_owned(),
            username: None,
            password: None,
        }
    }

    /// Parses `mqtt://[user[:pass]@]host[:port][/path]` (and `mqtts`, `ws`, `wss`, `tcp`,
    /// `ssl`, `tls`), `unix:///path/to/socket`, or a bare `host[:port]` taken as `mqtt://`.
    /// IPv6 hosts go in brackets.
    pub fn parse(s: &str) -> Result<Self, BrokerParseError> {
        if let Some(path) = s
            .split_once("://")
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("unix"))
            .map(|(_, rest)| rest)
        {
            if !path.starts_with('/') || path.len() < 2 {
                return Err(BrokerParseError::UnixPath(s.to_owned()));
            }
            return Ok(Self::unix(percent_decode(path)));
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (
                match scheme.to_ascii_lowercase().as_str() {
                    "mqtt" | "tcp" => Scheme::Mqtt,
                    "mqtts" | "ssl" | "tls" => Scheme::Mqtts,
                    "ws" => Scheme::Ws,
                    "wss" => Scheme::Wss,
                    _ => return Err(BrokerParseError::UnknownScheme(scheme.to_owned())),
                },
                rest,
            ),
            None => (Scheme::Mqtt, s),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (Some(percent_decode(user)), Some(percent_decode(pass))),
                None => (Some(percent_decode(u)), None),
            },
            None => (None, None),
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err(BrokerParseError::EmptyHost(s.to_owned()));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| BrokerParseError::InvalidPort(p.to_owned()))?,
            None => scheme.default_port(),
        };
        let path = if path.is_empty() { "/mqtt" } else { path };
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            path: path.to_owned(),
            username,
            password,
        })
    }

    /// True when `s` looks like a URI rather than a bare host name.
    pub fn is_uri(s: &str) -> bool {
        s.contains("://")
    }
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>), BrokerParseError> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| BrokerParseError::EmptyHost(s.to_owned()))?;
        let port = after.strip_prefix(':');
        return Ok((host, port));
    }
    match s.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((h, _)) if h.contains(':') => Ok((s, None)),
        Some((h, p)) => Ok((h, Some(p))),
        None => Ok((s, None)),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'%', Some(b)) = (bytes[i], escaped) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Broker {
    /// The address as a URI, without credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.scheme == Scheme::Unix {
            return write!(f, "unix://{}", self.host);
        }
        write!(f, "{}://{}:{}", self.scheme.as_str(), host, self.port)?;
        if self.scheme.is_websocket() {
            f.write_str(&self.path)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Broker {
    type Err = BrokerParseError;
    fn from_str(s: &str) -> Result<Self, BrokerParseError> {
        Self::parse(s)
    }
}

/// A SOCKS5 proxy between the client and the broker (RFC 1928, user name and password
/// authentication per RFC 1929). Set it with
/// [`ConnectOptions::proxy`](crate::ConnectOptions::proxy); TLS and WebSocket run through it
/// end to end.
///
/// ```
/// use tern::broker::Proxy;
///
/// let p = Proxy::parse("socks5h://me:pw@127.0.0.1:1080")?;
/// assert!(p.remote_dns);
/// assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 1080));
/// assert_eq!(p.to_string(), "socks5h://127.0.0.1:1080"); // no credentials
/// # Ok::<(), tern::broker::BrokerParseError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The proxy's host name or IP address.
    pub host: String,
    /// The proxy's port (default 1080).
    pub port: u16,
    /// `socks5h`: the proxy resolves the broker's host name. `socks5`: tern resolves it
    /// and sends the proxy an IP address.
    pub remote_dns: bool,
    /// User name for the proxy (RFC 1929), if it needs one.
    pub username: Option<String>,
    /// Password for the proxy.
    pub password: Option<String>,
}

impl Proxy {
    /// Parses `socks5://[user[:password]@]host[:port]` or `socks5h://...` (default port
    /// 1080).
    pub fn parse(s: &str) -> Result<Self, BrokerParseError> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| BrokerParseError::UnknownProxy(s.to_owned()))?;
        let remote_dns = match scheme.to_ascii_lowercase().as_str() {
            "socks5" => false,
            "socks5h" => true,
            _ => return Err(BrokerParseError::UnknownProxy(scheme.to_owned())),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
            Some((user, pass)) => (
                Some(percent_decode(user)),
                (!pass.is_empty()).then(|| percent_decode(pass)),
            ),
            None => (None, None),
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err(BrokerParseError::EmptyHost(s.to_owned()));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| BrokerParseError::InvalidPort(p.to_owned()))?,
            None => 1080,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            remote_dns,
            username,
            password,
        })
    }

    /// `host:port`.
    pub(crate) fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Proxy {
    /// The proxy as a URI, without credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.remote_dns { "socks5h" } else { "socks5" };
        write!(f, "{scheme}://{}", self.host_port())
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Proxy {
    type Err = BrokerParseError;
    fn from_str(s: &str) -> Result<Self, BrokerParseError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_take_default_ports_and_paths() {
        let b = Broker::parse("mqtt://127.0.0.1").unwrap();
        assert_eq!((b.scheme, b.port), (Scheme::Mqtt, 1883));
        assert_eq!(Broker::parse("mqtts://h").unwrap().port, 8883);
        let ws = Broker::parse("ws://h").unwrap();
        assert_eq!((ws.port, ws.path.as_str()), (80, "/mqtt"));
        let wss = Broker::parse("wss://h:9443/ws").unwrap();
        assert_eq!((wss.port, wss.path.as_str()), (9443, "/ws"));
    }

    #[test]
    fn credentials_and_ipv6_are_parsed() {
        let b = Broker::parse("mqtt://us%40er:p%3Ass@[::1]:1884").unwrap();
        assert_eq!(b.username.as_deref(), Some("us@er"));
        assert_eq!(b.password.as_deref(), Some("p:ss"));
        assert_eq!((b.host.as_str(), b.port), ("::1", 1884));
        assert_eq!(Broker::parse("localhost:1999").unwrap().port, 1999);
        assert_eq!(Broker::parse("::1").unwrap().host, "::1");
    }

    #[test]
    fn unix_sockets_and_proxies_are_parsed() {
        let u = Broker::parse("unix:///tmp/my%20broker.sock").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str()),
            (Scheme::Unix, "/tmp/my broker.sock")
        );
        assert_eq!(u.to_string(), "unix:///tmp/my broker.sock");
        assert!(matches!(
            Broker::parse("unix://relative"),
            Err(BrokerParseError::UnixPath(_))
        ));
        let p = Proxy::parse("socks5://u%40x:p%3Aw@[::1]").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.remote_dns),
            ("::1", 1080, false)
        );
        assert_eq!(p.username.as_deref(), Some("u@x"));
        assert_eq!(p.password.as_deref(), Some("p:w"));
        assert!(!format!("{p:?} {p}").contains("p:w"));
        assert!(matches!(
            Proxy::parse("http://h:3128"),
            Err(BrokerParseError::UnknownProxy(_))
        ));
    }

    #[test]
    fn debug_and_display_hide_credentials() {
        let b = Broker::parse("mqtt://user:hunter2@h").unwrap();
        assert!(!format!("{b:?} {b}").contains("hunter2"));
    }

    #[test]
    fn bad_addresses_are_refused() {
        assert!(matches!(
            Broker::parse("http://h"),
            Err(BrokerParseError::UnknownScheme(_))
        ));
        assert!(matches!(
            Broker::parse("mqtt://h:70000"),
            Err(BrokerParseError::InvalidPort(_))
        ));
        assert!(matches!(
            Broker::parse("mqtt://:1883"),
            Err(BrokerParseError::EmptyHost(_))
        ));
    }
}
