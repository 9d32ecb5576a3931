//! Byte streams to a broker: TCP (direct or through a SOCKS5 proxy), TLS over TCP,
//! WebSocket over either, and Unix domain sockets. Every transport yields one boxed
//! [`Stream`]; the driver does not know which it has.
//!
//! Each step is reported on the `tern::connect` tracing target (see [`crate::trace`]), and
//! when `tern::packet` is enabled the stream is wrapped so that every packet is too.

mod socks;
mod tcp;
mod tls;
mod unix;
mod ws;

use std::future::Future;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::broker::{Broker, Scheme};
use crate::error::{ConnectError, ConnectStage};
use crate::options::ConnectOptions;

/// A connected, bidirectional byte stream.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {
    /// The TCP socket underneath, for socket options; `None` for a Unix domain socket.
    fn tcp(&self) -> Option<&TcpStream>;
}

impl Stream for TcpStream {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl Stream for tokio_rustls::client::TlsStream<TcpStream> {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self.get_ref().0)
    }
}

impl<S: Stream> Stream for ws::WsStream<S> {
    fn tcp(&self) -> Option<&TcpStream> {
        self.get_ref().tcp()
    }
}

impl<S: Stream> Stream for crate::trace::Traced<S> {
    fn tcp(&self) -> Option<&TcpStream> {
        self.get_ref().tcp()
    }
}

impl Stream for BoxStream {
    fn tcp(&self) -> Option<&TcpStream> {
        (**self).tcp()
    }
}

/// Sends the ACK of what was read now instead of after the delayed-ACK timeout (40 ms or
/// more on Linux), and leaves the kernel's "interactive" mode, where it holds ACKs back
/// expecting to send them with data. A broker that leaves Nagle's algorithm on (mosquitto's
/// default) holds its next small packet until that ACK (see `crate::quickack` for when).
/// Linux only; elsewhere a no-op.
pub(crate) fn quickack(stream: &dyn Stream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(tcp) = stream.tcp()
        && let Err(e) = socket2::SockRef::from(tcp).set_tcp_quickack(true)
    {
        tracing::debug!(error = %e, "TCP_QUICKACK");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}

/// A boxed transport stream.
pub(crate) type BoxStream = Box<dyn Stream>;

/// Opens a stream to `broker` (DNS, TCP or SOCKS5 or Unix socket, TLS, WebSocket) before
/// `deadline`.
pub(crate) async fn open(
    broker: &Broker,
    options: &ConnectOptions,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    deadline: Instant,
) -> Result<BoxStream, ConnectError> {
    let stream = open_plain(broker, options, tls_config, deadline).await?;
    Ok(if crate::trace::packets_enabled() {
        Box::new(crate::trace::Traced::new(stream))
    } else {
        stream
    })
}

async fn open_plain(
    broker: &Broker,
    options: &ConnectOptions,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    deadline: Instant,
) -> Result<BoxStream, ConnectError> {
    let timeout = options.connect_timeout;
    if broker.scheme == Scheme::Unix {
        if options.proxy.is_some() {
            return Err(ConnectError::InvalidOptions(
                "a Unix domain socket cannot be reached through a SOCKS proxy".into(),
            ));
        }
        let stream = within(
            deadline,
            ConnectStage::Sending,
            timeout,
            unix::connect(broker),
        );
        return stream.await?;
    }
    // Where the TCP connection goes: the broker, or the proxy (and what it is asked for).
    let (first_hop, target) = match &options.proxy {
        None => (broker.clone(), None),
        Some(proxy) => {
            let hop = Broker::tcp(proxy.host.clone(), proxy.port);
            let target = if proxy.remote_dns || broker.host.parse::<std::net::IpAddr>().is_ok() {
                socks::Target::Name(broker.host.clone(), broker.port)
            } else {
                let addrs = tcp::resolve(broker);
                let addrs = within(deadline, ConnectStage::Dns, timeout, addrs).await??;
                trace_resolved(broker, &addrs);
                // The first address: the proxy makes one connection attempt per request.
                match addrs.first() {
                    Some(a) => socks::Target::Addr(*a),
                    None => socks::Target::Name(broker.host.clone(), broker.port),
                }
            };
            (hop, Some((proxy, target)))
        }
    };
    let addrs = within(
        deadline,
        ConnectStage::Dns,
        timeout,
        tcp::resolve(&first_hop),
    )
    .await??;
    trace_resolved(&first_hop, &addrs);
    // TCP, TLS and WebSocket handshakes: one stage, "CONNECT could not be sent in time".
    let handshakes = async {
        let connected = match options.bind_address {
            None => tcp::connect(&first_hop, &addrs, options.tcp_nodelay).await,
            Some(local) => connect_from(&first_hop, &addrs, local, options.tcp_nodelay).await,
        };
        let tcp = match connected {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::debug!(target: crate::trace::CONNECT_TARGET, "TCP connection to {} failed: {e}", first_hop.host_port());
                return Err(match (&target, e) {
                    (Some((proxy, _)), ConnectError::ServerNotFound { source, .. }) => {
                        ConnectError::Proxy {
                            proxy: proxy.to_string(),
                            reason: format!("cannot reach the proxy: {source}"),
                        }
                    }
                    (_, e) => e,
                });
            }
        };
        trace_tcp(&tcp);
        let tcp = match target {
            None => tcp,
            Some((proxy, target)) => Box::pin(socks::handshake(tcp, proxy, broker, target)).await?,
        };
        let stream: BoxStream = match broker.scheme {
            Scheme::Mqtt => Box::new(tcp),
            // Boxed: the TLS and WebSocket handshakes are large futures (~13 KiB); inline,
            // every plain TCP connection attempt would allocate room for them too.
            _ => Box::pin(upgrade(broker, options, tls_config, tcp)).await?,
        };
        Ok(stream)
    };
    within(deadline, ConnectStage::Sending, timeout, handshakes).await?
}

/// Connects from `local` to the first address of its family that accepts.
async fn connect_from(
    broker: &Broker,
    addrs: &[std::net::SocketAddr],
    local: std::net::IpAddr,
    nodelay: bool,
) -> Result<TcpStream, ConnectError> {
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!(
            "no {} address to connect to from {local}",
            if local.is_ipv4() { "IPv4" } else { "IPv6" }
        ),
    );
    for addr in addrs.iter().filter(|a| a.is_ipv4() == local.is_ipv4()) {
        let socket = if local.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        };
        let attempt = async {
            let socket = socket?;
            socket.bind(std::net::SocketAddr::new(local, 0))?;
            let stream = socket.connect(*addr).await?;
            stream.set_nodelay(nodelay)?;
            Ok::<_, std::io::Error>(stream)
        };
        match attempt.await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                last = std::io::Error::new(e.kind(), format!("{e} (connecting from {local})"));
            }
        }
    }
    Err(ConnectError::ServerNotFound {
        addr: broker.host_port(),
        source: Arc::new(last),
    })
}

fn trace_resolved(broker: &Broker, addrs: &[std::net::SocketAddr]) {
    if tracing::enabled!(target: crate::trace::CONNECT_TARGET, tracing::Level::DEBUG)
        && broker.host.parse::<std::net::IpAddr>().is_err()
    {
        let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
        tracing::debug!(target: crate::trace::CONNECT_TARGET, "resolved {} to {}", broker.host, list.join(", "));
    }
}

fn trace_tcp(tcp: &TcpStream) {
    if tracing::enabled!(target: crate::trace::CONNECT_TARGET, tracing::Level::DEBUG) {
        let peer = tcp
            .peer_addr()
            .map_or_else(|e| e.to_string(), |a| a.to_string());
        let local = tcp
            .local_addr()
            .map_or_else(|e| e.to_string(), |a| a.to_string());
        tracing::debug!(target: crate::trace::CONNECT_TARGET, "TCP connected to {peer} from {local}");
    }
}

/// The TLS and WebSocket layers over a connected TCP stream.
async fn upgrade(
    broker: &Broker,
    options: &ConnectOptions,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    tcp: TcpStream,
) -> Result<BoxStream, ConnectError> {
    Ok(match broker.scheme {
        Scheme::Mqtt | Scheme::Unix => Box::new(tcp),
        Scheme::Mqtts => {
            let config = tls_required(tls_config)?;
            Box::new(tls::handshake(broker, options, config, tcp).await?)
        }
        Scheme::Ws => Box::new(ws::handshake(broker, options, tcp).await?),
        Scheme::Wss => {
            let config = tls_required(tls_config)?;
            let tls = tls::handshake(broker, options, config, tcp).await?;
            Box::new(ws::handshake(broker, options, tls).await?)
        }
    })
}

fn tls_required(
    config: Option<Arc<rustls::ClientConfig>>,
) -> Result<Arc<rustls::ClientConfig>, ConnectError> {
    config.ok_or_else(|| ConnectError::InvalidOptions("TLS broker but no TLS configuration".into()))
}

/// Runs `fut` until `deadline`; on expiry, a timeout at `stage`.
pub(crate) async fn within<F: Future>(
    deadline: Instant,
    stage: ConnectStage,
    after: std::time::Duration,
    fut: F,
) -> Result<F::Output, ConnectError> {
    tokio::time::timeout_at(deadline, fut)
        .await
        .map_err(|_| ConnectError::Timeout { stage, after })
}
