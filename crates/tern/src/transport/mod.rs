//! Byte streams to a broker: TCP, TLS over TCP, and WebSocket over either. Every transport
//! yields one boxed [`Stream`]; the driver does not know which it has.

mod tcp;
mod tls;
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
    /// The TCP socket underneath, for socket options.
    fn tcp(&self) -> &TcpStream;
}

impl Stream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Stream for tokio_rustls::client::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

impl<S: Stream> Stream for ws::WsStream<S> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().tcp()
    }
}

/// Sends the ACK of what was read now instead of after the delayed-ACK timeout (40 ms or
/// more on Linux), and leaves the kernel's "interactive" mode, where it holds ACKs back
/// expecting to send them with data. A broker that leaves Nagle's algorithm on (mosquitto's
/// default) holds its next small packet until that ACK (see `crate::quickack` for when).
/// Linux only; elsewhere a no-op.
pub(crate) fn quickack(stream: &dyn Stream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = socket2::SockRef::from(stream.tcp()).set_tcp_quickack(true) {
        tracing::debug!(error = %e, "TCP_QUICKACK");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}

/// A boxed transport stream.
pub(crate) type BoxStream = Box<dyn Stream>;

/// Opens a stream to `broker` (DNS, TCP, TLS, WebSocket) before `deadline`.
pub(crate) async fn open(
    broker: &Broker,
    options: &ConnectOptions,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    deadline: Instant,
) -> Result<BoxStream, ConnectError> {
    let timeout = options.connect_timeout;
    let addrs = within(deadline, ConnectStage::Dns, timeout, tcp::resolve(broker)).await??;
    // TCP, TLS and WebSocket handshakes: one stage, "CONNECT could not be sent in time".
    let handshakes = async {
        let tcp = tcp::connect(broker, &addrs).await?;
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

/// The TLS and WebSocket layers over a connected TCP stream.
async fn upgrade(
    broker: &Broker,
    options: &ConnectOptions,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    tcp: TcpStream,
) -> Result<BoxStream, ConnectError> {
    Ok(match broker.scheme {
        Scheme::Mqtt => Box::new(tcp),
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
