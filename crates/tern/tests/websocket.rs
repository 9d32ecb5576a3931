//! MQTT over WebSocket, end to end: tern against mosquitto's `protocol websockets` listeners
//! (plain and TLS), and against a hand-driven tokio-tungstenite server for the cases mosquitto
//! never shows (no subprotocol, HTTP errors, packets cut across frames).
//!
//! The adapter itself is unit-tested over an in-memory pipe in `src/transport/ws.rs`.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tern::{
    Broker, Client, ConnectError, ConnectOptions, Event, Events, Message, QoS, SubscribeReturnCode,
    TlsOptions,
};
use tern_proto::PacketType;
use tern_testkit::{MosquittoConfig, raw};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};

const WAIT: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    tern_testkit::timeout(WAIT, fut, what).await
}

/// The next application message, skipping other events; panics on a disconnect.
async fn next_message(events: &mut Events) -> Message {
    loop {
        match bounded("a message", events.recv()).await {
            Some(Event::Message(m)) => return m,
            Some(Event::Disconnected { error, .. }) => panic!("disconnected: {error}"),
            Some(_) => {}
            None => panic!("event stream ended"),
        }
    }
}

/// A payload that is not one repeated byte, so a misplaced chunk shows.
fn payload(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

/// Size of the large publishes: far beyond one WebSocket frame, TLS record or TCP segment.
const LARGE: usize = 1024 * 1024;

/// Size of what the broker sends back over WebSocket. mosquitto 2.0 pushes WebSocket data to
/// clients at roughly 40 KiB/s through libwebsockets (eclipse-mosquitto/mosquitto#1390: a
/// 1 MiB message takes ~26 s on loopback), so the broker-to-client direction uses a payload
/// that still spans several frames' worth of TCP segments and TLS records but arrives in
/// about half a second.
const MEDIUM: usize = 20 * 1024 + 7;

/// A plain-TCP client connected to `broker`, subscribed to `filter`.
async fn tcp_subscriber(url: &str, id: &str, filter: &str) -> (Client, Events) {
    let (client, events) = Client::new(ConnectOptions::new(id));
    bounded(
        "tcp connect",
        client.connect(Broker::parse(url).expect("url")),
    )
    .await
    .expect("tcp connect");
    bounded("subscribe", client.subscribe([(filter, QoS::ExactlyOnce)]))
        .await
        .expect("subscribe");
    (client, events)
}

/// With `ws` connected over WebSocket and `tcp` over TCP to the same broker: `ws` publishes
/// 1 MiB at QoS 0, 1 and 2 and `tcp` must receive each whole; `tcp` publishes at each QoS
/// and `ws` must receive each whole.
async fn roundtrip(
    ws: &Client,
    ws_events: &mut Events,
    tcp: &Client,
    tcp_events: &mut Events,
    prefix: &str,
) {
    let granted = bounded(
        "SUBACK",
        ws.subscribe([(format!("{prefix}/down/#"), QoS::ExactlyOnce)]),
    )
    .await
    .expect("subscribe");
    assert_eq!(granted, [SubscribeReturnCode::Success(QoS::ExactlyOnce)]);

    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let topic = format!("{prefix}/up/q{i}");
        let body = payload(LARGE + 17 * i, i as u8);
        bounded(
            "publish over WebSocket",
            ws.publish(&topic, body.clone(), qos, false),
        )
        .await
        .expect("publish");
        let msg = next_message(tcp_events).await;
        assert_eq!((msg.topic.as_str(), msg.qos), (topic.as_str(), qos));
        assert_eq!(msg.payload.len(), body.len());
        assert!(
            msg.payload == body,
            "{LARGE}-byte payload at {qos:?} arrived altered"
        );

        let topic = format!("{prefix}/down/q{i}");
        let body = payload(MEDIUM + i, 100 + i as u8);
        bounded(
            "publish over TCP",
            tcp.publish(&topic, body.clone(), qos, false),
        )
        .await
        .expect("publish");
        let msg = next_message(ws_events).await;
        assert_eq!((msg.topic.as_str(), msg.qos), (topic.as_str(), qos));
        assert_eq!(msg.payload.len(), body.len());
        assert!(
            msg.payload == body,
            "payload at {qos:?} arrived altered over WebSocket"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_publishes_over_ws_arrive_whole() {
    let broker = MosquittoConfig::new().websockets().start();
    let (tcp, mut tcp_events) = tcp_subscriber(&broker.url(), "tcp-peer", "ws/up/#").await;
    let (client, mut events) = Client::new(ConnectOptions::new("ws-test"));
    let url = format!("{}/mqtt", broker.ws_url());
    bounded("connect", client.connect(Broker::parse(&url).expect("url")))
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}\n{}", broker.log()));
    roundtrip(&client, &mut events, &tcp, &mut tcp_events, "ws").await;
    bounded("close", client.close()).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_publishes_over_wss_arrive_whole() {
    let broker = MosquittoConfig::new().websockets_tls().start();
    let (tcp, mut tcp_events) = tcp_subscriber(&broker.url(), "tcp-peer", "wss/up/#").await;
    let ca = broker.tls().ca.cert_pem.clone();
    let options = ConnectOptions::new("wss-test").tls(TlsOptions::ca_pem(ca));
    let (client, mut events) = Client::new(options);
    let url = format!("{}/mqtt", broker.wss_url());
    bounded("connect", client.connect(Broker::parse(&url).expect("url")))
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}\n{}", broker.log()));
    roundtrip(&client, &mut events, &tcp, &mut tcp_events, "wss").await;
    bounded("close", client.close()).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_an_untrusted_ca_fails_in_tls() {
    let broker = MosquittoConfig::new().websockets_tls().start();
    let wrong = broker.tls().wrong_ca.cert_pem.clone();
    let (client, _events) =
        Client::new(ConnectOptions::new("wss-wrong").tls(TlsOptions::ca_pem(wrong)));
    let err = bounded(
        "connect",
        client.connect(Broker::parse(&broker.wss_url()).expect("url")),
    )
    .await
    .expect_err("an untrusted certificate must fail");
    assert!(matches!(err, ConnectError::Tls { .. }), "{err:?}");
}

// ---- a hand-driven WebSocket server on 127.0.0.1 ----

/// How the fake server answers the upgrade request.
#[derive(Clone, Copy)]
enum Answer {
    Mqtt,
    NoSubprotocol,
    Status(u16),
}

#[allow(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback fixes the error type"
)]
fn answer(how: Answer) -> impl FnOnce(&Request, Response) -> Result<Response, ErrorResponse> {
    move |req, mut resp| {
        let offered = req
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            offered.split(',').any(|p| p.trim() == "mqtt"),
            "client offered subprotocols {offered:?}"
        );
        match how {
            Answer::Mqtt => {
                resp.headers_mut().insert(
                    header::SEC_WEBSOCKET_PROTOCOL,
                    HeaderValue::from_static("mqtt"),
                );
                Ok(resp)
            }
            Answer::NoSubprotocol => Ok(resp),
            Answer::Status(code) => {
                let mut err = ErrorResponse::new(None);
                *err.status_mut() = StatusCode::from_u16(code).expect("status");
                Err(err)
            }
        }
    }
}

/// Listens on 127.0.0.1:0; the returned task accepts one connection and upgrades it.
async fn fake_server(
    how: Answer,
) -> (
    u16,
    tokio::task::JoinHandle<Option<WebSocketStream<TcpStream>>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        tokio_tungstenite::accept_hdr_async(tcp, answer(how))
            .await
            .ok()
    });
    (port, task)
}

/// Reads binary frames until one whole MQTT packet is buffered, and returns it.
async fn read_packet(ws: &mut WebSocketStream<TcpStream>, buf: &mut BytesMut) -> raw::RawPacket {
    loop {
        if let Some(p) = raw::split_packet(buf).expect("framing") {
            return p;
        }
        match bounded("a frame from the client", ws.next()).await {
            Some(Ok(WsMessage::Binary(b))) => buf.extend_from_slice(&b),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
}

async fn send_frame(ws: &mut WebSocketStream<TcpStream>, bytes: &[u8]) {
    ws.send(WsMessage::Binary(Bytes::copy_from_slice(bytes)))
        .await
        .expect("send frame");
}

fn websocket_reason(err: ConnectError, port: u16) -> String {
    assert_eq!(err.code(), tern::error::CODE_OTHER);
    match err {
        ConnectError::WebSocket { addr, reason } => {
            assert_eq!(addr, format!("ws://127.0.0.1:{port}/mqtt"));
            reason
        }
        other => panic!("expected ConnectError::WebSocket, got {other:?}"),
    }
}

#[tokio::test]
async fn reply_without_mqtt_subprotocol_is_refused() {
    let (port, server) = fake_server(Answer::NoSubprotocol).await;
    let (client, _events) = Client::new(ConnectOptions::new("ws-test"));
    let url = format!("ws://127.0.0.1:{port}/mqtt");
    let err = bounded("connect", client.connect(Broker::parse(&url).expect("url")))
        .await
        .expect_err("no subprotocol must fail");
    let reason = websocket_reason(err, port);
    assert!(reason.contains("subprotocol \"mqtt\""), "{reason}");
    let _ = bounded("server", server).await;
}

#[tokio::test]
async fn http_error_status_is_reported() {
    let (port, server) = fake_server(Answer::Status(404)).await;
    let (client, _events) = Client::new(ConnectOptions::new("ws-test"));
    let url = format!("ws://127.0.0.1:{port}");
    let err = bounded("connect", client.connect(Broker::parse(&url).expect("url")))
        .await
        .expect_err("HTTP 404 must fail");
    let reason = websocket_reason(err, port);
    assert!(reason.contains("HTTP 404 Not Found"), "{reason}");
    let _ = bounded("server", server).await;
}

/// Packets straddling frames and frames holding several packets, through the whole client.
#[tokio::test]
async fn packets_cut_and_glued_across_frames() {
    let (port, server) = fake_server(Answer::Mqtt).await;
    let big = payload(100_000, 3);
    let big_for_server = big.clone();
    let server = tokio::spawn(async move {
        let mut ws = server.await.expect("join").expect("handshake");
        let mut buf = BytesMut::new();
        let connect = read_packet(&mut ws, &mut buf).await;
        assert_eq!(connect.packet_type(), Some(PacketType::Connect));
        // CONNACK cut in three frames.
        let connack = raw::connack(0, false);
        send_frame(&mut ws, &connack[..1]).await;
        send_frame(&mut ws, &connack[1..2]).await;
        send_frame(&mut ws, &connack[2..]).await;

        let subscribe = read_packet(&mut ws, &mut buf).await;
        assert_eq!(subscribe.packet_type(), Some(PacketType::Subscribe));
        let id = subscribe.packet_id().expect("packet id");
        // SUBACK, a small PUBLISH and the head of a big one in one frame; the big one's tail
        // in a second frame, followed by a third PUBLISH.
        let small = raw::publish("glued/small", b"hi", 0, 0, false);
        let large = raw::publish("glued/large", &big_for_server, 0, 0, false);
        let last = raw::publish("glued/last", b"end", 0, 0, false);
        let cut = large.len() / 3;
        let first = [raw::suback(id, &[0]), small, large[..cut].to_vec()].concat();
        let second = [&large[cut..], &last[..]].concat();
        send_frame(&mut ws, &first).await;
        send_frame(&mut ws, &second).await;

        let disconnect = read_packet(&mut ws, &mut buf).await;
        assert_eq!(disconnect.packet_type(), Some(PacketType::Disconnect));
    });

    let (client, mut events) = Client::new(ConnectOptions::new("ws-test"));
    let url = format!("ws://127.0.0.1:{port}/mqtt");
    bounded("connect", client.connect(Broker::parse(&url).expect("url")))
        .await
        .expect("connect");
    let granted = bounded("SUBACK", client.subscribe([("glued/#", QoS::AtMostOnce)]))
        .await
        .expect("subscribe");
    assert_eq!(granted, [SubscribeReturnCode::Success(QoS::AtMostOnce)]);
    let m = next_message(&mut events).await;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("glued/small", &b"hi"[..])
    );
    let m = next_message(&mut events).await;
    assert_eq!(m.topic.as_str(), "glued/large");
    assert!(m.payload == big);
    let m = next_message(&mut events).await;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("glued/last", &b"end"[..])
    );
    bounded("close", client.close()).await.expect("close");
    bounded("server", server).await.expect("server task");
}
