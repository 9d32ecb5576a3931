//! Errors of the client, by whose fault: [`ConnectError`] (a connection attempt failed),
//! [`ConnectionError`] (an established connection ended), [`ClientError`] (a command).
//!
//! Every message is meant for a person: it names the broker, the step that failed and, where
//! there is one, the usual fix. None contains a password or a private key.

use std::sync::Arc;
use std::time::Duration;

use tern_proto::session::Initiator;
use tern_proto::{
    ApiMisuse, ConnAckV5, ConnectReturnCode, DisconnectReason, DisconnectV5, PacketType,
    ProtocolError, RequestError, TopicError,
};

use crate::auth::AuthError;

use crate::broker::BrokerParseError;
use crate::tls::TlsConfigError;

/// The seed's value for failures outside its table (TLS, WebSocket, configuration): NodeMCU's
/// ESP32 module reports every failure as -6.
pub const CODE_OTHER: i32 = -6;

/// Which step of a connection attempt ran out of time.
#[non_exhaustive]
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
/// | [`ServerNotFound`](Self::ServerNotFound) (refused, unreachable), [`ResetDuringConnect`](Self::ResetDuringConnect) | -5 |
/// | [`NotConnAck`](Self::NotConnAck), [`ClosedBeforeConnAck`](Self::ClosedBeforeConnAck), [`Protocol`](Self::Protocol) | -4 |
/// | [`Dns`](Self::Dns), [`Timeout`] at [`ConnectStage::Dns`] | -3 |
/// | [`Timeout`] at [`ConnectStage::ConnAck`] | -2 |
/// | [`Timeout`] at [`ConnectStage::Sending`] | -1 |
/// | [`Refused`](Self::Refused) | 1..5, the CONNACK code |
/// | TLS, WebSocket, SOCKS proxy, configuration, I/O, closed | -6 ([`CODE_OTHER`]) |
///
/// [`Timeout`]: Self::Timeout
///
/// ```no_run
/// use tern::{Broker, Client, ConnectError, ConnectOptions};
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() {
///     let (client, _events) = Client::new(ConnectOptions::new("probe"));
///     match client.connect(Broker::tcp("127.0.0.1", 1883)).await {
///         Ok(_) => println!("connected"),
///         Err(e @ ConnectError::Refused(_)) => eprintln!("the broker said no: {e}"),
///         // e.g. "no broker listening at 127.0.0.1:1883: Connection refused (os error 111)"
///         Err(e) => eprintln!("{e} (NodeMCU code {})", e.code()),
///     }
/// }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// Nothing accepts connections at the address (refused, reset or unreachable).
    #[error("no broker listening at {addr}: {source}")]
    ServerNotFound {
        /// `host:port`.
        addr: String,
        /// The operating system's error (its [`kind`](std::io::Error::kind) is e.g.
        /// `ConnectionRefused`, `HostUnreachable`).
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The connection was reset while CONNECT was on its way: something listens at the
    /// address but hung up on MQTT, typically a TLS port spoken to in plain text.
    #[error("the connection to {addr} was reset during CONNECT ({source}){}", reset_hint(*.plain))]
    ResetDuringConnect {
        /// `host:port`.
        addr: String,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
        /// Whether the attempt was plain text (no TLS), so a TLS port is a likely cause.
        plain: bool,
    },
    /// The SOCKS5 proxy could not be used (unreachable, refused the credentials, or could not
    /// reach the broker for a reason other than "refused" / "unreachable").
    #[error("SOCKS proxy {proxy}: {reason}")]
    Proxy {
        /// The proxy, without credentials.
        proxy: String,
        /// What went wrong.
        reason: String,
    },
    /// The host name did not resolve.
    #[error("DNS lookup of {host:?} failed: {source}")]
    Dns {
        /// The host.
        host: String,
        /// The resolver's error.
        #[source]
        source: Arc<std::io::Error>,
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
        /// What went wrong and the usual fix, from rustls's error, e.g. "invalid peer
        /// certificate: UnknownIssuer".
        reason: String,
        /// rustls's error, when rustls failed (not, e.g., an invalid server name).
        #[source]
        source: Option<rustls::Error>,
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
    /// The options cannot work (see [`ConnectOptions::validate`](crate::ConnectOptions::validate),
    /// which finds this before connecting).
    #[error("invalid connect options: {0}")]
    Options(#[from] crate::options::OptionsError),
    /// The broker address or its settings cannot be used (no address given, a WebSocket
    /// header that is not valid HTTP, a TLS broker without TLS settings).
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
    #[error("I/O error talking to {addr}: {source}")]
    Io {
        /// `host:port`.
        addr: String,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// `close()` was called, or the client dropped, while connecting.
    #[error("connection attempt abandoned: the client was closed")]
    Closed,
    /// `connect()` while already connected or connecting.
    #[error("already connected or connecting")]
    AlreadyConnected,
    /// MQTT 5: the broker refused the connection in CONNACK, with its reason code, Reason
    /// String and (for 0x9C / 0x9D) Server Reference.
    #[error("connection refused: {}{}", .0.reason, suffix(.0.properties.reason_string.as_deref()))]
    RefusedV5(Box<ConnAckV5>),
    /// MQTT 5 enhanced authentication failed on our side (the authenticator refused the
    /// broker's data), or the broker's AUTH could not be answered.
    #[error(transparent)]
    Auth(Arc<AuthError>),
}

/// `: "reason string"` when there is one.
fn suffix(reason: Option<&str>) -> String {
    reason.map_or_else(String::new, |r| format!(": {r:?}"))
}

fn reset_hint(plain: bool) -> &'static str {
    if plain {
        ": a server is listening but hung up on plain MQTT; is this a TLS port? \
         Use mqtts:// (tern pub/sub: --cafile, --capath or --tls-use-os-certs)"
    } else {
        ": a server is listening but hung up"
    }
}

fn timeout_message(stage: ConnectStage, after: Duration) -> String {
    match stage {
        ConnectStage::Dns => format!("DNS lookup did not finish within {after:?}"),
        ConnectStage::Sending => format!("CONNECT could not be sent within {after:?}"),
        ConnectStage::ConnAck => format!("no CONNACK within {after:?}"),
    }
}

impl ConnectError {
    /// The error for a reset while connecting to `broker` (see
    /// [`ResetDuringConnect`](Self::ResetDuringConnect)).
    pub(crate) fn reset_during_connect(broker: &crate::Broker, e: &std::io::Error) -> Self {
        Self::ResetDuringConnect {
            addr: broker.host_port(),
            source: Arc::new(copy_io_error(e)),
            plain: !broker.scheme.is_tls(),
        }
    }

    /// The operating system's error behind this failure, if one is: for its
    /// [`kind`](std::io::Error::kind) (`ConnectionRefused`, `TimedOut`, …). The same error is
    /// this error's [`source`](std::error::Error::source), as an `Arc<io::Error>` (errors are
    /// `Clone`, to travel in events).
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            Self::ServerNotFound { source, .. }
            | Self::ResetDuringConnect { source, .. }
            | Self::Dns { source, .. }
            | Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Who caused the failure: the broker or network ([`Initiator::Remote`]), this library
    /// enforcing the protocol or a timeout ([`Initiator::Library`]), or the application
    /// (its options, `close()`; [`Initiator::Local`]).
    pub fn initiator(&self) -> Initiator {
        match self {
            Self::ServerNotFound { .. }
            | Self::ResetDuringConnect { .. }
            | Self::Proxy { .. }
            | Self::Dns { .. }
            | Self::ClosedBeforeConnAck
            | Self::Refused(_)
            | Self::RefusedV5(_)
            | Self::Tls { .. }
            | Self::WebSocket { .. }
            | Self::Io { .. } => Initiator::Remote,
            Self::NotConnAck(_) | Self::Timeout { .. } | Self::Protocol(_) | Self::Auth(_) => {
                Initiator::Library
            }
            Self::TlsConfig(_)
            | Self::InvalidOptions(_)
            | Self::Options(_)
            | Self::Store(_)
            | Self::Address(_)
            | Self::Closed
            | Self::AlreadyConnected => Initiator::Local,
        }
    }

    /// The seed's reason code (see the table on the type).
    pub fn code(&self) -> i32 {
        match self {
            Self::ServerNotFound { .. } | Self::ResetDuringConnect { .. } => -5,
            Self::NotConnAck(_) | Self::ClosedBeforeConnAck | Self::Protocol(_) => -4,
            Self::Dns { .. } => -3,
            Self::Timeout { stage, .. } => match stage {
                ConnectStage::Dns => -3,
                ConnectStage::ConnAck => -2,
                ConnectStage::Sending => -1,
            },
            Self::Refused(code) => *code as i32,
            Self::RefusedV5(ack) => i32::from(ack.reason.to_u8()),
            _ => CODE_OTHER,
        }
    }
}

/// Why an established connection ended; carried by
/// [`Event::Disconnected`](crate::Event::Disconnected).
///
/// ```no_run
/// use tern::{Broker, Client, ConnectOptions, ConnectionError, Event};
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let (client, mut events) = Client::new(ConnectOptions::new("watcher"));
///     client.connect(Broker::tcp("127.0.0.1", 1883)).await?;
///     while let Some(event) = events.recv().await {
///         if let Event::Disconnected { error, .. } = event {
///             match error {
///                 ConnectionError::Local => break,
///                 other => eprintln!("lost the broker: {other}"),
///             }
///         }
///     }
///     Ok(())
/// }
/// ```
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
    Io(#[source] Arc<std::io::Error>),
    /// No PINGRESP in time: the link is presumed dead.
    #[error("no PINGRESP within {0:?}: connection presumed dead")]
    PingTimeout(Duration),
    /// The broker broke the protocol; tern closed the connection [MQTT-4.8.0-1].
    #[error("protocol violation by the broker: {0}")]
    Protocol(ProtocolError),
    /// MQTT 5: the broker sent DISCONNECT, with its reason code (e.g. 0x8E Session taken
    /// over), Reason String and Server Reference.
    #[error("disconnected by the broker: {}{}", .0.reason, suffix(.0.properties.reason_string.as_deref()))]
    Server(Box<DisconnectV5>),
    /// MQTT 5: a re-authentication failed on our side (the authenticator refused the
    /// broker's data).
    #[error(transparent)]
    Auth(Arc<AuthError>),
}

impl ConnectionError {
    /// The operating system's error that ended the connection, if one did (also this
    /// error's [`source`](std::error::Error::source), as an `Arc<io::Error>`).
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }

    /// Who ended the connection, as the protocol core's
    /// [`DisconnectReason::initiator`](tern_proto::DisconnectReason::initiator) reports it:
    /// the application ([`Initiator::Local`]), the broker or the network
    /// ([`Initiator::Remote`]), or this library enforcing the protocol
    /// ([`Initiator::Library`]: a missing PINGRESP, a protocol violation).
    pub fn initiator(&self) -> Initiator {
        match self {
            Self::Local => DisconnectReason::Local.initiator(),
            Self::Closed | Self::Io(_) => DisconnectReason::TransportClosed.initiator(),
            Self::PingTimeout(after) => DisconnectReason::PingTimeout(*after).initiator(),
            Self::Protocol(e) => DisconnectReason::Protocol(e.clone()).initiator(),
            Self::Server(_) => Initiator::Remote,
            Self::Auth(_) => Initiator::Library,
        }
    }
}

/// Which limit a refused command ran into ([`ClientError::QueueFull`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueLimit {
    /// [`ConnectOptions::max_queued`](crate::ConnectOptions::max_queued) commands wait
    /// already.
    Commands(usize),
    /// The waiting publishes hold
    /// [`ConnectOptions::max_queued_bytes`](crate::ConnectOptions::max_queued_bytes) bytes
    /// already.
    Bytes(usize),
}

impl std::fmt::Display for QueueLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Commands(max) => write!(f, "{max} commands waiting"),
            Self::Bytes(max) => write!(f, "{max} bytes of messages waiting"),
        }
    }
}

/// A copy of an I/O error: its kind, OS error code and message (an `io::Error` is not
/// `Clone`).
pub(crate) fn copy_io_error(e: &std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(e.kind(), e.to_string()),
    }
}

/// A command (publish, subscribe, unsubscribe, close) failed.
///
/// ```no_run
/// use tern::{Broker, Client, ClientError, ConnectOptions, QoS};
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let (client, _events) = Client::new(ConnectOptions::new("sensor"));
///     client.connect(Broker::tcp("127.0.0.1", 1883)).await?;
///     match client.publish("a/+/b", "x", QoS::AtMostOnce, false).await {
///         Err(ClientError::Topic { topic, source }) => eprintln!("bad topic {topic}: {source}"),
///         other => println!("{other:?}"),
///     }
///     Ok(())
/// }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The command queue is full: the one error for every queue limit, whether the command
    /// was refused at once (`try_*` methods) or when the driver queued it.
    #[error("command queue full ({0})")]
    QueueFull(QueueLimit),
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
    /// The session refused the command (e.g. no filters given). A full queue is
    /// [`QueueFull`](Self::QueueFull), never this.
    #[error(transparent)]
    Misuse(ApiMisuse),
    /// `close()` with no connection open.
    #[error("not connected")]
    NotConnected,
    /// An MQTT 5 property (User Property, Content Type, …) is not a valid MQTT string.
    #[error("property {name:?}: {source}")]
    Property {
        /// The property's name.
        name: String,
        /// What is wrong with it.
        source: tern_proto::StringError,
    },
    /// MQTT 5 enhanced authentication: the authenticator refused to start.
    #[error(transparent)]
    Auth(Arc<AuthError>),
    /// A Subscription Identifier outside 1..=268,435,455.
    #[error("subscription identifier {0} is outside 1..=268435455")]
    SubscriptionId(u32),
    /// A request of [`Client::request`](crate::Client::request) got no response in time.
    #[error("no response within {0:?}")]
    NoResponse(Duration),
}

impl From<ApiMisuse> for ClientError {
    fn from(e: ApiMisuse) -> Self {
        match e {
            ApiMisuse::QueueFull { max } => Self::QueueFull(QueueLimit::Commands(max)),
            ApiMisuse::QueueBytesFull { max } => Self::QueueFull(QueueLimit::Bytes(max)),
            other => Self::Misuse(other),
        }
    }
}
