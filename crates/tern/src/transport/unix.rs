//! Unix domain sockets (`unix:///path`; mosquitto's `listener 0 /path`).

use crate::broker::Broker;
use crate::error::ConnectError;

use super::BoxStream;

/// Connects to the socket at `broker.host`.
#[cfg(unix)]
pub(super) async fn connect(broker: &Broker) -> Result<BoxStream, ConnectError> {
    let path = &broker.host;
    match tokio::net::UnixStream::connect(path).await {
        Ok(stream) => {
            tracing::debug!(target: crate::trace::CONNECT_TARGET, "connected to Unix socket {path}");
            Ok(Box::new(stream))
        }
        Err(e) => {
            tracing::debug!(target: crate::trace::CONNECT_TARGET, "connecting to Unix socket {path} failed: {e}");
            Err(ConnectError::ServerNotFound {
                addr: path.clone(),
                source: std::sync::Arc::new(e),
            })
        }
    }
}

/// Unix domain sockets exist on Unix-like systems only.
#[cfg(not(unix))]
pub(super) async fn connect(broker: &Broker) -> Result<BoxStream, ConnectError> {
    Err(ConnectError::InvalidOptions(format!(
        "Unix domain sockets are not available on this system ({broker})"
    )))
}

#[cfg(unix)]
impl super::Stream for tokio::net::UnixStream {
    fn tcp(&self) -> Option<&tokio::net::TcpStream> {
        None
    }
}
