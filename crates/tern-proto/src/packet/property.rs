//! MQTT 5.0 properties (§2.2.2): every identifier of the standard's table, typed, with the
//! packets each may appear in, and one struct per property block holding exactly the
//! properties that block allows.
//!
//! Decoding checks, per property: the identifier is known and allowed in this block
//! (otherwise Malformed, §2.2.2.2), it is not repeated unless it is a User Property or a
//! PUBLISH's Subscription Identifier (otherwise Protocol Error, §2.2.2.2), and its value is
//! in range (0/1 bytes, non-zero maxima and aliases, topic names without wildcards). The
//! errors name the block, the property and the rule. Nothing is copied: strings and binary
//! values share the receive buffer.

use std::fmt;
use std::num::{NonZeroU16, NonZeroU32};

use bytes::{BufMut, Bytes, BytesMut};

use super::read::Reader;
use super::write::{put_prefixed, put_vbi, vbi_len};
use super::{DecodeError, EncodeError, PacketType, QoS};
use crate::text::MqttString;
use crate::topic::TopicName;

/// A User Property: a name and a value, both UTF-8 strings [MQTT-1.5.7-1]. Names may repeat;
/// order is kept.
pub type UserProperty = (MqttString, MqttString);

/// The largest value of a Variable Byte Integer [MQTT-1.5.5-1].
pub const MAX_VBI: u32 = 268_435_455;

/// Where a property block sits: in one of the packets that carry properties, or in the Will
/// Properties of a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyScope {
    /// The properties of a packet of this type.
    Packet(PacketType),
    /// The Will Properties in a CONNECT payload (§3.1.3.2).
    Will,
}

impl PropertyScope {
    /// The packet the block is read from (CONNECT for the Will Properties).
    pub const fn packet(self) -> PacketType {
        match self {
            Self::Packet(p) => p,
            Self::Will => PacketType::Connect,
        }
    }

    /// Bit of this scope in [`PropertyId::scopes`].
    const fn bit(self) -> u16 {
        match self {
            Self::Will => 1,
            Self::Packet(p) => 1 << (p as u8),
        }
    }
}

impl fmt::Display for PropertyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Packet(p) => write!(f, "{p}"),
            Self::Will => f.write_str("CONNECT Will Properties"),
        }
    }
}

/// How a property's value is encoded (§1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyKind {
    /// One byte.
    Byte,
    /// Big-endian u16.
    TwoByteInteger,
    /// Big-endian u32.
    FourByteInteger,
    /// Variable Byte Integer.
    VariableByteInteger,
    /// UTF-8 string.
    Utf8,
    /// Binary Data.
    Binary,
    /// Two UTF-8 strings.
    StringPair,
}

macro_rules! property_ids {
    ($( $variant:ident = $value:literal, $name:literal, $kind:ident, [$($scope:ident),+]; )+) => {
        /// A property identifier of the standard's table (§2.2.2.2).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum PropertyId {
            $( #[doc = concat!("`", stringify!($value), "` ", $name, ".")] $variant = $value, )+
        }

        impl PropertyId {
            /// Every identifier of the table, in byte order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The property for an identifier; `None` for one the standard does not define.
            pub const fn from_u32(id: u32) -> Option<Self> {
                match id {
                    $( $value => Some(Self::$variant), )+
                    _ => None,
                }
            }

            /// The standard's name for the property.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )+
                }
            }

            /// How the value is encoded.
            pub const fn kind(self) -> PropertyKind {
                match self {
                    $( Self::$variant => PropertyKind::$kind, )+
                }
            }

            /// Bit set of the scopes the property may appear in.
            const fn scopes(self) -> u16 {
                match self {
                    $( Self::$variant => 0 $(| scope!($scope))+, )+
                }
            }
        }
    };
}

macro_rules! scope {
    (Will) => {
        PropertyScope::Will.bit()
    };
    ($packet:ident) => {
        PropertyScope::Packet(PacketType::$packet).bit()
    };
}

property_ids! {
    PayloadFormatIndicator = 0x01, "Payload Format Indicator", Byte, [Publish, Will];
    MessageExpiryInterval = 0x02, "Message Expiry Interval", FourByteInteger, [Publish, Will];
    ContentType = 0x03, "Content Type", Utf8, [Publish, Will];
    ResponseTopic = 0x08, "Response Topic", Utf8, [Publish, Will];
    CorrelationData = 0x09, "Correlation Data", Binary, [Publish, Will];
    SubscriptionIdentifier = 0x0B, "Subscription Identifier", VariableByteInteger,
        [Publish, Subscribe];
    SessionExpiryInterval = 0x11, "Session Expiry Interval", FourByteInteger,
        [Connect, ConnAck, Disconnect];
    AssignedClientIdentifier = 0x12, "Assigned Client Identifier", Utf8, [ConnAck];
    ServerKeepAlive = 0x13, "Server Keep Alive", TwoByteInteger, [ConnAck];
    AuthenticationMethod = 0x15, "Authentication Method", Utf8, [Connect, ConnAck, Auth];
    AuthenticationData = 0x16, "Authentication Data", Binary, [Connect, ConnAck, Auth];
    RequestProblemInformation = 0x17, "Request Problem Information", Byte, [Connect];
    WillDelayInterval = 0x18, "Will Delay Interval", FourByteInteger, [Will];
    RequestResponseInformation = 0x19, "Request Response Information", Byte, [Connect];
    ResponseInformation = 0x1A, "Response Information", Utf8, [ConnAck];
    ServerReference = 0x1C, "Server Reference", Utf8, [ConnAck, Disconnect];
    ReasonString = 0x1F, "Reason String", Utf8,
        [ConnAck, PubAck, PubRec, PubRel, PubComp, SubAck, UnsubAck, Disconnect, Auth];
    ReceiveMaximum = 0x21, "Receive Maximum", TwoByteInteger, [Connect, ConnAck];
    TopicAliasMaximum = 0x22, "Topic Alias Maximum", TwoByteInteger, [Connect, ConnAck];
    TopicAlias = 0x23, "Topic Alias", TwoByteInteger, [Publish];
    MaximumQoS = 0x24, "Maximum QoS", Byte, [ConnAck];
    RetainAvailable = 0x25, "Retain Available", Byte, [ConnAck];
    UserProperty = 0x26, "User Property", StringPair,
        [Connect, ConnAck, Publish, Will, PubAck, PubRec, PubRel, PubComp, Subscribe, SubAck,
         Unsubscribe, UnsubAck, Disconnect, Auth];
    MaximumPacketSize = 0x27, "Maximum Packet Size", FourByteInteger, [Connect, ConnAck];
    WildcardSubscriptionAvailable = 0x28, "Wildcard Subscription Available", Byte, [ConnAck];
    SubscriptionIdentifierAvailable = 0x29, "Subscription Identifier Available", Byte,
        [ConnAck];
    SharedSubscriptionAvailable = 0x2A, "Shared Subscription Available", Byte, [ConnAck];
}

impl PropertyId {
    /// Whether the property may appear in `scope`.
    pub const fn allowed_in(self, scope: PropertyScope) -> bool {
        self.scopes() & scope.bit() != 0
    }

    /// Whether the property may appear more than once in `scope`: User Property anywhere,
    /// Subscription Identifier in a PUBLISH (§2.2.2.2, §3.3.2.3.8).
    pub const fn repeatable_in(self, scope: PropertyScope) -> bool {
        match self {
            Self::UserProperty => true,
            Self::SubscriptionIdentifier => {
                matches!(scope, PropertyScope::Packet(PacketType::Publish))
            }
            _ => false,
        }
    }
}

impl fmt::Display for PropertyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.name(), *self as u8)
    }
}

/// The Payload Format Indicator's two values (§3.3.2.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum PayloadFormat {
    /// 0: unspecified bytes (the default).
    #[default]
    Unspecified = 0,
    /// 1: UTF-8 encoded character data [MQTT-3.3.2-4].
    Utf8 = 1,
}

/// A Subscription Identifier: 1 to 268,435,455 (0 is a Protocol Error, §3.8.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(NonZeroU32);

impl SubscriptionId {
    /// The identifier `n`; `None` for 0 and for values above 268,435,455.
    pub const fn new(n: u32) -> Option<Self> {
        if n > MAX_VBI {
            return None;
        }
        match NonZeroU32::new(n) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }

    /// The identifier as a number.
    pub const fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Every property, as read from one block before it is moved into the typed struct of that
/// block. Only the properties the block allows can be set.
#[derive(Default)]
pub(crate) struct Raw {
    payload_format_indicator: Option<PayloadFormat>,
    message_expiry_interval: Option<u32>,
    content_type: Option<MqttString>,
    response_topic: Option<TopicName>,
    correlation_data: Option<Bytes>,
    subscription_identifiers: Vec<SubscriptionId>,
    /// The last of `subscription_identifiers` (SUBSCRIBE allows only one).
    subscription_identifier: Option<SubscriptionId>,
    session_expiry_interval: Option<u32>,
    assigned_client_identifier: Option<MqttString>,
    server_keep_alive: Option<u16>,
    authentication_method: Option<MqttString>,
    authentication_data: Option<Bytes>,
    request_problem_information: Option<bool>,
    will_delay_interval: Option<u32>,
    request_response_information: Option<bool>,
    response_information: Option<MqttString>,
    server_reference: Option<MqttString>,
    reason_string: Option<MqttString>,
    receive_maximum: Option<NonZeroU16>,
    topic_alias_maximum: Option<u16>,
    topic_alias: Option<NonZeroU16>,
    maximum_qos: Option<QoS>,
    retain_available: Option<bool>,
    user_properties: Vec<UserProperty>,
    maximum_packet_size: Option<NonZeroU32>,
    wildcard_subscription_available: Option<bool>,
    subscription_identifier_available: Option<bool>,
    shared_subscription_available: Option<bool>,
}

/// One property value, borrowed, as the encoder walks a block.
pub(crate) enum Prop<'a> {
    Byte(PropertyId, u8),
    Two(PropertyId, u16),
    Four(PropertyId, u32),
    Vbi(PropertyId, u32),
    Str(PropertyId, &'a [u8]),
    Bin(PropertyId, &'a [u8]),
    Pair(&'a [u8], &'a [u8]),
}

impl Prop<'_> {
    /// Encoded size, identifier included (every identifier fits in one byte).
    fn len(&self) -> usize {
        1 + match self {
            Self::Byte(..) => 1,
            Self::Two(..) => 2,
            Self::Four(..) => 4,
            Self::Vbi(_, v) => vbi_len(*v as usize),
            Self::Str(_, s) | Self::Bin(_, s) => 2 + s.len(),
            Self::Pair(k, v) => 4 + k.len() + v.len(),
        }
    }

    fn write(&self, out: &mut BytesMut) {
        match *self {
            Self::Byte(id, v) => {
                out.put_u8(id as u8);
                out.put_u8(v);
            }
            Self::Two(id, v) => {
                out.put_u8(id as u8);
                out.put_u16(v);
            }
            Self::Four(id, v) => {
                out.put_u8(id as u8);
                out.put_u32(v);
            }
            Self::Vbi(id, v) => {
                out.put_u8(id as u8);
                put_vbi(out, v as usize);
            }
            Self::Str(id, s) | Self::Bin(id, s) => {
                out.put_u8(id as u8);
                put_prefixed(out, s);
            }
            Self::Pair(k, v) => {
                out.put_u8(PropertyId::UserProperty as u8);
                put_prefixed(out, k);
                put_prefixed(out, v);
            }
        }
    }
}

/// A field type of a property struct, and how it is written.
trait Emit {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>));
}

impl Emit for Option<u32> {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        if let Some(v) = *self {
            f(Prop::Four(id, v));
        }
    }
}
impl Emit for Option<u16> {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        if let Some(v) = *self {
            f(Prop::Two(id, v));
        }
    }
}
impl Emit for Option<NonZeroU16> {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        if let Some(v) = *self {
            f(Prop::Two(id, v.get()));
        }
    }
}
impl Emit for Option<NonZeroU32> {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        if let Some(v) = *self {
            f(Prop::Four(id, v.get()));
        }
    }
}
impl Emit for Option<bool> {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        if let Some(v) = *self {
            f(Prop::Byte(id, u8::from(v)));
        }
    }
}
impl Emit for Option<PayloadFormat> {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        if let Some(v) = *self {
            f(Prop::Byte(id, v as u8));
        }
    }
}
impl Emit for Option<QoS> {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        if let Some(v) = *self {
            f(Prop::Byte(id, v as u8));
        }
    }
}
impl Emit for Option<MqttString> {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        if let Some(v) = self {
            f(Prop::Str(id, v.as_bytes()));
        }
    }
}
impl Emit for Option<TopicName> {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        if let Some(v) = self {
            f(Prop::Str(id, v.as_str().as_bytes()));
        }
    }
}
impl Emit for Option<Bytes> {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        if let Some(v) = self {
            f(Prop::Bin(id, v));
        }
    }
}
impl Emit for Option<SubscriptionId> {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        if let Some(v) = *self {
            f(Prop::Vbi(id, v.get()));
        }
    }
}
impl Emit for Vec<SubscriptionId> {
    fn emit<'a>(&'a self, id: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        for v in self {
            f(Prop::Vbi(id, v.get()));
        }
    }
}
impl Emit for Vec<UserProperty> {
    fn emit<'a>(&'a self, _: PropertyId, f: &mut dyn FnMut(Prop<'a>)) {
        for (k, v) in self {
            f(Prop::Pair(k.as_bytes(), v.as_bytes()));
        }
    }
}

/// A typed property block: how it is read, walked for encoding, and checked before sending.
pub(crate) trait PropertyBlock: Default + Sized {
    /// Moves the block's properties out of a checked [`Raw`].
    #[doc(hidden)]
    fn from_raw(raw: Raw) -> Self;
    /// Calls `f` with every property present, in the struct's field order, repeated ones in
    /// their order.
    fn each<'a>(&'a self, f: &mut dyn FnMut(Prop<'a>));
    /// Whether no property is present.
    fn is_empty(&self) -> bool;

    /// Length of the properties, without the Property Length field.
    fn properties_len(&self) -> usize {
        let mut len = 0usize;
        self.each(&mut |p| len = len.saturating_add(p.len()));
        len
    }

    /// Length of the Property Length field plus the properties.
    fn encoded_len(&self) -> usize {
        let len = self.properties_len();
        vbi_len(len).saturating_add(len)
    }

    /// Appends the Property Length and the properties.
    fn write(&self, out: &mut BytesMut) {
        put_vbi(out, self.properties_len());
        self.each(&mut |p| p.write(out));
    }

    /// Refuses values a sender must not write: binary values over 65,535 bytes,
    /// Authentication Data without a method, Maximum QoS 2 (the only representable values
    /// out of range).
    fn check(&self, scope: PropertyScope) -> Result<(), EncodeError> {
        let mut result = Ok(());
        let mut method = false;
        let mut data = false;
        self.each(&mut |p| match p {
            Prop::Bin(id, v) if v.len() > usize::from(u16::MAX) && result.is_ok() => {
                result = Err(EncodeError::FieldTooLong {
                    field: id.name(),
                    len: v.len(),
                });
            }
            Prop::Byte(PropertyId::MaximumQoS, v) if v > 1 && result.is_ok() => {
                result = Err(EncodeError::PropertyOutOfRange {
                    scope,
                    property: PropertyId::MaximumQoS,
                    value: u32::from(v),
                    rule: "Maximum QoS is 0 or 1 (§3.2.2.3.4)",
                });
            }
            Prop::Str(PropertyId::AuthenticationMethod, _) => method = true,
            Prop::Bin(PropertyId::AuthenticationData, _) => data = true,
            _ => {}
        });
        result?;
        if data && !method {
            return Err(EncodeError::AuthenticationDataWithoutMethod { scope });
        }
        Ok(())
    }
}

macro_rules! property_block {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident: $ty:ty = $id:ident, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )+
        }

        impl PropertyBlock for $name {
            fn from_raw(raw: Raw) -> Self {
                Self { $( $field: raw.$field, )+ }
            }

            fn each<'a>(&'a self, f: &mut dyn FnMut(Prop<'a>)) {
                $( self.$field.emit(PropertyId::$id, f); )+
            }

            fn is_empty(&self) -> bool {
                *self == Self::default()
            }
        }
    };
}

property_block! {
    /// CONNECT properties (§3.1.2.11).
    pub struct ConnectProperties {
        /// Seconds the session outlives the connection; absent = 0, `u32::MAX` = never
        /// expires [MQTT-3.1.2-23].
        pub session_expiry_interval: Option<u32> = SessionExpiryInterval,
        /// QoS 1/2 publications the client accepts in flight; absent = 65,535.
        pub receive_maximum: Option<NonZeroU16> = ReceiveMaximum,
        /// Largest packet the client accepts; absent = the protocol's limit.
        pub maximum_packet_size: Option<NonZeroU32> = MaximumPacketSize,
        /// Highest Topic Alias the client accepts; absent or 0 = none.
        pub topic_alias_maximum: Option<u16> = TopicAliasMaximum,
        /// Asks for Response Information in CONNACK; absent = false.
        pub request_response_information: Option<bool> = RequestResponseInformation,
        /// Allows Reason String and User Property on every packet; absent = true.
        pub request_problem_information: Option<bool> = RequestProblemInformation,
        /// User properties, in order.
        pub user_properties: Vec<UserProperty> = UserProperty,
        /// Enhanced authentication method.
        pub authentication_method: Option<MqttString> = AuthenticationMethod,
        /// Enhanced authentication data (only with a method).
        pub authentication_data: Option<Bytes> = AuthenticationData,
    }
}

property_block! {
    /// Will Properties, in the CONNECT payload (§3.1.3.2).
    pub struct WillProperties {
        /// Payload format of the will message.
        pub payload_format_indicator: Option<PayloadFormat> = PayloadFormatIndicator,
        /// Lifetime of the will message in seconds.
        pub message_expiry_interval: Option<u32> = MessageExpiryInterval,
        /// Content type of the will message.
        pub content_type: Option<MqttString> = ContentType,
        /// Response topic (a topic name: no wildcards [MQTT-3.3.2-14]).
        pub response_topic: Option<TopicName> = ResponseTopic,
        /// Correlation data.
        pub correlation_data: Option<Bytes> = CorrelationData,
        /// Seconds the server waits before publishing the will; absent = 0.
        pub will_delay_interval: Option<u32> = WillDelayInterval,
        /// User properties, in order.
        pub user_properties: Vec<UserProperty> = UserProperty,
    }
}

property_block! {
    /// PUBLISH properties (§3.3.2.3).
    pub struct PublishProperties {
        /// Payload format; 1 means UTF-8 [MQTT-3.3.2-4].
        pub payload_format_indicator: Option<PayloadFormat> = PayloadFormatIndicator,
        /// Lifetime in seconds (on receipt: the lifetime left).
        pub message_expiry_interval: Option<u32> = MessageExpiryInterval,
        /// Content type [MQTT-3.3.2-19].
        pub content_type: Option<MqttString> = ContentType,
        /// Response topic (no wildcards) [MQTT-3.3.2-13], [MQTT-3.3.2-14].
        pub response_topic: Option<TopicName> = ResponseTopic,
        /// Correlation data.
        pub correlation_data: Option<Bytes> = CorrelationData,
        /// Subscription identifiers of the matching subscriptions (server to client only
        /// [MQTT-3.3.4-6]); may repeat.
        pub subscription_identifiers: Vec<SubscriptionId> = SubscriptionIdentifier,
        /// Topic alias; never 0 [MQTT-3.3.2-8].
        pub topic_alias: Option<NonZeroU16> = TopicAlias,
        /// User properties, in order.
        pub user_properties: Vec<UserProperty> = UserProperty,
    }
}

property_block! {
    /// CONNACK properties (§3.2.2.3).
    pub struct ConnAckProperties {
        /// The session expiry the server uses; overrides the client's.
        pub session_expiry_interval: Option<u32> = SessionExpiryInterval,
        /// Client identifier the server assigned to an empty one [MQTT-3.2.2-16].
        pub assigned_client_identifier: Option<MqttString> = AssignedClientIdentifier,
        /// Keep alive the client must use instead of its own [MQTT-3.2.2-21].
        pub server_keep_alive: Option<u16> = ServerKeepAlive,
        /// Enhanced authentication method (the CONNECT's).
        pub authentication_method: Option<MqttString> = AuthenticationMethod,
        /// Enhanced authentication data.
        pub authentication_data: Option<Bytes> = AuthenticationData,
        /// Response information (§3.2.2.3.15).
        pub response_information: Option<MqttString> = ResponseInformation,
        /// Another server to use (§4.11).
        pub server_reference: Option<MqttString> = ServerReference,
        /// Human-readable diagnostic.
        pub reason_string: Option<MqttString> = ReasonString,
        /// QoS 1/2 publications the server accepts in flight; absent = 65,535.
        pub receive_maximum: Option<NonZeroU16> = ReceiveMaximum,
        /// Highest Topic Alias the server accepts; absent or 0 = none.
        pub topic_alias_maximum: Option<u16> = TopicAliasMaximum,
        /// Highest QoS the server supports: 0 or 1; absent = 2.
        pub maximum_qos: Option<QoS> = MaximumQoS,
        /// Whether retained messages are supported; absent = true.
        pub retain_available: Option<bool> = RetainAvailable,
        /// User properties, in order.
        pub user_properties: Vec<UserProperty> = UserProperty,
        /// Largest packet the server accepts; absent = the protocol's limit.
        pub maximum_packet_size: Option<NonZeroU32> = MaximumPacketSize,
        /// Whether wildcard filters are supported; absent = true.
        pub wildcard_subscription_available: Option<bool> = WildcardSubscriptionAvailable,
        /// Whether subscription identifiers are supported; absent = true.
        pub subscription_identifier_available: Option<bool> = SubscriptionIdentifierAvailable,
        /// Whether shared subscriptions are supported; absent = true.
        pub shared_subscription_available: Option<bool> = SharedSubscriptionAvailable,
    }
}

property_block! {
    /// The properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK: a Reason
    /// String and User Properties.
    pub struct ReasonProperties {
        /// Human-readable diagnostic; not to be parsed.
        pub reason_string: Option<MqttString> = ReasonString,
        /// User properties, in order.
        pub user_properties: Vec<UserProperty> = UserProperty,
    }
}

property_block! {
    /// SUBSCRIBE properties (§3.8.2.1).
    pub struct SubscribeProperties {
        /// Identifier the server attaches to publications matching these filters.
        pub subscription_identifier: Option<SubscriptionId> = SubscriptionIdentifier,
        /// User properties, in order.
        pub user_properties: Vec<UserProperty> = UserProperty,
    }
}

property_block! {
    /// UNSUBSCRIBE properties (§3.10.2.1).
    pub struct UnsubscribeProperties {
        /// User properties, in order.
        pub user_properties: Vec<UserProperty> = UserProperty,
    }
}

property_block! {
    /// DISCONNECT properties (§3.14.2.2).
    pub struct DisconnectProperties {
        /// New session expiry (client only, and not from 0 to non-zero).
        pub session_expiry_interval: Option<u32> = SessionExpiryInterval,
        /// Another server to use (§4.11).
        pub server_reference: Option<MqttString> = ServerReference,
        /// Human-readable diagnostic.
        pub reason_string: Option<MqttString> = ReasonString,
        /// User properties, in order.
        pub user_properties: Vec<UserProperty> = UserProperty,
    }
}

property_block! {
    /// AUTH properties (§3.15.2.2).
    pub struct AuthProperties {
        /// Enhanced authentication method (the CONNECT's [MQTT-4.12.0-5]).
        pub authentication_method: Option<MqttString> = AuthenticationMethod,
        /// Enhanced authentication data.
        pub authentication_data: Option<Bytes> = AuthenticationData,
        /// Human-readable diagnostic.
        pub reason_string: Option<MqttString> = ReasonString,
        /// User properties, in order.
        pub user_properties: Vec<UserProperty> = UserProperty,
    }
}

/// Reads a Property Length and the properties it covers into the block type `T`.
pub(crate) fn read<T: PropertyBlock>(
    r: &mut Reader<Bytes>,
    scope: PropertyScope,
) -> Result<T, DecodeError> {
    let len = r.vbi("property length")?;
    if len == 0 {
        return Ok(T::default());
    }
    let mut block = r.sub(len as usize, "properties")?;
    let mut raw = Raw::default();
    let mut seen = 0u64;
    while !block.is_empty() {
        let id = block.vbi("property identifier")?;
        let property =
            PropertyId::from_u32(id).ok_or(DecodeError::UnknownProperty { scope, id })?;
        if !property.allowed_in(scope) {
            return Err(DecodeError::PropertyNotAllowed { scope, property });
        }
        let bit = 1u64 << (property as u8);
        if seen & bit != 0 && !property.repeatable_in(scope) {
            return Err(DecodeError::DuplicateProperty { scope, property });
        }
        seen |= bit;
        read_value(&mut block, scope, property, &mut raw)?;
    }
    if raw.authentication_data.is_some() && raw.authentication_method.is_none() {
        return Err(DecodeError::AuthenticationDataWithoutMethod { scope });
    }
    Ok(T::from_raw(raw))
}

fn read_value(
    r: &mut Reader<Bytes>,
    scope: PropertyScope,
    property: PropertyId,
    raw: &mut Raw,
) -> Result<(), DecodeError> {
    use PropertyId as P;
    let field = property.name();
    let out_of_range = |value: u32, rule: &'static str| DecodeError::PropertyOutOfRange {
        scope,
        property,
        value,
        rule,
    };
    let flag = |r: &mut Reader<Bytes>, rule| -> Result<bool, DecodeError> {
        match r.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(out_of_range(u32::from(v), rule)),
        }
    };
    match property {
        P::PayloadFormatIndicator => {
            raw.payload_format_indicator = Some(match r.u8(field)? {
                0 => PayloadFormat::Unspecified,
                1 => PayloadFormat::Utf8,
                v => return Err(out_of_range(u32::from(v), "must be 0 or 1 (§3.3.2.3.2)")),
            });
        }
        P::MessageExpiryInterval => raw.message_expiry_interval = Some(r.u32(field)?),
        P::ContentType => raw.content_type = Some(r.string(field)?),
        P::ResponseTopic => raw.response_topic = Some(r.topic_name(field)?),
        P::CorrelationData => raw.correlation_data = Some(r.prefixed(field)?),
        P::SubscriptionIdentifier => {
            let v = r.vbi(field)?;
            let id = SubscriptionId::new(v)
                .ok_or_else(|| out_of_range(v, "must not be 0 (§3.8.2.1.2)"))?;
            raw.subscription_identifiers.push(id);
            raw.subscription_identifier = Some(id);
        }
        P::SessionExpiryInterval => raw.session_expiry_interval = Some(r.u32(field)?),
        P::AssignedClientIdentifier => raw.assigned_client_identifier = Some(r.string(field)?),
        P::ServerKeepAlive => raw.server_keep_alive = Some(r.u16(field)?),
        P::AuthenticationMethod => raw.authentication_method = Some(r.string(field)?),
        P::AuthenticationData => raw.authentication_data = Some(r.prefixed(field)?),
        P::RequestProblemInformation => {
            raw.request_problem_information = Some(flag(r, "must be 0 or 1 (§3.1.2.11.7)")?);
        }
        P::WillDelayInterval => raw.will_delay_interval = Some(r.u32(field)?),
        P::RequestResponseInformation => {
            raw.request_response_information = Some(flag(r, "must be 0 or 1 (§3.1.2.11.6)")?);
        }
        P::ResponseInformation => raw.response_information = Some(r.string(field)?),
        P::ServerReference => raw.server_reference = Some(r.string(field)?),
        P::ReasonString => raw.reason_string = Some(r.string(field)?),
        P::ReceiveMaximum => {
            let v = r.u16(field)?;
            raw.receive_maximum = Some(
                NonZeroU16::new(v).ok_or_else(|| out_of_range(0, "must not be 0 (§3.1.2.11.3)"))?,
            );
        }
        P::TopicAliasMaximum => raw.topic_alias_maximum = Some(r.u16(field)?),
        P::TopicAlias => {
            let v = r.u16(field)?;
            raw.topic_alias = Some(
                NonZeroU16::new(v)
                    .ok_or_else(|| out_of_range(0, "must not be 0 [MQTT-3.3.2-8]"))?,
            );
        }
        P::MaximumQoS => {
            raw.maximum_qos = Some(match r.u8(field)? {
                0 => QoS::AtMostOnce,
                1 => QoS::AtLeastOnce,
                v => return Err(out_of_range(u32::from(v), "must be 0 or 1 (§3.2.2.3.4)")),
            });
        }
        P::RetainAvailable => {
            raw.retain_available = Some(flag(r, "must be 0 or 1 (§3.2.2.3.5)")?);
        }
        P::UserProperty => {
            let name = r.string("User Property name")?;
            let value = r.string("User Property value")?;
            raw.user_properties.push((name, value));
        }
        P::MaximumPacketSize => {
            let v = r.u32(field)?;
            raw.maximum_packet_size = Some(
                NonZeroU32::new(v).ok_or_else(|| out_of_range(0, "must not be 0 (§3.1.2.11.4)"))?,
            );
        }
        P::WildcardSubscriptionAvailable => {
            raw.wildcard_subscription_available = Some(flag(r, "must be 0 or 1 (§3.2.2.3.11)")?);
        }
        P::SubscriptionIdentifierAvailable => {
            raw.subscription_identifier_available = Some(flag(r, "must be 0 or 1 (§3.2.2.3.12)")?);
        }
        P::SharedSubscriptionAvailable => {
            raw.shared_subscription_available = Some(flag(r, "must be 0 or 1 (§3.2.2.3.13)")?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_identifier_of_the_table_is_known_and_nothing_else() {
        assert_eq!(PropertyId::ALL.len(), 27);
        let mut known = 0;
        for id in 0..=0x7f_u32 {
            if let Some(p) = PropertyId::from_u32(id) {
                assert_eq!(p as u32, id);
                known += 1;
            }
        }
        assert_eq!(known, 27);
        assert_eq!(PropertyId::from_u32(0x80), None);
    }

    #[test]
    fn scopes_follow_the_table() {
        use PropertyScope::{Packet as In, Will};
        assert!(PropertyId::WillDelayInterval.allowed_in(Will));
        assert!(!PropertyId::WillDelayInterval.allowed_in(In(PacketType::Connect)));
        assert!(!PropertyId::TopicAlias.allowed_in(Will));
        assert!(PropertyId::ReasonString.allowed_in(In(PacketType::Auth)));
        assert!(!PropertyId::ReasonString.allowed_in(In(PacketType::Publish)));
        assert!(!PropertyId::UserProperty.allowed_in(In(PacketType::PingReq)));
        assert!(PropertyId::SubscriptionIdentifier.repeatable_in(In(PacketType::Publish)));
        assert!(!PropertyId::SubscriptionIdentifier.repeatable_in(In(PacketType::Subscribe)));
    }

    #[test]
    fn subscription_ids_are_1_to_the_vbi_maximum() {
        assert_eq!(SubscriptionId::new(0), None);
        assert_eq!(
            SubscriptionId::new(MAX_VBI).map(SubscriptionId::get),
            Some(MAX_VBI)
        );
        assert_eq!(SubscriptionId::new(MAX_VBI + 1), None);
    }
}
