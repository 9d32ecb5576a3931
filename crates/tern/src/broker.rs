//! Where to connect: [`Broker`] addresses, parsed from `host`/`port` pairs or URIs
//! (`mqtt://`, `mqtts://`, `ws://`, `wss://`, with optional `user:password@`).

use std::fmt;

/// The transport a broker address asks for.
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
}

impl Scheme {
    /// The port used when an address names none.
    pub const fn default_port(self) -> u16 {
        match self {
            Self::Mqtt => 1883,
            Self::Mqtts => 8883,
            Self::Ws => 80,
            Self::Wss => 443,
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
        }
    }
}

/// One broker address.
#[derive(Clone, PartialEq, Eq)]
pub struct Broker {
    /// Transport.
    pub scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
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
}

impl Broker {
    /// `host:port`, as connect errors name the broker.
    pub(crate) fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
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
    /// `ssl`, `tls`), or a bare `host[:port]` taken as `mqtt://`. IPv6 hosts go in brackets.
    pub fn parse(s: &str) -> Result<Self, BrokerParseError> {
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
