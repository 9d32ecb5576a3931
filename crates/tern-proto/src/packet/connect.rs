//! CONNECT [MQTT-3.1].

use bytes::Bytes;

use super::{ProtocolLevel, QoS};
use crate::text::MqttString;
use crate::topic::TopicName;

/// CONNECT: the first packet a client sends on a connection [MQTT-3.1.0-1].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol name and level.
    pub level: ProtocolLevel,
    /// Client identifier; 1..=23 characters in 3.1, possibly empty in 3.1.1 with a clean
    /// session [MQTT-3.1.3-7].
    pub client_id: MqttString,
    /// Keepalive in seconds; 0 turns the mechanism off.
    pub keep_alive: u16,
    /// Clean session flag [MQTT-3.1.2-4], [MQTT-3.1.2-6].
    pub clean_session: bool,
    /// Last will; `None` means the will flag, QoS and retain are all zero [MQTT-3.1.2-11].
    pub will: Option<LastWill>,
    /// User name.
    pub username: Option<MqttString>,
    /// Password: binary data in 3.1.1, a UTF-8 string in 3.1.
    pub password: Option<Bytes>,
}

/// The message the broker publishes when the client disappears without DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Topic the will is published to.
    pub topic: TopicName,
    /// Will payload.
    pub payload: Bytes,
    /// QoS the broker publishes the will with.
    pub qos: QoS,
    /// Whether the broker retains the will.
    pub retain: bool,
}
