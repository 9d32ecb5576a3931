//! What a session keeps for one MQTT 5 connection: the broker's capabilities, the topic
//! alias maps, the receive quota, enhanced authentication; and the checks MQTT 5 adds
//! before a command may leave. `None` in the session below MQTT 5, so 3.1 and 3.1.1 pay one
//! pointer and one branch.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::BytesMut;

use super::alias::{self, OutAlias};
use super::caps::ServerCapabilities;
use super::config::SessionConfig;
use super::error::ApiMisuse;
use super::{Message, RequestId};
use crate::packet::{
    EncodeError, Packet, PacketId, ProtocolLevel, PublishV5, QoS, SubscriptionOptions,
};
use crate::topic::{TopicFilter, TopicName};

/// Where the enhanced authentication exchange stands [MQTT-4.12.0-1..7], [MQTT-4.12.1-1].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthPhase {
    /// CONNECT had no Authentication Method: the broker must send no AUTH.
    Off,
    /// CONNECT had a method; AUTH exchanges may precede CONNACK.
    Connecting,
    /// Authenticated; the caller may start a re-authentication.
    Done,
    /// We sent AUTH 0x19 and await the broker's AUTH (0x18 or Success).
    ReAuthenticating,
}

/// Per-connection MQTT 5 state.
#[derive(Debug)]
pub(super) struct V5State {
    /// What the broker's CONNACK declared (defaults until it arrives).
    pub(super) caps: ServerCapabilities,
    /// The CONNACK of this connection arrived (so `caps` is the broker's word).
    pub(super) caps_known: bool,
    pub(super) out_alias: alias::Outgoing,
    pub(super) in_alias: alias::Incoming,
    /// The broker's QoS 1/2 PUBLISHes of this connection not yet answered by PUBACK or
    /// PUBCOMP: at most our Receive Maximum [MQTT-3.3.4-9].
    pub(super) quota_used: u16,
    pub(super) auth: AuthPhase,
    /// Session Expiry Interval set by our DISCONNECT, replacing the negotiated one.
    pub(super) expiry_on_disconnect: Option<u32>,
    /// Publishes of ours to re-send on this connection, in order, held back while the
    /// broker's Receive Maximum is reached [MQTT-4.9.0-2].
    pub(super) held: VecDeque<PacketId>,
    /// When each queued publish with a Message Expiry Interval was queued, by request: the
    /// time it waits is taken off the interval. Outlives connections.
    pub(super) expiry_clocks: BTreeMap<RequestId, Instant>,
}

impl V5State {
    /// Fresh state for a new connection [MQTT-3.3.2-7]: no aliases, full quota.
    pub(super) fn new(config: &SessionConfig) -> Self {
        let auth = if config
            .connect_properties
            .as_ref()
            .is_some_and(|p| p.authentication_method.is_some())
        {
            AuthPhase::Connecting
        } else {
            AuthPhase::Off
        };
        Self {
            caps: ServerCapabilities::default(),
            caps_known: false,
            out_alias: alias::Outgoing::new(0),
            in_alias: alias::Incoming::new(config.topic_alias_maximum()),
            quota_used: 0,
            auth,
            expiry_on_disconnect: None,
            held: VecDeque::new(),
            expiry_clocks: BTreeMap::new(),
        }
    }

    /// Starts a new connection: everything is `fresh` but the clocks of queued publishes.
    pub(super) fn new_connection(&mut self, fresh: Self) {
        let clocks = std::mem::take(&mut self.expiry_clocks);
        *self = fresh;
        self.expiry_clocks = clocks;
    }

    /// The session lifetime after this connection, in seconds: our DISCONNECT's value, else
    /// the broker's CONNACK value, else ours [MQTT-3.1.2-23].
    pub(super) fn session_expiry(&self, config: &SessionConfig) -> u32 {
        self.expiry_on_disconnect
            .or(self
                .caps
                .session_expiry_interval
                .filter(|_| self.caps_known))
            .unwrap_or_else(|| config.session_expiry_interval())
    }

    /// Checks a publish against what the broker declared: Retain Available
    /// [MQTT-3.2.2-14], Maximum QoS [MQTT-3.2.2-11]. Only once the CONNACK arrived.
    pub(super) fn check_publish(&self, msg: &Message) -> Result<(), ApiMisuse> {
        if !self.caps_known {
            return Ok(());
        }
        if msg.retain && !self.caps.retain_available {
            return Err(ApiMisuse::RetainNotSupported);
        }
        if msg.qos > self.caps.maximum_qos {
            return Err(ApiMisuse::QoSNotSupported {
                qos: msg.qos,
                max: self.caps.maximum_qos,
            });
        }
        Ok(())
    }

    /// Checks subscription filters against what the broker declared (wildcards, shared
    /// subscriptions, Subscription Identifiers). Only once the CONNACK arrived.
    pub(super) fn check_subscribe<'a>(
        &self,
        filters: impl Iterator<Item = &'a TopicFilter>,
        with_id: bool,
    ) -> Result<(), ApiMisuse> {
        if !self.caps_known {
            return Ok(());
        }
        if with_id && !self.caps.subscription_identifiers_available {
            return Err(ApiMisuse::SubscriptionIdNotSupported);
        }
        for f in filters {
            let shared = shared_parts(f).is_some();
            if shared && !self.caps.shared_subscription_available {
                return Err(ApiMisuse::SharedNotSupported {
                    filter: f.as_str().to_owned(),
                });
            }
            if f.has_wildcards() && !self.caps.wildcard_subscription_available {
                return Err(ApiMisuse::WildcardNotSupported {
                    filter: f.as_str().to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// For a `$share/{ShareName}/{filter}` filter: the share name and the inner filter
/// (unchecked); `None` for an ordinary filter.
pub(super) fn shared_parts(f: &TopicFilter) -> Option<(&str, &str)> {
    let rest = f.as_str().strip_prefix("$share/")?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// Validates a filter as a shared subscription when it is one [MQTT-4.8.2-1],
/// [MQTT-4.8.2-2], and No Local on it [MQTT-3.8.3-4].
pub(super) fn check_shared(
    f: &TopicFilter,
    options: &SubscriptionOptions,
) -> Result<(), ApiMisuse> {
    if f.as_str() == "$share" {
        return Err(invalid_shared(
            f,
            "`$share` needs a ShareName and a filter [MQTT-4.8.2-1]",
        ));
    }
    let Some((share, inner)) = shared_parts(f) else {
        return Ok(());
    };
    let reason = if share.is_empty() {
        Some("the ShareName is empty [MQTT-4.8.2-1]")
    } else if share.contains(['+', '#']) {
        Some("the ShareName contains a wildcard [MQTT-4.8.2-2]")
    } else if inner.is_empty() {
        Some("no topic filter follows the ShareName [MQTT-4.8.2-2]")
    } else if options.no_local {
        Some("No Local on a shared subscription is a Protocol Error [MQTT-3.8.3-4]")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(invalid_shared(f, reason)),
        None => Ok(()),
    }
}

fn invalid_shared(f: &TopicFilter, reason: &'static str) -> ApiMisuse {
    ApiMisuse::InvalidSharedSubscription {
        filter: f.as_str().to_owned(),
        reason,
    }
}

/// Why a packet of ours could not be encoded.
#[derive(Debug)]
pub(super) enum SendError {
    /// The codec refused it.
    Encode(EncodeError),
    /// Larger than the broker's Maximum Packet Size [MQTT-3.2.2-15].
    TooLarge { len: usize, max: usize },
}

/// Encodes one of our packets at level 5: refuses one larger than the broker's Maximum
/// Packet Size [MQTT-3.2.2-15] (leaving `out` and the alias map untouched), and gives a
/// PUBLISH a Topic Alias from the per-connection map (automatic when `auto`). The stored
/// packet is never changed: it keeps its full topic, so a re-send on a later connection
/// carries it [MQTT-3.3.2-7].
pub(super) fn encode(
    v5: &mut V5State,
    packet: &Packet,
    auto: bool,
    out: &mut BytesMut,
) -> Result<(), SendError> {
    let max = v5.caps.max_packet_size();
    let len = packet.encoded_len_for(ProtocolLevel::V5);
    if len > max {
        return Err(SendError::TooLarge { len, max });
    }
    let (publish, properties) = match packet {
        Packet::Publish(p) => {
            p.check().map_err(SendError::Encode)?;
            (p, None)
        }
        Packet::PublishV5(p) => {
            // Checked before an alias is bound: a packet that then fails to encode would
            // leave the broker's map and ours apart.
            p.check().map_err(SendError::Encode)?;
            (&p.publish, Some(&p.properties))
        }
        other => {
            return other
                .encode_for(ProtocolLevel::V5, out)
                .map_err(SendError::Encode);
        }
    };
    let requested = properties.and_then(|p| p.topic_alias);
    // The alias costs 3 bytes when it is bound: only if that still fits.
    let choice = if (auto || requested.is_some()) && len.saturating_add(3) <= max {
        v5.out_alias.choose(&publish.topic, requested)
    } else {
        OutAlias::None
    };
    let (topic, alias) = match choice {
        OutAlias::None => {
            if requested.is_none() {
                return packet
                    .encode_for(ProtocolLevel::V5, out)
                    .map_err(SendError::Encode);
            }
            (publish.topic.clone(), None)
        }
        OutAlias::Establish(a) => (publish.topic.clone(), Some(a)),
        OutAlias::Use(a) => (TopicName::empty_for_alias(), Some(a)),
    };
    let mut props = properties.cloned().unwrap_or_default();
    props.topic_alias = alias;
    let mut p = publish.clone();
    p.topic = topic;
    Packet::PublishV5(Box::new(PublishV5 {
        publish: p,
        properties: props,
    }))
    .encode_for(ProtocolLevel::V5, out)
    .map_err(SendError::Encode)
}

/// Whether a QoS is at least 1 (counts against a Receive Maximum).
pub(super) fn is_quota(qos: QoS) -> bool {
    qos != QoS::AtMostOnce
}
