//! CONNECT [MQTT-3.1].

use bytes::{BufMut, Bytes, BytesMut};

use super::property::{self, ConnectProperties, PropertyBlock, PropertyScope, WillProperties};
use super::read::Reader;
use super::write::{prefixed_len, put_prefixed};
use super::{DecodeError, EncodeError, PacketType, ProtocolLevel, QoS};
use crate::text::MqttString;
use crate::topic::TopicName;

/// CONNECT: the first packet a client sends on a connection [MQTT-3.1.0-1].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol name and level.
    pub level: ProtocolLevel,
    /// Client identifier; 1..=23 characters in 3.1, possibly empty in 3.1.1 with a clean
    /// session [MQTT-3.1.3-7].
    pub client_id: MqttString,
    /// Keepalive in seconds; 0 turns the mechanism off.
    pub keep_alive: u16,
    /// Clean session flag [MQTT-3.1.2-4], [MQTT-3.1.2-6].
    pub clean_session: bool,
    /// Last will; `None` means the will flag, QoS and retain are all zero [MQTT-3.1.2-11].
    pub will: Option<LastWill>,
    /// User name.
    pub username: Option<MqttString>,
    /// Password: binary data in 3.1.1 and 5, a UTF-8 string in 3.1.
    pub password: Option<Bytes>,
    /// CONNECT properties (MQTT 5 only; empty at the other levels).
    pub properties: ConnectProperties,
}

/// The message the broker publishes when the client disappears without DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Topic the will is published to.
    pub topic: TopicName,
    /// Will payload.
    pub payload: Bytes,
    /// QoS the broker publishes the will with.
    pub qos: QoS,
    /// Whether the broker retains the will.
    pub retain: bool,
    /// Will Properties (MQTT 5 only; empty at the other levels).
    pub properties: WillProperties,
}

const FLAG_RESERVED: u8 = 0b0000_0001;
const FLAG_CLEAN_SESSION: u8 = 0b0000_0010;
const FLAG_WILL: u8 = 0b0000_0100;
const WILL_QOS_SHIFT: u8 = 3;
const FLAG_WILL_RETAIN: u8 = 0b0010_0000;
const FLAG_PASSWORD: u8 = 0b0100_0000;
const FLAG_USERNAME: u8 = 0b1000_0000;

/// Largest binary field (will payload, password) a two-byte length prefix can carry.
const MAX_BINARY_LEN: usize = u16::MAX as usize;

/// Longest MQTT 3.1 client id, in characters.
const V3_1_MAX_CLIENT_ID_CHARS: usize = 23;

impl Connect {
    /// Decodes a CONNECT body. The packet names its own protocol level, so the decoder's
    /// level plays no part.
    ///
    /// Rules a *server* answers with a CONNACK code rather than by closing (an empty 3.1.1
    /// client id without clean session, a 3.1 client id outside 1..=23 characters
    /// [MQTT-3.1.3-8]) are not decode errors: a test broker must see the packet to answer it.
    /// A password without a user name is refused in 3.1.1 [MQTT-3.1.2-22] but accepted in
    /// 3.1, whose spec only recommends against it (mosquitto also lets 3.1 clients through).
    /// The 3.1 password is kept as bytes, not checked as UTF-8.
    pub(crate) fn decode(mut r: Reader<Bytes>) -> Result<Self, DecodeError> {
        let name = r.prefixed("protocol name")?;
        let level_byte = r.u8("protocol level")?;
        let level = match (&name[..], level_byte) {
            (b"MQIsdp", 3) => ProtocolLevel::V3_1,
            (b"MQTT", 4) => ProtocolLevel::V3_1_1,
            (b"MQTT", 5) => ProtocolLevel::V5,
            _ => {
                return Err(DecodeError::UnsupportedProtocol {
                    name: String::from_utf8_lossy(&name).into_owned(),
                    level: level_byte,
                });
            }
        };
        let flags = r.u8("connect flags")?;
        let bad = |reason| Err(DecodeError::InvalidConnectFlags { flags, reason });
        if flags & FLAG_RESERVED != 0 {
            return bad("reserved bit 0 is set [MQTT-3.1.2-3]");
        }
        let will_flag = flags & FLAG_WILL != 0;
        let will_qos_bits = (flags >> WILL_QOS_SHIFT) & 0b11;
        let will_retain = flags & FLAG_WILL_RETAIN != 0;
        if !will_flag && will_qos_bits != 0 {
            return bad("will QoS set without the will flag [MQTT-3.1.2-13]");
        }
        if !will_flag && will_retain {
            return bad("will retain set without the will flag [MQTT-3.1.2-15]");
        }
        let Some(will_qos) = QoS::from_u8(will_qos_bits) else {
            return bad("will QoS 3 [MQTT-3.1.2-14]");
        };
        let has_username = flags & FLAG_USERNAME != 0;
        let has_password = flags & FLAG_PASSWORD != 0;
        // MQTT 5 allows a password without a user name (§3.1.2.9).
        if has_password && !has_username && level == ProtocolLevel::V3_1_1 {
            return bad("password flag set without the user name flag [MQTT-3.1.2-22]");
        }
        let keep_alive = r.u16("keep alive")?;
        let properties = if level.is_v5() {
            property::read(&mut r, PropertyScope::Packet(PacketType::Connect))?
        } else {
            ConnectProperties::default()
        };
        let client_id = r.string("client identifier")?;
        let will = if will_flag {
            let properties = if level.is_v5() {
                property::read(&mut r, PropertyScope::Will)?
            } else {
                WillProperties::default()
            };
            let topic = r.topic_name("will topic")?;
            let payload = r.prefixed("will message")?;
            Some(LastWill {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.string("user name")?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.prefixed("password")?)
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            level,
            client_id,
            keep_alive,
            clean_session: flags & FLAG_CLEAN_SESSION != 0,
            will,
            username,
            password,
            properties,
        })
    }

    /// Checks the rules a client must follow before sending [MQTT-3.1.2-22], [MQTT-3.1.3-7],
    /// the 3.1 client id length, and the binary field limits.
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        match self.level {
            ProtocolLevel::V3_1 => {
                let len = self.client_id.chars().count();
                if !(1..=V3_1_MAX_CLIENT_ID_CHARS).contains(&len) {
                    return Err(EncodeError::ClientIdLength { len });
                }
            }
            ProtocolLevel::V3_1_1 => {
                if self.client_id.is_empty() && !self.clean_session {
                    return Err(EncodeError::EmptyClientIdWithoutCleanSession);
                }
                if self.password.is_some() && self.username.is_none() {
                    return Err(EncodeError::PasswordWithoutUsername);
                }
            }
            ProtocolLevel::V5 => {
                self.properties
                    .check(PropertyScope::Packet(PacketType::Connect))?;
                if let Some(will) = &self.will {
                    will.properties.check(PropertyScope::Will)?;
                }
            }
        }
        if !self.level.is_v5() {
            let will_properties = self.will.as_ref().is_some_and(|w| !w.properties.is_empty());
            if !self.properties.is_empty() || will_properties {
                return Err(EncodeError::NotInLevel {
                    packet: PacketType::Connect,
                    level: self.level,
                    what: "properties",
                });
            }
        }
        if let Some(will) = &self.will
            && will.payload.len() > MAX_BINARY_LEN
        {
            return Err(EncodeError::FieldTooLong {
                field: "will message",
                len: will.payload.len(),
            });
        }
        if let Some(password) = &self.password
            && password.len() > MAX_BINARY_LEN
        {
            return Err(EncodeError::FieldTooLong {
                field: "password",
                len: password.len(),
            });
        }
        Ok(())
    }

    /// Body length.
    pub(crate) fn remaining_len(&self) -> usize {
        let mut len = prefixed_len(self.level.name().len()) + 1 + 1 + 2;
        len += prefixed_len(self.client_id.len());
        if let Some(will) = &self.will {
            len += prefixed_len(will.topic.as_str().len()) + prefixed_len(will.payload.len());
            if self.level.is_v5() {
                len = len.saturating_add(will.properties.encoded_len());
            }
        }
        if self.level.is_v5() {
            len = len.saturating_add(self.properties.encoded_len());
        }
        if let Some(username) = &self.username {
            len += prefixed_len(username.len());
        }
        if let Some(password) = &self.password {
            len += prefixed_len(password.len());
        }
        len
    }

    /// Appends the body; [`Connect::check`] has passed.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        put_prefixed(out, self.level.name().as_bytes());
        out.put_u8(self.level.level());
        let mut flags = 0;
        if self.clean_session {
            flags |= FLAG_CLEAN_SESSION;
        }
        if let Some(will) = &self.will {
            flags |= FLAG_WILL | (will.qos as u8) << WILL_QOS_SHIFT;
            if will.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= FLAG_USERNAME;
        }
        if self.password.is_some() {
            flags |= FLAG_PASSWORD;
        }
        out.put_u8(flags);
        out.put_u16(self.keep_alive);
        if self.level.is_v5() {
            self.properties.write(out);
        }
        put_prefixed(out, self.client_id.as_bytes());
        if let Some(will) = &self.will {
            if self.level.is_v5() {
                will.properties.write(out);
            }
            put_prefixed(out, will.topic.as_str().as_bytes());
            put_prefixed(out, &will.payload);
        }
        if let Some(username) = &self.username {
            put_prefixed(out, username.as_bytes());
        }
        if let Some(password) = &self.password {
            put_prefixed(out, password);
        }
    }
}
