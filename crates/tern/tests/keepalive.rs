//! Keepalive and limits: a dead link is detected, oversized packets are refused by name.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::{connected, next_event, unique, within};
use tern::{Broker, Client, ConnectOptions, ConnectionError, Event, QoS};
use tern_testkit::{FaultProxy, MosquittoConfig};

#[tokio::test]
async fn black_holed_connection_is_detected_within_one_and_a_half_keepalives() {
    let broker = MosquittoConfig::new().start();
    let proxy = FaultProxy::start(broker.addr()).await;
    let keep_alive = Duration::from_secs(1);
    let (client, mut events) =
        Client::new(ConnectOptions::new(unique("ka")).keep_alive(keep_alive));
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", proxy.port())),
    )
    .await
    .unwrap();
    let start = Instant::now();
    proxy.black_hole();
    let error = next_event(&mut events, "offline after the black hole", |e| match e {
        Event::Disconnected { error, .. } => Some(error),
        _ => None,
    })
    .await;
    let took = start.elapsed();
    assert!(
        matches!(error, ConnectionError::PingTimeout(_)),
        "{error:?}"
    );
    assert!(
        took <= keep_alive * 3 / 2 + Duration::from_millis(300),
        "detected after {took:?}"
    );
}

#[tokio::test]
async fn idle_connection_stays_up_with_pings() {
    let broker = MosquittoConfig::new().start();
    let (client, mut events) = connected(
        ConnectOptions::new(unique("idle")).keep_alive(Duration::from_secs(1)),
        broker.port(),
    )
    .await;
    // Three keepalive periods with nothing to do: no Disconnected may arrive.
    let quiet = tokio::time::timeout(Duration::from_millis(3200), async {
        loop {
            if let Some(Event::Disconnected { error, .. }) = events.recv().await {
                return error;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "connection dropped while idle: {quiet:?}");
    client
        .publish("still/up", "x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
}

#[tokio::test]
async fn incoming_packet_over_the_limit_closes_with_an_error_naming_it() {
    let broker = MosquittoConfig::new().start();
    let topic = unique("big");
    let (small, mut events) = connected(
        ConnectOptions::new(unique("small")).max_packet_size(1024),
        broker.port(),
    )
    .await;
    small
        .subscribe([(topic.as_str(), QoS::AtMostOnce)])
        .await
        .unwrap();
    let (publisher, _) = connected(ConnectOptions::new(unique("p")), broker.port()).await;
    publisher
        .publish(&topic, vec![7u8; 4096], QoS::AtMostOnce, false)
        .await
        .unwrap();
    let error = next_event(&mut events, "the connection to close", |e| match e {
        Event::Disconnected { error, .. } => Some(error),
        Event::Message(m) => panic!(
            "a {}-byte message passed a 1024-byte limit",
            m.payload.len()
        ),
        _ => None,
    })
    .await;
    let text = error.to_string();
    assert!(matches!(error, ConnectionError::Protocol(_)), "{error:?}");
    assert!(text.contains("1024"), "the error names the limit: {text}");
}
