//! tern: an MQTT 3.1 / 3.1.1 client for tokio, with the NodeMCU `mqtt` module's semantics.
//!
//! Two faces over one engine: the async [`Client`] + [`Events`], and the synchronous
//! [`callback::CallbackClient`] mirroring the seed's `on("connect"|"message"|"offline")`.
//! One driver task per client owns the sans-IO [`tern_proto::Session`] and the transport
//! (TCP, TLS, WebSocket); handles talk to it over bounded channels.
#![warn(missing_docs)]

pub mod broker;
pub mod callback;
mod chan;
mod client;
mod driver;
pub mod error;
mod lowat;
pub mod options;
mod quickack;
pub mod store;
pub mod tls;
pub mod trace;
mod transport;

pub use broker::{Broker, Scheme};
pub use client::{Client, Event, Events, Message, Outcome, Pending, Ticket};
pub use error::{ClientError, ConnectError, ConnectionError};
pub use options::{ConnectOptions, Protocol, ReconnectPolicy, Will};
pub use tern_proto::{QoS, SubscribeReturnCode};
pub use tls::TlsOptions;
