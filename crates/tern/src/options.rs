//! [`ConnectOptions`]: everything about a client that is not where it connects.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tern_proto::packet::{Connect, LastWill, ProtocolLevel, WillProperties};
use tern_proto::{EncodeError, MqttString, Packet, QoS, StringError, TopicError, TopicName};

use crate::auth::Authenticator;
use crate::tls::{TlsConfigError, TlsOptions};
use crate::v5::{SharedAuth, V5Options};

/// Options that cannot work, found by [`ConnectOptions::validate`] (and by
/// [`Client::try_new`](crate::Client::try_new), which calls it).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// The client id is not a valid MQTT string.
    #[error("client id: {0}")]
    ClientId(StringError),
    /// The user name is not a valid MQTT string.
    #[error("user name: {0}")]
    UserName(StringError),
    /// The will's topic is not a valid topic name.
    #[error("will topic {topic:?}: {source}")]
    WillTopic {
        /// The topic as given.
        topic: String,
        /// What is wrong with it.
        source: TopicError,
    },
    /// No valid CONNECT can be made from the options (e.g. a 3.1 client id over 23
    /// characters, an empty client id without clean session, a password without a user
    /// name).
    #[error(transparent)]
    Connect(EncodeError),
    /// The keepalive does not fit CONNECT's 16-bit field of seconds.
    #[error("keep-alive {0:?} exceeds the protocol's 65535 s")]
    KeepAlive(Duration),
    /// `max_inflight` is 0: nothing could ever be sent at QoS 1 or 2.
    #[error("max_inflight must be at least 1")]
    MaxInflight,
    /// `event_capacity` is 0: no event could ever be delivered.
    #[error("event_capacity must be at least 1")]
    EventCapacity,
    /// `max_packet_size` is below the smallest useful packet (a PUBLISH header) or above
    /// the protocol's largest packet.
    #[error("max_packet_size {0} is outside 16..={max}", max = tern_proto::packet::MAX_REMAINING_LENGTH + 5)]
    MaxPacketSize(usize),
    /// The TLS settings are incomplete.
    #[error(transparent)]
    Tls(TlsConfigError),
    /// An MQTT 5 setting with a protocol that cannot carry it (3.1, 3.1.1).
    #[error("{0} needs MQTT 5: use Protocol::V5 or Protocol::Auto")]
    NeedsV5(&'static str),
    /// Receive Maximum 0: the broker could never send a QoS 1/2 message.
    #[error("receive_maximum must be at least 1")]
    ReceiveMaximum,
    /// A User Property (or another MQTT 5 string) is not a valid MQTT string.
    #[error("property {name:?}: {source}")]
    UserProperty {
        /// The property's name.
        name: String,
        /// What is wrong with it.
        source: StringError,
    },
}

/// The MQTT revision to speak.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// MQTT 3.1 (`MQIsdp`, level 3).
    V3_1,
    /// MQTT 3.1.1 (`MQTT`, level 4). The default.
    #[default]
    V3_1_1,
    /// Try 5, then 3.1.1, then 3.1, each time the broker refuses the level (CONNACK
    /// "unacceptable protocol version", or at 5 "unsupported protocol version"), on the same
    /// broker at once. The level in use is reported in
    /// [`Event::Connected`](crate::Event::Connected)'s `protocol`. MQTT 5 settings apply only
    /// when 5 is accepted.
    Auto,
    /// MQTT 5.0 (`MQTT`, level 5): properties, reason codes, topic aliases, enhanced
    /// authentication.
    V5,
}

/// A last will: published by the broker when the client vanishes without DISCONNECT.
/// Built with [`Will::new`]; MQTT 5 adds [`properties`](Self::properties) (Will Delay
/// Interval and the message properties).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS the broker publishes it with.
    pub qos: QoS,
    /// Whether the broker retains it.
    pub retain: bool,
    /// MQTT 5 Will Properties (Will Delay Interval, Message Expiry, Content Type, Response
    /// Topic, Correlation Data, Payload Format, User Properties); ignored below 5.
    pub properties: WillProperties,
}

/// Automatic reconnection (the seed's `autoreconnect`; off by default, as the seed advises):
/// capped exponential backoff with full jitter. `ReconnectPolicy::default()` and by-value
/// setters:
///
/// ```
/// use std::time::Duration;
/// let policy = tern::ReconnectPolicy::default()
///     .initial_delay(Duration::from_millis(50))
///     .max_attempts(Some(5));
/// assert_eq!(policy.max_attempts, Some(5));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Delay before the first retry. Default: 100 ms.
    pub initial_delay: Duration,
    /// Upper bound of the delay. Default: 30 s.
    pub max_delay: Duration,
    /// Give up after this many failed attempts in a row; `None` retries forever.
    pub max_attempts: Option<u32>,
    /// Re-subscribe what was subscribed when the broker reports no session present.
    /// Default: true.
    pub resubscribe: bool,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
            resubscribe: true,
        }
    }
}

impl Will {
    /// A will publishing `payload` on `topic` at `qos`, retained or not.
    pub fn new(
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
            properties: WillProperties::default(),
        }
    }

    /// MQTT 5: the broker publishes the will only this long after the connection is lost
    /// (Will Delay Interval, whole seconds), and not at all if the client reconnects
    /// within it.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.properties.will_delay_interval =
            Some(u32::try_from(delay.as_secs()).unwrap_or(u32::MAX));
        self
    }

    /// MQTT 5: sets every Will Property at once.
    pub fn properties(mut self, properties: WillProperties) -> Self {
        self.properties = properties;
        self
    }
}

impl ReconnectPolicy {
    /// Sets [`initial_delay`](Self::initial_delay).
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Sets [`max_delay`](Self::max_delay).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets [`max_attempts`](Self::max_attempts).
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`resubscribe`](Self::resubscribe).
    pub fn resubscribe(mut self, on: bool) -> Self {
        self.resubscribe = on;
        self
    }

    /// The delay before attempt `attempt` (1-based): uniformly random in
    /// `[0, min(max_delay, initial_delay * 2^(attempt-1))]`, but at least 10 ms so a broker
    /// that refuses instantly is never hammered in a hot loop.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let cap = self
            .initial_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(0..=millis).max(10))
    }
}

/// Client options. `ConnectOptions::new("id")` and by-value setters; nothing here panics.
///
/// ```
/// use std::time::Duration;
/// use tern::{ConnectOptions, QoS, ReconnectPolicy, Will};
///
/// let options = ConnectOptions::new("kitchen-sensor")
///     .keep_alive(Duration::from_secs(30))
///     .clean_session(false)
///     .credentials("alice", Some("s3cret"))
///     .will(Will::new("kitchen/status", "offline", QoS::AtLeastOnce, true))
///     .connect_timeout(Duration::from_secs(5))
///     .reconnect(ReconnectPolicy::default());
/// assert_eq!(options.username.as_deref(), Some("alice"));
/// // Debug output never shows the password.
/// assert!(!format!("{options:?}").contains("s3cret"));
/// ```
#[non_exhaustive]
#[derive(Clone)]
pub struct ConnectOptions {
    /// Client id. Empty with clean session: a random `tern-xxxxxxxx` id is generated (as
    /// mosquitto's clients do), so 3.1 brokers accept it too.
    pub client_id: String,
    /// Keepalive; zero turns it off. Default: 60 s.
    pub keep_alive: Duration,
    /// Clean session. Default: true, as the seed documents.
    pub clean_session: bool,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Bytes>,
    /// Last will.
    pub will: Option<Will>,
    /// MQTT revision. Default: 3.1.1.
    pub protocol: Protocol,
    /// TLS settings used for `mqtts://` and `wss://` brokers. Shared: every client holds
    /// its options for as long as it lives, most need no TLS, and those that do usually
    /// share one configuration, so the default is one value for the whole process and
    /// clones of the options do not copy it.
    pub tls: Arc<TlsOptions>,
    /// One deadline for DNS + TCP + TLS (+ WebSocket) + CONNECT + CONNACK. Default: 30 s.
    pub connect_timeout: Duration,
    /// Largest incoming packet accepted; larger ones close the connection with an error
    /// naming the limit. Default: 16 MiB.
    pub max_packet_size: usize,
    /// Outgoing QoS 1/2 publishes awaiting acknowledgement at once. Default: 100.
    pub max_inflight: u16,
    /// Commands (publishes, subscribes) waiting beyond the in-flight window, including while
    /// offline; more are refused with [`ClientError::QueueFull`](crate::ClientError).
    /// Default: 10,000.
    ///
    /// The same number bounds the commands the application may hand over between two turns
    /// of the driver: the `max_queued + 1`-th `try_*` call in a row (without an `.await`
    /// between) is refused at once; `publish().await` and the like wait for room instead.
    pub max_queued: usize,
    /// Topic + payload bytes of publishes waiting (offline or beyond the window); more are
    /// refused with [`ClientError::QueueFull`](crate::ClientError). Default: 64 MiB.
    ///
    /// Offline policy: every publish, QoS 0 included, waits in this bounded queue while
    /// the client is not connected and leaves in order after the next CONNACK; nothing is
    /// dropped silently: when the queue is full the publish itself fails.
    pub max_queued_bytes: usize,
    /// Automatic reconnection; `None` (the default) reports the loss and stays offline.
    pub reconnect: Option<ReconnectPolicy>,
    /// Extra HTTP headers for WebSocket connections.
    pub ws_headers: Vec<(String, String)>,
    /// Capacity of the event channel to the application. Default: 1,024.
    ///
    /// When the channel is full, events wait in the client, by kind:
    /// - Messages are never dropped: once `event_capacity` of them wait, the client stops
    ///   reading from the socket (TCP backpressure, and no acknowledgement goes out for a
    ///   message not handed over) but keeps accepting commands, so publishing from an event
    ///   handler cannot deadlock.
    /// - Other events (`Connected`, `ConnectFailed`, `Disconnected`, `Completed`) wait up to
    ///   `event_capacity` of them; beyond that the oldest of them is dropped and counted in
    ///   [`Events::dropped`](crate::Events::dropped). They never hold reading back.
    ///
    /// So a publish-only client whose application never reads `Events` (it has no
    /// subscriptions, so no messages arrive) neither stalls nor grows: at most
    /// `event_capacity` events in the channel and as many waiting beside it.
    pub event_capacity: usize,
    /// Directory of a file-backed session store (one per client id; see
    /// [`store`](crate::store)); `None` (the default) keeps the session in memory only.
    ///
    /// With clean session off, our QoS 1/2 publishes in flight and the broker's QoS 2 ids
    /// awaiting PUBREL are written (and `fsync`ed) before the packets they protect are sent
    /// or the messages acknowledged, and restored at the first `connect` after a restart, so
    /// a killed process loses no publish the store took and repeats no QoS 2 delivery the
    /// application acknowledged (one killed between taking a message and the record of its
    /// acknowledgement gets it again: never acknowledged, never lost).
    /// Publishes still waiting in the queue (offline, beyond `max_inflight`) are not
    /// stored. With clean session on the broker discards the session at every connection,
    /// so persistence is pointless: the store is emptied at the first `connect` and not
    /// written to.
    pub session_store: Option<PathBuf>,
    /// Read-side tuning of the socket. Today one tuning: once the broker is seen holding
    /// a packet until our delayed TCP ACK (a broker with Nagle's algorithm on, mosquitto's
    /// default), reads that nothing answers are ACKed at once (`TCP_QUICKACK`, Linux), so
    /// request/response exchanges do not wait 40 ms per round trip. No read tuning ever
    /// waits for data: none can stall a connection. `false` turns all of it off (the socket
    /// is read and ACKed as the kernel does by default). Default: on.
    pub read_tuning: bool,
    /// Runs before each `fdatasync` of the session store (tests only; hidden).
    pub(crate) store_sync_hook: Option<crate::store::SyncHook>,
    /// A SOCKS5 proxy to reach the broker through; `None` (the default) connects directly.
    pub proxy: Option<crate::broker::Proxy>,
    /// The local address to connect from (mosquitto's `-A`); `None` (the default) lets the
    /// system choose.
    pub bind_address: Option<std::net::IpAddr>,
    /// Acknowledge incoming QoS 1/2 messages only when the application says so
    /// ([`Client::ack`](crate::Client::ack), [`CallbackClient::ack`](crate::callback::CallbackClient::ack)),
    /// e.g. once it has stored them. Off (the default): a message is acknowledged once it is
    /// taken from [`Events`](crate::Events) (or its callback returned). Either way
    /// acknowledgements leave in the order the messages arrived, so one message left
    /// unacknowledged holds back the acknowledgements of later ones (and, at the broker's
    /// in-flight limit, further deliveries); with clean session off, a message not
    /// acknowledged when the connection ends is delivered again on the next one.
    pub manual_ack: bool,
    /// `TCP_NODELAY` on the socket (see [`tcp_nodelay`](Self::tcp_nodelay)). Default: true.
    pub tcp_nodelay: bool,
    /// MQTT 5 settings (CONNECT properties, topic aliases, redirection, enhanced
    /// authentication); see the builders below.
    pub v5: V5Options,
}

impl ConnectOptions {
    /// Checks that these options can make a valid CONNECT and a working client, without
    /// connecting: the checks `connect` would otherwise fail with
    /// ([`ConnectError::Options`](crate::ConnectError::Options)), made where the options
    /// are built.
    ///
    /// ```
    /// use tern::{ConnectOptions, OptionsError, Protocol};
    ///
    /// assert!(ConnectOptions::new("sensor-1").validate().is_ok());
    /// // MQTT 3.1 allows client ids of 1 to 23 characters.
    /// let long = ConnectOptions::new("a-client-id-longer-than-23").protocol(Protocol::V3_1);
    /// assert!(matches!(long.validate(), Err(OptionsError::Connect(_))));
    /// ```
    pub fn validate(&self) -> Result<(), OptionsError> {
        let client_id = MqttString::new(&self.client_id).map_err(OptionsError::ClientId)?;
        let username = self
            .username
            .as_deref()
            .map(MqttString::new)
            .transpose()
            .map_err(OptionsError::UserName)?;
        let will = match &self.will {
            None => None,
            Some(w) => Some(LastWill {
                topic: TopicName::new(&w.topic).map_err(|source| OptionsError::WillTopic {
                    topic: w.topic.clone(),
                    source,
                })?,
                payload: w.payload.clone(),
                qos: w.qos,
                retain: w.retain,
                properties: w.properties.clone(),
            }),
        };
        let keep_alive = u16::try_from(self.keep_alive.as_secs())
            .ok()
            .filter(|_| self.keep_alive <= Duration::from_secs(u64::from(u16::MAX)))
            .ok_or(OptionsError::KeepAlive(self.keep_alive))?;
        if self.max_inflight == 0 {
            return Err(OptionsError::MaxInflight);
        }
        if self.event_capacity == 0 {
            return Err(OptionsError::EventCapacity);
        }
        if !(16..=tern_proto::packet::MAX_REMAINING_LENGTH + 5).contains(&self.max_packet_size) {
            return Err(OptionsError::MaxPacketSize(self.max_packet_size));
        }
        match (&self.tls.client_cert, &self.tls.client_key) {
            (Some(_), None) => {
                return Err(OptionsError::Tls(TlsConfigError::HalfClientAuth {
                    given: "client_cert",
                }));
            }
            (None, Some(_)) => {
                return Err(OptionsError::Tls(TlsConfigError::HalfClientAuth {
                    given: "client_key",
                }));
            }
            _ => {}
        }
        // An empty id with clean session is replaced by a random one at connect (as
        // mosquitto's clients do), valid in 3.1 too.
        let client_id = if client_id.as_str().is_empty() && self.clean_session {
            MqttString::new("tern-0000000000000000").map_err(OptionsError::ClientId)?
        } else {
            client_id
        };
        let levels: &[ProtocolLevel] = match self.protocol {
            Protocol::V3_1 => &[ProtocolLevel::V3_1],
            Protocol::V3_1_1 => &[ProtocolLevel::V3_1_1],
            Protocol::V5 => &[ProtocolLevel::V5],
            // 3.1.1 and 3.1 are the fallbacks: an older broker refuses the first attempt.
            Protocol::Auto => &[
                ProtocolLevel::V5,
                ProtocolLevel::V3_1_1,
                ProtocolLevel::V3_1,
            ],
        };
        let v5_level = matches!(self.protocol, Protocol::V5 | Protocol::Auto);
        if !v5_level {
            if self.v5.is_set() {
                return Err(OptionsError::NeedsV5("an MQTT 5 connect property"));
            }
            if self
                .will
                .as_ref()
                .is_some_and(|w| w.properties != WillProperties::default())
            {
                return Err(OptionsError::NeedsV5("a will property"));
            }
        }
        let properties = self.v5.connect_properties(self.clean_session)?;
        let connect = Connect {
            level: ProtocolLevel::V3_1_1,
            client_id,
            keep_alive,
            clean_session: self.clean_session,
            will,
            username,
            password: self.password.clone(),
            properties,
        };
        for &level in levels {
            let mut connect = connect.clone();
            if level != ProtocolLevel::V5 {
                // MQTT 5 settings apply only when 5 is accepted.
                connect.properties = Default::default();
                if let Some(w) = connect.will.as_mut() {
                    w.properties = Default::default();
                }
            }
            Packet::Connect(Box::new(Connect { level, ..connect }))
                .encode(&mut bytes::BytesMut::new())
                .map_err(OptionsError::Connect)?;
        }
        Ok(())
    }

    /// Sets [`event_capacity`](Self::event_capacity) (at least 1; see
    /// [`validate`](Self::validate)).
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n;
        self
    }

    /// Disables Nagle's algorithm (`TCP_NODELAY`) on the connection's socket, so small
    /// packets leave at once rather than waiting for the previous segment's ACK. Default:
    /// true (a QoS 1 round trip would otherwise wait ~40 ms for delayed ACKs); false trades
    /// latency for fewer, fuller segments.
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.tcp_nodelay = on;
        self
    }

    /// Options with this client id and every other setting at its default.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            keep_alive: Duration::from_secs(60),
            clean_session: true,
            username: None,
            password: None,
            will: None,
            protocol: Protocol::V3_1_1,
            tls: default_tls(),
            connect_timeout: Duration::from_secs(30),
            max_packet_size: tern_proto::packet::DEFAULT_MAX_PACKET_SIZE,
            max_inflight: 100,
            max_queued: 10_000,
            max_queued_bytes: 64 * 1024 * 1024,
            reconnect: None,
            ws_headers: Vec::new(),
            event_capacity: 1024,
            session_store: None,
            read_tuning: true,
            store_sync_hook: None,
            proxy: None,
            bind_address: None,
            manual_ack: false,
            tcp_nodelay: true,
            v5: V5Options::new(),
        }
    }

    /// MQTT 5: the Session Expiry Interval (see [`V5Options::session_expiry`]).
    pub fn session_expiry(mut self, after: Duration) -> Self {
        self.v5.session_expiry = Some(u32::try_from(after.as_secs()).unwrap_or(u32::MAX));
        self
    }

    /// MQTT 5: the Receive Maximum (see [`V5Options::receive_maximum`]).
    pub fn receive_maximum(mut self, n: u16) -> Self {
        self.v5.receive_maximum = Some(n);
        self
    }

    /// MQTT 5: the Topic Alias Maximum we accept (see [`V5Options::topic_alias_maximum`]).
    pub fn topic_alias_maximum(mut self, n: u16) -> Self {
        self.v5.topic_alias_maximum = n;
        self
    }

    /// MQTT 5: automatic outgoing Topic Aliases on or off (see [`V5Options::topic_aliases`]).
    pub fn topic_aliases(mut self, on: bool) -> Self {
        self.v5.topic_aliases = on;
        self
    }

    /// MQTT 5: ask for Response Information (see
    /// [`V5Options::request_response_information`]).
    pub fn request_response_information(mut self, on: bool) -> Self {
        self.v5.request_response_information = on;
        self
    }

    /// MQTT 5: Request Problem Information (see
    /// [`V5Options::request_problem_information`]).
    pub fn request_problem_information(mut self, on: bool) -> Self {
        self.v5.request_problem_information = Some(on);
        self
    }

    /// MQTT 5: adds a User Property to CONNECT.
    pub fn user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.v5.user_properties.push((name.into(), value.into()));
        self
    }

    /// MQTT 5: follow a broker's Server Reference at most `hops` times in a row (see
    /// [`V5Options::max_redirects`]).
    pub fn follow_redirects(mut self, hops: u8) -> Self {
        self.v5.max_redirects = hops;
        self
    }

    /// MQTT 5 enhanced authentication: CONNECT carries `auth`'s method and first data, the
    /// broker's AUTH packets are answered by it, and
    /// [`Client::reauthenticate`](crate::Client::reauthenticate) starts a re-authentication.
    pub fn authenticator(mut self, auth: impl Authenticator) -> Self {
        self.v5.authenticator = Some(SharedAuth(Arc::new(Mutex::new(auth))));
        self
    }

    /// Connects through a SOCKS5 proxy, e.g.
    /// `Proxy::parse("socks5h://user:pass@127.0.0.1:1080")?` (see [`Proxy`](crate::broker::Proxy)).
    pub fn proxy(mut self, proxy: crate::broker::Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Connects from this local address (see [`bind_address`](Self::bind_address)).
    pub fn bind_address(mut self, addr: std::net::IpAddr) -> Self {
        self.bind_address = Some(addr);
        self
    }

    /// Sets [`manual_ack`](Self::manual_ack).
    pub fn manual_ack(mut self, on: bool) -> Self {
        self.manual_ack = on;
        self
    }

    /// Sets [`read_tuning`](Self::read_tuning).
    pub fn read_tuning(mut self, on: bool) -> Self {
        self.read_tuning = on;
        self
    }

    /// Sets the keepalive interval.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Sets clean session.
    pub fn clean_session(mut self, clean: bool) -> Self {
        self.clean_session = clean;
        self
    }

    /// Sets user name and password.
    pub fn credentials(
        mut self,
        username: impl Into<String>,
        password: Option<impl Into<Bytes>>,
    ) -> Self {
        self.username = Some(username.into());
        self.password = password.map(Into::into);
        self
    }

    /// Sets the last will.
    pub fn will(mut self, will: Will) -> Self {
        self.will = Some(will);
        self
    }

    /// Sets the MQTT revision.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sets the TLS settings.
    pub fn tls(mut self, tls: impl Into<Arc<TlsOptions>>) -> Self {
        self.tls = tls.into();
        self
    }

    /// Sets the overall connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the largest incoming packet accepted.
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.max_packet_size = bytes;
        self
    }

    /// Sets the in-flight window.
    pub fn max_inflight(mut self, n: u16) -> Self {
        self.max_inflight = n.max(1);
        self
    }

    /// Sets the command queue bound.
    pub fn max_queued(mut self, n: usize) -> Self {
        self.max_queued = n;
        self
    }

    /// Sets the bound on queued publish bytes.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Turns automatic reconnection on.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Keeps the session in a file-backed store in directory `dir` (see
    /// [`session_store`](Self::session_store)).
    pub fn session_store(mut self, dir: impl Into<PathBuf>) -> Self {
        self.session_store = Some(dir.into());
        self
    }

    /// Runs `hook` on the store's thread before each `fdatasync` of the session store: a
    /// test's way to make the disk slow. Not part of the API.
    #[doc(hidden)]
    pub fn store_sync_hook(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.store_sync_hook = Some(crate::store::SyncHook(Arc::new(hook)));
        self
    }

    /// Adds an HTTP header to WebSocket handshakes.
    pub fn ws_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.ws_headers.push((name.into(), value.into()));
        self
    }
}

impl std::fmt::Debug for ConnectOptions {
    /// Every setting but the password, which shows as `(hidden)`; the TLS private key is
    /// hidden by `TlsOptions`'s own `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("client_id", &self.client_id)
            .field("keep_alive", &self.keep_alive)
            .field("clean_session", &self.clean_session)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "(hidden)"))
            .field("will", &self.will)
            .field("protocol", &self.protocol)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_packet_size", &self.max_packet_size)
            .field("max_inflight", &self.max_inflight)
            .field("max_queued", &self.max_queued)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .field("reconnect", &self.reconnect)
            .field("ws_headers", &self.ws_headers)
            .field("event_capacity", &self.event_capacity)
            .field("session_store", &self.session_store)
            .field("read_tuning", &self.read_tuning)
            .field("proxy", &self.proxy)
            .field("bind_address", &self.bind_address)
            .field("manual_ack", &self.manual_ack)
            .field("tcp_nodelay", &self.tcp_nodelay)
            .field("v5", &self.v5)
            .finish_non_exhaustive()
    }
}

/// The default TLS settings, allocated once per process and shared by every client.
fn default_tls() -> Arc<TlsOptions> {
    static DEFAULT: OnceLock<Arc<TlsOptions>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| Arc::new(TlsOptions::default()))
        .clone()
}
