//! [`ServerCapabilities`]: what an MQTT 5 broker declared in its CONNACK.

use std::time::Duration;

use bytes::Bytes;

use crate::packet::{ConnAckProperties, QoS, UserProperty};
use crate::text::MqttString;

/// What the broker declared in the CONNACK of the current (or last) MQTT 5 connection,
/// with the standard's defaults for what it left out (§3.2.2.3). Read it with
/// [`Session::server_capabilities`](super::Session::server_capabilities).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerCapabilities {
    /// Retain Available (default true): false makes a retained publish a local error.
    pub retain_available: bool,
    /// Maximum QoS (default 2): a publish above it is a local error [MQTT-3.2.2-11].
    pub maximum_qos: QoS,
    /// Wildcard Subscription Available (default true).
    pub wildcard_subscription_available: bool,
    /// Subscription Identifiers Available (default true).
    pub subscription_identifiers_available: bool,
    /// Shared Subscription Available (default true).
    pub shared_subscription_available: bool,
    /// Receive Maximum (default 65,535): QoS 1/2 publishes of ours unacknowledged at once
    /// [MQTT-4.9.0-2].
    pub receive_maximum: u16,
    /// Maximum Packet Size the broker accepts, `None` when unlimited [MQTT-3.1.2-24].
    pub maximum_packet_size: Option<u32>,
    /// Topic Alias Maximum (default 0: no outgoing aliases) [MQTT-3.2.2-17].
    pub topic_alias_maximum: u16,
    /// Server Keep Alive: replaces ours when present [MQTT-3.2.2-21].
    pub server_keep_alive: Option<u16>,
    /// Session Expiry Interval the broker applies, when it overrode ours (seconds).
    pub session_expiry_interval: Option<u32>,
    /// Assigned Client Identifier, when we connected with an empty one.
    pub assigned_client_identifier: Option<MqttString>,
    /// Response Information (answer to Request Response Information).
    pub response_information: Option<MqttString>,
    /// Server Reference: another broker to use.
    pub server_reference: Option<MqttString>,
    /// Authentication Method of an enhanced authentication.
    pub authentication_method: Option<MqttString>,
    /// Authentication Data of an enhanced authentication.
    pub authentication_data: Option<Bytes>,
    /// Reason String.
    pub reason_string: Option<MqttString>,
    /// User Properties, in order.
    pub user_properties: Vec<UserProperty>,
}

impl ServerCapabilities {
    /// The capabilities a CONNACK's properties declare.
    pub fn from_properties(p: ConnAckProperties) -> Self {
        Self {
            retain_available: p.retain_available.unwrap_or(true),
            maximum_qos: p.maximum_qos.unwrap_or(QoS::ExactlyOnce),
            wildcard_subscription_available: p.wildcard_subscription_available.unwrap_or(true),
            subscription_identifiers_available: p.subscription_identifier_available.unwrap_or(true),
            shared_subscription_available: p.shared_subscription_available.unwrap_or(true),
            receive_maximum: p.receive_maximum.map_or(u16::MAX, |n| n.get()),
            maximum_packet_size: p.maximum_packet_size.map(|n| n.get()),
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            server_keep_alive: p.server_keep_alive,
            session_expiry_interval: p.session_expiry_interval,
            assigned_client_identifier: p.assigned_client_identifier,
            response_information: p.response_information,
            server_reference: p.server_reference,
            authentication_method: p.authentication_method,
            authentication_data: p.authentication_data,
            reason_string: p.reason_string,
            user_properties: p.user_properties,
        }
    }

    /// The largest packet the broker accepts, in bytes (`usize::MAX` when unlimited).
    pub fn max_packet_size(&self) -> usize {
        self.maximum_packet_size
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// The keepalive to use: the broker's when it sent one, else `ours`.
    pub fn keep_alive(&self, ours: Duration) -> Duration {
        self.server_keep_alive
            .map_or(ours, |s| Duration::from_secs(u64::from(s)))
    }
}

impl Default for ServerCapabilities {
    fn default() -> Self {
        Self::from_properties(ConnAckProperties::default())
    }
}

#[cfg(test)]
mod tests {
    use std::num::{NonZeroU16, NonZeroU32};

    use super::*;

    #[test]
    fn absent_properties_take_the_standards_defaults() {
        let caps = ServerCapabilities::default();
        assert!(caps.retain_available);
        assert_eq!(caps.maximum_qos, QoS::ExactlyOnce);
        assert!(caps.wildcard_subscription_available);
        assert!(caps.subscription_identifiers_available);
        assert!(caps.shared_subscription_available);
        assert_eq!(caps.receive_maximum, 65_535);
        assert_eq!(caps.max_packet_size(), usize::MAX);
        assert_eq!(caps.topic_alias_maximum, 0);
        assert_eq!(
            caps.keep_alive(Duration::from_secs(7)),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn declared_properties_are_kept() {
        let p = ConnAckProperties {
            retain_available: Some(false),
            maximum_qos: Some(QoS::AtLeastOnce),
            receive_maximum: NonZeroU16::new(3),
            maximum_packet_size: NonZeroU32::new(100),
            topic_alias_maximum: Some(4),
            server_keep_alive: Some(9),
            ..Default::default()
        };
        let caps = ServerCapabilities::from_properties(p);
        assert!(!caps.retain_available);
        assert_eq!(caps.maximum_qos, QoS::AtLeastOnce);
        assert_eq!(caps.receive_maximum, 3);
        assert_eq!(caps.max_packet_size(), 100);
        assert_eq!(caps.topic_alias_maximum, 4);
        assert_eq!(
            caps.keep_alive(Duration::from_secs(60)),
            Duration::from_secs(9)
        );
    }
}
