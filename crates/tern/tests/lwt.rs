//! The last will: published when the connection drops without DISCONNECT, not after close().
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{connected, next_message, unique, within};
use tern::{Broker, Client, ConnectOptions, Event, QoS, Will};
use tern_testkit::{FaultProxy, MosquittoConfig};

fn with_will(id: &str, topic: &str) -> ConnectOptions {
    ConnectOptions::new(id).will(Will::new(
        topic.to_owned(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ))
}

#[tokio::test]
async fn will_is_published_with_its_qos_and_retain_when_the_connection_drops() {
    let broker = MosquittoConfig::new().start();
    let topic = unique("lwt");
    let (watcher, mut events) = connected(ConnectOptions::new(unique("w")), broker.port()).await;
    watcher
        .subscribe([(topic.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();

    let proxy = FaultProxy::start(broker.addr()).await;
    let (client, mut client_events) = Client::new(with_will(&unique("dying"), &topic));
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", proxy.port())),
    )
    .await
    .unwrap();
    proxy.cut_now();

    let msg = next_message(&mut events).await;
    assert_eq!(&msg.payload[..], b"offline");
    assert_eq!(msg.qos, QoS::AtLeastOnce);
    // The client saw the loss as `offline`.
    common::next_event(&mut client_events, "Disconnected", |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;

    // Retained: a new subscriber gets it too.
    let (late, mut late_events) = connected(ConnectOptions::new(unique("l")), broker.port()).await;
    late.subscribe([(topic.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();
    let retained = next_message(&mut late_events).await;
    assert!(retained.retain);
}

#[tokio::test]
async fn will_is_not_published_after_close() {
    let broker = MosquittoConfig::new().start();
    let topic = unique("lwt");
    let (watcher, mut events) = connected(ConnectOptions::new(unique("w")), broker.port()).await;
    watcher
        .subscribe([
            (topic.as_str(), QoS::AtLeastOnce),
            ("marker/#", QoS::AtLeastOnce),
        ])
        .await
        .unwrap();

    let (client, _) = connected(with_will(&unique("polite"), &topic), broker.port()).await;
    client.close().await.unwrap();
    // A marker published after the close: if the will were published it would come first.
    let (other, _) = connected(ConnectOptions::new(unique("o")), broker.port()).await;
    other
        .publish("marker/done", "m", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let msg = next_message(&mut events).await;
    assert_eq!(
        msg.topic.as_str(),
        "marker/done",
        "the will must not be published after close()"
    );
    let _ = Duration::ZERO;
}
