//! DNS and TCP.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::broker::Broker;
use crate::error::ConnectError;

/// Resolves the broker's host; an IP literal needs no lookup.
pub(super) async fn resolve(broker: &Broker) -> Result<Vec<SocketAddr>, ConnectError> {
    if let Ok(ip) = broker.host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, broker.port)]);
    }
    let dns_error = |source: io::Error| ConnectError::Dns {
        host: broker.host.clone(),
        source: Arc::new(source),
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((broker.host.as_str(), broker.port))
        .await
        .map_err(dns_error)?
        .collect();
    if addrs.is_empty() {
        return Err(dns_error(io::Error::new(
            io::ErrorKind::NotFound,
            "no addresses",
        )));
    }
    Ok(addrs)
}

/// Connects to the first address that accepts; TCP_NODELAY as `nodelay` says
/// ([`ConnectOptions::tcp_nodelay`](crate::ConnectOptions::tcp_nodelay): on by default,
/// without it a QoS 1 round trip waits ~40 ms for delayed ACKs).
pub(super) async fn connect(
    broker: &Broker,
    addrs: &[SocketAddr],
    nodelay: bool,
) -> Result<TcpStream, ConnectError> {
    let mut last: Option<io::Error> = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                stream
                    .set_nodelay(nodelay)
                    .map_err(|e| io_error(broker, e))?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    let source =
        last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address to try"));
    Err(ConnectError::ServerNotFound {
        addr: broker.host_port(),
        source: Arc::new(source),
    })
}

fn io_error(broker: &Broker, e: io::Error) -> ConnectError {
    ConnectError::Io {
        addr: broker.host_port(),
        source: Arc::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ConnectOptions::tcp_nodelay` reaches the socket, both ways.
    #[tokio::test]
    async fn nodelay_follows_the_option() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let broker = Broker::tcp("127.0.0.1", addr.port());
        for nodelay in [true, false] {
            let stream = connect(&broker, &[addr], nodelay)
                .await
                .expect("the listener accepts");
            assert_eq!(stream.nodelay().expect("read TCP_NODELAY"), nodelay);
        }
    }
}
