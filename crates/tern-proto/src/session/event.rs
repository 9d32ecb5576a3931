//! What a session reports to its driver: [`Event`], [`RequestId`], [`DisconnectReason`].

use std::fmt;

use bytes::Bytes;

use super::error::{ProtocolError, RequestError};
use crate::packet::{
    AuthProperties, AuthReasonCode, ConnAckV5, ConnectReturnCode, DisconnectV5, PacketId,
    PacketType, Publish, PublishProperties, QoS, ReasonProperties, SubAckReasonCode,
    SubscribeReturnCode, UnsubAckReasonCode,
};
use crate::topic::TopicName;

/// Identifies one command (publish, subscribe, unsubscribe) so its completion event can be
/// correlated. Unique for the lifetime of a [`Session`](super::Session), never reused
/// (unlike packet ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Acknowledges one delivered QoS 1/2 message: pass it to
/// [`Session::ack`](super::Session::ack) once the application has the message. Copy, and
/// specific to one delivery: a later message with the same packet id, or a message of
/// another session, has another token, and no token acknowledges anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckToken {
    pub(super) id: PacketId,
    /// Which delivery (unique in the process).
    pub(super) delivery: u64,
    pub(super) qos2: bool,
}

impl AckToken {
    /// The broker's packet id of the message.
    pub fn packet_id(&self) -> PacketId {
        self.id
    }

    /// The message's QoS (1 or 2).
    pub fn qos(&self) -> QoS {
        if self.qos2 {
            QoS::ExactlyOnce
        } else {
            QoS::AtLeastOnce
        }
    }
}

/// An application message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic name.
    pub topic: TopicName,
    /// Payload.
    pub payload: Bytes,
    /// Delivery QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// MQTT 5 PUBLISH properties (Message Expiry Interval, Content Type, Payload Format
    /// Indicator, Response Topic, Correlation Data, User Properties, a Topic Alias to use);
    /// `None` for none, and ignored below MQTT 5. A Subscription Identifier is refused
    /// [MQTT-3.3.4-6]. Boxed: most messages carry none.
    pub properties: Option<Box<PublishProperties>>,
}

impl Message {
    /// A message without properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>, qos: QoS, retain: bool) -> Self {
        Self {
            topic,
            payload: payload.into(),
            qos,
            retain,
            properties: None,
        }
    }
}

/// Something the driver should act on or report, pulled with
/// [`Session::poll_event`](super::Session::poll_event).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// CONNACK accepted the connection.
    Connected {
        /// The broker resumed a stored session (always false in 3.1).
        session_present: bool,
    },
    /// A publish completed: QoS 0 when its bytes were handed to `poll_transmit`, QoS 1 at
    /// PUBACK, QoS 2 at PUBCOMP.
    Published(RequestId),
    /// SUBACK arrived: one code per filter, in request order (0x80 failures included).
    Subscribed {
        /// The subscribe command.
        id: RequestId,
        /// Granted QoS or failure, per filter.
        granted: Vec<SubscribeReturnCode>,
    },
    /// UNSUBACK arrived.
    Unsubscribed(RequestId),
    /// A command will never complete (e.g. its session was discarded).
    Failed {
        /// The command.
        id: RequestId,
        /// Why.
        error: RequestError,
    },
    /// An application message arrived: delivered once per PUBLISH at QoS 0/1, exactly once
    /// at QoS 2 (at the first PUBLISH with a given id, not again until PUBREL).
    ///
    /// A QoS 1/2 message is not acknowledged (PUBACK, PUBREC) until the driver passes `ack`
    /// to [`Session::ack`](super::Session::ack): a driver acknowledges only what its
    /// application has.
    Message {
        /// The PUBLISH, its topic resolved when it came by Topic Alias.
        publish: Publish,
        /// MQTT 5: its properties (Subscription Identifiers, Content Type, User
        /// Properties, ...), without the Topic Alias; `None` when it had none.
        properties: Option<Box<PublishProperties>>,
        /// For QoS 1/2: what acknowledges it. `None` at QoS 0.
        ack: Option<AckToken>,
    },
    /// The connection ended (or never came up); the driver should close the transport.
    Disconnected(DisconnectReason),
    /// MQTT 5 SUBACK: one reason code per filter, in request order (failures included).
    SubscribedV5 {
        /// The subscribe command.
        id: RequestId,
        /// Granted QoS or failure, per filter.
        reasons: Vec<SubAckReasonCode>,
        /// Reason String and User Properties.
        properties: ReasonProperties,
    },
    /// MQTT 5 UNSUBACK: one reason code per filter, in request order.
    UnsubscribedV5 {
        /// The unsubscribe command.
        id: RequestId,
        /// Success, No subscription existed, or a failure, per filter.
        reasons: Vec<UnsubAckReasonCode>,
        /// Reason String and User Properties.
        properties: ReasonProperties,
    },
    /// MQTT 5 enhanced authentication: the broker sent AUTH (Continue authentication), or
    /// a re-authentication finished. For Continue, answer with
    /// [`Session::auth_continue`](super::Session::auth_continue); Success needs no answer.
    Auth {
        /// Continue authentication (answer it) or Success (re-authentication done).
        reason: AuthReasonCode,
        /// The broker's Authentication Data, Reason String, User Properties.
        properties: Box<AuthProperties>,
    },
}

/// Who ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// The application asked (DISCONNECT sent).
    Local,
    /// The broker or the network.
    Remote,
    /// This library, enforcing the protocol (timeouts, violations).
    Library,
}

/// Why a connection ended or failed to come up.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisconnectReason {
    /// The application disconnected; DISCONNECT was sent.
    #[error("disconnected by the application")]
    Local,
    /// The broker refused the connection in CONNACK.
    #[error("connection refused: {0}")]
    Refused(ConnectReturnCode),
    /// The first packet from the broker was not CONNACK [MQTT-3.2.0-1] (seed code -4).
    #[error("broker's first packet was {0}, not CONNACK [MQTT-3.2.0-1]")]
    NotConnAck(PacketType),
    /// No CONNACK within the configured time (seed code -2).
    #[error("no CONNACK within {0:?}")]
    ConnAckTimeout(std::time::Duration),
    /// No PINGRESP within the ping timeout: the link is dead.
    #[error("no PINGRESP within {0:?}: connection presumed dead")]
    PingTimeout(std::time::Duration),
    /// The broker broke the protocol; the connection is closed [MQTT-4.8.0-1].
    #[error("protocol violation by the broker: {0}")]
    Protocol(ProtocolError),
    /// The transport closed or failed (reported by the driver through `handle_closed`).
    #[error("connection closed by the network or the broker")]
    TransportClosed,
    /// MQTT 5: the broker refused the connection in CONNACK (reason code >= 0x80, with its
    /// Reason String and Server Reference in the properties) [MQTT-4.13.2-1].
    #[error("connection refused: {}{}", .0.reason, reason_suffix(.0.properties.reason_string.as_deref()))]
    RefusedV5(Box<ConnAckV5>),
    /// MQTT 5: the broker sent DISCONNECT (reason code, Reason String, Server Reference).
    #[error("disconnected by the broker: {}{}", .0.reason, reason_suffix(.0.properties.reason_string.as_deref()))]
    Server(Box<DisconnectV5>),
}

/// `: "reason string"` when there is one.
fn reason_suffix(reason: Option<&str>) -> String {
    reason.map_or_else(String::new, |r| format!(": {r:?}"))
}

impl DisconnectReason {
    /// Who ended the connection.
    pub fn initiator(&self) -> Initiator {
        match self {
            Self::Local => Initiator::Local,
            Self::Refused(_) | Self::RefusedV5(_) | Self::TransportClosed | Self::Server(_) => {
                Initiator::Remote
            }
            Self::NotConnAck(_)
            | Self::ConnAckTimeout(_)
            | Self::PingTimeout(_)
            | Self::Protocol(_) => Initiator::Library,
        }
    }
}
