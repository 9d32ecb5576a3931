//! TLS over any stream, with rustls.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::broker::Broker;
use crate::error::ConnectError;
use crate::options::ConnectOptions;

/// Runs the TLS handshake; the server name is the broker host (an IP address is checked
/// against the certificate's IP SANs) unless `TlsOptions::server_name` overrides it.
pub(super) async fn handshake<S>(
    broker: &Broker,
    options: &ConnectOptions,
    config: Arc<rustls::ClientConfig>,
    stream: S,
) -> Result<TlsStream<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let addr = broker.host_port();
    let name = options.tls.server_name.as_deref().unwrap_or(&broker.host);
    let server_name = ServerName::try_from(name.to_owned()).map_err(|e| ConnectError::Tls {
        addr: addr.clone(),
        reason: format!("invalid server name {name:?}: {e}"),
    })?;
    TlsConnector::from(config)
        .connect(server_name, stream)
        .await
        .map_err(|e| ConnectError::Tls {
            reason: format!("{e} (verifying {name})"),
            addr,
        })
}
