//! CONNACK [MQTT-3.2].

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::read::Reader;
use super::{DecodeError, EncodeError, ProtocolLevel};

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
            ProtocolLevel::V3_1_1 => {
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
