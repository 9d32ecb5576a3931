//! `-D COMMAND PROPERTY VALUE` (`--property`): MQTT v5 properties as mosquitto_pub,
//! mosquitto_sub and mosquitto_rr 2.x take them, parsed into `tern-proto`'s typed property
//! blocks.
//!
//! Commands and property names are mosquitto's, matched without regard to case
//! (`connect`, `publish`, `subscribe`, `unsubscribe`, `disconnect`, `will`;
//! `user-property` takes two values, a name and a value). A property the standard does not
//! allow on a packet is refused naming both ("Error: topic-alias property not allowed for
//! connect in --property argument."), and so are the commands mosquitto's tools accept by
//! name but never send properties on (`auth`, `puback`, ...). Numbers are range-checked by
//! their wire type; after all flags are read, [`Properties::check`] refuses what
//! mosquitto's `property_check_all` refuses (a single-valued property given twice, a
//! Receive Maximum of 0, a Payload Format Indicator other than 0 or 1, ...).

use std::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;
use tern_proto::{
    ConnectProperties, DisconnectProperties, MqttString, PacketType, PayloadFormat, PropertyId,
    PropertyScope, PublishProperties, SubscribeProperties, SubscriptionId, TopicName,
    UnsubscribeProperties, WillProperties,
};

/// The packet a `-D` property is for (mosquitto's command names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Connect,
    Publish,
    Subscribe,
    Unsubscribe,
    Disconnect,
    Will,
    /// Named by mosquitto, but no tool sends properties on it: refused.
    Other(PacketType),
}

impl Command {
    /// mosquitto 2.0's `mosquitto_string_to_command`, case-insensitive (it has no
    /// `suback`, `unsuback`, `pingreq` nor `pingresp`).
    fn parse(s: &str) -> Option<Self> {
        let packet = match s.to_ascii_lowercase().as_str() {
            "connect" => return Some(Self::Connect),
            "publish" => return Some(Self::Publish),
            "subscribe" => return Some(Self::Subscribe),
            "unsubscribe" => return Some(Self::Unsubscribe),
            "disconnect" => return Some(Self::Disconnect),
            "will" => return Some(Self::Will),
            "connack" => PacketType::ConnAck,
            "puback" => PacketType::PubAck,
            "pubrec" => PacketType::PubRec,
            "pubrel" => PacketType::PubRel,
            "pubcomp" => PacketType::PubComp,
            "auth" => PacketType::Auth,
            _ => return None,
        };
        Some(Self::Other(packet))
    }

    fn scope(self) -> PropertyScope {
        PropertyScope::Packet(match self {
            Self::Connect => PacketType::Connect,
            Self::Publish => PacketType::Publish,
            Self::Subscribe => PacketType::Subscribe,
            Self::Unsubscribe => PacketType::Unsubscribe,
            Self::Disconnect => PacketType::Disconnect,
            Self::Will => return PropertyScope::Will,
            Self::Other(p) => p,
        })
    }
}

/// mosquitto's property names (`mosquitto_string_to_property_info`).
const NAMES: &[(&str, PropertyId)] = &[
    (
        "payload-format-indicator",
        PropertyId::PayloadFormatIndicator,
    ),
    ("message-expiry-interval", PropertyId::MessageExpiryInterval),
    ("content-type", PropertyId::ContentType),
    ("response-topic", PropertyId::ResponseTopic),
    ("correlation-data", PropertyId::CorrelationData),
    (
        "subscription-identifier",
        PropertyId::SubscriptionIdentifier,
    ),
    ("session-expiry-interval", PropertyId::SessionExpiryInterval),
    (
        "assigned-client-identifier",
        PropertyId::AssignedClientIdentifier,
    ),
    ("server-keep-alive", PropertyId::ServerKeepAlive),
    ("authentication-method", PropertyId::AuthenticationMethod),
    ("authentication-data", PropertyId::AuthenticationData),
    (
        "request-problem-information",
        PropertyId::RequestProblemInformation,
    ),
    ("will-delay-interval", PropertyId::WillDelayInterval),
    (
        "request-response-information",
        PropertyId::RequestResponseInformation,
    ),
    ("response-information", PropertyId::ResponseInformation),
    ("server-reference", PropertyId::ServerReference),
    ("reason-string", PropertyId::ReasonString),
    ("receive-maximum", PropertyId::ReceiveMaximum),
    ("topic-alias-maximum", PropertyId::TopicAliasMaximum),
    ("topic-alias", PropertyId::TopicAlias),
    ("maximum-qos", PropertyId::MaximumQoS),
    ("retain-available", PropertyId::RetainAvailable),
    ("user-property", PropertyId::UserProperty),
    ("maximum-packet-size", PropertyId::MaximumPacketSize),
    (
        "wildcard-subscription-available",
        PropertyId::WildcardSubscriptionAvailable,
    ),
    (
        "subscription-identifier-available",
        PropertyId::SubscriptionIdentifierAvailable,
    ),
    (
        "shared-subscription-available",
        PropertyId::SharedSubscriptionAvailable,
    ),
];

fn lookup(name: &str) -> Option<PropertyId> {
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, id)| *id)
}

/// Every `-D` property given, by packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Properties {
    pub(crate) connect: ConnectProperties,
    pub(crate) publish: PublishProperties,
    pub(crate) subscribe: SubscribeProperties,
    pub(crate) unsubscribe: UnsubscribeProperties,
    pub(crate) disconnect: DisconnectProperties,
    pub(crate) will: WillProperties,
    /// A single-valued property given twice: (packet, property name), for [`Self::check`].
    duplicate: Option<(&'static str, &'static str)>,
    /// Whether any `-D` was given (it selects MQTT v5, as in mosquitto).
    pub(crate) any: bool,
}

/// Hands out the words after `-D` one by one: `Ok(None)` past the end, `Err` for a word
/// that cannot be read (not UTF-8).
pub(crate) type Words<'a> = &'a mut dyn FnMut() -> Result<Option<String>, String>;

const NOT_ENOUGH: &str = "--property argument given but not enough arguments specified.";

impl Properties {
    /// Reads one `-D COMMAND PROPERTY VALUE...` (the words after `-D`); the error is the
    /// sentence for `Error: ...`.
    pub(crate) fn add(&mut self, words: Words<'_>) -> Result<(), String> {
        let mut next = || words()?.ok_or_else(|| NOT_ENOUGH.to_owned());
        let cmd_name = next()?;
        let prop_name = next()?;
        let first = next()?;
        let cmd = Command::parse(&cmd_name)
            .ok_or_else(|| "Invalid command given in --property argument.".to_owned())?;
        let id = lookup(&prop_name)
            .ok_or_else(|| "Invalid property name given in --property argument.".to_owned())?;
        if !id.allowed_in(cmd.scope()) {
            return Err(format!(
                "{prop_name} property not allowed for {cmd_name} in --property argument."
            ));
        }
        let not_supported =
            || format!("{prop_name} property not supported for {cmd_name} in --property argument.");
        // Ours to send: mosquitto's tools refuse the rest (a client never sends a
        // Subscription Identifier on PUBLISH; AUTH and acknowledgements are not theirs).
        match (cmd, id) {
            // mosquitto's tools refuse CONNACK properties without a word.
            (Command::Other(PacketType::ConnAck), _) => return Err(String::new()),
            (Command::Other(_), _) => return Err(not_supported()),
            (Command::Publish, PropertyId::SubscriptionIdentifier) => return Err(not_supported()),
            (Command::Subscribe, PropertyId::SubscriptionIdentifier | PropertyId::UserProperty) => {
            }
            (Command::Subscribe, _) => return Err(not_supported()),
            _ => {}
        }
        let value = if id == PropertyId::UserProperty {
            let value = next()?;
            Value::Pair(string(&prop_name, first)?, string(&prop_name, value)?)
        } else {
            Value::parse(id, &prop_name, first)?
        };
        self.any = true;
        self.set(cmd, id, value, &prop_name)
    }

    fn set(&mut self, cmd: Command, id: PropertyId, v: Value, name: &str) -> Result<(), String> {
        let canonical = NAMES
            .iter()
            .find(|(_, i)| *i == id)
            .map_or("property", |(n, _)| *n);
        let packet = match cmd {
            Command::Connect => "CONNECT",
            Command::Publish => "PUBLISH",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Disconnect => "DISCONNECT",
            Command::Will => "Will",
            Command::Other(_) => "other",
        };
        let mut dup = false;
        {
            let mut put = |slot_full: bool| dup |= slot_full;
            match (cmd, id, v) {
                (_, PropertyId::UserProperty, Value::Pair(k, v)) => match cmd {
                    Command::Connect => self.connect.user_properties.push((k, v)),
                    Command::Publish => self.publish.user_properties.push((k, v)),
                    Command::Subscribe => self.subscribe.user_properties.push((k, v)),
                    Command::Unsubscribe => self.unsubscribe.user_properties.push((k, v)),
                    Command::Disconnect => self.disconnect.user_properties.push((k, v)),
                    Command::Will => self.will.user_properties.push((k, v)),
                    Command::Other(_) => {}
                },
                (Command::Connect, PropertyId::SessionExpiryInterval, Value::U32(n)) => {
                    put(self.connect.session_expiry_interval.replace(n).is_some());
                }
                (Command::Connect, PropertyId::ReceiveMaximum, Value::U16(n)) => {
                    let n = NonZeroU16::new(n).ok_or_else(|| zero(packet, name))?;
                    put(self.connect.receive_maximum.replace(n).is_some());
                }
                (Command::Connect, PropertyId::MaximumPacketSize, Value::U32(n)) => {
                    let n = NonZeroU32::new(n).ok_or_else(|| zero(packet, name))?;
                    put(self.connect.maximum_packet_size.replace(n).is_some());
                }
                (Command::Connect, PropertyId::TopicAliasMaximum, Value::U16(n)) => {
                    put(self.connect.topic_alias_maximum.replace(n).is_some());
                }
                (Command::Connect, PropertyId::RequestResponseInformation, Value::U8(b)) => {
                    let b = flag(b, packet, name)?;
                    put(self
                        .connect
                        .request_response_information
                        .replace(b)
                        .is_some());
                }
                (Command::Connect, PropertyId::RequestProblemInformation, Value::U8(b)) => {
                    let b = flag(b, packet, name)?;
                    put(self
                        .connect
                        .request_problem_information
                        .replace(b)
                        .is_some());
                }
                (Command::Connect, PropertyId::AuthenticationMethod, Value::Str(s)) => {
                    put(self.connect.authentication_method.replace(s).is_some());
                }
                (Command::Connect, PropertyId::AuthenticationData, Value::Bin(b)) => {
                    put(self.connect.authentication_data.replace(b).is_some());
                }
                (Command::Disconnect, PropertyId::SessionExpiryInterval, Value::U32(n)) => {
                    put(self.disconnect.session_expiry_interval.replace(n).is_some());
                }
                (Command::Disconnect, PropertyId::ReasonString, Value::Str(s)) => {
                    put(self.disconnect.reason_string.replace(s).is_some());
                }
                (Command::Disconnect, PropertyId::ServerReference, Value::Str(s)) => {
                    put(self.disconnect.server_reference.replace(s).is_some());
                }
                (Command::Subscribe, PropertyId::SubscriptionIdentifier, Value::U32(n)) => {
                    let id = SubscriptionId::new(n).ok_or_else(|| zero(packet, name))?;
                    put(self.subscribe.subscription_identifier.replace(id).is_some());
                }
                (Command::Publish, PropertyId::TopicAlias, Value::U16(n)) => {
                    let n = NonZeroU16::new(n).ok_or_else(|| zero(packet, name))?;
                    put(self.publish.topic_alias.replace(n).is_some());
                }
                (Command::Publish | Command::Will, id, v) => {
                    let full = self.message_property(cmd, id, v, packet, name)?;
                    put(full);
                }
                _ => {
                    return Err(format!(
                        "{name} property not supported in --property argument."
                    ));
                }
            }
        }
        if dup && self.duplicate.is_none() {
            self.duplicate = Some((packet, canonical));
        }
        Ok(())
    }

    /// A property PUBLISH and the will share; `Ok(true)` when it was already set.
    fn message_property(
        &mut self,
        cmd: Command,
        id: PropertyId,
        v: Value,
        packet: &str,
        name: &str,
    ) -> Result<bool, String> {
        let will = cmd == Command::Will;
        Ok(match (id, v) {
            (PropertyId::PayloadFormatIndicator, Value::U8(b)) => {
                let f = match b {
                    0 => PayloadFormat::Unspecified,
                    1 => PayloadFormat::Utf8,
                    _ => {
                        return Err(format!(
                            "Error in {packet} properties: {name} must be 0 or 1, not {b}."
                        ));
                    }
                };
                if will {
                    self.will.payload_format_indicator.replace(f).is_some()
                } else {
                    self.publish.payload_format_indicator.replace(f).is_some()
                }
            }
            (PropertyId::MessageExpiryInterval, Value::U32(n)) => {
                if will {
                    self.will.message_expiry_interval.replace(n).is_some()
                } else {
                    self.publish.message_expiry_interval.replace(n).is_some()
                }
            }
            (PropertyId::ContentType, Value::Str(s)) => {
                if will {
                    self.will.content_type.replace(s).is_some()
                } else {
                    self.publish.content_type.replace(s).is_some()
                }
            }
            (PropertyId::ResponseTopic, Value::Str(s)) => {
                let t = TopicName::new(s.as_str()).map_err(|e| {
                    format!(
                        "Error in {packet} properties: invalid {name} '{}': {e}.",
                        s.as_str()
                    )
                })?;
                if will {
                    self.will.response_topic.replace(t).is_some()
                } else {
                    self.publish.response_topic.replace(t).is_some()
                }
            }
            (PropertyId::CorrelationData, Value::Bin(b)) => {
                if will {
                    self.will.correlation_data.replace(b).is_some()
                } else {
                    self.publish.correlation_data.replace(b).is_some()
                }
            }
            (PropertyId::WillDelayInterval, Value::U32(n)) if will => {
                self.will.will_delay_interval.replace(n).is_some()
            }
            _ => {
                return Err(format!(
                    "{name} property not supported in --property argument."
                ));
            }
        })
    }

    /// What mosquitto checks once every flag is read: no single-valued property twice
    /// (refused in mosquitto's words, which do not name the property).
    pub(crate) fn check(&self) -> Result<(), String> {
        match self.duplicate {
            Some((packet, _)) => Err(format!(
                "Error in {packet} properties: Duplicate property in property list"
            )),
            None => Ok(()),
        }
    }
}

fn zero(packet: &str, name: &str) -> String {
    format!("Error in {packet} properties: {name} must not be 0.")
}

fn flag(b: u8, packet: &str, name: &str) -> Result<bool, String> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(format!(
            "Error in {packet} properties: {name} must be 0 or 1, not {b}."
        )),
    }
}

fn string(name: &str, s: String) -> Result<MqttString, String> {
    MqttString::new(&s).map_err(|e| format!("Invalid value for property {name}: {e}."))
}

/// A `-D` value read by its property's wire type.
enum Value {
    U8(u8),
    U16(u16),
    U32(u32),
    Str(MqttString),
    Bin(Bytes),
    Pair(MqttString, MqttString),
}

impl Value {
    fn parse(id: PropertyId, name: &str, s: String) -> Result<Self, String> {
        use tern_proto::packet::property::PropertyKind as K;
        let number = |max: u64| -> Result<u64, String> {
            let n: i128 = s.trim().parse().map_err(|_| {
                format!("Property value ({s}) is not a number for property {name}.")
            })?;
            if n < 0 || n > i128::from(max) {
                return Err(format!(
                    "Property value ({n}) out of range for property {name}."
                ));
            }
            Ok(n as u64)
        };
        Ok(match id.kind() {
            K::Byte => Self::U8(number(u8::MAX.into())? as u8),
            K::TwoByteInteger => Self::U16(number(u16::MAX.into())? as u16),
            K::FourByteInteger => Self::U32(number(u32::MAX.into())? as u32),
            K::VariableByteInteger => {
                Self::U32(number(u64::from(tern_proto::packet::property::MAX_VBI))? as u32)
            }
            K::Utf8 | K::StringPair => Self::Str(string(name, s)?),
            K::Binary => {
                if s.len() > usize::from(u16::MAX) {
                    return Err(format!("Property value too long for property {name}."));
                }
                Self::Bin(Bytes::from(s.into_bytes()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(p: &mut Properties, words: &[&str]) -> Result<(), String> {
        let mut it = words.iter().map(|s| (*s).to_owned());
        let mut next = || Ok(it.next());
        p.add(&mut next)
    }

    fn one(words: &[&str]) -> Result<Properties, String> {
        let mut p = Properties::default();
        add(&mut p, words)?;
        p.check()?;
        Ok(p)
    }

    #[test]
    fn every_kind_of_property_lands_in_its_block() {
        let mut p = Properties::default();
        for w in [
            &["connect", "session-expiry-interval", "60"][..],
            &["connect", "receive-maximum", "10"],
            &["connect", "maximum-packet-size", "1000"],
            &["connect", "topic-alias-maximum", "5"],
            &["connect", "request-response-information", "1"],
            &["connect", "request-problem-information", "0"],
            &["connect", "authentication-method", "SCRAM-SHA-256"],
            &["connect", "user-property", "a", "1"],
            &["CONNECT", "User-Property", "a", "2"],
            &["publish", "payload-format-indicator", "1"],
            &["publish", "message-expiry-interval", "30"],
            &["publish", "content-type", "text/plain"],
            &["publish", "response-topic", "r/1"],
            &["publish", "correlation-data", "abc"],
            &["publish", "topic-alias", "3"],
            &["subscribe", "subscription-identifier", "268435455"],
            &["unsubscribe", "user-property", "u", "v"],
            &["disconnect", "reason-string", "bye"],
            &["disconnect", "session-expiry-interval", "0"],
            &["will", "will-delay-interval", "5"],
            &["will", "content-type", "x"],
        ] {
            add(&mut p, w).unwrap_or_else(|e| panic!("{w:?}: {e}"));
        }
        p.check().unwrap();
        assert!(p.any);
        assert_eq!(p.connect.session_expiry_interval, Some(60));
        assert_eq!(p.connect.receive_maximum.map(NonZeroU16::get), Some(10));
        assert_eq!(p.connect.request_response_information, Some(true));
        assert_eq!(p.connect.request_problem_information, Some(false));
        let users: Vec<_> = p
            .connect
            .user_properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(users, [("a", "1"), ("a", "2")], "repeats kept, in order");
        assert_eq!(
            p.publish.payload_format_indicator,
            Some(PayloadFormat::Utf8)
        );
        assert_eq!(
            p.publish.content_type.as_ref().map(MqttString::as_str),
            Some("text/plain")
        );
        assert_eq!(p.publish.correlation_data.as_deref(), Some(&b"abc"[..]));
        assert_eq!(
            p.subscribe.subscription_identifier.map(SubscriptionId::get),
            Some(268_435_455)
        );
        assert_eq!(p.will.will_delay_interval, Some(5));
        assert_eq!(p.disconnect.reason_string.as_ref().unwrap().as_str(), "bye");
        assert_eq!(p.unsubscribe.user_properties.len(), 1);
    }

    #[test]
    fn mosquittos_refusals_name_the_property_and_the_command() {
        assert_eq!(
            one(&["connect", "topic-alias", "1"]).unwrap_err(),
            "topic-alias property not allowed for connect in --property argument."
        );
        assert_eq!(
            one(&["will", "will-delay-interval", "1"]).map(|_| ()),
            Ok(())
        );
        assert_eq!(
            one(&["publish", "will-delay-interval", "1"]).unwrap_err(),
            "will-delay-interval property not allowed for publish in --property argument."
        );
        assert_eq!(
            one(&["publish", "subscription-identifier", "1"]).unwrap_err(),
            "subscription-identifier property not supported for publish in --property argument."
        );
        assert_eq!(
            one(&["auth", "reason-string", "x"]).unwrap_err(),
            "reason-string property not supported for auth in --property argument."
        );
        assert_eq!(
            one(&["pingreq", "user-property", "a", "b"]).unwrap_err(),
            "Invalid command given in --property argument."
        );
        assert_eq!(
            one(&["connack", "user-property", "a", "b"]).unwrap_err(),
            ""
        );
        assert_eq!(
            one(&["connect", "server-keep-alive", "1"]).unwrap_err(),
            "server-keep-alive property not allowed for connect in --property argument."
        );
        assert_eq!(
            one(&["bogus", "content-type", "x"]).unwrap_err(),
            "Invalid command given in --property argument."
        );
        assert_eq!(
            one(&["publish", "colour", "x"]).unwrap_err(),
            "Invalid property name given in --property argument."
        );
        assert_eq!(one(&["publish", "content-type"]).unwrap_err(), NOT_ENOUGH);
        assert_eq!(
            one(&["publish", "user-property", "k"]).unwrap_err(),
            NOT_ENOUGH
        );
    }

    #[test]
    fn numbers_are_checked_against_their_wire_type() {
        assert_eq!(
            one(&["publish", "payload-format-indicator", "256"]).unwrap_err(),
            "Property value (256) out of range for property payload-format-indicator."
        );
        assert_eq!(
            one(&["connect", "receive-maximum", "65536"]).unwrap_err(),
            "Property value (65536) out of range for property receive-maximum."
        );
        assert_eq!(
            one(&["publish", "message-expiry-interval", "-1"]).unwrap_err(),
            "Property value (-1) out of range for property message-expiry-interval."
        );
        assert_eq!(
            one(&["subscribe", "subscription-identifier", "268435456"]).unwrap_err(),
            "Property value (268435456) out of range for property subscription-identifier."
        );
        assert!(
            one(&["publish", "message-expiry-interval", "soon"])
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            one(&["connect", "receive-maximum", "0"])
                .unwrap_err()
                .contains("must not be 0")
        );
        assert!(
            one(&["subscribe", "subscription-identifier", "0"])
                .unwrap_err()
                .contains("must not be 0")
        );
        assert!(
            one(&["publish", "payload-format-indicator", "2"])
                .unwrap_err()
                .contains("must be 0 or 1")
        );
        assert!(
            one(&["publish", "response-topic", "a/#"])
                .unwrap_err()
                .contains("invalid response-topic 'a/#'")
        );
    }

    #[test]
    fn a_single_valued_property_twice_is_refused_after_parsing() {
        let mut p = Properties::default();
        add(&mut p, &["publish", "content-type", "a"]).unwrap();
        add(&mut p, &["publish", "content-type", "b"]).unwrap();
        assert_eq!(
            p.check().unwrap_err(),
            "Error in PUBLISH properties: Duplicate property in property list"
        );
    }
}
