//! Sans-IO MQTT 3.1 / 3.1.1 client protocol core.
//!
//! Nothing in this crate performs IO or reads a clock. Feed bytes and instants to a
//! [`Session`] through its `handle_*` methods, then drain `poll_transmit`, `poll_event` and
//! `poll_timeout`, in that order. The [`packet`] module holds the codec on its own, for
//! callers (brokers in tests, fuzzers, benchmarks) that want packets without a session.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod packet;
pub mod session;
pub mod text;
pub mod topic;

pub use packet::{
    ConnAck, Connect, ConnectReturnCode, DecodeError, Decoder, EncodeError, LastWill, Packet,
    PacketId, PacketType, ProtocolLevel, Publish, QoS, QosPid, SubAck, Subscribe,
    SubscribeReturnCode, Unsubscribe,
};
pub use session::{
    ApiMisuse, DisconnectReason, Event, Message, ProtocolError, RequestError, RequestId, Session,
    SessionConfig,
};
pub use text::{MqttString, StringError};
pub use topic::{TopicError, TopicFilter, TopicName};
