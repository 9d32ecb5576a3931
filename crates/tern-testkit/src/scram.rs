//! An MQTT 5 broker that speaks the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677), for
//! enhanced authentication tests: mosquitto has no SCRAM.
//!
//! The exchange runs over CONNECT → AUTH 0x18 → AUTH 0x18 → CONNACK, and re-authentication
//! over AUTH 0x19 → AUTH 0x18 → AUTH 0x18 → AUTH 0x00, against a user database that holds
//! what a real server stores (salt, iteration count, StoredKey, ServerKey), never passwords.
//! After authentication the broker answers what a test needs to prove the connection works:
//! SUBACK granting every filter, UNSUBACK, PUBACK / PUBREC / PUBCOMP, PINGRESP, and each
//! PUBLISH echoed at QoS 0 to the same connection when one of its filters matches.
//!
//! A refused exchange answers CONNACK with the configured reason code (0x86 Bad User Name or
//! Password by default) and a Reason String, then closes; a refused re-authentication answers
//! DISCONNECT 0x87 Not authorized. [`ScramBrokerConfig::forge_server_signature`] makes the
//! broker send a wrong server signature (a broker that does not know the password), to test
//! the client's mutual authentication ([`ScramBrokerConfig::forge_reauth_signature`]: in
//! re-authentications only). Every exchange is logged as an [`AuthRecord`].
//!
//! ```no_run
//! # async fn demo() {
//! use tern_testkit::{AuthOutcome, ScramBrokerConfig};
//! let broker = ScramBrokerConfig::new().user("alice", "secret").start().await;
//! // ... connect tern with Scram::new("alice", "secret") to broker.port() ...
//! let records = broker.wait_records(1).await;
//! assert_eq!(records[0].outcome, AuthOutcome::Authenticated);
//! # }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};
use ring::rand::SecureRandom as _;
use ring::{digest, hmac, pbkdf2};
use tern_proto::packet::{
    Auth, AuthProperties, AuthReasonCode, ConnAckProperties, ConnAckV5, ConnectReasonCode,
    DisconnectProperties, DisconnectReasonCode, DisconnectV5, Publish, QosPid, ReasonProperties,
    SubAck, SubscribeReturnCode, UnsubAckReasonCode, UnsubAckV5,
};
use tern_proto::{Decoder, MqttString, Packet, ProtocolLevel, TopicFilter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::util::{DEFAULT_WAIT, LOCALHOST};

/// The Authentication Method this broker speaks.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

const KEY_LEN: usize = 32;

/// One user's stored credentials (RFC 5802 §3): salt, iteration count, StoredKey and
/// ServerKey.
#[derive(Clone)]
pub struct ScramUser {
    name: String,
    salt: Vec<u8>,
    iterations: u32,
    stored_key: [u8; KEY_LEN],
    server_key: [u8; KEY_LEN],
}

impl ScramUser {
    /// Derives the stored keys of `name` / `password` with `salt` and `iterations` (the
    /// password is used as given: test credentials are ASCII, where SASLprep changes
    /// nothing). Panics if `iterations` is 0.
    pub fn new(name: &str, password: &str, salt: &[u8], iterations: u32) -> Self {
        let count = std::num::NonZeroU32::new(iterations)
            .unwrap_or_else(|| panic!("ScramUser {name:?}: iteration count 0"));
        let mut salted = [0u8; KEY_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            count,
            salt,
            password.as_bytes(),
            &mut salted,
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&key, b"Client Key");
        let mut stored_key = [0u8; KEY_LEN];
        stored_key.copy_from_slice(digest::digest(&digest::SHA256, client_key.as_ref()).as_ref());
        let mut server_key = [0u8; KEY_LEN];
        server_key.copy_from_slice(hmac::sign(&key, b"Server Key").as_ref());
        Self {
            name: name.to_owned(),
            salt: salt.to_vec(),
            iterations,
            stored_key,
            server_key,
        }
    }

    /// The user name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for ScramUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramUser")
            .field("name", &self.name)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// How a [`ScramBroker`] behaves; [`start`](Self::start) runs it.
#[derive(Debug, Clone)]
pub struct ScramBrokerConfig {
    users: Vec<ScramUser>,
    server_nonce: Option<String>,
    forge_server_signature: bool,
    forge_reauth_signature: bool,
    final_in_auth: bool,
    refusal: ConnectReasonCode,
}

impl Default for ScramBrokerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ScramBrokerConfig {
    /// No users, random server nonces, honest signatures, refusals with 0x86.
    pub fn new() -> Self {
        Self {
            users: Vec::new(),
            server_nonce: None,
            forge_server_signature: false,
            forge_reauth_signature: false,
            final_in_auth: false,
            refusal: ConnectReasonCode::BadUserNameOrPassword,
        }
    }

    /// Adds a user with a random 16-byte salt and 4096 iterations (RFC 7677's minimum).
    pub fn user(self, name: &str, password: &str) -> Self {
        let mut salt = [0u8; 16];
        fill_random(&mut salt);
        self.user_entry(ScramUser::new(name, password, &salt, 4096))
    }

    /// Adds a user with explicit stored credentials.
    pub fn user_entry(mut self, user: ScramUser) -> Self {
        self.users.push(user);
        self
    }

    /// Uses this server nonce part in every exchange instead of a random one (to replay a
    /// published transcript such as RFC 7677's).
    pub fn server_nonce(mut self, nonce: &str) -> Self {
        self.server_nonce = Some(nonce.to_owned());
        self
    }

    /// Sends a wrong server signature in the server-final message: a broker that does not
    /// know the password, which a client doing mutual authentication must refuse.
    pub fn forge_server_signature(mut self) -> Self {
        self.forge_server_signature = true;
        self
    }

    /// Like [`forge_server_signature`](Self::forge_server_signature), in re-authentications
    /// only: the connection is accepted honestly, a later AUTH 0x00 carries a wrong signature.
    pub fn forge_reauth_signature(mut self) -> Self {
        self.forge_reauth_signature = true;
        self
    }

    /// Sends the server-final message of a CONNECT exchange in one more AUTH 0x18 (which the
    /// client answers with an empty AUTH 0x18) and a CONNACK without Authentication Data,
    /// instead of in the CONNACK.
    pub fn server_final_in_auth(mut self) -> Self {
        self.final_in_auth = true;
        self
    }

    /// The CONNACK reason code for a failed exchange (0x86 by default; 0x87 is common too).
    pub fn refusal(mut self, code: ConnectReasonCode) -> Self {
        self.refusal = code;
        self
    }

    /// Listens on 127.0.0.1 (free port) and serves every connection.
    pub async fn start(self) -> ScramBroker {
        let listener = TcpListener::bind((LOCALHOST, 0))
            .await
            .unwrap_or_else(|e| panic!("SCRAM broker cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr of a bound listener failed: {e}"));
        let (tx, log) = watch::channel(Log::default());
        let task = tokio::spawn(accept_loop(listener, Arc::new(self), tx));
        ScramBroker { addr, log, task }
    }
}

/// How one authentication exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthOutcome {
    /// CONNECT exchange succeeded: CONNACK 0x00 sent with the server-final message.
    Authenticated,
    /// Re-authentication succeeded: AUTH 0x00 sent with the server-final message.
    Reauthenticated,
    /// The exchange was refused (CONNACK or DISCONNECT with a reason code); why.
    Refused(String),
}

/// One authentication exchange the broker ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRecord {
    /// Which accepted connection, from 0.
    pub connection: usize,
    /// The user name the client gave (unescaped), if it got that far.
    pub user: Option<String>,
    /// The client's nonce (client-first `r=`), if it got that far.
    pub client_nonce: Option<String>,
    /// How it ended.
    pub outcome: AuthOutcome,
}

/// How a connection to the broker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEnd {
    /// The client sent DISCONNECT with this reason code (a bare DISCONNECT is 0x00).
    ClientDisconnect(DisconnectReasonCode),
    /// The client closed the connection without DISCONNECT (or sent something undecodable).
    ClientClosed,
    /// The broker closed it after refusing an exchange (CONNACK >= 0x80 or DISCONNECT 0x87).
    BrokerClosed,
}

/// What tests query: exchanges, and connection ends by connection index.
#[derive(Debug, Default)]
struct Log {
    records: Vec<AuthRecord>,
    ends: Vec<(usize, ConnectionEnd)>,
}

/// A running SCRAM-SHA-256 broker on 127.0.0.1; stops (closing every connection) when dropped.
#[derive(Debug)]
pub struct ScramBroker {
    addr: SocketAddr,
    log: watch::Receiver<Log>,
    task: JoinHandle<()>,
}

impl ScramBroker {
    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The exchanges so far, in the order they ended.
    pub fn records(&self) -> Vec<AuthRecord> {
        self.log.borrow().records.clone()
    }

    /// Waits (10 s at most, then panics with what was seen) until `n` exchanges ended;
    /// returns them all.
    pub async fn wait_records(&self, n: usize) -> Vec<AuthRecord> {
        let what = format!("{n} SCRAM exchange(s) on the broker at {}", self.addr);
        self.wait(&what, |l| l.records.len() >= n).await;
        self.records()
    }

    /// Waits (10 s at most) until connection `connection` (from 0) has ended; returns how.
    pub async fn wait_end(&self, connection: usize) -> ConnectionEnd {
        let what = format!("connection {connection} to the SCRAM broker to end");
        let find = |l: &Log| {
            l.ends
                .iter()
                .find(|(c, _)| *c == connection)
                .map(|(_, e)| *e)
        };
        self.wait(&what, |l| find(l).is_some()).await;
        find(&self.log.borrow())
            .unwrap_or_else(|| unreachable!("waited until connection {connection} ended"))
    }

    async fn wait(&self, what: &str, pred: impl Fn(&Log) -> bool) {
        let mut rx = self.log.clone();
        let waited = tokio::time::timeout(DEFAULT_WAIT, rx.wait_for(|l| pred(l))).await;
        if waited.is_err() {
            let l = self.log.borrow();
            panic!(
                "timed out after {DEFAULT_WAIT:?} waiting for {what}; exchanges {:?}, ends {:?}",
                l.records, l.ends
            );
        }
    }
}

impl Drop for ScramBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    config: Arc<ScramBrokerConfig>,
    log: watch::Sender<Log>,
) {
    let log = Arc::new(log);
    // Owned here so that aborting this task aborts every connection.
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0.. {
        let Ok((stream, _peer)) = listener.accept().await else {
            return;
        };
        let conn = Conn {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::new(ProtocolLevel::V5, 1 << 20),
            index,
            config: Arc::clone(&config),
            log: Arc::clone(&log),
        };
        tasks.spawn(conn.run());
        // Reap finished connections so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
}

/// A connection step: `Err` ends the connection, saying how.
type Flow<T> = Result<T, ConnectionEnd>;

/// One client connection.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
    index: usize,
    config: Arc<ScramBrokerConfig>,
    log: Arc<watch::Sender<Log>>,
}

impl Conn {
    async fn run(mut self) {
        let end = match self.serve().await {
            Ok(end) | Err(end) => end,
        };
        let index = self.index;
        self.log.send_modify(|l| l.ends.push((index, end)));
    }

    fn record(&self, user: Option<&str>, client_nonce: Option<&str>, outcome: AuthOutcome) {
        let rec = AuthRecord {
            connection: self.index,
            user: user.map(str::to_owned),
            client_nonce: client_nonce.map(str::to_owned),
            outcome,
        };
        self.log.send_modify(|l| l.records.push(rec));
    }

    /// The next packet, `None` when the client closed or sent something undecodable.
    async fn read(&mut self) -> Option<Packet> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(_) => return None,
            }
            match tokio::time::timeout(DEFAULT_WAIT, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    async fn send(&mut self, packet: Packet) -> Flow<()> {
        let mut out = BytesMut::new();
        packet
            .encode_for(ProtocolLevel::V5, &mut out)
            .unwrap_or_else(|e| panic!("SCRAM broker built an unencodable packet: {e}"));
        self.stream
            .write_all(&out)
            .await
            .map_err(|_| ConnectionEnd::ClientClosed)
    }

    /// Refuses the CONNECT exchange and closes.
    async fn refuse(
        &mut self,
        user: Option<&str>,
        client_nonce: Option<&str>,
        code: ConnectReasonCode,
        why: String,
    ) -> ConnectionEnd {
        self.record(user, client_nonce, AuthOutcome::Refused(why.clone()));
        let ack = ConnAckV5 {
            session_present: false,
            reason: code,
            properties: ConnAckProperties {
                reason_string: MqttString::new(&why).ok(),
                ..ConnAckProperties::default()
            },
        };
        let _ = self.send(Packet::ConnAckV5(Box::new(ack))).await;
        let _ = self.stream.shutdown().await;
        ConnectionEnd::BrokerClosed
    }

    fn auth_packet(reason: AuthReasonCode, data: impl Into<Bytes>) -> Packet {
        Packet::Auth(Box::new(Auth {
            reason,
            properties: AuthProperties {
                authentication_method: Some(method()),
                authentication_data: Some(data.into()),
                ..AuthProperties::default()
            },
        }))
    }

    async fn serve(&mut self) -> Flow<ConnectionEnd> {
        let Some(Packet::Connect(connect)) = self.read().await else {
            let why = "first packet not a CONNECT".to_owned();
            self.record(None, None, AuthOutcome::Refused(why));
            return Ok(ConnectionEnd::BrokerClosed);
        };
        if connect.level != ProtocolLevel::V5 {
            let why = "CONNECT below MQTT 5".to_owned();
            self.record(None, None, AuthOutcome::Refused(why));
            return Ok(ConnectionEnd::BrokerClosed);
        }
        let props = &connect.properties;
        if props.authentication_method.as_ref().map(MqttString::as_str) != Some(SCRAM_SHA_256) {
            let why = format!(
                "Authentication Method {:?}, not SCRAM-SHA-256",
                props.authentication_method.as_ref().map(MqttString::as_str)
            );
            let code = ConnectReasonCode::BadAuthenticationMethod;
            return Ok(self.refuse(None, None, code, why).await);
        }
        let client_first = props.authentication_data.clone().unwrap_or_default();
        let pending = match self.server_first(&client_first) {
            Ok(p) => p,
            Err((user, why)) => {
                let code = self.config.refusal;
                return Ok(self.refuse(user.as_deref(), None, code, why).await);
            }
        };
        let (user, cnonce) = (pending.user.name.clone(), pending.client_nonce.clone());
        let challenge = Self::auth_packet(
            AuthReasonCode::ContinueAuthentication,
            pending.server_first.clone(),
        );
        self.send(challenge).await?;
        let client_final = match self.read().await {
            Some(Packet::Auth(a))
                if a.reason == AuthReasonCode::ContinueAuthentication
                    && a.properties.authentication_method == Some(method()) =>
            {
                a.properties.authentication_data.unwrap_or_default()
            }
            other => {
                let why = format!("expected AUTH 0x18 with client-final, got {other:?}");
                let code = ConnectReasonCode::ProtocolError;
                return Ok(self.refuse(Some(&user), Some(&cnonce), code, why).await);
            }
        };
        let forge = self.config.forge_server_signature;
        let server_final = match pending.server_final(&client_final, forge) {
            Ok(f) => f,
            Err(why) => {
                let code = self.config.refusal;
                return Ok(self.refuse(Some(&user), Some(&cnonce), code, why).await);
            }
        };
        let mut connack_data = Some(Bytes::from(server_final));
        if self.config.final_in_auth {
            let data = connack_data.take().unwrap_or_default();
            let last = Self::auth_packet(AuthReasonCode::ContinueAuthentication, data);
            self.send(last).await?;
            match self.read().await {
                Some(Packet::Auth(a))
                    if a.reason == AuthReasonCode::ContinueAuthentication
                        && a.properties.authentication_method == Some(method())
                        && a.properties
                            .authentication_data
                            .as_ref()
                            .is_none_or(Bytes::is_empty) => {}
                other => {
                    let why =
                        format!("expected an empty AUTH 0x18 after server-final, got {other:?}");
                    let code = ConnectReasonCode::ProtocolError;
                    return Ok(self.refuse(Some(&user), Some(&cnonce), code, why).await);
                }
            }
        }
        let ack = ConnAckV5 {
            session_present: false,
            reason: ConnectReasonCode::Success,
            properties: ConnAckProperties {
                authentication_method: Some(method()),
                authentication_data: connack_data,
                ..ConnAckProperties::default()
            },
        };
        self.send(Packet::ConnAckV5(Box::new(ack))).await?;
        self.record(Some(&user), Some(&cnonce), AuthOutcome::Authenticated);
        self.serve_session().await
    }

    /// client-first → server-first (and the state to check client-final).
    fn server_first(&self, client_first: &[u8]) -> Result<Pending, (Option<String>, String)> {
        let nonce = self
            .config
            .server_nonce
            .clone()
            .unwrap_or_else(random_nonce);
        server_first(&self.config.users, client_first, &nonce)
    }

    /// After authentication: plain traffic, and re-authentication alongside it.
    async fn serve_session(&mut self) -> Flow<ConnectionEnd> {
        let mut filters: Vec<TopicFilter> = Vec::new();
        let mut reauth: Option<Pending> = None;
        while let Some(packet) = self.read().await {
            match packet {
                Packet::Publish(p) => self.on_publish(p, &filters).await?,
                Packet::PublishV5(p) => self.on_publish(p.publish, &filters).await?,
                Packet::PubRel(id) => self.send(Packet::PubComp(id)).await?,
                Packet::PubRelV5(ack) => self.send(Packet::PubComp(ack.packet_id)).await?,
                Packet::Subscribe(s) => {
                    let codes = s
                        .filters
                        .iter()
                        .map(|(_, q)| SubscribeReturnCode::Success(*q))
                        .collect();
                    filters.extend(s.filters.into_iter().map(|(f, _)| f));
                    let ack = SubAck {
                        packet_id: s.packet_id,
                        return_codes: codes,
                    };
                    self.send(Packet::SubAck(ack)).await?;
                }
                Packet::SubscribeV5(s) => {
                    let codes = s
                        .filters
                        .iter()
                        .map(|(_, o)| SubscribeReturnCode::Success(o.qos))
                        .collect();
                    filters.extend(s.filters.into_iter().map(|(f, _)| f));
                    let ack = SubAck {
                        packet_id: s.packet_id,
                        return_codes: codes,
                    };
                    self.send(Packet::SubAck(ack)).await?;
                }
                Packet::Unsubscribe(u) => {
                    self.on_unsubscribe(u.packet_id, u.filters, &mut filters)
                        .await?;
                }
                Packet::UnsubscribeV5(u) => {
                    self.on_unsubscribe(u.packet_id, u.filters, &mut filters)
                        .await?;
                }
                Packet::PingReq => self.send(Packet::PingResp).await?,
                Packet::Disconnect => {
                    return Ok(ConnectionEnd::ClientDisconnect(
                        DisconnectReasonCode::NormalDisconnection,
                    ));
                }
                Packet::DisconnectV5(d) => return Ok(ConnectionEnd::ClientDisconnect(d.reason)),
                Packet::Auth(a) => {
                    reauth = self.on_reauth(*a, reauth.take()).await?;
                }
                // Acks of our QoS 0 echoes cannot come; anything else is ignored.
                _ => {}
            }
        }
        Ok(ConnectionEnd::ClientClosed)
    }

    async fn on_publish(&mut self, p: Publish, filters: &[TopicFilter]) -> Flow<()> {
        match p.qos_pid {
            QosPid::AtMostOnce => {}
            QosPid::AtLeastOnce(id) => self.send(Packet::PubAck(id)).await?,
            QosPid::ExactlyOnce(id) => self.send(Packet::PubRec(id)).await?,
        }
        if filters.iter().any(|f| f.matches(&p.topic)) {
            let echo = Publish {
                dup: false,
                qos_pid: QosPid::AtMostOnce,
                retain: false,
                topic: p.topic,
                payload: p.payload,
            };
            self.send(Packet::Publish(echo)).await?;
        }
        Ok(())
    }

    async fn on_unsubscribe(
        &mut self,
        packet_id: tern_proto::PacketId,
        gone: Vec<TopicFilter>,
        filters: &mut Vec<TopicFilter>,
    ) -> Flow<()> {
        let reason_codes = gone
            .iter()
            .map(|g| {
                let before = filters.len();
                filters.retain(|f| f != g);
                if filters.len() < before {
                    UnsubAckReasonCode::Success
                } else {
                    UnsubAckReasonCode::NoSubscriptionExisted
                }
            })
            .collect();
        let ack = UnsubAckV5 {
            packet_id,
            reason_codes,
            properties: ReasonProperties::default(),
        };
        self.send(Packet::UnsubAckV5(Box::new(ack))).await
    }

    /// One AUTH during the session: 0x19 starts a re-authentication, 0x18 finishes one.
    async fn on_reauth(&mut self, auth: Auth, pending: Option<Pending>) -> Flow<Option<Pending>> {
        let user = pending.as_ref().map(|p| p.user.name.clone());
        let cnonce = pending.as_ref().map(|p| p.client_nonce.clone());
        let data = auth
            .properties
            .authentication_data
            .clone()
            .unwrap_or_default();
        let why: String = if auth.properties.authentication_method != Some(method()) {
            "re-authentication with another Authentication Method".to_owned()
        } else {
            match (auth.reason, pending) {
                (AuthReasonCode::ReAuthenticate, None) => match self.server_first(&data) {
                    Ok(p) => {
                        let first = p.server_first.clone();
                        let challenge =
                            Self::auth_packet(AuthReasonCode::ContinueAuthentication, first);
                        self.send(challenge).await?;
                        return Ok(Some(p));
                    }
                    Err((_, why)) => why,
                },
                (AuthReasonCode::ContinueAuthentication, Some(p)) => {
                    let forge =
                        self.config.forge_server_signature || self.config.forge_reauth_signature;
                    match p.server_final(&data, forge) {
                        Ok(fin) => {
                            self.send(Self::auth_packet(AuthReasonCode::Success, fin))
                                .await?;
                            let outcome = AuthOutcome::Reauthenticated;
                            self.record(Some(&p.user.name), Some(&p.client_nonce), outcome);
                            return Ok(None);
                        }
                        Err(why) => why,
                    }
                }
                (reason, _) => format!("AUTH {reason:?} out of order"),
            }
        };
        let outcome = AuthOutcome::Refused(why.clone());
        self.record(user.as_deref(), cnonce.as_deref(), outcome);
        let dis = DisconnectV5 {
            reason: DisconnectReasonCode::NotAuthorized,
            properties: DisconnectProperties {
                reason_string: MqttString::new(&why).ok(),
                ..DisconnectProperties::default()
            },
        };
        let _ = self.send(Packet::DisconnectV5(Box::new(dis))).await;
        let _ = self.stream.shutdown().await;
        Err(ConnectionEnd::BrokerClosed)
    }
}

fn method() -> MqttString {
    MqttString::from_static(SCRAM_SHA_256)
        .unwrap_or_else(|e| unreachable!("SCRAM-SHA-256 is a valid MQTT string: {e}"))
}

fn fill_random(buf: &mut [u8]) {
    ring::rand::SystemRandom::new()
        .fill(buf)
        .unwrap_or_else(|_| panic!("the system random number generator failed"));
}

fn random_nonce() -> String {
    let mut b = [0u8; 18];
    fill_random(&mut b);
    BASE64.encode(b)
}

/// A server exchange after server-first: what client-final is checked against.
#[derive(Debug)]
struct Pending {
    user: ScramUser,
    /// The GS2 header the client sent, which `c=` must repeat (base64).
    gs2_header: String,
    client_nonce: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// Parses client-first and builds server-first (RFC 5802 §5, §7). On refusal: the user
/// name if it was read, and why.
fn server_first(
    users: &[ScramUser],
    client_first: &[u8],
    server_nonce: &str,
) -> Result<Pending, (Option<String>, String)> {
    let refuse = |why: &str| (None, why.to_owned());
    let text = std::str::from_utf8(client_first).map_err(|_| refuse("client-first not UTF-8"))?;
    // gs2-header = cbind-flag "," [authzid] ","
    let mut parts = text.splitn(3, ',');
    let (Some(cbind), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse("client-first has no GS2 header"));
    };
    match cbind {
        "n" | "y" => {}
        c if c.starts_with("p=") => return Err(refuse("channel binding is not supported")),
        _ => return Err(refuse("client-first has a bad channel binding flag")),
    }
    if !authzid.is_empty() {
        return Err(refuse("authorization identities are not supported"));
    }
    let attrs = attributes(bare).map_err(|w| (None, w))?;
    let (Some(('n', name)), Some(('r', client_nonce))) = (attrs.first(), attrs.get(1)) else {
        return Err(refuse("client-first must start n=user,r=nonce"));
    };
    let name = unescape(name).ok_or_else(|| refuse("bad escape in user name"))?;
    if client_nonce.is_empty() || client_nonce.contains(|c: char| !('!'..='~').contains(&c)) {
        return Err((Some(name), "bad client nonce".to_owned()));
    }
    let Some(user) = users.iter().find(|u| u.name == name) else {
        return Err((Some(name.clone()), format!("unknown user {name:?}")));
    };
    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!(
        "r={nonce},s={},i={}",
        BASE64.encode(&user.salt),
        user.iterations
    );
    Ok(Pending {
        user: user.clone(),
        gs2_header: format!("{cbind},{authzid},"),
        client_nonce: (*client_nonce).to_owned(),
        client_first_bare: bare.to_owned(),
        server_first,
        nonce,
    })
}

impl Pending {
    /// Checks client-final (channel binding, nonce, proof) and builds server-final; on
    /// refusal, why.
    fn server_final(&self, client_final: &[u8], forge: bool) -> Result<String, String> {
        let text =
            std::str::from_utf8(client_final).map_err(|_| "client-final not UTF-8".to_owned())?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| "client-final has no proof".to_owned())?;
        let attrs = attributes(without_proof)?;
        let (Some(('c', cbind)), Some(('r', nonce))) = (attrs.first(), attrs.get(1)) else {
            return Err("client-final must start c=…,r=…".to_owned());
        };
        if *cbind != BASE64.encode(&self.gs2_header) {
            return Err("channel binding data does not match the GS2 header".to_owned());
        }
        if *nonce != self.nonce {
            return Err("nonce does not match".to_owned());
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|e| format!("proof is not base64: {e}"))?;
        if proof.len() != KEY_LEN {
            return Err("proof has the wrong length".to_owned());
        }
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let client_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &self.user.stored_key),
            auth_message.as_bytes(),
        );
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature.as_ref())
            .map(|(p, s)| p ^ s)
            .collect();
        if digest::digest(&digest::SHA256, &client_key).as_ref() != self.user.stored_key {
            return Err("invalid proof (wrong password)".to_owned());
        }
        let mut signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &self.user.server_key),
            auth_message.as_bytes(),
        )
        .as_ref()
        .to_vec();
        if forge {
            signature.iter_mut().for_each(|b| *b ^= 0x5A);
        }
        Ok(format!("v={}", BASE64.encode(signature)))
    }
}

/// `a=value` pairs.
fn attributes(msg: &str) -> Result<Vec<(char, &str)>, String> {
    msg.split(',')
        .map(|part| match part.as_bytes() {
            [n, b'=', ..] if n.is_ascii_alphabetic() => Ok((char::from(*n), &part[2..])),
            _ => Err(format!("malformed attribute {part:?}")),
        })
        .collect()
}

/// `saslname` → name: `=3D` → `=`, `=2C` → `,`; any other `=` is invalid.
fn unescape(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "3D" => '=',
            "2C" => ',',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    /// RFC 7677 §3.
    fn rfc_user() -> ScramUser {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        ScramUser::new("user", "pencil", &salt, 4096)
    }

    #[test]
    fn rfc_7677_test_vector_server_side() {
        let users = [rfc_user()];
        let p = server_first(
            &users,
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )
        .unwrap();
        assert_eq!(
            p.server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let fin = p
            .server_final(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                false,
            )
            .unwrap();
        assert_eq!(fin, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        let forged = p
            .server_final(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                true,
            )
            .unwrap();
        assert_ne!(forged, fin);
    }

    #[test]
    fn wrong_proofs_nonces_and_users_are_refused() {
        let users = [rfc_user()];
        let p = server_first(&users, b"n,,n=user,r=abc", "XYZ").unwrap();
        let bad_proof = format!("c=biws,r=abcXYZ,p={}", BASE64.encode([1u8; 32]));
        assert!(
            p.server_final(bad_proof.as_bytes(), false)
                .unwrap_err()
                .contains("invalid proof")
        );
        let bad_nonce = format!("c=biws,r=abcXYQ,p={}", BASE64.encode([1u8; 32]));
        assert!(
            p.server_final(bad_nonce.as_bytes(), false)
                .unwrap_err()
                .contains("nonce")
        );
        let bad_cb = format!("c=eSws,r=abcXYZ,p={}", BASE64.encode([1u8; 32]));
        assert!(
            p.server_final(bad_cb.as_bytes(), false)
                .unwrap_err()
                .contains("channel binding")
        );
        let (user, why) = server_first(&users, b"n,,n=eve,r=abc", "XYZ").unwrap_err();
        assert_eq!(
            (user.as_deref(), why.contains("unknown user")),
            (Some("eve"), true)
        );
        assert!(server_first(&users, b"p=tls-unique,,n=user,r=a", "X").is_err());
        assert!(server_first(&users, b"n,a=admin,n=user,r=a", "X").is_err());
        assert!(server_first(&users, b"n,,r=a", "X").is_err());
        assert!(server_first(&users, b"", "X").is_err());
    }

    #[test]
    fn user_names_are_unescaped() {
        assert_eq!(unescape("a=3Db=2Cc").as_deref(), Some("a=b,c"));
        assert_eq!(unescape("plain").as_deref(), Some("plain"));
        assert_eq!(unescape("a=4Db"), None);
        assert_eq!(unescape("a="), None);
    }
}
