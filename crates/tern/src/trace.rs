//! Tracing of connections and packets, for debugging, through the `tracing` crate.
//!
//! Two targets, both at `DEBUG` level:
//!
//! - [`CONNECT_TARGET`] (`tern::connect`): each step of a connection attempt: the DNS
//!   result, TCP connected (or why not), the SOCKS5 proxy, the TLS handshake with protocol
//!   version, cipher suite and the broker certificate's subject, the WebSocket upgrade.
//! - [`PACKET_TARGET`] (`tern::packet`): every MQTT packet written to or read from the
//!   connection, with its packet id, QoS, DUP and retain flags, topic, payload and packet
//!   lengths and return codes, e.g. `sending PUBLISH (d0, q2, r0, m1, 'a/b', ... (5 bytes))`
//!   then `received PUBREC (m1)`, `sending PUBREL (m1)`, `received PUBCOMP (m1)`.
//!
//! Packets are traced as they cross the socket (not as they are queued), so nothing is
//! reported sent on a connection that was never made. Passwords, will payloads and message
//! payloads are never shown (only their lengths). The packet trace costs nothing unless
//! `tern::packet` is enabled when the connection opens.
//!
//! ```no_run
//! // Cargo.toml: tracing-subscriber = { version = "0.3", features = ["env-filter"] }
//! // then run with RUST_LOG=tern::packet=debug,tern::connect=debug
//! tracing_subscriber::fmt()
//!     .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
//!     .with_writer(std::io::stderr)
//!     .init();
//! ```

use std::fmt::{self, Write as _};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tern_proto::packet::MAX_REMAINING_LENGTH;
use tern_proto::{Decoder, Packet, ProtocolLevel};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The `tracing` target of connection steps.
pub const CONNECT_TARGET: &str = "tern::connect";

/// The `tracing` target of packets sent and received.
pub const PACKET_TARGET: &str = "tern::packet";

/// Whether packets are traced (checked once per connection).
pub(crate) fn packets_enabled() -> bool {
    tracing::enabled!(target: PACKET_TARGET, tracing::Level::DEBUG)
}

/// A stream that reports every packet written to or read from it on [`PACKET_TARGET`].
pub(crate) struct Traced<S> {
    inner: S,
    sent: Direction,
    received: Direction,
}

impl<S> Traced<S> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            sent: Direction::new("sending"),
            received: Direction::new("received"),
        }
    }

    /// The wrapped stream.
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Traced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let level = this.sent.level;
            this.received.feed(&buf.filled()[before..], level);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Traced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            let level = this.sent.level;
            this.sent.feed(&buf[..n.min(buf.len())], level);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Largest PUBLISH prefix kept to describe it (fixed header, topic, packet id); the payload
/// beyond is counted, not buffered.
const PUBLISH_PREFIX: usize = 5 + 2 + 65_535 + 2;

/// One direction's reassembly of packets from the bytes that crossed the socket.
struct Direction {
    verb: &'static str,
    /// The protocol level of the connection (from the CONNECT sent), for CONNACK/SUBACK.
    level: ProtocolLevel,
    /// The start of the current packet.
    buf: BytesMut,
    /// Payload bytes of an already reported PUBLISH still to pass.
    skip: usize,
    /// Set after undecodable bytes: the rest of this direction is not traced.
    broken: bool,
}

impl Direction {
    fn new(verb: &'static str) -> Self {
        Self {
            verb,
            level: ProtocolLevel::V3_1_1,
            buf: BytesMut::new(),
            skip: 0,
            broken: false,
        }
    }

    fn feed(&mut self, mut bytes: &[u8], level: ProtocolLevel) {
        while !bytes.is_empty() && !self.broken {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            // Take at most what the current packet (or its described prefix) needs: byte by
            // byte until its fixed header is complete.
            let want = self
                .wanted()
                .map_or(1, |w| w.saturating_sub(self.buf.len()).max(1));
            let n = want.min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.try_report(level);
        }
    }

    /// Bytes of the current packet to collect before describing it, once the fixed header
    /// is complete.
    fn wanted(&self) -> Option<usize> {
        let (header_len, remaining) = fixed_header(&self.buf)?;
        let total = header_len + remaining;
        if self.buf.first().is_some_and(|b| b >> 4 == 3) {
            Some(total.min(PUBLISH_PREFIX))
        } else {
            Some(total)
        }
    }

    fn try_report(&mut self, level: ProtocolLevel) {
        let Some((header_len, remaining)) = fixed_header(&self.buf) else {
            if self.buf.len() >= 5 {
                self.fail("an invalid remaining length");
            }
            return;
        };
        let total = header_len + remaining;
        let first = self.buf[0];
        if first >> 4 == 3 {
            if let Some(line) = describe_publish(first, &self.buf[header_len..], remaining, level) {
                tracing::debug!(target: PACKET_TARGET, "{} {line}", self.verb);
                self.skip = total - self.buf.len().min(total);
                self.buf.clear();
            } else if self.buf.len() >= total.min(PUBLISH_PREFIX) {
                self.fail("a malformed PUBLISH");
            }
            return;
        }
        if self.buf.len() < total {
            return;
        }
        let mut decoder = Decoder::new(level, MAX_REMAINING_LENGTH + 5);
        match decoder.decode(&mut self.buf) {
            Ok(Some(packet)) => {
                if let Packet::Connect(c) = &packet {
                    self.level = c.level;
                }
                tracing::debug!(target: PACKET_TARGET, "{} {} [{total} bytes]", self.verb, Describe(&packet));
            }
            Ok(None) => {}
            Err(e) => self.fail(&e.to_string()),
        }
        self.buf.clear();
    }

    fn fail(&mut self, what: &str) {
        tracing::debug!(target: PACKET_TARGET, "{} {what}: no further packets traced in this direction", self.verb);
        self.broken = true;
        self.buf = BytesMut::new();
    }
}

/// The fixed header's length and the remaining length, once both are complete.
fn fixed_header(buf: &[u8]) -> Option<(usize, usize)> {
    let mut remaining = 0usize;
    for (i, &b) in buf.iter().skip(1).take(4).enumerate() {
        remaining |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((i + 2, remaining));
        }
    }
    None
}

/// `PUBLISH (d0, q1, r0, m3, 'topic', ... (5 bytes))` from the start of its body; the
/// payload's size excludes the properties at MQTT 5.
fn describe_publish(
    first: u8,
    body: &[u8],
    remaining: usize,
    level: ProtocolLevel,
) -> Option<String> {
    let qos = (first >> 1) & 3;
    let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let topic = body.get(2..2 + topic_len)?;
    let mut line = format!("PUBLISH (d{}, q{qos}, r{}", (first >> 3) & 1, first & 1);
    let mut used = 2 + topic_len;
    if qos > 0 {
        let id = body.get(used..used + 2)?;
        let _ = write!(line, ", m{}", u16::from_be_bytes([id[0], id[1]]));
        used += 2;
    }
    if level.is_v5() {
        // The Property Length (a variable byte integer), then the properties.
        let mut len = 0usize;
        let mut vbi = 0;
        loop {
            let b = *body.get(used + vbi)?;
            len |= usize::from(b & 0x7f) << (7 * vbi);
            vbi += 1;
            if b & 0x80 == 0 {
                break;
            }
            if vbi == 4 {
                return None;
            }
        }
        used += vbi + len;
    }
    let payload = remaining.checked_sub(used)?;
    let _ = write!(
        line,
        ", '{}', ... ({payload} bytes)) [{} bytes]",
        String::from_utf8_lossy(topic).escape_debug(),
        remaining + header_len_for(remaining)
    );
    Some(line)
}

fn header_len_for(remaining: usize) -> usize {
    match remaining {
        0..=127 => 2,
        128..=16_383 => 3,
        16_384..=2_097_151 => 4,
        _ => 5,
    }
}

/// A packet in one line, without password or payloads.
struct Describe<'a>(&'a Packet);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Packet::Connect(c) => {
                write!(
                    f,
                    "CONNECT (id '{}', {}, clean session {}, keepalive {}",
                    c.client_id.as_str().escape_debug(),
                    c.level,
                    u8::from(c.clean_session),
                    c.keep_alive
                )?;
                if let Some(u) = &c.username {
                    write!(f, ", user '{}'", u.as_str().escape_debug())?;
                }
                if c.password.is_some() {
                    f.write_str(", password (hidden)")?;
                }
                if let Some(w) = &c.will {
                    write!(
                        f,
                        ", will '{}' q{} r{} ({} bytes)",
                        w.topic.as_str().escape_debug(),
                        w.qos as u8,
                        u8::from(w.retain),
                        w.payload.len()
                    )?;
                }
                f.write_str(")")
            }
            Packet::ConnAck(c) => write!(
                f,
                "CONNACK (session present {}, return code {}: {})",
                u8::from(c.session_present),
                c.code as u8,
                c.code.description()
            ),
            Packet::Publish(p) => write!(
                f,
                "PUBLISH (d{}, q{}, r{}, '{}', ... ({} bytes))",
                u8::from(p.dup),
                p.qos() as u8,
                u8::from(p.retain),
                p.topic.as_str().escape_debug(),
                p.payload.len()
            ),
            Packet::PubAck(id) => write!(f, "PUBACK (m{id})"),
            Packet::PubRec(id) => write!(f, "PUBREC (m{id})"),
            Packet::PubRel(id) => write!(f, "PUBREL (m{id})"),
            Packet::PubComp(id) => write!(f, "PUBCOMP (m{id})"),
            Packet::Subscribe(s) => {
                write!(f, "SUBSCRIBE (m{}", s.packet_id)?;
                for (filter, qos) in &s.filters {
                    write!(f, ", '{}' q{}", filter.as_str().escape_debug(), *qos as u8)?;
                }
                f.write_str(")")
            }
            Packet::SubAck(s) => {
                write!(f, "SUBACK (m{}, granted", s.packet_id)?;
                for (i, code) in s.return_codes.iter().enumerate() {
                    let sep = if i == 0 { " " } else { ", " };
                    match code.to_u8() {
                        0x80 => write!(f, "{sep}128 (refused)")?,
                        n => write!(f, "{sep}q{n}")?,
                    }
                }
                f.write_str(")")
            }
            Packet::Unsubscribe(u) => {
                write!(f, "UNSUBSCRIBE (m{}", u.packet_id)?;
                for filter in &u.filters {
                    write!(f, ", '{}'", filter.as_str().escape_debug())?;
                }
                f.write_str(")")
            }
            Packet::UnsubAck(id) => write!(f, "UNSUBACK (m{id})"),
            Packet::PingReq => f.write_str("PINGREQ"),
            Packet::PingResp => f.write_str("PINGRESP"),
            Packet::Disconnect => f.write_str("DISCONNECT"),
            // Level 5 forms: this client does not speak MQTT 5 yet, so only their type.
            other => write!(f, "{} (MQTT 5)", other.packet_type()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tern_proto::packet::{Connect, Publish, QosPid};
    use tern_proto::{MqttString, PacketId, TopicName};

    fn encode(p: &Packet) -> Vec<u8> {
        let mut out = BytesMut::new();
        p.encode(&mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn connect_never_shows_the_password() {
        let p = Packet::Connect(Box::new(Connect {
            level: ProtocolLevel::V3_1_1,
            client_id: MqttString::new("me").unwrap(),
            keep_alive: 60,
            clean_session: true,
            will: None,
            username: Some(MqttString::new("alice").unwrap()),
            password: Some(Bytes::from_static(b"hunter2")),
            properties: Default::default(),
        }));
        let line = Describe(&p).to_string();
        assert!(
            line.contains("user 'alice'") && line.contains("password (hidden)"),
            "{line}"
        );
        assert!(!line.contains("hunter2"), "{line}");
    }

    #[test]
    fn publish_is_described_from_its_prefix() {
        let p = Packet::Publish(Publish {
            dup: true,
            qos_pid: QosPid::ExactlyOnce(PacketId::new(7).unwrap()),
            retain: false,
            topic: TopicName::new("a/b").unwrap(),
            payload: Bytes::from(vec![b'x'; 300]),
        });
        let bytes = encode(&p);
        let (header_len, remaining) = fixed_header(&bytes).unwrap();
        // Only the topic and id are needed, not the payload.
        let line = describe_publish(
            bytes[0],
            &bytes[header_len..header_len + 7],
            remaining,
            ProtocolLevel::V3_1_1,
        );
        assert_eq!(
            line.as_deref(),
            Some("PUBLISH (d1, q2, r0, m7, 'a/b', ... (300 bytes)) [310 bytes]")
        );
    }

    #[test]
    fn a_level_5_publish_counts_its_payload_without_the_properties() {
        use tern_proto::packet::{PublishProperties, PublishV5};
        let publish = Publish {
            dup: false,
            qos_pid: QosPid::AtLeastOnce(PacketId::new(3).unwrap()),
            retain: false,
            topic: TopicName::new("a/b").unwrap(),
            payload: Bytes::from_static(b"x"),
        };
        let properties = PublishProperties {
            content_type: Some(MqttString::new("text/plain").unwrap()),
            ..Default::default()
        };
        let p = Packet::PublishV5(Box::new(PublishV5 {
            publish,
            properties,
        }));
        let mut out = BytesMut::new();
        p.encode_for(ProtocolLevel::V5, &mut out).unwrap();
        let (header_len, remaining) = fixed_header(&out).unwrap();
        let line = describe_publish(out[0], &out[header_len..], remaining, ProtocolLevel::V5);
        assert_eq!(
            line.as_deref(),
            Some("PUBLISH (d0, q1, r0, m3, 'a/b', ... (1 bytes)) [24 bytes]")
        );
    }

    #[test]
    fn a_stream_cut_anywhere_is_reassembled() {
        let mut bytes = encode(&Packet::PubRel(PacketId::new(3).unwrap()));
        bytes.extend(encode(&Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtLeastOnce(PacketId::new(4).unwrap()),
            retain: true,
            topic: TopicName::new("t").unwrap(),
            payload: Bytes::from(vec![0; 1000]),
        })));
        bytes.extend(encode(&Packet::PingReq));
        for cut in 1..bytes.len() {
            let mut d = Direction::new("sending");
            d.feed(&bytes[..cut], ProtocolLevel::V3_1_1);
            d.feed(&bytes[cut..], ProtocolLevel::V3_1_1);
            assert!(!d.broken && d.buf.is_empty() && d.skip == 0, "cut at {cut}");
        }
    }
}
