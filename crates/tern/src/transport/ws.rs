//! MQTT over WebSocket: the HTTP upgrade (subprotocol `mqtt`) and [`WsStream`], an adapter from
//! binary WebSocket messages to the byte stream the driver reads and writes.
//!
//! MQTT packets and WebSocket frames are independent: one packet may straddle several frames
//! and one frame may hold several packets, so the adapter is a plain byte pipe and packet
//! framing stays with the MQTT decoder.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, handshake::client::Request};

use crate::broker::Broker;
use crate::error::ConnectError;
use crate::options::ConnectOptions;

/// The WebSocket subprotocol MQTT 3.1.1 registers (section 6).
pub(crate) const SUBPROTOCOL: &str = "mqtt";

/// Largest binary frame one `poll_write` produces; bigger writes are split, so the adapter
/// never holds more than this much unsent data of its own.
const MAX_WRITE_FRAME: usize = 64 * 1024;

/// Slack on top of `max_packet_size` for incoming messages: a broker may put a few small
/// packets in the frame that carries a large one.
const FRAME_SLACK: usize = 64 * 1024;

/// Headers the handshake writes itself; `ws_headers` may not set them.
const RESERVED_HEADERS: [&str; 5] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
];

/// Performs the WebSocket handshake over `stream` (TCP, or TLS already negotiated for `wss`).
pub(super) async fn handshake<S>(
    broker: &Broker,
    options: &ConnectOptions,
    stream: S,
) -> Result<WsStream<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = request(broker, options)?;
    let limit = options.max_packet_size.saturating_add(FRAME_SLACK);
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| handshake_error(broker, e))?;
    // tungstenite already refuses a reply without the requested subprotocol; check again so
    // the rule does not hinge on that.
    let selected = response.headers().get(header::SEC_WEBSOCKET_PROTOCOL);
    if selected.map(HeaderValue::as_bytes) != Some(SUBPROTOCOL.as_bytes()) {
        return Err(ws_error(
            broker,
            match selected {
                None => no_subprotocol_reason(),
                Some(v) => wrong_subprotocol_reason(v),
            },
        ));
    }
    tracing::debug!(target: crate::trace::CONNECT_TARGET, "WebSocket upgrade to {broker} done: HTTP {}, subprotocol {SUBPROTOCOL}", response.status());
    Ok(WsStream::new(ws))
}

/// The upgrade request: `GET {path}` with `Host`, `Sec-WebSocket-Protocol: mqtt` and the
/// configured extra headers. The URL is always `ws://`: for `wss` TLS is already done.
fn request(broker: &Broker, options: &ConnectOptions) -> Result<Request, ConnectError> {
    let host = if broker.host.contains(':') {
        format!("[{}]", broker.host)
    } else {
        broker.host.clone()
    };
    let path = if broker.path.is_empty() {
        "/mqtt".to_owned()
    } else if broker.path.starts_with('/') {
        broker.path.clone()
    } else {
        format!("/{}", broker.path)
    };
    let url = format!("ws://{host}:{}{path}", broker.port);
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ws_error(broker, format!("invalid request URL {url:?}: {e}")))?;
    // Host names the port only when it is not the scheme's default (RFC 9110 section 7.2).
    let host_header = if broker.port == broker.scheme.default_port() {
        host
    } else {
        format!("{host}:{}", broker.port)
    };
    let headers = request.headers_mut();
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&host_header).map_err(|_| {
            ConnectError::InvalidOptions(format!("host {host_header:?} is not a valid Host header"))
        })?,
    );
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    for (name, value) in &options.ws_headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ConnectError::InvalidOptions(format!("invalid WebSocket header name {name:?}"))
        })?;
        if RESERVED_HEADERS.contains(&name.as_str()) {
            return Err(ConnectError::InvalidOptions(format!(
                "WebSocket header {name} is set by the handshake itself"
            )));
        }
        let value = HeaderValue::from_str(value).map_err(|_| {
            ConnectError::InvalidOptions(format!("invalid value for WebSocket header {name}"))
        })?;
        if name == header::HOST {
            headers.insert(name, value);
        } else {
            headers.append(name, value);
        }
    }
    Ok(request)
}

fn ws_error(broker: &Broker, reason: impl Into<String>) -> ConnectError {
    ConnectError::WebSocket {
        addr: broker.to_string(),
        reason: reason.into(),
    }
}

fn no_subprotocol_reason() -> String {
    format!(
        "the server did not select subprotocol {SUBPROTOCOL:?} (no Sec-WebSocket-Protocol in its reply)"
    )
}

fn wrong_subprotocol_reason(value: &HeaderValue) -> String {
    format!(
        "the server selected subprotocol {:?}, not {SUBPROTOCOL:?}",
        String::from_utf8_lossy(value.as_bytes())
    )
}

fn handshake_error(broker: &Broker, err: WsError) -> ConnectError {
    let reason = match err {
        WsError::Http(response) => {
            let status = response.status();
            let mut reason =
                format!("the server answered HTTP {status} instead of 101 Switching Protocols");
            if let Some(body) = response.body().as_deref() {
                let text = String::from_utf8_lossy(body);
                let text: String = text
                    .trim()
                    .chars()
                    .take(120)
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                if !text.is_empty() {
                    reason.push_str(": ");
                    reason.push_str(&text);
                }
            }
            reason
        }
        WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(e)) => match e {
            SubProtocolError::NoSubProtocol => no_subprotocol_reason(),
            SubProtocolError::InvalidSubProtocol => {
                format!("the server selected a subprotocol other than {SUBPROTOCOL:?}")
            }
            other => other.to_string(),
        },
        WsError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the handshake".to_owned()
        }
        WsError::Io(e) => format!("I/O error: {e}"),
        WsError::Protocol(ProtocolError::HandshakeIncomplete) => {
            "the server closed the connection during the handshake".to_owned()
        }
        other => other.to_string(),
    };
    ws_error(broker, reason)
}

/// A WebSocket connection seen as a byte stream: writes go out as binary frames, reads yield
/// the payloads of the binary frames received, in order.
///
/// - Ping frames are answered (tungstenite queues the Pong while reading); Pong is ignored.
/// - A Close frame, or the peer closing the connection, reads as end of stream.
/// - A Text frame is an error ([`io::ErrorKind::InvalidData`]): MQTT uses binary frames only.
/// - [`poll_write`](AsyncWrite::poll_write) sends at most [`MAX_WRITE_FRAME`] bytes as one
///   frame and reports them written only once the frame has been handed to the underlying
///   stream and flushed, so the driver need not flush after its last write. Should the write
///   be interrupted (`Pending`), the frame stays queued and the next call reports it: callers
///   must, as usual, pass the same bytes again.
/// - [`poll_shutdown`](AsyncWrite::poll_shutdown) sends a Close frame.
pub(crate) struct WsStream<S> {
    ws: WebSocketStream<S>,
    /// Unread rest of the last binary message.
    read: Bytes,
    /// Reading is over (Close, end of stream, or an error already reported).
    read_done: bool,
    /// Length of a frame queued by `poll_write` but not yet reported written.
    pending: Option<usize>,
}

impl<S> std::fmt::Debug for WsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsStream")
            .field("buffered", &self.read.len())
            .field("read_done", &self.read_done)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl<S> WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Wraps an established WebSocket connection.
    fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            read: Bytes::new(),
            read_done: false,
            pending: None,
        }
    }

    fn ws(&mut self) -> Pin<&mut WebSocketStream<S>> {
        Pin::new(&mut self.ws)
    }

    /// The stream the WebSocket runs over.
    pub(super) fn get_ref(&self) -> &S {
        self.ws.get_ref()
    }
}

/// The io error for a failed WebSocket operation.
fn io_error(err: WsError) -> io::Error {
    match err {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "WebSocket connection closed")
        }
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => io::Error::new(
            io::ErrorKind::ConnectionReset,
            "WebSocket connection reset without closing handshake",
        ),
        e @ (WsError::Capacity(_) | WsError::Protocol(_) | WsError::Utf8(_)) => {
            io::Error::new(io::ErrorKind::InvalidData, e)
        }
        other => io::Error::other(other),
    }
}

impl<S> AsyncRead for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.read.is_empty() {
                let n = this.read.len().min(buf.remaining());
                buf.put_slice(&this.read.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.read_done || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.ws().poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => this.read = data,
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    tracing::debug!(?frame, "WebSocket closed by the server");
                    this.read_done = true;
                    // tungstenite has queued the Close reply; push it out if that is quick.
                    if let Poll::Ready(Err(e)) = this.ws().poll_flush(cx) {
                        tracing::debug!(error = %e, "sending the WebSocket Close reply failed");
                    }
                }
                Some(Ok(Message::Text(_))) => {
                    this.read_done = true;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the server sent a WebSocket text frame; MQTT uses binary frames only",
                    )));
                }
                None => this.read_done = true,
                Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                    // The peer dropped the connection without a Close frame: end of stream,
                    // as a TCP FIN would be.
                    tracing::debug!("WebSocket connection ended without closing handshake");
                    this.read_done = true;
                }
                Some(Err(e)) => {
                    this.read_done = true;
                    return Poll::Ready(Err(io_error(e)));
                }
            }
        }
    }
}

impl<S> AsyncWrite for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.is_none() {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            ready!(this.ws().poll_ready(cx)).map_err(io_error)?;
            let n = buf.len().min(MAX_WRITE_FRAME);
            let frame = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
            this.ws().start_send(frame).map_err(io_error)?;
            this.pending = Some(n);
        }
        let flushed = this.ws().poll_flush(cx);
        if let Poll::Ready(r) = flushed {
            let n = this.pending.take().unwrap_or(0);
            r.map_err(io_error)?;
            // The caller passes the same bytes again after `Pending`; never claim more than
            // it offered this time.
            return Poll::Ready(Ok(n.min(buf.len())));
        }
        Poll::Pending
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().ws().poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().ws().poll_close(cx).map_err(io_error)
    }
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback fixes the error type"
)]
mod tests {
    use super::*;

    fn broker(url: &str) -> Broker {
        Broker::parse(url).unwrap()
    }

    #[test]
    fn request_has_host_path_and_subprotocol() {
        let options = ConnectOptions::new("x").ws_header("Authorization", "Bearer t");
        let req = request(&broker("wss://example.com/ws/mqtt?x=1"), &options).unwrap();
        assert_eq!(req.uri().to_string(), "ws://example.com:443/ws/mqtt?x=1");
        assert_eq!(req.headers()[header::HOST], "example.com");
        assert_eq!(req.headers()[header::SEC_WEBSOCKET_PROTOCOL], "mqtt");
        assert_eq!(req.headers()[header::AUTHORIZATION], "Bearer t");

        let req = request(&broker("ws://[::1]:9001"), &options).unwrap();
        assert_eq!(req.uri().path(), "/mqtt");
        assert_eq!(req.headers()[header::HOST], "[::1]:9001");

        let options = ConnectOptions::new("x").ws_header("Host", "proxy.example");
        let req = request(&broker("ws://10.0.0.1:8080"), &options).unwrap();
        assert_eq!(req.headers().get_all(header::HOST).iter().count(), 1);
        assert_eq!(req.headers()[header::HOST], "proxy.example");
    }

    #[test]
    fn bad_extra_headers_are_refused() {
        let b = broker("ws://h");
        for (name, value) in [
            ("Sec-WebSocket-Protocol", "mqttv3.1"),
            ("bad name", "v"),
            ("X-Ok", "bad\nvalue"),
        ] {
            let options = ConnectOptions::new("x").ws_header(name, value);
            assert!(
                matches!(request(&b, &options), Err(ConnectError::InvalidOptions(_))),
                "{name}: {value:?}"
            );
        }
    }

    // ---- the adapter over an in-memory pipe, against a tokio-tungstenite server ----

    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio_tungstenite::tungstenite::handshake::server::{
        ErrorResponse, Request as ServerRequest, Response as ServerResponse,
    };
    use tokio_tungstenite::tungstenite::http::StatusCode;

    type Server = WebSocketStream<DuplexStream>;

    /// Bounded wait for test steps (no test relies on it elapsing).
    async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
        tokio::time::timeout(std::time::Duration::from_secs(10), fut)
            .await
            .unwrap_or_else(|_| panic!("timed out: {what}"))
    }

    /// How the test server answers the upgrade.
    #[derive(Clone, Copy)]
    enum Answer {
        Mqtt,
        NoSubprotocol,
        Subprotocol(&'static str),
        Status(u16),
    }

    fn callback(
        answer: Answer,
    ) -> impl FnOnce(&ServerRequest, ServerResponse) -> Result<ServerResponse, ErrorResponse> {
        move |req, mut resp| {
            let offered = req
                .headers()
                .get(header::SEC_WEBSOCKET_PROTOCOL)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(
                offered.split(',').any(|p| p.trim() == "mqtt"),
                "client offered {offered:?}"
            );
            match answer {
                Answer::Mqtt => {
                    resp.headers_mut().insert(
                        header::SEC_WEBSOCKET_PROTOCOL,
                        HeaderValue::from_static("mqtt"),
                    );
                    Ok(resp)
                }
                Answer::NoSubprotocol => Ok(resp),
                Answer::Subprotocol(p) => {
                    resp.headers_mut()
                        .insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
                    Ok(resp)
                }
                Answer::Status(code) => {
                    let mut err = ErrorResponse::new(Some("no MQTT here".to_owned()));
                    *err.status_mut() = StatusCode::from_u16(code).unwrap();
                    Err(err)
                }
            }
        }
    }

    /// Runs client and server handshakes over a duplex pipe.
    async fn pair(
        answer: Answer,
        options: &ConnectOptions,
    ) -> (
        Result<WsStream<DuplexStream>, ConnectError>,
        Result<Server, WsError>,
    ) {
        let (client_io, server_io) = tokio::io::duplex(16 * 1024);
        let b = broker("ws://127.0.0.1:9001/mqtt");
        bounded(
            "handshake",
            futures_util::future::join(
                handshake(&b, options, client_io),
                tokio_tungstenite::accept_hdr_async(server_io, callback(answer)),
            ),
        )
        .await
    }

    async fn connected() -> (WsStream<DuplexStream>, Server) {
        let (client, server) = pair(Answer::Mqtt, &ConnectOptions::new("t")).await;
        (client.unwrap(), server.unwrap())
    }

    /// A PUBLISH (QoS 0) to `topic` with `payload`, as bytes.
    fn publish(topic: &str, payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&u16::try_from(topic.len()).unwrap().to_be_bytes());
        body.extend_from_slice(topic.as_bytes());
        body.extend_from_slice(payload);
        let mut out = vec![0x30];
        let mut n = body.len();
        loop {
            let mut b = (n % 128) as u8;
            n /= 128;
            if n > 0 {
                b |= 0x80;
            }
            out.push(b);
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&body);
        out
    }

    async fn read_n(client: &mut WsStream<DuplexStream>, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        bounded("read", client.read_exact(&mut buf)).await.unwrap();
        buf
    }

    #[tokio::test]
    async fn packet_split_over_frames_reads_back_whole() {
        let (mut client, mut server) = connected().await;
        let packet = publish("a/b", &[7; 300]);
        for part in [&packet[..1], &packet[1..2], &packet[2..150], &packet[150..]] {
            server
                .send(Message::Binary(Bytes::copy_from_slice(part)))
                .await
                .unwrap();
        }
        assert_eq!(read_n(&mut client, packet.len()).await, packet);
    }

    #[tokio::test]
    async fn several_packets_in_one_frame_read_back_in_order() {
        let (mut client, mut server) = connected().await;
        let packets = [
            publish("x", b"1"),
            publish("y", b"22"),
            publish("z", &[3; 200]),
        ];
        server
            .send(Message::Binary(packets.concat().into()))
            .await
            .unwrap();
        // Read with a small buffer: the rest of the frame stays buffered between reads.
        for p in &packets {
            assert_eq!(&read_n(&mut client, p.len()).await, p);
        }
    }

    #[tokio::test]
    async fn empty_frames_pings_and_pongs_are_skipped() {
        let (mut client, mut server) = connected().await;
        server.send(Message::Binary(Bytes::new())).await.unwrap();
        server
            .send(Message::Ping(Bytes::from_static(b"hi")))
            .await
            .unwrap();
        server.send(Message::Pong(Bytes::new())).await.unwrap();
        server
            .send(Message::Binary(Bytes::from_static(&[0xd0, 0x00])))
            .await
            .unwrap();
        assert_eq!(read_n(&mut client, 2).await, [0xd0, 0x00]);
        // The client answered the ping while reading.
        let pong = bounded("pong", server.next()).await.unwrap().unwrap();
        assert_eq!(pong, Message::Pong(Bytes::from_static(b"hi")));
    }

    #[tokio::test]
    async fn writes_arrive_as_binary_frames() {
        let (mut client, mut server) = connected().await;
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let writer = async {
            client.write_all(b"\xc0\x00").await.unwrap();
            client.write_all(&big).await.unwrap();
            client.flush().await.unwrap();
            client
        };
        let reader = async {
            let mut got = Vec::new();
            let mut frames = 0;
            while got.len() < big.len() + 2 {
                match server.next().await.unwrap().unwrap() {
                    Message::Binary(b) => {
                        assert!(b.len() <= MAX_WRITE_FRAME);
                        got.extend_from_slice(&b);
                        frames += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            (got, frames)
        };
        let (_client, (got, frames)) =
            bounded("write", futures_util::future::join(writer, reader)).await;
        assert_eq!(&got[..2], b"\xc0\x00");
        assert_eq!(&got[2..], &big[..]);
        assert!(frames >= 5, "{frames} frames");
    }

    #[tokio::test]
    async fn write_completes_without_explicit_flush() {
        // The driver writes with `write_buf` and never flushes: each write must reach the
        // peer by itself, even when the pipe is much smaller than the frame.
        let (mut client, mut server) = connected().await;
        let data = vec![5u8; 50_000];
        let (n, msg) = bounded(
            "write",
            futures_util::future::join(client.write(&data), server.next()),
        )
        .await;
        let n = n.unwrap();
        assert_eq!(
            msg.unwrap().unwrap(),
            Message::Binary(Bytes::from(vec![5u8; n]))
        );
    }

    #[tokio::test]
    async fn close_frame_reads_as_end_of_stream() {
        let (mut client, mut server) = connected().await;
        server
            .send(Message::Binary(Bytes::from_static(b"\xd0\x00")))
            .await
            .unwrap();
        server.close(None).await.unwrap();
        assert_eq!(read_n(&mut client, 2).await, b"\xd0\x00");
        let mut rest = Vec::new();
        bounded("eof", client.read_to_end(&mut rest)).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn dropped_connection_reads_as_end_of_stream() {
        let (mut client, server) = connected().await;
        drop(server);
        let mut rest = Vec::new();
        bounded("eof", client.read_to_end(&mut rest)).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn text_frame_is_invalid_data() {
        let (mut client, mut server) = connected().await;
        server.send(Message::text("hello")).await.unwrap();
        let mut buf = [0u8; 8];
        let err = bounded("read", client.read(&mut buf)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("text frame"), "{err}");
    }

    #[tokio::test]
    async fn shutdown_sends_close_frame() {
        let (mut client, mut server) = connected().await;
        let (shut, msg) = bounded(
            "shutdown",
            futures_util::future::join(client.shutdown(), server.next()),
        )
        .await;
        shut.unwrap();
        assert!(matches!(msg, Some(Ok(Message::Close(_)))), "{msg:?}");
    }

    fn reason(err: ConnectError) -> String {
        match err {
            ConnectError::WebSocket { addr, reason } => {
                assert_eq!(addr, "ws://127.0.0.1:9001/mqtt");
                reason
            }
            other => panic!("expected a WebSocket error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn reply_without_subprotocol_is_refused() {
        let (client, _server) = pair(Answer::NoSubprotocol, &ConnectOptions::new("t")).await;
        let reason = reason(client.unwrap_err());
        assert!(
            reason.contains("did not select subprotocol \"mqtt\""),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn reply_with_another_subprotocol_is_refused() {
        let (client, _server) =
            pair(Answer::Subprotocol("mqttv3.1"), &ConnectOptions::new("t")).await;
        let reason = reason(client.unwrap_err());
        assert!(
            reason.contains("subprotocol other than \"mqtt\""),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn http_error_names_the_status() {
        let (client, _server) = pair(Answer::Status(404), &ConnectOptions::new("t")).await;
        let reason = reason(client.unwrap_err());
        assert!(reason.contains("HTTP 404 Not Found"), "{reason}");
        assert!(reason.contains("no MQTT here"), "{reason}");
    }

    #[tokio::test]
    async fn extra_headers_reach_the_server() {
        let (client_io, server_io) = tokio::io::duplex(16 * 1024);
        let options = ConnectOptions::new("t").ws_header("X-Token", "abc");
        let b = broker("ws://127.0.0.1:9001/custom/path");
        let check = |req: &ServerRequest, mut resp: ServerResponse| {
            assert_eq!(req.uri().path(), "/custom/path");
            assert_eq!(req.headers()["x-token"], "abc");
            assert_eq!(req.headers()[header::HOST], "127.0.0.1:9001");
            resp.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static("mqtt"),
            );
            Ok(resp)
        };
        let (client, server) = bounded(
            "handshake",
            futures_util::future::join(
                handshake(&b, &options, client_io),
                tokio_tungstenite::accept_hdr_async(server_io, check),
            ),
        )
        .await;
        client.unwrap();
        server.unwrap();
    }
}
