//! MQTT 5.0 reason codes, one enum per packet family with the codes the standard allows in it
//! (§2.4, and the tables of §3.2.2.2 to §3.15.2.1). A code outside a packet's table is a
//! [`super::DecodeError::InvalidReasonCode`] naming the packet and its rule.

use std::fmt;

/// Defines a reason-code enum: variants with their byte and the standard's name for them,
/// `from_u8` (only the codes of the table), `name`, `is_error` (0x80 and above) and
/// `Display` as `name (0xNN)`.
macro_rules! reason_codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        $vis enum $name {
            $( $(#[$vmeta])* #[doc = concat!("`", stringify!($value), "` ", $text, ".")] $variant = $value, )+
        }

        impl $name {
            /// Every code of the table, in byte order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The code for a byte; `None` for a byte this packet may not carry.
            pub const fn from_u8(byte: u8) -> Option<Self> {
                match byte {
                    $( $value => Some(Self::$variant), )+
                    _ => None,
                }
            }

            /// The byte on the wire.
            pub const fn to_u8(self) -> u8 {
                self as u8
            }

            /// The standard's name for the code.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }

            /// Whether the code reports a failure (0x80 and above).
            pub const fn is_error(self) -> bool {
                (self as u8) >= 0x80
            }
        }

        impl Code for $name {
            const SUCCESS: Self = match Self::from_u8(0) {
                Some(code) => code,
                None => panic!("every reason-code table lists 0x00"),
            };
            fn from_byte(byte: u8) -> Option<Self> {
                Self::from_u8(byte)
            }
            fn byte(self) -> u8 {
                self as u8
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} ({:#04x})", self.name(), *self as u8)
            }
        }
    };
}

/// What every reason-code table offers: its Success code (0x00) and the byte mapping.
pub trait Code: Copy + PartialEq {
    /// 0x00: Success, Normal disconnection or Granted QoS 0.
    const SUCCESS: Self;
    /// The code for a byte, if the table lists it.
    fn from_byte(byte: u8) -> Option<Self>;
    /// The byte on the wire.
    fn byte(self) -> u8;
}

reason_codes! {
    /// CONNACK reason code [MQTT-3.2.2-8].
    pub enum ConnectReasonCode {
        Success = 0x00 => "Success",
        UnspecifiedError = 0x80 => "Unspecified error",
        MalformedPacket = 0x81 => "Malformed Packet",
        ProtocolError = 0x82 => "Protocol Error",
        ImplementationSpecificError = 0x83 => "Implementation specific error",
        UnsupportedProtocolVersion = 0x84 => "Unsupported Protocol Version",
        ClientIdentifierNotValid = 0x85 => "Client Identifier not valid",
        BadUserNameOrPassword = 0x86 => "Bad User Name or Password",
        NotAuthorized = 0x87 => "Not authorized",
        ServerUnavailable = 0x88 => "Server unavailable",
        ServerBusy = 0x89 => "Server busy",
        Banned = 0x8A => "Banned",
        BadAuthenticationMethod = 0x8C => "Bad authentication method",
        TopicNameInvalid = 0x90 => "Topic Name invalid",
        PacketTooLarge = 0x95 => "Packet too large",
        QuotaExceeded = 0x97 => "Quota exceeded",
        PayloadFormatInvalid = 0x99 => "Payload format invalid",
        RetainNotSupported = 0x9A => "Retain not supported",
        QoSNotSupported = 0x9B => "QoS not supported",
        UseAnotherServer = 0x9C => "Use another server",
        ServerMoved = 0x9D => "Server moved",
        ConnectionRateExceeded = 0x9F => "Connection rate exceeded",
    }
}

reason_codes! {
    /// PUBACK and PUBREC reason code [MQTT-3.4.2-1], [MQTT-3.5.2-1].
    pub enum PubAckReasonCode {
        Success = 0x00 => "Success",
        NoMatchingSubscribers = 0x10 => "No matching subscribers",
        UnspecifiedError = 0x80 => "Unspecified error",
        ImplementationSpecificError = 0x83 => "Implementation specific error",
        NotAuthorized = 0x87 => "Not authorized",
        TopicNameInvalid = 0x90 => "Topic Name invalid",
        PacketIdentifierInUse = 0x91 => "Packet Identifier in use",
        QuotaExceeded = 0x97 => "Quota exceeded",
        PayloadFormatInvalid = 0x99 => "Payload format invalid",
    }
}

/// PUBREC reason code: the same table as PUBACK's [MQTT-3.5.2-1].
pub type PubRecReasonCode = PubAckReasonCode;

reason_codes! {
    /// PUBREL and PUBCOMP reason code [MQTT-3.6.2-1], [MQTT-3.7.2-1].
    pub enum PubRelReasonCode {
        Success = 0x00 => "Success",
        PacketIdentifierNotFound = 0x92 => "Packet Identifier not found",
    }
}

/// PUBCOMP reason code: the same table as PUBREL's [MQTT-3.7.2-1].
pub type PubCompReasonCode = PubRelReasonCode;

reason_codes! {
    /// SUBACK reason code, one per filter [MQTT-3.9.3-2].
    pub enum SubAckReasonCode {
        GrantedQoS0 = 0x00 => "Granted QoS 0",
        GrantedQoS1 = 0x01 => "Granted QoS 1",
        GrantedQoS2 = 0x02 => "Granted QoS 2",
        UnspecifiedError = 0x80 => "Unspecified error",
        ImplementationSpecificError = 0x83 => "Implementation specific error",
        NotAuthorized = 0x87 => "Not authorized",
        TopicFilterInvalid = 0x8F => "Topic Filter invalid",
        PacketIdentifierInUse = 0x91 => "Packet Identifier in use",
        QuotaExceeded = 0x97 => "Quota exceeded",
        SharedSubscriptionsNotSupported = 0x9E => "Shared Subscriptions not supported",
        SubscriptionIdentifiersNotSupported = 0xA1 => "Subscription Identifiers not supported",
        WildcardSubscriptionsNotSupported = 0xA2 => "Wildcard Subscriptions not supported",
    }
}

reason_codes! {
    /// UNSUBACK reason code, one per filter [MQTT-3.11.3-2].
    pub enum UnsubAckReasonCode {
        Success = 0x00 => "Success",
        NoSubscriptionExisted = 0x11 => "No subscription existed",
        UnspecifiedError = 0x80 => "Unspecified error",
        ImplementationSpecificError = 0x83 => "Implementation specific error",
        NotAuthorized = 0x87 => "Not authorized",
        TopicFilterInvalid = 0x8F => "Topic Filter invalid",
        PacketIdentifierInUse = 0x91 => "Packet Identifier in use",
    }
}

reason_codes! {
    /// DISCONNECT reason code, either direction [MQTT-3.14.2-1].
    pub enum DisconnectReasonCode {
        NormalDisconnection = 0x00 => "Normal disconnection",
        DisconnectWithWillMessage = 0x04 => "Disconnect with Will Message",
        UnspecifiedError = 0x80 => "Unspecified error",
        MalformedPacket = 0x81 => "Malformed Packet",
        ProtocolError = 0x82 => "Protocol Error",
        ImplementationSpecificError = 0x83 => "Implementation specific error",
        NotAuthorized = 0x87 => "Not authorized",
        ServerBusy = 0x89 => "Server busy",
        ServerShuttingDown = 0x8B => "Server shutting down",
        KeepAliveTimeout = 0x8D => "Keep Alive timeout",
        SessionTakenOver = 0x8E => "Session taken over",
        TopicFilterInvalid = 0x8F => "Topic Filter invalid",
        TopicNameInvalid = 0x90 => "Topic Name invalid",
        ReceiveMaximumExceeded = 0x93 => "Receive Maximum exceeded",
        TopicAliasInvalid = 0x94 => "Topic Alias invalid",
        PacketTooLarge = 0x95 => "Packet too large",
        MessageRateTooHigh = 0x96 => "Message rate too high",
        QuotaExceeded = 0x97 => "Quota exceeded",
        AdministrativeAction = 0x98 => "Administrative action",
        PayloadFormatInvalid = 0x99 => "Payload format invalid",
        RetainNotSupported = 0x9A => "Retain not supported",
        QoSNotSupported = 0x9B => "QoS not supported",
        UseAnotherServer = 0x9C => "Use another server",
        ServerMoved = 0x9D => "Server moved",
        SharedSubscriptionsNotSupported = 0x9E => "Shared Subscriptions not supported",
        ConnectionRateExceeded = 0x9F => "Connection rate exceeded",
        MaximumConnectTime = 0xA0 => "Maximum connect time",
        SubscriptionIdentifiersNotSupported = 0xA1 => "Subscription Identifiers not supported",
        WildcardSubscriptionsNotSupported = 0xA2 => "Wildcard Subscriptions not supported",
    }
}

reason_codes! {
    /// AUTH reason code [MQTT-3.15.2-1].
    pub enum AuthReasonCode {
        Success = 0x00 => "Success",
        ContinueAuthentication = 0x18 => "Continue authentication",
        ReAuthenticate = 0x19 => "Re-authenticate",
    }
}

impl SubAckReasonCode {
    /// The QoS granted, `None` for a failure.
    pub const fn granted_qos(self) -> Option<super::QoS> {
        match self {
            Self::GrantedQoS0 => Some(super::QoS::AtMostOnce),
            Self::GrantedQoS1 => Some(super::QoS::AtLeastOnce),
            Self::GrantedQoS2 => Some(super::QoS::ExactlyOnce),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table agrees with itself: each byte it lists maps back to its code, every other
    /// byte is refused, and `is_error` is the 0x80 boundary.
    #[test]
    fn tables_map_bytes_both_ways() {
        fn check<T: Copy + PartialEq + fmt::Debug>(
            all: &[T],
            from: fn(u8) -> Option<T>,
            to: fn(T) -> u8,
        ) {
            let mut listed = 0;
            for byte in 0..=u8::MAX {
                match from(byte) {
                    Some(code) => {
                        assert_eq!(to(code), byte);
                        assert!(all.contains(&code));
                        listed += 1;
                    }
                    None => assert!(all.iter().all(|&c| to(c) != byte)),
                }
            }
            assert_eq!(listed, all.len());
        }
        check(
            ConnectReasonCode::ALL,
            ConnectReasonCode::from_u8,
            ConnectReasonCode::to_u8,
        );
        check(
            PubAckReasonCode::ALL,
            PubAckReasonCode::from_u8,
            PubAckReasonCode::to_u8,
        );
        check(
            PubRelReasonCode::ALL,
            PubRelReasonCode::from_u8,
            PubRelReasonCode::to_u8,
        );
        check(
            SubAckReasonCode::ALL,
            SubAckReasonCode::from_u8,
            SubAckReasonCode::to_u8,
        );
        check(
            UnsubAckReasonCode::ALL,
            UnsubAckReasonCode::from_u8,
            UnsubAckReasonCode::to_u8,
        );
        check(
            DisconnectReasonCode::ALL,
            DisconnectReasonCode::from_u8,
            DisconnectReasonCode::to_u8,
        );
        check(
            AuthReasonCode::ALL,
            AuthReasonCode::from_u8,
            AuthReasonCode::to_u8,
        );
        assert_eq!(ConnectReasonCode::ALL.len(), 22);
        assert_eq!(DisconnectReasonCode::ALL.len(), 29);
        assert_eq!(SubAckReasonCode::ALL.len(), 12);
    }

    #[test]
    fn codes_display_their_names() {
        assert_eq!(
            PubAckReasonCode::NoMatchingSubscribers.to_string(),
            "No matching subscribers (0x10)"
        );
        assert_eq!(
            DisconnectReasonCode::TopicAliasInvalid.to_string(),
            "Topic Alias invalid (0x94)"
        );
        assert!(ConnectReasonCode::Banned.is_error());
        assert!(!SubAckReasonCode::GrantedQoS2.is_error());
    }
}
