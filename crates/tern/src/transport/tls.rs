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
        source: None,
    })?;
    let stream = TlsConnector::from(config)
        .connect(server_name, stream)
        .await
        .map_err(|e| ConnectError::Tls {
            reason: crate::tls::explain_handshake_error(&e, name, broker.scheme.is_websocket()),
            source: e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .cloned(),
            addr: addr.clone(),
        })?;
    if tracing::enabled!(target: crate::trace::CONNECT_TARGET, tracing::Level::DEBUG) {
        let conn = stream.get_ref().1;
        let version = conn
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("unknown version");
        let suite = conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown cipher suite");
        let subject = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| crate::tls::x509::subject(c))
            .unwrap_or_else(|| "(unreadable)".into());
        tracing::debug!(target: crate::trace::CONNECT_TARGET, "TLS handshake with {addr} done: {version}, {suite}, broker certificate subject {subject}");
    }
    Ok(stream)
}
