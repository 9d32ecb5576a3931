//! The client side of a SOCKS5 proxy (RFC 1928) with user name and password authentication
//! (RFC 1929): after it, the TCP stream leads to the broker and TLS / WebSocket / MQTT run
//! over it unchanged.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::broker::{Broker, Proxy};
use crate::error::ConnectError;

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0;
const USER_PASS: u8 = 2;
const NO_ACCEPTABLE: u8 = 0xff;
const CMD_CONNECT: u8 = 1;
const ATYP_V4: u8 = 1;
const ATYP_NAME: u8 = 3;
const ATYP_V6: u8 = 4;

/// What the proxy is asked to connect to.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// A host name (or IP literal) the proxy resolves (`socks5h`).
    Name(String, u16),
    /// An address tern resolved (`socks5`).
    Addr(SocketAddr),
}

/// Runs the SOCKS5 negotiation on `tcp` (connected to `proxy`) and asks for `target`.
pub(super) async fn handshake(
    mut tcp: TcpStream,
    proxy: &Proxy,
    broker: &Broker,
    target: Target,
) -> Result<TcpStream, ConnectError> {
    let fail = |reason: String| ConnectError::Proxy {
        proxy: proxy.to_string(),
        reason,
    };
    let io = |e: std::io::Error| fail(format!("the proxy connection failed: {e}"));
    let auth = proxy.username.as_deref().map(|user| {
        let pass = proxy.password.as_deref().unwrap_or("");
        (user, pass)
    });
    let greeting: &[u8] = if auth.is_some() {
        &[VERSION, 2, NO_AUTH, USER_PASS]
    } else {
        &[VERSION, 1, NO_AUTH]
    };
    tcp.write_all(greeting).await.map_err(io)?;
    let mut reply = [0u8; 2];
    tcp.read_exact(&mut reply).await.map_err(io)?;
    if reply[0] != VERSION {
        return Err(fail(format!(
            "not a SOCKS5 proxy (its reply starts with byte {:#04x})",
            reply[0]
        )));
    }
    match (reply[1], auth) {
        (NO_AUTH, _) => {}
        (USER_PASS, Some((user, pass))) => {
            let (u, p) = (user.as_bytes(), pass.as_bytes());
            let (Ok(ulen), Ok(plen)) = (u8::try_from(u.len()), u8::try_from(p.len())) else {
                return Err(fail(
                    "the proxy user name and password must be at most 255 bytes each".into(),
                ));
            };
            let mut msg = Vec::with_capacity(3 + u.len() + p.len());
            msg.extend_from_slice(&[1, ulen]);
            msg.extend_from_slice(u);
            msg.push(plen);
            msg.extend_from_slice(p);
            tcp.write_all(&msg).await.map_err(io)?;
            tcp.read_exact(&mut reply).await.map_err(io)?;
            if reply[1] != 0 {
                // The credentials themselves never go into the message.
                return Err(fail(format!(
                    "the proxy refused the user name and password (RFC 1929 status {})",
                    reply[1]
                )));
            }
        }
        (USER_PASS, None) => {
            return Err(fail(
                "the proxy requires a user name and password: socks5h://user:password@host:port"
                    .into(),
            ));
        }
        (NO_ACCEPTABLE, _) => {
            return Err(fail(
                "the proxy accepts none of the offered authentication methods (none, user name and password)"
                    .into(),
            ));
        }
        (other, _) => {
            return Err(fail(format!(
                "the proxy chose authentication method {other}, which was not offered"
            )));
        }
    }
    let mut req = vec![VERSION, CMD_CONNECT, 0];
    let port = match &target {
        Target::Name(host, port) => {
            match host.parse::<IpAddr>() {
                Ok(ip) => push_ip(&mut req, ip),
                Err(_) => {
                    let Ok(len) = u8::try_from(host.len()) else {
                        return Err(fail(format!("host name {host:?} is too long for SOCKS5")));
                    };
                    req.extend_from_slice(&[ATYP_NAME, len]);
                    req.extend_from_slice(host.as_bytes());
                }
            }
            *port
        }
        Target::Addr(addr) => {
            push_ip(&mut req, addr.ip());
            addr.port()
        }
    };
    req.extend_from_slice(&port.to_be_bytes());
    tcp.write_all(&req).await.map_err(io)?;
    let mut head = [0u8; 4];
    tcp.read_exact(&mut head).await.map_err(io)?;
    if head[1] != 0 {
        let why = reply_text(head[1]);
        let reason = format!("the SOCKS proxy {proxy} could not connect: {why}");
        // Refused / unreachable behind the proxy: nothing listens there, as without a proxy.
        return Err(if matches!(head[1], 3..=5) {
            let kind = match head[1] {
                3 => std::io::ErrorKind::NetworkUnreachable,
                4 => std::io::ErrorKind::HostUnreachable,
                _ => std::io::ErrorKind::ConnectionRefused,
            };
            ConnectError::ServerNotFound {
                addr: broker.host_port(),
                source: std::sync::Arc::new(std::io::Error::new(kind, reason)),
            }
        } else {
            fail(format!(
                "could not connect to {}: {why}",
                broker.host_port()
            ))
        });
    }
    let rest = match head[3] {
        ATYP_V4 => 4 + 2,
        ATYP_V6 => 16 + 2,
        ATYP_NAME => {
            let mut len = [0u8; 1];
            tcp.read_exact(&mut len).await.map_err(io)?;
            usize::from(len[0]) + 2
        }
        other => return Err(fail(format!("the proxy replied with address type {other}"))),
    };
    let mut bound = vec![0u8; rest];
    tcp.read_exact(&mut bound).await.map_err(io)?;
    tracing::debug!(target: crate::trace::CONNECT_TARGET, "SOCKS5 proxy {proxy} connected to {}", match &target {
        Target::Name(h, p) => format!("{h}:{p} (resolved by the proxy)"),
        Target::Addr(a) => a.to_string(),
    });
    Ok(tcp)
}

fn push_ip(req: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            req.push(ATYP_V4);
            req.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            req.push(ATYP_V6);
            req.extend_from_slice(&v6.octets());
        }
    }
}

/// RFC 1928 section 6's reply codes, in words.
fn reply_text(code: u8) -> String {
    match code {
        1 => "general SOCKS server failure".into(),
        2 => "connection not allowed by the proxy's rules".into(),
        3 => "network unreachable".into(),
        4 => "host unreachable (or its name did not resolve)".into(),
        5 => "connection refused".into(),
        6 => "TTL expired".into(),
        7 => "command not supported".into(),
        8 => "address type not supported".into(),
        other => format!("reply code {other}"),
    }
}
