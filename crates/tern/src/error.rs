//! Errors of the client, by whose fault: [`ConnectError`] (a connection attempt failed),
//! [`ConnectionError`] (an established connection ended), [`ClientError`] (a command).

use std::sync::Arc;
use std::time::Duration;

use tern_proto::{
    ApiMisuse, ConnectReturnCode, PacketType, ProtocolError, RequestError, TopicError,
};

use crate::broker::BrokerParseError;
use crate::tls::TlsConfigError;

/// The seed's value for failures outside its table (TLS, WebSocket, configuration): NodeMCU's
/// ESP32 module reports every failure as -6.
pub const CODE_OTHER: i32 = -6;

/// Which step of a connection attempt ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectStage {
    /// Resolving the host name.
    Dns,
    /// TCP, TLS or WebSocket handshake, or writing CONNECT.
    Sending,
    /// Waiting for CONNACK.
    ConnAck,
}

/// A connection attempt failed. [`code`](Self::code) gives the seed's reason code.
///
/// | variant | `code()` |
/// |---|---|
/// | [`ServerNotFound`](Self::ServerNotFound) (refused, reset, unreachable) | -5 |
/// | [`NotConnAck`](Self::NotConnAck), [`ClosedBeforeConnAck`](Self::ClosedBeforeConnAck), [`Protocol`](Self::Protocol) | -4 |
/// | [`Dns`](Self::Dns), [`Timeout`] at [`ConnectStage::Dns`] | -3 |
/// | [`Timeout`] at [`ConnectStage::ConnAck`] | -2 |
/// | [`Timeout`] at [`ConnectStage::Sending`] | -1 |
/// | [`Refused`](Self::Refused) | 1..5, the CONNACK code |
/// | TLS, WebSocket, configuration, I/O, closed | -6 ([`CODE_OTHER`]) |
///
/// [`Timeout`]: Self::Timeout
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// Nothing accepts connections at the address (refused, reset or unreachable).
    #[error("no broker listening at {addr}: {reason}")]
    ServerNotFound {
        /// `host:port`.
        addr: String,
        /// The operating system's message.
        reason: String,
    },
    /// The host name did not resolve.
    #[error("DNS lookup of {host:?} failed: {reason}")]
    Dns {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The broker's first packet was not CONNACK [MQTT-3.2.0-1].
    #[error("broker answered CONNECT with {0}, not CONNACK [MQTT-3.2.0-1]")]
    NotConnAck(PacketType),
    /// The broker closed the connection before sending CONNACK.
    #[error("broker closed the connection before CONNACK")]
    ClosedBeforeConnAck,
    /// A step of the attempt did not finish within the connect timeout.
    #[error("{}", timeout_message(*.stage, *.after))]
    Timeout {
        /// The step that ran out of time.
        stage: ConnectStage,
        /// The configured timeout.
        after: Duration,
    },
    /// The broker refused the connection in CONNACK.
    #[error("connection refused: {0}")]
    Refused(ConnectReturnCode),
    /// The TLS handshake failed (e.g. certificate verification).
    #[error("TLS handshake with {addr} failed: {reason}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// rustls's message, e.g. "invalid peer certificate: UnknownIssuer".
        reason: String,
    },
    /// The TLS settings are unusable.
    #[error(transparent)]
    TlsConfig(#[from] TlsConfigError),
    /// The WebSocket handshake failed.
    #[error("WebSocket handshake with {addr} failed: {reason}")]
    WebSocket {
        /// The URL.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The broker sent something that is not MQTT before CONNACK.
    #[error("protocol error before CONNACK: {0}")]
    Protocol(ProtocolError),
    /// The options cannot produce a valid CONNECT (e.g. a 3.1 client id over 23 characters).
    #[error("invalid connect options: {0}")]
    InvalidOptions(String),
    /// The session store ([`ConnectOptions::session_store`](crate::ConnectOptions)) could
    /// not be opened or recovered.
    #[error(transparent)]
    Store(Arc<crate::store::StoreError>),
    /// The broker address could not be parsed.
    #[error(transparent)]
    Address(#[from] BrokerParseError),
    /// An I/O error not covered above.
    #[error("I/O error talking to {addr}: {reason}")]
    Io {
        /// `host:port`.
        addr: String,
        /// The operating system's message.
        reason: String,
    },
    /// `close()` was called, or the client dropped, while connecting.
    #[error("connection attempt abandoned: the client was closed")]
    Closed,
    /// `connect()` while already connected or connecting.
    #[error("already connected or connecting")]
    AlreadyConnected,
}

fn timeout_message(stage: ConnectStage, after: Duration) -> String {
    match stage {
        ConnectStage::Dns => format!("DNS lookup did not finish within {after:?}"),
        ConnectStage::Sending => format!("CONNECT could not be sent within {after:?}"),
        ConnectStage::ConnAck => format!("no CONNACK within {after:?}"),
    }
}

impl ConnectError {
    /// The seed's reason code (see the table on the type).
    pub fn code(&self) -> i32 {
        match self {
            Self::ServerNotFound { .. } => -5,
            Self::NotConnAck(_) | Self::ClosedBeforeConnAck | Self::Protocol(_) => -4,
            Self::Dns { .. } => -3,
            Self::Timeout { stage, .. } => match stage {
                ConnectStage::Dns => -3,
                ConnectStage::ConnAck => -2,
                ConnectStage::Sending => -1,
            },
            Self::Refused(code) => *code as i32,
            _ => CODE_OTHER,
        }
    }
}

/// Why an established connection ended.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectionError {
    /// The application called `close()`.
    #[error("closed by the application")]
    Local,
    /// The broker or the network closed the connection.
    #[error("connection closed by the broker or the network")]
    Closed,
    /// An I/O error on the socket.
    #[error("I/O error: {0}")]
    Io(Arc<std::io::Error>),
    /// No PINGRESP in time: the link is presumed dead.
    #[error("no PINGRESP within {0:?}: connection presumed dead")]
    PingTimeout(Duration),
    /// The broker broke the protocol; tern closed the connection [MQTT-4.8.0-1].
    #[error("protocol violation by the broker: {0}")]
    Protocol(ProtocolError),
}

/// A command (publish, subscribe, unsubscribe, close) failed.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The command queue is full (`try_*` methods; see `ConnectOptions::max_queued`).
    #[error("command queue full")]
    QueueFull,
    /// The client's driver has stopped (every handle was dropped or it was shut down).
    #[error("client is shut down")]
    Shutdown,
    /// The command can no longer complete.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// An invalid topic name or filter.
    #[error("invalid topic {topic:?}: {source}")]
    Topic {
        /// The topic as given.
        topic: String,
        /// What is wrong with it.
        source: TopicError,
    },
    /// The session refused the command (e.g. no filters given).
    #[error(transparent)]
    Misuse(#[from] ApiMisuse),
    /// `close()` with no connection open.
    #[error("not connected")]
    NotConnected,
}
