//! Sans-IO MQTT 3.1 / 3.1.1 / 5.0 client protocol core: codec and session, all three levels.
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
    Ack, Auth, AuthProperties, AuthReasonCode, ConnAck, ConnAckProperties, ConnAckV5, Connect,
    ConnectProperties, ConnectReasonCode, ConnectReturnCode, DecodeError, Decoder,
    DisconnectProperties, DisconnectReasonCode, DisconnectV5, EncodeError, LastWill, Packet,
    PacketId, PacketType, PayloadFormat, PropertyId, PropertyScope, ProtocolLevel,
    PubAckReasonCode, PubCompReasonCode, PubRecReasonCode, PubRelReasonCode, Publish,
    PublishProperties, PublishV5, QoS, QosPid, ReasonProperties, RetainHandling, SubAck,
    SubAckReasonCode, SubAckV5, Subscribe, SubscribeProperties, SubscribeReturnCode, SubscribeV5,
    SubscriptionId, SubscriptionOptions, UnsubAckReasonCode, UnsubAckV5, Unsubscribe,
    UnsubscribeProperties, UnsubscribeV5, UserProperty, WillProperties,
};
pub use session::{
    ApiMisuse, DisconnectReason, Event, Message, ProtocolError, RequestError, RequestId,
    ServerCapabilities, Session, SessionConfig,
};
pub use text::{MqttString, StringError};
pub use topic::{TopicError, TopicFilter, TopicName};
