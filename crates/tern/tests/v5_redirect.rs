//! MQTT 5 server redirection (Server Reference on CONNACK 0x9C / 0x9D or DISCONNECT),
//! against the scripted broker (mosquitto never redirects): opt-in, bounded hops.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use common::{next_event, within};
use tern::{Broker, Client, ConnectError, ConnectOptions, ConnectionError, Event, Protocol};
use tern_testkit::{MosquittoConfig, Script, ScriptedBroker};

/// A level 5 packet: `header`, then `body` with its remaining length (< 128).
fn packet(header: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![header, u8::try_from(body.len()).unwrap()];
    p.extend_from_slice(body);
    p
}

/// CONNACK `reason` with Server Reference `127.0.0.1:<port>` (port read when it is sent).
fn redirecting_connack(reason: u8, port: &Arc<AtomicU16>) -> Script {
    let port = port.clone();
    Script::new()
        .expect_connect()
        .respond(move |_| {
            let reference = format!("127.0.0.1:{}", port.load(Ordering::SeqCst));
            let mut props = vec![0x1c, 0x00, u8::try_from(reference.len()).unwrap()];
            props.extend_from_slice(reference.as_bytes());
            let mut body = vec![0x00, reason, u8::try_from(props.len()).unwrap()];
            body.extend_from_slice(&props);
            packet(0x20, &body)
        })
        .read_until_closed()
}

#[tokio::test]
async fn a_redirecting_connack_is_followed_when_allowed() {
    let target = MosquittoConfig::new().start();
    let port = Arc::new(AtomicU16::new(target.port()));
    let first = ScriptedBroker::start(redirecting_connack(0x9c, &port)).await;
    let opts = ConnectOptions::new("redirected")
        .protocol(Protocol::V5)
        .follow_redirects(2);
    let (client, mut events) = Client::new(opts);
    within(
        "CONNACK from the referenced broker",
        client.connect(Broker::tcp("127.0.0.1", first.port())),
    )
    .await
    .unwrap();
    let broker = next_event(&mut events, "Connected", |e| match e {
        Event::Connected { broker, .. } => Some(broker),
        _ => None,
    })
    .await;
    assert_eq!(broker.port, target.port());
    client.close().await.unwrap();
}

#[tokio::test]
async fn without_opt_in_the_refusal_reports_the_server_reference() {
    let port = Arc::new(AtomicU16::new(1884));
    let first = ScriptedBroker::start(redirecting_connack(0x9d, &port)).await;
    let (client, _events) = Client::new(ConnectOptions::new("t").protocol(Protocol::V5));
    let e = within(
        "the refusal",
        client.connect(Broker::tcp("127.0.0.1", first.port())),
    )
    .await
    .unwrap_err();
    match e {
        ConnectError::RefusedV5(ack) => {
            assert_eq!(ack.reason.to_u8(), 0x9d);
            assert_eq!(
                ack.properties.server_reference.as_deref(),
                Some("127.0.0.1:1884")
            );
        }
        other => panic!("expected RefusedV5, got {other:?}"),
    }
    assert_eq!(first.connection_count(), 1);
}

#[tokio::test]
async fn redirection_stops_after_the_hop_limit() {
    // Two brokers sending each other's address, forever.
    let port_a = Arc::new(AtomicU16::new(0));
    let port_b = Arc::new(AtomicU16::new(0));
    let a = ScriptedBroker::start_sequence(vec![redirecting_connack(0x9c, &port_b); 3]).await;
    let b = ScriptedBroker::start_sequence(vec![redirecting_connack(0x9c, &port_a); 3]).await;
    port_a.store(a.port(), Ordering::SeqCst);
    port_b.store(b.port(), Ordering::SeqCst);
    let opts = ConnectOptions::new("t")
        .protocol(Protocol::V5)
        .follow_redirects(3);
    let (client, _events) = Client::new(opts);
    let e = within(
        "the last refusal",
        client.connect(Broker::tcp("127.0.0.1", a.port())),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ConnectError::RefusedV5(_)), "{e:?}");
    // The first attempt and 3 hops: a, b, a, b.
    assert_eq!(a.connection_count(), 2);
    assert_eq!(b.connection_count(), 2);
}

#[tokio::test]
async fn a_redirecting_disconnect_moves_the_connection() {
    let target = MosquittoConfig::new().start();
    // CONNACK, then DISCONNECT 0x9D Server moved with the target's address.
    let reference = format!("127.0.0.1:{}", target.port());
    let mut props = vec![0x1c, 0x00, u8::try_from(reference.len()).unwrap()];
    props.extend_from_slice(reference.as_bytes());
    let mut body = vec![0x9d, u8::try_from(props.len()).unwrap()];
    body.extend_from_slice(&props);
    let mut bytes = b"\x20\x03\x00\x00\x00".to_vec();
    bytes.extend(packet(0xe0, &body));
    let first = ScriptedBroker::start(Script::reply_to_connect(bytes)).await;
    let opts = ConnectOptions::new("moving")
        .protocol(Protocol::V5)
        .follow_redirects(1);
    let (client, mut events) = Client::new(opts);
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", first.port())),
    )
    .await
    .unwrap();
    let error = next_event(&mut events, "Disconnected", |e| match e {
        Event::Disconnected {
            error,
            will_reconnect,
        } => Some((error, will_reconnect)),
        _ => None,
    })
    .await;
    assert!(
        matches!(error.0, ConnectionError::Server(_)),
        "{:?}",
        error.0
    );
    assert!(error.1, "a followed redirection reconnects");
    let broker = next_event(&mut events, "Connected to the new server", |e| match e {
        Event::Connected { broker, .. } => Some(broker),
        _ => None,
    })
    .await;
    assert_eq!(broker.port, target.port());
    client.close().await.unwrap();
}
