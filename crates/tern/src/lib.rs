//! tern: an MQTT 3.1 / 3.1.1 / 5.0 client for tokio, with the semantics of NodeMCU's Lua `mqtt`
//! module (<https://nodemcu.readthedocs.io/en/dev-esp32/modules/mqtt/>).
//!
//! Two faces over one engine: the async [`Client`] + [`Events`], and the synchronous
//! [`callback::CallbackClient`] mirroring NodeMCU's `on("connect"|"message"|"offline")`.
//! One driver task per client owns the sans-IO [`tern_proto::Session`] and the transport
//! (TCP, TLS, WebSocket, Unix socket, through a SOCKS5 proxy or not); handles talk to it
//! over bounded channels. [`trace`] shows each connection step and packet through
//! `tracing`.
//!
//! Every type in this crate's signatures is reachable from `tern` itself, the protocol
//! core's included ([`TopicName`], [`TopicFilter`], [`PacketId`], [`ProtocolError`],
//! [`SubscribeReturnCode`], …): an application needs no `tern-proto` dependency. One name per
//! meaning: [`Message`] is a message received by the application and [`Event`] something
//! that happened on a [`Client`]; `tern-proto`'s session-level types of the same names are
//! not re-exported.
//!
//! A subscriber that prints what arrives, until Ctrl-C (`Cargo.toml`: `tern`, and
//! `tokio = { version = "1", features = ["rt", "macros", "signal"] }`):
//!
//! ```no_run
//! use tern::{Broker, Client, ConnectOptions, Event, QoS};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let options = ConnectOptions::new("printer").keep_alive(std::time::Duration::from_secs(30));
//!     let (client, mut events) = Client::new(options);
//!     client.connect(Broker::parse("mqtt://127.0.0.1:1883")?).await?;
//!     client.subscribe([("sensors/#", QoS::AtLeastOnce)]).await?;
//!     loop {
//!         tokio::select! {
//!             event = events.recv() => match event {
//!                 Some(Event::Message(m)) => {
//!                     println!("{} {}", m.topic, String::from_utf8_lossy(&m.payload));
//!                 }
//!                 Some(Event::Disconnected { error, .. }) => return Err(error.into()),
//!                 Some(_) => {}
//!                 None => break,
//!             },
//!             _ = tokio::signal::ctrl_c() => break,
//!         }
//!     }
//!     client.close().await?;
//!     Ok(())
//! }
//! ```
#![warn(missing_docs)]

pub mod auth;
pub mod broker;
pub mod callback;
mod chan;
mod client;
mod driver;
pub mod error;
pub mod options;
pub mod store;
pub mod tls;
pub mod trace;
mod transport;
pub mod v5;

pub use auth::{AuthError, Authenticator};
pub use broker::{Broker, Scheme};
pub use client::{Client, Event, Events, Message, Outcome, Pending, Ticket};
pub use error::{ClientError, ConnectError, ConnectionError, QueueLimit};
pub use options::{ConnectOptions, OptionsError, Protocol, ReconnectPolicy, Will};
pub use tls::TlsOptions;
pub use v5::{Publish, SubAck, Subscription, UnsubAck, V5Options};

// The protocol types that appear in `tern`'s public signatures, so that no application needs
// `tern-proto` in its `Cargo.toml`. `tern-proto`'s own `Message` and `Event` (the sans-IO
// session's) are deliberately *not* re-exported: in `tern`, [`Message`] is always a message
// received by the application and [`Event`] always something that happened on a [`Client`].
/// The TLS library whose [`ClientConfig`](rustls::ClientConfig) [`TlsOptions::build`] returns.
pub use rustls;
pub use tern_proto::session::Initiator;
pub use tern_proto::{
    ApiMisuse, ConnAckV5, ConnectReasonCode, ConnectReturnCode, DecodeError, DisconnectReasonCode,
    DisconnectV5, EncodeError, MqttString, PacketId, PacketType, PayloadFormat, ProtocolError,
    PubAckReasonCode, PubCompReasonCode, PublishProperties, QoS, RequestError, RetainHandling,
    ServerCapabilities, StringError, SubAckReasonCode, SubscribeReturnCode, SubscriptionId,
    SubscriptionOptions, TopicError, TopicFilter, TopicName, UnsubAckReasonCode, UserProperty,
    WillProperties,
};

/// The workspace README's Rust example, compiled as a doctest so it keeps working.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
