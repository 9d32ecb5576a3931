//! MQTT 5 server redirection: a CONNACK 0x9C Use another server / 0x9D Server moved, or a
//! DISCONNECT with those reasons, naming a Server Reference, followed when
//! [`V5Options::max_redirects`](crate::V5Options::max_redirects) allows.

use tern_proto::{ConnectReasonCode, DisconnectReasonCode};

use crate::broker::Broker;
use crate::error::{ConnectError, ConnectionError};

/// The broker `reference` names, relative to `current`: a URI (`mqtt://host:port`), or
/// `host[:port]` (`[v6]:port`) keeping the current scheme, path, credentials and (when none
/// is given) port. A space-separated list names alternatives: the first is taken. `None`
/// when it cannot be parsed.
pub(super) fn resolve(current: &Broker, reference: &str) -> Option<Broker> {
    let first = reference.split_whitespace().next()?;
    if first.contains("://") {
        return Broker::parse(first).ok();
    }
    let (host, port) = if let Some(rest) = first.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => current.port,
            None => return None,
        };
        (host, port)
    } else {
        match first.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, port.parse().ok()?),
            Some(_) => return None,
            None => (first, current.port),
        }
    };
    if host.is_empty() {
        return None;
    }
    let mut next = current.clone();
    next.host = host.to_owned();
    next.port = port;
    Some(next)
}

/// The Server Reference of a redirecting CONNACK refusal.
pub(super) fn from_connect_error(e: &ConnectError) -> Option<&str> {
    match e {
        ConnectError::RefusedV5(ack)
            if matches!(
                ack.reason,
                ConnectReasonCode::UseAnotherServer | ConnectReasonCode::ServerMoved
            ) =>
        {
            ack.properties.server_reference.as_deref()
        }
        _ => None,
    }
}

/// The Server Reference of a redirecting DISCONNECT.
pub(super) fn from_connection_error(e: &ConnectionError) -> Option<&str> {
    match e {
        ConnectionError::Server(d)
            if matches!(
                d.reason,
                DisconnectReasonCode::UseAnotherServer | DisconnectReasonCode::ServerMoved
            ) =>
        {
            d.properties.server_reference.as_deref()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use crate::broker::{Broker, Scheme};

    #[test]
    fn references_resolve_against_the_current_broker() {
        let current = Broker::new(Scheme::Mqtts, "a.example", 8883);
        let b = resolve(&current, "b.example:1884").unwrap();
        assert_eq!(
            (b.scheme, b.host.as_str(), b.port),
            (Scheme::Mqtts, "b.example", 1884)
        );
        let b = resolve(&current, "b.example").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("b.example", 8883));
        let b = resolve(&current, "[::1]:1885 other:1").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("::1", 1885));
        let b = resolve(&current, "mqtt://c.example:1").unwrap();
        assert_eq!(
            (b.scheme, b.host.as_str(), b.port),
            (Scheme::Mqtt, "c.example", 1)
        );
        for bad in ["", "   ", "host:notaport", "[::1", ":1883", "a:b:c"] {
            assert!(resolve(&current, bad).is_none(), "{bad:?}");
        }
    }
}
