//! CONNACK [MQTT-3.2].

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::property::{self, ConnAckProperties, PropertyBlock, PropertyScope};
use super::read::Reader;
use super::reason::ConnectReasonCode;
use super::{DecodeError, EncodeError, Packet, PacketType, ProtocolLevel};

/// CONNACK: the server's answer to CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server resumed a stored session (always false in 3.1, where the bit is
    /// reserved).
    pub session_present: bool,
    /// Accepted, or why the connection was refused.
    pub code: ConnectReturnCode,
}

/// CONNACK return code; the values are the seed's reason codes 0..=5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnectReturnCode {
    /// 0: connection accepted.
    Accepted = 0,
    /// 1: the server does not support the requested protocol level.
    UnacceptableProtocolVersion = 1,
    /// 2: the client identifier is not allowed by the server.
    IdentifierRejected = 2,
    /// 3: the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 4: the user name or password is malformed or wrong.
    BadUserNameOrPassword = 4,
    /// 5: the client is not authorized to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for a CONNACK byte; `None` for the reserved values 6..=255.
    pub const fn from_u8(n: u8) -> Option<Self> {
        Some(match n {
            0 => Self::Accepted,
            1 => Self::UnacceptableProtocolVersion,
            2 => Self::IdentifierRejected,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }

    /// A sentence saying what the code means, as mosquitto's clients word it.
    pub const fn description(self) -> &'static str {
        match self {
            Self::Accepted => "connection accepted",
            Self::UnacceptableProtocolVersion => "unacceptable protocol version",
            Self::IdentifierRejected => "identifier rejected",
            Self::ServerUnavailable => "broker unavailable",
            Self::BadUserNameOrPassword => "bad user name or password",
            Self::NotAuthorized => "not authorised",
        }
    }
}

impl fmt::Display for ConnectReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), *self as u8)
    }
}

impl ConnAck {
    /// Decodes a CONNACK body (its size, 2, was checked with the fixed header).
    ///
    /// In 3.1.1 the acknowledge flags may only carry session present [MQTT-3.2.2-1], and a
    /// refusal must not set it [MQTT-3.2.2-4]. In 3.1 the byte is reserved: it is ignored and
    /// `session_present` is false.
    pub(crate) fn decode(mut r: Reader<&[u8]>, level: ProtocolLevel) -> Result<Self, DecodeError> {
        let flags = r.u8("acknowledge flags")?;
        let code_byte = r.u8("return code")?;
        r.finish()?;
        let code = ConnectReturnCode::from_u8(code_byte)
            .ok_or(DecodeError::InvalidConnectReturnCode { code: code_byte })?;
        let session_present = match level {
            ProtocolLevel::V3_1 => false,
            // Level 5 decodes through `ConnAckV5::decode`; the 3.1.1 rule is the same.
            ProtocolLevel::V3_1_1 | ProtocolLevel::V5 => {
                if flags & !SESSION_PRESENT != 0 {
                    return Err(DecodeError::InvalidConnAckFlags { flags });
                }
                flags & SESSION_PRESENT != 0
            }
        };
        if session_present && code != ConnectReturnCode::Accepted {
            return Err(DecodeError::SessionPresentOnRefusal { code: code_byte });
        }
        Ok(Self {
            session_present,
            code,
        })
    }

    /// Refuses session present on a refusal [MQTT-3.2.2-4].
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        if self.session_present && self.code != ConnectReturnCode::Accepted {
            return Err(EncodeError::SessionPresentOnRefusal {
                code: self.code as u8,
            });
        }
        Ok(())
    }

    /// Appends the two-byte body.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        out.put_u8(if self.session_present {
            SESSION_PRESENT
        } else {
            0
        });
        out.put_u8(self.code as u8);
    }
}

/// The only defined acknowledge flag (3.1.1).
const SESSION_PRESENT: u8 = 0b0000_0001;

/// An MQTT 5 CONNACK: session present, a reason code and the server's properties
/// (§3.2.2).
///
/// One with reason Success and no properties is [`Packet::ConnAck`] with
/// [`ConnectReturnCode::Accepted`]; the decoder returns that form for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAckV5 {
    /// Whether the server resumed a stored session; never with a failure code
    /// [MQTT-3.2.2-6].
    pub session_present: bool,
    /// Success, or why the connection was refused.
    pub reason: ConnectReasonCode,
    /// What the server announces (limits, capabilities, assigned id, ...).
    pub properties: ConnAckProperties,
}

impl ConnAckV5 {
    /// Decodes an MQTT 5 CONNACK body: acknowledge flags (bits 7..1 zero [MQTT-3.2.2-1]),
    /// reason code, properties.
    ///
    /// A 3.1.1 server answers an MQTT 5 CONNECT with its own CONNACK: Remaining Length 2,
    /// return code 1. That packet decodes to [`Packet::ConnAck`] with
    /// [`ConnectReturnCode::UnacceptableProtocolVersion`], so the client can report it.
    pub(crate) fn decode(mut r: Reader<Bytes>) -> Result<Packet, DecodeError> {
        if r.remaining() == 2 {
            let body = r.rest();
            if body[..] == [0, ConnectReturnCode::UnacceptableProtocolVersion as u8] {
                return Ok(Packet::ConnAck(ConnAck {
                    session_present: false,
                    code: ConnectReturnCode::UnacceptableProtocolVersion,
                }));
            }
            r = Reader::new(PacketType::ConnAck, body);
        }
        let flags = r.u8("acknowledge flags")?;
        if flags & !SESSION_PRESENT != 0 {
            return Err(DecodeError::InvalidConnAckFlags { flags });
        }
        let code = r.u8("reason code")?;
        let reason = ConnectReasonCode::from_u8(code).ok_or(DecodeError::InvalidReasonCode {
            packet: PacketType::ConnAck,
            code,
        })?;
        let session_present = flags & SESSION_PRESENT != 0;
        if session_present && reason.is_error() {
            return Err(DecodeError::SessionPresentOnRefusal { code });
        }
        let properties = property::read(&mut r, PropertyScope::Packet(PacketType::ConnAck))?;
        r.finish()?;
        let ack = Self {
            session_present,
            reason,
            properties,
        };
        Ok(
            if reason == ConnectReasonCode::Success && ack.properties.is_empty() {
                Packet::ConnAck(ConnAck {
                    session_present,
                    code: ConnectReturnCode::Accepted,
                })
            } else {
                Packet::ConnAckV5(Box::new(ack))
            },
        )
    }

    /// Refuses session present with a failure code [MQTT-3.2.2-6] and bad property values.
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        if self.session_present && self.reason.is_error() {
            return Err(EncodeError::SessionPresentOnRefusal {
                code: self.reason as u8,
            });
        }
        self.properties
            .check(PropertyScope::Packet(PacketType::ConnAck))
    }

    /// Body length.
    pub(crate) fn remaining_len(&self) -> usize {
        2usize.saturating_add(self.properties.encoded_len())
    }

    /// Appends the body.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        out.put_u8(if self.session_present {
            SESSION_PRESENT
        } else {
            0
        });
        out.put_u8(self.reason as u8);
        self.properties.write(out);
    }
}

impl ConnAck {
    /// The MQTT 5 body of the shared form: Accepted as Success without properties;
    /// [`ConnectReturnCode::UnacceptableProtocolVersion`] as the 3.1.1 CONNACK a 3.1.1 server
    /// sends an MQTT 5 client. The other 3.1.1 refusals have no MQTT 5 form (use
    /// [`ConnAckV5`] with a reason code).
    pub(crate) fn check_v5(&self) -> Result<(), EncodeError> {
        match self.code {
            ConnectReturnCode::Accepted | ConnectReturnCode::UnacceptableProtocolVersion => {
                self.check()
            }
            _ => Err(EncodeError::NotInLevel {
                packet: PacketType::ConnAck,
                level: ProtocolLevel::V5,
                what: "3.1.1 return codes 2..5 (use ConnAckV5 with a reason code)",
            }),
        }
    }

    /// Body length at level 5 (see [`ConnAck::check_v5`]).
    pub(crate) fn remaining_len_v5(&self) -> usize {
        match self.code {
            ConnectReturnCode::Accepted => 3,
            _ => 2,
        }
    }

    /// Appends the level-5 body (see [`ConnAck::check_v5`]).
    pub(crate) fn write_v5(&self, out: &mut BytesMut) {
        self.write(out);
        if self.code == ConnectReturnCode::Accepted {
            out.put_u8(0);
        }
    }
}
