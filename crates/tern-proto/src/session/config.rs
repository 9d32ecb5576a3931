//! [`SessionConfig`]: everything a session needs to know before it connects.

use std::time::Duration;

use bytes::Bytes;

use crate::packet::{ConnectProperties, DEFAULT_MAX_PACKET_SIZE, LastWill, ProtocolLevel};
use crate::text::MqttString;

/// Configuration of a client session. Build with [`SessionConfig::new`] and the by-value
/// setters; every field has a documented default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Protocol level. Default: 3.1.1.
    pub level: ProtocolLevel,
    /// Client identifier. Validated at CONNECT encoding: 1..=23 characters in 3.1; may be
    /// empty in 3.1.1 only with `clean_session` [MQTT-3.1.3-7].
    pub client_id: MqttString,
    /// Keepalive interval; `Duration::ZERO` turns keepalive off. Sent in whole seconds
    /// (at most 65,535). Default: 60 s.
    pub keep_alive: Duration,
    /// How long to wait for PINGRESP before declaring the connection dead. Default: half the
    /// keepalive, so a dead link is detected within 1.5 × keepalive of the last traffic.
    pub ping_timeout: Option<Duration>,
    /// How long to wait for CONNACK after CONNECT was queued. Default: 30 s.
    pub connack_timeout: Duration,
    /// Clean session [MQTT-3.1.2-4], [MQTT-3.1.2-6]; at MQTT 5, Clean Start, with the
    /// session's lifetime given by the Session Expiry Interval of
    /// [`connect_properties`](Self::connect_properties) instead. Default: true (the seed's
    /// default).
    pub clean_session: bool,
    /// Last will. Default: none. Boxed: most clients have none, and the session keeps its
    /// configuration for as long as it lives.
    pub will: Option<Box<LastWill>>,
    /// User name. Default: none.
    pub username: Option<MqttString>,
    /// Password (requires a user name in 3.1.1 [MQTT-3.1.2-22]). Default: none.
    pub password: Option<Bytes>,
    /// Maximum number of outgoing QoS 1/2 publishes awaiting acknowledgement; further ones
    /// wait in order in the queue. Default: 100. Clamped to 1..=65,535.
    pub max_inflight: u16,
    /// Maximum number of commands (publishes, subscribes, unsubscribes) waiting to be sent,
    /// beyond the in-flight window. Further commands are refused with
    /// [`ApiMisuse::QueueFull`](super::ApiMisuse::QueueFull). Default: 10,000.
    pub max_queued: usize,
    /// Maximum topic + payload bytes of publishes waiting to be sent (offline, or beyond
    /// the in-flight window); a publish that would exceed it is refused with
    /// [`ApiMisuse::QueueBytesFull`](super::ApiMisuse::QueueBytesFull). Default: 64 MiB.
    pub max_queued_bytes: usize,
    /// Largest incoming packet accepted, in bytes (fixed header included). Default: 16 MiB.
    pub max_packet_size: usize,
    /// Emit [`PersistOp`](super::PersistOp)s for a session store, and hold back packets
    /// and events until the driver has pulled them (see
    /// [`Session::poll_persist`](super::Session::poll_persist)). Default: false, which costs
    /// nothing: no op is built. Pointless with `clean_session`, whose state dies with the
    /// connection anyway.
    pub persistence: bool,
    /// MQTT 5 CONNECT properties: Session Expiry Interval (default 0: the session ends with
    /// the connection [MQTT-3.1.2-23]), Receive Maximum (how many QoS 1/2 messages the
    /// broker may have unacknowledged, enforced: default 65,535), Topic Alias Maximum
    /// (aliases the broker may use towards us: default 0, none), Request Response /
    /// Problem Information, User Properties, Authentication Method and Data (enhanced
    /// authentication). Its Maximum Packet Size is ignored: the session advertises
    /// [`max_packet_size`](Self::max_packet_size). Default: none (every property absent).
    /// Ignored below MQTT 5; boxed, so a 3.1.1 configuration pays one pointer.
    pub connect_properties: Option<Box<ConnectProperties>>,
    /// MQTT 5: choose Topic Aliases for outgoing publishes automatically (least recently
    /// used first, within the broker's Topic Alias Maximum; off when that is 0). A Topic
    /// Alias set on a message is used either way. Default: true.
    pub auto_topic_alias: bool,
}

impl SessionConfig {
    /// A configuration with the given client id and every other field at its default.
    pub fn new(client_id: MqttString) -> Self {
        Self {
            level: ProtocolLevel::V3_1_1,
            client_id,
            keep_alive: Duration::from_secs(60),
            ping_timeout: None,
            connack_timeout: Duration::from_secs(30),
            clean_session: true,
            will: None,
            username: None,
            password: None,
            max_inflight: 100,
            max_queued: 10_000,
            max_queued_bytes: 64 * 1024 * 1024,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            persistence: false,
            connect_properties: None,
            auto_topic_alias: true,
        }
    }

    /// Sets [`connect_properties`](Self::connect_properties).
    pub fn connect_properties(mut self, properties: ConnectProperties) -> Self {
        self.connect_properties = Some(Box::new(properties));
        self
    }

    /// Sets [`auto_topic_alias`](Self::auto_topic_alias).
    pub fn auto_topic_alias(mut self, on: bool) -> Self {
        self.auto_topic_alias = on;
        self
    }

    /// MQTT 5: the Session Expiry Interval we ask for, in seconds (0 when absent).
    pub fn session_expiry_interval(&self) -> u32 {
        self.connect_properties
            .as_ref()
            .and_then(|p| p.session_expiry_interval)
            .unwrap_or(0)
    }

    /// MQTT 5: the Receive Maximum we advertise (65,535 when absent).
    pub fn receive_maximum(&self) -> u16 {
        self.connect_properties
            .as_ref()
            .and_then(|p| p.receive_maximum)
            .map_or(u16::MAX, |n| n.get())
    }

    /// MQTT 5: the Topic Alias Maximum we advertise (0 when absent).
    pub fn topic_alias_maximum(&self) -> u16 {
        self.connect_properties
            .as_ref()
            .and_then(|p| p.topic_alias_maximum)
            .unwrap_or(0)
    }

    /// Sets [`level`](Self::level).
    pub fn level(mut self, level: ProtocolLevel) -> Self {
        self.level = level;
        self
    }

    /// Sets [`keep_alive`](Self::keep_alive).
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Sets [`ping_timeout`](Self::ping_timeout).
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = Some(timeout);
        self
    }

    /// Sets [`connack_timeout`](Self::connack_timeout).
    pub fn connack_timeout(mut self, timeout: Duration) -> Self {
        self.connack_timeout = timeout;
        self
    }

    /// Sets [`clean_session`](Self::clean_session).
    pub fn clean_session(mut self, clean: bool) -> Self {
        self.clean_session = clean;
        self
    }

    /// Sets [`will`](Self::will).
    pub fn will(mut self, will: Option<LastWill>) -> Self {
        self.will = will.map(Box::new);
        self
    }

    /// Sets [`username`](Self::username) and [`password`](Self::password).
    pub fn credentials(mut self, username: Option<MqttString>, password: Option<Bytes>) -> Self {
        self.username = username;
        self.password = password;
        self
    }

    /// Sets [`max_inflight`](Self::max_inflight).
    pub fn max_inflight(mut self, n: u16) -> Self {
        self.max_inflight = n.max(1);
        self
    }

    /// Sets [`max_queued`](Self::max_queued).
    pub fn max_queued(mut self, n: usize) -> Self {
        self.max_queued = n;
        self
    }

    /// Sets [`max_queued_bytes`](Self::max_queued_bytes).
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Sets [`max_packet_size`](Self::max_packet_size).
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.max_packet_size = bytes;
        self
    }

    /// Sets [`persistence`](Self::persistence).
    pub fn persistence(mut self, on: bool) -> Self {
        self.persistence = on;
        self
    }

    /// The effective PINGRESP timeout: the configured one, else half the keepalive
    /// (at least 100 ms), so a dead link is noticed within 1.5 × keepalive.
    pub fn effective_ping_timeout(&self) -> Duration {
        self.ping_timeout
            .unwrap_or_else(|| (self.keep_alive / 2).max(Duration::from_millis(100)))
    }
}
