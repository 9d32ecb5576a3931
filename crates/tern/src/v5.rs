//! MQTT 5 settings and values of the client: the CONNECT properties of
//! [`ConnectOptions`](crate::ConnectOptions) ([`V5Options`]), a publish with properties
//! ([`Publish`]), a subscription with options ([`Subscription`]) and what the broker answered
//! ([`SubAck`], [`UnsubAck`]). Nothing here is needed at MQTT 3.1.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tern_proto::packet::{ConnectProperties, UserProperty};
use tern_proto::{
    MqttString, PayloadFormat, PublishProperties, QoS, RetainHandling, SubAckReasonCode,
    SubscriptionId, SubscriptionOptions, TopicFilter, TopicName, UnsubAckReasonCode,
};

use crate::auth::Authenticator;
use crate::error::ClientError;
use crate::options::OptionsError;

/// The authenticator of a [`ConnectOptions`](crate::ConnectOptions), shared by its clones
/// (the driver takes the lock only for one step of an exchange).
#[derive(Clone)]
pub(crate) struct SharedAuth(pub(crate) Arc<Mutex<dyn Authenticator>>);

impl std::fmt::Debug for SharedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `try_lock`: never waits for (or deadlocks with) an exchange step in progress.
        let method = self
            .0
            .try_lock()
            .map_or_else(|_| "(busy)".to_owned(), |a| a.method().to_owned());
        f.debug_tuple("Authenticator").field(&method).finish()
    }
}

/// MQTT 5 settings of a connection, set with [`ConnectOptions`](crate::ConnectOptions)'s
/// builders ([`session_expiry`](crate::ConnectOptions::session_expiry),
/// [`receive_maximum`](crate::ConnectOptions::receive_maximum), …). Used only when the
/// connection speaks MQTT 5 ([`Protocol::V5`](crate::Protocol::V5), or
/// [`Protocol::Auto`](crate::Protocol::Auto) with a broker that speaks it); setting one with
/// [`Protocol::V3_1_1`](crate::Protocol::V3_1_1) is an [`OptionsError::NeedsV5`].
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct V5Options {
    /// Session Expiry Interval in seconds: how long the broker keeps the session after the
    /// connection ends. `None`: 0 with clean session, "never expires" (`u32::MAX`) with
    /// clean session off — at MQTT 5 a session outlives its connection only by this, so
    /// `clean_session(false)` alone keeps the 3.1.1 meaning.
    pub session_expiry: Option<u32>,
    /// Receive Maximum: QoS 1/2 messages the broker may have unacknowledged towards us
    /// (`None`: 65,535). At least 1.
    pub receive_maximum: Option<u16>,
    /// Topic Alias Maximum: aliases the broker may use towards us (resolved before the
    /// application sees a message). Default: 0, none.
    pub topic_alias_maximum: u16,
    /// Ask the broker for Response Information (a topic prefix for responses, used by
    /// [`Client::request`](crate::Client::request)). Default: false.
    pub request_response_information: bool,
    /// Request Problem Information; `None` leaves the broker's default (true).
    pub request_problem_information: Option<bool>,
    /// User Properties of CONNECT, in order.
    pub user_properties: Vec<(String, String)>,
    /// Choose Topic Aliases for outgoing publishes automatically, within the broker's Topic
    /// Alias Maximum. Default: true.
    pub topic_aliases: bool,
    /// Follow a Server Reference (CONNACK 0x9C / 0x9D, or DISCONNECT with one) at most this
    /// many times in a row; 0 (the default) does not follow.
    pub max_redirects: u8,
    /// Enhanced authentication (AUTH exchange).
    pub(crate) authenticator: Option<SharedAuth>,
}

impl Default for V5Options {
    /// Every property absent, automatic topic aliases on, no redirection followed.
    fn default() -> Self {
        Self {
            session_expiry: None,
            receive_maximum: None,
            topic_alias_maximum: 0,
            request_response_information: false,
            request_problem_information: None,
            user_properties: Vec::new(),
            topic_aliases: true,
            max_redirects: 0,
            authenticator: None,
        }
    }
}

impl V5Options {
    /// Whether anything here differs from its default (a 3.1.1 connection cannot carry it).
    pub(crate) fn is_set(&self) -> bool {
        self.session_expiry.is_some()
            || self.receive_maximum.is_some()
            || self.topic_alias_maximum != 0
            || self.request_response_information
            || self.request_problem_information.is_some()
            || !self.user_properties.is_empty()
            || self.authenticator.is_some()
    }

    /// The CONNECT properties (without Authentication Data: each attempt's comes from the
    /// authenticator).
    pub(crate) fn connect_properties(
        &self,
        clean_session: bool,
    ) -> Result<ConnectProperties, OptionsError> {
        let receive_maximum = match self.receive_maximum {
            None => None,
            Some(n) => Some(std::num::NonZeroU16::new(n).ok_or(OptionsError::ReceiveMaximum)?),
        };
        let session_expiry = self.session_expiry.or((!clean_session).then_some(u32::MAX));
        let user_properties = user_properties(&self.user_properties)
            .map_err(|(name, e)| OptionsError::UserProperty { name, source: e })?;
        let authentication_method = match &self.authenticator {
            None => None,
            Some(auth) => {
                let method = auth
                    .0
                    .lock()
                    .map(|a| a.method().to_owned())
                    .unwrap_or_default();
                Some(
                    MqttString::new(&method).map_err(|e| OptionsError::UserProperty {
                        name: "authentication method".into(),
                        source: e,
                    })?,
                )
            }
        };
        Ok(ConnectProperties {
            session_expiry_interval: session_expiry.filter(|&s| s != 0),
            receive_maximum,
            topic_alias_maximum: Some(self.topic_alias_maximum).filter(|&n| n != 0),
            request_response_information: self.request_response_information.then_some(true),
            request_problem_information: self.request_problem_information,
            user_properties,
            authentication_method,
            ..ConnectProperties::default()
        })
    }
}

/// Converts `(name, value)` pairs to User Properties; the offending name on failure.
pub(crate) fn user_properties(
    pairs: &[(String, String)],
) -> Result<Vec<UserProperty>, (String, tern_proto::StringError)> {
    pairs
        .iter()
        .map(|(k, v)| {
            let key = MqttString::new(k).map_err(|e| (k.clone(), e))?;
            let value = MqttString::new(v).map_err(|e| (k.clone(), e))?;
            Ok((key, value))
        })
        .collect()
}

/// A message to publish, with MQTT 5 properties: `Publish::new(topic, payload)` and by-value
/// setters, then [`Client::publish_with`](crate::Client::publish_with). Invalid strings are
/// reported when it is published, as [`ClientError::Topic`] or [`ClientError::Property`].
///
/// ```
/// use std::time::Duration;
/// use tern::{Publish, QoS};
///
/// let p = Publish::new("sensors/t1", "21.5")
///     .qos(QoS::AtLeastOnce)
///     .message_expiry(Duration::from_secs(60))
///     .content_type("text/plain")
///     .user_property("unit", "celsius");
/// assert_eq!(p.qos, QoS::AtLeastOnce);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS. Default: 0.
    pub qos: QoS,
    /// Retain flag. Default: false.
    pub retain: bool,
    /// Message Expiry Interval, whole seconds.
    pub message_expiry: Option<Duration>,
    /// Content Type.
    pub content_type: Option<String>,
    /// Payload Format Indicator: true for UTF-8 text.
    pub utf8_payload: bool,
    /// Response Topic.
    pub response_topic: Option<String>,
    /// Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// User Properties, in order.
    pub user_properties: Vec<(String, String)>,
}

impl Publish {
    /// A QoS 0, non-retained message with no properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            message_expiry: None,
            content_type: None,
            utf8_payload: false,
            response_topic: None,
            correlation_data: None,
            user_properties: Vec::new(),
        }
    }

    /// Sets the QoS.
    pub fn qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// Sets the retain flag.
    pub fn retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Sets the Message Expiry Interval (whole seconds; rounded up).
    ///
    /// The client counts it down while it holds the publish, as a broker does
    /// [MQTT-3.3.2-6]: one waiting to be sent (offline, or behind the in-flight window)
    /// leaves with what is left, or, once it has run out, is never sent and fails with
    /// [`RequestError::Expired`](crate::RequestError::Expired). Once sent it is never
    /// dropped: an unacknowledged PUBLISH is re-sent after a reconnect [MQTT-4.4.0-1], at
    /// QoS 1 with what is left since it was first sent (at least 1 s), at QoS 2 as first
    /// sent (no expiry applies to it once sent [MQTT-4.3.3-7]). Not covered: a publish
    /// restored from a [session store](crate::ConnectOptions::session_store) after a
    /// restart is re-sent with the interval it was first sent with (the store keeps no
    /// time).
    pub fn message_expiry(mut self, after: Duration) -> Self {
        self.message_expiry = Some(after);
        self
    }

    /// Sets the Content Type.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Marks the payload as UTF-8 text (Payload Format Indicator 1).
    pub fn utf8_payload(mut self, on: bool) -> Self {
        self.utf8_payload = on;
        self
    }

    /// Sets the Response Topic.
    pub fn response_topic(mut self, topic: impl Into<String>) -> Self {
        self.response_topic = Some(topic.into());
        self
    }

    /// Sets the Correlation Data.
    pub fn correlation_data(mut self, data: impl Into<Bytes>) -> Self {
        self.correlation_data = Some(data.into());
        self
    }

    /// Adds a User Property (names may repeat; order is kept).
    pub fn user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.user_properties.push((name.into(), value.into()));
        self
    }

    /// The response to `request` (a message received with a Response Topic): published on
    /// its Response Topic with its Correlation Data; `None` when it asked for none.
    pub fn response_to(request: &crate::Message, payload: impl Into<Bytes>) -> Option<Self> {
        let topic = request.response_topic()?;
        let mut p = Self::new(topic, payload).qos(request.qos);
        p.correlation_data = request.correlation_data().cloned();
        Some(p)
    }

    /// The session's message: topic and properties checked.
    pub(crate) fn into_message(self) -> Result<tern_proto::Message, ClientError> {
        let topic = TopicName::new(&self.topic).map_err(|source| ClientError::Topic {
            topic: self.topic.clone(),
            source,
        })?;
        let response_topic = self
            .response_topic
            .as_deref()
            .map(|t| {
                TopicName::new(t).map_err(|source| ClientError::Topic {
                    topic: t.to_owned(),
                    source,
                })
            })
            .transpose()?;
        let content_type = self
            .content_type
            .as_deref()
            .map(|c| {
                MqttString::new(c).map_err(|source| ClientError::Property {
                    name: "content type".into(),
                    source,
                })
            })
            .transpose()?;
        let user_properties = user_properties(&self.user_properties)
            .map_err(|(name, source)| ClientError::Property { name, source })?;
        let message_expiry_interval = self.message_expiry.map(|d| {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        });
        let properties = PublishProperties {
            payload_format_indicator: self.utf8_payload.then_some(PayloadFormat::Utf8),
            message_expiry_interval,
            content_type,
            response_topic,
            correlation_data: self.correlation_data,
            user_properties,
            ..PublishProperties::default()
        };
        let mut msg = tern_proto::Message::new(topic, self.payload, self.qos, self.retain);
        if properties != PublishProperties::default() {
            msg.properties = Some(Box::new(properties));
        }
        Ok(msg)
    }
}

/// One filter of an MQTT 5 subscription, with its options: `Subscription::new(filter, qos)`
/// and by-value setters, for [`Client::subscribe_with`](crate::Client::subscribe_with).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topic filter (`$share/group/filter` for a shared subscription).
    pub filter: String,
    /// Maximum QoS, No Local, Retain As Published, Retain Handling.
    pub options: SubscriptionOptions,
}

impl Subscription {
    /// A subscription to `filter` at `qos`, other options at their defaults.
    pub fn new(filter: impl Into<String>, qos: QoS) -> Self {
        Self {
            filter: filter.into(),
            options: SubscriptionOptions::qos(qos),
        }
    }

    /// No Local: the broker does not send our own publications back.
    pub fn no_local(mut self, on: bool) -> Self {
        self.options.no_local = on;
        self
    }

    /// Retain As Published: deliveries keep the publisher's RETAIN flag.
    pub fn retain_as_published(mut self, on: bool) -> Self {
        self.options.retain_as_published = on;
        self
    }

    /// When retained messages are sent.
    pub fn retain_handling(mut self, handling: RetainHandling) -> Self {
        self.options.retain_handling = handling;
        self
    }

    pub(crate) fn checked(&self) -> Result<(TopicFilter, SubscriptionOptions), ClientError> {
        let filter = TopicFilter::new(&self.filter).map_err(|source| ClientError::Topic {
            topic: self.filter.clone(),
            source,
        })?;
        Ok((filter, self.options))
    }
}

/// The broker's answer to an MQTT 5 SUBSCRIBE.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Granted QoS or failure (e.g. 0x87 Not authorized), per filter in request order.
    pub reasons: Vec<SubAckReasonCode>,
    /// The broker's Reason String.
    pub reason_string: Option<String>,
    /// The Subscription Identifier the subscription was made with, if any.
    pub subscription_id: Option<SubscriptionId>,
}

/// The broker's answer to an MQTT 5 UNSUBSCRIBE.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Success, No subscription existed, or a failure, per filter in request order.
    pub reasons: Vec<UnsubAckReasonCode>,
    /// The broker's Reason String.
    pub reason_string: Option<String>,
}
